#include "cli/common.h"

#include <errno.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/build_name.h"
#include "common/clock.h"
#include "common/duration.h"

namespace rw::cli {

int fail(const Error& e) {
  std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, e.message.c_str());
  return e.code ? e.code : 1;
}

bool check_build(const std::string& build, int* rc) {
  if (auto s = validate_build_name(build); !s) {
    *rc = fail(s.error());
    return false;
  }
  return true;
}

std::string elapsed(int64_t start_ms, int64_t end_ms) {
  if (start_ms == 0) return "-";
  return format_duration(Millis((end_ms ? end_ms : now_ms()) - start_ms));
}

int history_keep() {
  const char* v = std::getenv("RUNWARDEN_HISTORY_KEEP");
  return v && *v ? std::max(1, std::atoi(v)) : 20;
}

}  // namespace rw::cli
