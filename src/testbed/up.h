#pragma once
// up: makes a whole testbed exist on its host, each step an ensure, so a
// resumed or repeated `up` creates nothing twice; down: removes it all.

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "testbed/domain.h"
#include "testbed/spec.h"
#include "testbed/virt.h"
#include "testbed/volume.h"

namespace rw::testbed {

struct GuestUp {
  std::string name;
  std::string libvirt_name;
  std::vector<std::string> addresses;  ///< one IPv4 per NIC, in NIC order
};

struct UpReport {
  std::vector<std::string> created;   ///< "network lab", "volume web-1.qcow2", ...
  std::vector<std::string> replaced;  ///< an earlier run's leftovers, removed first
  std::vector<GuestUp> guests;
};

using Progress = std::function<void(const std::string&)>;

/// Networks, pool, clone and seed volumes, guests; then waits until every
/// NIC of every guest has an address, or `tb.up_timeout`, or `*cancel`.
/// Seed disks are written by `write_seed` (upload() unless a test says otherwise).
Result<UpReport> up(const Virt& host, const Testbed& tb, const std::atomic<bool>* cancel, const Progress& progress,
                    const UploadFn& write_seed = upload);

/// The parts of up() for a testbed across hosts (span.h), each host's part
/// in turn: its networks, pool and run mark;
Result<PoolPtr> prepare_host(const Virt& host, const Testbed& tb, UpReport& rep, const Progress& progress,
                             const UploadFn& write = upload);
/// then its clones, seeds and guests in that pool, started (not waited for);
Result<std::vector<GuestSpec>> make_guests(const Virt& host, virStoragePoolPtr pool, const Testbed& tb,
                                           const std::atomic<bool>* cancel, UpReport& rep,
                                           const UploadFn& write_seed = upload);
/// then, for the guests of every host, until each NIC has its lease from
/// the networks' DHCP on `home` (the first host).
Result<std::vector<GuestUp>> wait_for_leases(const Virt& home, const Testbed& tb, const std::vector<GuestSpec>& specs,
                                             const std::atomic<bool>* cancel, const Progress& progress);

/// A golden image's build VM, booted: transient, so it lives only as long
/// as the connection it was started on.
struct GoldenBoot {
  bool sealed = false;  ///< the golden was made already: nothing was started
  DomainPtr dom;
  GuestUp vm;
};

/// The networks and pool, then golden `name`'s disk (an overlay of its
/// image) and seed, and its build VM started and holding an address on
/// every NIC. A golden sealed before is left as it is; an unsealed one is a
/// build cut short and is started again from its image.
Result<GoldenBoot> boot_golden(const Virt& host, const Testbed& tb, const std::string& name,
                               const std::atomic<bool>* cancel, const Progress& progress,
                               const UploadFn& write_seed = upload);

/// Waits for golden `name`'s build VM to power off (its seal steps end with
/// a poweroff; ACPI is asked too), destroys it after `timeout`, then marks
/// the golden sealed: guests may now be its clones.
Status seal_golden(const Virt& host, const Testbed& tb, const std::string& name, Millis timeout,
                   const std::atomic<bool>* cancel, const UploadFn& write = upload);

/// Volume names in a testbed's pool: golden `name`'s disk, and the mark
/// that it is sealed.
std::string golden_volume(const std::string& name);
std::string sealed_marker(const std::string& name);

/// The testbed's networks with the DHCP reservations its guests and
/// goldens ask for: what `up` defines.
std::vector<NetworkSpec> networks_with_reservations(const Testbed& tb);

/// The volume that marks a testbed's pool as made by run `run`.
std::string run_marker(const std::string& run);

/// Removes every guest, network and pool of testbed `id` on `host`.
/// Returns how many objects were removed.
Result<int> down(const Virt& host, const std::string& id);

}  // namespace rw::testbed
