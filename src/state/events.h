#pragma once
// Events a runner command reports itself, one JSON object per line in the
// file named by $RUNWARDEN_EVENTS:
//
//   {"type":"subrun","key":"linux","status":"RUNNING"}
//   {"type":"subrun","key":"linux","status":"COMPLETED","exit_code":0,"message":"412 passed"}
//   {"type":"subrun","key":"windows","status":"FAILED","exit_code":3,"log":"/srv/e2e/win.log"}
//   {"type":"progress","message":"suite 3/7"}
//
// `runwarden event subrun KEY --status ...` and `runwarden event progress
// TEXT` write these lines for scripts.

#include <optional>
#include <string>

#include "common/result.h"
#include "state/run_state.h"

namespace rw::state {

struct Event {
  std::string type;  ///< subrun | progress
  std::string key;
  RunStatus status = RunStatus::Running;
  std::optional<int> exit_code;
  std::string message;
  std::string log;
};

/// Strict: unknown types, bad keys and statuses other than RUNNING,
/// COMPLETED, FAILED are errors (the line is ignored and logged).
Result<Event> parse_event_line(const std::string& line);
std::string format_event_line(const Event& e);

}  // namespace rw::state
