#include "state/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/files.h"

namespace rw::state {
namespace {

namespace fs = std::filesystem;

RunState full_state() {
  RunState s;
  s.build = "e2e-redhat9.6-ubuntu24.04-w2k25-fc";
  s.status = RunStatus::Failed;
  s.decided_by = "runner";
  s.reason = "exit code 3";
  s.created_at_ms = 1'700'000'000'000;
  s.started_at_ms = 1'700'000'001'000;
  s.ended_at_ms = 1'700'000'901'000;
  s.hung_after_ms = 45 * 60'000;
  s.subrun_grace_ms = 12'345;
  s.categorized = true;
  s.host = "controller-1";
  s.workdir = "/srv/e2e";
  s.plan_file = "plan.yaml";
  s.runner_command = "./run-suite --all";
  s.template_command = "python3 ./make-templates.py --name e2e";
  s.meta = {{"config_family", "gold"}, {"integration", "pure with fc"}};
  s.mention_on_failure = "@qa-oncall";
  s.exit_code = 3;
  s.signal = 15;
  s.runner_starts = 2;
  s.failure = FailureInfo{"test", "windows", "controller", "tasks/test/windows@controller.log"};
  s.progress = "stage 2/2 test: 1/2 done, 1 failed";

  StageState prepare;
  prepare.name = "prepare";
  prepare.status = StepStatus::Completed;
  prepare.attempts = 1;
  prepare.started_at_ms = 1'700'000'001'000;
  prepare.ended_at_ms = 1'700'000'002'000;
  TaskState clean;
  clean.name = "clean";
  clean.target = "hv1";
  clean.status = StepStatus::Completed;
  clean.attempts = 1;
  clean.exit_code = 0;
  clean.log = "tasks/prepare/clean@hv1.log";
  prepare.tasks.push_back(clean);

  StageState test;
  test.name = "test";
  test.status = StepStatus::Failed;
  test.attempts = 2;
  TaskState linux_task;
  linux_task.name = "linux";
  linux_task.target = "controller";
  linux_task.status = StepStatus::Completed;
  linux_task.attempts = 1;
  linux_task.exit_code = 0;
  TaskState windows;
  windows.name = "windows";
  windows.target = "controller";
  windows.status = StepStatus::Failed;
  windows.attempts = 2;
  windows.exit_code = 3;
  windows.signal = 9;
  windows.reason = "exit code 3";
  windows.started_at_ms = 5;
  windows.ended_at_ms = 6;
  windows.retry_at_ms = 7;
  windows.log = "tasks/test/windows@controller.log";
  test.tasks = {linux_task, windows};
  s.stages = {prepare, test};
  return s;
}

void expect_same_task(const TaskState& a, const TaskState& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.status, b.status) << a.name;
  EXPECT_EQ(a.attempts, b.attempts) << a.name;
  EXPECT_EQ(a.exit_code, b.exit_code) << a.name;
  EXPECT_EQ(a.signal, b.signal) << a.name;
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.started_at_ms, b.started_at_ms);
  EXPECT_EQ(a.ended_at_ms, b.ended_at_ms);
  EXPECT_EQ(a.retry_at_ms, b.retry_at_ms);
  EXPECT_EQ(a.log, b.log);
}

void expect_same(const RunState& a, const RunState& b) {
  EXPECT_EQ(a.schema, b.schema);
  EXPECT_EQ(a.build, b.build);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.decided_by, b.decided_by);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.created_at_ms, b.created_at_ms);
  EXPECT_EQ(a.started_at_ms, b.started_at_ms);
  EXPECT_EQ(a.ended_at_ms, b.ended_at_ms);
  EXPECT_EQ(a.hung_after_ms, b.hung_after_ms);
  EXPECT_EQ(a.subrun_grace_ms, b.subrun_grace_ms);
  EXPECT_EQ(a.categorized, b.categorized);
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.workdir, b.workdir);
  EXPECT_EQ(a.plan_file, b.plan_file);
  EXPECT_EQ(a.runner_command, b.runner_command);
  EXPECT_EQ(a.template_command, b.template_command);
  EXPECT_EQ(a.meta, b.meta);
  EXPECT_EQ(a.mention_on_failure, b.mention_on_failure);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.signal, b.signal);
  EXPECT_EQ(a.runner_starts, b.runner_starts);
  ASSERT_EQ(a.failure.has_value(), b.failure.has_value());
  if (a.failure) {
    EXPECT_EQ(a.failure->stage, b.failure->stage);
    EXPECT_EQ(a.failure->task, b.failure->task);
    EXPECT_EQ(a.failure->target, b.failure->target);
    EXPECT_EQ(a.failure->log, b.failure->log);
  }
  EXPECT_EQ(a.progress, b.progress);
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t i = 0; i < a.stages.size(); ++i) {
    EXPECT_EQ(a.stages[i].name, b.stages[i].name);
    EXPECT_EQ(a.stages[i].status, b.stages[i].status);
    EXPECT_EQ(a.stages[i].attempts, b.stages[i].attempts);
    EXPECT_EQ(a.stages[i].started_at_ms, b.stages[i].started_at_ms);
    EXPECT_EQ(a.stages[i].ended_at_ms, b.stages[i].ended_at_ms);
    ASSERT_EQ(a.stages[i].tasks.size(), b.stages[i].tasks.size());
    for (size_t t = 0; t < a.stages[i].tasks.size(); ++t) expect_same_task(a.stages[i].tasks[t], b.stages[i].tasks[t]);
  }
}

