// testbed up/down against libvirt's test driver: every object made once,
// a second up creates nothing, down leaves nothing.
#include <gtest/gtest.h>

#include "testbed_fixture.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "testbed/inventory.h"
#include "testbed/up.h"

namespace rw::testbed {
namespace {

/// The test driver cannot upload: seeds are kept here instead.
struct SeedSink {
  std::mutex mu;  // up makes several guests at once
  std::map<std::string, std::string> written;
  UploadFn fn() {
    return [this](const Virt&, virStorageVolPtr v, const std::string& bytes) -> Status {
      std::lock_guard<std::mutex> lock(mu);
      written[virStorageVolGetName(v)] = bytes;
      return {};
    };
  }
};

Testbed lab(const std::string& id) { return lab_testbed(id, 3, "10.72.0"); }

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

TEST(TestbedUp, DataDisksAreBlankVolumesAttachedAfterTheImageOnce) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  Testbed tb = lab_testbed("up-data", 1, "10.72.1");
  tb.guests[0].data_disks = {16ull << 20, 32ull << 20};
  SeedSink seeds;
  auto r = up(*host, tb, nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string name = tb.guests[0].instances[0];
  for (const char* vol : {"-data1.qcow2", "-data2.qcow2"})
    EXPECT_NE(std::find(r->created.begin(), r->created.end(), "volume " + name + vol), r->created.end())
        << vol << " made";
  auto dom = find_ours(*host, "up-data", name);
  ASSERT_TRUE(dom.ok() && *dom);
  char* desc = virDomainGetXMLDesc(dom->get(), 0);
  ASSERT_NE(desc, nullptr);
  const std::string xml = desc;
  std::free(desc);
  // vda the clone, vdb and vdc the data disks, then the seed.
  const size_t root = xml.find(name + ".qcow2'"), one = xml.find(name + "-data1.qcow2'"),
               two = xml.find(name + "-data2.qcow2'"), seed = xml.find(name + ".seed'");
  ASSERT_NE(one, std::string::npos) << xml;
  EXPECT_LT(root, one);
  EXPECT_LT(one, two);
  EXPECT_LT(two, seed);
  EXPECT_NE(xml.find("<target dev='vdc' bus='virtio'/>"), std::string::npos) << xml;
  auto again = up(*host, tb, nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->created.empty()) << "found the second time";
  ASSERT_TRUE(down(*host, "up-data").ok());
  EXPECT_TRUE(inventory(*host, "up-data")->empty());
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

/// lab() with its guests cloned from golden "gold" of the base image.
Testbed golden_lab(const std::string& id) {
  Testbed tb = lab(id);
  GuestGroup gold = tb.guests[0];
  gold.name = "gold";
  gold.instances = {"gold"};
  gold.addresses = {{"gold", {"10.72.0.20"}}};
  tb.goldens.push_back(gold);
  tb.guests[0].image.clear();
  tb.guests[0].golden = "gold";
  tb.guests[0].disk_bytes = 0;  // the golden's size
  return tb;
}

TEST(TestbedUp, AGoldenIsBootedOnceSealedAndClonedAndNotMadeTwice) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  Testbed tb = golden_lab("up-4");
  SeedSink seeds;
  auto before = up(*host, tb, nullptr, nullptr, seeds.fn());
  ASSERT_FALSE(before.ok()) << "clones of a golden not made yet";
  EXPECT_NE(before.error().message.find("golden gold is not made yet"), std::string::npos) << before.error().message;
  {
    auto conn = Virt::open("test:///default");
    ASSERT_TRUE(conn.ok());
    auto boot = boot_golden(*host, tb, "gold", nullptr, nullptr, seeds.fn());
    ASSERT_TRUE(boot.ok()) << boot.error().message;
    EXPECT_FALSE(boot->sealed);
    EXPECT_EQ(boot->vm.name, "gold");
    ASSERT_EQ(boot->vm.addresses.size(), 1u);
    EXPECT_EQ(*guest_state(*host, "up-4", "gold"), "running");
    EXPECT_TRUE(seeds.written.count("gold.seed"));
    auto sealed = seal_golden(*host, tb, "gold", Millis(300), nullptr, seeds.fn());
    ASSERT_TRUE(sealed.ok()) << sealed.error().message;
  }
  EXPECT_EQ(*guest_state(*host, "up-4", "gold"), "absent") << "the build VM is gone once sealed";
  auto again = boot_golden(*host, tb, "gold", nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->sealed) << "a sealed golden is not built again";
  EXPECT_EQ(*guest_state(*host, "up-4", "gold"), "absent");
  auto r = up(*host, tb, nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->guests.size(), 3u);
  auto pool = host->find_pool(pool_name("up-4"));
  ASSERT_TRUE(pool.ok() && *pool);
  auto golden = find_volume(pool->get(), golden_volume("gold"));
  ASSERT_TRUE(golden.ok() && *golden);
  auto clone = find_volume(pool->get(), "web-2.qcow2");
  ASSERT_TRUE(clone.ok() && *clone);
  char* xml = virStorageVolGetXMLDesc(clone->get(), 0);
  std::string text = xml ? xml : "";
  std::free(xml);
  EXPECT_NE(text.find(*volume_path(golden->get())), std::string::npos) << "a clone is an overlay of the golden: " << text;
  ASSERT_TRUE(down(*host, "up-4").ok());
  EXPECT_TRUE(inventory(*host, "up-4")->empty());
}

TEST(TestbedUp, AnUnsealedGoldenIsBuiltAgainFromItsImage) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  Testbed tb = golden_lab("up-5");
  SeedSink seeds;
  auto first = boot_golden(*host, tb, "gold", nullptr, nullptr, seeds.fn());
  ASSERT_TRUE(first.ok()) << first.error().message;
  // The build was cut short here: no seal. The next try starts over.
  std::vector<std::string> notes;
  auto second = boot_golden(*host, tb, "gold", nullptr, [&](const std::string& s) { notes.push_back(s); }, seeds.fn());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(second->sealed);
  bool said = false;
  for (const auto& n : notes) said |= n.find("an unfinished build is started again") != std::string::npos;
  EXPECT_TRUE(said);
  ASSERT_TRUE(down(*host, "up-5").ok());
  EXPECT_TRUE(inventory(*host, "up-5")->empty());
}

TEST(TestbedUp, TwoGoldensMadeSideBySideShareOneNetworkAndPool) {
  auto host = Virt::open("test:///default");
  ASSERT_TRUE(host.ok());
  Testbed tb = golden_lab("up-6");
  GuestGroup silver = tb.goldens[0];
  silver.name = "silver";
  silver.instances = {"silver"};
  silver.addresses = {{"silver", {"10.72.0.21"}}};
  tb.goldens.push_back(silver);
  SeedSink seeds;
  for (int round = 0; round < 20; ++round) {
    Result<GoldenBoot> a = err("not run"), b = err("not run");
    std::thread t([&] { a = boot_golden(*host, tb, "gold", nullptr, nullptr, seeds.fn()); });
    b = boot_golden(*host, tb, "silver", nullptr, nullptr, seeds.fn());
    t.join();
    ASSERT_TRUE(a.ok()) << "round " << round << ": " << a.error().message;
    ASSERT_TRUE(b.ok()) << "round " << round << ": " << b.error().message;
    auto inv = inventory(*host, "up-6");
    ASSERT_TRUE(inv.ok());
    int nets = 0, pools = 0;
    for (const auto& o : *inv) {
      nets += o.kind == Object::Kind::Network;
      pools += o.kind == Object::Kind::Pool;
    }
    EXPECT_EQ(nets, 1);
    EXPECT_EQ(pools, 1);
    ASSERT_TRUE(down(*host, "up-6").ok());
  }
}

}  // namespace
}  // namespace rw::testbed
