#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace rw::engine {
namespace {

using state::RunStatus;
using state::StepStatus;

plan::Task task(const std::string& name, std::vector<std::string> on = {}) {
  plan::Task t;
  t.name = name;
  t.on = std::move(on);
  t.run = "true";
  return t;
}

plan::Stage stage(const std::string& name, std::vector<plan::Task> tasks) {
  plan::Stage s;
  s.name = name;
  s.tasks = std::move(tasks);
  return s;
}

TaskOutcome ok() {
  TaskOutcome o;
  o.ok = true;
  o.exit_code = 0;
  return o;
}

TaskOutcome failed(int code = 1) {
  TaskOutcome o;
  o.exit_code = code;
  o.reason = "exit code " + std::to_string(code);
  return o;
}

TaskOutcome aborted() {
  TaskOutcome o;
  o.cancelled = true;
  o.signal = 15;
  o.reason = "cancelled";
  return o;
}

/// A plan, its run state and a scheduler over them.
class SchedulerTest : public ::testing::Test {
 protected:
  void start() {
    st_.stages = Scheduler::initial_stages(plan_);
    sched_ = std::make_unique<Scheduler>(plan_, st_);
  }
  /// A second scheduler over a copy of the state, as a restarted runner has.
  void restart_runner() {
    saved_ = st_;
    cur_ = &saved_;
    sched_ = std::make_unique<Scheduler>(plan_, saved_);
  }
  state::TaskState& task_state(size_t s, size_t t) { return cur_->stages.at(s).tasks.at(t); }
  StepStatus task_status(size_t s, size_t t) { return task_state(s, t).status; }
  StepStatus stage_status(size_t s) { return cur_->stages.at(s).status; }

  static std::vector<size_t> indices(const std::vector<TaskRef>& refs) {
    std::vector<size_t> out;
    for (auto r : refs) out.push_back(r.task);
    return out;
  }

  plan::Plan plan_;
  state::RunState st_;
  state::RunState saved_;
  state::RunState* cur_ = &st_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(SchedulerTest, InitialStagesHaveOneTaskInstancePerTarget) {
  plan_.stages = {stage("prepare", {task("clean", {"hv1", "web1"}), task("local")})};
  auto stages = Scheduler::initial_stages(plan_);
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].name, "prepare");
  EXPECT_EQ(stages[0].status, StepStatus::Scheduled);
  ASSERT_EQ(stages[0].tasks.size(), 3u);
  EXPECT_EQ(stages[0].tasks[0].id(), "clean@hv1");
  EXPECT_EQ(stages[0].tasks[1].id(), "clean@web1");
  EXPECT_EQ(stages[0].tasks[2].id(), "local@controller");
  EXPECT_EQ(stages[0].tasks[0].log, "tasks/prepare/clean@hv1.log");
  for (const auto& t : stages[0].tasks) {
    EXPECT_EQ(t.status, StepStatus::Scheduled);
    EXPECT_EQ(t.attempts, 0);
  }
}

TEST_F(SchedulerTest, PlanTaskMapsEachInstanceBackToItsPlanTask) {
  plan_.stages = {stage("prepare", {task("clean", {"hv1", "web1"}), task("push", {"web1"})})};
  start();
  EXPECT_EQ(sched_->plan_task({0, 0}).name, "clean");
  EXPECT_EQ(sched_->plan_task({0, 1}).name, "clean");
  EXPECT_EQ(sched_->plan_task({0, 2}).name, "push");
}

TEST_F(SchedulerTest, SavedStagesMatchOnlyTheSamePlan) {
  plan_.stages = {stage("prepare", {task("clean", {"hv1"})}), stage("test", {task("linux")})};
  auto stages = Scheduler::initial_stages(plan_);
  EXPECT_TRUE(Scheduler::matches(plan_, stages));
  plan::Plan other = plan_;
  other.stages[0].tasks[0].on = {"hv2"};
  EXPECT_FALSE(Scheduler::matches(other, stages));
  other = plan_;
  other.stages[1].name = "tests";
  EXPECT_FALSE(Scheduler::matches(other, stages));
  other = plan_;
  other.stages.pop_back();
  EXPECT_FALSE(Scheduler::matches(other, stages));
}

