#pragma once
// Testbed storage on one libvirt host: one directory pool per testbed
// (named rw-<testbed>, in its own directory), holding the golden overlays,
// the linked clones and the seed disks. Volumes carry no metadata, so the
// pool's name is their ownership tag: `gc` finds a testbed's volumes by it,
// and removing the pool removes them all.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "testbed/virt.h"

namespace rw::testbed {

/// Volumes of golden images start with this; their clones are removed first.
inline constexpr const char* kGoldenPrefix = "golden-";

/// "rw-<testbed>": the pool of a testbed.
std::string pool_name(const std::string& testbed);

/// Makes the testbed's pool exist and run, its directory under
/// `images_dir` (a path on the host). A pool of that name elsewhere is an
/// error.
Result<PoolPtr> ensure_pool(const Virt& host, const std::string& testbed, const std::string& images_dir);

/// The volume XML of a qcow2 overlay of `backing` (a path on the host) in
/// format `backing_format` (qcow2 or raw): the format is always explicit,
/// so qemu never probes it.
std::string overlay_definition(const std::string& name, uint64_t capacity, const std::string& backing,
                               const std::string& backing_format);

/// Makes volume `name` exist in `pool` as an overlay of `backing`.
/// `capacity` 0 takes the backing volume's size (it must then be a volume
/// libvirt knows). Returns the volume and whether this call created it.
struct EnsuredVolume {
  VolPtr vol;
  std::string path;
  bool created = false;
};
/// Writes `bytes` into `vol` from offset 0 through the libvirt connection,
/// so remote hosts work the same as local ones.
Status upload(const Virt& host, virStorageVolPtr vol, const std::string& bytes);
using UploadFn = std::function<Status(const Virt&, virStorageVolPtr, const std::string&)>;

/// On a qemu host the overlay is a raw volume holding a qcow2 header we
/// write (qcow2.h), put there by `write`; a volume of that name that libvirt
/// does not read as a qcow2 overlay (made, never written) is made again.
/// With `backing` empty: a blank qcow2 disk of `capacity` bytes.
Result<EnsuredVolume> ensure_overlay(const Virt& host, virStoragePoolPtr pool, const std::string& name,
                                     const std::string& backing, const std::string& backing_format,
                                     uint64_t capacity = 0, const UploadFn& write = upload);

/// Makes raw volume `name` in `pool` hold exactly `bytes` (a seed disk),
/// written by `write` (upload() unless a test says otherwise).
Result<EnsuredVolume> ensure_uploaded(const Virt& host, virStoragePoolPtr pool, const std::string& name,
                                      const std::string& bytes, const UploadFn& write = upload);

/// Makes raw volume `name` in `pool` on `to` hold the bytes of volume `src`
/// on `from` (the file as it is: a qcow2 overlay stays one), streamed from
/// one connection to the other a MiB at a time. A volume of that name is
/// replaced; a failed copy is deleted again.
Status copy_volume(const Virt& from, virStorageVolPtr src, const Virt& to, virStoragePoolPtr pool,
                   const std::string& name);

/// Deletes every volume of the testbed's pool, then the pool and its
/// directory. Missing is success; returns true if something was removed.
Result<bool> remove_pool(const Virt& host, const std::string& testbed);

/// Deletes volume `name` of `pool`; missing is success (false).
Result<bool> remove_volume(virStoragePoolPtr pool, const std::string& name);

/// The testbeds that have a pool on `host`.
Result<std::vector<std::string>> testbeds_with_pools(const Virt& host);

/// Path of a volume on its host.
Result<std::string> volume_path(virStorageVolPtr vol);

}  // namespace rw::testbed
