#pragma once

#include <cstdint>
#include <string>

namespace rw {

/// Wall-clock milliseconds since the epoch (what state files store).
int64_t now_ms();
/// Monotonic milliseconds (for timeouts and latency).
int64_t mono_ms();
/// Epoch milliseconds that advance with the monotonic clock from the moment
/// the object was made: deadlines and delays computed with it (retries,
/// heartbeats, waits) are not shortened or stretched when the wall clock is
/// set, while its values stay wall-clock times for state files and people.
class SteadyWallClock {
 public:
  using Source = int64_t (*)();
  explicit SteadyWallClock(Source real = now_ms, Source mono = mono_ms)
      : mono_(mono), real0_(real()), mono0_(mono()) {}
  int64_t now() const { return real0_ + (mono_() - mono0_); }

 private:
  Source mono_;
  int64_t real0_, mono0_;
};

/// "2026-11-22T03:05:34.123Z"
std::string format_time(int64_t epoch_ms);
/// "20261122T030534Z" (history directory names)
std::string compact_time(int64_t epoch_ms);

}  // namespace rw