TEST_F(SchedulerTest, AStageStartsAllItsTasksTogether) {
  plan_.stages = {stage("test", {task("a"), task("b"), task("c")})};
  start();
  auto starts = sched_->next(1'000);
  EXPECT_EQ(indices(starts), (std::vector<size_t>{0, 1, 2}));
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(task_status(0, t), StepStatus::Running);
    EXPECT_EQ(task_state(0, t).attempts, 1);
    EXPECT_EQ(task_state(0, t).started_at_ms, 1'000);
  }
  EXPECT_EQ(stage_status(0), StepStatus::Running);
  EXPECT_EQ(st_.stages[0].attempts, 1);
  EXPECT_TRUE(sched_->any_running());
  EXPECT_TRUE(sched_->next(1'001).empty()) << "started tasks are not started twice";
}

TEST_F(SchedulerTest, ParallelBoundsHowManyTasksRunAtOnce) {
  plan_.stages = {stage("test", {task("a"), task("b"), task("c"), task("d")})};
  plan_.stages[0].parallel = 2;
  start();
  EXPECT_EQ(indices(sched_->next(0)), (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(sched_->next(1).empty());
  sched_->finish({0, 1}, ok(), 2);
  EXPECT_EQ(indices(sched_->next(2)), (std::vector<size_t>{2}));
  sched_->finish({0, 0}, failed(), 3);  // no retries: a FAILED task frees its slot too
  EXPECT_EQ(indices(sched_->next(3)), (std::vector<size_t>{3}));
  EXPECT_TRUE(sched_->next(4).empty());
}

TEST_F(SchedulerTest, StagesRunInOrderAndTheNextStartsOnlyAfterAllTasksCompleted) {
  plan_.stages = {stage("prepare", {task("a"), task("b")}), stage("test", {task("c")})};
  start();
  auto first = sched_->next(0);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].stage, 0u);
  sched_->finish({0, 0}, ok(), 10);
  EXPECT_TRUE(sched_->next(10).empty());
  EXPECT_EQ(stage_status(1), StepStatus::Scheduled);
  EXPECT_EQ(sched_->current_stage(), 0u);
  sched_->finish({0, 1}, ok(), 20);
  auto second = sched_->next(20);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].stage, 1u);
  EXPECT_EQ(stage_status(0), StepStatus::Completed);
  EXPECT_EQ(st_.stages[0].ended_at_ms, 20);
  EXPECT_EQ(sched_->current_stage(), 1u);
  EXPECT_FALSE(sched_->done());
  sched_->finish({1, 0}, ok(), 30);
  EXPECT_TRUE(sched_->next(30).empty());
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Completed);
  EXPECT_EQ(stage_status(1), StepStatus::Completed);
}

