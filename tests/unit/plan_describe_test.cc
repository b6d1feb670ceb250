#include "plan/describe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "plan/parser.h"

namespace rw::plan {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

Plan parse_ok(const std::string& text) {
  auto r = parse_plan(text, "plan.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Plan{};
}

const char* const kSmallPlan = R"(version: 1
hosts:
  hv1: {address: 10.0.0.5}
guests:
  web1: {via: hv1, address: 192.168.122.10}
  app1: {via: web1, address: 10.1.0.2}
stages:
  - name: prepare
    tasks:
      - {name: clean, on: [hv1, web1], run: "rm -rf /tmp/e2e"}
      - {name: push-suite, on: app1, push: {src: ./suite, dst: /tmp/suite}, timeout: 90s}
  - name: test
    parallel: 1
    retries: 2
    retry_delay: 5m
    retry: stage
    restart_from: prepare
    subruns: true
    tasks:
      - {name: linux, run: ./run-suite, timeout: 1h30m, retries: 3}
)";

TEST(PlanDescribe, DescribeListsInitStagesEveryTaskInstanceAndEnd) {
  EXPECT_THAT(lines_of(describe(parse_ok(kSmallPlan))),
              ElementsAre("Init",
                          "Stage 1/2 prepare (parallel unbounded, retries 0, retry task)",
                          "  Task clean [run] on hv1",
                          "  Task clean [run] on web1 (via hv1)",
                          "  Task push-suite [push] on app1 (via hv1 -> web1), timeout 1m30s",
                          "Stage 2/2 test (parallel 1, retries 2, retry_delay 5m, retry stage, "
                          "restart_from prepare, subruns)",
                          "  Task linux [run] on controller, timeout 1h30m, retries 3",
                          "End"));
}

TEST(PlanDescribe, DescribeOfACommandPlanIsOneStageOneTask) {
  EXPECT_EQ(describe(Plan::from_command("./run-suite --all", false)),
            "Init\n"
            "Stage 1/1 run (parallel unbounded, retries 0, retry task)\n"
            "  Task command [run] on controller\n"
            "End\n");
}

TEST(PlanDescribe, DescribeJsonMirrorsTheInstructionList) {
  nlohmann::json j = describe_json(parse_ok(kSmallPlan));
  EXPECT_EQ(j["source"], "plan.yaml");
  EXPECT_EQ(j["version"], 1);
  EXPECT_TRUE(j["hung_after_ms"].is_null());
  const auto& steps = j["steps"];
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(steps[0], nlohmann::json({{"step", "init"}}));
  EXPECT_EQ(steps[1]["step"], "stage");
  EXPECT_EQ(steps[1]["name"], "prepare");
  EXPECT_EQ(steps[1]["index"], 1);
  EXPECT_EQ(steps[1]["count"], 2);
  EXPECT_EQ(steps[1]["parallel"], 0);
  EXPECT_TRUE(steps[1]["restart_from"].is_null());
  EXPECT_EQ(steps[4]["step"], "task");
  EXPECT_EQ(steps[4]["stage"], "prepare");
  EXPECT_EQ(steps[4]["name"], "push-suite");
  EXPECT_EQ(steps[4]["kind"], "push");
  EXPECT_EQ(steps[4]["target"], "app1");
  EXPECT_EQ(steps[4]["via"], nlohmann::json({"hv1", "web1"}));
  EXPECT_EQ(steps[4]["timeout_ms"], 90'000);
  EXPECT_TRUE(steps[4]["retries"].is_null());
  EXPECT_EQ(steps[4]["detail"]["dst"], "/tmp/suite");
  EXPECT_EQ(steps[5]["retry"], "stage");
  EXPECT_EQ(steps[5]["retry_delay_ms"], 300'000);
  EXPECT_EQ(steps[5]["restart_from"], "prepare");
  EXPECT_EQ(steps[5]["subruns"], true);
  EXPECT_EQ(steps[6]["retries"], 3);
  EXPECT_EQ(steps[6]["detail"]["command"], "./run-suite");
  EXPECT_EQ(steps[7], nlohmann::json({{"step", "end"}}));
  // One entry per target, controller included.
  ASSERT_EQ(j["targets"].size(), 4u);
  EXPECT_EQ(j["targets"][0]["name"], "app1");
  EXPECT_EQ(j["targets"][0]["via"], nlohmann::json({"hv1", "web1"}));
}

TEST(PlanDescribe, ShortDurationIsReadBackByParseDuration) {
  for (Millis d : {Millis(0), Millis(500), Millis(90'000), Millis(5'400'000), Millis(86'400'000 + 1),
                   Millis(7'200'000)}) {
    auto back = parse_duration(short_duration(d));
    ASSERT_TRUE(back.ok()) << short_duration(d);
    EXPECT_EQ(*back, d) << short_duration(d);
  }
  EXPECT_EQ(short_duration(std::chrono::hours(2)), "2h");
  EXPECT_EQ(short_duration(Millis(5'400'500)), "1h30m500ms");
}

}  // namespace
}  // namespace rw::plan
