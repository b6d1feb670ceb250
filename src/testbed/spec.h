#pragma once
// A testbed as the plan declares it, resolved: what `up` makes on one
// libvirt host and `down` removes. Parsed from the plan's testbed: section.

#include <cstdint>
#include <string>
#include <vector>

#include "common/duration.h"
#include "testbed/domain.h"
#include "testbed/network.h"

namespace rw::testbed {

/// A base image: a file on the host, qcow2 or raw, never written to.
struct BaseImage {
  std::string name;
  std::string path;
  std::string format = "qcow2";
};

struct GuestNic {
  std::string network;  ///< the plan's network name
  std::string ip;       ///< a DHCP reservation; empty: any lease
};

/// `count` guests named <name>-1..N (or <name> when count is 1 and
/// `numbered` is false), each a linked clone of `image`.
struct GuestGroup {
  std::string name;
  int count = 1;
  bool numbered = false;
  std::string image;  ///< a BaseImage name
  uint64_t disk_bytes = 0;  ///< 0: the image's size
  int vcpus = 1;
  int memory_mib = 512;
  Accel accel = Accel::Auto;
  std::string kernel, initrd, cmdline;  ///< direct kernel boot (paths on the host)
  std::vector<GuestNic> nics;
  std::vector<std::string> ssh_keys;  ///< public keys, put in the seed
  std::string user_data;  ///< extra #cloud-config lines
};

struct Testbed {
  std::string id;  ///< the run's build name: the ownership tag
  std::string uri;
  std::string images_dir = "/var/lib/libvirt/images";
  std::vector<BaseImage> images;
  std::vector<NetworkSpec> networks;
  std::vector<GuestGroup> guests;
  Millis up_timeout{Millis(600'000)};  ///< until every NIC of every guest has an address
};

/// The guest names a group gives, in order.
std::vector<std::string> guest_names(const GuestGroup& g);

}  // namespace rw::testbed
