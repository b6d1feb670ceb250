#pragma once

#include <string>

#include "common/result.h"

namespace rw {

/// Build names: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, no "..". They become unit
/// instance names and directory names, so anything else is refused before
/// anything is touched.
Status validate_build_name(const std::string& name);

/// "runner@X.service" / "watcher@X.service".
std::string runner_unit(const std::string& build);
std::string watcher_unit(const std::string& build);

}  // namespace rw
