// Testbed storage against libvirt's test driver: one pool per testbed,
// overlays with an explicit backing format, removal of everything.
#include <gtest/gtest.h>

#include "testbed_fixture.h"

#include "testbed/volume.h"

namespace rw::testbed {
namespace {

TEST(TestbedVolume, TheOverlayNamesItsBackingFormatExplicitly) {
  std::string x = overlay_definition("web-1.qcow2", 1 << 30, "/srv/images/base.raw", "raw");
  EXPECT_NE(x.find("<backingStore><path>/srv/images/base.raw</path><format type='raw'/></backingStore>"),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("<target><format type='qcow2'/></target>"), std::string::npos);
  EXPECT_NE(x.find("<capacity unit='bytes'>1073741824</capacity>"), std::string::npos);
}

TEST(TestbedVolume, APoolAndItsOverlaysAreCreatedOnceAndRemovedTogether) {
  Virt host = test_host();
  auto pool = ensure_pool(host, "vol-1", "/var/lib/libvirt/images");
  ASSERT_TRUE(pool.ok()) << pool.error().message;
  auto again = ensure_pool(host, "vol-1", "/var/lib/libvirt/images");
  ASSERT_TRUE(again.ok()) << again.error().message;
  auto elsewhere = ensure_pool(host, "vol-1", "/srv/other");
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_NE(elsewhere.error().message.find("exists at /var/lib/libvirt/images/rw-vol-1"), std::string::npos)
      << elsewhere.error().message;

  auto golden = ensure_overlay(host, pool->get(), "golden.qcow2", "/srv/base.qcow2", "qcow2", 1 << 30);
  ASSERT_TRUE(golden.ok()) << golden.error().message;
  EXPECT_TRUE(golden->created);
  auto same = ensure_overlay(host, pool->get(), "golden.qcow2", "/srv/base.qcow2", "qcow2", 1 << 30);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->created) << "a resumed runner creates nothing twice";
  auto clone = ensure_overlay(host, pool->get(), "web-1.qcow2", golden->path, "qcow2");
  ASSERT_TRUE(clone.ok()) << clone.error().message;
  EXPECT_TRUE(clone->created) << "a clone takes its golden's size";
  EXPECT_FALSE(ensure_overlay(host, pool->get(), "x.qcow2", "/srv/base.vmdk", "vmdk", 1).ok());

  auto tbs = testbeds_with_pools(host);
  ASSERT_TRUE(tbs.ok());
  EXPECT_NE(std::find(tbs->begin(), tbs->end(), "vol-1"), tbs->end());
  auto gone = remove_pool(host, "vol-1");
  ASSERT_TRUE(gone.ok()) << gone.error().message;
  EXPECT_TRUE(*gone);
  auto p = host.find_pool("rw-vol-1");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(*p) << "the pool is undefined";
  auto twice = remove_pool(host, "vol-1");
  ASSERT_TRUE(twice.ok());
  EXPECT_FALSE(*twice);
}

}  // namespace
}  // namespace rw::testbed
