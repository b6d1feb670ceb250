#include "ssh/host_key.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "common/fd.h"
#include "common/files.h"
#include "ssh/known_hosts.h"

namespace rw::ssh {
namespace {

struct KnownHostsFree {
  void operator()(LIBSSH2_KNOWNHOSTS* k) const { libssh2_knownhost_free(k); }
};
using KnownHostsPtr = std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsFree>;

struct KeyType {
  int hostkey_type;   // LIBSSH2_HOSTKEY_TYPE_*
  int knownhost_mask; // LIBSSH2_KNOWNHOST_KEY_*
  const char* name;
};

constexpr KeyType kKeyTypes[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa"},
    {LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss"},
};

const KeyType* key_type_by_hostkey(int t) {
  for (const auto& k : kKeyTypes)
    if (k.hostkey_type == t) return &k;
  return nullptr;
}

const KeyType* key_type_by_name(const std::string& n) {
  for (const auto& k : kKeyTypes)
    if (n == k.name) return &k;
  return nullptr;
}

struct Loaded {
  KnownHostsPtr kh;
  bool exists = false;
  std::vector<std::string> revoked;  // base64 keys under @revoked
};

// Reads known_hosts line by line: libssh2_knownhost_readfile stops at the
// first line it does not understand (a certificate authority, a key type it
// lacks), which would hide every entry after it.
Result<Loaded> load(LIBSSH2_SESSION* s, const std::string& file) {
  Loaded out;
  out.kh.reset(libssh2_knownhost_init(s));
  if (!out.kh) return err("cannot allocate a known_hosts collection");
  if (!path_exists(file)) return out;
  auto text = read_file(file);
  if (!text) return err("cannot read " + file + ": " + text.error().message);
  out.exists = true;
  size_t pos = 0;
  const std::string& t = *text;
  while (pos < t.size()) {
    size_t nl = t.find('\n', pos);
    if (nl == std::string::npos) nl = t.size();
    std::string line = t.substr(pos, nl - pos);
    pos = nl + 1;
    auto parsed = parse_known_hosts_line(line);
    if (!parsed || !*parsed) continue;
    const KnownHostsLine& l = **parsed;
    if (l.marker == "@revoked") {
      out.revoked.push_back(l.key_base64);
      continue;
    }
    if (!l.marker.empty()) continue;
    // A line libssh2 rejects is skipped, like OpenSSH skips what it cannot parse.
    (void)libssh2_knownhost_readline(out.kh.get(), line.c_str(), line.size(),
                                     LIBSSH2_KNOWNHOST_FILE_OPENSSH);
  }
  return out;
}

Status append_line(const std::string& file, const std::string& line) {
  auto slash = file.rfind('/');
  if (slash != std::string::npos && slash > 0 && !path_exists(file.substr(0, slash))) {
    RW_TRY(make_dirs(file.substr(0, slash), 0700));
  }
  Fd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return sys_err("open " + file, errno);
  // Connections to several new hosts may record keys at the same time.
  while (::flock(fd.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  std::string data = line;
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0) {
    Fd rd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    char last = '\n';
    if (rd.valid() && ::pread(rd.get(), &last, 1, st.st_size - 1) == 1 && last != '\n') data = "\n" + data;
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_err("write " + file, errno);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return sys_err("fsync " + file, errno);
  return {};
}

}  // namespace

HostKeyTarget host_key_target(const Endpoint& ep) {
  HostKeyTarget t;
  t.name = ep.name.empty() ? ep.address : ep.name;
  t.address = ep.address;
  t.lookup_host = ep.host_key_alias.empty() ? ep.address : ep.host_key_alias;
  t.port = ep.port;
  t.file = ep.known_hosts.empty() ? default_known_hosts_path() : ep.known_hosts;
  t.policy = ep.host_key_policy;
  return t;
}

void prefer_known_hostkey_algorithms(LIBSSH2_SESSION* s, const HostKeyTarget& t) {
  auto loaded = load(s, t.file);
  std::vector<std::string> known;
  if (loaded && loaded->exists) {
    // libssh2 (1.9+) compares key types: a dummy key of type X is a
    // "mismatch" exactly when the host has an entry of type X.
    const std::string field = known_hosts_host_field(t.lookup_host, t.port);
    const char dummy[32] = {};
    for (const auto& alg : verifiable_hostkey_algorithms()) {
      const KeyType* k = key_type_by_name(alg);
      if (!k) continue;
      int r = libssh2_knownhost_check(loaded->kh.get(), field.c_str(), dummy, sizeof dummy,
                                      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                          k->knownhost_mask,
                                      nullptr);
      if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH || r == LIBSSH2_KNOWNHOST_CHECK_MATCH) known.push_back(alg);
    }
  }
  const char** algs = nullptr;
  int n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
  std::vector<std::string> supported;
  for (int i = 0; i < n; ++i) supported.emplace_back(algs[i]);
  if (algs) libssh2_free(s, algs);
  std::string pref = hostkey_method_preference(supported, known);
  if (!pref.empty()) libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, pref.c_str());
}

Status verify_host_key(LIBSSH2_SESSION* s, const HostKeyTarget& t, std::string* recorded) {
  size_t len = 0;
  int type = 0;
  const char* key = libssh2_session_hostkey(s, &len, &type);
  if (!key || len == 0) return err("the server sent no host key");
  const KeyType* kt = key_type_by_hostkey(type);
  const std::string type_name = kt ? kt->name : "unknown key type";
  const char* digest = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
  const std::string fp = digest ? sha256_fingerprint(std::string_view(digest, 32)) : "(no fingerprint)";
  const std::string offered = type_name + " " + fp;
  const std::string field = known_hosts_host_field(t.lookup_host, t.port);
  const std::string who = t.name + " (" + t.address + ")";
  if (!kt) return err("the server offered a host key of a type libssh2 cannot check (" + std::to_string(type) + ")");
  if (t.policy != "strict" && t.policy != "accept-new") {
    return err("unknown host_key_policy '" + t.policy + "' (strict or accept-new)");
  }

  RW_ASSIGN(Loaded loaded, load(s, t.file));
  const std::string key_b64 = base64_encode(std::string_view(key, len));
  for (const auto& r : loaded.revoked) {
    if (r == key_b64) {
      return err("host key for " + who + " is marked @revoked in " + t.file + " (" + offered +
                 "); refusing to connect");
    }
  }

  const int plain = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW;
  // Look up exactly the OpenSSH host field: "[h]:2222" must not fall back to
  // plain "h" (a host's port-forwarded guests have keys of their own).
  int r = libssh2_knownhost_check(loaded.kh.get(), field.c_str(), key, len, plain | kt->knownhost_mask, nullptr);
  switch (r) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
      return {};
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
      return err("host key for " + who + " changed: the server offered " + offered + " but " + t.file +
                 " has a different " + type_name + " key for " + field +
                 ". This is a possible man-in-the-middle attack; refusing to connect (even with "
                 "accept-new). If the host was reinstalled, remove the old key with: ssh-keygen -R '" +
                 field + "' -f " + t.file);
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
      break;
    default:
      return err("cannot check the host key against " + t.file);
  }