/// Parses without letting an exception escape the test's expectations.
Result<RunState> parse(const std::string& text) {
  try {
    return run_state_from_json(text);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "run_state_from_json threw: " << e.what() << "\ninput: " << text;
    return err("threw");
  }
}

std::string minimal(const std::string& extra) {
  return std::string(R"({"schema": 1, "build": "b", "status": "RUNNING")") + (extra.empty() ? "" : ", " + extra) + "}";
}

TEST(StateJson, AFullRunStateSurvivesARoundTrip) {
  RunState s = full_state();
  auto back = parse(to_json(s));
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(s, *back);
}

TEST(StateJson, ADefaultRunStateSurvivesARoundTrip) {
  RunState s;
  s.build = "b";
  auto back = parse(to_json(s));
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(s, *back);
  EXPECT_FALSE(back->failure.has_value());
  EXPECT_FALSE(back->exit_code.has_value());
}

TEST(StateJson, EveryRunStatusSurvivesARoundTrip) {
  for (auto st : {RunStatus::Pending, RunStatus::Running, RunStatus::Completed, RunStatus::Failed,
                  RunStatus::Cancelled, RunStatus::Terminated, RunStatus::Hung, RunStatus::FailedToStart}) {
    RunState s;
    s.status = st;
    auto back = parse(to_json(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->status, st) << to_string(st);
  }
}

TEST(StateJson, InvalidUtf8InAStringIsReplacedNotThrown) {
  RunState s;
  s.reason = "bad \xff\xfe bytes";
  std::string text;
  ASSERT_NO_THROW(text = to_json(s));
  auto back = parse(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->reason, "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
}

TEST(StateJson, DamagedJsonIsAnErrorNotAnException) {
  for (const char* text : {"", "{", "{\"schema\": 1,", "null", "[1, 2]", "\"x\"", "5", "{\"schema\":1}}",
                           "\xff\xfe", "{\"schema\": 1e400}"}) {
    auto r = parse(text);
    EXPECT_FALSE(r.ok()) << "accepted: " << text;
  }
  std::string truncated = to_json(full_state());
  truncated.resize(truncated.size() / 2);
  EXPECT_FALSE(parse(truncated).ok());
}

TEST(StateJson, AMissingOrUnknownSchemaIsRefused) {
  auto r = parse(R"({"build": "b", "status": "RUNNING"})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("schema"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse(R"({"schema": 2, "status": "RUNNING"})").ok());
  EXPECT_FALSE(parse(R"({"schema": "1", "status": "RUNNING"})").ok());
}

TEST(StateJson, ANumericStatusIsUnknown) {
  auto r = parse(R"({"schema": 1, "status": 5})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, RunStatus::Unknown);
}

TEST(StateJson, StatusesAreParsedStrictly) {
  for (const char* st : {"completed", "Completed", " COMPLETED", ""}) {
    auto r = parse(std::string(R"({"schema": 1, "status": ")") + st + "\"}");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, RunStatus::Unknown) << st;
  }
  auto missing = parse(R"({"schema": 1})");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, RunStatus::Unknown);
}

TEST(StateJson, StagesThatAreNotAListAreIgnored) {
  for (const char* v : {R"("x")", "5", "{}", "null"}) {
    auto r = parse(minimal(std::string(R"("stages": )") + v));
    ASSERT_TRUE(r.ok()) << v << ": " << r.error().message;
    EXPECT_TRUE(r->stages.empty()) << v;
  }
}

TEST(StateJson, AStageEntryThatIsNotAnObjectIsAnError) {
  auto r = parse(minimal(R"("stages": [5])"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("stage"), std::string::npos) << r.error().message;
}

TEST(StateJson, AStageOrTaskWithAnUnknownStatusIsAnErrorNamingIt) {
  auto stage = parse(minimal(R"("stages": [{"name": "prep", "status": "DONE", "tasks": []}])"));
  ASSERT_FALSE(stage.ok());
  EXPECT_NE(stage.error().message.find("prep"), std::string::npos) << stage.error().message;
  auto task = parse(
      minimal(R"("stages": [{"name": "prep", "status": "RUNNING", "tasks": [{"name": "clean", "status": 1}]}])"));
  ASSERT_FALSE(task.ok());
  EXPECT_NE(task.error().message.find("clean"), std::string::npos) << task.error().message;
  EXPECT_FALSE(parse(minimal(R"("stages": [{"name": "p", "status": "RUNNING", "tasks": ["x"]}])")).ok());
}

TEST(StateJson, WrongTypesInsideATaskFallBackToDefaults) {
  auto r = parse(minimal(
      R"("stages": [{"name": "t", "status": "RUNNING", "attempts": "one", "tasks": [)"
      R"({"name": "a", "status": "ERROR", "attempts": "two", "exit_code": "3", "signal": 9.5,)"
      R"( "reason": 7, "started_at_ms": "soon", "retry_at_ms": [], "log": {}, "target": null}]}])"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->stages.size(), 1u);
  EXPECT_EQ(r->stages[0].attempts, 0);
  ASSERT_EQ(r->stages[0].tasks.size(), 1u);
  const auto& t = r->stages[0].tasks[0];
  EXPECT_EQ(t.status, StepStatus::Error);
  EXPECT_EQ(t.attempts, 0);
  EXPECT_FALSE(t.exit_code.has_value());
  EXPECT_FALSE(t.signal.has_value());
  EXPECT_EQ(t.reason, "");
  EXPECT_EQ(t.started_at_ms, 0);
  EXPECT_EQ(t.retry_at_ms, 0);
  EXPECT_EQ(t.log, "");
  EXPECT_EQ(t.target, "");
}

TEST(StateJson, WrongTypesAtTheTopFallBackToDefaults) {
  auto r = parse(R"({"schema": 1, "status": "COMPLETED", "build": 7, "categorized": "yes",)"
                 R"( "created_at_ms": "now", "subrun_grace_ms": "long", "exit_code": "0", "signal": true,)"
                 R"( "meta": {"a": 1, "b": "x", "c": null}, "failure": "x", "runner_starts": 1.5,)"
                 R"( "progress": ["p"], "hung_after_ms": -1})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, RunStatus::Completed);
  EXPECT_EQ(r->build, "");
  EXPECT_FALSE(r->categorized);
  EXPECT_EQ(r->created_at_ms, 0);
  EXPECT_EQ(r->subrun_grace_ms, 30'000);
  EXPECT_FALSE(r->exit_code.has_value());
  EXPECT_FALSE(r->signal.has_value());
  EXPECT_EQ(r->meta, (std::map<std::string, std::string>{{"b", "x"}}));
  EXPECT_FALSE(r->failure.has_value());
  EXPECT_EQ(r->runner_starts, 0);
  EXPECT_EQ(r->progress, "");
  EXPECT_EQ(r->hung_after_ms, -1);
}

TEST(StateJson, OutOfRangeIntegersDoNotThrow) {
  auto r = parse(minimal(R"("exit_code": 18446744073709551615, "runner_starts": 99999999999999,)"
                         R"( "stages": [{"name": "s", "status": "SCHEDULED", "attempts": -99999999999999}])"));
  EXPECT_TRUE(r.ok());
}

TEST(SubrunJson, ASubrunSurvivesARoundTrip) {
  SubrunState s;
  s.key = "windows";
  s.status = RunStatus::Failed;
  s.started_at_ms = 10;
  s.ended_at_ms = 20;
  s.exit_code = 3;
  s.message = "3 failed";
  s.log = "/srv/e2e/win.log";
  auto back = subrun_state_from_json(to_json(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->key, "windows");
  EXPECT_EQ(back->status, RunStatus::Failed);
  EXPECT_EQ(back->started_at_ms, 10);
  EXPECT_EQ(back->ended_at_ms, 20);
  EXPECT_EQ(back->exit_code, 3);
  EXPECT_EQ(back->message, "3 failed");
  EXPECT_EQ(back->log, "/srv/e2e/win.log");
}

TEST(SubrunJson, DamagedOrOddlyTypedSubrunsNeverThrow) {
  EXPECT_FALSE(subrun_state_from_json("{").ok());
  EXPECT_FALSE(subrun_state_from_json("[]").ok());
  Result<SubrunState> r = err("unset");
  ASSERT_NO_THROW(r = subrun_state_from_json(R"({"key": 1, "status": "completed", "exit_code": "0"})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, RunStatus::Unknown);
  EXPECT_FALSE(r->exit_code.has_value());
}

class Store : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "rw-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  /// A run directory with a saved PENDING state created at `created`.
  RunDir make_run(const std::string& build, int64_t created = 1'700'000'000'000) {
    RunDir dir(root_, build);
    EXPECT_TRUE(make_dirs(dir.path()).ok());
    RunState s;
    s.build = build;
    s.created_at_ms = created;
    EXPECT_TRUE(dir.save(s).ok());
    return dir;
  }
  std::vector<std::string> history(const std::string& build) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ + "/history/" + build, ec))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string root_;
};

TEST_F(Store, RunDirPathsLiveUnderRunsBuild) {
  RunDir dir(root_, "b1");
  EXPECT_EQ(dir.path(), root_ + "/runs/b1");
  EXPECT_EQ(dir.state_file(), root_ + "/runs/b1/state.json");
  EXPECT_EQ(dir.posted_marker_for(""), root_ + "/runs/b1/posted.marker");
  EXPECT_EQ(dir.posted_marker_for("linux"), root_ + "/runs/b1/subruns/linux/posted.marker");
  EXPECT_EQ(dir.notification_file_for("linux"), root_ + "/runs/b1/subruns/linux/notification.json");
  EXPECT_FALSE(dir.exists());
}

TEST_F(Store, SaveThenLoadGivesTheSameState) {
  RunDir dir(root_, "b1");
  ASSERT_TRUE(make_dirs(dir.path()).ok());
  RunState s = full_state();
  ASSERT_TRUE(dir.save(s).ok());
  EXPECT_TRUE(dir.exists());
  auto back = dir.load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same(s, *back);
}

TEST_F(Store, LoadingAMissingStateIsAnErrorNamingTheFile) {
  RunDir dir(root_, "b1");
  auto r = dir.load();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir.state_file()), std::string::npos) << r.error().message;
}

TEST_F(Store, LoadingADamagedStateIsAnErrorNamingTheFile) {
  RunDir dir(root_, "b1");
  ASSERT_TRUE(make_dirs(dir.path()).ok());
  ASSERT_TRUE(write_file_atomic(dir.state_file(), "{\"schema\": 1, \"sta").ok());
  auto r = dir.load();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dir.state_file()), std::string::npos) << r.error().message;
}

TEST_F(Store, UpdateChangesTheSavedState) {
  RunDir dir = make_run("b1");
  ASSERT_TRUE(dir.update([](RunState& s) {
                   s.status = RunStatus::Running;
                   s.meta["k"] = "v";
                   return true;
                 }).ok());
  auto r = dir.load();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, RunStatus::Running);
  EXPECT_EQ(r->meta.at("k"), "v");
}

TEST_F(Store, UpdateReturningFalseLeavesTheFileAlone) {
  RunDir dir = make_run("b1");
  auto before = read_file(dir.state_file());
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(dir.update([](RunState& s) {
                   s.status = RunStatus::Failed;
                   return false;
                 }).ok());
  EXPECT_EQ(*read_file(dir.state_file()), *before);
}

TEST_F(Store, UpdateOfAMissingStateFailsWithoutCallingTheChange) {
  RunDir dir(root_, "b1");
  ASSERT_TRUE(make_dirs(dir.path()).ok());
  bool called = false;
  auto s = dir.update([&](RunState&) {
    called = true;
    return true;
  });
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(called);
  EXPECT_FALSE(path_exists(dir.state_file()));
}

TEST_F(Store, ConcurrentUpdatesNeverLoseAnIncrement) {
  RunDir dir = make_run("b1");
  auto increment = [&] {
    for (int i = 0; i < 200; ++i) {
      auto s = dir.update([](RunState& st) {
        int n = st.meta.count("counter") ? std::stoi(st.meta["counter"]) : 0;
        st.meta["counter"] = std::to_string(n + 1);
        return true;
      });
      if (!s.ok()) {
        ADD_FAILURE() << s.error().message;
        return;
      }
    }
  };
  std::thread a(increment), b(increment);
  a.join();
  b.join();
  auto r = dir.load();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->meta["counter"], "400");
}

