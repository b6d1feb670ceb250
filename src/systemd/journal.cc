#include "systemd/journal.h"

#include <systemd/sd-journal.h>

#include <errno.h>

#include <cstdio>
#include <cstdlib>

namespace rw::systemd {
namespace {

bool journal_wanted() {
  // Under systemd, JOURNAL_STREAM tells us stderr already goes to journald;
  // that is when structured records are worth sending.
  static const bool wanted = std::getenv("JOURNAL_STREAM") != nullptr;
  return wanted;
}

}  // namespace

void log(int priority, const LogFields& f, const std::string& message) {
  if (journal_wanted()) {
    int r = sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%d", priority, "RUNWARDEN_BUILD=%s",
                            f.build.c_str(), "STAGE=%s", f.stage.c_str(), "TASK=%s", f.task.c_str(),
                            "TARGET=%s", f.target.c_str(), "SYSLOG_IDENTIFIER=%s",
                            program_invocation_short_name, nullptr);
    if (r >= 0) return;
  }
  std::string prefix;
  if (!f.stage.empty()) prefix += "[" + f.stage + (f.task.empty() ? "" : "/" + f.task) + "] ";
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), message.c_str());
}

}  // namespace rw::systemd
