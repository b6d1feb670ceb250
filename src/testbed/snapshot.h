#pragma once
// Snapshots of testbed guests: libvirt internal snapshots (kept inside the
// guests' qcow2 disks, memory included while a guest runs), of one guest or
// of every guest of a testbed at once. Only our guests are touched.

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "testbed/virt.h"

namespace rw::testbed {

struct SnapshotInfo {
  std::string guest;  ///< the plan's name, e.g. web-1
  std::string name;
  int64_t created = 0;  ///< seconds since the epoch
  std::string state;    ///< the guest's state when it was taken: running, paused, shutoff
};

/// The snapshot XML for `snap` of a guest whose domain XML is `domain_xml`:
/// writable disks internal, read-only ones (the seed) left out.
std::string snapshot_definition(const std::string& snap, const std::string& domain_xml);

/// Takes internal snapshot `snap` of guest `guest`. One of that name
/// already there is an error.
Status create_snapshot(const Virt& host, const std::string& testbed, const std::string& guest,
                       const std::string& snap);

/// Reverts guest `guest` to `snap` and leaves it running.
Status revert_snapshot(const Virt& host, const std::string& testbed, const std::string& guest,
                       const std::string& snap);

/// Deletes `snap` of `guest`; missing is success (false).
Result<bool> delete_snapshot(const Virt& host, const std::string& testbed, const std::string& guest,
                             const std::string& snap);

/// Every guest at once, so the set is consistent: pause all, snapshot each,
/// resume all. On a failure the snapshots taken are deleted again, and
/// every guest that was paused here is resumed.
Status snapshot_all(const Virt& host, const std::string& testbed, const std::vector<std::string>& guests,
                    const std::string& snap);

/// The snapshots of testbed `testbed`'s guests, by guest then creation.
Result<std::vector<SnapshotInfo>> list_snapshots(const Virt& host, const std::string& testbed);

}  // namespace rw::testbed
