#pragma once

#include <cstdint>
#include <string>

namespace rw {

/// Wall-clock milliseconds since the epoch (what state files store).
int64_t now_ms();
/// Monotonic milliseconds (for timeouts and latency).
int64_t mono_ms();
/// "2026-11-22T03:05:34.123Z"
std::string format_time(int64_t epoch_ms);
/// "20261122T030534Z" (history directory names)
std::string compact_time(int64_t epoch_ms);

}  // namespace rw
