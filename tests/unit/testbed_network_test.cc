// Testbed networks against libvirt's own test driver (test:///default): the
// XML we define, ensure/remove and the ownership tag.
#include <gtest/gtest.h>

#include "testbed_fixture.h"

#include "testbed/network.h"

namespace rw::testbed {
namespace {

NetworkSpec lab(const std::string& subnet = "10.77.0.0/24") {
  NetworkSpec s;
  s.name = "lab";
  auto sn = parse_subnet(subnet);
  EXPECT_TRUE(sn.ok()) << sn.error().message;
  s.subnet = *sn;
  s.hosts.push_back({"52:54:00:00:00:01", "10.77.0.5", "web-1"});
  return s;
}

int count_networks(const Virt& v) {
  auto all = v.all_networks();
  EXPECT_TRUE(all.ok());
  return all.ok() ? int(all->size()) : -1;
}

TEST(TestbedNames, InterfaceNamesFitTheKernelLimitAndDifferPerTestbed) {
  std::string a = interface_name('b', {"a-very-long-build-name-of-the-lab-team", "lab"});
  std::string b = interface_name('b', {"a-very-long-build-name-of-the-lab-team2", "lab"});
  EXPECT_EQ(a.size(), 15u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(0, 3), "rwb");
  EXPECT_EQ(a, interface_name('b', {"a-very-long-build-name-of-the-lab-team", "lab"})) << "stable across calls";
}

TEST(TestbedNames, TheOwnerTagSurvivesEscapingAndIsFoundInXml) {
  Owner o{"b<1>&'\"", "net"};
  auto found = owner_of("<network><metadata>" + owner_element(o) + "</metadata></network>");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->testbed, o.testbed);
  EXPECT_EQ(found->object, "net");
  EXPECT_FALSE(owner_of("<network><metadata><rw:owner xmlns:rw=\"other\" testbed=\"x\" object=\"y\"/></metadata>"))
      << "a tag in another namespace is not ours";
}

TEST(TestbedSubnet, ParseRefusesHostBitsAndBadPrefixes) {
  EXPECT_TRUE(parse_subnet("10.1.2.0/24").ok());
  auto hb = parse_subnet("10.1.2.3/24");
  ASSERT_FALSE(hb.ok());
  EXPECT_NE(hb.error().message.find("10.1.2.0/24"), std::string::npos) << hb.error().message;
  EXPECT_FALSE(parse_subnet("10.1.2.0").ok());
  EXPECT_FALSE(parse_subnet("10.1.2.0/31").ok());
  EXPECT_FALSE(parse_subnet("fe80::/64").ok());
  auto a = *parse_subnet("10.1.0.0/16"), b = *parse_subnet("10.1.7.0/24"), c = *parse_subnet("10.2.0.0/24");
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
}

TEST(TestbedNetwork, TheDefinitionIsTaggedIsolatedWithoutDnsAndReservesAddresses) {
  std::string x = network_definition("b1", lab());
  EXPECT_NE(x.find("<name>rw-b1-lab</name>"), std::string::npos) << x;
  EXPECT_EQ(owner_of(x)->testbed, "b1");
  EXPECT_EQ(x.find("<forward"), std::string::npos) << "isolated: no forward";
  EXPECT_NE(x.find("<dns enable='no'/>"), std::string::npos);
  EXPECT_NE(x.find("<ip address='10.77.0.1' prefix='24'>"), std::string::npos) << x;
  EXPECT_NE(x.find("<host mac='52:54:00:00:00:01' name='web-1' ip='10.77.0.5'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("bridge name='" + interface_name('b', {"b1", "lab"}) + "'"), std::string::npos);
}

TEST(TestbedNetwork, EnsureCreatesOnceAndThenFindsItsOwnNetwork) {
  Virt host = test_host();
  const int before = count_networks(host);
  auto first = ensure_network(host, "ens-1", lab());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->created);
  EXPECT_TRUE(first->started);
  auto again = ensure_network(host, "ens-1", lab());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->created) << "a resumed runner creates nothing twice";
  EXPECT_FALSE(again->started);
  EXPECT_EQ(count_networks(host), before + 1);
  auto owned = owned_networks(host, "ens-1");
  ASSERT_TRUE(owned.ok());
  ASSERT_EQ(owned->size(), 1u);
  EXPECT_EQ((*owned)[0].object, "lab");
  auto gone = remove_network(host, "ens-1", "lab");
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_TRUE(*gone);
  EXPECT_EQ(count_networks(host), before);
  auto twice = remove_network(host, "ens-1", "lab");
  ASSERT_TRUE(twice.ok());
  EXPECT_FALSE(*twice) << "removing what is gone is not an error";
}

TEST(TestbedNetwork, EnsureRefusesANetworkOfThatNameThatIsNotOurs) {
  Virt host = test_host();
  const char* foreign =
      "<network><name>rw-ens-2-lab</name><bridge name='foreign0'/>"
      "<ip address='10.88.0.1' prefix='24'/></network>";
  virNetworkPtr n = virNetworkDefineXML(host.get(), foreign);
  ASSERT_NE(n, nullptr);
  NetworkPtr keep(n);
  auto r = ensure_network(host, "ens-2", lab("10.89.0.0/24"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not made by runwarden"), std::string::npos) << r.error().message;
  auto rm = remove_network(host, "ens-2", "lab");
  EXPECT_FALSE(rm.ok()) << "a network that is not ours is never removed";
  ASSERT_TRUE(host.find_network("rw-ens-2-lab").ok() && *host.find_network("rw-ens-2-lab"));
  virNetworkUndefine(n);
}

TEST(TestbedNetwork, EnsureRefusesASubnetThatOverlapsAnotherNetworkAndDefinesNothing) {
  Virt host = test_host();
  const int before = count_networks(host);
  auto first = ensure_network(host, "ens-3", lab("10.90.0.0/16"));
  ASSERT_TRUE(first.ok()) << first.error().message;
  NetworkSpec other = lab("10.90.4.0/24");
  other.name = "lab2";
  auto r = ensure_network(host, "ens-3", other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("overlaps 10.90.0.0/16 of network rw-ens-3-lab"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(count_networks(host), before + 1);
  ASSERT_TRUE(remove_network(host, "ens-3", "lab").ok());
}

}  // namespace
}  // namespace rw::testbed
