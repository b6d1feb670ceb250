// The runner's main loop when poll(2) fails: its task threads are stopped
// and joined (no std::terminate), the task's process is gone, and the exit
// code asks systemd to restart and resume.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
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

/// A state root of its own under /var/tmp (RUNWARDEN_STATE_DIR points at
/// it) with the directory of one run, removed at the end.
struct TestRun {
  static std::string make_root() {
    char tmpl[] = "/var/tmp/rw-runner-test-XXXXXX";
    std::string path = ::mkdtemp(tmpl) ? tmpl : "";
    ::setenv("RUNWARDEN_STATE_DIR", path.c_str(), 1);
    return path;
  }
  explicit TestRun(const std::string& build) : root(make_root()), dir(root, build) {
    made = !root.empty() && make_dirs(dir.path()).ok();
  }
  ~TestRun() {
    std::error_code ec;
    if (!root.empty()) std::filesystem::remove_all(root, ec);
  }
  std::string root;
  state::RunDir dir;
  bool made = false;
};

/// A PENDING run of `build`, working in `workdir`, as start-run leaves it.
state::RunState pending_run(const std::string& build, const std::string& workdir) {
  state::RunState st;
  st.build = build;
  st.status = state::RunStatus::Pending;
  st.created_at_ms = now_ms();
  st.workdir = workdir;
  return st;
}

TEST(Runner, APollErrorStopsAndJoinsTheTasksAndAsksForARestart) {
  TestRun run("poll-1");
  ASSERT_TRUE(run.made);
  const std::string& root = run.root;
  state::RunDir& dir = run.dir;
  state::RunState st = pending_run("poll-1", root);
  const std::string sleeper = "sleep 4711." + std::to_string(::getpid());  // this test's own
  st.runner_command = sleeper;
  ASSERT_TRUE(dir.save(st).ok());

  set_runner_poll_for_testing(failing_poll);
  int rc = run_runner("poll-1");
  set_runner_poll_for_testing([](::pollfd* f, nfds_t n, int t) { return ::poll(f, n, t); });
  EXPECT_EQ(rc, kRunnerError);
  EXPECT_FALSE(process_running(sleeper)) << "the task's process was stopped";
  auto after = dir.load();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(state::is_terminal(after->status)) << "no terminal state: the run resumes after the restart";
}

TEST(Runner, EveryTaskFindsItsRunningStateOnDiskWhenItStarts) {
  // A transition is durable before it takes effect: each task, as it runs,
  // copies the run's state files; loaded, they show it RUNNING. The first
  // task of a stage leaves state.lock held for a while as it ends, so the
  // next task's transition is slow to be written: it must wait for it.
  TestRun run("durable-1");
  ASSERT_TRUE(run.made);
  const std::string& root = run.root;
  state::RunDir& dir = run.dir;
  const std::string snaps = root + "/snaps";
  ASSERT_TRUE(make_dirs(snaps).ok());
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
  state::RunState st = pending_run("durable-1", root);
  st.plan_file = "plan.yaml";
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
}


/// Threads of this process now in poll(2)/ppoll(2)/epoll_wait(2) (x86-64
/// and arm64 numbers): a thread that waits for a task's process sits there.
int threads_waiting_in_poll() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream f(e.path() / "syscall");
    long nr = -1;
    if (!(f >> nr)) continue;
#if defined(__x86_64__)
    if (nr == 7 || nr == 271 || nr == 232 || nr == 281) ++n;
#else
    if (nr == 73 || nr == 22) ++n;
#endif
  }
  return n;
}

TEST(Runner, RunningLocalTasksAreFollowedByTheMainLoopNotAThreadEach) {
  // Four tasks run side by side; while they do, the only thread of the
  // runner waiting in poll is its main loop. Their ends still arrive with
  // everything: output larger than a pipe holds, exit codes, a timeout.
  TestRun run("follow-1");
  ASSERT_TRUE(run.made);
  const std::string& root = run.root;
  state::RunDir& dir = run.dir;
  const std::string up = root + "/up-";
  std::string plan = "version: 1\nstages:\n  - name: s1\n    tasks:\n";
  for (int t = 1; t <= 4; ++t) {
    const std::string mark = "touch " + up + std::to_string(t) + "; ";
    std::string run;
    if (t == 1) run = mark + "sleep 1; head -c 200000 /dev/zero | tr \"\\\\0\" x; echo; echo done-1";
    if (t == 2) run = mark + "sleep 1; echo done-2 >&2; exit 3";
    if (t == 3) run = mark + "sleep 1; echo done-3";
    if (t == 4) run = mark + "sleep 30";
    plan += "      - name: t" + std::to_string(t) + "\n        run: '" + run + "'\n";
    if (t == 4) plan += "        timeout: 1500ms\n";
  }
  ASSERT_TRUE(write_file_atomic(dir.plan_file(), plan).ok());
  state::RunState st = pending_run("follow-1", root);
  st.plan_file = "plan.yaml";
  ASSERT_TRUE(dir.save(st).ok());

  std::atomic<int> waiting{-1};
  std::thread observer([&] {
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (int t = 1; t <= 4; ++t) all &= std::filesystem::exists(up + std::to_string(t));
      if (all) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        waiting = threads_waiting_in_poll();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  int rc = run_runner("follow-1");
  observer.join();
  EXPECT_EQ(rc, kRunnerOk);
  EXPECT_EQ(waiting.load(), 1) << "threads in poll while four tasks ran (the main loop is one)";

  auto end = dir.load();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->status, state::RunStatus::Failed);
  ASSERT_EQ(end->stages.size(), 1u);
  std::map<std::string, state::TaskState> tasks;
  for (const auto& t : end->stages[0].tasks) tasks[t.name] = t;
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(tasks["t1"].status, state::StepStatus::Completed);
  EXPECT_EQ(tasks["t1"].exit_code, 0);
  EXPECT_EQ(tasks["t2"].status, state::StepStatus::Failed);
  EXPECT_EQ(tasks["t2"].exit_code, 3);
  EXPECT_EQ(tasks["t3"].status, state::StepStatus::Completed);
  EXPECT_EQ(tasks["t4"].status, state::StepStatus::Failed);
  EXPECT_NE(tasks["t4"].reason.find("timed out after"), std::string::npos) << tasks["t4"].reason;
  auto log_of = [&](const std::string& name) {
    std::ifstream f(dir.file(tasks[name].log));
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  const std::string l1 = log_of("t1");
  EXPECT_NE(l1.find(std::string(200000, 'x') + "\ndone-1\n"), std::string::npos) << "the whole output, in order";
  EXPECT_NE(log_of("t2").find("done-2\n--- exit code 3"), std::string::npos) << log_of("t2");
  EXPECT_NE(log_of("t3").find("done-3\n"), std::string::npos);
  EXPECT_NE(log_of("t4").find("--- timed out after"), std::string::npos) << log_of("t4");
  std::ifstream rl(dir.runner_log());
  const std::string runner_log((std::istreambuf_iterator<char>(rl)), {});
  EXPECT_NE(runner_log.find("[t3@controller] done-3"), std::string::npos) << "lines reach runner.log with their task";
  EXPECT_NE(runner_log.find("[t2@controller] done-2"), std::string::npos);
}

}  // namespace
}  // namespace rw::engine
