#pragma once
// Executors run one task instance. They are pluggable by task kind and
// target (local commands, SSH commands, pushes...), so the engine does not
// know how work is done, only how it ended.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/duration.h"
#include "engine/start_gate.h"
#include "plan/plan.h"

namespace rw::engine {

class ProcessGroup;

struct TaskContext {
  const plan::Plan* plan = nullptr;
  const plan::Task* task = nullptr;
  const plan::Target* target = nullptr;
  std::string build;
  std::string run_dir;
  std::string workdir;      ///< task workdir, else the plan's
  std::string events_file;  ///< $RUNWARDEN_EVENTS for commands
  int attempt = 1;
  /// Set when the task must stop (cancel-run, stage retry, timeout handled by
  /// the executor itself).
  const std::atomic<bool>* cancel = nullptr;
  Millis kill_grace{Millis(10'000)};
  /// Output as it arrives, any chunking.
  std::function<void(bool is_stderr, std::string_view data)> output;
  /// For executors that starts_at_gate(): the task's command must not take
  /// effect before this opens (its RUNNING is durable then).
  StartGate* gate = nullptr;
};

struct TaskOutcome {
  bool ok = false;
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool timed_out = false;
  bool cancelled = false;
  std::string reason;  ///< human-readable, for failures
};

class Executor {
 public:
  virtual ~Executor() = default;
  /// Runs the task to the end (blocking). Never throws.
  virtual TaskOutcome run(const TaskContext& ctx) = 0;
  /// true: run() may be called before the task's start is durable, and
  /// holds the command until ctx.gate opens (set-up overlaps the sync);
  /// false: run() is called once the gate is open.
  virtual bool starts_at_gate() const { return false; }
  /// Starts the task and returns its process for the caller's own loop to
  /// follow (no thread waits for it); nullptr: this executor only run()s.
  /// Blocks only as run() does before its command starts. (Defined with
  /// ProcessGroup, engine/local_executor.cc.)
  virtual std::unique_ptr<ProcessGroup> start(const TaskContext& ctx);
};

/// Chooses the executor for a task on a target.
class ExecutorSet {
 public:
  virtual ~ExecutorSet() = default;
  /// nullptr when no executor handles this kind on this target.
  virtual Executor* find(const plan::Task& task, const plan::Target& target) = 0;
  /// The run is being cancelled: give up connects and waits in progress.
  virtual void stop() {}
};

}  // namespace rw::engine
