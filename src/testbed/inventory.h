#pragma once
// What runwarden made on a libvirt host, found by its tags (guests,
// networks) and its naming scheme (one pool per testbed), and its removal
// in the order that works: guests, then networks, then pools.

#include <string>
#include <vector>

#include "common/result.h"
#include "testbed/virt.h"

namespace rw::testbed {

struct Object {
  enum class Kind { Guest, Network, Pool };
  Kind kind = Kind::Guest;
  std::string testbed;
  std::string name;  ///< the plan's name; empty for a pool
};
const char* to_string(Object::Kind k);

/// Every object of `testbed` on `host` (of every testbed when empty),
/// guests first, then networks, then pools.
Result<std::vector<Object>> inventory(const Virt& host, const std::string& testbed);

/// Removes `o` from `host`; true if it was there.
Result<bool> remove_object(const Virt& host, const Object& o);

}  // namespace rw::testbed
