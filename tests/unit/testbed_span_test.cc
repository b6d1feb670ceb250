// A testbed across several hosts: each host's part, the network parts'
// definitions, and the VXLAN scripts (which integration tests run on real
// hosts).
#include <gtest/gtest.h>

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
  EXPECT_NE(s.find("vx " + link + " " + interface_name('b', {tb.id, "lab"}) + " " + id + " 1450 192.0.2.1 192.0.2.3\n"),
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

}  // namespace
}  // namespace rw::testbed
