#pragma once
// A testbed as the plan declares it, resolved: what `up` makes on one
// libvirt host and `down` removes. Parsed from the plan's testbed: section.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/duration.h"
#include "testbed/domain.h"
#include "testbed/hostkey.h"
#include "testbed/network.h"

namespace rw::testbed {

/// A base image: a file on the host, qcow2 or raw, never written to.
struct BaseImage {
  std::string name;
  std::string path;
  std::string format = "qcow2";
};

/// A group of guests, each a linked clone of `image`, with one NIC per
/// network and an address reserved for it.
struct GuestGroup {
  std::string name;
  std::vector<std::string> instances;  ///< web-1, web-2, ... (or the name alone)
  std::string image;        ///< a BaseImage name, or
  std::string golden;       ///< a golden's name: the instances are its linked clones
  uint64_t disk_bytes = 0;  ///< 0: the image's size
  std::vector<uint64_t> data_disks;  ///< blank qcow2 data disks (bytes), vdb onwards
  int vcpus = 1;
  int memory_mib = 512;
  Accel accel = Accel::Auto;
  std::string kernel, initrd, cmdline;  ///< direct kernel boot (paths on the host)
  std::vector<std::string> networks;    ///< one NIC each, in order
  std::vector<std::string> macs;        ///< per NIC: the plan's MAC, or "" (nic_mac makes one)
  /// Per instance: the name of the Hypervisor it runs on (several hosts).
  std::map<std::string, std::string> placement;
  /// Per instance, per NIC: the address reserved for it (empty: any lease).
  std::map<std::string, std::vector<std::string>> addresses;
  std::vector<std::string> ssh_keys;  ///< public keys, put in the seed
  std::map<std::string, HostKey> host_keys;  ///< per instance: its own SSH host key, put in its seed
  std::string user_data;              ///< extra #cloud-config lines
};

/// The MAC of NIC `nic` of instance `name` of group `g` in testbed
/// `testbed`: the plan's, else one made from the names (mac_for).
inline std::string nic_mac(const std::string& testbed, const GuestGroup& g, const std::string& name, size_t nic) {
  return nic < g.macs.size() && !g.macs[nic].empty() ? g.macs[nic] : mac_for({testbed, name}, int(nic));
}

/// The volume of data disk `d` (0-based) of guest `name`.
inline std::string data_volume(const std::string& name, size_t d) {
  return name + "-data" + std::to_string(d + 1) + ".qcow2";
}

/// One of several hypervisors of a testbed: a plan host, and the address
/// the others send its networks' VXLAN traffic to.
struct Hypervisor {
  std::string name;
  std::string address;
};

struct Testbed {
  std::string id;   ///< the run's build name: the ownership tag
  std::string run;  ///< this run of it (its creation time): older runs' leftovers are replaced
  std::string uri;
  std::string images_dir = "/var/lib/libvirt/images";
  std::vector<BaseImage> images;
  /// Several hosts: networks span them, guests are placed on them (see
  /// span.h). Empty or one: the testbed is on `uri` alone.
  std::vector<Hypervisor> hosts;
  std::vector<NetworkSpec> networks;
  /// Golden images: booted once from `image`, set up, sealed; one
  /// instance each, named like the golden.
  std::vector<GuestGroup> goldens;
  std::vector<GuestGroup> guests;
  Millis up_timeout{Millis(600'000)};  ///< until every NIC of every guest has an address
  int parallel = 4;  ///< clones and guests made at once ($RUNWARDEN_TESTBED_PARALLEL)
};

}  // namespace rw::testbed
