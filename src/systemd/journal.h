#pragma once
// Structured logging: to the journal with RUNWARDEN_BUILD=, STAGE=, TASK=
// fields when journald is there (JOURNAL_STREAM or RUNWARDEN_LOG=journal), else
// to stderr.

#include <syslog.h>

#include <string>

namespace rw::systemd {

struct LogFields {
  std::string build;
  std::string stage;
  std::string task;
  std::string target;
};

/// One log record. Messages must never contain secrets.
void log(int priority, const LogFields& fields, const std::string& message);
inline void log_info(const LogFields& f, const std::string& m) { log(LOG_INFO, f, m); }
inline void log_warning(const LogFields& f, const std::string& m) { log(LOG_WARNING, f, m); }
inline void log_error(const LogFields& f, const std::string& m) { log(LOG_ERR, f, m); }

}  // namespace rw::systemd
