#pragma once
// /etc/runwarden/runwarden.conf: KEY=VALUE settings (RUNWARDEN_*), the same
// file the units read with EnvironmentFile=. The environment wins over it.

#include <string>

#include "common/result.h"

namespace rw {

inline constexpr const char* kConfigFile = "/etc/runwarden/runwarden.conf";

/// Sets each RUNWARDEN_* key of the file that is not already in the
/// environment. A missing file is fine; a line that is not KEY=VALUE is an
/// error naming file and line.
Status load_config(const std::string& path = kConfigFile);

}  // namespace rw
