// Snapshots of testbed guests against libvirt's test driver: the snapshot
// XML leaves the read-only seed out, a set over every guest is all or
// nothing, and only our guests are touched.
#include <gtest/gtest.h>

#include "testbed_fixture.h"

#include "testbed/domain.h"
#include "testbed/snapshot.h"

namespace rw::testbed {
namespace {

GuestSpec guest(const std::string& tb, const std::string& name) {
  GuestSpec g;
  g.name = name;
  g.memory_mib = 128;
  g.disks.push_back({"/var/lib/libvirt/images/rw-" + tb + "/" + name + ".qcow2", "qcow2"});
  g.seed = "/var/lib/libvirt/images/rw-" + tb + "/" + name + ".seed";
  return g;
}

/// Guests `names` of testbed `tb`, running.
void make(const Virt& host, const std::string& tb, const std::vector<std::string>& names) {
  for (const auto& n : names) ASSERT_TRUE(ensure_guest(host, tb, guest(tb, n), "qemu").ok()) << n;
}

void clean(const Virt& host, const std::string& tb, const std::vector<std::string>& names) {
  for (const auto& n : names) ASSERT_TRUE(remove_guest(host, tb, n).ok()) << n;
}

TEST(TestbedSnapshot, TheSeedIsLeftOutAndTheDiskIsInternal) {
  const std::string x = snapshot_definition("clean", domain_definition("sn", guest("sn", "web-1"), "qemu"));
  EXPECT_NE(x.find("<name>clean</name>"), std::string::npos) << x;
  EXPECT_NE(x.find("<disk name='vda' snapshot='internal'/>"), std::string::npos) << x;
  EXPECT_NE(x.find("<disk name='vdb' snapshot='no'/>"), std::string::npos) << "the read-only seed: " << x;
}

TEST(TestbedSnapshot, CreateListRevertDeleteOnOneGuest) {
  Virt host = test_host();
  make(host, "sn1", {"web-1"});
  ASSERT_TRUE(create_snapshot(host, "sn1", "web-1", "clean").ok());
  auto dup = create_snapshot(host, "sn1", "web-1", "clean");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("already has a snapshot named clean"), std::string::npos);
  auto list = list_snapshots(host, "sn1");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].guest, "web-1");
  EXPECT_EQ((*list)[0].name, "clean");
  EXPECT_GT((*list)[0].created, 0);
  ASSERT_TRUE(revert_snapshot(host, "sn1", "web-1", "clean").ok());
  EXPECT_EQ(*guest_state(host, "sn1", "web-1"), "running") << "a revert leaves the guest running";
  auto missing = revert_snapshot(host, "sn1", "web-1", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("has no snapshot named nope"), std::string::npos);
  EXPECT_TRUE(*delete_snapshot(host, "sn1", "web-1", "clean"));
  EXPECT_FALSE(*delete_snapshot(host, "sn1", "web-1", "clean")) << "deleting what is gone is not an error";
  EXPECT_TRUE(list_snapshots(host, "sn1")->empty());
  clean(host, "sn1", {"web-1"});
}

TEST(TestbedSnapshot, AWholeTestbedSnapshotIsAllOrNothingAndResumesEveryGuest) {
  Virt host = test_host();
  const std::vector<std::string> all{"web-1", "web-2", "web-3"};
  make(host, "sn2", all);
  ASSERT_TRUE(snapshot_all(host, "sn2", all, "one").ok());
  EXPECT_EQ(list_snapshots(host, "sn2")->size(), 3u);
  for (const auto& g : all) EXPECT_EQ(*guest_state(host, "sn2", g), "running") << g << " resumed";
  // web-3 already has "two": the set fails there, and the two taken before
  // it are deleted again.
  ASSERT_TRUE(create_snapshot(host, "sn2", "web-3", "two").ok());
  auto r = snapshot_all(host, "sn2", all, "two");
  ASSERT_FALSE(r.ok());
  auto list = list_snapshots(host, "sn2");
  ASSERT_TRUE(list.ok());
  int twos = 0;
  for (const auto& s : *list) twos += s.name == "two";
  EXPECT_EQ(twos, 1) << "only web-3's own, made before";
  for (const auto& g : all) EXPECT_EQ(*guest_state(host, "sn2", g), "running") << g << " resumed after the failure";
  // A guest with snapshots is removed with them.
  clean(host, "sn2", all);
  EXPECT_TRUE(list_snapshots(host, "sn2")->empty());
}

TEST(TestbedSnapshot, AGuestThatIsNotOursIsNotTouched) {
  Virt host = test_host();
  // The test driver's own "test" domain has no tag; name it as ours would be.
  auto r = create_snapshot(host, "sn3", "web-1", "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos) << r.error().message;
  const std::string xml =
      "<domain type='test'><name>rw-sn3-web-1</name><memory>131072</memory><os><type>hvm</type></os></domain>";
  virDomainPtr d = virDomainDefineXML(host.get(), xml.c_str());
  ASSERT_NE(d, nullptr);
  auto theirs = create_snapshot(host, "sn3", "web-1", "x");
  ASSERT_FALSE(theirs.ok());
  EXPECT_NE(theirs.error().message.find("belongs to nobody (not made by runwarden)"), std::string::npos)
      << theirs.error().message;
  virDomainUndefine(d);
  virDomainFree(d);
}

}  // namespace
}  // namespace rw::testbed
