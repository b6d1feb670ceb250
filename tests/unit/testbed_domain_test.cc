// Testbed guests against libvirt's test driver: the domain XML, ensure and
// remove, ownership, and identities that clones never share.
#include <gtest/gtest.h>

#include "testbed_fixture.h"

#include <set>

#include "testbed/domain.h"
#include "testbed/network.h"

namespace rw::testbed {
namespace {

GuestSpec web(const std::string& name) {
  GuestSpec g;
  g.name = name;
  g.memory_mib = 256;
  g.kernel = "/srv/kit/vmlinuz";
  g.initrd = "/srv/kit/initrd.img";
  g.cmdline = "console=ttyS0";
  g.disks.push_back({"/var/lib/libvirt/images/rw-b1/" + name + ".qcow2", "qcow2"});
  g.seed = "/var/lib/libvirt/images/rw-b1/" + name + ".seed";
  g.nics.push_back({"rw-b1-lab", mac_for({"b1", name}, 0), 1450});
  return g;
}

TEST(TestbedDomain, ClonesGetDistinctStableMacsAndUuids) {
  std::set<std::string> macs, uuids;
  for (int i = 1; i <= 50; ++i) {
    Owner o{"b1", "web-" + std::to_string(i)};
    EXPECT_EQ(mac_for(o, 0), mac_for(o, 0));
    macs.insert(mac_for(o, 0));
    macs.insert(mac_for(o, 1));
    uuids.insert(uuid_for(o));
  }
  EXPECT_EQ(macs.size(), 100u);
  EXPECT_EQ(uuids.size(), 50u);
  EXPECT_EQ(mac_for({"b1", "web-1"}, 0).substr(0, 9), "52:54:00:");
  std::string u = uuid_for({"b1", "web-1"});
  ASSERT_EQ(u.size(), 36u);
  EXPECT_EQ(u[14], '4');
  EXPECT_NE(uuid_for({"b2", "web-1"}), u) << "another testbed's guest of the same name";
}

TEST(TestbedDomain, TheDefinitionBootsTheKernelAttachesTheSeedReadOnlyAndTagsTheGuest) {
  std::string x = domain_definition("b1", web("web-1"), "qemu");
  EXPECT_NE(x.find("<domain type='qemu'>"), std::string::npos);
  EXPECT_NE(x.find("<name>rw-b1-web-1</name>"), std::string::npos);
  EXPECT_NE(x.find("<kernel>/srv/kit/vmlinuz</kernel>"), std::string::npos);
  EXPECT_NE(x.find("<source file='/var/lib/libvirt/images/rw-b1/web-1.seed'/>\n      <target dev='vdb' "
                   "bus='virtio'/>\n      <readonly/>"),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("<mtu size='1450'/>"), std::string::npos);
  EXPECT_EQ(owner_of(x)->object, "web-1");
  EXPECT_EQ(x.find("<driver>"), std::string::npos) << "offloads as qemu offers them";
  // A NIC on Open vSwitch: the guest sends whole checksums.
  GuestSpec g = web("web-1");
  g.nics[0].full_checksums = true;
  x = domain_definition("b1", g, "qemu");
  EXPECT_NE(x.find("<driver>\n        <host csum='off' gso='off' tso4='off' tso6='off' ecn='off' ufo='off'/>"),
            std::string::npos)
      << x;
}

TEST(TestbedDomain, EnsureDefinesAndStartsOnceAndRemoveLeavesNothing) {
  Virt host = test_host();
  NetworkSpec lab;
  lab.name = "lab";
  lab.subnet = *parse_subnet("10.71.0.0/24");
  ASSERT_TRUE(ensure_network(host, "dom-1", lab).ok());
  GuestSpec g = web("web-1");
  g.nics[0].network = "rw-dom-1-lab";
  auto first = ensure_guest(host, "dom-1", g, "test");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(first->created);
  EXPECT_TRUE(first->started);
  auto again = ensure_guest(host, "dom-1", g, "test");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_FALSE(again->started);
  auto owned = owned_guests(host, "dom-1");
  ASSERT_TRUE(owned.ok());
  ASSERT_EQ(owned->size(), 1u);
  {
    // A snapshot does not block the removal.
    DomainPtr d(virDomainLookupByName(host.get(), "rw-dom-1-web-1"));
    ASSERT_TRUE(d);
    virDomainSnapshotPtr snap = virDomainSnapshotCreateXML(d.get(), "<domainsnapshot><name>s1</name></domainsnapshot>", 0);
    ASSERT_NE(snap, nullptr);
    virDomainSnapshotFree(snap);
  }
  ASSERT_TRUE(power_off(host, "dom-1", "web-1").ok());
  auto restarted = ensure_guest(host, "dom-1", g, "test");
  ASSERT_TRUE(restarted.ok());
  EXPECT_TRUE(restarted->started) << "a guest found stopped is started again";
  auto gone = remove_guest(host, "dom-1", "web-1");
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_TRUE(*gone);
  EXPECT_TRUE(owned_guests(host, "dom-1")->empty());
  EXPECT_FALSE(*remove_guest(host, "dom-1", "web-1"));
  auto net_gone = remove_network(host, "dom-1", "lab");
  ASSERT_TRUE(net_gone.ok()) << net_gone.error().message;
}

TEST(TestbedDomain, AGuestOfThatNameThatIsNotOursIsNeitherUsedNorRemoved) {
  Virt host = test_host();
  const char* foreign =
      "<domain type='test'><name>rw-dom-2-web-1</name><memory>131072</memory>"
      "<os><type>hvm</type></os></domain>";
  virDomainPtr d = virDomainDefineXML(host.get(), foreign);
  ASSERT_NE(d, nullptr);
  DomainPtr keep(d);
  GuestSpec g = web("web-1");
  g.nics.clear();
  auto r = ensure_guest(host, "dom-2", g, "test");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not made by runwarden"), std::string::npos) << r.error().message;
  EXPECT_FALSE(remove_guest(host, "dom-2", "web-1").ok());
  EXPECT_EQ(virDomainUndefine(d), 0) << "it was still there";
}

}  // namespace
}  // namespace rw::testbed
