#pragma once
// Checking a server's host key against known_hosts (libssh2_knownhost_*),
// with OpenSSH's rules: unknown + strict = refused, unknown + accept-new =
// recorded, changed = refused always.

#include <libssh2.h>

#include <string>

#include "common/result.h"
#include "ssh/endpoint.h"

namespace rw::ssh {

struct HostKeyTarget {
  std::string name;         ///< for messages
  std::string address;      ///< for messages
  std::string lookup_host;  ///< what known_hosts is searched for (address or alias)
  int port = 22;
  std::string file;    ///< known_hosts path (already defaulted)
  std::string policy;  ///< strict | accept-new
};

HostKeyTarget host_key_target(const Endpoint& ep);

/// Before the handshake: prefer the key algorithms known_hosts already has
/// for this host (LIBSSH2_METHOD_HOSTKEY).
void prefer_known_hostkey_algorithms(LIBSSH2_SESSION* s, const HostKeyTarget& t);

/// After the handshake. On success `recorded` describes a key accept-new
/// added ("" when the key was already known).
Status verify_host_key(LIBSSH2_SESSION* s, const HostKeyTarget& t, std::string* recorded);

}  // namespace rw::ssh
