// The runner's main loop when poll(2) fails: its task threads are stopped
// and joined (no std::terminate), the task's process is gone, and the exit
// code asks systemd to restart and resume.
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "common/clock.h"
#include "common/files.h"
#include "engine/runner.h"
#include "state/store.h"

namespace rw::engine {
namespace {

int failing_poll(::pollfd*, nfds_t, int) {
  // Long enough for the task to have started.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  errno = EINVAL;
  return -1;
}

bool process_running(const std::string& cmdline_prefix) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream f(e.path() / "cmdline");
    std::string c;
    std::getline(f, c, '\0');
    std::string arg;
    std::getline(f, arg, '\0');
    if ((c + " " + arg) == cmdline_prefix) return true;
  }
  return false;
}

TEST(Runner, APollErrorStopsAndJoinsTheTasksAndAsksForARestart) {
  char tmpl[] = "/var/tmp/rw-runner-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  ::setenv("RUNWARDEN_STATE_DIR", root.c_str(), 1);
  state::RunDir dir(root, "poll-1");
  ASSERT_TRUE(make_dirs(dir.path()).ok());
  state::RunState st;
  st.build = "poll-1";
  st.status = state::RunStatus::Pending;
  st.created_at_ms = now_ms();
  const std::string sleeper = "sleep 4711." + std::to_string(::getpid());  // this test's own
  st.runner_command = sleeper;
  st.workdir = root;
  ASSERT_TRUE(dir.save(st).ok());

  set_runner_poll_for_testing(failing_poll);
  int rc = run_runner("poll-1");
  set_runner_poll_for_testing([](::pollfd* f, nfds_t n, int t) { return ::poll(f, n, t); });
  EXPECT_EQ(rc, kRunnerError);
  EXPECT_FALSE(process_running(sleeper)) << "the task's process was stopped";
  auto after = dir.load();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(state::is_terminal(after->status)) << "no terminal state: the run resumes after the restart";
  std::filesystem::remove_all(root);
}

TEST(Runner, EveryTaskFindsItsRunningStateOnDiskWhenItStarts) {
  // A transition is durable before it takes effect: each task, as it runs,
  // copies the run's state files; loaded, they show it RUNNING. The first
  // task of a stage leaves state.lock held for a while as it ends, so the
  // next task's transition is slow to be written: it must wait for it.
  char tmpl[] = "/var/tmp/rw-runner-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  const std::string snaps = root + "/snaps";
  ASSERT_TRUE(make_dirs(snaps).ok());
  ::setenv("RUNWARDEN_STATE_DIR", root.c_str(), 1);
  state::RunDir dir(root, "durable-1");
  ASSERT_TRUE(make_dirs(dir.path()).ok());
  const std::string copy = "cp \"$RUNWARDEN_RUN_DIR/state.json\" " + snaps + "/$RUNWARDEN_TASK.state.json; " +
                           "cp \"$RUNWARDEN_RUN_DIR/journal.jsonl\" " + snaps + "/$RUNWARDEN_TASK.journal.jsonl; true";
  std::string plan = "version: 1\nstages:\n";
  std::vector<std::string> names;
  for (int s = 1; s <= 2; ++s) {
    plan += "  - name: s" + std::to_string(s) + "\n    parallel: 1\n    tasks:\n";
    for (int t = 1; t <= 4; ++t) {
      names.push_back("s" + std::to_string(s) + "t" + std::to_string(t));
      const std::string hold = t == 1 ? "setsid flock \"$RUNWARDEN_RUN_DIR/state.lock\" sleep 0.5 </dev/null "
                                        ">/dev/null 2>&1 & sleep 0.2; "
                                      : "";
      plan += "      - name: " + names.back() + "\n        run: '" + hold + copy + "'\n";
    }
  }
  ASSERT_TRUE(write_file_atomic(dir.plan_file(), plan).ok());
  state::RunState st;
  st.build = "durable-1";
  st.status = state::RunStatus::Pending;
  st.created_at_ms = now_ms();
  st.plan_file = "plan.yaml";
  st.workdir = root;
  ASSERT_TRUE(dir.save(st).ok());

  ASSERT_EQ(run_runner("durable-1"), kRunnerOk);
  auto end = dir.load();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->status, state::RunStatus::Completed);
  for (const auto& name : names) {
    const std::string at = root + "/seen-" + name;
    state::RunDir seen(at, "x");
    ASSERT_TRUE(make_dirs(seen.path()).ok());
    std::filesystem::copy_file(snaps + "/" + name + ".state.json", seen.state_file());
    std::error_code ec;  // no journal: everything was in state.json
    std::filesystem::copy_file(snaps + "/" + name + ".journal.jsonl", seen.journal_file(), ec);
    auto s = seen.load();
    ASSERT_TRUE(s.ok()) << name << ": " << s.error().message;
    bool found = false;
    for (const auto& stage : s->stages)
      for (const auto& t : stage.tasks)
        if (t.name == name) {
          found = true;
          EXPECT_EQ(t.status, state::StepStatus::Running) << name;
          EXPECT_EQ(t.attempts, 1) << name;
        }
    EXPECT_TRUE(found) << name;
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace rw::engine
