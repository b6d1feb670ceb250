#pragma once
// A qcow2 overlay written by us: the few clusters `qemu-img create -f qcow2
// -b BACKING -F FORMAT` would write for an empty overlay, as bytes. A linked
// clone is then a small raw volume uploaded through the libvirt API, instead
// of a qcow2 volume that libvirtd's directory pool makes by running qemu-img
// once per clone.

#include <cstdint>
#include <string>

#include "common/result.h"

namespace rw::testbed {

/// Cluster size of the overlays we write (qemu's default).
inline constexpr uint64_t kQcow2ClusterSize = 64 * 1024;

/// An empty qcow2 (version 3) image of virtual size `size` whose every
/// cluster is read from `backing` (a path on the host) in `backing_format`
/// (qcow2 or raw, written in the image so qemu never probes it): a header
/// with the backing file's name and format, a refcount table and block, and
/// an empty L1 table, 4 clusters in all. With `backing` and its format
/// empty: a blank image (a guest's data disk). Errors: a backing name longer than
/// qemu reads (1023 bytes), a size whose L1 table needs more than a cluster
/// (over 4 TiB).
Result<std::string> qcow2_overlay(uint64_t size, const std::string& backing, const std::string& backing_format);

}  // namespace rw::testbed
