#include "systemd/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace rw::systemd {

bool under_notify() { return std::getenv("NOTIFY_SOCKET") != nullptr; }

void notify_ready(const std::string& status) {
  std::string msg = "READY=1";
  if (!status.empty()) msg += "\nSTATUS=" + status;
  sd_notify(0, msg.c_str());
}

void notify_status(const std::string& status) { sd_notify(0, ("STATUS=" + status).c_str()); }

void notify_stopping(const std::string& status) {
  std::string msg = "STOPPING=1";
  if (!status.empty()) msg += "\nSTATUS=" + status;
  sd_notify(0, msg.c_str());
}

void notify_watchdog() { sd_notify(0, "WATCHDOG=1"); }

int64_t watchdog_ms() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return static_cast<int64_t>(usec / 1000);
  return INT64_MAX / 4;
}

// The watcher's lazy loader (systemd/lazy/libsystemd.cc) has the strong one.
__attribute__((weak)) void release_libsystemd() {}

}  // namespace rw::systemd
