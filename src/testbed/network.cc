#include "testbed/network.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

namespace rw::testbed {
namespace {

/// The subnets a network's XML declares (<ip address= prefix=|netmask=>).
std::vector<Subnet> declared_subnets(const std::string& xml) {
  std::vector<Subnet> out;
  for (size_t at = xml.find("<ip "); at != std::string::npos; at = xml.find("<ip ", at + 1)) {
    std::string_view rest(xml.data() + at, xml.size() - at);
    auto addr = xml_attr(rest, "ip", "address");
    if (!addr) continue;
    in_addr a{};
    if (inet_pton(AF_INET, addr->c_str(), &a) != 1) continue;  // IPv6
    int prefix = -1;
    if (auto p = xml_attr(rest, "ip", "prefix")) prefix = std::atoi(p->c_str());
    else if (auto m = xml_attr(rest, "ip", "netmask")) {
      in_addr mk{};
      if (inet_pton(AF_INET, m->c_str(), &mk) == 1) prefix = __builtin_popcount(ntohl(mk.s_addr));
    }
    if (prefix < 0 || prefix > 32) continue;
    out.push_back(Subnet{ntohl(a.s_addr) & prefix_mask(prefix), prefix});
  }
  return out;
}

bool is_active(virNetworkPtr n) { return virNetworkIsActive(n) == 1; }

/// The owner tag of `n`.
Result<std::optional<Owner>> tag_of(virNetworkPtr n) {
  auto xml = network_xml(n);
  if (!xml) return xml.error();
  return owner_of(*xml);
}

std::string owner_text(const std::optional<Owner>& o) {
  return o ? "testbed " + o->testbed : "nobody (not made by runwarden)";
}

}  // namespace


std::string NetworkSpec::bridge_address() const {
  return subnet.address(part == 0 ? 1 : subnet.last_host() - uint32_t(part) + 1);
}

std::string network_definition(const std::string& testbed, const NetworkSpec& spec, const std::string& run) {
  const Owner owner{testbed, spec.name, run};
  std::string x = "<network>\n  <name>" + xml_escape(libvirt_name(owner)) + "</name>\n";
  x += "  <metadata>\n    " + owner_element(owner) + "\n  </metadata>\n";
  const bool home = spec.part == 0;
  if (spec.ovs) {
    // The bridge, its address and the VXLAN port are the host's (made
    // before); libvirt only plugs guests in.
    x += "  <forward mode='bridge'/>\n";
    x += "  <bridge name='" + interface_name('b', owner) + "'/>\n";
    x += "  <virtualport type='openvswitch'/>\n";
    // libvirt takes no <mtu> here: each guest NIC carries it (NicSpec).
    return x + "</network>\n";
  }
  if (home && spec.mode == NetworkSpec::Mode::Nat) x += "  <forward mode='nat'/>\n";
  x += "  <bridge name='" + interface_name('b', owner) + "' stp='off' delay='0'/>\n";
  if (spec.mtu > 0) x += "  <mtu size='" + std::to_string(spec.mtu) + "'/>\n";
  x += "  <dns enable='no'/>\n";
  const int prefix = spec.subnet.prefix;
  x += "  <ip address='" + spec.bridge_address() + "' prefix='" + std::to_string(prefix) + "'>\n";
  if (home && (spec.dhcp || !spec.hosts.empty())) {
    x += "    <dhcp>\n";
    // The other hosts' bridge addresses are at the top: not leased.
    const uint32_t last = spec.subnet.last_host() - uint32_t(std::max(spec.span, 1) - 1);
    if (spec.dhcp) {
      const uint32_t first = last >= 20 ? 10 : 2;
      x += "      <range start='" + spec.subnet.address(first) + "' end='" + spec.subnet.address(last) + "'/>\n";
    }
    for (const auto& h : spec.hosts) {
      x += "      <host mac='" + xml_escape(h.mac) + "'";
      if (!h.name.empty()) x += " name='" + xml_escape(h.name) + "'";
      x += " ip='" + xml_escape(h.ip) + "'/>\n";
    }
    x += "    </dhcp>\n";
  }
  x += "  </ip>\n</network>\n";
  return x;
}

Result<EnsureResult> ensure_network(const Virt& host, const std::string& testbed, const NetworkSpec& spec,
                                    const std::string& run) {
  EnsureResult r;
  const Owner owner{testbed, spec.name};
  r.libvirt_name = libvirt_name(owner);
  r.bridge = interface_name('b', owner);
  RW_ASSIGN(NetworkPtr net, host.find_network(r.libvirt_name));
  if (net) {
    RW_ASSIGN(std::optional<Owner> tag, tag_of(net.get()));
    if (!tag || tag->testbed != testbed || tag->object != spec.name)
      return err("network " + r.libvirt_name + " on " + host.uri() + " already exists and belongs to " +
                 owner_text(tag) + ": remove it or rename the network");
  } else {
    // A new subnet must not overlap any network the host already has.
    RW_ASSIGN(std::vector<NetworkPtr> all, host.all_networks());
    for (const auto& other : all) {
      auto xml = network_xml(other.get());
      if (!xml) return xml.error();
      for (const auto& s : declared_subnets(*xml))
        if (s.overlaps(spec.subnet))
          return err("network " + spec.name + ": subnet " + spec.subnet.to_string() + " overlaps " + s.to_string() +
                     " of network " + virNetworkGetName(other.get()) + " on " + host.uri());
    }
    const std::string xml = network_definition(testbed, spec, run);
    virNetworkPtr made = virNetworkDefineXML(host.get(), xml.c_str());
    if (!made) return last_virt_error("define network " + r.libvirt_name + " on " + host.uri()).error;
    net.reset(made);
    r.created = true;
  }
  if (!is_active(net.get())) {
    if (virNetworkCreate(net.get()) < 0) {
      auto e = last_virt_error("start network " + r.libvirt_name + " on " + host.uri());
      if (r.created) (void)virNetworkUndefine(net.get());
      return e.error;
    }
    r.started = true;
  }
  return r;
}

Result<bool> remove_network(const Virt& host, const std::string& testbed, const std::string& name) {
  const std::string lv = libvirt_name(Owner{testbed, name});
  RW_ASSIGN(NetworkPtr net, host.find_network(lv));
  if (!net) return false;
  RW_ASSIGN(std::optional<Owner> tag, tag_of(net.get()));
  if (!tag || tag->testbed != testbed)
    return err("network " + lv + " on " + host.uri() + " belongs to " + owner_text(tag) + ": not removed");
  if (is_active(net.get())) {
    auto live = network_xml(net.get());
    if (!live) return live.error();
    if (auto used = xml_attr(*live, "network", "connections"); used && std::atoi(used->c_str()) > 0)
      return err("network " + lv + " on " + host.uri() + " is still used by " + *used +
                 " guest interface(s): not removed");
    if (virNetworkDestroy(net.get()) < 0)
      return last_virt_error("stop network " + lv + " on " + host.uri()).error;
  }
  if (virNetworkIsPersistent(net.get()) == 1 && virNetworkUndefine(net.get()) < 0)
    return last_virt_error("undefine network " + lv + " on " + host.uri()).error;
  return true;
}

Result<std::map<std::string, std::string>> network_leases(const Virt& host, const std::string& testbed,
                                                          const std::string& name) {
  const std::string lv = libvirt_name(Owner{testbed, name});
  RW_ASSIGN(NetworkPtr net, host.find_network(lv));
  if (!net) return err("network " + lv + " does not exist on " + host.uri());
  virNetworkDHCPLeasePtr* leases = nullptr;
  int n = virNetworkGetDHCPLeases(net.get(), nullptr, &leases, 0);
  if (n < 0) return last_virt_error("read the DHCP leases of network " + lv + " on " + host.uri()).error;
  std::map<std::string, std::string> out;
  for (int i = 0; i < n; ++i) {
    if (leases[i]->type == VIR_IP_ADDR_TYPE_IPV4 && leases[i]->mac && leases[i]->ipaddr)
      out.emplace(leases[i]->mac, leases[i]->ipaddr);
    virNetworkDHCPLeaseFree(leases[i]);
  }
  std::free(leases);
  return out;
}

Result<std::vector<Owner>> owned_networks(const Virt& host, const std::string& testbed) {
  RW_ASSIGN(std::vector<NetworkPtr> all, host.all_networks());
  std::vector<Owner> out;
  for (const auto& n : all) {
    RW_ASSIGN(std::optional<Owner> tag, tag_of(n.get()));
    if (tag && (testbed.empty() || tag->testbed == testbed)) out.push_back(*tag);
  }
  return out;
}

}  // namespace rw::testbed
