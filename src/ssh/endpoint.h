#pragma once
// Where to connect and how: what ssh/ needs from a plan target.

#include <atomic>
#include <string>

#include "common/duration.h"

namespace rw::ssh {

struct Endpoint {
  std::string name;  ///< for messages ("hv1"); the address when empty
  std::string address;
  int port = 22;
  std::string user = "root";
  std::string identity;     ///< private key file (ed25519/ecdsa, OpenSSH format); empty: ssh-agent
  std::string known_hosts;  ///< empty: ~/.ssh/known_hosts
  std::string host_key_policy = "strict";  ///< strict | accept-new
  /// Name to look the host key up under instead of the address (OpenSSH's
  /// HostKeyAlias). For guests behind different hosts that reuse the same
  /// private address (192.168.122.10 on every libvirt host).
  std::string host_key_alias;
};

struct ConnectOptions {
  Millis connect_timeout{10000};  ///< per attempt: TCP connect + handshake + auth; also channel opens
  int connect_attempts = 3;       ///< network failures are retried; host key and auth failures are not
  Millis retry_delay{1000};
  int keepalive_seconds = 15;  ///< 0: none. Dead peers are detected after about 3 intervals
  int max_channels = 10;       ///< exec/sftp channels open at once (OpenSSH MaxSessions is 10)
  const std::atomic<bool>* cancel = nullptr;  ///< polled while connecting: true stops it ("cancelled")
};

}  // namespace rw::ssh