TEST_F(SchedulerTest, SchedulerRetriesAFailedTaskAfterItsDelay) {
  plan_.stages = {stage("test", {task("a")})};
  plan_.stages[0].retries = 1;
  plan_.stages[0].retry_delay = Millis(1'000);
  start();
  ASSERT_EQ(sched_->next(100).size(), 1u);
  sched_->finish({0, 0}, failed(2), 200);
  EXPECT_EQ(task_status(0, 0), StepStatus::Scheduled);
  EXPECT_EQ(task_state(0, 0).retry_at_ms, 1'200);
  EXPECT_EQ(task_state(0, 0).exit_code, 2);
  EXPECT_EQ(sched_->next_wakeup(), 1'200);
  EXPECT_TRUE(sched_->next(1'199).empty());
  auto again = sched_->next(1'200);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(task_state(0, 0).attempts, 2);
  EXPECT_EQ(task_status(0, 0), StepStatus::Running);
  sched_->finish({0, 0}, ok(), 1'300);
  sched_->next(1'300);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Completed);
}

TEST_F(SchedulerTest, ATaskFailsOnceItsRetriesAreSpentAndTheRunFails) {
  plan_.stages = {stage("test", {task("a")}), stage("report", {task("r")})};
  plan_.stages[0].retries = 2;
  start();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_EQ(sched_->next(attempt * 10).size(), 1u) << attempt;
    EXPECT_EQ(task_state(0, 0).attempts, attempt);
    sched_->finish({0, 0}, failed(), attempt * 10 + 1);
  }
  EXPECT_EQ(task_status(0, 0), StepStatus::Failed);
  EXPECT_TRUE(sched_->next(100).empty());
  EXPECT_EQ(stage_status(0), StepStatus::Failed);
  EXPECT_EQ(stage_status(1), StepStatus::Scheduled) << "a failed stage stops the run";
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Failed);
}

TEST_F(SchedulerTest, ATasksOwnRetriesOverrideTheStages) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  plan_.stages[0].retries = 3;
  plan_.stages[0].tasks[0].retries = 0;
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  sched_->finish({0, 1}, failed(), 1);
  EXPECT_EQ(task_status(0, 0), StepStatus::Failed);
  EXPECT_EQ(task_status(0, 1), StepStatus::Scheduled);
}

TEST_F(SchedulerTest, ATaskFailureDoesNotAbortItsSiblingsByDefault) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  EXPECT_TRUE(sched_->take_aborts().empty());
  EXPECT_EQ(task_status(0, 1), StepStatus::Running);
  EXPECT_TRUE(sched_->next(2).empty());
  EXPECT_FALSE(sched_->done()) << "the stage ends when its last task does";
  sched_->finish({0, 1}, ok(), 3);
  sched_->next(3);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Failed);
}

TEST_F(SchedulerTest, StageRetryAbortsRunningSiblingsAndRestartsTheWholeStageAfterTheyStop) {
  plan_.stages = {stage("test", {task("a"), task("b"), task("c")})};
  plan_.stages[0].retry = plan::RetryMode::Stage;
  plan_.stages[0].retries = 1;
  plan_.stages[0].retry_delay = Millis(500);
  start();
  ASSERT_EQ(sched_->next(0).size(), 3u);
  sched_->finish({0, 2}, ok(), 5);
  sched_->finish({0, 0}, failed(), 10);
  EXPECT_EQ(indices(sched_->take_aborts()), (std::vector<size_t>{1}));
  EXPECT_TRUE(sched_->take_aborts().empty()) << "aborts are handed out once";
  EXPECT_EQ(task_status(0, 1), StepStatus::Aborting);
  EXPECT_TRUE(sched_->next(20).empty()) << "nothing restarts while a sibling still runs";
  EXPECT_FALSE(sched_->done());

  sched_->finish({0, 1}, aborted(), 30);
  EXPECT_EQ(task_status(0, 1), StepStatus::Cancelled);
  EXPECT_TRUE(sched_->next(30).empty()) << "the stage waits for its retry delay";
  for (size_t t = 0; t < 3; ++t) {
    EXPECT_EQ(task_status(0, t), StepStatus::Scheduled) << t;
    EXPECT_EQ(task_state(0, t).attempts, 0) << t;
    EXPECT_EQ(task_state(0, t).retry_at_ms, 530) << t;
  }
  EXPECT_EQ(sched_->next_wakeup(), 530);
  EXPECT_TRUE(sched_->next(529).empty());
  auto again = sched_->next(530);
  EXPECT_EQ(indices(again), (std::vector<size_t>{0, 1, 2})) << "completed siblings run again too";
  EXPECT_EQ(st_.stages[0].attempts, 2);

  // Retries spent: the failure is final, nothing more is aborted.
  sched_->finish({0, 0}, failed(), 600);
  EXPECT_EQ(task_status(0, 0), StepStatus::Failed);
  EXPECT_TRUE(sched_->take_aborts().empty());
  sched_->finish({0, 1}, ok(), 610);
  sched_->finish({0, 2}, ok(), 620);
  EXPECT_TRUE(sched_->next(620).empty());
  EXPECT_EQ(stage_status(0), StepStatus::Failed);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Failed);
}

TEST_F(SchedulerTest, StageRetryWithoutRunningSiblingsRestartsAtOnce) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  plan_.stages[0].retry = plan::RetryMode::Stage;
  plan_.stages[0].retries = 1;
  plan_.stages[0].parallel = 1;
  start();
  ASSERT_EQ(indices(sched_->next(0)), (std::vector<size_t>{0}));
  sched_->finish({0, 0}, failed(), 10);
  EXPECT_TRUE(sched_->take_aborts().empty());
  EXPECT_EQ(indices(sched_->next(10)), (std::vector<size_t>{0}));
  EXPECT_EQ(task_state(0, 0).attempts, 1);
  EXPECT_EQ(st_.stages[0].attempts, 2);
}

TEST_F(SchedulerTest, AnAbortedSiblingThatCompletedAnywayCountsAsCompleted) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  plan_.stages[0].retry = plan::RetryMode::Stage;
  plan_.stages[0].retries = 1;
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 10);
  ASSERT_EQ(sched_->take_aborts().size(), 1u);
  sched_->finish({0, 1}, ok(), 11);
  // The stage retry still re-runs everything.
  EXPECT_EQ(sched_->next(11).size(), 2u);
}

