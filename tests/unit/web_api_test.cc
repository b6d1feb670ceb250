// The web API as a pure function of a request and a state directory.

#include "web/api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "state/store.h"
#include "state/testbed_record.h"

namespace rw::web {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using state::RunDir;
using state::RunState;
using state::RunStatus;

class WebApi : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "rw-web-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    run("alpha-1", RunStatus::Completed, 1'000'000, 61'000'000);
    run("alpha-2", RunStatus::Running, 2'000'000, 0);
    run("beta-1", RunStatus::Failed, 3'000'000, 3'030'000);
    ASSERT_TRUE(touch_marker(RunDir(root_, "alpha-1").posted_marker()).ok());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void run(const std::string& build, RunStatus status, int64_t start, int64_t end) {
    RunDir dir(root_, build);
    ASSERT_TRUE(make_dirs(dir.path()).ok());
    RunState s;
    s.build = build;
    s.status = status;
    s.started_at_ms = start;
    s.ended_at_ms = end;
    state::StageState st;
    st.name = "only";
    st.status = end ? state::StepStatus::Completed : state::StepStatus::Running;
    state::TaskState t;
    t.name = "t";
    t.attempts = 3;
    st.tasks.push_back(t);
    s.stages.push_back(st);
    ASSERT_TRUE(dir.save(s).ok());
  }
  Response get(const std::string& path, std::map<std::string, std::string> query = {}) {
    return handle(root_, Request{"GET", path, std::move(query)});
  }
  std::string root_;
};

TEST_F(WebApi, ListsRunsFilteredByStateAndPrefixWithPaging) {
  auto all = json::parse(get("/api/v1/runs").body);
  EXPECT_EQ(all["total"], 3);
  ASSERT_EQ(all["runs"].size(), 3u);
  EXPECT_EQ(all["runs"][0]["build"], "alpha-1");
  EXPECT_EQ(all["runs"][0]["message"], "posted");
  EXPECT_EQ(all["runs"][0]["duration_ms"], 60'000'000);
  auto running = json::parse(get("/api/v1/runs", {{"state", "RUNNING,FAILED"}}).body);
  EXPECT_EQ(running["total"], 2);
  auto alpha = json::parse(get("/api/v1/runs", {{"prefix", "alpha-"}, {"limit", "1"}, {"offset", "1"}}).body);
  EXPECT_EQ(alpha["total"], 2);
  ASSERT_EQ(alpha["runs"].size(), 1u);
  EXPECT_EQ(alpha["runs"][0]["build"], "alpha-2");
}

TEST_F(WebApi, BadInputGetsTheDocumented4xx) {
  EXPECT_EQ(get("/api/v1/runs", {{"limit", "0"}}).status, 400);
  EXPECT_EQ(get("/api/v1/runs", {{"limit", "abc"}}).status, 400);
  EXPECT_EQ(get("/api/v1/runs", {{"state", "DONE"}}).status, 400);
  EXPECT_EQ(get("/api/v1/runs", {{"prefix", "../x"}}).status, 400);
  EXPECT_EQ(get("/api/v1/runs/../../etc").status, 400);
  EXPECT_EQ(get("/api/v1/runs/" + std::string(200, 'a')).status, 400);
  EXPECT_EQ(get("/api/v1/runs/nope").status, 404);
  EXPECT_EQ(get("/api/v1/runs/alpha-1/secrets").status, 404);
  EXPECT_EQ(get("/etc/passwd").status, 404);
  EXPECT_EQ(get("/" + std::string(kMaxPath + 1, 'x')).status, 414);
  EXPECT_EQ(handle(root_, Request{"POST", "/api/v1/runs", {}}).status, 405);
  EXPECT_EQ(handle(root_, Request{"HEAD", "/api/v1/runs", {}}).status, 200);
}

TEST_F(WebApi, OneRunHistoryAndLogTail) {
  auto one = get("/api/v1/runs/beta-1");
  ASSERT_EQ(one.status, 200);
  auto j = json::parse(one.body);
  EXPECT_EQ(j["status"], "FAILED");
  EXPECT_EQ(j["stages"][0]["tasks"][0]["attempts"], 3);
  EXPECT_FALSE(j.contains("journal_seq"));
  ASSERT_TRUE(state::archive_run(root_, "beta-1", 5).ok());
  run("beta-1", RunStatus::Running, 4'000'000, 0);
  auto h = json::parse(get("/api/v1/runs/beta-1/history").body);
  ASSERT_EQ(h["history"].size(), 1u);
  EXPECT_EQ(h["history"][0]["status"], "FAILED");
  ASSERT_TRUE(write_file_atomic(RunDir(root_, "beta-1").runner_log(), "one\ntwo\nthree\n").ok());
  auto tail = get("/api/v1/runs/beta-1/log", {{"tail", "2"}});
  EXPECT_EQ(tail.status, 200);
  EXPECT_EQ(tail.body, "two\nthree\n");
  EXPECT_EQ(get("/api/v1/runs/beta-1/log", {{"tail", "0"}}).status, 400);
}

