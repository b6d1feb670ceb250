#pragma once
// IPv4 subnets: parsing "10.77.0.0/24", overlap checks, host addresses.

#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"

namespace rw {

/// An IPv4 subnet: network address and prefix length.
struct Subnet {
  uint32_t network = 0;  ///< host byte order, host bits zero
  int prefix = 0;
  bool overlaps(const Subnet& o) const;
  /// The n-th address of the subnet, dotted.
  std::string address(uint32_t n) const;
  /// Last usable host number (the broadcast address minus one).
  uint32_t last_host() const;
  std::string to_string() const;
};

/// "10.77.0.1" for an address in host byte order.
std::string dotted(uint32_t addr);
/// The netmask of a prefix length, host byte order.
uint32_t prefix_mask(int prefix);

/// Parses a dotted IPv4 address ("10.0.0.2"), host byte order.
std::optional<uint32_t> parse_ipv4(const std::string& text);

/// Parses "10.77.0.0/24" (host bits must be zero; prefix 8..30).
Result<Subnet> parse_subnet(const std::string& text);

}  // namespace rw