TEST_F(SchedulerTest, RestartFromReRunsFromTheNamedEarlierStageOnce) {
  plan_.stages = {stage("deploy", {task("d")}), stage("setup", {task("s")}), stage("test", {task("t")})};
  plan_.stages[2].restart_from = "deploy";
  plan_.stages[2].retry_delay = Millis(100);
  start();
  int deploy_runs = 0, test_runs = 0;
  int64_t now = 0;
  for (int round = 0; round < 10 && !sched_->done(); ++round) {
    now += 1'000;
    for (auto r : sched_->next(now)) {
      deploy_runs += r.stage == 0;
      test_runs += r.stage == 2;
      sched_->finish(r, r.stage == 2 ? failed() : ok(), now);
    }
  }
  EXPECT_EQ(deploy_runs, 2);
  EXPECT_EQ(test_runs, 2);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Failed);
  EXPECT_EQ(stage_status(0), StepStatus::Completed);
  EXPECT_EQ(stage_status(2), StepStatus::Failed);
}

TEST_F(SchedulerTest, RestartFromResetsTheStagesInBetweenAndWaitsForTheDelay) {
  plan_.stages = {stage("deploy", {task("d")}), stage("test", {task("t")})};
  plan_.stages[1].restart_from = "deploy";
  plan_.stages[1].retry_delay = Millis(100);
  start();
  sched_->finish(sched_->next(0).at(0), ok(), 1);
  sched_->finish(sched_->next(1).at(0), failed(), 2);
  EXPECT_TRUE(sched_->next(2).empty());
  EXPECT_EQ(sched_->current_stage(), 0u);
  EXPECT_EQ(stage_status(0), StepStatus::Scheduled);
  EXPECT_EQ(stage_status(1), StepStatus::Scheduled);
  EXPECT_EQ(task_state(0, 0).attempts, 0);
  EXPECT_EQ(sched_->next_wakeup(), 102);
  EXPECT_TRUE(sched_->next(101).empty());
  auto again = sched_->next(102);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].stage, 0u);
}