TEST_F(Store, SubrunsAreSavedUnderTheirKeyAndListedSorted) {
  RunDir dir = make_run("b1");
  for (const char* key : {"windows", "linux", "bsd"}) {
    SubrunState s;
    s.key = key;
    s.status = RunStatus::Completed;
    ASSERT_TRUE(dir.save_subrun(s).ok());
  }
  EXPECT_EQ(dir.subrun_keys(), (std::vector<std::string>{"bsd", "linux", "windows"}));
  auto linux_sub = dir.load_subrun("linux");
  ASSERT_TRUE(linux_sub.ok());
  EXPECT_EQ(linux_sub->key, "linux");
  EXPECT_EQ(linux_sub->status, RunStatus::Completed);
  EXPECT_TRUE(path_exists(dir.subrun_dir("linux") + "/state.json"));
  EXPECT_FALSE(dir.load_subrun("macos").ok());
}

TEST_F(Store, ARunWithoutSubrunsListsNone) { EXPECT_TRUE(make_run("b1").subrun_keys().empty()); }

TEST_F(Store, NotificationRecordsRoundTripWithTheirPayloadAndArePrivate) {
  RunDir dir = make_run("b1");
  NotificationRecord n;
  n.subrun = "linux";
  n.status = "failed";
  n.attempts = 3;
  n.last_http_status = 503;
  n.last_error = "HTTP 503";
  n.updated_at_ms = 42;
  n.payload = R"({"text":"run COMPLETED","username":"runwarden"})";
  ASSERT_TRUE(dir.save_notification(n).ok());
  struct stat st {};
  ASSERT_EQ(::stat(dir.notification_file_for("linux").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  auto back = dir.load_notification("linux");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->subrun, "linux");
  EXPECT_EQ(back->status, "failed");
  EXPECT_EQ(back->attempts, 3);
  EXPECT_EQ(back->last_http_status, 503);
  EXPECT_EQ(back->last_error, "HTTP 503");
  EXPECT_EQ(back->updated_at_ms, 42);
  EXPECT_EQ(back->payload, n.payload);
  EXPECT_FALSE(dir.load_notification("").ok());  // the run's own was never saved
}

TEST_F(Store, ANotificationWithoutAnObjectPayloadIsAnError) {
  RunDir dir = make_run("b1");
  ASSERT_TRUE(write_file_atomic(dir.notification_file(), R"({"status": "sent", "payload": "text"})").ok());
  EXPECT_FALSE(dir.load_notification("").ok());
  ASSERT_TRUE(write_file_atomic(dir.notification_file(), "{").ok());
  EXPECT_FALSE(dir.load_notification("").ok());
}

TEST_F(Store, ListBuildsNamesRunDirectoriesSorted) {
  EXPECT_TRUE(list_builds(root_).empty());
  make_run("zeta");
  make_run("alpha");
  ASSERT_TRUE(write_file_atomic(root_ + "/runs/not-a-dir", "").ok());
  EXPECT_EQ(list_builds(root_), (std::vector<std::string>{"alpha", "zeta"}));
}

TEST_F(Store, ArchiveRunMovesTheRunToHistoryNamedByItsStartTime) {
  const int64_t created = 1'700'000'000'123;
  RunDir dir = make_run("b1", created);
  ASSERT_TRUE(touch_marker(dir.posted_marker()).ok());
  ASSERT_TRUE(archive_run(root_, "b1", 5).ok());
  EXPECT_FALSE(dir.exists());
  std::string dest = root_ + "/history/b1/" + compact_time(created);
  EXPECT_TRUE(path_exists(dest + "/state.json"));
  EXPECT_TRUE(path_exists(dest + "/posted.marker"));  // moved, nothing deleted
  EXPECT_EQ(history("b1"), std::vector<std::string>{compact_time(created)});
}

TEST_F(Store, ArchiveRunOfAnAbsentRunDoesNothing) {
  EXPECT_TRUE(archive_run(root_, "never", 3).ok());
  EXPECT_FALSE(path_exists(root_ + "/history/never"));
}

TEST_F(Store, ArchiveRunKeepsOnlyTheNewestEntries) {
  const int64_t base = 1'700'000'000'000;
  for (int i = 0; i < 4; ++i) {
    make_run("b1", base + i * 60'000);
    ASSERT_TRUE(archive_run(root_, "b1", 2).ok());
  }
  EXPECT_EQ(history("b1"), (std::vector<std::string>{compact_time(base + 2 * 60'000), compact_time(base + 3 * 60'000)}));
}

TEST_F(Store, ArchiveRunWithKeepZeroKeepsEverything) {
  const int64_t base = 1'700'000'000'000;
  for (int i = 0; i < 3; ++i) {
    make_run("b1", base + i * 1'000);
    ASSERT_TRUE(archive_run(root_, "b1", 0).ok());
  }
  EXPECT_EQ(history("b1").size(), 3u);
}

TEST_F(Store, ArchivingTwoRunsWithTheSameStartTimeKeepsBoth) {
  make_run("b1", 1'700'000'000'000);
  ASSERT_TRUE(archive_run(root_, "b1", 5).ok());
  make_run("b1", 1'700'000'000'000);
  ASSERT_TRUE(archive_run(root_, "b1", 5).ok());
  auto h = history("b1");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0], compact_time(1'700'000'000'000));
  EXPECT_EQ(h[1], compact_time(1'700'000'000'000) + "-1");
}

TEST_F(Store, ArchivingADamagedRunStillMovesIt) {
  RunDir dir(root_, "b1");
  ASSERT_TRUE(make_dirs(dir.path()).ok());
  ASSERT_TRUE(write_file_atomic(dir.state_file(), "garbage").ok());
  ASSERT_TRUE(archive_run(root_, "b1", 5).ok());
  EXPECT_FALSE(dir.exists());
  EXPECT_EQ(history("b1").size(), 1u);
}

TEST_F(Store, BuildLockRefusesASecondHolderWithCode3) {
  auto first = BuildLock::acquire(root_, "b1");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(path_exists(root_ + "/locks/b1.lock"));
  // flock belongs to the open file description: a new open conflicts even
  // in the same process.
  auto second = BuildLock::acquire(root_, "b1");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, 3);
  EXPECT_NE(second.error().message.find("b1"), std::string::npos) << second.error().message;
}

