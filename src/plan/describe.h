#pragma once
// A plan as the instruction list the runner will follow, for `runwarden
// validate` and logs: text for people, JSON for scripts (--json).

#include <nlohmann/json.hpp>
#include <string>

#include "plan/plan.h"

namespace rw::plan {

/// The instruction list, one per line: "Init", then per stage
/// "Stage i/N NAME (parallel P, retries R[, retry_delay D], retry task|stage
/// [, restart_from X][, subruns])", then one line per task instance
/// "  Task NAME [kind] on TARGET[ (via JUMP -> ...)][, timeout D][, retries R]",
/// then "End". Parallel 0 reads "unbounded"; durations read like "1h30m".
std::string describe(const Plan& p);

/// The same as JSON: {"source", "version", ..., "targets": [...], "steps":
/// [{"step": "init"}, {"step": "stage", ...}, {"step": "task", ...}, {"step": "end"}]}.
/// Durations are in milliseconds (keys ending in _ms); unset values are null.
nlohmann::json describe_json(const Plan& p);

/// "2h", "1h30m", "45s", "500ms", "0s": the shortest form parse_duration reads back.
std::string short_duration(Millis d);

}  // namespace rw::plan
