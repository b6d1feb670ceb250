#include "testbed/domain.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace rw::testbed {
namespace {

Result<std::string> domain_xml(virDomainPtr d) {
  return take_string(virDomainGetXMLDesc(d, 0), std::string("describe guest ") + virDomainGetName(d));
}

}  // namespace

Result<DomainPtr> find_ours(const Virt& host, const std::string& testbed, const std::string& name) {
  const std::string lv = libvirt_name(Owner{testbed, name});
  RW_ASSIGN(DomainPtr dom, host.find_domain(lv));
  if (!dom) return dom;
  RW_ASSIGN(std::string xml, domain_xml(dom.get()));
  auto tag = owner_of(xml);
  if (!tag || tag->testbed != testbed || tag->object != name)
    return err("guest " + lv + " on " + host.uri() + " already exists and belongs to " +
               (tag ? "testbed " + tag->testbed : std::string("nobody (not made by runwarden)")) +
               ": not touched");
  return dom;
}

namespace {

bool is_running(virDomainPtr d) { return virDomainIsActive(d) == 1; }

}  // namespace

std::string mac_for(const Owner& guest, int index) {
  uint64_t h = stable_hash(guest.testbed + "/" + guest.object + "#" + std::to_string(index));
  char buf[18];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", unsigned(h & 0xff), unsigned((h >> 8) & 0xff),
                unsigned((h >> 16) & 0xff));
  return buf;
}