TEST_F(Store, BuildLocksOfDifferentBuildsAreIndependent) {
  auto a = BuildLock::acquire(root_, "a");
  auto b = BuildLock::acquire(root_, "b");
  EXPECT_TRUE(a.ok());
  EXPECT_TRUE(b.ok());
}

TEST_F(Store, ABuildLockIsReleasedWhenItsHolderGoes) {
  {
    auto first = BuildLock::acquire(root_, "b1");
    ASSERT_TRUE(first.ok());
  }
  auto again = BuildLock::acquire(root_, "b1");
  EXPECT_TRUE(again.ok()) << (again.ok() ? "" : again.error().message);
}

TEST(StateRoot, TheEnvironmentOverridesTheDefault) {
  const char* old = std::getenv("RUNWARDEN_STATE_DIR");
  std::string saved = old ? old : "";
  ::setenv("RUNWARDEN_STATE_DIR", "/tmp/rw-elsewhere", 1);
  EXPECT_EQ(state_root(), "/tmp/rw-elsewhere");
  ::setenv("RUNWARDEN_STATE_DIR", "", 1);
  EXPECT_EQ(state_root(), "/var/lib/runwarden");
  ::unsetenv("RUNWARDEN_STATE_DIR");
  EXPECT_EQ(state_root(), "/var/lib/runwarden");
  if (old) ::setenv("RUNWARDEN_STATE_DIR", saved.c_str(), 1);
}

}  // namespace
}  // namespace rw::state

