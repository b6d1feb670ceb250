#include "testbed/diff.h"

#include <algorithm>
#include <map>
#include <set>

#include "testbed/domain.h"
#include "testbed/names.h"
#include "testbed/network.h"
#include "testbed/up.h"
#include "testbed/volume.h"

namespace rw::testbed {
namespace {

/// Each <block ...>...</block> (or self-closed) of `xml`, in order.
std::vector<std::string_view> blocks(std::string_view xml, std::string_view element) {
  std::vector<std::string_view> out;
  const std::string open = "<" + std::string(element) + " ";
  const std::string close = "</" + std::string(element) + ">";
  for (size_t a = xml.find(open); a != std::string_view::npos; a = xml.find(open, a + 1)) {
    size_t gt = xml.find('>', a);
    if (gt == std::string_view::npos) break;
    size_t end = xml[gt - 1] == '/' ? gt + 1 : xml.find(close, gt);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(a, end - a));
  }
  return out;
}

std::string attr(std::string_view xml, std::string_view element, std::string_view name) {
  return xml_attr(xml, element, name).value_or("");
}

/// Memory in MiB from <memory unit='KiB'>N</memory> (libvirt always answers in KiB).
std::string memory_mib(std::string_view xml) {
  const std::string unit = attr(xml, "memory", "unit");
  const std::string v = xml_text(xml, "memory");
  if (v.empty()) return "";
  const unsigned long long n = std::stoull(v);
  if (unit == "MiB") return std::to_string(n);
  if (unit == "GiB") return std::to_string(n * 1024);
  return std::to_string(n / 1024);  // KiB, libvirt's default
}

void compare(std::vector<FieldDrift>& out, const std::string& field, const std::string& want, const std::string& have) {
  if (want != have) out.push_back({field, want, have});
}

}  // namespace

std::vector<FieldDrift> network_fields(const std::string& want, const std::string& have) {
  std::vector<FieldDrift> out;
  auto mode = [](const std::string& x) {
    std::string m = attr(x, "forward", "mode");
    return m.empty() ? std::string("isolated") : m;
  };
  auto subnet = [](const std::string& x) { return attr(x, "ip", "address") + "/" + attr(x, "ip", "prefix"); };
  auto hosts = [](const std::string& x) {
    std::vector<std::string> hs;
    for (auto h : blocks(x, "host")) hs.push_back(attr(h, "host", "mac") + "=" + attr(h, "host", "ip"));
    std::sort(hs.begin(), hs.end());
    std::string s;
    for (const auto& h : hs) s += (s.empty() ? "" : ", ") + h;
    return s;
  };
  compare(out, "mode", mode(want), mode(have));
  compare(out, "bridge", attr(want, "bridge", "name"), attr(have, "bridge", "name"));
  compare(out, "subnet", subnet(want), subnet(have));
  compare(out, "mtu", attr(want, "mtu", "size"), attr(have, "mtu", "size"));
  compare(out, "reservations", hosts(want), hosts(have));
  return out;
}

std::vector<FieldDrift> guest_fields(const std::string& want, const std::string& have) {
  std::vector<FieldDrift> out;
  auto nics = [](const std::string& x) {
    std::string s;
    for (auto n : blocks(x, "interface"))
      s += (s.empty() ? "" : ", ") + attr(n, "mac", "address") + "@" + attr(n, "source", "network");
    return s;
  };
  compare(out, "cpus", xml_text(want, "vcpu"), xml_text(have, "vcpu"));
  compare(out, "memory_mib", memory_mib(want), memory_mib(have));
  compare(out, "nics", nics(want), nics(have));
  compare(out, "kernel", xml_text(want, "kernel"), xml_text(have, "kernel"));
  return out;
}