  // Known under another key type only: treat like a change, a downgrade to a
  // type we do not know for this host must not pass silently.
  if (libssh2_knownhost_check(loaded.kh.get(), field.c_str(), key, len, plain, nullptr) ==
      LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
    return err("host key for " + who + " changed: the server offered " + offered + " but " + t.file +
               " only has keys of other types for " + field +
               ". This is a possible man-in-the-middle attack; refusing to connect. If the host's keys "
               "really changed, remove the old entry (ssh-keygen -R '" + field + "' -f " + t.file +
               ") and add the new key");
  }

  if (t.policy == "strict") {
    std::string why = loaded.exists ? t.file + " has no entry for " + field : t.file + " does not exist";
    return err("host key not known: " + why + " (the server offered " + offered +
               ", host_key_policy is strict). Check the fingerprint on the host (ssh-keygen -lf "
               "/etc/ssh/ssh_host_ed25519_key.pub) and add the key, e.g. ssh-keyscan -p " +
               std::to_string(t.port) + " -t " + type_name + " " + t.address + " >> " + t.file +
               ", or set host_key_policy: accept-new");
  }
  RW_TRY(append_line(t.file, format_known_hosts_line(t.lookup_host, t.port, type_name, key_b64)));
  if (recorded) *recorded = offered + " added to " + t.file;
  return {};
}

}  // namespace rw::ssh
