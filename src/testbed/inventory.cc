#include "testbed/inventory.h"

#include "testbed/domain.h"
#include "testbed/network.h"
#include "testbed/volume.h"

namespace rw::testbed {

const char* to_string(Object::Kind k) {
  switch (k) {
    case Object::Kind::Guest: return "guest";
    case Object::Kind::Network: return "network";
    case Object::Kind::Pool: return "pool";
  }
  return "?";
}

Result<std::vector<Object>> inventory(const Virt& host, const std::string& testbed) {
  std::vector<Object> out;
  RW_ASSIGN(std::vector<Owner> guests, owned_guests(host, testbed));
  for (auto& g : guests) out.push_back({Object::Kind::Guest, g.testbed, g.object});
  RW_ASSIGN(std::vector<Owner> nets, owned_networks(host, testbed));
  for (auto& n : nets) out.push_back({Object::Kind::Network, n.testbed, n.object});
  RW_ASSIGN(std::vector<std::string> pools, testbeds_with_pools(host));
  for (auto& p : pools)
    if (testbed.empty() || p == testbed) out.push_back({Object::Kind::Pool, p, ""});
  return out;
}

Result<bool> remove_object(const Virt& host, const Object& o) {
  switch (o.kind) {
    case Object::Kind::Guest: return remove_guest(host, o.testbed, o.name);
    case Object::Kind::Network: return remove_network(host, o.testbed, o.name);
    case Object::Kind::Pool: return remove_pool(host, o.testbed);
  }
  return err("unknown object kind");
}

}  // namespace rw::testbed
