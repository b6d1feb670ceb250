#pragma once
// Small pieces the subcommands share.

#include <string>

#include "common/result.h"
#include "state/run_state.h"

namespace rw::cli {

/// Prints "NAME: message" to stderr and returns the error's exit code.
int fail(const Error& e);

/// Ended runs kept per build name ($RUNWARDEN_HISTORY_KEEP, default 20).
int history_keep();

/// A new run of `build` under `root`, its caller holding the build's lock:
/// the previous run archived (a new run never inherits its markers or
/// sub-runs), the run directory made, and its state begun (PENDING,
/// decided by `by`, created now, on this host). The caller fills in the
/// rest and saves it.
Result<state::RunState> begin_run(const std::string& root, const std::string& build, const std::string& by);
/// Validates a build name option, printing the error.
bool check_build(const std::string& build, int* rc);
/// "1h 2m 3s" between two epoch-ms times (0 end: until now).
std::string elapsed(int64_t start_ms, int64_t end_ms);

}  // namespace rw::cli
