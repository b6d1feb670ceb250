#pragma once
// What the watcher concludes from what it sees, without I/O: which messages
// to post, which verdict to record, when to look again, when to exit.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/run_state.h"
#include "systemd/bus.h"

namespace rw::watch {

struct SubrunObservation {
  std::string key;
  bool readable = false;
  state::SubrunState state;
  bool posted = false;
  /// Its delivery finally failed (recorded, or tried by this watcher):
  /// only `runwarden notify --resend` tries it again.
  bool delivery_failed = false;
};

struct Observation {
  bool state_readable = false;
  std::string state_error;
  state::RunState state;
  bool cancelled_marker = false;
  bool posted_marker = false;
  bool delivery_failed = false;  ///< the run's own message; as for sub-runs
  std::vector<SubrunObservation> subruns;
  /// false until the unit state was read, and while what was read predates
  /// this run (a reused name's previous runner@ failure says nothing of it)
  bool runner_known = false;
  systemd::UnitState runner;
  int64_t now_ms = 0;
  int64_t last_progress_ms = 0;
  /// When this watcher first saw the run terminal: the grace window's start
  /// when the state has no end time.
  int64_t terminal_seen_ms = 0;
};

struct Decision {
  bool post_run = false;
  std::vector<std::string> post_subruns;
  /// TERMINATED or HUNG: written to state.json; UNKNOWN: only logged, the
  /// unreadable file is left as evidence.
  std::optional<state::RunStatus> verdict;
  std::string reason;
  bool exit = false;
  int64_t wake_at_ms = 0;  ///< 0: no timer
};

Decision decide(const Observation& o);

/// What a change to a file of the run directory (inotify: its name, its
/// event mask) asks of the watcher.
enum class Look {
  None,   ///< nothing: a temporary file of an atomic write (its rename counts)
  Later,  ///< progress only (the journal, a lock, a log): batched, looked at soon
  Now,    ///< state, markers, notification records, sub-runs, the directory itself
};
Look look_for(std::string_view name, uint32_t mask);

}  // namespace rw::watch
