#include "state/run_state.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace rw::state {
namespace {

const std::vector<std::pair<RunStatus, std::string>> kRunStatuses = {
    {RunStatus::Pending, "PENDING"},       {RunStatus::Running, "RUNNING"},
    {RunStatus::Completed, "COMPLETED"},   {RunStatus::Failed, "FAILED"},
    {RunStatus::Cancelled, "CANCELLED"},   {RunStatus::Terminated, "TERMINATED"},
    {RunStatus::Hung, "HUNG"},             {RunStatus::Unknown, "UNKNOWN"},
    {RunStatus::FailedToStart, "FAILED_TO_START"},
};

const std::vector<StepStatus> kStepStatuses = {StepStatus::Scheduled, StepStatus::Running,
                                               StepStatus::Completed, StepStatus::Error,
                                               StepStatus::Failed,    StepStatus::Aborting,
                                               StepStatus::Cancelled};

TEST(RunStatus, EveryStatusNameParsesBackToItself) {
  for (const auto& [status, name] : kRunStatuses) {
    EXPECT_EQ(to_string(status), name);
    EXPECT_EQ(parse_run_status(name), status) << name;
  }
}

TEST(RunStatus, CompletedParsesOnlyWhenSpelledExactly) {
  EXPECT_EQ(parse_run_status("COMPLETED"), RunStatus::Completed);
  for (const char* s : {"completed", "Completed", " COMPLETED", "COMPLETED ", "COMPLETED\n", "", "COMPLETE",
                        "SUCCESS", "OK", "0"})
    EXPECT_EQ(parse_run_status(s), RunStatus::Unknown) << "'" << s << "'";
}

TEST(RunStatus, AStatusWithAnEmbeddedNulIsUnknown) {
  EXPECT_EQ(parse_run_status(std::string("FAILED\0X", 8)), RunStatus::Unknown);
}

TEST(RunStatus, OnlyCompletedAndFailedArePostable) {
  for (const auto& [status, name] : kRunStatuses) {
    bool expected = status == RunStatus::Completed || status == RunStatus::Failed;
    EXPECT_EQ(is_postable(status), expected) << name;
  }
  EXPECT_FALSE(is_postable(parse_run_status("completed")));
}

TEST(RunStatus, OnlyPendingAndRunningAreNotTerminal) {
  for (const auto& [status, name] : kRunStatuses) {
    bool expected = status != RunStatus::Pending && status != RunStatus::Running;
    EXPECT_EQ(is_terminal(status), expected) << name;
  }
}

TEST(StepStatus, EveryStepStatusNameParsesBackToItself) {
  for (auto s : kStepStatuses) {
    auto parsed = parse_step_status(to_string(s));
    ASSERT_TRUE(parsed.has_value()) << to_string(s);
    EXPECT_EQ(*parsed, s);
  }
}

TEST(StepStatus, UnknownStepStatusesAreRefused) {
  for (const char* s : {"", "running", "Running", " RUNNING", "DONE", "PENDING"})
    EXPECT_FALSE(parse_step_status(s).has_value()) << "'" << s << "'";
}

TEST(StepStatus, OnlyCompletedFailedAndCancelledAreDone) {
  for (auto s : kStepStatuses) {
    bool expected = s == StepStatus::Completed || s == StepStatus::Failed || s == StepStatus::Cancelled;
    EXPECT_EQ(is_done(s), expected) << to_string(s);
  }
}

TEST(StepStatus, TheTransitionTableIsExactlyTheSeedsStateMachine) {
  using S = StepStatus;
  const std::vector<std::pair<S, S>> allowed = {
      {S::Scheduled, S::Running}, {S::Scheduled, S::Cancelled},                              //
      {S::Running, S::Completed}, {S::Running, S::Error},         {S::Running, S::Aborting},  //
      {S::Error, S::Scheduled},   {S::Error, S::Failed},          {S::Error, S::Cancelled},   //
      {S::Aborting, S::Cancelled}, {S::Aborting, S::Completed},   {S::Aborting, S::Failed},
      {S::Aborting, S::Error},                                                                //
      {S::Completed, S::Scheduled}, {S::Failed, S::Scheduled},                               //
  };
  for (auto from : kStepStatuses) {
    for (auto to : kStepStatuses) {
      bool expected = false;
      for (const auto& [f, t] : allowed) expected |= f == from && t == to;
      EXPECT_EQ(allowed_transition(from, to), expected) << to_string(from) << " -> " << to_string(to);
    }
  }
}

TEST(StepStatus, WorkNeverStartsWithoutBeingScheduledFirst) {
  for (auto from : kStepStatuses) {
    if (from != StepStatus::Scheduled) {
      EXPECT_FALSE(allowed_transition(from, StepStatus::Running)) << to_string(from);
    }
  }
}

TEST(StepStatus, CancelledIsFinal) {
  for (auto to : kStepStatuses) EXPECT_FALSE(allowed_transition(StepStatus::Cancelled, to)) << to_string(to);
}

TEST(TaskState, IdIsTheNameOrNameAtTarget) {
  TaskState t;
  t.name = "clean";
  EXPECT_EQ(t.id(), "clean");
  t.target = "hv1";
  EXPECT_EQ(t.id(), "clean@hv1");
}

TEST(SubrunKey, KeysFollowTheBuildNameRule) {
  EXPECT_TRUE(valid_subrun_key("linux"));
  EXPECT_TRUE(valid_subrun_key("windows.w2k25"));
  for (const char* k : {"", "..", "../x", "a/b", ".hidden", "a b"}) EXPECT_FALSE(valid_subrun_key(k)) << k;
  EXPECT_FALSE(valid_subrun_key(std::string(129, 'k')));
}

TEST(RunState, DefaultsArePendingWithAGraceWindowAndNoHungDeadline) {
  RunState s;
  EXPECT_EQ(s.schema, 1);
  EXPECT_EQ(s.status, RunStatus::Pending);
  EXPECT_EQ(s.hung_after_ms, 0);
  EXPECT_EQ(s.subrun_grace_ms, 30'000);
  EXPECT_FALSE(s.failure.has_value());
}

}  // namespace
}  // namespace rw::state
