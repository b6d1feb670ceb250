#include "cli/common.h"

#include "cli/cli.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/build_name.h"
#include "common/clock.h"
#include "common/duration.h"
#include "common/files.h"
#include "state/store.h"

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

Result<state::RunState> begin_run(const std::string& root, const std::string& build, const std::string& by) {
  RW_TRY(state::archive_run(root, build, history_keep()));
  RW_TRY(make_dirs(state::RunDir(root, build).path(), 0750));
  state::RunState st;
  st.build = build;
  st.status = state::RunStatus::Pending;
  st.decided_by = by;
  st.created_at_ms = now_ms();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  st.host = host;
  return st;
}

int parse_and_run(CLI::App& app, std::vector<std::string> args, const Action& action) {
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kUsage;
  }
  return action ? action() : kUsage;
}

int history_keep() {
  const char* v = std::getenv("RUNWARDEN_HISTORY_KEEP");
  return v && *v ? std::max(1, std::atoi(v)) : 20;
}

}  // namespace rw::cli
