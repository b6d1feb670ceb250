// The plan's testbed: section: guests become targets with reserved
// addresses, the section compiles into generated stages, and bad input is
// reported with file:line:column.
#include <gtest/gtest.h>

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
  EXPECT_EQ(p->targets.at("web-2").host_key_policy, "accept-new") << "guests get fresh host keys";
  const auto& web = p->testbed->guests.at(1);
  EXPECT_EQ(web.instances, (std::vector<std::string>{"web-1", "web-2", "web-3"}));
  EXPECT_EQ(web.addresses.at("web-2"), (std::vector<std::string>{"10.77.0.11", "10.78.0.12"}));
  EXPECT_EQ(web.memory_mib, 256);
  EXPECT_EQ(web.disk_bytes, 1ull << 30);
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

}  // namespace
}  // namespace rw::plan
