#include "engine/local_executor.h"

#include <signal.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace rw::engine {
namespace {

using Clock = std::chrono::steady_clock;

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

/// Whether `pid` is a live process (a zombie waiting for its reaper is not).
bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

bool gone_within(pid_t pid, int ms) {
  for (auto start = Clock::now(); elapsed_ms(start) < ms;) {
    if (!alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !alive(pid);
}

/// A command to run, and what it printed on each stream.
struct Command {
  SpawnSpec spec;
  std::string out, err;
  TaskOutcome outcome;
  int64_t took_ms = 0;

  explicit Command(std::string command) {
    spec.command = std::move(command);
    spec.output = [this](bool is_stderr, std::string_view data) { (is_stderr ? err : out).append(data); };
  }
  Command& go() {
    auto start = Clock::now();
    outcome = run_process_group(spec);
    took_ms = elapsed_ms(start);
    return *this;
  }
  /// The first line of stdout as a pid (the commands below echo $!).
  pid_t echoed_pid() const { return static_cast<pid_t>(std::atoi(out.c_str())); }
};

TEST(LocalExecutor, ACommandThatSucceedsIsOkWithExitCode0) {
  Command r("true");
  r.go();
  EXPECT_TRUE(r.outcome.ok);
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_FALSE(r.outcome.signal.has_value());
  EXPECT_FALSE(r.outcome.timed_out);
  EXPECT_FALSE(r.outcome.cancelled);
}

TEST(LocalExecutor, TheExitCodeIsReported) {
  Command r("exit 3");
  r.go();
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_EQ(r.outcome.exit_code, 3);
  EXPECT_EQ(r.outcome.reason, "exit code 3");
}

TEST(LocalExecutor, OutputIsCapturedOnBothStreams) {
  Command r("echo out; echo err >&2; printf 'no newline'");
  r.go();
  EXPECT_TRUE(r.outcome.ok);
  EXPECT_EQ(r.out, "out\nno newline");
  EXPECT_EQ(r.err, "err\n");
}

TEST(LocalExecutor, OutputLargerThanAPipeBufferIsReadWhole) {
  Command r("head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2");
  r.go();
  EXPECT_TRUE(r.outcome.ok) << r.outcome.reason;
  EXPECT_EQ(r.out.size(), 300'000u);
  EXPECT_EQ(r.err.size(), 200'000u);
}

TEST(LocalExecutor, StdinIsEmpty) {
  Command r("cat; echo done");
  r.go();
  EXPECT_TRUE(r.outcome.ok);
  EXPECT_EQ(r.out, "done\n");
  EXPECT_LT(r.took_ms, 5'000);
}

TEST(LocalExecutor, AProcessKilledByASignalReportsTheSignal) {
  Command r("kill -9 $$");
  r.go();
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_EQ(r.outcome.signal, 9);
  EXPECT_FALSE(r.outcome.exit_code.has_value());
  EXPECT_NE(r.outcome.reason.find("killed by signal"), std::string::npos) << r.outcome.reason;
}

TEST(LocalExecutor, ATimeoutKillsTheWholeProcessGroupIncludingABackgroundChild) {
  Command r("sleep 30 & echo $!; wait");
  r.spec.timeout = Millis(300);
  r.spec.kill_grace = Millis(2'000);
  r.go();
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_TRUE(r.outcome.timed_out);
  EXPECT_NE(r.outcome.reason.find("timed out"), std::string::npos) << r.outcome.reason;
  EXPECT_GE(r.took_ms, 300);
  EXPECT_LT(r.took_ms, 2'000) << "SIGTERM was enough, no need to wait for the grace";
  pid_t child = r.echoed_pid();
  ASSERT_GT(child, 1) << "output: " << r.out;
  EXPECT_TRUE(gone_within(child, 2'000)) << "background child " << child << " survived the timeout";
}

TEST(LocalExecutor, NothingOfTheGroupOutlivesATaskThatExited) {
  // The shell exits at once; its background job still holds the pipes.
  Command r("sleep 30 & echo $!");
  r.spec.kill_grace = Millis(2'000);
  r.go();
  EXPECT_TRUE(r.outcome.ok) << r.outcome.reason;
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_LT(r.took_ms, 2'000);
  pid_t child = r.echoed_pid();
  ASSERT_GT(child, 1) << "output: " << r.out;
  EXPECT_TRUE(gone_within(child, 2'000)) << "background child " << child << " outlived its task";
}

TEST(LocalExecutor, ACancelFlagSetFromAnotherThreadStopsTheCommand) {
  std::atomic<bool> cancel{false};
  Command r("sleep 30");
  r.spec.cancel = &cancel;
  r.spec.kill_grace = Millis(1'000);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  r.go();
  canceller.join();
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_TRUE(r.outcome.cancelled);
  EXPECT_FALSE(r.outcome.timed_out);
  EXPECT_EQ(r.outcome.reason, "cancelled");
  EXPECT_EQ(r.outcome.signal, SIGTERM);
  EXPECT_GE(r.took_ms, 200);
  EXPECT_LT(r.took_ms, 200 + 1'000) << "stopped within the grace";
}

TEST(LocalExecutor, AnAlreadySetCancelFlagStopsTheCommandAtOnce) {
  std::atomic<bool> cancel{true};
  Command r("sleep 30");
  r.spec.cancel = &cancel;
  r.go();
  EXPECT_TRUE(r.outcome.cancelled);
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_LT(r.took_ms, 2'000);
}

TEST(LocalExecutor, AChildIgnoringSigtermIsKilledAfterTheGrace) {
  Command r("trap '' TERM; sleep 30 & echo $!; wait");
  r.spec.timeout = Millis(200);
  r.spec.kill_grace = Millis(500);
  r.go();
  EXPECT_TRUE(r.outcome.timed_out);
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_EQ(r.outcome.signal, SIGKILL);
  EXPECT_GE(r.took_ms, 200 + 500) << "SIGKILL only after the grace";
  EXPECT_LT(r.took_ms, 200 + 500 + 2'000);
  pid_t child = r.echoed_pid();
  ASSERT_GT(child, 1) << "output: " << r.out;
  EXPECT_TRUE(gone_within(child, 2'000));
}

TEST(LocalExecutor, SignalsBlockedByTheRunnerAreUnblockedInTheCommand) {
  // The runner blocks SIGTERM for its signalfd; the command must still die
  // of the SIGTERM a timeout sends, not wait for SIGKILL.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  Command r("sleep 30");
  r.spec.timeout = Millis(200);
  r.spec.kill_grace = Millis(5'000);
  r.go();
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_TRUE(r.outcome.timed_out);
  EXPECT_EQ(r.outcome.signal, SIGTERM);
  EXPECT_LT(r.took_ms, 3'000);
}

TEST(LocalExecutor, TheWorkdirIsApplied) {
  std::string tmpl = ::testing::TempDir() + "rw-exec-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  char real[PATH_MAX];
  ASSERT_NE(::realpath(tmpl.c_str(), real), nullptr);
  Command r("pwd -P");
  r.spec.workdir = tmpl;
  r.go();
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  EXPECT_TRUE(r.outcome.ok) << r.outcome.reason;
  EXPECT_EQ(r.out, std::string(real) + "\n");
}

TEST(LocalExecutor, AMissingWorkdirIsAFailureNamingIt) {
  Command r("true");
  r.spec.workdir = "/nonexistent/rw-workdir";
  r.go();
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_FALSE(r.outcome.exit_code == 0);
  EXPECT_NE(r.outcome.reason.find("/nonexistent/rw-workdir"), std::string::npos) << r.outcome.reason;
}

TEST(LocalExecutor, TheEnvironmentIsAppliedOnTopOfTheRunners) {
  ::setenv("RW_TEST_OVERRIDDEN", "old", 1);
  ::setenv("RW_TEST_INHERITED", "kept", 1);
  Command r("printf '%s|%s|%s|' \"$RW_TEST_NEW\" \"$RW_TEST_OVERRIDDEN\" \"$RW_TEST_INHERITED\"; "
        "env | grep -c '^RW_TEST_OVERRIDDEN='");
  r.spec.env = {{"RW_TEST_NEW", "hello world"}, {"RW_TEST_OVERRIDDEN", "new"}};
  r.go();
  ::unsetenv("RW_TEST_OVERRIDDEN");
  ::unsetenv("RW_TEST_INHERITED");
  EXPECT_TRUE(r.outcome.ok) << r.outcome.reason;
  EXPECT_EQ(r.out, "hello world|new|kept|1\n");
}

TEST(LocalExecutor, TheExecutorTellsTheCommandAboutItsRun) {
  plan::Task task;
  task.name = "suite";
  task.run = "echo \"$RUNWARDEN_BUILD $RUNWARDEN_TASK $RUNWARDEN_ATTEMPT $RUNWARDEN_EVENTS $RUNWARDEN_RUN_DIR $EXTRA\"";
  task.env = {{"EXTRA", "x"}};
  TaskContext ctx;
  ctx.task = &task;
  ctx.build = "b1";
  ctx.run_dir = "/state/runs/b1";
  ctx.events_file = "/state/runs/b1/events.jsonl";
  ctx.attempt = 2;
  std::string out;
  ctx.output = [&](bool, std::string_view d) { out.append(d); };
  LocalExecutor ex;
  auto o = ex.run(ctx);
  EXPECT_TRUE(o.ok) << o.reason;
  EXPECT_EQ(out, "b1 suite 2 /state/runs/b1/events.jsonl /state/runs/b1 x\n");
}

TEST(LocalExecutor, TheTasksTimeoutIsApplied) {
  plan::Task task;
  task.name = "slow";
  task.run = "sleep 30";
  task.timeout = Millis(200);
  TaskContext ctx;
  ctx.task = &task;
  ctx.kill_grace = Millis(1'000);
  LocalExecutor ex;
  auto start = Clock::now();
  auto o = ex.run(ctx);
  EXPECT_TRUE(o.timed_out);
  EXPECT_FALSE(o.ok);
  EXPECT_LT(elapsed_ms(start), 3'000);
}

TEST(LocalExecutor, ASignalTheRunnerIgnoresIsDefaultInTheCommand) {
  // An ignored disposition survives exec; the command must not inherit it.
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGUSR1, &ign, &old), 0);
  Command r("kill -USR1 $$; sleep 5");
  r.go();
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(r.outcome.signal, SIGUSR1) << r.outcome.reason;
}

/// A file the command makes, to tell whether it ran.
std::string marker_path(const std::string& name) {
  std::string p = ::testing::TempDir() + "rw-held-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove(p);
  return p;
}

TEST(LocalExecutor, AHeldCommandRunsOnlyOnceTheGateOpens) {
  std::string marker = marker_path("open");
  StartGate gate;
  Command r("echo started >" + marker);
  r.spec.gate = &gate;
  std::thread t([&] { r.go(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the command ran before the gate opened";
  gate.open();
  t.join();
  EXPECT_TRUE(r.outcome.ok) << r.outcome.reason;
  EXPECT_TRUE(std::filesystem::exists(marker));
  std::filesystem::remove(marker);
}

TEST(LocalExecutor, AGateOpenAlreadyLetsTheCommandRunAtOnce) {
  StartGate gate;
  gate.open();
  Command r("echo hi");
  r.spec.gate = &gate;
  r.go();
  EXPECT_TRUE(r.outcome.ok) << r.outcome.reason;
  EXPECT_EQ(r.out, "hi\n");
}

TEST(LocalExecutor, AHeldCommandCancelledBeforeTheGateOpensNeverRuns) {
  std::string marker = marker_path("cancel");
  StartGate gate;
  std::atomic<bool> cancel{false};
  Command r("echo started >" + marker);
  r.spec.gate = &gate;
  r.spec.cancel = &cancel;
  std::thread t([&] { r.go(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  cancel = true;
  gate.open();
  t.join();
  EXPECT_TRUE(r.outcome.cancelled);
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a cancelled held command ran";
}

TEST(LocalExecutor, AHeldCommandMissingItsWorkdirFailsNamingIt) {
  StartGate gate;
  gate.open();
  Command r("true");
  r.spec.gate = &gate;
  r.spec.workdir = "/nonexistent/rw-held-workdir";
  r.go();
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_NE(r.outcome.reason.find("/nonexistent/rw-held-workdir"), std::string::npos) << r.outcome.reason;
}

TEST(LocalExecutor, AHeldCommandDiesWithARunnerThatDiesBeforeTheGateOpens) {
  // The runner is killed while its task waits for the gate: the held
  // process must not run the command later, nor wait for good.
  std::string marker = marker_path("crash");
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);  // the held process comes to us
  pid_t runner = ::fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    StartGate gate;
    Command r("echo started >" + marker);
    r.spec.gate = &gate;
    std::thread t([&] { r.go(); });
    t.join();  // never: the gate stays shut
    ::_exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(::kill(runner, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(runner, &status, 0), runner);
  // The held process, now ours: it must end by itself.
  pid_t held = -1;
  for (auto start = Clock::now(); elapsed_ms(start) < 5'000;) {
    held = ::waitpid(-1, &status, WNOHANG);
    if (held > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_GT(held, 0) << "the held process outlived its runner";
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the command ran after its runner died";
}


// ProcessGroup: followed by a loop that is not its own (the runner's).

/// Polls every group's fds in one poll() until all are done, as the
/// runner's loop does; returns how many rounds it took.
int follow_all(std::vector<ProcessGroup*> groups) {
  int rounds = 0;
  for (;;) {
    std::vector<pollfd> p;
    std::vector<std::pair<ProcessGroup*, size_t>> who;
    int64_t wait = 1'000;
    bool all_done = true;
    for (auto* g : groups) {
      if (g->done()) continue;
      all_done = false;
      auto fds = g->fds();
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i] < 0) continue;
        p.push_back({fds[i], POLLIN, 0});
        who.push_back({g, i});
      }
      if (int64_t w = g->wait_ms(); w >= 0) wait = std::min(wait, w);
    }
    if (all_done) return rounds;
    ++rounds;
    if (::poll(p.data(), p.size(), static_cast<int>(wait)) < 0 && errno != EINTR) return -1;
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i].revents) who[i].first->ready(who[i].second, p[i].revents);
    for (auto* g : groups) g->settle();
  }
}

TEST(ProcessGroup, SeveralGroupsFollowedByOneLoopEachGetTheirOwnOutputAndOutcome) {
  Command a("echo a-out; echo a-err >&2; sleep 0.2; exit 3");
  Command b("head -c 300000 /dev/zero | tr '\\0' b; sleep 0.1");
  Command c("echo c-out");
  ProcessGroup ga(a.spec), gb(b.spec), gc(c.spec);
  EXPECT_GT(ga.pid(), 0);
  ASSERT_GE(follow_all({&ga, &gb, &gc}), 1);
  auto oa = ga.take_outcome(), ob = gb.take_outcome(), oc = gc.take_outcome();
  EXPECT_EQ(a.out, "a-out\n");
  EXPECT_EQ(a.err, "a-err\n");
  EXPECT_FALSE(oa.ok);
  EXPECT_EQ(oa.exit_code, 3);
  EXPECT_EQ(oa.reason, "exit code 3");
  EXPECT_EQ(b.out, std::string(300000, 'b')) << "more than a pipe's buffer, read whole";
  EXPECT_TRUE(ob.ok);
  EXPECT_EQ(c.out, "c-out\n");
  EXPECT_TRUE(oc.ok);
  EXPECT_EQ(oc.exit_code, 0);
}

TEST(ProcessGroup, ACancelFlagSetByTheFollowingLoopStopsOnlyItsGroup) {
  std::atomic<bool> cancel{false};
  Command stop("sleep 30"), keep("sleep 0.3; echo kept");
  stop.spec.cancel = &cancel;
  stop.spec.kill_grace = Millis(1'000);
  ProcessGroup gs(stop.spec), gk(keep.spec);
  EXPECT_EQ(gs.wait_ms(), -1) << "nothing due before the flag is set";
  cancel = true;
  EXPECT_EQ(gs.wait_ms(), 0) << "the loop must settle() at once: SIGTERM is due";
  auto start = Clock::now();
  ASSERT_GE(follow_all({&gs, &gk}), 1);
  auto os = gs.take_outcome(), ok = gk.take_outcome();
  EXPECT_TRUE(os.cancelled);
  EXPECT_EQ(os.signal, SIGTERM);
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(keep.out, "kept\n");
  EXPECT_LT(elapsed_ms(start), 5'000);
}

TEST(ProcessGroup, ATimeoutIsDueInWaitMsAndEndsTheGroup) {
  Command r("sleep 30");
  r.spec.timeout = Millis(300);
  r.spec.kill_grace = Millis(1'000);
  ProcessGroup g(r.spec);
  int64_t w = g.wait_ms();
  EXPECT_GT(w, 0);
  EXPECT_LE(w, 300);
  ASSERT_GE(follow_all({&g}), 1);
  auto o = g.take_outcome();
  EXPECT_TRUE(o.timed_out);
  EXPECT_EQ(o.reason, "timed out after 300ms");
}

TEST(ProcessGroup, AGroupDroppedBeforeItEndsIsKilledWithItsChildren) {
  Command r("sleep 30 & echo $!; wait");
  auto g = std::make_unique<ProcessGroup>(r.spec);
  const pid_t shell = g->pid();
  // Read the child's pid as the runner's loop would.
  for (int i = 0; i < 100 && r.out.find('\n') == std::string::npos; ++i) {
    pollfd p{g->fds()[0], POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) g->ready(0, p.revents);
  }
  const pid_t child = r.echoed_pid();
  ASSERT_GT(child, 0);
  EXPECT_TRUE(alive(shell));
  g.reset();  // the runner stopping with the task still running
  EXPECT_FALSE(alive(shell)) << "killed and reaped by the time the drop returns";
  EXPECT_TRUE(gone_within(child, 2'000)) << "the background child went with the group";
}

TEST(ProcessGroup, AStartThatFailsIsDoneAtOnceWithTheReason) {
  Command r("true");
  r.spec.workdir = "/nonexistent/rw-workdir";
  ProcessGroup g(r.spec);
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.fds()[0], -1);
  auto o = g.take_outcome();
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.reason.find("/nonexistent/rw-workdir"), std::string::npos) << o.reason;
}


TEST(ProcessGroup, AnEndedGroupLeavesTheEpollSetThoughAnotherProcessStillHoldsItsFiles) {
  // A child of another start that has not exec'd yet holds copies of every
  // fd the runner has open: closing ours would not take them out of the
  // epoll set, which would go on reporting a pipe of a task long gone.
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  Command r("echo hi");
  ProcessGroup g(r.spec);
  ASSERT_TRUE(g.follow_with(ep, 0x100));
  EXPECT_FALSE(g.self_polled());
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::sleep(10);  // holds its copies of the pipes and the pidfd
    ::_exit(0);
  }
  epoll_event evs[8];
  for (int i = 0; i < 100 && !g.done(); ++i) {
    int n = ::epoll_wait(ep, evs, 8, 100);
    for (int k = 0; k < n; ++k) {
      EXPECT_EQ(evs[k].data.u64 & ~uint64_t(3), 0x100u);
      g.ready(evs[k].data.u64 & 3, static_cast<short>(evs[k].events));
    }
    g.settle();
  }
  ASSERT_TRUE(g.done());
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(::epoll_wait(ep, evs, 8, 200), 0) << "nothing of the ended group is reported any more";
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ::close(ep);
}

}  // namespace
}  // namespace rw::engine
