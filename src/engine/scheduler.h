#pragma once
// The stage/task state machine, without I/O: which task instances run next,
// what an outcome does to them, when the run is over. The runner persists
// the state after every batch of changes, before they take effect.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "plan/plan.h"
#include "state/run_state.h"

namespace rw::engine {

struct TaskRef {
  size_t stage;
  size_t task;  ///< index in StageState::tasks
};

class Scheduler {
 public:
  /// `state.stages` must match the plan (see initial_stages); the scheduler
  /// keeps a reference and changes it in place.
  Scheduler(const plan::Plan& plan, state::RunState& state);

  /// One StageState per plan stage, one TaskState per (task, target).
  static std::vector<state::StageState> initial_stages(const plan::Plan& plan);
  /// Whether saved stages belong to this plan (same stages, tasks, targets).
  static bool matches(const plan::Plan& plan, const std::vector<state::StageState>& stages);

  /// After a crash: work that was RUNNING or ABORTING counts as one failed
  /// attempt. Returns false when such a task has no attempts left: the run
  /// cannot be resumed.
  bool recover(int64_t now);

  /// Moves stages forward and marks the task instances to start now as
  /// RUNNING (attempts + 1). The caller persists, then starts them.
  std::vector<TaskRef> next(int64_t now);
  /// Records how a started task ended.
  void finish(TaskRef ref, const TaskOutcome& outcome, int64_t now);
  /// Running tasks the caller must stop (retry: stage aborts siblings).
  std::vector<TaskRef> take_aborts();
  /// Cancellation: RUNNING -> ABORTING; everything not started -> CANCELLED.
  std::vector<TaskRef> cancel_all();
  /// After cancel_all, once nothing runs: ABORTING stages/tasks -> CANCELLED.
  void finish_cancel(int64_t now);

  bool done() const;
  bool any_running() const;
  /// COMPLETED or FAILED once done().
  state::RunStatus result() const;
  /// Earliest pending retry time, 0 if none.
  int64_t next_wakeup() const;
  /// "stage 2/4 test: 3/5 done, 1 retrying"
  std::string progress() const;

  const plan::Task& plan_task(TaskRef r) const;
  const plan::Stage& plan_stage(size_t stage) const { return plan_.stages[stage]; }
  size_t current_stage() const { return current_; }
  /// Task instances and stages that ended FAILED in a sub-run stage since
  /// the last call, and those that started, for sub-run bookkeeping.
  std::vector<TaskRef> take_changed();

 private:
  int task_retries(TaskRef r) const;
  /// Once the stages before it failed or were cancelled, only `always`
  /// stages run: the first such stage after `after`, or the stage count.
  size_t next_always(size_t after) const;
  /// After a cancel, once nothing runs: the `always` stages start over.
  void begin_finally(int64_t now);
  /// An `always` stage that has yet to end.
  bool pending_always() const;
  void start_stage(size_t i, int64_t now);
  void reset_stage(size_t i, int64_t at);
  void settle_stage(int64_t now);
  void changed(TaskRef r) { changed_.push_back(r); }

  const plan::Plan& plan_;
  state::RunState& st_;
  std::vector<std::vector<size_t>> task_index_;  ///< [stage][instance] -> plan task index
  std::vector<TaskRef> aborts_;
  std::vector<TaskRef> changed_;
  std::vector<bool> retry_pending_;  ///< retry: stage waiting for siblings to stop
  size_t current_ = 0;
  bool cancelling_ = false;
  bool finally_ = false;  ///< only `always` stages run from here on
};

}  // namespace rw::engine
