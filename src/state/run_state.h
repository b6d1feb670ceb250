#pragma once
// The run's state model. state/ is the only place that turns it into JSON
// and back (store.cc); everything else works with these structs.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rw::state {

/// Run statuses. Parsed strictly: anything else is Unknown.
enum class RunStatus {
  Pending,
  Running,
  Completed,
  Failed,
  Cancelled,
  Terminated,
  Hung,
  Unknown,
  FailedToStart,
};
const char* to_string(RunStatus s);
/// Exact, case-sensitive match of the names above ("COMPLETED", ...).
RunStatus parse_run_status(const std::string& s);
bool is_terminal(RunStatus s);
/// Only these two ever produce a chat message.
bool is_postable(RunStatus s);

/// Stage and task statuses: the seeds' state machine.
enum class StepStatus { Scheduled, Running, Completed, Error, Failed, Aborting, Cancelled };
const char* to_string(StepStatus s);
/// nullopt for anything unknown.
std::optional<StepStatus> parse_step_status(const std::string& s);
bool is_done(StepStatus s);  ///< Completed, Failed or Cancelled
/// Whether the state machine allows from -> to.
bool allowed_transition(StepStatus from, StepStatus to);

struct TaskState {
  std::string name;
  std::string target;
  StepStatus status = StepStatus::Scheduled;
  int attempts = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  int64_t retry_at_ms = 0;  ///< when a task in ERROR with retries left goes again
  std::string log;  ///< relative to the run directory
  /// "name" or "name@target"
  std::string id() const;
};

struct StageState {
  std::string name;
  StepStatus status = StepStatus::Scheduled;
  int attempts = 0;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  std::vector<TaskState> tasks;
};

struct FailureInfo {
  std::string stage;
  std::string task;
  std::string target;
  std::string log;  ///< relative to the run directory
};

struct RunState {
  int schema = 1;
  std::string build;
  RunStatus status = RunStatus::Pending;
  std::string decided_by;  ///< start-run | runner | watcher | cancel-run
  std::string reason;
  int64_t created_at_ms = 0;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  int64_t hung_after_ms = 0;  ///< 0: never HUNG
  int64_t subrun_grace_ms = 30'000;
  bool categorized = false;
  /// Made by `runwarden testbed up`: the runner runs only the plan's
  /// testbed stages up to testbed-ready (no user stages, no teardown).
  bool testbed_only = false;
  std::string host;
  std::string workdir;
  std::string plan_file;  ///< plan.yaml in the run directory, or empty (command run)
  std::string plan_dir;   ///< the plan file's own directory: the base of its local paths
  std::string runner_command;
  std::string template_command;
  std::map<std::string, std::string> meta;
  std::string mention_on_failure;
  std::optional<int> exit_code;
  std::optional<int> signal;
  int runner_starts = 0;  ///< incremented by each runner start (resume count + 1)
  std::optional<FailureInfo> failure;
  std::string progress;  ///< "stage 2/4 test: 3/5 done, 1 retrying"
  std::vector<StageState> stages;
  /// The last journal entry (journal.jsonl) this state includes.
  uint64_t journal_seq = 0;
};

/// One entry of the run's journal: the stages and tasks that changed since
/// the entry before (or the last full write of state.json). The runner
/// appends one per batch of transitions instead of rewriting state.json, so
/// the bytes written per transition do not grow with the plan.
struct JournalEntry {
  uint64_t seq = 0;
  std::string progress;
  std::vector<std::pair<size_t, StageState>> stages;  ///< index and new header (its tasks unused)
  struct Task {
    size_t stage = 0;
    size_t index = 0;
    TaskState state;
  };
  std::vector<Task> tasks;
  bool empty() const { return stages.empty() && tasks.empty(); }
};

/// What differs from `before` to `after` (the same stages and tasks, as the
/// scheduler keeps them); nullopt when their shapes differ.
std::optional<JournalEntry> journal_delta(const std::vector<StageState>& before,
                                          const std::vector<StageState>& after);
/// Applies `e` to `s`; false (and `s` unchanged) if it does not fit.
bool apply_journal_entry(RunState& s, const JournalEntry& e);

/// A sub-run of a categorized run: subruns/<key>/state.json.
struct SubrunState {
  std::string key;
  RunStatus status = RunStatus::Running;
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  std::optional<int> exit_code;
  std::string message;
  std::string log;  ///< optional log path the command reported
};

/// Sub-run keys become directory names: same rule as build names.
bool valid_subrun_key(const std::string& key);

}  // namespace rw::state

namespace rw::state {

/// notification.json (the run's, or a sub-run's): the payload sent or still
/// to send, so `runwarden notify --resend` can deliver a post that failed.
struct NotificationRecord {
  std::string subrun;  ///< empty for the run's own message
  /// pending (being delivered, or a watcher died mid-delivery) | sent |
  /// failed (finally: only `runwarden notify --resend` tries again)
  std::string status;
  int attempts = 0;
  int last_http_status = 0;
  std::string last_error;
  int64_t updated_at_ms = 0;
  std::string response;  ///< the server's answer to the delivered post, e.g. "HTTP 200 ok"
  std::string payload;  ///< the JSON body, as sent
};

}  // namespace rw::state