Result<std::vector<Drift>> diff(const Virt& host, const Testbed& tb) {
  std::vector<Drift> out;
  auto holder_of = [&](const std::optional<Owner>& o) {
    return o ? "testbed " + o->testbed + (o->object.empty() ? "" : " (" + o->object + ")") : std::string("nobody");
  };
  auto mine = [&](const std::optional<Owner>& o, const std::string& name) {
    return o && o->testbed == tb.id && o->object == name;
  };

  // Networks.
  std::set<std::string> wanted_nets;
  for (const auto& n : networks_with_reservations(tb)) {
    wanted_nets.insert(n.name);
    Drift d{"network", n.name, "in-sync", "", {}};
    RW_ASSIGN(NetworkPtr net, host.find_network(libvirt_name(Owner{tb.id, n.name})));
    if (!net) {
      d.status = "missing";
    } else {
      RW_ASSIGN(std::string xml, network_xml(net.get()));
      auto tag = owner_of(xml);
      if (!mine(tag, n.name)) {
        d.status = "conflicting";
        d.holder = holder_of(tag);
      } else {
        d.fields = network_fields(network_definition(tb.id, n), xml);
        if (!d.fields.empty()) d.status = "changed";
      }
    }
    out.push_back(std::move(d));
  }
  RW_ASSIGN(std::vector<Owner> nets, owned_networks(host, tb.id));
  for (const auto& n : nets)
    if (!wanted_nets.count(n.object)) out.push_back({"network", n.object, "extra", "", {}});

  // Guests (a golden's build VM is transient: it is not wanted once sealed).
  std::set<std::string> wanted_guests;
  for (const auto& g : tb.guests)
    for (const auto& name : g.instances) {
      wanted_guests.insert(name);
      Drift d{"guest", name, "in-sync", "", {}};
      RW_ASSIGN(DomainPtr dom, host.find_domain(libvirt_name(Owner{tb.id, name})));
      if (!dom) {
        d.status = "missing";
      } else {
        RW_ASSIGN(std::string xml, take_string(virDomainGetXMLDesc(dom.get(), VIR_DOMAIN_XML_INACTIVE), "read guest " + name));
        auto tag = owner_of(xml);
        if (!mine(tag, name)) {
          d.status = "conflicting";
          d.holder = holder_of(tag);
        } else {
          GuestSpec s;
          s.name = name;
          s.vcpus = g.vcpus;
          s.memory_mib = g.memory_mib;
          s.kernel = g.kernel;
          for (size_t i = 0; i < g.networks.size(); ++i)
            s.nics.push_back({libvirt_name({tb.id, g.networks[i]}), nic_mac(tb.id, g, name, i), 0});
          d.fields = guest_fields(domain_definition(tb.id, s, "qemu"), xml);
          if (!d.fields.empty()) d.status = "changed";
        }
      }
      out.push_back(std::move(d));
    }
  RW_ASSIGN(std::vector<Owner> guests, owned_guests(host, tb.id));
  for (const auto& g : guests)
    if (!wanted_guests.count(g.object)) out.push_back({"guest", g.object, "extra", "", {}});

  // The pool and its volumes.
  RW_ASSIGN(PoolPtr pool, host.find_pool(pool_name(tb.id)));
  out.push_back({"pool", pool_name(tb.id), pool ? "in-sync" : "missing", "", {}});
  std::set<std::string> wanted_vols;
  for (const auto& g : tb.goldens) {
    wanted_vols.insert({golden_volume(g.name), sealed_marker(g.name)});
    // Its build VM's seed, where it is built (a copy has no build VM).
    for (const auto& name : g.instances) wanted_vols.insert(name + ".seed");
  }
  for (const auto& g : tb.guests)
    for (const auto& name : g.instances) {
      wanted_vols.insert({name + ".qcow2", name + ".seed"});
      for (size_t d = 0; d < g.data_disks.size(); ++d) wanted_vols.insert(data_volume(name, d));
    }
  std::set<std::string> have_vols;
  if (pool) {
    if (virStoragePoolIsActive(pool.get()) == 1) (void)virStoragePoolRefresh(pool.get(), 0);
    virStorageVolPtr* vols = nullptr;
    int n = virStoragePoolListAllVolumes(pool.get(), &vols, 0);
    if (n < 0) return last_virt_error("list the volumes of " + pool_name(tb.id)).error;
    for (int i = 0; i < n; ++i) {
      have_vols.insert(virStorageVolGetName(vols[i]));
      virStorageVolFree(vols[i]);
    }
    std::free(vols);
  }
  for (const auto& v : wanted_vols) out.push_back({"volume", v, have_vols.count(v) ? "in-sync" : "missing", "", {}});
  for (const auto& v : have_vols)
    if (!wanted_vols.count(v) && v.rfind("run-", 0) != 0) out.push_back({"volume", v, "extra", "", {}});
  return out;
}

}  // namespace rw::testbed