namespace rw::state {
namespace {

/// A run of `stages` stages with `tasks` scheduled tasks each, saved.
RunState staged_state(size_t stages, size_t tasks) {
  RunState s;
  s.build = "j1";
  s.status = RunStatus::Running;
  for (size_t i = 0; i < stages; ++i) {
    StageState st;
    st.name = "stage" + std::to_string(i);
    for (size_t t = 0; t < tasks; ++t) {
      TaskState ts;
      ts.name = "task" + std::to_string(t);
      ts.target = "controller";
      st.tasks.push_back(ts);
    }
    s.stages.push_back(st);
  }
  return s;
}

class Journal : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "rw-journal-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = std::make_unique<RunDir>(root_, "j1");
    ASSERT_TRUE(make_dirs(dir_->path()).ok());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  /// The change of task (stage, index) to `status`, as the runner appends it.
  JournalEntry entry(const RunState& before, RunState* after, size_t stage, size_t index, StepStatus status,
                     uint64_t seq) {
    after->stages[stage].tasks[index].status = status;
    after->stages[stage].tasks[index].attempts += 1;
    after->progress = "step " + std::to_string(seq);
    auto e = journal_delta(before.stages, after->stages);
    EXPECT_TRUE(e.has_value());
    e->seq = seq;
    e->progress = after->progress;
    return *e;
  }
  /// Bytes written where the journal's entries end (its first NUL, else its
  /// end), as a crash in the middle of an append leaves them.
  void write_at_entries_end(const std::string& bytes) {
    auto text = read_file(dir_->journal_file());
    ASSERT_TRUE(text.ok());
    size_t at = std::min(text->size(), text->find('\0'));
    int fd = ::open(dir_->journal_file().c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(at)), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  std::string root_;
  std::unique_ptr<RunDir> dir_;
};

TEST_F(Journal, ADeltaHoldsOnlyWhatChanged) {
  RunState a = staged_state(3, 4);
  RunState b = a;
  b.stages[1].status = StepStatus::Running;
  b.stages[1].tasks[2].status = StepStatus::Running;
  auto e = journal_delta(a.stages, b.stages);
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->stages.size(), 1u);
  EXPECT_EQ(e->stages[0].first, 1u);
  ASSERT_EQ(e->tasks.size(), 1u);
  EXPECT_EQ(e->tasks[0].stage, 1u);
  EXPECT_EQ(e->tasks[0].index, 2u);
  EXPECT_TRUE(journal_delta(a.stages, a.stages)->empty());
  RunState c = staged_state(2, 4);
  EXPECT_FALSE(journal_delta(a.stages, c.stages).has_value()) << "another shape is not a delta";
}

TEST_F(Journal, LoadAppliesTheEntriesAfterStateJson) {
  RunState s = staged_state(2, 3);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState cur = s;
  RunState next = cur;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 1, StepStatus::Running, 1)).ok());
  cur = next;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 1, StepStatus::Completed, 2)).ok());
  auto back = dir_->load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->stages[0].tasks[1].status, StepStatus::Completed);
  EXPECT_EQ(back->stages[0].tasks[1].attempts, 2);
  EXPECT_EQ(back->stages[0].tasks[0].status, StepStatus::Scheduled);
  EXPECT_EQ(back->progress, "step 2");
  EXPECT_EQ(back->journal_seq, 2u);
}

