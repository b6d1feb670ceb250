#include "systemd/journal.h"

#include <systemd/sd-journal.h>

#include <errno.h>
#include <sys/uio.h>

#include <iterator>
#include <string_view>

#include <cstdio>
#include <cstdlib>

namespace rw::systemd {
namespace {

bool journal_wanted() {
  // JOURNAL_STREAM: stderr already goes to journald (a service with the
  // default output). RUNWARDEN_LOG=journal: set by runner@ and watcher@,
  // whose stdout and stderr are /dev/null rather than a journal stream (a
  // stream per unit costs the service manager per run, see the units).
  static const bool wanted = [] {
    if (std::getenv("JOURNAL_STREAM")) return true;
    const char* to = std::getenv("RUNWARDEN_LOG");
    return to && std::string_view(to) == "journal";
  }();
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
