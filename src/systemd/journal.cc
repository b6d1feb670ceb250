#include "systemd/journal.h"

#include <systemd/sd-journal.h>

#include <errno.h>
#include <sys/uio.h>

#include <iterator>

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
    // Formatted here and sent as a vector: no variadic call into libsystemd
    // (which the watcher loads only while it needs it, systemd/lazy/).
    const std::string fields[] = {"MESSAGE=" + message,
                                  "PRIORITY=" + std::to_string(priority),
                                  "RUNWARDEN_BUILD=" + f.build,
                                  "STAGE=" + f.stage,
                                  "TASK=" + f.task,
                                  "TARGET=" + f.target,
                                  std::string("SYSLOG_IDENTIFIER=") + program_invocation_short_name};
    iovec iov[std::size(fields)];
    for (size_t i = 0; i < std::size(fields); ++i) iov[i] = {const_cast<char*>(fields[i].data()), fields[i].size()};
    int r = sd_journal_sendv(iov, static_cast<int>(std::size(fields)));
    if (r >= 0) return;
  }
  std::string prefix;
  if (!f.stage.empty()) prefix += "[" + f.stage + (f.task.empty() ? "" : "/" + f.task) + "] ";
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), message.c_str());
}

}  // namespace rw::systemd
