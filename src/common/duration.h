#pragma once
// Durations as users write them: "90", "90s", "45m", "2h", "1h30m", "500ms", "1d".

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace rw {

using Millis = std::chrono::milliseconds;

/// Parses a duration; a bare number means seconds. Rejects negatives, empty
/// strings, unknown units and overflow.
Result<Millis> parse_duration(std::string_view text);

/// Formats as the shortest readable form: "1h 2m 3s", "450ms".
std::string format_duration(Millis d);

}  // namespace rw
