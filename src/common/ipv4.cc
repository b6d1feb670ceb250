#include "common/ipv4.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

namespace rw {

std::string dotted(uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

uint32_t prefix_mask(int prefix) { return prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix); }

bool Subnet::overlaps(const Subnet& o) const {
  uint32_t m = prefix_mask(std::min(prefix, o.prefix));
  return (network & m) == (o.network & m);
}

std::string Subnet::address(uint32_t n) const { return dotted(network + n); }

uint32_t Subnet::last_host() const { return (~prefix_mask(prefix)) - 1; }

std::string Subnet::to_string() const { return dotted(network) + "/" + std::to_string(prefix); }

std::optional<uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

Result<Subnet> parse_subnet(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return err("subnet '" + text + "' needs a prefix length, e.g. 10.77.0.0/24");
  in_addr a{};
  if (inet_pton(AF_INET, text.substr(0, slash).c_str(), &a) != 1)
    return err("subnet '" + text + "': '" + text.substr(0, slash) + "' is not an IPv4 address");
  const std::string p = text.substr(slash + 1);
  char* end = nullptr;
  long prefix = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end || prefix < 8 || prefix > 30)
    return err("subnet '" + text + "': the prefix length must be 8 to 30");
  Subnet s{ntohl(a.s_addr), int(prefix)};
  if (s.network & ~prefix_mask(s.prefix))
    return err("subnet '" + text + "' has host bits set: did you mean " +
               Subnet{s.network & prefix_mask(s.prefix), s.prefix}.to_string() + "?");
  return s;
}

}  // namespace rw
