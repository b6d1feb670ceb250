#pragma once
// up: makes a whole testbed exist on its host, each step an ensure, so a
// resumed or repeated `up` creates nothing twice; down: removes it all.

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
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

/// The volume that marks a testbed's pool as made by run `run`.
std::string run_marker(const std::string& run);

/// Removes every guest, network and pool of testbed `id` on `host`.
/// Returns how many objects were removed.
Result<int> down(const Virt& host, const std::string& id);

}  // namespace rw::testbed
