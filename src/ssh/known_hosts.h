#pragma once
// known_hosts text, as OpenSSH writes it: parsing lines, formatting new
// entries, fingerprints, host key algorithm order. Pure logic; the check
// against a server's key (through libssh2_knownhost_*) is in host_key.cc.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace rw::ssh {

struct KnownHostsLine {
  std::string marker;      ///< "", "@revoked" or "@cert-authority"
  std::string hosts;       ///< host field as written: "a,b", "[h]:2222", "|1|salt|hash"
  std::string key_type;    ///< "ssh-ed25519", "ecdsa-sha2-nistp256", ...
  std::string key_base64;  ///< the key blob, base64
};

/// Parses one line. nullopt for blank lines and comments; an error for a line
/// that is neither (too few fields, unknown marker).
Result<std::optional<KnownHostsLine>> parse_known_hosts_line(std::string_view line);

/// The host field OpenSSH uses for host:port: "host" for 22, "[host]:port" otherwise.
std::string known_hosts_host_field(const std::string& host, int port);

/// One line to append for a newly accepted key, with trailing newline.
std::string format_known_hosts_line(const std::string& host, int port, const std::string& key_type,
                                    const std::string& key_base64);

/// Removes every plain entry for `host`:`port` from known_hosts file `file`
/// (a guest made again gets a new host key). A missing file is success.
Status forget_host(const std::string& file, const std::string& host, int port);

/// Makes `public_key` ("type base64 [comment]") the one entry for
/// `host`:`port` in known_hosts file `file` (created 0600 if missing).
Status trust_host(const std::string& file, const std::string& host, int port, const std::string& public_key);

/// Standard base64 with padding (known_hosts keys), or without (fingerprints).
std::string base64_encode(std::string_view raw, bool pad = true);

/// "SHA256:<base64, no padding>" from a 32-byte SHA-256 digest, as ssh-keygen -l prints.
std::string sha256_fingerprint(std::string_view digest);

/// The algorithm names libssh2 1.10 can verify, in the order we prefer them.
const std::vector<std::string>& verifiable_hostkey_algorithms();

/// The LIBSSH2_METHOD_HOSTKEY preference: the algorithms known_hosts already
/// has for this host first (so a host known by its ed25519 key is not asked
/// for its ecdsa key), then the rest; only names in `supported`.
std::string hostkey_method_preference(const std::vector<std::string>& supported,
                                      const std::vector<std::string>& known_for_host);

/// ~/.ssh/known_hosts of the current user ($HOME, else the passwd entry).
std::string default_known_hosts_path();

}  // namespace rw::ssh