TEST_F(Journal, TheBytesAppendedDoNotGrowWithThePlan) {
  for (size_t tasks : {10u, 1000u}) {
    RunState s = staged_state(1, tasks);
    ASSERT_TRUE(dir_->save(s).ok());
    std::error_code ec;
    fs::remove(dir_->journal_file(), ec);
    RunState next = s;
    auto size = dir_->append_journal(entry(s, &next, 0, tasks / 2, StepStatus::Running, 1));
    ASSERT_TRUE(size.ok()) << size.error().message;
    EXPECT_LT(*size, 400u) << "one task's change, whatever the plan's size (" << tasks << " tasks)";
  }
}

TEST_F(Journal, ATornLastLineIsIgnored) {
  RunState s = staged_state(1, 2);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState next = s;
  ASSERT_TRUE(dir_->append_journal(entry(s, &next, 0, 0, StepStatus::Running, 1)).ok());
  write_at_entries_end("{\"seq\": 2, \"tasks\": [{\"s\": 0, \"i\": 1, \"status\": \"COMPL");
  auto back = dir_->load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->stages[0].tasks[0].status, StepStatus::Running);
  EXPECT_EQ(back->stages[0].tasks[1].status, StepStatus::Scheduled) << "the torn entry is not applied";
}

TEST_F(Journal, AnUpdateFoldsTheJournalIntoStateJsonAndEmptiesIt) {
  RunState s = staged_state(1, 2);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState next = s;
  ASSERT_TRUE(dir_->append_journal(entry(s, &next, 0, 1, StepStatus::Running, 1)).ok());
  ASSERT_TRUE(dir_->update([](RunState& cur) {
                 cur.status = RunStatus::Cancelled;
                 return true;
               }).ok());
  EXPECT_EQ(fs::file_size(dir_->journal_file()), 0u);
  auto text = read_file(dir_->state_file());
  ASSERT_TRUE(text.ok());
  auto plain = run_state_from_json(*text);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->stages[0].tasks[1].status, StepStatus::Running) << "state.json alone has the entry";
  EXPECT_EQ(plain->journal_seq, 1u);
  EXPECT_EQ(plain->status, RunStatus::Cancelled);
}

