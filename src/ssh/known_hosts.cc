#include "ssh/known_hosts.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/files.h"
#include "common/text.h"

namespace rw::ssh {
namespace {

// Splits off the next whitespace-separated field.
std::string_view next_field(std::string_view& s) {
  s = trim(s);
  size_t end = 0;
  while (end < s.size() && s[end] != ' ' && s[end] != '\t') ++end;
  std::string_view f = s.substr(0, end);
  s.remove_prefix(end);
  return f;
}

}  // namespace

Result<std::optional<KnownHostsLine>> parse_known_hosts_line(std::string_view line) {
  std::string_view rest = trim(line);
  if (rest.empty() || rest.front() == '#') return std::optional<KnownHostsLine>{};
  KnownHostsLine out;
  std::string_view f = next_field(rest);
  if (!f.empty() && f.front() == '@') {
    if (f != "@revoked" && f != "@cert-authority") {
      return err("unknown marker '" + std::string(f) + "'");
    }
    out.marker = std::string(f);
    f = next_field(rest);
  }
  out.hosts = std::string(f);
  out.key_type = std::string(next_field(rest));
  out.key_base64 = std::string(next_field(rest));
  if (out.hosts.empty() || out.key_type.empty() || out.key_base64.empty()) {
    return err("expected 'hosts keytype key'");
  }
  return std::optional<KnownHostsLine>{std::move(out)};
}

std::string known_hosts_host_field(const std::string& host, int port) {
  if (port == 22) return host;
  return "[" + host + "]:" + std::to_string(port);
}

std::string format_known_hosts_line(const std::string& host, int port, const std::string& key_type,
                                    const std::string& key_base64) {
  return known_hosts_host_field(host, port) + " " + key_type + " " + key_base64 + "\n";
}

Status forget_host(const std::string& file, const std::string& host, int port) {
  if (::access(file.c_str(), F_OK) != 0) return {};
  RW_ASSIGN(std::string text, read_file(file));
  const std::string field = known_hosts_host_field(host, port);
  std::string kept;
  bool dropped = false;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    auto parsed = parse_known_hosts_line(line);
    bool match = false;
    if (parsed.ok() && *parsed && (*parsed)->marker.empty()) {
      std::string_view hosts = (*parsed)->hosts;
      for (size_t a = 0; a <= hosts.size();) {
        size_t b = std::min(hosts.find(',', a), hosts.size());
        match |= hosts.substr(a, b - a) == field;
        a = b + 1;
      }
    }
    if (match) dropped = true;
    else kept.append(line).push_back('\n');
    start = end + 1;
  }
  if (!dropped) return {};
  return write_file_atomic(file, kept, 0600);
}

Status trust_host(const std::string& file, const std::string& host, int port, const std::string& public_key) {
  const size_t sp = public_key.find(' ');
  if (sp == std::string::npos) return err("not a public key line: " + public_key.substr(0, 40));
  const size_t end = public_key.find(' ', sp + 1);
  const std::string type = public_key.substr(0, sp);
  const std::string b64 = public_key.substr(sp + 1, end == std::string::npos ? std::string::npos : end - sp - 1);
  RW_TRY(forget_host(file, host, port));
  std::string text;
  if (::access(file.c_str(), F_OK) == 0) {
    RW_ASSIGN(text, read_file(file));
  }
  if (!text.empty() && text.back() != '\n') text.push_back('\n');
  return write_file_atomic(file, text + format_known_hosts_line(host, port, type, b64), 0600);
}

std::string base64_encode(std::string_view raw, bool pad) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((raw.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(raw[k])); };
  for (; i + 2 < raw.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t left = raw.size() - i;
  if (left == 1) {
    unsigned v = byte(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (left == 2) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

std::string sha256_fingerprint(std::string_view digest) {
  return "SHA256:" + base64_encode(digest, false);
}

const std::vector<std::string>& verifiable_hostkey_algorithms() {
  // No certificates (we do not read @cert-authority) and no ssh-dss.
  static const std::vector<std::string> kAlgorithms = {
      "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"};
  return kAlgorithms;
}

std::string hostkey_method_preference(const std::vector<std::string>& supported,
                                      const std::vector<std::string>& known_for_host) {
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  std::vector<std::string> order;
  for (const auto& a : verifiable_hostkey_algorithms()) {
    if (has(known_for_host, a) && has(supported, a)) order.push_back(a);
  }
  for (const auto& a : verifiable_hostkey_algorithms()) {
    if (!has(order, a) && has(supported, a)) order.push_back(a);
  }
  std::string out;
  for (const auto& a : order) {
    if (!out.empty()) out += ',';
    out += a;
  }
  return out;
}

std::string default_known_hosts_path() {
  const char* home = std::getenv("HOME");
  std::string dir = home && *home ? home : "";
  if (dir.empty()) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(::getuid(), &pw, buf, sizeof buf, &found) == 0 && found && found->pw_dir) {
      dir = found->pw_dir;
    }
  }
  if (dir.empty()) dir = "/root";
  return dir + "/.ssh/known_hosts";
}

}  // namespace rw::ssh
