#pragma once

#include <string>

#include "common/result.h"

namespace rw {

/// The one name rule, for build names, stage, task and target names, testbed
/// objects and sub-run keys: a letter or digit, then letters, digits, '.',
/// '_' and '-', never ".." and never a '.' at the end, at most `max`
/// characters. Names become unit instance names, directory and file names.
/// Plan names get kMaxPlanName so that a sub-run key "task.target" made of
/// two valid names is itself valid (at most kMaxKey).
inline constexpr size_t kMaxPlanName = 63;
inline constexpr size_t kMaxKey = 128;
/// `what` names the thing in the error ("build name", "sub-run key", ...).
Status validate_name(const std::string& name, const std::string& what, size_t max);
/// One line describing the rule, for messages.
std::string name_rule(size_t max);

/// validate_name(name, "build name", kMaxKey).
Status validate_build_name(const std::string& name);

/// "runner@X.service" / "watcher@X.service".
std::string runner_unit(const std::string& build);
std::string watcher_unit(const std::string& build);

}  // namespace rw