TEST_F(Journal, EntriesAlreadyInStateJsonAreNotReplayedOverNewerState) {
  // A crash between the full write and emptying the journal: the old entry
  // must not undo what state.json already has past it.
  RunState s = staged_state(1, 1);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState next = s;
  ASSERT_TRUE(dir_->append_journal(entry(s, &next, 0, 0, StepStatus::Running, 1)).ok());
  RunState newer = next;
  newer.stages[0].tasks[0].status = StepStatus::Completed;
  newer.journal_seq = 1;
  ASSERT_TRUE(dir_->save(newer).ok());  // the journal is not emptied
  auto back = dir_->load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->stages[0].tasks[0].status, StepStatus::Completed);
}

TEST_F(Journal, AnEntryThatDoesNotFitStopsTheReplay) {
  RunState s = staged_state(1, 1);
  ASSERT_TRUE(dir_->save(s).ok());
  JournalEntry bad;
  bad.seq = 1;
  bad.tasks.push_back({0, 5, TaskState{}});
  ASSERT_TRUE(dir_->append_journal(bad).ok());
  RunState next = s;
  ASSERT_TRUE(dir_->append_journal(entry(s, &next, 0, 0, StepStatus::Running, 2)).ok());
  auto back = dir_->load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->stages[0].tasks[0].status, StepStatus::Scheduled);
  EXPECT_EQ(back->journal_seq, 0u);
}

TEST_F(Journal, AnAppendLeavesTheFileSizeAlone) {
  // Entries are written over zeros that pre-size the file, so syncing one
  // need not write the inode: the size changes once a chunk, not per entry.
  RunState s = staged_state(1, 40);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState cur = s, next = s;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 0, StepStatus::Running, 1)).ok());
  const auto size = fs::file_size(dir_->journal_file());
  EXPECT_GE(size, RunDir::kJournalChunk);
  uint64_t used = 0;
  for (size_t i = 1; i < 20; ++i) {
    cur = next;
    auto u = dir_->append_journal(entry(cur, &next, 0, i, StepStatus::Running, i + 1));
    ASSERT_TRUE(u.ok()) << u.error().message;
    EXPECT_GT(*u, used) << "the entries' length grows";
    used = *u;
    EXPECT_EQ(fs::file_size(dir_->journal_file()), size) << "entry " << i + 1;
  }
  EXPECT_LT(used, size);
  auto back = dir_->load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->journal_seq, 20u);
  EXPECT_EQ(back->stages[0].tasks[19].status, StepStatus::Running);
  EXPECT_EQ(back->stages[0].tasks[20].status, StepStatus::Scheduled);
}

TEST_F(Journal, AFullChunkGrowsTheFileAndKeepsEveryEntry) {
  RunState s = staged_state(1, 400);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState cur = s, next = s;
  auto size = [&] {
    std::error_code ec;
    auto n = fs::file_size(dir_->journal_file(), ec);
    return ec ? 0 : n;
  };
  uint64_t seq = 0;
  while (size() <= RunDir::kJournalChunk && seq < 399) {
    cur = next;
    ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, seq, StepStatus::Running, seq + 1)).ok());
    ++seq;
  }
  EXPECT_GT(size(), RunDir::kJournalChunk) << "grew after " << seq << " entries";
  auto back = dir_->load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->journal_seq, seq);
  for (size_t i = 0; i < 400; ++i)
    EXPECT_EQ(back->stages[0].tasks[i].status, i < seq ? StepStatus::Running : StepStatus::Scheduled) << i;
}

TEST_F(Journal, ReadersStopAtTheZerosAfterTheEntries) {
  RunState s = staged_state(1, 3);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState next = s;
  JournalEntry first = entry(s, &next, 0, 0, StepStatus::Running, 1);
  RunState later = next;
  JournalEntry stray = entry(next, &later, 0, 1, StepStatus::Completed, 2);
  ASSERT_TRUE(dir_->append_journal(first).ok());
  // What a crash can leave past the zeros (a block written before the one
  // before it): not an entry, since it does not follow the others.
  auto text = read_file(dir_->journal_file());
  ASSERT_TRUE(text.ok());
  ASSERT_NE(text->find('\0'), std::string::npos) << "pre-sized with zeros";
  {
    int fd = ::open(dir_->journal_file().c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const std::string junk = "\n{\"seq\": 2, \"progress\": \"stray\", \"stages\": [], \"tasks\": []}\n";
    EXPECT_EQ(::pwrite(fd, junk.data(), junk.size(), 4096), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  auto back = dir_->load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->journal_seq, 1u);
  EXPECT_EQ(back->progress, "step 1");
  EXPECT_EQ(back->stages[0].tasks[0].status, StepStatus::Running);
  // The next append (a runner restarted: another writer) goes right after
  // the entries and clears what lay past them.
  RunDir again(root_, "j1");
  ASSERT_TRUE(again.append_journal(stray).ok());
  back = dir_->load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->journal_seq, 2u);
  EXPECT_EQ(back->stages[0].tasks[1].status, StepStatus::Completed);
  auto after = read_file(dir_->journal_file());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->find("stray"), std::string::npos) << "zeroed";
}