TEST_F(WebApi, MetricsCountRunsDurationsDeliveriesAndRetries) {
  auto m = get("/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("runwarden_runs{state=\"RUNNING\"} 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("runwarden_active_runs 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("runwarden_run_duration_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(m.body.find("runwarden_run_duration_seconds_bucket{le=\"60\"} 1\n"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("runwarden_messages_delivered_total 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("runwarden_task_retries_total 6\n"), std::string::npos);
}

TEST_F(WebApi, MetricsFollowTheFilesTheyAreMadeOf) {
  // Asked twice, the second answer comes from the per-run cache: it must
  // still see every change to the runs' files.
  EXPECT_NE(get("/metrics").body.find("runwarden_messages_delivered_total 1\n"), std::string::npos);
  ASSERT_TRUE(touch_marker(RunDir(root_, "beta-1").posted_marker()).ok());
  run("alpha-2", RunStatus::Completed, 2'000'000, 2'010'000);
  auto m = get("/metrics").body;
  EXPECT_NE(m.find("runwarden_messages_delivered_total 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("runwarden_active_runs 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("runwarden_run_duration_seconds_count 3\n"), std::string::npos) << m;
}

TEST_F(WebApi, TestbedGuestsInTheRunAndInMetrics) {
  const std::string file = RunDir(root_, "alpha-2").testbed_file();
  ASSERT_TRUE(state::record_guests_up(file, "qemu:///system",
                                      {{"web-1", "rw-alpha-2-web-1", {"10.9.0.11"}, ""},
                                       {"web-2", "rw-alpha-2-web-2", {"10.9.0.12", "10.8.0.12"}, ""}})
                  .ok());
  auto one = json::parse(get("/api/v1/runs/alpha-2").body);
  ASSERT_TRUE(one.contains("testbed")) << one.dump();
  EXPECT_EQ(one["testbed"]["uri"], "qemu:///system");
  EXPECT_EQ(one["testbed"]["guests"].size(), 2u);
  EXPECT_EQ(one["testbed"]["guests"][1]["addresses"][1], "10.8.0.12");
  EXPECT_EQ(one["testbed"]["guests"][1]["state"], "up");
  EXPECT_FALSE(json::parse(get("/api/v1/runs/alpha-1").body).contains("testbed")) << "no testbed, no key";
  auto m = get("/metrics").body;
  EXPECT_NE(m.find("# TYPE runwarden_testbed_guests gauge\n"), std::string::npos) << m;
  EXPECT_NE(m.find("runwarden_testbed_guests{state=\"up\"} 2\n"), std::string::npos) << m;
  ASSERT_TRUE(state::record_guests_removed(file).ok());
  m = get("/metrics").body;
  EXPECT_NE(m.find("runwarden_testbed_guests{state=\"up\"} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("runwarden_testbed_guests{state=\"removed\"} 2\n"), std::string::npos) << m;
  EXPECT_EQ(json::parse(get("/api/v1/runs/alpha-2").body)["testbed"]["guests"][0]["state"], "removed");
  EXPECT_NE(get("/runs/alpha-2").body.find("testbed guests"), std::string::npos) << "the run page has a place for them";
}

TEST(TestbedRecord, GuestsUpReplaceByNameAndDownMarksAllRemoved) {
  std::string tmpl = (fs::temp_directory_path() / "rw-tbrec-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string file = tmpl + "/testbed.json";
  ASSERT_TRUE(state::record_guests_removed(file).ok());
  EXPECT_FALSE(path_exists(file)) << "nothing recorded, nothing written";
  ASSERT_TRUE(state::record_guests_up(file, "test:///default", {{"a", "rw-x-a", {"1.1.1.1"}, ""}}).ok());
  ASSERT_TRUE(state::record_guests_up(file, "test:///default", {{"a", "rw-x-a", {"2.2.2.2"}, ""}, {"b", "rw-x-b", {}, ""}}).ok());
  auto r = state::testbed_record_from_json(*read_file(file));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->guests.size(), 2u);
  EXPECT_EQ(r->guests[0].addresses, std::vector<std::string>{"2.2.2.2"});
  EXPECT_EQ(state::guests_up(*r), 2u);
  EXPECT_GT(r->updated_at_ms, 0);
  ASSERT_TRUE(state::record_guests_removed(file).ok());
  EXPECT_EQ(state::guests_up(*state::testbed_record_from_json(*read_file(file))), 0u);
  EXPECT_FALSE(state::testbed_record_from_json("[1]").ok());
  EXPECT_FALSE(state::testbed_record_from_json(R"({"guests":[{"addresses":[]}]})").ok()) << "a guest without a name";
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

TEST_F(WebApi, EventStreamsOfTheListAndOfOneRun) {
  auto all = get("/api/v1/events");
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(all.content_type, "text/event-stream");
  EXPECT_EQ(all.stream, "*");
  auto one = get("/api/v1/runs/alpha-2/events");
  EXPECT_EQ(one.stream, "alpha-2");
  EXPECT_EQ(get("/api/v1/runs/nope/events").status, 404);
  EXPECT_EQ(get("/api/v1/runs/nope/events").stream, "");
  auto list = json::parse(snapshot(root_, "*"));
  EXPECT_EQ(list["total"], 3);
  ASSERT_TRUE(write_file_atomic(RunDir(root_, "alpha-2").runner_log(), "working\n").ok());
  auto run = json::parse(snapshot(root_, "alpha-2"));
  EXPECT_EQ(run["run"]["status"], "RUNNING");
  EXPECT_EQ(run["log"], "working\n");
}

TEST_F(WebApi, PagesAreSelfContained) {
  for (std::string p : {"/", "/runs/alpha-1"}) {
    auto r = get(p);
    EXPECT_EQ(r.status, 200) << p;
    EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
    EXPECT_EQ(r.body.find("http://"), std::string::npos) << p << " loads nothing from elsewhere";
    EXPECT_EQ(r.body.find("https://"), std::string::npos) << p;
  }
  EXPECT_EQ(get("/runs/nope").status, 404);
}

}  // namespace
}  // namespace rw::web
