// The plan's testbed: section: guests become targets with reserved
// addresses, the section compiles into generated stages, and bad input is
// reported with file:line:column.
#include <gtest/gtest.h>

#include <sstream>

#include "plan/describe.h"
#include "plan/parser.h"

namespace rw::plan {
namespace {

const char* kLab = R"(version: 1
testbed:
  teardown: always
  images:
    tiny: {path: /srv/kit/disk.qcow2}
  networks:
    lab: {subnet: 10.77.0.0/24}
    back: {subnet: 10.78.0.0/24, mtu: 1450}
  guests:
    db: {image: tiny, networks: [back]}
    web:
      count: 3
      image: tiny
      memory: 256M
      disk: 1G
      networks: [lab, back]
      user: tester
stages:
  - name: test
    tasks:
      - {name: hello, on: [web-1, web-3, db], run: hostname}
)";

std::string errors_of(const std::string& text) {
  auto p = parse_plan(text, "lab.yaml");
  return p.ok() ? "" : p.error().message;
}

TEST(PlanTestbed, GuestsBecomeTargetsWithReservedAddressesInDeclarationOrder) {
  auto p = parse_plan(kLab, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_TRUE(p->testbed);
  EXPECT_EQ(p->targets.at("db").address, "10.78.0.10");
  EXPECT_EQ(p->targets.at("web-1").address, "10.77.0.10");
  EXPECT_EQ(p->targets.at("web-3").address, "10.77.0.12");
  EXPECT_EQ(p->targets.at("web-2").user, "tester");
  EXPECT_TRUE(p->targets.at("web-2").testbed);
  EXPECT_EQ(p->targets.at("web-2").host_key_policy, "strict") << "host keys come from the seed, known at once";
  const auto& web = p->testbed->guests.at(1);
  EXPECT_EQ(web.instances, (std::vector<std::string>{"web-1", "web-2", "web-3"}));
  EXPECT_EQ(web.addresses.at("web-2"), (std::vector<std::string>{"10.77.0.11", "10.78.0.12"}));
  EXPECT_EQ(web.memory_mib, 256);
  EXPECT_EQ(web.disk_bytes, 1ull << 30);
}

TEST(PlanTestbed, AHypervisorOnAPlanHostIsReachedThroughItAndSoAreItsGuests) {
  std::string text = kLab;
  text.replace(text.find("testbed:\n"), 9, "hosts:\n  hv1: {address: 10.0.0.5, port: 2222}\ntestbed:\n  host: hv1\n");
  auto p = parse_plan(text, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->testbed->host, "hv1");
  EXPECT_EQ(p->targets.at("web-2").via, "hv1");
  EXPECT_EQ(p->jumps("db"), (std::vector<std::string>{"hv1"}));
  const std::string d = describe(*p);
  EXPECT_NE(d.find("via hv1"), std::string::npos) << d;
  // Without host: the guests are reached directly.
  EXPECT_EQ(parse_plan(kLab, "lab.yaml")->targets.at("web-2").via, "");
}

TEST(PlanTestbed, TheHypervisorHostMustBeADeclaredRemoteHost) {
  std::string text = kLab;
  text.replace(text.find("testbed:\n"), 9,
               "hosts:\n  hv1: {address: 10.0.0.5}\n  here: {local: true}\ntestbed:\n  host: hv9\n");
  EXPECT_NE(errors_of(text).find("lab.yaml:6:9: testbed: host 'hv9' is not a declared host; declared:"),
            std::string::npos)
      << errors_of(text);
  text.replace(text.find("host: hv9"), 9, "host: here");
  EXPECT_NE(errors_of(text).find("lab.yaml:6:9: testbed: host 'here' is the controller"), std::string::npos)
      << errors_of(text);
}

std::string on_two_hosts(const std::string& testbed_keys) {
  std::string text = kLab;
  text.replace(text.find("testbed:\n"), 9,
               "hosts:\n  hv1: {address: 10.0.0.5}\n  hv2: {address: 10.0.0.6}\n  jump: {address: gw.example}\n"
               "testbed:\n" + testbed_keys);
  return text;
}

TEST(PlanTestbed, GuestsArePlacedOverSeveralHostsInTurnOrWhereTheySay) {
  auto p = parse_plan(on_two_hosts("  hosts: [hv1, hv2]\n"), "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->testbed->hosts, (std::vector<std::string>{"hv1", "hv2"}));
  EXPECT_EQ(p->testbed->host, "hv1") << "the first host has the networks' DHCP and builds goldens";
  // In declaration order: db, web-1, web-2, web-3.
  EXPECT_EQ(p->targets.at("db").via, "hv1");
  EXPECT_EQ(p->targets.at("web-1").via, "hv2");
  EXPECT_EQ(p->targets.at("web-2").via, "hv1");
  EXPECT_EQ(p->targets.at("web-3").via, "hv2");
  EXPECT_EQ(p->testbed->guests.at(1).placement.at("web-3"), "hv2");
  // Across hosts a network leaves room for VXLAN unless it says otherwise.
  EXPECT_EQ(p->testbed->networks.at(0).mtu, 1450);
  EXPECT_EQ(p->testbed->networks.at(1).mtu, 1450);
  // A group may name its host.
  std::string pinned = on_two_hosts("  hosts: [hv1, hv2]\n");
  pinned.replace(pinned.find("      user: tester"), 18, "      user: tester\n      host: hv2");
  p = parse_plan(pinned, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  for (const char* w : {"web-1", "web-2", "web-3"}) EXPECT_EQ(p->targets.at(w).via, "hv2") << w;
  EXPECT_EQ(p->targets.at("db").via, "hv1");
  // One host: no MTU is imposed.
  EXPECT_EQ(parse_plan(on_two_hosts("  hosts: [hv1]\n"), "lab.yaml")->testbed->networks.at(0).mtu, 0);
}

TEST(PlanTestbed, SeveralHostsAreCheckedWhereTheyAreWritten) {
  EXPECT_NE(errors_of(on_two_hosts("  host: hv1\n  hosts: [hv1, hv2]\n"))
                .find("lab.yaml:8:3: testbed: has both 'host' and 'hosts'"),
            std::string::npos)
      << errors_of(on_two_hosts("  host: hv1\n  hosts: [hv1, hv2]\n"));
  const std::string twice = errors_of(on_two_hosts("  hosts: [hv1, hv1]\n"));
  EXPECT_NE(twice.find("lab.yaml:7:16: testbed: host 'hv1' is listed twice"), std::string::npos) << twice;
  const std::string unknown = errors_of(on_two_hosts("  hosts: [hv1, hv9]\n"));
  EXPECT_NE(unknown.find("lab.yaml:7:16: testbed: host 'hv9' is not a declared host"), std::string::npos) << unknown;
  const std::string named = errors_of(on_two_hosts("  hosts: [hv1, jump]\n"));
  EXPECT_NE(named.find("testbed: host 'jump' has address 'gw.example'; with several hosts each needs an IPv4"),
            std::string::npos)
      << named;
  const std::string empty = errors_of(on_two_hosts("  hosts: []\n"));
  EXPECT_NE(empty.find("'hosts' must be a non-empty list"), std::string::npos) << empty;
  std::string pinned = on_two_hosts("  hosts: [hv1, hv2]\n");
  pinned.replace(pinned.find("      user: tester"), 18, "      user: tester\n      host: hv3");
  const std::string bad_pin = errors_of(pinned);
  EXPECT_NE(bad_pin.find(": testbed: guest 'web': host 'hv3' is not one of the testbed's hosts; they are: hv1, hv2"),
            std::string::npos)
      << bad_pin;
}

TEST(PlanTestbed, OnSeveralHostsTheTopAddressesAreTheHostsBridges) {
  std::string text = on_two_hosts("  hosts: [hv1, hv2]\n");
  // A /28 has hosts .1 to .14: .14 is hv2's bridge, guests from .10 to .13.
  text.replace(text.find("10.77.0.0/24"), 12, "10.77.0.0/28");
  text.replace(text.find("count: 3"), 8, "count: 4");
  EXPECT_EQ(errors_of(text), "");
  text.replace(text.find("count: 4"), 8, "count: 5");
  EXPECT_NE(errors_of(text).find("network 'lab' (10.77.0.0/28) has no address left for web-5"), std::string::npos)
      << errors_of(text);
}

TEST(PlanTestbed, OpenVSwitchNetworksAreCheckedWhereTheyAreWritten) {
  std::string text = kLab;
  text.replace(text.find("lab: {subnet: 10.77.0.0/24}"), 27, "lab: {subnet: 10.77.0.0/24, switch: ovs}");
  auto p = parse_plan(text, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->testbed->networks.at(0).ovs);
  EXPECT_FALSE(p->testbed->networks.at(1).ovs) << "a Linux bridge unless it says";
  // No NAT on Open vSwitch; an unknown switch names the choices.
  std::string nat = text;
  nat.replace(nat.find("switch: ovs"), 11, "switch: ovs, nat: true");
  EXPECT_NE(errors_of(nat).find("lab.yaml:7:41: testbed: network 'lab': switch: ovs has no NAT"), std::string::npos)
      << errors_of(nat);
  std::string odd = text;
  odd.replace(odd.find("switch: ovs"), 11, "switch: vde");
  EXPECT_NE(errors_of(odd).find("lab.yaml:7:41:"), std::string::npos) << errors_of(odd);
  EXPECT_NE(errors_of(odd).find("linux, ovs"), std::string::npos) << errors_of(odd);
  // The bridge is made by a script on the hypervisor: not on one reached
  // by URI alone; a plan host or a local URI is fine.
  std::string remote = text;
  remote.replace(remote.find("testbed:\n"), 9, "testbed:\n  libvirt: qemu+ssh://hv9/system\n");
  EXPECT_NE(errors_of(remote).find(": switch: ovs needs the hypervisor to be a plan host"), std::string::npos)
      << errors_of(remote);
  std::string local = text;
  local.replace(local.find("testbed:\n"), 9, "testbed:\n  libvirt: qemu:///system\n");
  EXPECT_EQ(errors_of(local), "");
  std::string on_host = text;
  on_host.replace(on_host.find("testbed:\n"), 9,
                  "hosts:\n  hv1: {address: 10.0.0.5}\ntestbed:\n  host: hv1\n  libvirt: qemu+ssh://hv9/system\n");
  EXPECT_EQ(errors_of(on_host), "");
}

TEST(PlanTestbed, ANicMayGiveItsAddressOrDhcpAndAGuestItsMac) {
  auto with = [](const std::string& db_nets, const std::string& web_nets) {
    std::string text = kLab;
    text.replace(text.find("db: {image: tiny, networks: [back]}"), 35, "db: {image: tiny, networks: " + db_nets + "}");
    text.replace(text.find("networks: [lab, back]"), 21, "networks: " + web_nets);
    return text;
  };
  auto p = parse_plan(with("[{network: back, mac: '52:54:00:AA:bb:01'}]",
                           "[{network: lab, ip: 10.77.0.50}, {network: back, ip: dhcp}]"),
                      "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto& web = p->testbed->guests.at(1);
  // The given address is the first instance's; the next ones follow it.
  EXPECT_EQ(web.addresses.at("web-1"), (std::vector<std::string>{"10.77.0.50", ""}));
  EXPECT_EQ(web.addresses.at("web-3"), (std::vector<std::string>{"10.77.0.52", ""}));
  EXPECT_EQ(p->targets.at("web-2").address, "10.77.0.51");
  EXPECT_EQ(p->testbed->guests.at(0).nic_macs, (std::vector<std::string>{"52:54:00:aa:bb:01"}));
  EXPECT_EQ(web.nic_macs, (std::vector<std::string>{"", ""}));
  // Reserved in turn around what is given: db takes .10 of back, web-1 .11.
  p = parse_plan(with("[{network: back, ip: 10.78.0.10}]", "[lab, back]"), "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->testbed->guests.at(1).addresses.at("web-1").at(1), "10.78.0.11");
  // Mistakes, where they are written.
  const std::string taken = errors_of(with("[back]", "[lab, {network: back, ip: 10.78.0.9}]"));
  EXPECT_NE(taken.find("lab.yaml:16:43: testbed: guest 'web': web-2's address 10.78.0.10 on network 'back' is "
                       "already reserved for another guest"),
            std::string::npos)
      << taken;
  const std::string outside = errors_of(with("[back]", "[{network: lab, ip: 10.78.0.50}, back]"));
  EXPECT_NE(outside.find("is not a guest address of 10.77.0.0/24"), std::string::npos) << outside;
  const std::string first = errors_of(with("[back]", "[{network: lab, ip: dhcp}, back]"));
  EXPECT_NE(first.find(": the first NIC is how runwarden reaches the guest"), std::string::npos) << first;
  const std::string shared = errors_of(with("[back]", "[lab, {network: back, mac: '52:54:00:00:00:01'}]"));
  EXPECT_NE(shared.find("'mac' gives one address to 3 instances"), std::string::npos) << shared;
  const std::string multicast = errors_of(with("[{network: back, mac: '01:00:5e:00:00:01'}]", "[lab]"));
  EXPECT_NE(multicast.find("'mac' must be a unicast MAC address"), std::string::npos) << multicast;
  const std::string nameless = errors_of(with("[{ip: 10.78.0.9}]", "[lab]"));
  EXPECT_NE(nameless.find("a NIC given as a map needs 'network'"), std::string::npos) << nameless;
  const std::string odd = errors_of(with("[{network: back, vlan: 3}]", "[lab]"));
  EXPECT_NE(odd.find("vlan"), std::string::npos) << odd;
}

TEST(PlanTestbed, DataDisksAreAListOfSizes) {
  auto with = [](const std::string& disks) {
    std::string text = kLab;
    text.replace(text.find("      disk: 1G\n"), 14, "      disk: 1G\n      disks: " + disks + "\n");
    return text;
  };
  auto p = parse_plan(with("[16M, 1G]"), "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->testbed->guests.at(1).data_disk_bytes, (std::vector<uint64_t>{16ull << 20, 1ull << 30}));
  EXPECT_TRUE(p->testbed->guests.at(0).data_disk_bytes.empty());
  EXPECT_NE(errors_of(with("10G")).find("lab.yaml:16:14: testbed: guest 'web': 'disks' must be a list of 1 to 8 sizes"),
            std::string::npos)
      << errors_of(with("10G"));
  EXPECT_NE(errors_of(with("[1G, lots]")).find("lab.yaml:16:19: testbed: guest 'web': 'disks' must be a size such as 10G"),
            std::string::npos)
      << errors_of(with("[1G, lots]"));
}

TEST(PlanTestbed, TheSectionCompilesIntoStagesAroundTheUsersOwn) {
  auto p = parse_plan(kLab, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->stages.size(), 4u);
  EXPECT_EQ(p->stages[0].name, "testbed-up");
  EXPECT_EQ(p->stages[0].tasks.at(0).kind, TaskKind::Testbed);
  EXPECT_EQ(p->stages[0].tasks.at(0).testbed_op, "up");
  EXPECT_EQ(p->stages[1].name, "testbed-ready");
  EXPECT_EQ(p->stages[1].tasks.at(0).kind, TaskKind::WaitFor);
  EXPECT_EQ(p->stages[1].tasks.at(0).on.size(), 4u);
  EXPECT_EQ(p->stages[2].name, "test");
  EXPECT_FALSE(p->stages[2].generated);
  EXPECT_EQ(p->stages[3].name, "testbed-down");
  EXPECT_TRUE(p->stages[3].always);
}

TEST(PlanTestbed, TeardownPoliciesDecideTheLastStage) {
  std::string on_success = kLab;
  on_success.replace(on_success.find("teardown: always"), 16, "teardown: on_success");
  auto p = parse_plan(on_success, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->stages.back().name, "testbed-down");
  EXPECT_FALSE(p->stages.back().always);
  std::string never = kLab;
  never.replace(never.find("teardown: always"), 16, "teardown: never");
  p = parse_plan(never, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->stages.back().name, "test");
}

TEST(PlanTestbed, BadInputIsReportedWhereItIsWritten) {
  std::string bad = kLab;
  bad.replace(bad.find("{path: /srv/kit/disk.qcow2}"), 27, "{path: disk.qcow2, formt: raw}");
  std::string e = errors_of(bad);
  EXPECT_NE(e.find("lab.yaml:5:18: testbed: image 'tiny': 'path' must be an absolute path"), std::string::npos) << e;
  EXPECT_NE(e.find("lab.yaml:5:30: testbed: image 'tiny': unknown key 'formt'; did you mean 'format'?"),
            std::string::npos)
      << e;
}

TEST(PlanTestbed, EveryErrorLineIsLocatedEvenWhenAValueHoldsNewlines) {
  // Found by the fuzzer: a subnet whose quoted value spans lines made the
  // message span lines too.
  std::string bad = kLab;
  bad.replace(bad.find("10.77.0.0/24"), 12, "\"10.77\\nx\\ry\"");
  std::string e = errors_of(bad);
  EXPECT_NE(e.find("needs a prefix length"), std::string::npos) << e;
  std::istringstream lines(e);
  for (std::string line; std::getline(lines, line);)
    EXPECT_EQ(line.rfind("lab.yaml:", 0), 0u) << "not located: " << line;
  EXPECT_NE(e.find("10.77\\nx\\ry"), std::string::npos) << e;
}

TEST(PlanTestbed, OverlappingSubnetsUndeclaredNetworksAndNameClashesAreRefused) {
  std::string bad = kLab;
  bad.replace(bad.find("10.78.0.0/24"), 12, "10.77.0.0/16");
  bad.replace(bad.find("networks: [back]"), 16, "networks: [nope]");
  bad.replace(bad.find("  - name: test"), 14, "  - name: testbed-up");
  std::string e = errors_of(bad);
  EXPECT_NE(e.find("subnet 10.77.0.0/16 overlaps 10.77.0.0/24 of network 'lab'"), std::string::npos) << e;
  EXPECT_NE(e.find("network 'nope' is not declared under testbed: networks; declared: back, lab"), std::string::npos)
      << e;
  EXPECT_NE(e.find("stage name 'testbed-up' is already used"), std::string::npos) << e;
}

TEST(PlanTestbed, ASubnetTooSmallForItsGuestsIsRefused) {
  std::string bad = kLab;
  bad.replace(bad.find("10.77.0.0/24"), 12, "10.77.0.0/29");
  std::string e = errors_of(bad);
  EXPECT_NE(e.find("network 'lab' (10.77.0.0/29) has no address left for web-1"), std::string::npos) << e;
}

TEST(PlanTestbed, AGuestNeedsAnImageAndANetwork) {
  std::string e = errors_of("version: 1\ntestbed:\n  guests:\n    web: {count: 2}\nstages: [{name: s, tasks: "
                            "[{name: t, run: 'true'}]}]\n");
  EXPECT_NE(e.find("lab.yaml:4:5: testbed: guest 'web': missing key 'image'"), std::string::npos) << e;
  EXPECT_NE(e.find("'networks' must be a non-empty list"), std::string::npos) << e;
}

const char* kGolden = R"(version: 1
testbed:
  images:
    tiny: {path: /srv/kit/disk.qcow2}
  networks:
    lab: {subnet: 10.77.0.0/24}
  goldens:
    gold:
      image: tiny
      networks: [lab]
      setup:
        - {name: install, run: ./install.sh}
        - {name: conf, on: gold, push: {src: conf, dst: /etc/app.conf}}
  guests:
    web: {count: 2, golden: gold, networks: [lab]}
stages:
  - name: test
    tasks:
      - {name: hello, on: [web-1, web-2], run: hostname}
      - {name: keep, snapshot: {create: clean}}
      - {name: back, on: [web-2], snapshot: {revert: clean}}
)";

TEST(PlanTestbed, AGoldenIsBuiltInItsOwnStageFirstAndTakesItsAddressFirst) {
  auto p = parse_plan(kGolden, "lab.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->testbed->goldens.size(), 1u);
  const auto& gold = p->testbed->goldens[0];
  ASSERT_EQ(gold.setup.size(), 2u);
  EXPECT_EQ(gold.setup[0].on, std::vector<std::string>{"gold"}) << "setup runs on the build VM";
  EXPECT_EQ(gold.setup[1].kind, TaskKind::Push);
  EXPECT_TRUE(p->targets.at("gold").golden);
  EXPECT_EQ(p->targets.at("gold").address, "10.77.0.10") << "goldens are declared first";
  EXPECT_EQ(p->targets.at("web-1").address, "10.77.0.11");
  EXPECT_EQ(p->testbed->guests[0].golden, "gold");
  ASSERT_EQ(p->stages.size(), 5u);
  EXPECT_EQ(p->stages[0].name, "testbed-golden");
  EXPECT_EQ(p->stages[0].tasks.at(0).testbed_op, "golden");
  EXPECT_EQ(p->stages[0].tasks.at(0).golden, "gold");
  EXPECT_EQ(p->stages[1].name, "testbed-up");
  EXPECT_EQ(p->stages[2].tasks.at(0).on, (std::vector<std::string>{"web-1", "web-2"})) << "no SSH wait on the golden";
  const auto& test = p->stages[3];
  EXPECT_EQ(test.tasks.at(1).kind, TaskKind::Snapshot);
  EXPECT_EQ(test.tasks.at(1).snapshot_op, "create");
  EXPECT_EQ(test.tasks.at(1).on, std::vector<std::string>{"controller"}) << "every guest at once";
  EXPECT_EQ(test.tasks.at(2).snapshot_op, "revert");
  EXPECT_EQ(test.tasks.at(2).snapshot_name, "clean");
  const std::string shown = describe(*p);
  EXPECT_NE(shown.find("Stage 1/5 testbed-golden"), std::string::npos) << shown;
  EXPECT_NE(shown.find("    Task install [run] on gold (setup)"), std::string::npos) << shown;
  EXPECT_NE(shown.find("  Task keep [snapshot] on controller"), std::string::npos) << shown;
}

TEST(PlanTestbed, GoldensAndSnapshotsAreCheckedWhereTheyAreWritten) {
  auto bad = [](const std::string& from, const std::string& to) {
    std::string t = kGolden;
    t.replace(t.find(from), from.size(), to);
    return errors_of(t);
  };
  std::string e = bad("{name: hello, on: [web-1, web-2]", "{name: hello, on: [web-1, gold]");
  EXPECT_NE(e.find("'gold' is the build VM of golden 'gold', which exists only while the golden is made"),
            std::string::npos) << e;
  e = bad("{count: 2, golden: gold,", "{count: 2, golden: silver,");
  EXPECT_NE(e.find("lab.yaml:15:29: testbed: guest 'web': golden 'silver' is not declared under testbed: goldens; "
                   "declared: gold"), std::string::npos) << e;
  e = bad("{count: 2, golden: gold,", "{count: 2, image: tiny, golden: gold,");
  EXPECT_NE(e.find("has both 'image' and 'golden'"), std::string::npos) << e;
  e = bad("{name: conf, on: gold,", "{name: conf, on: web-1,");
  EXPECT_NE(e.find("setup: task 'conf' runs on the golden's build VM only"), std::string::npos) << e;
  e = bad("{create: clean}", "{take: clean}");
  EXPECT_NE(e.find("unknown key 'take'"), std::string::npos) << e;
  e = bad("{create: clean}", "{create: clean, delete: old}");
  EXPECT_NE(e.find("'snapshot' must be a map with one of create, revert or delete"), std::string::npos) << e;
  e = bad("{create: clean}", "{create: 'a b'}");
  EXPECT_NE(e.find("is not a valid snapshot name"), std::string::npos) << e;
  e = bad("        - {name: install, run: ./install.sh}", "        - {name: install, snapshot: {create: x}}");
  EXPECT_NE(e.find("snapshots are of guests, not of a golden's build VM"), std::string::npos) << e;
  e = errors_of("version: 1\nhosts: {h1: {address: 10.0.0.1}}\nstages: [{name: s, tasks: "
                "[{name: t, on: h1, snapshot: {create: x}}]}]\n");
  EXPECT_NE(e.find("snapshots are of testbed guests, and the plan has no testbed: section"), std::string::npos) << e;
}

}  // namespace
}  // namespace rw::plan