TEST_F(Journal, AnAppendAfterACrashMidAppendIsNotLostBehindTheTornEntry) {
  // A runner killed in the middle of an append, restarted: its next entry
  // must be readable, not hidden behind the torn one.
  RunState s = staged_state(1, 3);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState cur = s, next = s;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 0, StepStatus::Running, 1)).ok());
  write_at_entries_end("{\"seq\": 2, \"tasks\": [{\"s\": 0, \"i\": 1, \"status\": \"COMPL");
  cur = next;
  RunDir restarted(root_, "j1");
  ASSERT_TRUE(restarted.append_journal(entry(cur, &next, 0, 2, StepStatus::Running, 2)).ok());
  auto back = RunDir(root_, "j1").load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->journal_seq, 2u);
  EXPECT_EQ(back->stages[0].tasks[0].status, StepStatus::Running);
  EXPECT_EQ(back->stages[0].tasks[1].status, StepStatus::Scheduled) << "the torn entry is not applied";
  EXPECT_EQ(back->stages[0].tasks[2].status, StepStatus::Running);
}

TEST_F(Journal, ACrashBetweenAppendsAndCompactionResumesFromTheJournal) {
  RunState s = staged_state(2, 5);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState cur = s, next = s;
  {
    RunDir runner(root_, "j1");
    for (size_t i = 0; i < 5; ++i) {
      cur = next;
      ASSERT_TRUE(runner.append_journal(entry(cur, &next, 0, i, StepStatus::Completed, i + 1)).ok());
    }
  }  // killed: nothing compacted
  RunDir restarted(root_, "j1");
  auto back = restarted.load();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->journal_seq, 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(back->stages[0].tasks[i].status, StepStatus::Completed) << i;
  // The restarted runner's first full write folds the journal in and empties it...
  ASSERT_TRUE(restarted.update([](RunState&) { return true; }).ok());
  EXPECT_EQ(fs::file_size(restarted.journal_file()), 0u);
  // ...and its appends start again at the top.
  cur = next;
  ASSERT_TRUE(restarted.append_journal(entry(cur, &next, 1, 0, StepStatus::Running, 6)).ok());
  auto text = read_file(restarted.journal_file());
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find("\"seq\":"), text->find("\"seq\":6,")) << "the first entry is the new one: "
                                                                << text->substr(0, 60);
  back = RunDir(root_, "j1").load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->journal_seq, 6u);
  EXPECT_EQ(back->stages[0].tasks[4].status, StepStatus::Completed);
  EXPECT_EQ(back->stages[1].tasks[0].status, StepStatus::Running);
}

TEST_F(Journal, AnAppendAfterSomeoneElseCompactedStartsAtTheTop) {
  // cancel-run or the watcher fold the journal in (and truncate it) while
  // the runner keeps it open: the runner's next entry must not land past
  // the end, behind zeros no reader reads through.
  RunState s = staged_state(1, 3);
  ASSERT_TRUE(dir_->save(s).ok());
  RunState cur = s, next = s;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 0, StepStatus::Running, 1)).ok());
  cur = next;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 1, StepStatus::Running, 2)).ok());
  RunDir other(root_, "j1");
  ASSERT_TRUE(other.update([](RunState& st) {
                 st.status = RunStatus::Cancelled;
                 return true;
               }).ok());
  EXPECT_EQ(fs::file_size(dir_->journal_file()), 0u);
  cur = next;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 2, StepStatus::Running, 3)).ok());
  auto back = other.load();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->journal_seq, 3u);
  EXPECT_EQ(back->status, RunStatus::Cancelled);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(back->stages[0].tasks[i].status, StepStatus::Running) << i;
}

TEST_F(Journal, ItsIdentityChangesWithEveryEntryWrittenInPlace) {
  RunState s = staged_state(1, 3);
  ASSERT_TRUE(dir_->save(s).ok());
  EXPECT_EQ(dir_->journal_identity(), "-");
  RunState cur = s, next = s;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 0, StepStatus::Running, 1)).ok());
  struct stat before {};
  ASSERT_EQ(::stat(dir_->journal_file().c_str(), &before), 0);
  const std::string one = dir_->journal_identity();
  cur = next;
  ASSERT_TRUE(dir_->append_journal(entry(cur, &next, 0, 1, StepStatus::Running, 2)).ok());
  // Same size; and an mtime can stay the same within a clock tick.
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir_->journal_file().c_str(), times, 0), 0);
  EXPECT_NE(dir_->journal_identity(), one);
  EXPECT_EQ(fs::file_size(dir_->journal_file()), static_cast<uintmax_t>(before.st_size));
}

}  // namespace
}  // namespace rw::state
