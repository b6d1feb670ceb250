#pragma once

#include <array>
#include <memory>

#include "common/fd.h"
#include "engine/executor.h"

namespace rw::engine {

/// Runs `run` tasks on the controller: /bin/sh -c in its own process group,
/// with RUNWARDEN_EVENTS/RUNWARDEN_BUILD in the environment. Timeout and
/// cancellation send SIGTERM to the group, then SIGKILL after the grace.
class LocalExecutor : public Executor {
 public:
  TaskOutcome run(const TaskContext& ctx) override;
  bool starts_at_gate() const override { return true; }
  std::unique_ptr<ProcessGroup> start(const TaskContext& ctx) override;
};

/// Runs a shell command in its own process group and waits for it; the
/// building block of LocalExecutor (also used for template commands).
struct SpawnSpec {
  std::string command;
  std::string workdir;
  std::map<std::string, std::string> env;  ///< added to the runner's environment
  std::optional<Millis> timeout;
  const std::atomic<bool>* cancel = nullptr;
  Millis kill_grace{Millis(10'000)};
  std::function<void(bool is_stderr, std::string_view data)> output;
  /// Set: the shell is made and set up at once, but execs only when the
  /// gate opens (and never if `cancel` is set by then: cancelled).
  StartGate* gate = nullptr;
};
/// Runs `spec` to the end: a ProcessGroup followed by a poll loop of its own.
TaskOutcome run_process_group(const SpawnSpec& spec);

/// A shell started in its own process group, followed by whoever polls its
/// fds: run_process_group()'s loop, or the runner's main loop (which then
/// needs no thread per task). Not thread-safe: one thread drives it.
class ProcessGroup {
 public:
  /// Starts `/bin/sh -c spec.command` (held until spec.gate opens, when
  /// set). A start that fails, or is given up at the gate (cancelled), ends
  /// it at once: done(), with the reason in the outcome.
  explicit ProcessGroup(SpawnSpec spec);
  /// Kills the group if it has not ended (and reaps the shell).
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  /// What to poll for reading: stdout, stderr and the shell's pidfd; -1
  /// for those closed already. The numbers can change after ready().
  std::array<int, 3> fds() const;
  /// Puts fds() into `epoll_fd` (EPOLLIN, data `tag | slot`: the low two
  /// bits of `tag` must be 0) and takes each out again before it closes.
  /// false: epoll_ctl failed (errno); then self_polled(): the caller polls
  /// it with wait_once(0) on its turns, and wait_ms() asks for one soon.
  bool follow_with(int epoll_fd, uint64_t tag);
  bool self_polled() const { return self_polled_; }
  /// fds()[slot] polled ready with `revents`: reads its output (to
  /// spec.output) or reaps the shell.
  void ready(size_t slot, short revents);
  /// Sends what is due (SIGTERM for a cancel or timeout, SIGKILL after the
  /// grace) and sees whether the task has ended: the shell reaped and its
  /// pipes closed. Call it after ready() and whenever wait_ms() has passed;
  /// a cancel flag is looked at here only.
  void settle();
  /// Longest wait before settle() must run again without readiness; -1:
  /// no deadline.
  int64_t wait_ms() const;
  /// Polls its own fds once (at most `max_ms`), then ready() and settle():
  /// the loop of a caller with nothing else to wait for. false: poll failed.
  bool wait_once(int64_t max_ms);
  bool done() const { return done_; }
  pid_t pid() const { return pid_; }
  /// The outcome, once done().
  TaskOutcome take_outcome() { return std::move(out_); }

 private:
  void end_now(std::string reason);
  void reap();
  /// Closes `fd`, out of the epoll set first when followed there.
  void drop(Fd& fd);

  SpawnSpec spec_;
  Fd out_r_, err_r_, exited_;
  int epoll_ = -1;
  bool self_polled_ = false;
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  bool killed_ = false;
  bool done_ = false;
  int64_t started_ms_ = 0;
  int64_t term_sent_at_ = 0;
  std::string why_stopped_;
  TaskOutcome out_;
};

}  // namespace rw::engine
