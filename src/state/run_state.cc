#include "state/run_state.h"

#include <algorithm>

#include "common/build_name.h"

namespace rw::state {

namespace {
struct RunStatusName {
  RunStatus status;
  const char* name;
};
constexpr RunStatusName kRunStatusNames[] = {
    {RunStatus::Pending, "PENDING"},         {RunStatus::Running, "RUNNING"},
    {RunStatus::Completed, "COMPLETED"},     {RunStatus::Failed, "FAILED"},
    {RunStatus::Cancelled, "CANCELLED"},     {RunStatus::Terminated, "TERMINATED"},
    {RunStatus::Hung, "HUNG"},               {RunStatus::Unknown, "UNKNOWN"},
    {RunStatus::FailedToStart, "FAILED_TO_START"},
};
struct StepStatusName {
  StepStatus status;
  const char* name;
};
constexpr StepStatusName kStepStatusNames[] = {
    {StepStatus::Scheduled, "SCHEDULED"}, {StepStatus::Running, "RUNNING"},
    {StepStatus::Completed, "COMPLETED"}, {StepStatus::Error, "ERROR"},
    {StepStatus::Failed, "FAILED"},       {StepStatus::Aborting, "ABORTING"},
    {StepStatus::Cancelled, "CANCELLED"},
};
}  // namespace

const char* to_string(RunStatus s) {
  for (const auto& n : kRunStatusNames)
    if (n.status == s) return n.name;
  return "UNKNOWN";
}

RunStatus parse_run_status(const std::string& s) {
  for (const auto& n : kRunStatusNames)
    if (s == n.name) return n.status;
  return RunStatus::Unknown;
}

bool is_terminal(RunStatus s) { return s != RunStatus::Pending && s != RunStatus::Running; }

bool is_postable(RunStatus s) { return s == RunStatus::Completed || s == RunStatus::Failed; }

const char* to_string(StepStatus s) {
  for (const auto& n : kStepStatusNames)
    if (n.status == s) return n.name;
  return "?";
}

std::optional<StepStatus> parse_step_status(const std::string& s) {
  for (const auto& n : kStepStatusNames)
    if (s == n.name) return n.status;
  return std::nullopt;
}

bool is_done(StepStatus s) {
  return s == StepStatus::Completed || s == StepStatus::Failed || s == StepStatus::Cancelled;
}

bool allowed_transition(StepStatus from, StepStatus to) {
  using S = StepStatus;
  switch (from) {
    case S::Scheduled: return to == S::Running || to == S::Cancelled;
    case S::Running: return to == S::Completed || to == S::Error || to == S::Aborting;
    case S::Error: return to == S::Scheduled || to == S::Failed || to == S::Cancelled;
    case S::Aborting:
      return to == S::Cancelled || to == S::Completed || to == S::Failed || to == S::Error;
    // restart_from and stage retries re-run finished work from the start.
    case S::Completed: return to == S::Scheduled;
    case S::Failed: return to == S::Scheduled;
    case S::Cancelled: return false;
  }
  return false;
}

std::string TaskState::id() const { return target.empty() ? name : name + "@" + target; }

bool valid_subrun_key(const std::string& key) { return validate_name(key, "sub-run key", kMaxKey).ok(); }

namespace {

bool same_task(const TaskState& a, const TaskState& b) {
  return a.status == b.status && a.attempts == b.attempts && a.exit_code == b.exit_code && a.signal == b.signal &&
         a.started_at_ms == b.started_at_ms && a.ended_at_ms == b.ended_at_ms && a.retry_at_ms == b.retry_at_ms &&
         a.reason == b.reason && a.log == b.log && a.name == b.name && a.target == b.target;
}

bool same_stage_header(const StageState& a, const StageState& b) {
  return a.status == b.status && a.attempts == b.attempts && a.started_at_ms == b.started_at_ms &&
         a.ended_at_ms == b.ended_at_ms && a.name == b.name;
}

}  // namespace

std::optional<JournalEntry> journal_delta(const std::vector<StageState>& before,
                                          const std::vector<StageState>& after) {
  if (before.size() != after.size()) return std::nullopt;
  JournalEntry e;
  for (size_t i = 0; i < after.size(); ++i) {
    if (before[i].tasks.size() != after[i].tasks.size()) return std::nullopt;
    if (!same_stage_header(before[i], after[i])) {
      StageState header = after[i];
      header.tasks.clear();
      e.stages.emplace_back(i, std::move(header));
    }
    for (size_t t = 0; t < after[i].tasks.size(); ++t)
      if (!same_task(before[i].tasks[t], after[i].tasks[t])) e.tasks.push_back({i, t, after[i].tasks[t]});
  }
  return e;
}

bool apply_journal_entry(RunState& s, const JournalEntry& e) {
  for (const auto& [i, h] : e.stages)
    if (i >= s.stages.size()) return false;
  for (const auto& t : e.tasks)
    if (t.stage >= s.stages.size() || t.index >= s.stages[t.stage].tasks.size()) return false;
  for (const auto& [i, h] : e.stages) {
    auto& st = s.stages[i];
    st.name = h.name;
    st.status = h.status;
    st.attempts = h.attempts;
    st.started_at_ms = h.started_at_ms;
    st.ended_at_ms = h.ended_at_ms;
  }
  for (const auto& t : e.tasks) s.stages[t.stage].tasks[t.index] = t.state;
  if (!e.progress.empty()) s.progress = e.progress;
  s.journal_seq = std::max(s.journal_seq, e.seq);
  return true;
}

}  // namespace rw::state
