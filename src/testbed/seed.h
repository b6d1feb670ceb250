#pragma once
// The NoCloud seed disk a guest reads at boot: a small FAT12 image labelled
// CIDATA holding meta-data, user-data and (optionally) network-config, as
// cloud-init (and the test guest's /init) expect. Written here byte by byte,
// so a controller needs no genisoimage or mkfs, and the image can be uploaded
// to any libvirt host through the API.

#include <map>
#include <vector>
#include <string>

#include "common/result.h"
#include "testbed/domain.h"
#include "testbed/hostkey.h"

namespace rw::testbed {

/// A FAT12 image with volume label CIDATA and one file per entry of `files`
/// (name -> content) in its root directory, long names included. Names are
/// 1..64 characters of [A-Za-z0-9._-]; at most 16 files, 4 MiB in all.
Result<std::string> fat_seed_image(const std::map<std::string, std::string>& files);

/// cloud-init NoCloud files for a guest: meta-data (instance-id, hostname),
/// user-data (#cloud-config with the SSH keys, and root login by key). With
/// `host_key`, the guest's own SSH host key (ssh_keys:, no others made).
std::map<std::string, std::string> nocloud_files(const std::string& instance_id, const std::string& hostname,
                                                 const std::vector<std::string>& ssh_keys,
                                                 const std::string& extra_user_data = "",
                                                 const HostKey* host_key = nullptr);

/// cloud-init network-config (version 2) for a guest's NICs in order: each
/// matched by MAC, with its static `address` ("10.77.0.11/24") or DHCP.
/// Empty when every NIC leases (cloud-init's default then applies).
std::string network_config(const std::vector<NicSpec>& nics);

}  // namespace rw::testbed
