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

}  // namespace
}  // namespace rw::engine
