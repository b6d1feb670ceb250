// testbed diff against libvirt's test driver: in sync after up, then each
// kind of drift made by hand and found: missing, extra, changed (by field),
// conflicting (a name held by an object that is not ours).
#include <gtest/gtest.h>

#include "testbed_fixture.h"

#include <map>

#include "testbed/diff.h"
#include "testbed/domain.h"
#include "testbed/network.h"
#include "testbed/up.h"

namespace rw::testbed {
namespace {

Testbed lab(const std::string& id, int guests) { return lab_testbed(id, guests, "10.73.0"); }

Status no_upload(const Virt&, virStorageVolPtr, const std::string&) { return {}; }

std::map<std::string, Drift> by_name(const std::vector<Drift>& ds) {
  std::map<std::string, Drift> m;
  for (const auto& d : ds) m[d.kind + " " + d.name] = d;
  return m;
}

TEST(TestbedDiff, InSyncAfterUpThenEachKindOfDriftIsFound) {
  Virt host = test_host();
  ASSERT_TRUE(up(host, lab("df-1", 3), nullptr, nullptr, no_upload).ok());
  auto same = diff(host, lab("df-1", 3));
  ASSERT_TRUE(same.ok()) << same.error().message;
  for (const auto& d : *same) EXPECT_EQ(d.status, "in-sync") << d.kind << " " << d.name;
  EXPECT_EQ(same->size(), 1u + 3u + 1u + 6u) << "a network, 3 guests, the pool, 3 disks and 3 seeds";

  // The plan now wants 2 guests with more memory, on a network with a
  // larger MTU; web-2 was removed by hand.
  Testbed want = lab("df-1", 2);
  want.guests[0].memory_mib = 1024;
  want.networks[0].mtu = 1400;
  ASSERT_TRUE(remove_guest(host, "df-1", "web-2").ok());
  auto r = diff(host, want);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto m = by_name(*r);
  EXPECT_EQ(m["guest web-1"].status, "changed");
  ASSERT_EQ(m["guest web-1"].fields.size(), 1u);
  EXPECT_EQ(m["guest web-1"].fields[0].field, "memory_mib");
  EXPECT_EQ(m["guest web-1"].fields[0].want, "1024");
  EXPECT_EQ(m["guest web-1"].fields[0].have, "512");
  EXPECT_EQ(m["guest web-2"].status, "missing");
  EXPECT_EQ(m["guest web-3"].status, "extra");
  EXPECT_EQ(m["volume web-3.qcow2"].status, "extra");
  EXPECT_EQ(m["network lab"].status, "changed");
  bool mtu = false, reservations = false;
  for (const auto& f : m["network lab"].fields) {
    mtu |= f.field == "mtu" && f.want == "1400" && f.have.empty();
    reservations |= f.field == "reservations";
  }
  EXPECT_TRUE(mtu);
  EXPECT_TRUE(reservations) << "web-3's reservation is not wanted any more";
  ASSERT_TRUE(down(host, "df-1").ok());
}

TEST(TestbedDiff, ANameHeldByAnotherTestbedIsAConflict) {
  Virt host = test_host();
  // Testbed "df-2" wants network "lab", named rw-df-2-lab; a network of that
  // name is there without our tag.
  const std::string xml = "<network><name>" + libvirt_name(Owner{"df-2", "lab"}) +
                          "</name><bridge name='rwtestconf0'/><ip address='10.74.0.1' prefix='24'/></network>";
  virNetworkPtr n = virNetworkDefineXML(host.get(), xml.c_str());
  ASSERT_NE(n, nullptr);
  Testbed want = lab("df-2", 1);
  want.networks[0].subnet = *parse_subnet("10.75.0.0/24");
  auto r = diff(host, want);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto m = by_name(*r);
  EXPECT_EQ(m["network lab"].status, "conflicting");
  EXPECT_EQ(m["network lab"].holder, "nobody");
  EXPECT_EQ(m["guest web-1"].status, "missing");
  EXPECT_EQ(m["pool rw-df-2"].status, "missing");
  virNetworkUndefine(n);
  virNetworkFree(n);
}

}  // namespace
}  // namespace rw::testbed