TEST_F(SchedulerTest, RestartFromHappensRetriesTimesWhenRetriesIsAboveOne) {
  plan_.stages = {stage("deploy", {task("d")}), stage("test", {task("t")})};
  plan_.stages[1].restart_from = "deploy";
  plan_.stages[1].retries = 2;
  start();
  int deploy_runs = 0;
  int64_t now = 0;
  for (int round = 0; round < 20 && !sched_->done(); ++round) {
    now += 10;
    for (auto r : sched_->next(now)) {
      deploy_runs += r.stage == 0;
      sched_->finish(r, r.stage == 1 ? failed() : ok(), now);
    }
  }
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(deploy_runs, 3);  // the first run and two restarts
  EXPECT_EQ(sched_->result(), RunStatus::Failed);
}

TEST_F(SchedulerTest, ARestartedStageThatPassesCompletesTheRun) {
  plan_.stages = {stage("deploy", {task("d")}), stage("test", {task("t")})};
  plan_.stages[1].restart_from = "deploy";
  start();
  bool test_failed_once = false;
  int64_t now = 0;
  for (int round = 0; round < 10 && !sched_->done(); ++round) {
    now += 10;
    for (auto r : sched_->next(now)) {
      bool fail = r.stage == 1 && !test_failed_once;
      test_failed_once |= fail;
      sched_->finish(r, fail ? failed() : ok(), now);
    }
  }
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Completed);
}

