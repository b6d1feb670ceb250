#pragma once
// Plan files (YAML, format version 1) -> Plan. The only place that reads YAML.
// Every problem is reported as "FILE:LINE:COLUMN: what is wrong; what is
// allowed", pointing at the offending key or value, so a user can fix a plan
// without reading the source. Several problems are reported at once (one per
// line, in file order) so a plan can be fixed in one go.

#include <cstddef>
#include <string>

#include "common/result.h"
#include "plan/plan.h"

namespace rw::plan {

/// Nesting deeper than this is refused before YAML parsing starts: plans need
/// a handful of levels, and yaml-cpp recurses once per level.
inline constexpr int kMaxNesting = 64;
/// Task instances (tasks x targets) per plan; bounds the work anchors and
/// aliases can multiply out of a small file.
inline constexpr std::size_t kMaxTaskInstances = 10'000;
/// Errors listed in one message; the rest are counted.
inline constexpr std::size_t kMaxErrors = 20;
/// Plan files larger than this are refused unread. Real plans are a few
/// kilobytes; yaml-cpp reads about 1-2 MB/s, so this also bounds the time a
/// hostile file can cost.
inline constexpr std::size_t kMaxPlanBytes = 1024 * 1024;

/// Parses and validates plan text. Never throws. Errors carry exit code 2
/// (bad input); every line of the message starts with "FILE:LINE:COLUMN: "
/// (1-based) and says what is wrong and what is allowed.
Result<Plan> parse_plan(const std::string& text, const std::string& file_name);

/// Reads the file (a clear error if it is missing or unreadable), then parse_plan.
Result<Plan> load_plan(const std::string& path);

}  // namespace rw::plan
