#pragma once
// Testbed networks on one libvirt host: the XML we define, and the ensure
// and remove steps. Every step looks the network up by name and checks our
// ownership tag first, so running it again (a resumed runner) changes
// nothing, and nothing that is not ours is ever touched.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/result.h"
#include "testbed/names.h"
#include "testbed/virt.h"

namespace rw::testbed {

struct DhcpHost {
  std::string mac;   ///< "52:54:00:..."
  std::string ip;    ///< inside the subnet
  std::string name;  ///< guest name, optional
};

struct NetworkSpec {
  enum class Mode { Isolated, Nat };
  std::string name;  ///< the plan's name for it
  Mode mode = Mode::Isolated;
  Subnet subnet;
  bool dhcp = true;  ///< hand out the range gateway+9 .. end of the subnet
  std::vector<DhcpHost> hosts;
  int mtu = 0;  ///< 0: the bridge's default
  /// An Open vSwitch bridge (made on the host by ovs_ensure_script, not by
  /// libvirt): the network is libvirt's view of it (forward mode bridge,
  /// virtualport openvswitch); no DHCP, no NAT, guests' addresses static.
  bool ovs = false;
  /// A network across `span` hosts, as defined on host `part` (0-based):
  /// part 0 has the gateway (.1), DHCP and NAT; part k > 0 is a bridge
  /// with the host's own address at the top of the subnet (last - k + 1),
  /// no DHCP and no forwarding. VXLAN joins the bridges (span > 1).
  int span = 1;
  int part = 0;
  /// The address host `part` has on the bridge.
  std::string bridge_address() const;
};

/// The network XML for `spec` owned by testbed `testbed`: gateway at the
/// subnet's first address, DNS off (nothing is forwarded off the host), the
/// bridge named by interface_name('b', ...), our tag in <metadata>.
std::string network_definition(const std::string& testbed, const NetworkSpec& spec, const std::string& run = "");

struct EnsureResult {
  std::string libvirt_name;
  std::string bridge;
  bool created = false;  ///< defined by this call (false: found, ours)
  bool started = false;  ///< started by this call
};

/// Makes network `spec` of `testbed` exist and run on `host`. A network of
/// that name that is not ours is an error, as is a subnet that overlaps
/// another network of the host. A network defined here that fails to start
/// is undefined again: a failure leaves nothing behind.
Result<EnsureResult> ensure_network(const Virt& host, const std::string& testbed, const NetworkSpec& spec,
                                    const std::string& run = "");

/// Stops and undefines network `name` of `testbed`. Missing is success; a
/// network that is not ours, or that guests still use, is refused.
/// Returns true if something was removed.
Result<bool> remove_network(const Virt& host, const std::string& testbed, const std::string& name);

/// The DHCP leases of network `name` of `testbed` on `host` (the network's
/// home part): MAC -> IPv4, for guests on any host of a network across hosts.
Result<std::map<std::string, std::string>> network_leases(const Virt& host, const std::string& testbed,
                                                          const std::string& name);

/// The networks on `host` tagged by `testbed` (every tagged one when
/// `testbed` is empty), as their owners.
Result<std::vector<Owner>> owned_networks(const Virt& host, const std::string& testbed);

}  // namespace rw::testbed
