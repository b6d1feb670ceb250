#include "testbed/snapshot.h"

#include <algorithm>
#include <cstdlib>

#include "testbed/domain.h"
#include "testbed/names.h"

namespace rw::testbed {
namespace {

struct SnapshotFree {
  void operator()(virDomainSnapshotPtr s) const { virDomainSnapshotFree(s); }
};
using SnapshotPtr = std::unique_ptr<virDomainSnapshot, SnapshotFree>;

/// Our guest `guest`; missing, or a domain of that name that is not ours,
/// is an error.
Result<DomainPtr> our_guest(const Virt& host, const std::string& testbed, const std::string& guest) {
  RW_ASSIGN(DomainPtr dom, find_ours(host, testbed, guest));
  if (!dom) return err("guest " + guest + " of testbed " + testbed + " does not exist on " + host.uri());
  return dom;
}

Result<SnapshotPtr> find_snapshot(virDomainPtr dom, const std::string& snap) {
  virDomainSnapshotPtr s = virDomainSnapshotLookupByName(dom, snap.c_str(), 0);
  if (s) return SnapshotPtr(s);
  auto e = last_virt_error("");
  if (e.code == VIR_ERR_NO_DOMAIN_SNAPSHOT) return SnapshotPtr();
  return err("look up snapshot " + snap + " of " + virDomainGetName(dom) + ": " + e.error.message);
}

}  // namespace

std::string snapshot_definition(const std::string& snap, const std::string& domain_xml) {
  std::string disks;
  std::string_view rest = domain_xml;
  for (size_t a; (a = rest.find("<disk ")) != std::string_view::npos;) {
    size_t b = rest.find("</disk>", a);
    if (b == std::string_view::npos) break;
    std::string_view disk = rest.substr(a, b - a);
    rest.remove_prefix(b);
    auto dev = xml_attr(disk, "target", "dev");
    if (!dev) continue;
    const bool ro = disk.find("<readonly/>") != std::string_view::npos;
    disks += "    <disk name='" + xml_escape(*dev) + "' snapshot='" + (ro ? "no" : "internal") + "'/>\n";
  }
  return "<domainsnapshot>\n  <name>" + xml_escape(snap) + "</name>\n  <description>runwarden</description>\n" +
         (disks.empty() ? "" : "  <disks>\n" + disks + "  </disks>\n") + "</domainsnapshot>\n";
}

Status create_snapshot(const Virt& host, const std::string& testbed, const std::string& guest,
                       const std::string& snap) {
  RW_ASSIGN(DomainPtr dom, our_guest(host, testbed, guest));
  RW_ASSIGN(SnapshotPtr old, find_snapshot(dom.get(), snap));
  if (old) return err("guest " + guest + " already has a snapshot named " + snap + " (delete it first)");
  RW_ASSIGN(std::string xml, take_string(virDomainGetXMLDesc(dom.get(), 0), "read guest " + guest));
  const std::string def = snapshot_definition(snap, xml);
  virDomainSnapshotPtr s = virDomainSnapshotCreateXML(dom.get(), def.c_str(), 0);
  if (!s) return last_virt_error("snapshot " + snap + " of guest " + guest).error;
  virDomainSnapshotFree(s);
  return {};
}

Status revert_snapshot(const Virt& host, const std::string& testbed, const std::string& guest,
                       const std::string& snap) {
  RW_ASSIGN(DomainPtr dom, our_guest(host, testbed, guest));
  RW_ASSIGN(SnapshotPtr s, find_snapshot(dom.get(), snap));
  if (!s) return err("guest " + guest + " has no snapshot named " + snap);
  if (virDomainRevertToSnapshot(s.get(), VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING) < 0)
    return last_virt_error("revert guest " + guest + " to snapshot " + snap).error;
  return {};
}

Result<bool> delete_snapshot(const Virt& host, const std::string& testbed, const std::string& guest,
                             const std::string& snap) {
  RW_ASSIGN(DomainPtr dom, our_guest(host, testbed, guest));
  RW_ASSIGN(SnapshotPtr s, find_snapshot(dom.get(), snap));
  if (!s) return false;
  if (virDomainSnapshotDelete(s.get(), 0) < 0)
    return last_virt_error("delete snapshot " + snap + " of guest " + guest).error;
  return true;
}

Status snapshot_all(const Virt& host, const std::string& testbed, const std::vector<std::string>& guests,
                    const std::string& snap) {
  std::vector<DomainPtr> paused;
  std::vector<std::string> taken;
  Status result;
  for (const auto& g : guests) {
    auto dom = our_guest(host, testbed, g);
    if (!dom) {
      result = dom.error();
      break;
    }
    int state = 0;
    if (virDomainGetState(dom->get(), &state, nullptr, 0) == 0 && state == VIR_DOMAIN_RUNNING) {
      if (virDomainSuspend(dom->get()) < 0) {
        result = last_virt_error("pause guest " + g).error;
        break;
      }
      paused.push_back(std::move(*dom));
    }
  }
  if (result)
    for (const auto& g : guests) {
      if (auto s = create_snapshot(host, testbed, g, snap); !s) {
        result = s;
        break;
      }
      taken.push_back(g);
    }
  if (!result)
    for (const auto& g : taken) (void)delete_snapshot(host, testbed, g, snap);
  for (const auto& d : paused)
    if (virDomainResume(d.get()) < 0 && result)
      result = last_virt_error(std::string("resume guest ") + virDomainGetName(d.get())).error;
  return result;
}

Result<std::vector<SnapshotInfo>> list_snapshots(const Virt& host, const std::string& testbed) {
  RW_ASSIGN(std::vector<Owner> guests, owned_guests(host, testbed));
  std::vector<SnapshotInfo> out;
  for (const auto& g : guests) {
    RW_ASSIGN(DomainPtr dom, host.find_domain(libvirt_name(Owner{g.testbed, g.object})));
    if (!dom) continue;
    virDomainSnapshotPtr* snaps = nullptr;
    int n = virDomainListAllSnapshots(dom.get(), &snaps, 0);
    if (n < 0) return last_virt_error("list the snapshots of guest " + g.object).error;
    std::vector<SnapshotPtr> held;
    for (int i = 0; i < n; ++i) held.emplace_back(snaps[i]);
    std::free(snaps);
    for (const auto& s : held) {
      RW_ASSIGN(std::string xml, take_string(virDomainSnapshotGetXMLDesc(s.get(), 0), "read a snapshot"));
      SnapshotInfo info;
      info.guest = g.object;
      info.name = virDomainSnapshotGetName(s.get());
      info.created = std::strtoll(xml_text(xml, "creationTime").c_str(), nullptr, 10);
      info.state = xml_text(xml, "state");
      out.push_back(std::move(info));
    }
  }
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.guest != b.guest ? a.guest < b.guest : a.created != b.created ? a.created < b.created : a.name < b.name;
  });
  return out;
}

}  // namespace rw::testbed
