#pragma once

#include <string>

namespace rw::watch {

/// The watcher service of one build: follows the run directory (inotify)
/// and runner@'s main process (a pidfd), reading the unit's state from the
/// manager only when that process exits or the unit is between states; one
/// timer for HUNG and the sub-run grace window. It holds no bus connection
/// and no subscription while it waits. Returns the process exit code.
int run_watcher(const std::string& build);

}  // namespace rw::watch
