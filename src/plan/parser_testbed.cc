// The plan's testbed: section (docs/testbed.md): images, networks and guest
// groups on one libvirt host. Guests become SSH targets with addresses
// reserved in their networks, and the section compiles into generated stages
// around the user's: testbed-up, testbed-ready, ..., testbed-down.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include "common/ipv4.h"
#include "common/text.h"
#include "plan/parser_impl.h"

namespace rw::plan::detail {
namespace {

constexpr std::string_view kTestbedKeys[] = {"libvirt",  "host",      "hosts",  "images_dir", "teardown", "up_timeout",
                                             "parallel", "host_keys", "images", "networks",   "goldens",  "guests"};
constexpr std::string_view kHostKeyModes[] = {"seed", "learn"};
constexpr std::string_view kImageKeys[] = {"path", "format"};
constexpr std::string_view kNetworkKeys[] = {"subnet", "nat", "mtu", "switch"};
constexpr std::string_view kSwitches[] = {"linux", "ovs"};
constexpr std::string_view kNicKeys[] = {"network", "ip", "mac"};
constexpr std::string_view kTestbedGuestKeys[] = {"count",   "image",    "golden",   "disk",     "cpus",
                                                  "memory",  "accel",    "kernel",   "initrd",   "cmdline",
                                                  "networks", "ssh_key", "user",     "identity", "user_data",
                                                  "host",    "disks"};
/// A golden is one build VM: no count, no golden of its own, and its steps.
constexpr std::string_view kGoldenKeys[] = {"image",   "disk",     "cpus",    "memory",   "accel",
                                            "kernel",  "initrd",   "cmdline", "networks", "ssh_key",
                                            "user",    "identity", "user_data", "setup"};
constexpr std::string_view kFormats[] = {"qcow2", "raw"};
constexpr std::string_view kAccels[] = {"auto", "kvm", "tcg"};
constexpr std::string_view kTeardowns[] = {"always", "on_success", "never"};
constexpr int kMaxCount = 256;
/// Reserved guest addresses start here in every subnet: .1 is the host's,
/// the rest below is left for things the user puts there by hand.
constexpr uint32_t kFirstGuestHost = 10;
/// A network across hosts: what fits in a 1500-byte underlay frame after
/// VXLAN's outer Ethernet, IPv4, UDP and VXLAN headers (50 bytes).
constexpr int kVxlanMtu = 1450;

constexpr const char* kGoldenStage = "testbed-golden";
constexpr const char* kUpStage = "testbed-up";
constexpr const char* kReadyStage = "testbed-ready";
constexpr const char* kDownStage = kTestbedDownStage;

/// "512M", "8G", "1T", "65536K" or a plain number of bytes; binary units,
/// an optional "iB"/"B" after the letter.
std::optional<uint64_t> parse_size(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  std::string unit(p, s.data() + s.size());
  int shift = 0;
  if (!unit.empty()) {
    switch (unit[0]) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return std::nullopt;
    }
    unit.erase(0, 1);
    if (!(unit.empty() || unit == "B" || unit == "iB")) return std::nullopt;
  }
  if (shift && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

bool absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

/// A NIC as a guest's `networks:` gives it: its address ("" reserved in
/// turn, "dhcp", or the first instance's) and MAC ("" made from the name).
struct NicWant {
  std::string ip, mac;
  YAML::Mark ip_mark;
};

/// xx:xx:xx:xx:xx:xx in lower-case hex, unicast (the first octet even).
bool valid_mac(const std::string& m) {
  if (m.size() != 17) return false;
  for (size_t i = 0; i < m.size(); ++i)
    if (i % 3 == 2 ? m[i] != ':' : !std::isxdigit(static_cast<unsigned char>(m[i]))) return false;
  return (std::stoi(m.substr(0, 2), nullptr, 16) & 1) == 0;
}

}  // namespace

void Parser::parse_testbed(const Entry& top) {
  Testbed tb;
  tb.mark = mark_of(top.key_node.Mark());
  auto f = entries(top.value, "testbed", kTestbedKeys);
  if (!f) {
    problem(value_mark(top), "plan: 'testbed' must be a map with images, networks and guests; got " +
                                 what_node(top.value));
    return;
  }
  const std::string ctx = "testbed";
  if (const Entry* e = find(*f, "libvirt")) {
    if (auto v = str(*e, ctx)) tb.libvirt = *v;
  }
  // The hypervisors: plan hosts reached over SSH (libvirt goes through the
  // run's own connection to each, and guests are reached via theirs).
  auto hypervisor = [&](const YAML::Node& node, const std::string& name) {
    auto t = plan_.targets.find(name);
    if (t == plan_.targets.end() || t->second.guest) {
      problem(node.Mark(), ctx + ": host " + quoted(name) + " is not a declared host; declared: " + declared_targets());
    } else if (t->second.local) {
      problem(node.Mark(), ctx + ": host " + quoted(name) +
                               " is the controller; leave 'host' out for a hypervisor on the controller");
    } else if (std::find(tb.hosts.begin(), tb.hosts.end(), name) != tb.hosts.end()) {
      problem(node.Mark(), ctx + ": host " + quoted(name) + " is listed twice");
    } else {
      tb.hosts.push_back(name);
    }
  };
  const Entry* one_host = find(*f, "host");
  const Entry* many_hosts = find(*f, "hosts");
  if (one_host && many_hosts) {
    problem(many_hosts->key_node.Mark(), ctx + ": has both 'host' and 'hosts'; give one (host: hv1 is hosts: [hv1])");
  } else if (one_host) {
    if (auto v = str(*one_host, ctx)) hypervisor(one_host->value, *v);
  } else if (many_hosts) {
    if (!many_hosts->value.IsSequence() || many_hosts->value.size() == 0) {
      problem(value_mark(*many_hosts), ctx + ": 'hosts' must be a non-empty list of plan hosts running libvirtd, "
                                             "e.g. [hv1, hv2]; got " + what_node(many_hosts->value));
    } else {
      for (const auto& n : many_hosts->value) {
        if (!n.IsScalar()) problem(n.Mark(), ctx + ": hosts: expected a host name, got " + what_node(n));
        else hypervisor(n, n.Scalar());
      }
    }
  }
  if (tb.hosts.size() > 1) {
    // VXLAN joins the hosts' bridges: each host's address is its tunnel end.
    for (const auto& h : tb.hosts) {
      const Target& t = plan_.targets.at(h);
      if (!parse_ipv4(t.address))
        problem((many_hosts ? many_hosts->value : one_host->value).Mark(),
                ctx + ": host " + quoted(h) + " has address " + quoted(t.address) +
                    "; with several hosts each needs an IPv4 address (the other hosts send VXLAN there)");
    }
  }
  if (!tb.hosts.empty()) tb.host = tb.hosts.front();
  if (const Entry* e = find(*f, "images_dir")) {
    if (auto v = str(*e, ctx)) {
      if (!absolute(*v)) problem(value_mark(*e), ctx + ": 'images_dir' must be an absolute path on the host");
      else tb.images_dir = *v;
    }
  }
  if (const Entry* e = find(*f, "teardown")) {
    if (auto v = choice(*e, ctx, kTeardowns))
      tb.teardown = *v == "always" ? Teardown::Always : *v == "on_success" ? Teardown::OnSuccess : Teardown::Never;
  }
  if (const Entry* e = find(*f, "up_timeout")) {
    if (auto v = duration(*e, ctx, true)) tb.up_timeout = *v;
  }
  if (const Entry* e = find(*f, "parallel")) {
    if (auto v = integer(*e, ctx, 1, 64)) tb.parallel = int(*v);
  }
  if (const Entry* e = find(*f, "host_keys")) {
    if (auto v = choice(*e, ctx, kHostKeyModes)) tb.host_keys = *v;
  }

  // images
  std::set<std::string> images;
  testbed_section(*f, "images", "image", "{path: /srv/images/debian.qcow2, format: qcow2}", kImageKeys, false,
                  [&](const Entry& i, const std::vector<Entry>& settings, const std::string& ictx) {
      const std::vector<Entry>* g = &settings;
      TestbedImage img;
      img.name = i.key;
      img.mark = mark_of(i.key_node.Mark());
      if (const Entry* p = find(*g, "path")) {
        if (auto v = str(*p, ictx)) {
          if (!absolute(*v)) problem(value_mark(*p), ictx + ": 'path' must be an absolute path on the host");
          img.path = *v;
        }
      } else {
        problem(i.key_node.Mark(), ictx + ": missing key 'path' (the image file on the host)");
      }
      if (const Entry* p = find(*g, "format")) {
        if (auto v = choice(*p, ictx, kFormats)) img.format = *v;
      }
      images.insert(img.name);
      tb.images.push_back(img);
  });

  // networks
  std::set<std::string> networks;  ///< declared, even with a bad subnet
  std::map<std::string, Subnet> subnets;
  std::map<std::string, uint32_t> next_host;
  testbed_section(*f, "networks", "network", "{subnet: 10.77.0.0/24}", kNetworkKeys, false,
                  [&](const Entry& n, const std::vector<Entry>& settings, const std::string& nctx) {
      const std::vector<Entry>* g = &settings;
      networks.insert(n.key);
      TestbedNetwork net;
      net.name = n.key;
      net.mark = mark_of(n.key_node.Mark());
      if (const Entry* p = find(*g, "subnet")) {
        if (auto v = str(*p, nctx)) {
          auto sn = parse_subnet(*v);
          if (!sn) {
            problem(value_mark(*p), nctx + ": " + sn.error().message);
          } else {
            for (const auto& [other, osn] : subnets)
              if (osn.overlaps(*sn))
                problem(value_mark(*p), nctx + ": subnet " + sn->to_string() + " overlaps " + osn.to_string() +
                                            " of network '" + other + "'");
            subnets[net.name] = *sn;
            next_host[net.name] = kFirstGuestHost;
            net.subnet = sn->to_string();
          }
        }
      } else {
        problem(n.key_node.Mark(), nctx + ": missing key 'subnet', e.g. subnet: 10.77.0.0/24");
      }
      if (const Entry* p = find(*g, "nat")) net.nat = boolean(*p, nctx).value_or(false);
      if (const Entry* p = find(*g, "switch")) {
        if (auto v = choice(*p, nctx, kSwitches)) net.ovs = *v == "ovs";
        if (net.ovs && net.nat)
          problem(value_mark(*p), nctx + ": switch: ovs has no NAT (guests get static addresses and no gateway "
                                         "out); use switch: linux for nat: true");
        // The bridge is made by a script on the hypervisor: a plan host
        // (over its SSH) or the controller.
        if (net.ovs && tb.hosts.empty() && uri_names_a_host(tb.libvirt))
          problem(value_mark(*p), nctx + ": switch: ovs needs the hypervisor to be a plan host (testbed: host: hv1) "
                                         "or this machine; " + quoted(tb.libvirt) + " is reached by URI alone");
      }
      if (const Entry* p = find(*g, "mtu")) {
        if (auto v = integer(*p, nctx, 576, 9000)) net.mtu = int(*v);
      } else if (tb.hosts.size() > 1) {
        net.mtu = kVxlanMtu;  // room for VXLAN's 50 bytes on a 1500-byte underlay
      }
      tb.networks.push_back(net);
  });

  // goldens, then guests: a guest names its golden, so goldens come first
  // whatever the order in the file, and take their addresses first.
  TestbedScope sc{tb, images, networks, subnets, next_host, {}};
  testbed_section(*f, "goldens", "golden", "{image: debian, networks: [lab], setup: [{name: s, run: ./setup}]}",
                  kGoldenKeys, false, [&](const Entry& ge, const std::vector<Entry>& settings, const std::string& gctx) {
                    parse_testbed_machine(sc, ge, settings, gctx, true);
                  });
  if (!find(*f, "guests")) problem(top.key_node.Mark(), "testbed: missing key 'guests': a testbed needs at least one guest");
  testbed_section(*f, "guests", "guest", "{count: 3, image: debian, networks: [lab]}", kTestbedGuestKeys, true,
                  [&](const Entry& ge, const std::vector<Entry>& settings, const std::string& gctx) {
                    parse_testbed_machine(sc, ge, settings, gctx, false);
                  });
  for (const char* name : {kGoldenStage, kUpStage, kReadyStage, kDownStage}) stage_names_.emplace(name, pos_of(top.key_node.Mark()));
  plan_.testbed = std::move(tb);
}

void Parser::parse_testbed_machine(TestbedScope& sc, const Entry& ge, const std::vector<Entry>& settings,
                               const std::string& gctx, bool golden) {
  const std::vector<Entry>* s = &settings;
  TestbedGuest g;
  g.name = ge.key;
  g.mark = mark_of(ge.key_node.Mark());
  Target t;  // what every instance is reached as
  t.guest = true;
  t.testbed = true;
  // Host keys from the seed are known before the guest boots: strict.
  t.host_key_policy = sc.tb.host_keys == "seed" ? "strict" : "accept-new";
  t.golden = golden;
  // Where its instances run: the host it names, or the testbed's hosts in
  // turn (instances in the order the file declares them); reached via it.
  std::string pinned;
  if (const Entry* p = find(*s, "host")) {
    if (auto v = str(*p, gctx)) {
      if (std::find(sc.tb.hosts.begin(), sc.tb.hosts.end(), *v) == sc.tb.hosts.end())
        problem(value_mark(*p), gctx + ": host " + quoted(*v) + " is not one of the testbed's hosts" +
                                    (sc.tb.hosts.empty() ? std::string(" (it has none: give testbed: hosts)")
                                                         : "; they are: " + join_names(sc.tb.hosts)));
      else pinned = *v;
    }
  }
  if (const Entry* p = find(*s, "count")) {
    if (auto v = integer(*p, gctx, 1, kMaxCount)) g.count = int(*v);
  }
  const Entry* image = find(*s, "image");
  const Entry* from_golden = find(*s, "golden");
  if (image && from_golden) {
    problem(from_golden->key_node.Mark(), gctx + ": has both 'image' and 'golden'; a guest is a clone of one of them");
  } else if (image) {
    if (auto v = str(*image, gctx)) {
      g.image = *v;
      if (!sc.images.count(*v)) {
        std::vector<std::string> known(sc.images.begin(), sc.images.end());
        problem(value_mark(*image), gctx + ": image " + quoted(*v) + " is not declared under testbed: images" +
                                        (known.empty() ? std::string() : "; declared: " + join_names(known)));
      }
    }
  } else if (from_golden) {
    if (auto v = str(*from_golden, gctx)) {
      g.golden = *v;
      if (!sc.goldens.count(*v)) {
        std::vector<std::string> known(sc.goldens.begin(), sc.goldens.end());
        problem(value_mark(*from_golden), gctx + ": golden " + quoted(*v) + " is not declared under testbed: goldens" +
                                              (known.empty() ? std::string() : "; declared: " + join_names(known)));
      }
    }
  } else {
    problem(ge.key_node.Mark(), gctx + (golden ? ": missing key 'image' (a name under testbed: images)"
                                               : ": missing key 'image' (a name under testbed: images) or 'golden' "
                                                 "(a name under testbed: goldens)"));
  }
  auto size_of = [&](const Entry& p, uint64_t min, const char* example) -> std::optional<uint64_t> {
    auto v = p.value.IsScalar() ? parse_size(p.value.Scalar()) : std::nullopt;
    if (!v || *v < min) {
      problem(value_mark(p), gctx + ": '" + p.key + "' must be a size such as " + example + ", got " +
                                 what_node(p.value));
      return std::nullopt;
    }
    return v;
  };
  if (const Entry* p = find(*s, "disk")) {
    if (auto v = size_of(*p, 1u << 20, "8G")) g.disk_bytes = *v;
  }
  if (const Entry* p = find(*s, "memory")) {
    if (auto v = size_of(*p, 64u << 20, "512M")) g.memory_mib = int(*v >> 20);
  }
  // Blank data disks after the image's: vdb, vdc, ... (qcow2, so they are
  // in the guest's snapshots).
  if (const Entry* p = find(*s, "disks")) {
    if (!p->value.IsSequence() || p->value.size() == 0 || p->value.size() > 8) {
      problem(value_mark(*p), gctx + ": 'disks' must be a list of 1 to 8 sizes of blank data disks, e.g. [10G, 10G]; "
                                     "got " + what_node(p->value));
    } else {
      for (const auto& d : p->value) {
        Entry one{p->key, p->key_node, d};
        if (auto v = size_of(one, 1u << 20, "10G")) g.data_disk_bytes.push_back(*v);
      }
    }
  }
  if (const Entry* p = find(*s, "cpus")) {
    if (auto v = integer(*p, gctx, 1, 64)) g.cpus = int(*v);
  }
  if (const Entry* p = find(*s, "accel")) {
    if (auto v = choice(*p, gctx, kAccels)) g.accel = *v;
  }
  for (auto [key, out] : {std::pair{"kernel", &g.kernel}, std::pair{"initrd", &g.initrd}}) {
    if (const Entry* p = find(*s, key)) {
      if (auto v = str(*p, gctx)) {
        if (!absolute(*v)) problem(value_mark(*p), gctx + ": '" + key + "' must be an absolute path on the host");
        *out = *v;
      }
    }
  }
  if (const Entry* p = find(*s, "cmdline")) g.cmdline = str(*p, gctx, true).value_or("");
  if (g.kernel.empty())
    for (const char* key : {"initrd", "cmdline"})
      if (const Entry* p = find(*s, key))
        problem(p->key_node.Mark(), gctx + ": '" + key + "' needs 'kernel' (direct kernel boot)");
  if (const Entry* p = find(*s, "ssh_key")) g.ssh_key = str(*p, gctx).value_or("");
  if (const Entry* p = find(*s, "user_data")) g.user_data = str(*p, gctx, true).value_or("");
  if (const Entry* p = find(*s, "user")) t.user = str(*p, gctx).value_or("root");
  if (const Entry* p = find(*s, "identity")) t.identity = str(*p, gctx).value_or("");

  const Entry* nets = find(*s, "networks");
  std::vector<NicWant> wants;  ///< per NIC, as the plan gives it
  if (!nets || !nets->value.IsSequence() || nets->value.size() == 0) {
    problem(nets ? value_mark(*nets) : ge.key_node.Mark(),
            gctx + ": 'networks' must be a non-empty list of network names (one NIC each), e.g. [lab]");
  } else {
    for (const auto& item : nets->value) {
      // A network's name, or {network: NAME, ip: ADDRESS | dhcp, mac: MAC}.
      YAML::Node n = item;
      NicWant want;
      if (item.IsMap()) {
        auto nf = entries(item, gctx + ": networks", kNicKeys);
        if (!nf) continue;
        const Entry* ne = find(*nf, "network");
        if (!ne) {
          problem(item.Mark(), gctx + ": a NIC given as a map needs 'network', e.g. {network: lab, ip: 10.77.0.50}");
          continue;
        }
        n = ne->value;
        if (const Entry* e = find(*nf, "ip")) {
          auto v = str(*e, gctx);
          if (v && *v != "dhcp" && !parse_ipv4(*v))
            problem(value_mark(*e), gctx + ": 'ip' must be an IPv4 address (the first instance's; the next ones "
                                           "follow it) or dhcp, got " + quoted(*v));
          else if (v) want.ip = *v;
          want.ip_mark = value_mark(*e);
        }
        if (const Entry* e = find(*nf, "mac")) {
          if (auto v = str(*e, gctx)) {
            std::string mac = *v;
            std::transform(mac.begin(), mac.end(), mac.begin(), [](unsigned char c) { return std::tolower(c); });
            if (!valid_mac(mac))
              problem(value_mark(*e), gctx + ": 'mac' must be a unicast MAC address such as 52:54:00:12:34:56, got " +
                                          quoted(*v));
            else if (g.count > 1)
              problem(value_mark(*e), gctx + ": 'mac' gives one address to " + std::to_string(g.count) +
                                          " instances; leave it out (each gets its own) or use count: 1");
            else
              want.mac = mac;
          }
        }
      }
      if (!n.IsScalar() || !sc.networks.count(n.Scalar())) {
        std::vector<std::string> known(sc.networks.begin(), sc.networks.end());
        problem(n.Mark(), gctx + ": network " + what_node(n) + " is not declared under testbed: networks" +
                              (known.empty() ? std::string() : "; declared: " + join_names(known)));
        continue;
      }
      if (want.ip == "dhcp") {
        if (g.networks.empty())
          problem(want.ip_mark, gctx + ": the first NIC is how runwarden reaches the guest: it needs a reserved "
                                       "address; leave 'ip' out or give one");
        for (const auto& net : sc.tb.networks)
          if (net.name == n.Scalar() && net.ovs)
            problem(want.ip_mark, gctx + ": network '" + net.name + "' is switch: ovs, which has no DHCP; leave "
                                         "'ip' out or give an address");
      }
      g.networks.push_back(n.Scalar());
      g.nic_macs.push_back(want.mac);
      wants.push_back(want);
    }
  }

  for (int i = 1; i <= g.count; ++i) {
    std::string inst = g.count == 1 ? g.name : g.name + "-" + std::to_string(i);
    if (!valid_name(inst)) {
      problem(ge.key_node.Mark(), gctx + ": instance name " + quoted(inst) + " is not valid: " + kNameRule);
      break;
    }
    auto [prev, fresh] = declared_.emplace(inst, pos_of(ge.key_node.Mark()));
    if (!fresh) {
      problem(ge.key_node.Mark(), gctx + ": instance '" + inst + "' is already declared at line " +
                                      std::to_string(prev->second.line) + ", column " +
                                      std::to_string(prev->second.column) +
                                      "; host, guest and testbed guest names must be unique");
      continue;
    }
    std::vector<std::string> addrs;
    for (size_t ni = 0; ni < g.networks.size(); ++ni) {
      const std::string& n = g.networks[ni];
      const NicWant& want = wants[ni];
      if (!sc.subnets.count(n)) continue;  // its subnet is already reported
      const Subnet& sn = sc.subnets[n];
      // The top addresses are the other hosts' bridges (a network across hosts).
      const uint32_t bridges = sc.tb.hosts.size() > 1 ? uint32_t(sc.tb.hosts.size() - 1) : 0;
      std::set<uint32_t>& taken = sc.taken[n];
      if (want.ip == "dhcp") {
        addrs.push_back("");  // a lease from the network's range
        continue;
      }
      uint32_t nth;
      if (!want.ip.empty()) {
        // Given: the first instance's; the next ones follow it.
        const uint32_t host = *parse_ipv4(want.ip) - sn.network + uint32_t(i - 1);
        if ((*parse_ipv4(want.ip) & prefix_mask(sn.prefix)) != sn.network || host < 2 ||
            host + bridges > sn.last_host()) {
          problem(want.ip_mark, gctx + ": " + inst + "'s address " + sn.address(host) + " on network '" + n +
                                    "' is not a guest address of " + sn.to_string() + " (.1 is the host's" +
                                    (bridges ? ", the top ones the other hosts'" : "") + ")");
          break;
        }
        if (taken.count(host)) {
          problem(want.ip_mark, gctx + ": " + inst + "'s address " + sn.address(host) + " on network '" + n +
                                    "' is already reserved for another guest");
          break;
        }
        nth = host;
      } else {
        nth = sc.next_host[n];
        while (taken.count(nth)) ++nth;
        sc.next_host[n] = nth + 1;
        if (nth + bridges > sn.last_host()) {
          problem(ge.key_node.Mark(), gctx + ": network '" + n + "' (" + sn.to_string() +
                                          ") has no address left for " + inst);
          break;
        }
      }
      taken.insert(nth);
      addrs.push_back(sn.address(nth));
    }
    std::string host = pinned;
    if (golden && !sc.tb.hosts.empty()) host = sc.tb.hosts.front();  // built there, copied to the others
    else if (host.empty() && !sc.tb.hosts.empty()) host = sc.tb.hosts[sc.placed++ % sc.tb.hosts.size()];
    Target it = t;
    it.via = host;  // on a remote hypervisor, reached through it
    if (!host.empty()) g.placement[inst] = host;
    it.name = inst;
    it.mark = g.mark;
    if (!addrs.empty()) it.address = addrs.front();
    plan_.targets[inst] = it;
    g.addresses[inst] = addrs;
    g.instances.push_back(inst);
  }
  if (golden) {
    sc.goldens.insert(g.name);
    parse_golden_setup(*s, g, gctx);
  }
  if (golden) sc.tb.goldens.push_back(g);
  else sc.tb.guests.push_back(g);
}

void Parser::parse_golden_setup(const std::vector<Entry>& settings, TestbedGuest& g, const std::string& gctx) {
  const Entry* e = find(settings, "setup");
  if (!e) return;  // booted once and sealed as it is
  if (!e->value.IsSequence() || e->value.size() == 0) {
    problem(value_mark(*e), gctx + ": 'setup' must be a non-empty list of tasks, e.g. "
                                   "[{name: install, run: ./install.sh}]; got " + what_node(e->value));
    return;
  }
  std::map<std::string, Pos> names;
  golden_setup_ = g.name;
  size_t k = 0;
  for (auto it = e->value.begin(); it != e->value.end(); ++it) {
    const YAML::Node n = *it;
    const bool has_on = n.IsMap() && n["on"];
    auto t = parse_task(n, k++, gctx + ": setup", names);
    if (!t) continue;
    if (!has_on) {
      t->on = {g.name};
    } else if (t->on != std::vector<std::string>{g.name}) {
      problem(n["on"].Mark(), gctx + ": setup: task '" + t->name + "' runs on the golden's build VM only: leave "
                                     "'on' out, or write on: " + g.name);
    }
    if (t->kind == TaskKind::Snapshot)
      problem(n.Mark(), gctx + ": setup: task '" + t->name + "': snapshots are of guests, not of a golden's build VM");
    g.setup.push_back(std::move(*t));
  }
  golden_setup_.clear();
}

void Parser::testbed_section(const std::vector<Entry>& top, const char* key, const char* singular,
                             const char* example, std::span<const std::string_view> allowed, bool non_empty,
                             const std::function<void(const Entry&, const std::vector<Entry>&, const std::string&)>& fn) {
  const Entry* e = find(top, key);
  if (!e) return;
  auto list = entries(e->value, std::string("testbed: ") + key, {}, true);
  if (!list || (non_empty && list->empty())) {
    problem(value_mark(*e), std::string("testbed: '") + key + "' must be a map of " + singular +
                                " names to settings such as " + example + "; got " + what_node(e->value));
    return;
  }
  for (const Entry& item : *list) {
    const std::string ctx = std::string("testbed: ") + singular + " '" + item.key + "'";
    if (!valid_name(item.key)) {
      problem(item.key_node.Mark(), std::string("testbed: ") + singular + " " + quoted(item.key) +
                                        ": not a valid name: " + kNameRule);
      continue;
    }
    auto settings = entries(item.value, ctx, allowed);
    if (!settings) {
      problem(value_mark(item), ctx + " must be a map such as " + example + "; got " + what_node(item.value));
      continue;
    }
    fn(item, *settings, ctx);
  }
}

void Parser::add_testbed_stages() {
  if (!plan_.testbed) return;
  const Testbed& tb = *plan_.testbed;
  auto testbed_stage = [&](const char* name, const char* op) {
    Stage s;
    s.name = name;
    s.generated = true;
    s.mark = tb.mark;
    // Every step of up and down is an ensure: a retry, or a runner resumed
    // after a crash mid-way, finds what exists and makes only the rest.
    s.retries = 2;
    s.retry_delay = Millis(2'000);
    Task t;
    t.name = op;
    t.on = {Plan::kController};
    t.kind = TaskKind::Testbed;
    t.testbed_op = op;
    t.mark = tb.mark;
    s.tasks.push_back(t);
    return s;
  };
  Stage ready;
  ready.name = kReadyStage;
  ready.generated = true;
  ready.mark = tb.mark;
  Task ssh;
  ssh.name = "ssh";
  ssh.kind = TaskKind::WaitFor;
  ssh.wait_for.what = "ssh";
  ssh.wait_for.timeout = tb.up_timeout;
  ssh.mark = tb.mark;
  for (const auto& g : tb.guests) ssh.on.insert(ssh.on.end(), g.instances.begin(), g.instances.end());
  ready.tasks.push_back(ssh);
  std::vector<Stage> stages;
  if (!tb.goldens.empty()) {
    // One task per golden, side by side: each boots its build VM, runs its
    // setup, seals it. A retry starts the golden afresh, so only once.
    Stage golden = testbed_stage(kGoldenStage, "golden");
    golden.retries = 1;
    golden.tasks.clear();
    for (const auto& g : tb.goldens) {
      Task t;
      t.name = g.name;
      t.on = {Plan::kController};
      t.kind = TaskKind::Testbed;
      t.testbed_op = "golden";
      t.golden = g.name;
      t.mark = g.mark;
      golden.tasks.push_back(t);
    }
    stages.push_back(golden);
  }
  stages.push_back(testbed_stage(kUpStage, "up"));
  stages.push_back(ready);
  stages.insert(stages.end(), plan_.stages.begin(), plan_.stages.end());
  if (tb.teardown != Teardown::Never) {
    Stage down = testbed_stage(kDownStage, "down");
    down.always = tb.teardown == Teardown::Always;
    stages.push_back(down);
  }
  plan_.stages = std::move(stages);
}

}  // namespace rw::plan::detail
