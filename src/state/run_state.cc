#include "state/run_state.h"

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

}  // namespace rw::state
