#include "testbed/span.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "common/shell.h"
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
  // vx LINK BRIDGE ID MTU KIND REMOTE...: a link of another id under our
  // name is not ours (a hash collision), and is left alone. KIND: linux (a
  // port of the bridge) or ovs (a port of the Open vSwitch bridge).
  std::string s =
      "set -e\n"
      "tbid=" + shell_quote(tb.id) + "\n"
      "vx() {\n"
      "  l=$1 b=$2 id=$3 mtu=$4 kind=$5; shift 5\n"
      "  if ip link show dev \"$l\" >/dev/null 2>&1; then\n"
      "    ip -d link show dev \"$l\" | grep -q \"vxlan id $id \" ||"
      " { echo \"$l exists and is not VXLAN $id\" >&2; exit 1; }\n"
      "  else\n"
      "    ip link add \"$l\" mtu \"$mtu\" type vxlan id \"$id\" dstport " + std::to_string(kVxlanPort) + "\n"
      "  fi\n"
      "  ip link set dev \"$l\" mtu \"$mtu\" alias \"" + std::string(kOvsTag) + "=$tbid\"\n"
      "  for r in \"$@\"; do\n"
      "    bridge fdb show dev \"$l\" | grep -q \" dst $r \" ||"
      " bridge fdb append 00:00:00:00:00:00 dev \"$l\" dst \"$r\"\n"
      "  done\n"
      "  if [ \"$kind\" = ovs ]; then\n"
      "    ip link set dev \"$l\" up\n"
      "    ovs-vsctl --timeout=30 --may-exist add-port \"$b\" \"$l\"\n"
      "  else\n"
      "    ip link set dev \"$l\" master \"$b\" up\n"
      "  fi\n"
      "}\n";
  for (const auto& n : tb.networks) {
    const Owner o{tb.id, n.name};
    s += "vx " + interface_name('x', o) + " " + interface_name('b', o) + " " + std::to_string(vxlan_id(tb.id, n.name)) +
         " " + std::to_string(n.mtu > 0 ? n.mtu : 1450) + (n.ovs ? " ovs" : " linux");
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

namespace {

/// Where ovs-vsctl finds the Open vSwitch database, in the scripts' shell:
/// no socket, no Open vSwitch running.
constexpr const char* kOvsDb = "${OVS_RUNDIR:-/var/run/openvswitch}/db.sock";

}  // namespace

std::string ovs_ensure_script(const Testbed& tb, size_t k) {
  std::string calls;
  for (const auto& n : tb.networks) {
    if (!n.ovs) continue;
    NetworkSpec part = n;
    part.span = int(std::max<size_t>(tb.hosts.size(), 1));
    part.part = int(k);
    calls += "ovsbr " + interface_name('b', Owner{tb.id, n.name}) + " " + shell_quote(tb.id) + " " +
             part.bridge_address() + "/" + std::to_string(n.subnet.prefix) + " " + std::to_string(n.mtu) + "\n";
  }
  if (calls.empty()) return "";
  // ovsbr BRIDGE TESTBED ADDRESS/PREFIX MTU: the bridge tagged with its
  // testbed (external-ids), a bridge of that name tagged otherwise is not
  // ours; the userspace datapath where the kernel has no openvswitch module.
  return "set -e\n"
         "command -v ovs-vsctl >/dev/null ||"
         " { echo \"ovs-vsctl not found: switch: ovs needs openvswitch-switch on this host\" >&2; exit 1; }\n"
         "[ -S \"" + std::string(kOvsDb) + "\" ] ||"
         " { echo \"Open vSwitch is not running on this host (no " + std::string(kOvsDb) + ")\" >&2; exit 1; }\n"
         "ovsbr() {\n"
         "  b=$1 tb=$2 addr=$3 mtu=$4\n"
         "  if ovs-vsctl --timeout=30 br-exists \"$b\"; then\n"
         "    have=$(ovs-vsctl --timeout=30 --if-exists get bridge \"$b\" external-ids:" + std::string(kOvsTag) + " | tr -d '\"')\n"
         "    [ \"$have\" = \"$tb\" ] ||"
         " { echo \"Open vSwitch bridge $b exists and belongs to ${have:-nobody (not made by runwarden)}\" >&2; exit 1; }\n"
         "  else\n"
         "    dp=system; [ -d /sys/module/openvswitch ] || dp=netdev\n"
         "    ovs-vsctl --timeout=30 add-br \"$b\" -- set bridge \"$b\" datapath_type=$dp"
         " external-ids:" + std::string(kOvsTag) + "=\"\\\"$tb\\\"\"\n"
         "  fi\n"
         "  [ \"$mtu\" = 0 ] || ovs-vsctl --timeout=30 set interface \"$b\" mtu_request=\"$mtu\"\n"
         "  ip addr replace \"$addr\" dev \"$b\"\n"
         "  ip link set dev \"$b\" up\n"
         "}\n" +
         calls;
}

std::string ovs_remove_script(const std::string& testbed) {
  // Found by their tag, so a crashed run's bridges go too, plan or not.
  return "command -v ovs-vsctl >/dev/null || exit 0\n"
         "[ -S \"" + std::string(kOvsDb) + "\" ] || exit 0\n"
         "set -e\n"
         "for b in $(ovs-vsctl --timeout=30 --bare --columns=name find bridge "
         "external-ids:" + std::string(kOvsTag) + "=" + shell_quote("\"" + testbed + "\"") + "); do\n"
         "  ovs-vsctl --timeout=30 del-br \"$b\"\n"
         "  echo \"removed Open vSwitch bridge $b\"\n"
         "done\n";
}

std::string host_leftovers_script() {
  const std::string tag = kOvsTag;
  // A link's alias ends its one-line form: "... \\    alias TAG=BUILD".
  return "ip -o link show 2>/dev/null | sed -n "
         R"('s/^[0-9]*: \([^:@]*\)[:@].* alias )" + tag + R"(=\([^ \\]*\).*/link \1 \2/p')" "\n"
         "command -v ovs-vsctl >/dev/null || exit 0\n"
         "[ -S \"" + std::string(kOvsDb) + "\" ] || exit 0\n"
         "for b in $(ovs-vsctl --timeout=30 list-br); do\n"
         "  t=$(ovs-vsctl --timeout=30 --if-exists get bridge \"$b\" external-ids:" + tag + " | tr -d '\"')\n"
         "  [ -z \"$t\" ] || echo \"ovs $b $t\"\n"
         "done\n";
}

namespace {

/// rwb/rwx + 12 hex digits: interface_name()'s, the only names the
/// scripts below are given.
bool ours(std::string_view name) {
  return name.size() == 15 && name.substr(0, 2) == "rw" && (name[2] == 'b' || name[2] == 'x') &&
         std::all_of(name.begin() + 3, name.end(), [](char c) { return std::isxdigit(uint8_t(c)) && !std::isupper(uint8_t(c)); });
}

}  // namespace

std::vector<HostObject> parse_host_leftovers(std::string_view out) {
  std::vector<HostObject> objs;
  std::istringstream in{std::string(out)};
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(' '), b = line.find(' ', a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    HostObject o{line.substr(0, a), line.substr(a + 1, b - a - 1), line.substr(b + 1)};
    if ((o.kind == "link" || o.kind == "ovs") && ours(o.name) && !o.testbed.empty()) objs.push_back(std::move(o));
  }
  return objs;
}

std::string host_remove_script(const std::vector<HostObject>& objs) {
  std::string s;
  for (const auto& o : objs) {
    if (!ours(o.name)) continue;
    if (o.kind == "link")
      s += "ip link del dev " + o.name + " && echo \"removed VXLAN link " + o.name + "\"\n";
    else if (o.kind == "ovs")
      s += "ovs-vsctl --timeout=30 del-br " + o.name + " && echo \"removed Open vSwitch bridge " + o.name + "\"\n";
  }
  return s;
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
