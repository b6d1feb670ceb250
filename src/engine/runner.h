#pragma once
// The runner service: executes a run's plan stage by stage, persisting every
// transition, and writes the run's terminal state.

#include <poll.h>

#include <memory>
#include <string>

#include "engine/executor.h"

namespace rw::engine {

/// Exit codes of `runwarden runner`. Every decided outcome (COMPLETED,
/// FAILED, CANCELLED) exits 0 so systemd does not restart a finished run.
enum RunnerExit : int {
  kRunnerOk = 0,
  kRunnerError = 1,  ///< unexpected: systemd restarts and the run resumes
  /// The run cannot go on (interrupted task without retries left, missing
  /// run directory): units list it in RestartPreventExitStatus=, and the
  /// watcher reports TERMINATED.
  kRunnerNotResumable = 75,
};

/// The executors a runner uses: local commands always; SSH ones when built in.
std::unique_ptr<ExecutorSet> default_executors(const plan::Plan& plan);

int run_runner(const std::string& build);

/// For tests: the poll(2) the runner's main loop calls.
using PollFn = int (*)(::pollfd*, nfds_t, int);
void set_runner_poll_for_testing(PollFn fn);

}  // namespace rw::engine