TEST_F(SchedulerTest, CancelAllAbortsRunningWorkAndCancelsTheRest) {
  plan_.stages = {stage("test", {task("a"), task("b"), task("c")}), stage("report", {task("r")})};
  plan_.stages[0].parallel = 2;
  start();
  sched_->next(0);
  auto running = sched_->cancel_all();
  EXPECT_EQ(indices(running), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(task_status(0, 0), StepStatus::Aborting);
  EXPECT_EQ(task_status(0, 1), StepStatus::Aborting);
  EXPECT_EQ(task_status(0, 2), StepStatus::Cancelled);
  EXPECT_EQ(stage_status(0), StepStatus::Aborting);
  EXPECT_EQ(stage_status(1), StepStatus::Cancelled);
  EXPECT_EQ(task_status(1, 0), StepStatus::Cancelled);
  EXPECT_EQ(sched_->result(), RunStatus::Cancelled);
  EXPECT_FALSE(sched_->done()) << "not done while tasks still stop";
  EXPECT_TRUE(sched_->next(1).empty()) << "nothing starts after a cancel";

  sched_->finish({0, 0}, aborted(), 5);
  sched_->finish({0, 1}, failed(), 6);
  EXPECT_EQ(task_status(0, 0), StepStatus::Cancelled);
  EXPECT_EQ(task_status(0, 1), StepStatus::Cancelled);
  EXPECT_TRUE(sched_->done());
  sched_->finish_cancel(7);
  EXPECT_EQ(stage_status(0), StepStatus::Cancelled);
  EXPECT_EQ(st_.stages[0].ended_at_ms, 7);
  EXPECT_EQ(sched_->result(), RunStatus::Cancelled);
}

TEST_F(SchedulerTest, CancelAllCancelsATaskWaitingForItsRetry) {
  plan_.stages = {stage("test", {task("a")})};
  plan_.stages[0].retries = 1;
  plan_.stages[0].retry_delay = Millis(60'000);
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  ASSERT_EQ(task_status(0, 0), StepStatus::Scheduled);
  EXPECT_TRUE(sched_->cancel_all().empty());
  EXPECT_EQ(task_status(0, 0), StepStatus::Cancelled);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Cancelled);
  EXPECT_TRUE(sched_->next(60'001).empty());
}

TEST_F(SchedulerTest, CancelAllLeavesFinishedWorkAsItWas) {
  plan_.stages = {stage("prepare", {task("p")}), stage("test", {task("t")})};
  start();
  sched_->finish(sched_->next(0).at(0), ok(), 1);
  sched_->next(1);
  sched_->cancel_all();
  EXPECT_EQ(stage_status(0), StepStatus::Completed);
  EXPECT_EQ(task_status(0, 0), StepStatus::Completed);
  EXPECT_EQ(task_status(1, 0), StepStatus::Aborting);
}

TEST_F(SchedulerTest, RecoverCountsAnInterruptedTaskAsOneFailedAttempt) {
  plan_.stages = {stage("test", {task("a")})};
  plan_.stages[0].retries = 1;
  plan_.stages[0].retry_delay = Millis(1'000);
  start();
  sched_->next(0);
  restart_runner();  // the runner died with `a` RUNNING
  EXPECT_TRUE(sched_->recover(5'000));
  EXPECT_EQ(task_status(0, 0), StepStatus::Scheduled);
  EXPECT_EQ(task_state(0, 0).attempts, 1);
  EXPECT_EQ(task_state(0, 0).retry_at_ms, 6'000);
  EXPECT_NE(task_state(0, 0).reason.find("interrupted"), std::string::npos) << task_state(0, 0).reason;
  EXPECT_FALSE(sched_->take_changed().empty());
  EXPECT_TRUE(sched_->next(5'999).empty());
  ASSERT_EQ(sched_->next(6'000).size(), 1u);
  EXPECT_EQ(task_state(0, 0).attempts, 2);
}

TEST_F(SchedulerTest, RecoverReturnsFalseWhenAnInterruptedTaskHasNoAttemptsLeft) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  start();
  sched_->next(0);
  restart_runner();
  EXPECT_FALSE(sched_->recover(5'000));
  EXPECT_EQ(task_status(0, 0), StepStatus::Error);
  EXPECT_EQ(task_status(0, 1), StepStatus::Error);
}

TEST_F(SchedulerTest, RecoverNeverStartsCompletedTasksAgain) {
  plan_.stages = {stage("prepare", {task("p1"), task("p2")}), stage("test", {task("done"), task("busy")})};
  plan_.stages[1].retries = 1;
  start();
  for (auto r : sched_->next(0)) sched_->finish(r, ok(), 1);
  auto test = sched_->next(1);
  ASSERT_EQ(test.size(), 2u);
  sched_->finish({1, 0}, ok(), 2);
  restart_runner();  // died with test/busy RUNNING
  ASSERT_TRUE(sched_->recover(10));
  auto starts = sched_->next(10);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].stage, 1u);
  EXPECT_EQ(starts[0].task, 1u);
  EXPECT_EQ(task_state(0, 0).attempts, 1);
  EXPECT_EQ(task_state(1, 0).attempts, 1);
  sched_->finish({1, 1}, ok(), 20);
  EXPECT_TRUE(sched_->next(20).empty());
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Completed);
}

TEST_F(SchedulerTest, RecoverAfterACompletedStageResumesAtTheFirstUnfinishedOne) {
  plan_.stages = {stage("prepare", {task("p")}), stage("test", {task("t")})};
  start();
  sched_->finish(sched_->next(0).at(0), ok(), 1);
  sched_->next(1);
  st_.stages[1].tasks[0].status = StepStatus::Scheduled;  // saved just before the start took effect
  st_.stages[1].tasks[0].attempts = 0;
  restart_runner();
  EXPECT_TRUE(sched_->recover(5));
  auto starts = sched_->next(5);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].stage, 1u);
  EXPECT_EQ(sched_->current_stage(), 1u);
}

// Regression: with `retry: stage`, a failed task stays ERROR while its siblings
// abort (Scheduler::finish), and the runner persists that state. If the
// runner dies then, recover() (src/engine/scheduler.cc) only looks at
// RUNNING/ABORTING tasks: the ERROR task is never rescheduled nor FAILED,
// and retry_pending_ (not persisted) is lost. After the siblings re-run, the
// stage can never settle: next() starts nothing, done() stays false, nothing
// runs and next_wakeup() is 0, so the resumed runner waits forever.
TEST_F(SchedulerTest, RecoverDuringAStageRetryStillFinishesTheRun) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  plan_.stages[0].retry = plan::RetryMode::Stage;
  plan_.stages[0].retries = 1;
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 10);
  ASSERT_EQ(sched_->take_aborts().size(), 1u);
  ASSERT_EQ(task_status(0, 0), StepStatus::Error);
  ASSERT_EQ(task_status(0, 1), StepStatus::Aborting);
  restart_runner();  // died while b was being aborted
  sched_->recover(20);
  int64_t now = 20;
  for (int round = 0; round < 10 && !sched_->done(); ++round) {
    now += 100;
    for (auto r : sched_->next(now)) sched_->finish(r, ok(), now);
  }
  EXPECT_TRUE(sched_->done()) << "stuck at: " << sched_->progress() << "; a is "
                              << state::to_string(task_status(0, 0));
  EXPECT_FALSE(sched_->any_running());
}

TEST_F(SchedulerTest, ProgressNamesTheStageAndCountsItsTasks) {
  plan_.stages = {stage("prepare", {task("p")}),
                  stage("test", {task("a"), task("b"), task("c"), task("d")}),
                  stage("report", {task("r")})};
  plan_.stages[1].retries = 1;
  plan_.stages[1].retry_delay = Millis(1'000);
  plan_.stages[1].parallel = 3;
  start();
  EXPECT_EQ(sched_->progress(), "stage 1/3 prepare: 0/1 done");
  sched_->finish(sched_->next(0).at(0), ok(), 1);
  ASSERT_EQ(sched_->next(1).size(), 3u);
  sched_->finish({1, 0}, ok(), 2);
  sched_->finish({1, 1}, failed(), 2);
  EXPECT_EQ(sched_->progress(), "stage 2/3 test: 1/4 done, 1 running, 1 retrying");
  ASSERT_EQ(indices(sched_->next(2)), (std::vector<size_t>{3}));
  EXPECT_EQ(sched_->progress(), "stage 2/3 test: 1/4 done, 2 running, 1 retrying");
}

TEST_F(SchedulerTest, ProgressCountsFailedTasks) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  EXPECT_EQ(sched_->progress(), "stage 1/1 test: 0/2 done, 1 running, 1 failed");
}

TEST_F(SchedulerTest, ProgressAfterTheLastStageShowsIt) {
  plan_.stages = {stage("only", {task("a")})};
  start();
  sched_->finish(sched_->next(0).at(0), ok(), 1);
  sched_->next(1);
  EXPECT_EQ(sched_->progress(), "stage 1/1 only: 1/1 done");
}

TEST_F(SchedulerTest, APlanWithoutStagesIsDoneAndCompleted) {
  start();
  EXPECT_TRUE(sched_->next(0).empty());
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Completed);
  EXPECT_EQ(sched_->progress(), "no stages");
  EXPECT_EQ(sched_->next_wakeup(), 0);
}

TEST_F(SchedulerTest, NextWakeupIsZeroWithoutPendingRetries) {
  plan_.stages = {stage("test", {task("a")})};
  start();
  EXPECT_EQ(sched_->next_wakeup(), 0);
  sched_->next(0);
  EXPECT_EQ(sched_->next_wakeup(), 0);
}

TEST_F(SchedulerTest, ChangedReportsStartsAndEndsOnce) {
  plan_.stages = {stage("test", {task("a"), task("b")})};
  start();
  sched_->next(0);
  EXPECT_EQ(indices(sched_->take_changed()), (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(sched_->take_changed().empty());
  sched_->finish({0, 1}, ok(), 1);
  EXPECT_EQ(indices(sched_->take_changed()), (std::vector<size_t>{1}));
}

TEST_F(SchedulerTest, FinishRecordsHowTheTaskEnded) {
  plan_.stages = {stage("test", {task("a")})};
  start();
  sched_->next(0);
  TaskOutcome o = failed(7);
  o.signal = 9;
  o.reason = "killed";
  sched_->finish({0, 0}, o, 42);
  EXPECT_EQ(task_state(0, 0).exit_code, 7);
  EXPECT_EQ(task_state(0, 0).signal, 9);
  EXPECT_EQ(task_state(0, 0).reason, "killed");
  EXPECT_EQ(task_state(0, 0).ended_at_ms, 42);
}

}  // namespace
}  // namespace rw::engine

namespace rw::engine {
namespace {

plan::Stage always_stage(const std::string& name) {
  plan::Stage s = stage(name, {task("down")});
  s.always = true;
  return s;
}

TEST_F(SchedulerTest, AFailedStageSkipsToTheStageThatAlwaysRuns) {
  plan_.stages = {stage("test", {task("a")}), stage("report", {task("r")}), always_stage("teardown")};
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  auto starts = sched_->next(2);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].stage, 2u) << "the teardown runs after the failure";
  EXPECT_EQ(stage_status(1), StepStatus::Cancelled) << "the stage in between does not run";
  EXPECT_EQ(task_state(1, 0).reason, "not run: stage test failed");
  EXPECT_FALSE(sched_->done());
  sched_->finish(starts[0], ok(), 3);
  sched_->next(4);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Failed);
  EXPECT_EQ(stage_status(2), StepStatus::Completed);
}

TEST_F(SchedulerTest, ACancelRunsTheAlwaysStageOnceEverythingElseHasStopped) {
  plan_.stages = {stage("test", {task("a")}), always_stage("teardown")};
  start();
  sched_->next(0);
  auto running = sched_->cancel_all();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_TRUE(sched_->next(1).empty()) << "nothing starts while the cancelled task stops";
  EXPECT_FALSE(sched_->done());
  sched_->finish(running[0], aborted(), 2);
  auto starts = sched_->next(3);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].stage, 1u);
  EXPECT_EQ(task_status(1, 0), StepStatus::Running);
  EXPECT_FALSE(sched_->done());
  sched_->finish(starts[0], ok(), 4);
  sched_->next(5);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(sched_->result(), RunStatus::Cancelled);
  EXPECT_EQ(stage_status(0), StepStatus::Cancelled);
  EXPECT_EQ(stage_status(1), StepStatus::Completed);
}

TEST_F(SchedulerTest, ACancelDuringTheAlwaysStageAfterAFailureLetsItFinish) {
  plan_.stages = {stage("test", {task("a")}), always_stage("teardown")};
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  auto starts = sched_->next(2);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_TRUE(sched_->cancel_all().empty()) << "the teardown is not aborted";
  EXPECT_EQ(task_status(1, 0), StepStatus::Running);
  sched_->finish(starts[0], ok(), 3);
  sched_->next(4);
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(stage_status(1), StepStatus::Completed);
}

TEST_F(SchedulerTest, AResumedRunGoesOnWithTheAlwaysStageItWasRunning) {
  plan_.stages = {stage("test", {task("a")}), stage("report", {task("r")}), always_stage("teardown")};
  plan_.stages[2].retries = 1;
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  ASSERT_EQ(sched_->next(2).size(), 1u);
  restart_runner();
  ASSERT_TRUE(sched_->recover(3));
  auto starts = sched_->next(4);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].stage, 2u) << "the teardown, not the failed stage";
  EXPECT_EQ(task_state(2, 0).attempts, 2);
}

TEST_F(SchedulerTest, AStageThatDoesNotAlwaysRunIsSkippedAfterAFailure) {
  plan_.stages = {stage("test", {task("a")}), stage("teardown", {task("down")})};
  start();
  sched_->next(0);
  sched_->finish({0, 0}, failed(), 1);
  EXPECT_TRUE(sched_->next(2).empty());
  EXPECT_TRUE(sched_->done());
  EXPECT_EQ(stage_status(1), StepStatus::Scheduled);
}

}  // namespace
}  // namespace rw::engine
