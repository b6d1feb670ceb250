// A testbed across several hosts: each host's part, the network parts'
// definitions, and the VXLAN scripts (which integration tests run on real
// hosts).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testbed_fixture.h"

#include "testbed/names.h"
#include "testbed/network.h"
#include "testbed/span.h"

namespace rw::testbed {
namespace {

Testbed across(int guests) {
  Testbed tb = lab_testbed("span-1", guests, "10.73.0");
  tb.hosts = {{"hv1", "192.0.2.1"}, {"hv2", "192.0.2.2"}, {"hv3", "192.0.2.3"}};
  for (int i = 0; i < guests; ++i) tb.guests[0].placement["web-" + std::to_string(i + 1)] = tb.hosts[i % 3].name;
  tb.networks[0].mtu = 1450;
  return tb;
}

TEST(TestbedSpan, EachHostGetsItsOwnGuestsAndThePartOfEveryNetwork) {
  const Testbed tb = across(4);
  const Testbed one = on_host(tb, 0), two = on_host(tb, 1), three = on_host(tb, 2);
  EXPECT_EQ(one.guests.at(0).instances, (std::vector<std::string>{"web-1", "web-4"}));
  EXPECT_EQ(two.guests.at(0).instances, (std::vector<std::string>{"web-2"}));
  EXPECT_EQ(three.guests.at(0).instances, (std::vector<std::string>{"web-3"}));
  // Every guest's reservation is in the network wherever the guest runs
  // (the first host's part hands them out).
  for (const Testbed* t : {&one, &two}) {
    ASSERT_EQ(t->networks.size(), 1u);
    EXPECT_EQ(t->networks[0].hosts.size(), 4u);
    EXPECT_EQ(t->networks[0].span, 3);
  }
  EXPECT_EQ(one.networks[0].part, 0);
  EXPECT_EQ(three.networks[0].part, 2);
  // Goldens: all built on the first host; another holds the ones its
  // guests are clones of.
  Testbed gold = across(2);
  gold.goldens.push_back(gold.guests[0]);
  gold.goldens[0].name = "app";
  gold.goldens.push_back(gold.goldens[0]);
  gold.goldens[1].name = "unused";
  gold.guests[0].golden = "app";
  EXPECT_EQ(on_host(gold, 0).goldens.size(), 2u);
  ASSERT_EQ(on_host(gold, 1).goldens.size(), 1u);
  EXPECT_EQ(on_host(gold, 1).goldens[0].name, "app");
  EXPECT_TRUE(on_host(gold, 2).goldens.empty()) << "no guest on hv3";
  // One host: everything, as it was.
  Testbed single = lab_testbed("span-2", 2, "10.74.0");
  EXPECT_EQ(on_host(single, 0).guests.at(0).instances.size(), 2u);
  EXPECT_EQ(on_host(single, 0).networks[0].span, 1);
}

TEST(TestbedSpan, OnlyTheFirstHostsPartLeasesAndRoutes) {
  Testbed tb = across(2);
  tb.networks[0].mode = NetworkSpec::Mode::Nat;
  const std::string home = network_definition(tb.id, on_host(tb, 0).networks[0]);
  const std::string other = network_definition(tb.id, on_host(tb, 2).networks[0]);
  EXPECT_NE(home.find("<forward mode='nat'/>"), std::string::npos) << home;
  EXPECT_NE(home.find("<ip address='10.73.0.1' prefix='24'>"), std::string::npos) << home;
  // .254 and .253 are the other hosts' bridges: not in the range.
  EXPECT_NE(home.find("<range start='10.73.0.10' end='10.73.0.252'/>"), std::string::npos) << home;
  EXPECT_NE(home.find("<host mac='" + mac_for({tb.id, "web-2"}, 0) + "' name='web-2' ip='10.73.0.11'/>"),
            std::string::npos)
      << home;
  EXPECT_EQ(other.find("<forward"), std::string::npos) << other;
  EXPECT_EQ(other.find("<dhcp>"), std::string::npos) << other;
  EXPECT_NE(other.find("<ip address='10.73.0.253' prefix='24'>"), std::string::npos) << other;
  EXPECT_NE(other.find("<mtu size='1450'/>"), std::string::npos) << other;
  // The same bridge name on every host: the VXLAN link joins it.
  const std::string bridge = interface_name('b', {tb.id, "lab"});
  EXPECT_NE(home.find(bridge), std::string::npos);
  EXPECT_NE(other.find(bridge), std::string::npos);
}

TEST(TestbedSpan, TheVxlanScriptsNameEveryOtherHostAndOnlyOurLinks) {
  const Testbed tb = across(2);
  const std::string s = vxlan_ensure_script(tb, 1);
  const std::string link = interface_name('x', {tb.id, "lab"});
  EXPECT_EQ(link.size(), 15u);
  const std::string id = std::to_string(vxlan_id(tb.id, "lab"));
  EXPECT_NE(s.find("vx " + link + " " + interface_name('b', {tb.id, "lab"}) + " " + id + " 1450 linux 192.0.2.1 192.0.2.3\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("dstport 4789"), std::string::npos);
  EXPECT_NE(vxlan_id(tb.id, "lab"), vxlan_id(tb.id, "back"));
  EXPECT_NE(vxlan_id(tb.id, "lab"), vxlan_id("span-2", "lab"));
  EXPECT_LE(vxlan_id(tb.id, "lab"), 0xFFFFFFu);
  EXPECT_GE(vxlan_id(tb.id, "lab"), 1u);
  EXPECT_EQ(vxlan_ensure_script(lab_testbed("span-3", 1, "10.75.0"), 0), "") << "one host: no VXLAN";
  const std::string rm = vxlan_remove_script(tb);
  EXPECT_NE(rm.find("for l in " + link + ";"), std::string::npos) << rm;
}

TEST(TestbedSpan, AnOpenVSwitchNetworkIsTheHostsBridgeWithTheHostsAddress) {
  Testbed tb = across(2);
  tb.hosts.pop_back();  // hv1, hv2
  tb.networks[0].ovs = true;
  const std::string bridge = interface_name('b', {tb.id, "lab"});
  // libvirt only plugs guests into the bridge: no address, DHCP or NAT.
  const std::string x = network_definition(tb.id, on_host(tb, 0).networks[0]);
  EXPECT_NE(x.find("<forward mode='bridge'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<bridge name='" + bridge + "'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<virtualport type='openvswitch'/>"), std::string::npos) << x;
  EXPECT_EQ(x.find("<mtu"), std::string::npos) << "libvirt refuses it in bridge mode: " << x;
  EXPECT_EQ(x.find("<ip"), std::string::npos) << x;
  EXPECT_EQ(x.find("<dhcp>"), std::string::npos) << x;
  // Each host's bridge carries its own address: the first .1, hv2 the top.
  const std::string one = ovs_ensure_script(tb, 0), two = ovs_ensure_script(tb, 1);
  EXPECT_NE(one.find("ovsbr " + bridge + " 'span-1' 10.73.0.1/24 1450\n"), std::string::npos) << one;
  EXPECT_NE(two.find("ovsbr " + bridge + " 'span-1' 10.73.0.254/24 1450\n"), std::string::npos) << two;
  // Its VXLAN port is an Open vSwitch port.
  EXPECT_NE(vxlan_ensure_script(tb, 1).find(" 1450 ovs 192.0.2.1\n"), std::string::npos) << vxlan_ensure_script(tb, 1);
  tb.networks[0].ovs = false;
  EXPECT_EQ(ovs_ensure_script(tb, 0), "") << "no Open vSwitch network: nothing to run";
  EXPECT_NE(vxlan_ensure_script(tb, 1).find(" 1450 linux 192.0.2.1\n"), std::string::npos);
}

TEST(TestbedSpan, HostLeftoversAreFoundByTagAndOnlyOurNamesAreRemoved) {
  const std::string b = interface_name('b', {"gc-1", "lab"}), x = interface_name('x', {"gc-1", "lab"});
  const auto objs = parse_host_leftovers("link " + x + " gc-1\n"
                                         "ovs " + b + " gc-1\n"
                                         "link eth0 gc-1\n"                 // not a name of ours
                                         "ovs rwb0123456789AB gc-1\n"      // upper case: not ours
                                         "ovs " + b + "\n"                  // no testbed
                                         "disk " + b + " gc-1\n");
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(objs[0].kind, "link");
  EXPECT_EQ(objs[0].name, x);
  EXPECT_EQ(objs[1].testbed, "gc-1");
  EXPECT_EQ(host_remove_script(objs), "ip link del dev " + x + " && echo \"removed VXLAN link " + x + "\"\n" +
                                          "ovs-vsctl --timeout=30 del-br " + b + " && echo \"removed Open vSwitch bridge " +
                                          b + "\"\n");
  EXPECT_EQ(host_remove_script({{"link", "eth0; reboot", "gc-1"}}), "") << "never a name that is not ours";
  // The links carry the tag the leftovers script reads.
  EXPECT_NE(vxlan_ensure_script(across(2), 0).find("alias \"runwarden-testbed=$tbid\""), std::string::npos);
  // The script, run here: it prints nothing of ours on this machine, and
  // reads a link's alias from `ip -o link` (as the integration tests check).
  EXPECT_NE(host_leftovers_script().find("alias runwarden-testbed="), std::string::npos);
}

/// Runs `script` with /bin/sh against a stand-in ovs-vsctl (bridges are
/// files in DIR/br holding their tag) and ip; its exit status, and its
/// output in `out`.
int run_with_fake_ovs(const std::string& dir, const std::string& script, std::string& out) {
  std::ofstream(dir + "/script.sh") << script;
  std::string cmd = "STUB='" + dir + "' OVS_RUNDIR='" + dir + "' PATH='" + dir + ":/usr/bin:/bin' /bin/sh '" + dir +
                    "/script.sh' >'" + dir + "/out' 2>&1";
  const int st = std::system(cmd.c_str());
  std::stringstream o;
  o << std::ifstream(dir + "/out").rdbuf();
  out = o.str();
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(TestbedSpan, TheOpenVSwitchScriptsMakeTagAndRemoveOnlyTheTestbedsBridges) {
  char tmpl[] = "/tmp/rw-ovs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::filesystem::create_directories(dir + "/br");
  std::ofstream(dir + "/ovs-vsctl") << R"SH(#!/bin/sh
echo "$*" >>"$STUB/calls"
while [ "${1#--}" != "$1" ]; do shift; done
case "$1" in
  br-exists) [ -e "$STUB/br/$2" ] ;;
  get) [ -e "$STUB/br/$3" ] && cat "$STUB/br/$3" ;;
  add-br) printf '%s\n' "${8#*=}" >"$STUB/br/$2" ;;
  find) for f in "$STUB"/br/*; do [ "$(cat "$f")" = "${3#*=}" ] && basename "$f"; done; true ;;
  del-br) rm "$STUB/br/$2" ;;
esac
)SH";
  std::ofstream(dir + "/ip") << "#!/bin/sh\necho \"ip $*\" >>\"$STUB/calls\"\n";
  std::filesystem::permissions(dir + "/ovs-vsctl", std::filesystem::perms::owner_all);
  std::filesystem::permissions(dir + "/ip", std::filesystem::perms::owner_all);
  Testbed tb = lab_testbed("span-ovs", 1, "10.73.0");
  tb.networks[0].ovs = true;
  const std::string bridge = interface_name('b', {tb.id, "lab"});
  std::string out;
  // No Open vSwitch running (no db.sock): a clear error, nothing made.
  EXPECT_EQ(run_with_fake_ovs(dir, ovs_ensure_script(tb, 0), out), 1);
  EXPECT_NE(out.find("Open vSwitch is not running on this host"), std::string::npos) << out;
  EXPECT_EQ(run_with_fake_ovs(dir, ovs_remove_script(tb.id), out), 0) << "nothing to remove: " << out;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s/db.sock", dir.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  // Made once, tagged (quoted for ovs-vsctl), with the host's address.
  ASSERT_EQ(run_with_fake_ovs(dir, ovs_ensure_script(tb, 0), out), 0) << out;
  ASSERT_EQ(run_with_fake_ovs(dir, ovs_ensure_script(tb, 0), out), 0) << out;
  std::stringstream calls;
  calls << std::ifstream(dir + "/calls").rdbuf();
  EXPECT_NE(calls.str().find("external-ids:runwarden-testbed=\"span-ovs\""), std::string::npos) << calls.str();
  size_t adds = 0;
  for (size_t at = calls.str().find("add-br"); at != std::string::npos; at = calls.str().find("add-br", at + 1)) ++adds;
  EXPECT_EQ(adds, 1u) << "the second run finds it: " << calls.str();
  EXPECT_NE(calls.str().find("ip addr replace 10.73.0.1/24 dev " + bridge), std::string::npos) << calls.str();
  // A bridge of that name tagged otherwise, or not at all, is refused.
  std::ofstream(dir + "/br/" + bridge) << "\"other\"\n";
  EXPECT_EQ(run_with_fake_ovs(dir, ovs_ensure_script(tb, 0), out), 1);
  EXPECT_NE(out.find("Open vSwitch bridge " + bridge + " exists and belongs to other"), std::string::npos) << out;
  std::ofstream(dir + "/br/" + bridge) << "";
  EXPECT_EQ(run_with_fake_ovs(dir, ovs_ensure_script(tb, 0), out), 1);
  EXPECT_NE(out.find("belongs to nobody (not made by runwarden)"), std::string::npos) << out;
  // down removes the testbed's bridges, found by their tag, and no other.
  std::ofstream(dir + "/br/" + bridge) << "\"span-ovs\"\n";
  std::ofstream(dir + "/br/rwbother") << "\"other\"\n";
  ASSERT_EQ(run_with_fake_ovs(dir, ovs_remove_script(tb.id), out), 0) << out;
  EXPECT_EQ(out, "removed Open vSwitch bridge " + bridge + "\n");
  EXPECT_FALSE(std::filesystem::exists(dir + "/br/" + bridge));
  EXPECT_TRUE(std::filesystem::exists(dir + "/br/rwbother"));
  close(fd);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rw::testbed
