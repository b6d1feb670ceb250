#include "watch/decide.h"

#include <gtest/gtest.h>
#include <sys/inotify.h>

#include <string>
#include <vector>

namespace rw::watch {
namespace {

using state::RunStatus;

constexpr int64_t kNow = 1'700'000'000'000;

systemd::UnitState unit(const std::string& active, const std::string& sub, const std::string& result = "") {
  systemd::UnitState u;
  u.active = active;
  u.sub = sub;
  u.result = result;
  u.state_change_ms = kNow - 1'000;
  return u;
}

/// A readable run in `status` whose runner unit is known to be active.
Observation seen(RunStatus status) {
  Observation o;
  o.state_readable = true;
  o.state.build = "b1";
  o.state.status = status;
  o.state.started_at_ms = kNow - 60'000;
  if (state::is_terminal(status)) o.state.ended_at_ms = kNow - 1'000;
  o.runner_known = true;
  o.runner = unit("active", "running");
  o.now_ms = kNow;
  o.last_progress_ms = kNow - 5'000;
  return o;
}

SubrunObservation sub(const std::string& key, RunStatus status, bool posted = false, bool readable = true) {
  SubrunObservation s;
  s.key = key;
  s.readable = readable;
  s.state.key = key;
  s.state.status = status;
  s.posted = posted;
  return s;
}

void expect_silent(const Decision& d) {
  EXPECT_FALSE(d.post_run);
  EXPECT_TRUE(d.post_subruns.empty());
}

TEST(Decide, ACompletedRunPostsOnceAndExits) {
  auto d = decide(seen(RunStatus::Completed));
  EXPECT_TRUE(d.post_run);
  EXPECT_TRUE(d.exit);
  EXPECT_FALSE(d.verdict.has_value());
  EXPECT_NE(d.reason.find("COMPLETED"), std::string::npos) << d.reason;
}

TEST(Decide, AFailedRunPostsOnceAndExits) {
  auto d = decide(seen(RunStatus::Failed));
  EXPECT_TRUE(d.post_run);
  EXPECT_TRUE(d.exit);
  EXPECT_FALSE(d.verdict.has_value());
}

TEST(Decide, ARunWhosePostedMarkerExistsNeverPostsAgain) {
  for (auto status : {RunStatus::Completed, RunStatus::Failed}) {
    auto o = seen(status);
    o.posted_marker = true;
    auto d = decide(o);
    EXPECT_FALSE(d.post_run) << to_string(status);
    EXPECT_TRUE(d.exit);
  }
}

TEST(Decide, TheCancelledMarkerEndsTheWatcherWithoutAPost) {
  for (auto status : {RunStatus::Completed, RunStatus::Failed, RunStatus::Running, RunStatus::Unknown}) {
    auto o = seen(status);
    o.cancelled_marker = true;
    o.state.categorized = true;
    o.subruns = {sub("linux", RunStatus::Completed)};
    auto d = decide(o);
    expect_silent(d);
    EXPECT_TRUE(d.exit) << to_string(status);
    EXPECT_FALSE(d.verdict.has_value());
  }
}

TEST(Decide, TheCancelledMarkerWinsEvenOverAnUnreadableState) {
  Observation o;
  o.cancelled_marker = true;
  auto d = decide(o);
  EXPECT_TRUE(d.exit);
  EXPECT_FALSE(d.verdict.has_value());
}

TEST(Decide, AnUnreadableStateIsUnknownAndNeverPosts) {
  Observation o;
  o.state_readable = false;
  o.state_error = "state.json: not valid JSON";
  o.state.status = RunStatus::Completed;  // whatever was left in the struct
  o.now_ms = kNow;
  auto d = decide(o);
  expect_silent(d);
  ASSERT_TRUE(d.verdict.has_value());
  EXPECT_EQ(*d.verdict, RunStatus::Unknown);
  EXPECT_TRUE(d.exit);
  EXPECT_NE(d.reason.find("not valid JSON"), std::string::npos) << d.reason;
}

TEST(Decide, AStatusTheWatcherDoesNotKnowNeverPosts) {
  auto o = seen(RunStatus::Unknown);
  o.posted_marker = false;
  auto d = decide(o);
  expect_silent(d);
  ASSERT_TRUE(d.verdict.has_value());
  EXPECT_EQ(*d.verdict, RunStatus::Unknown);
  EXPECT_TRUE(d.exit);
}

TEST(Decide, TerminalStatusesOtherThanCompletedAndFailedNeverPost) {
  for (auto status : {RunStatus::Cancelled, RunStatus::Terminated, RunStatus::Hung, RunStatus::FailedToStart}) {
    auto o = seen(status);
    auto d = decide(o);
    expect_silent(d);
    EXPECT_TRUE(d.exit) << to_string(status);
    EXPECT_FALSE(d.verdict.has_value()) << to_string(status);
  }
}

TEST(Decide, ACancelledCategorizedRunPostsNoSubrunEither) {
  auto o = seen(RunStatus::Cancelled);
  o.state.categorized = true;
  o.subruns = {sub("linux", RunStatus::Completed)};
  auto d = decide(o);
  expect_silent(d);
  EXPECT_TRUE(d.exit);
}

TEST(Decide, ARunningCategorizedRunPostsEachEndedSubrunNotYetPosted) {
  auto o = seen(RunStatus::Running);
  o.state.categorized = true;
  o.subruns = {sub("linux", RunStatus::Completed),        sub("windows", RunStatus::Failed),
               sub("bsd", RunStatus::Completed, true),    sub("macos", RunStatus::Running),
               sub("solaris", RunStatus::Terminated),     sub("aix", RunStatus::Unknown),
               sub("hpux", RunStatus::Completed, false, false)};
  auto d = decide(o);
  EXPECT_EQ(d.post_subruns, (std::vector<std::string>{"linux", "windows"}));
  EXPECT_FALSE(d.post_run);
  EXPECT_FALSE(d.exit);
  EXPECT_FALSE(d.verdict.has_value());
}

TEST(Decide, SubrunsOfARunThatIsNotCategorizedAreIgnored) {
  auto o = seen(RunStatus::Completed);
  o.subruns = {sub("linux", RunStatus::Completed)};
  auto d = decide(o);
  EXPECT_TRUE(d.post_subruns.empty());
  EXPECT_TRUE(d.post_run);
}

TEST(Decide, ACompletedCategorizedParentDoesNotPostForItself) {
  auto o = seen(RunStatus::Completed);
  o.state.categorized = true;
  o.subruns = {sub("linux", RunStatus::Completed, true)};
  auto d = decide(o);
  EXPECT_FALSE(d.post_run);
  EXPECT_TRUE(d.post_subruns.empty());
}

TEST(Decide, AFailedCategorizedParentWithSubrunsLetsThemSpeak) {
  auto o = seen(RunStatus::Failed);
  o.state.categorized = true;
  o.subruns = {sub("linux", RunStatus::Failed)};
  auto d = decide(o);
  EXPECT_FALSE(d.post_run);
  EXPECT_EQ(d.post_subruns, std::vector<std::string>{"linux"});
}

TEST(Decide, AFailedCategorizedParentWithoutSubrunsPostsForItself) {
  auto o = seen(RunStatus::Failed);
  o.state.categorized = true;
  auto d = decide(o);
  EXPECT_TRUE(d.post_run);
  EXPECT_TRUE(d.post_subruns.empty());
}

// Regression: decide() (src/watch/decide.cc) lets a FAILED categorized parent post
// only when o.subruns is empty. When the command reported a sub-run as
// RUNNING and then died, the runner's finish() marks that sub-run TERMINATED
// (no message), so the failed run sends no message at all: a silent
// failure, which the comment next to the rule says must not happen. The
// parent should post when none of its sub-runs is postable.
TEST(Decide, AFailedCategorizedRunWhoseSubrunsNeverEndedIsNotSilent) {
  auto o = seen(RunStatus::Failed);
  o.state.categorized = true;
  o.subruns = {sub("linux", RunStatus::Terminated)};
  auto d = decide(o);
  EXPECT_TRUE(d.post_run || !d.post_subruns.empty()) << "nothing is posted for a FAILED run";
}

TEST(Decide, ACategorizedRunWhoseSubrunsAreAllClosedExitsAtOnce) {
  // The runner closes every sub-run before writing its end: nothing more can
  // arrive, so the build name is free again as soon as the posts are made.
  auto o = seen(RunStatus::Completed);
  o.state.categorized = true;
  o.state.ended_at_ms = kNow - 1'000;
  o.state.subrun_grace_ms = 30'000;
  o.subruns = {sub("linux", RunStatus::Completed), sub("bsd", RunStatus::Terminated)};
  auto d = decide(o);
  EXPECT_TRUE(d.exit);
  EXPECT_EQ(d.wake_at_ms, 0);
  EXPECT_EQ(d.post_subruns, std::vector<std::string>{"linux"});
}

TEST(Decide, ACategorizedRunWithAnOpenSubrunWaitsTheGraceWindowThenExits) {
  auto o = seen(RunStatus::Completed);
  o.state.categorized = true;
  o.state.ended_at_ms = kNow - 1'000;
  o.state.subrun_grace_ms = 30'000;
  o.subruns = {sub("linux", RunStatus::Completed), sub("windows", RunStatus::Running)};
  auto d = decide(o);
  EXPECT_FALSE(d.exit);
  EXPECT_EQ(d.wake_at_ms, kNow + 29'000);
  EXPECT_EQ(d.post_subruns, std::vector<std::string>{"linux"});

  // A late sub-run reported inside the window still posts, and closes it.
  o.subruns = {sub("linux", RunStatus::Completed, true), sub("windows", RunStatus::Failed)};
  o.now_ms = kNow + 28'999;
  d = decide(o);
  EXPECT_TRUE(d.exit);
  EXPECT_EQ(d.post_subruns, std::vector<std::string>{"windows"});

  o.subruns = {sub("linux", RunStatus::Completed, true), sub("windows", RunStatus::Running)};
  o.now_ms = kNow + 29'000;
  d = decide(o);
  EXPECT_TRUE(d.exit);
  EXPECT_TRUE(d.post_subruns.empty());
  EXPECT_EQ(d.wake_at_ms, 0);
}

TEST(Decide, AFailedCategorizedRunWithNoSubrunPostsItselfAndExits) {
  auto o = seen(RunStatus::Failed);
  o.state.categorized = true;
  o.state.ended_at_ms = kNow;
  o.state.subrun_grace_ms = 10'000;
  auto d = decide(o);
  EXPECT_TRUE(d.post_run);
  EXPECT_TRUE(d.exit);
}

TEST(Decide, AMessageWhoseDeliveryFinallyFailedIsNotAttemptedAgain) {
  auto o = seen(RunStatus::Completed);
  o.delivery_failed = true;
  auto d = decide(o);
  EXPECT_FALSE(d.post_run);
  EXPECT_TRUE(d.exit);

  o = seen(RunStatus::Running);
  o.state.categorized = true;
  auto failed = sub("linux", RunStatus::Completed);
  failed.delivery_failed = true;
  o.subruns = {failed, sub("bsd", RunStatus::Failed)};
  d = decide(o);
  EXPECT_EQ(d.post_subruns, std::vector<std::string>{"bsd"});
}

// Regression: with a categorized COMPLETED/FAILED state whose ended_at_ms is 0
// (missing or of the wrong type in state.json, which the store turns into
// 0), decide() (src/watch/decide.cc) measures the grace window from `now`,
// so every wake-up pushes it further: the watcher never exits, and
// start-run then refuses the build because watcher@X stays active.
TEST(Decide, ACategorizedRunWithoutAnEndTimeStillExitsAfterTheGraceWindow) {
  auto o = seen(RunStatus::Completed);
  o.state.categorized = true;
  o.state.ended_at_ms = 0;
  o.state.subrun_grace_ms = 30'000;
  o.subruns = {sub("linux", RunStatus::Running)};
  o.terminal_seen_ms = o.now_ms;  // the watcher remembers when it saw the end
  auto d = decide(o);
  ASSERT_FALSE(d.exit);
  ASSERT_GT(d.wake_at_ms, 0);
  o.now_ms = d.wake_at_ms;
  d = decide(o);
  EXPECT_TRUE(d.exit) << "woke at the end of the window, asked to wake again at " << d.wake_at_ms;
}

TEST(Decide, APreviousRunsFailedRunnerUnitDoesNotTerminateANewRun) {
  // start-run of a reused name: the watcher is up before runner@ starts, and
  // the manager still remembers the previous run's failure.
  for (auto status : {RunStatus::Pending, RunStatus::Running}) {
    auto o = seen(status);
    o.state.created_at_ms = kNow - 2'000;
    o.runner = unit("failed", "failed", "signal");
    o.runner.state_change_ms = kNow - 3'600'000;
    auto d = decide(o);
    EXPECT_FALSE(d.verdict.has_value()) << to_string(status) << ": " << d.reason;
    EXPECT_FALSE(d.exit);
    // The same failure, seen after this run was created, ends it.
    o.runner.state_change_ms = kNow - 1'000;
    d = decide(o);
    ASSERT_TRUE(d.verdict.has_value());
    EXPECT_EQ(*d.verdict, RunStatus::Terminated);
  }
}

TEST(Decide, ARunningRunWhoseRunnerUnitIsGoneIsTerminated) {
  for (auto u : {unit("inactive", "dead", "success"), unit("failed", "failed", "signal"),
                 unit("failed", "failed", "oom-kill")}) {
    auto o = seen(RunStatus::Running);
    o.runner = u;
    auto d = decide(o);
    expect_silent(d);
    ASSERT_TRUE(d.verdict.has_value()) << u.active;
    EXPECT_EQ(*d.verdict, RunStatus::Terminated);
    EXPECT_TRUE(d.exit);
    EXPECT_NE(d.reason.find(u.active), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find(u.result), std::string::npos) << d.reason;
  }
}

TEST(Decide, APendingRunWaitsForAnInactiveRunner) {
  auto o = seen(RunStatus::Pending);
  o.runner = unit("inactive", "dead");
  auto d = decide(o);
  EXPECT_FALSE(d.verdict.has_value());
  EXPECT_FALSE(d.exit);
  expect_silent(d);
}

TEST(Decide, APendingRunWhoseRunnerFailedIsTerminated) {
  auto o = seen(RunStatus::Pending);
  o.runner = unit("failed", "failed", "exit-code");
  auto d = decide(o);
  ASSERT_TRUE(d.verdict.has_value());
  EXPECT_EQ(*d.verdict, RunStatus::Terminated);
  EXPECT_TRUE(d.exit);
}

TEST(Decide, ARunnerAboutToRestartIsWaitedFor) {
  for (auto u : {unit("activating", "auto-restart", "signal"), unit("inactive", "auto-restart", "signal")}) {
    auto o = seen(RunStatus::Running);
    o.runner = u;
    auto d = decide(o);
    EXPECT_FALSE(d.verdict.has_value()) << u.active;
    EXPECT_FALSE(d.exit) << u.active;
  }
}

TEST(Decide, AnUnknownRunnerUnitStateIsNeverTakenForGone) {
  auto o = seen(RunStatus::Running);
  o.runner_known = false;
  o.runner = unit("inactive", "dead");
  auto d = decide(o);
  EXPECT_FALSE(d.verdict.has_value());
  EXPECT_FALSE(d.exit);
}

TEST(Decide, ARunningRunWithAnActiveRunnerAndNoHungLimitJustWaits) {
  auto o = seen(RunStatus::Running);
  o.last_progress_ms = kNow - 10 * 3'600'000;
  auto d = decide(o);
  EXPECT_FALSE(d.verdict.has_value());
  EXPECT_FALSE(d.exit);
  EXPECT_EQ(d.wake_at_ms, 0);
  expect_silent(d);
}

TEST(Decide, BeforeTheHungDeadlineTheWatcherWakesAtIt) {
  auto o = seen(RunStatus::Running);
  o.state.hung_after_ms = 45 * 60'000;
  o.last_progress_ms = kNow - 60'000;
  auto d = decide(o);
  EXPECT_FALSE(d.verdict.has_value());
  EXPECT_FALSE(d.exit);
  EXPECT_EQ(d.wake_at_ms, kNow - 60'000 + 45 * 60'000);
}

TEST(Decide, ARunWithoutProgressPastTheDeadlineIsHungAndNeverPosts) {
  auto o = seen(RunStatus::Running);
  o.state.hung_after_ms = 45 * 60'000;
  o.last_progress_ms = kNow - 45 * 60'000;
  auto d = decide(o);
  ASSERT_TRUE(d.verdict.has_value());
  EXPECT_EQ(*d.verdict, RunStatus::Hung);
  EXPECT_TRUE(d.exit);
  expect_silent(d);
  EXPECT_NE(d.reason.find("no progress for 2700s"), std::string::npos) << d.reason;
}

TEST(Decide, AGoneRunnerIsTerminatedRatherThanHung) {
  auto o = seen(RunStatus::Running);
  o.state.hung_after_ms = 1'000;
  o.last_progress_ms = kNow - 3'600'000;
  o.runner = unit("failed", "failed", "signal");
  auto d = decide(o);
  ASSERT_TRUE(d.verdict.has_value());
  EXPECT_EQ(*d.verdict, RunStatus::Terminated);
}

TEST(Decide, ARunningCategorizedRunCanBeHungWhilePostingItsSubruns) {
  auto o = seen(RunStatus::Running);
  o.state.categorized = true;
  o.state.hung_after_ms = 1'000;
  o.last_progress_ms = kNow - 2'000;
  o.subruns = {sub("linux", RunStatus::Completed)};
  auto d = decide(o);
  EXPECT_EQ(d.post_subruns, std::vector<std::string>{"linux"});
  ASSERT_TRUE(d.verdict.has_value());
  EXPECT_EQ(*d.verdict, RunStatus::Hung);
  EXPECT_FALSE(d.post_run);
}

TEST(LookFor, AnAtomicWritesTemporaryFileWakesNobodyItsRenameDoes) {
  const std::string tmp = "state.json.tmp.40.2.4f33835a1f59829b";
  for (uint32_t mask : {IN_CREATE, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_DELETE})
    EXPECT_EQ(look_for(tmp, mask), Look::None) << mask;
  EXPECT_EQ(look_for("state.json", IN_MOVED_TO), Look::Now);
  EXPECT_EQ(look_for("posted.marker.tmp.7.0.00ff", IN_CREATE), Look::None);
  EXPECT_EQ(look_for("posted.marker", IN_MOVED_TO), Look::Now);
  // A sub-run directory may have any name.
  EXPECT_EQ(look_for("nightly.tmp.x", IN_CREATE | IN_ISDIR), Look::Now);
}

TEST(LookFor, TheRunnersPerTaskWritesAreLookedAtLaterTheirRemovalAtOnce) {
  for (const char* name : {"journal.jsonl", "state.lock", "runner.log", "events.jsonl"}) {
    EXPECT_EQ(look_for(name, IN_CLOSE_WRITE), Look::Later) << name;
    EXPECT_EQ(look_for(name, IN_DELETE), Look::Now) << name;
  }
  EXPECT_EQ(look_for("cancelled.marker", IN_CREATE), Look::Now);
  EXPECT_EQ(look_for("", IN_DELETE_SELF), Look::Now);
}

}  // namespace
}  // namespace rw::watch
