#pragma once
// Testbed guests on one libvirt host: the domain XML we define and the
// ensure, remove and address steps. Like networks, a guest is found by name
// and checked for our ownership tag before anything touches it.

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "testbed/names.h"
#include "testbed/virt.h"

namespace rw::testbed {

enum class Accel { Auto, Kvm, Tcg };

struct DiskSpec {
  std::string path;    ///< on the host
  std::string format;  ///< qcow2 | raw
};

struct NicSpec {
  std::string network;  ///< libvirt network name
  std::string mac;
  int mtu = 0;
  /// "10.77.0.11/24": set by the guest from its seed (no DHCP on the
  /// network); known without a lease. Empty: leased.
  std::string address;
  /// The guest computes its own checksums and segments (no virtio
  /// offloads): Open vSwitch's userspace datapath forwards a guest's
  /// partially checksummed packets as they are, and TCP then fails.
  bool full_checksums = false;
};

struct GuestSpec {
  std::string name;  ///< the plan's name, e.g. web-1
  int vcpus = 1;
  int memory_mib = 512;
  /// Direct kernel boot when `kernel` is set (paths on the host).
  std::string kernel, initrd, cmdline;
  std::vector<DiskSpec> disks;  ///< the first one boots
  std::string seed;             ///< raw NoCloud seed disk, attached read-only
  std::vector<NicSpec> nics;
};

/// "52:54:00:xx:xx:xx" for NIC `index` of a guest: stable for a resumed
/// runner, distinct per guest, testbed and NIC.
std::string mac_for(const Owner& guest, int index);

/// A stable UUID per guest: clones of one golden never share it (with an
/// empty /etc/machine-id, systemd takes the machine id from it).
std::string uuid_for(const Owner& guest);

/// "qemu" (TCG) or "kvm" for `accel` on `host`: auto takes KVM when the
/// host's libvirt offers it for x86_64.
Result<std::string> domain_type(const Virt& host, Accel accel);

/// The domain XML of guest `spec` of `testbed`, of libvirt type `type`.
std::string domain_definition(const std::string& testbed, const GuestSpec& spec, const std::string& type,
                              const std::string& run = "");

struct EnsuredGuest {
  std::string libvirt_name;
  bool created = false;
  bool started = false;
};

/// Makes guest `spec` of `testbed` exist and run. A domain of that name
/// that is not ours is an error. A guest defined here that fails to start
/// is undefined again.
Result<EnsuredGuest> ensure_guest(const Virt& host, const std::string& testbed, const GuestSpec& spec,
                                  const std::string& type, const std::string& run = "");

/// Starts guest `spec` of `testbed` as a transient domain that libvirt
/// destroys when `host`'s connection closes (a golden image's build VM: a
/// crashed or cancelled runner leaves it nowhere). One of ours by that name
/// is removed first; one that is not ours is an error.
Result<DomainPtr> start_transient(const Virt& host, const std::string& testbed, const GuestSpec& spec,
                                  const std::string& type, const std::string& run = "");

/// Our guest `name` of `testbed`, nullptr when missing; an error when a
/// domain of that name is not ours (untagged, or another testbed's).
Result<DomainPtr> find_ours(const Virt& host, const std::string& testbed, const std::string& name);

/// Stops (destroys) and undefines guest `name` of `testbed`, snapshots'
/// metadata included. Missing is success; a domain that is not ours is
/// refused. Returns true if something was removed.
Result<bool> remove_guest(const Virt& host, const std::string& testbed, const std::string& name);

/// Powers a guest off (destroy) if it runs; missing is an error.
Status power_off(const Virt& host, const std::string& testbed, const std::string& name);

/// "running", "shut off", "paused", ... for our guest `name`, "absent" when
/// it does not exist (or is not ours).
Result<std::string> guest_state(const Virt& host, const std::string& testbed, const std::string& name);

/// The guests on `host` tagged by `testbed` (every tagged one when empty).
Result<std::vector<Owner>> owned_guests(const Virt& host, const std::string& testbed);

/// The IPv4 address of each NIC (by MAC) that has a DHCP lease on its
/// libvirt network. A NIC without one is absent: the guest is reachable
/// only when every NIC is in the map.
Result<std::map<std::string, std::string>> leased_addresses(const Virt& host, const std::string& testbed,
                                                            const std::string& name);

}  // namespace rw::testbed
