#include "testbed/span.h"

#include <algorithm>

#include "testbed/names.h"
#include "testbed/up.h"
#include "testbed/volume.h"

namespace rw::testbed {

Testbed on_host(const Testbed& tb, size_t k) {
  Testbed t = tb;
  // Every guest's reservation goes to the network's home part, wherever
  // the guest runs.
  t.networks = networks_with_reservations(tb);
  const int span = int(std::max<size_t>(tb.hosts.size(), 1));
  for (auto& n : t.networks) {
    n.span = span;
    n.part = int(k);
  }
  if (tb.hosts.size() < 2) return t;
  const std::string& here = tb.hosts[k].name;
  t.guests.clear();
  for (const auto& g : tb.guests) {
    GuestGroup mine = g;
    mine.instances.clear();
    for (const auto& name : g.instances) {
      auto at = g.placement.find(name);
      if (at != g.placement.end() && at->second == here) mine.instances.push_back(name);
    }
    if (!mine.instances.empty()) t.guests.push_back(std::move(mine));
  }
  // The first host builds every golden; the others hold copies of the
  // ones their guests are clones of.
  if (k != 0) {
    std::erase_if(t.goldens, [&](const GuestGroup& gold) {
      return std::none_of(t.guests.begin(), t.guests.end(), [&](const GuestGroup& g) { return g.golden == gold.name; });
    });
    for (auto& gold : t.goldens) gold.instances.clear();  // a copy: no build VM here
  }
  return t;
}

uint32_t vxlan_id(const std::string& testbed, const std::string& network) {
  return uint32_t(stable_hash(testbed + "/" + network) % 0xFFFFFFu) + 1;
}

std::string vxlan_ensure_script(const Testbed& tb, size_t k) {
  if (tb.hosts.size() < 2) return "";
  // vx LINK BRIDGE ID MTU REMOTE...: a link of another id under our name is
  // not ours (a hash collision), and is left alone.
  std::string s =
      "set -e\n"
      "vx() {\n"
      "  l=$1 b=$2 id=$3 mtu=$4; shift 4\n"
      "  if ip link show dev \"$l\" >/dev/null 2>&1; then\n"
      "    ip -d link show dev \"$l\" | grep -q \"vxlan id $id \" ||"
      " { echo \"$l exists and is not VXLAN $id\" >&2; exit 1; }\n"
      "  else\n"
      "    ip link add \"$l\" mtu \"$mtu\" type vxlan id \"$id\" dstport " + std::to_string(kVxlanPort) + "\n"
      "  fi\n"
      "  ip link set dev \"$l\" mtu \"$mtu\"\n"
      "  for r in \"$@\"; do\n"
      "    bridge fdb show dev \"$l\" | grep -q \" dst $r \" ||"
      " bridge fdb append 00:00:00:00:00:00 dev \"$l\" dst \"$r\"\n"
      "  done\n"
      "  ip link set dev \"$l\" master \"$b\" up\n"
      "}\n";
  for (const auto& n : tb.networks) {
    const Owner o{tb.id, n.name};
    s += "vx " + interface_name('x', o) + " " + interface_name('b', o) + " " + std::to_string(vxlan_id(tb.id, n.name)) +
         " " + std::to_string(n.mtu > 0 ? n.mtu : 1450);
    for (size_t j = 0; j < tb.hosts.size(); ++j)
      if (j != k) s += " " + tb.hosts[j].address;
    s += "\n";
  }
  return s;
}

std::string vxlan_remove_script(const Testbed& tb) {
  std::string links;
  for (const auto& n : tb.networks) links += " " + interface_name('x', Owner{tb.id, n.name});
  return "for l in" + links +
         "; do\n"
         "  if ip link show dev \"$l\" >/dev/null 2>&1; then ip link del dev \"$l\"; echo \"removed VXLAN link $l\"; fi\n"
         "done\n";
}

Result<bool> copy_golden(const Virt& from, const Virt& to, const std::string& testbed, const std::string& name) {
  RW_ASSIGN(PoolPtr dst, to.find_pool(pool_name(testbed)));
  if (!dst) return err("golden " + name + ": the testbed's pool is not on " + to.uri());
  RW_ASSIGN(VolPtr have, find_volume(dst.get(), sealed_marker(name)));
  if (have) return false;
  RW_ASSIGN(PoolPtr src_pool, from.find_pool(pool_name(testbed)));
  if (!src_pool) return err("golden " + name + ": the testbed's pool is not on " + from.uri());
  RW_ASSIGN(VolPtr sealed, find_volume(src_pool.get(), sealed_marker(name)));
  RW_ASSIGN(VolPtr src, find_volume(src_pool.get(), golden_volume(name)));
  if (!sealed || !src)
    return err("golden " + name + " is not made on " + from.uri() + " yet (the testbed-golden stage makes it)");
  RW_TRY(copy_volume(from, src.get(), to, dst.get(), golden_volume(name)));
  RW_TRY(ensure_uploaded(to, dst.get(), sealed_marker(name), std::string(512, '\0')));
  return true;
}

}  // namespace rw::testbed
