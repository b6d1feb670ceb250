#include "common/duration.h"

#include <cctype>
#include <cstdint>
#include <limits>

namespace rw {

Result<Millis> parse_duration(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return err("invalid duration '" + std::string(text) + "': " + why +
               " (examples: 30s, 45m, 2h, 1h30m, 500ms)");
  };
  if (text.empty()) return bad("empty");
  int64_t total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return bad("expected a number");
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (n > (std::numeric_limits<int64_t>::max() - 9) / 10) return bad("too large");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    size_t u = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(u, i - u);
    int64_t mult;
    if (unit.empty()) {
      if (any || i != text.size()) return bad("missing unit");
      mult = 1000;
    } else if (unit == "ms") {
      mult = 1;
    } else if (unit == "s") {
      mult = 1000;
    } else if (unit == "m" || unit == "min") {
      mult = 60'000;
    } else if (unit == "h") {
      mult = 3'600'000;
    } else if (unit == "d") {
      mult = 86'400'000;
    } else {
      return bad("unknown unit '" + std::string(unit) + "'");
    }
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    if (n > kMax / mult || total > kMax - n * mult) return bad("too large");
    total += n * mult;
    any = true;
  }
  return Millis(total);
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms < 0) ms = 0;
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t s = ms / 1000;
  int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  std::string out;
  if (h) out += std::to_string(h) + "h ";
  if (h || m) out += std::to_string(m) + "m ";
  out += std::to_string(sec) + "s";
  return out;
}

}  // namespace rw
