#pragma once

#include <string>

namespace rw::watch {

/// The watcher service of one build: follows the run directory (inotify)
/// and the runner unit (sd-bus signals), with one timer for HUNG and the
/// sub-run grace window; no polling loop. Returns the process exit code.
int run_watcher(const std::string& build);

}  // namespace rw::watch
