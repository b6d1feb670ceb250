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

#include <string_view>
#include <vector>
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
/// Splits events.jsonl as it grows into complete lines. A line longer than
/// `max_line` is dropped (reported by the next call's `dropped`), so a writer
/// that never ends its line cannot grow the reader's memory.
class EventLineSplitter {
 public:
  explicit EventLineSplitter(size_t max_line = 64 * 1024) : max_(max_line) {}
  struct Lines {
    std::vector<std::string> lines;
    size_t dropped = 0;  ///< over-long lines thrown away
  };
  Lines feed(std::string_view chunk);

 private:
  size_t max_;
  std::string partial_;
  bool skipping_ = false;  ///< inside an over-long line, until its newline
};

Result<Event> parse_event_line(const std::string& line);
std::string format_event_line(const Event& e);

/// Appends `e` to an events file in one O_APPEND write (concurrent writers'
/// lines never interleave), after checking it with the reader's own rules.
Status append_event(const std::string& file, const Event& e);

}  // namespace rw::state
