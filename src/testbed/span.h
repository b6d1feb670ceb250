#pragma once
// A testbed across several hypervisors (`hosts: [hv1, hv2]`): what each
// host gets, the VXLAN links that join the parts of a network, and the
// copies of golden images.
//
// A network spans every host: on the first it is the usual libvirt network
// (gateway .1, DHCP with every guest's reservation, NAT if asked); on each
// other host it is a bridge with that host's address at the top of the
// subnet, no DHCP, no forwarding. Each host's bridge (Linux, or Open
// vSwitch for `switch: ovs`) gets a VXLAN port
// (id and name hashed from testbed and network, UDP 4789) that floods to
// every other host, so guests on all hosts share one L2 segment and lease
// from the first host. Goldens are built on the first host and streamed to
// the others through the libvirt API; the overlay refers to its base image
// by path, which must exist on every host.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "testbed/spec.h"
#include "testbed/virt.h"

namespace rw::testbed {

/// UDP port of the testbeds' VXLAN links (IANA's).
inline constexpr int kVxlanPort = 4789;

/// The part of `tb` on host `k` (an index into tb.hosts; 0 when there are
/// none): its guests by placement, every network as part k of a span over
/// all hosts with every guest's DHCP reservation, and the goldens: all on
/// the first host, which builds them; on another, those its guests are
/// clones of (copies, copy_golden(); without instances: no build VM there).
Testbed on_host(const Testbed& tb, size_t k);

/// The VXLAN network identifier of network `network` of `testbed`: 24 bits
/// of a hash, never 0.
uint32_t vxlan_id(const std::string& testbed, const std::string& network);

/// A /bin/sh script for host `k` (run as root over its SSH) that makes each
/// network's VXLAN link exist, sets its MTU, floods to every other host,
/// and makes it a port of the network's bridge. Running it again changes
/// nothing. Empty when the testbed has fewer than two hosts.
std::string vxlan_ensure_script(const Testbed& tb, size_t k);

/// A /bin/sh script that deletes the VXLAN links of `tb`'s networks that
/// exist, printing "removed VXLAN link NAME" for each. Missing is success.
std::string vxlan_remove_script(const Testbed& tb);

/// The external-ids key on an Open vSwitch bridge naming its testbed.
inline constexpr const char* kOvsTag = "runwarden-testbed";

/// A /bin/sh script for host `k` (run as root, over its SSH or on the
/// controller) that makes each `switch: ovs` network's Open vSwitch bridge
/// exist, tagged with the testbed, with host k's address on the network
/// (part k, see NetworkSpec::bridge_address) and its MTU; the kernel
/// datapath where the openvswitch module is loaded, else the userspace one.
/// A bridge of that name tagged otherwise is refused. Running it again
/// changes nothing. Empty when no network is on Open vSwitch.
std::string ovs_ensure_script(const Testbed& tb, size_t k);

/// A /bin/sh script that deletes the Open vSwitch bridges tagged with
/// `testbed` (with their ports), printing "removed Open vSwitch bridge
/// NAME" for each. None, or no Open vSwitch on the host, is success.
std::string ovs_remove_script(const std::string& testbed);

/// What runwarden makes on a host outside libvirt: an Open vSwitch bridge
/// ("ovs") or a VXLAN link ("link"), and the testbed (build) its tag names.
struct HostObject {
  std::string kind, name, testbed;
};

/// A /bin/sh script printing a host's HostObjects, one "KIND NAME BUILD"
/// line each, found by their tags (a link's alias, a bridge's external-ids).
std::string host_leftovers_script();

/// The HostObjects in that script's output; lines that are not ours
/// (names other than interface_name()'s) are skipped.
std::vector<HostObject> parse_host_leftovers(std::string_view out);

/// A /bin/sh script deleting `objs`, printing "removed ..." for each.
std::string host_remove_script(const std::vector<HostObject>& objs);

/// Makes golden `name` (built and sealed on `from`) exist on `to`: its
/// overlay streamed across through the libvirt API, then marked sealed.
/// A copy marked sealed already is kept; one cut short is made again.
/// `to`'s pool must exist. Returns true if it copied.
Result<bool> copy_golden(const Virt& from, const Virt& to, const std::string& testbed, const std::string& name);

}  // namespace rw::testbed
