#pragma once
// SSH host keys made on the controller for testbed guests: each guest gets
// its own through its cloud-init seed (ssh_keys:), and the run's
// known_hosts has it before the guest first answers, so testbed guests are
// checked as strictly as any host.

#include <string>

#include "common/result.h"

namespace rw::testbed {

struct HostKey {
  std::string private_key;  ///< OpenSSH private key file text (PEM-armoured openssh-key-v1); a secret
  std::string public_key;   ///< "ssh-ed25519 AAAA..." (no comment)
};

/// A new Ed25519 key pair from the system's random source.
Result<HostKey> make_host_key(const std::string& comment);

/// The key pair kept in `dir`/<name> and <name>.pub (0600, 0644), made and
/// written there the first time: a resumed runner reuses it, so a guest's
/// seed is the same on every try.
Result<HostKey> load_or_make_host_key(const std::string& dir, const std::string& name);

}  // namespace rw::testbed
