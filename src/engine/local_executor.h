#pragma once

#include "engine/executor.h"

namespace rw::engine {

/// Runs `run` tasks on the controller: /bin/sh -c in its own process group,
/// with RUNWARDEN_EVENTS/RUNWARDEN_BUILD in the environment. Timeout and
/// cancellation send SIGTERM to the group, then SIGKILL after the grace.
class LocalExecutor : public Executor {
 public:
  TaskOutcome run(const TaskContext& ctx) override;
  bool starts_at_gate() const override { return true; }
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
TaskOutcome run_process_group(const SpawnSpec& spec);

}  // namespace rw::engine
