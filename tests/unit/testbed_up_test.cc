// testbed up/down against libvirt's test driver: every object made once,
// a second up creates nothing, down leaves nothing.
#include <gtest/gtest.h>

#include <map>

#include "testbed/inventory.h"
#include "testbed/up.h"

namespace rw::testbed {
namespace {

/// The test driver cannot upload: seeds are kept here instead.
struct SeedSink {
  std::map<std::string, std::string> written;
  UploadFn fn() {
    return [this](const Virt&, virStorageVolPtr v, const std::string& bytes) -> Status {
      written[virStorageVolGetName(v)] = bytes;
      return {};
    };
  }
};

Testbed lab(const std::string& id) {
  Testbed tb;
  tb.id = id;
  tb.uri = "test:///default";
  tb.images.push_back({"base", "/srv/base.qcow2", "qcow2"});
  NetworkSpec n;
  n.name = "lab";
  n.subnet = *parse_subnet("10.72.0.0/24");
  tb.networks.push_back(n);
  GuestGroup g;
  g.name = "web";
  g.instances = {"web-1", "web-2", "web-3"};
  g.image = "base";
  g.disk_bytes = 64 << 20;
  g.accel = Accel::Tcg;
  g.networks = {"lab"};
  g.addresses["web-1"] = {"10.72.0.10"};
  g.ssh_keys.push_back("ssh-ed25519 AAAA test");
  tb.guests.push_back(g);
  tb.up_timeout = Millis(2'000);
  return tb;
}

TEST(TestbedUp, UpMakesEverythingOnceAndDownRemovesIt) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  Testbed tb = lab("up-1");
  std::vector<std::string> notes;
  SeedSink seeds;
  auto r = up(*host, tb, nullptr, [&](const std::string& s) { notes.push_back(s); }, seeds.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->guests.size(), 3u);
  for (const auto& g : r->guests) EXPECT_EQ(g.addresses.size(), 1u) << g.name;
  EXPECT_EQ(seeds.written.size(), 3u);
  EXPECT_EQ(seeds.written["web-2.seed"].substr(43, 6), "CIDATA");
  EXPECT_EQ(notes.back().substr(0, 24), "testbed: 3/3 guests up (") << notes.back();
  EXPECT_EQ(r->created.size(), 1u + 3u + 3u) << "a network, 3 clones, 3 guests";
  auto again = up(*host, tb, nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->created.empty()) << "the second up creates nothing";
  auto inv = inventory(*host, "up-1");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->size(), 3u + 1u + 1u);
  auto removed = down(*host, "up-1");
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(*removed, 5);
  EXPECT_TRUE(inventory(*host, "up-1")->empty());
}

TEST(TestbedUp, ACancelledUpStopsBeforeMakingGuests) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  std::atomic<bool> cancel{true};
  SeedSink seeds;
  auto r = up(*host, lab("up-2"), &cancel, nullptr, seeds.fn());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cancelled"), std::string::npos);
  auto inv = inventory(*host, "up-2");
  ASSERT_TRUE(inv.ok());
  for (const auto& o : *inv) EXPECT_NE(o.kind, Object::Kind::Guest);
  ASSERT_TRUE(down(*host, "up-2").ok());
}

TEST(TestbedUp, ALaterRunOfTheSameNameReplacesTheLeftoversAndKeepsItsOwn) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  Testbed first = lab("up-3");
  first.run = "1000";
  SeedSink seeds;
  ASSERT_TRUE(up(*host, first, nullptr, nullptr, seeds.fn()).ok());
  Testbed second = lab("up-3");
  second.run = "2000";
  auto r = up(*host, second, nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->replaced.size(), 3u + 1u + 1u) << "3 guests, a network and the pool of the earlier run";
  EXPECT_EQ(r->created.size(), 1u + 3u + 3u) << "everything made afresh";
  auto inv = inventory(*host, "up-3");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->size(), 3u + 1u + 1u) << "nothing twice";
  auto again = up(*host, second, nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replaced.empty()) << "a resumed run keeps what it made";
  EXPECT_TRUE(again->created.empty());
  ASSERT_TRUE(down(*host, "up-3").ok());
}

}  // namespace
}  // namespace rw::testbed