std::string uuid_for(const Owner& guest) {
  const std::string id = guest.testbed + "/" + guest.object;
  uint64_t hi = stable_hash(id), lo = stable_hash(id, 0x9e3779b97f4a7c15ull);
  hi = (hi & ~0xf000ull) | 0x4000ull;                 // version 4 layout
  lo = (lo & ~(0xc0ull << 56)) | (0x80ull << 56);     // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(hi >> 32), unsigned((hi >> 16) & 0xffff),
                unsigned(hi & 0xffff), unsigned(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

Result<std::string> domain_type(const Virt& host, Accel accel) {
  if (accel == Accel::Tcg) return std::string("qemu");
  char* caps = virConnectGetDomainCapabilities(host.get(), nullptr, "x86_64", nullptr, "kvm", 0);
  if (caps) {
    std::free(caps);
    return std::string("kvm");
  }
  if (accel == Accel::Kvm)
    return err("guest needs KVM, which " + host.uri() + " does not offer: " + last_virt_error("").error.message +
               " (use accel: tcg or auto)");
  return std::string("qemu");
}

std::string domain_definition(const std::string& testbed, const GuestSpec& spec, const std::string& type,
                              const std::string& run) {
  const Owner owner{testbed, spec.name, run};
  std::string x = "<domain type='" + xml_escape(type) + "'>\n";
  x += "  <name>" + xml_escape(libvirt_name(owner)) + "</name>\n";
  x += "  <uuid>" + uuid_for(owner) + "</uuid>\n";
  x += "  <metadata>\n    " + owner_element(owner) + "\n  </metadata>\n";
  x += "  <memory unit='MiB'>" + std::to_string(spec.memory_mib) + "</memory>\n";
  x += "  <vcpu>" + std::to_string(spec.vcpus) + "</vcpu>\n";
  x += "  <os>\n    <type arch='x86_64'>hvm</type>\n";
  if (!spec.kernel.empty()) {
    x += "    <kernel>" + xml_escape(spec.kernel) + "</kernel>\n";
    if (!spec.initrd.empty()) x += "    <initrd>" + xml_escape(spec.initrd) + "</initrd>\n";
    if (!spec.cmdline.empty()) x += "    <cmdline>" + xml_escape(spec.cmdline) + "</cmdline>\n";
  } else {
    x += "    <boot dev='hd'/>\n";
  }
  x += "  </os>\n  <features><acpi/></features>\n";
  x += "  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n";
  x += "  <devices>\n";
  char dev = 'a';
  auto disk = [&](const std::string& path, const std::string& format, bool readonly) {
    x += "    <disk type='file' device='disk'>\n      <driver name='qemu' type='" + xml_escape(format) + "'/>\n";
    x += "      <source file='" + xml_escape(path) + "'/>\n      <target dev='vd" + std::string(1, dev++) +
         "' bus='virtio'/>\n";
    if (readonly) x += "      <readonly/>\n";
    x += "    </disk>\n";
  };
  for (const auto& d : spec.disks) disk(d.path, d.format, false);
  if (!spec.seed.empty()) disk(spec.seed, "raw", true);
  for (const auto& n : spec.nics) {
    x += "    <interface type='network'>\n      <source network='" + xml_escape(n.network) + "'/>\n";
    x += "      <mac address='" + xml_escape(n.mac) + "'/>\n      <model type='virtio'/>\n";
    if (n.mtu > 0) x += "      <mtu size='" + std::to_string(n.mtu) + "'/>\n";
    if (n.full_checksums)
      x += "      <driver>\n        <host csum='off' gso='off' tso4='off' tso6='off' ecn='off' ufo='off'/>\n"
           "      </driver>\n";
    x += "    </interface>\n";
  }
  // The console is kept in libvirt's log directory on the host, for a
  // guest that never answers.
  x += "    <serial type='pty'>\n      <log file='/var/log/libvirt/qemu/" + xml_escape(libvirt_name(owner)) +
       "-console.log' append='off'/>\n    </serial>\n";
  x += "    <console type='pty'/>\n    <memballoon model='none'/>\n";
  x += "  </devices>\n</domain>\n";
  return x;
}

Result<EnsuredGuest> ensure_guest(const Virt& host, const std::string& testbed, const GuestSpec& spec,
                                  const std::string& type, const std::string& run) {
  EnsuredGuest out;
  out.libvirt_name = libvirt_name(Owner{testbed, spec.name});
  RW_ASSIGN(DomainPtr dom, find_ours(host, testbed, spec.name));
  if (!dom) {
    const std::string xml = domain_definition(testbed, spec, type, run);
    virDomainPtr made = virDomainDefineXML(host.get(), xml.c_str());
    if (!made) return last_virt_error("define guest " + out.libvirt_name + " on " + host.uri()).error;
    dom.reset(made);
    out.created = true;
  }
  if (!is_running(dom.get())) {
    if (virDomainCreate(dom.get()) < 0) {
      auto e = last_virt_error("start guest " + out.libvirt_name + " on " + host.uri());
      if (out.created) (void)virDomainUndefineFlags(dom.get(), VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA);
      return e.error;
    }
    out.started = true;
  }
  return out;
}

Result<DomainPtr> start_transient(const Virt& host, const std::string& testbed, const GuestSpec& spec,
                                  const std::string& type, const std::string& run) {
  RW_TRY(remove_guest(host, testbed, spec.name));
  const std::string xml = domain_definition(testbed, spec, type, run);
  virDomainPtr made = virDomainCreateXML(host.get(), xml.c_str(), VIR_DOMAIN_START_AUTODESTROY);
  // A driver without auto-destroy (libvirt's test driver) still gets a
  // transient domain: it carries our tag, so down and gc find it.
  if (!made && virGetLastErrorCode() == VIR_ERR_INVALID_ARG) made = virDomainCreateXML(host.get(), xml.c_str(), 0);
  if (!made)
    return last_virt_error("start guest " + libvirt_name(Owner{testbed, spec.name}) + " on " + host.uri()).error;
  return DomainPtr(made);
}

Result<bool> remove_guest(const Virt& host, const std::string& testbed, const std::string& name) {
  RW_ASSIGN(DomainPtr dom, find_ours(host, testbed, name));
  if (!dom) return false;
  const std::string lv = virDomainGetName(dom.get());
  if (is_running(dom.get()) && virDomainDestroy(dom.get()) < 0)
    return last_virt_error("stop guest " + lv + " on " + host.uri()).error;
  // Snapshots' metadata would otherwise block the undefine. Guests boot
  // without UEFI, so there is no NVRAM to remove.
  if (virDomainIsPersistent(dom.get()) == 1 &&
      virDomainUndefineFlags(dom.get(), VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE) < 0)
    return last_virt_error("undefine guest " + lv + " on " + host.uri()).error;
  return true;
}

Status power_off(const Virt& host, const std::string& testbed, const std::string& name) {
  RW_ASSIGN(DomainPtr dom, find_ours(host, testbed, name));
  if (!dom) return err("guest " + libvirt_name(Owner{testbed, name}) + " does not exist on " + host.uri());
  if (is_running(dom.get()) && virDomainDestroy(dom.get()) < 0)
    return last_virt_error(std::string("power off guest ") + virDomainGetName(dom.get())).error;
  return {};
}

Result<std::string> guest_state(const Virt& host, const std::string& testbed, const std::string& name) {
  auto dom = find_ours(host, testbed, name);
  if (!dom || !*dom) return std::string("absent");
  int state = 0, reason = 0;
  if (virDomainGetState(dom->get(), &state, &reason, 0) < 0)
    return last_virt_error("read the state of guest " + libvirt_name(Owner{testbed, name})).error;
  switch (state) {
    case VIR_DOMAIN_RUNNING: return std::string("running");
    case VIR_DOMAIN_BLOCKED: return std::string("blocked");
    case VIR_DOMAIN_PAUSED: return std::string("paused");
    case VIR_DOMAIN_SHUTDOWN: return std::string("shutting down");
    case VIR_DOMAIN_SHUTOFF: return std::string("shut off");
    case VIR_DOMAIN_CRASHED: return std::string("crashed");
    case VIR_DOMAIN_PMSUSPENDED: return std::string("suspended");
    default: return std::string("unknown");
  }
}

Result<std::vector<Owner>> owned_guests(const Virt& host, const std::string& testbed) {
  RW_ASSIGN(std::vector<DomainPtr> all, host.all_domains());
  std::vector<Owner> out;
  for (const auto& d : all) {
    RW_ASSIGN(std::string xml, domain_xml(d.get()));
    auto tag = owner_of(xml);
    if (tag && (testbed.empty() || tag->testbed == testbed)) out.push_back(*tag);
  }
  return out;
}

Result<std::map<std::string, std::string>> leased_addresses(const Virt& host, const std::string& testbed,
                                                            const std::string& name) {
  RW_ASSIGN(DomainPtr dom, find_ours(host, testbed, name));
  if (!dom) return err("guest " + libvirt_name(Owner{testbed, name}) + " does not exist on " + host.uri());
  virDomainInterfacePtr* ifaces = nullptr;
  int n = virDomainInterfaceAddresses(dom.get(), &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
  if (n < 0) return last_virt_error("read the DHCP leases of guest " + libvirt_name(Owner{testbed, name})).error;
  std::map<std::string, std::string> out;
  for (int i = 0; i < n; ++i) {
    for (unsigned j = 0; j < ifaces[i]->naddrs; ++j)
      if (ifaces[i]->addrs[j].type == VIR_IP_ADDR_TYPE_IPV4 && ifaces[i]->hwaddr)
        out.emplace(ifaces[i]->hwaddr, ifaces[i]->addrs[j].addr);
    virDomainInterfaceFree(ifaces[i]);
  }
  std::free(ifaces);
  return out;
}

}  // namespace rw::testbed
