#pragma once
// sd_notify for Type=notify services: readiness, STATUS= and watchdog.

#include <cstdint>
#include <string>

namespace rw::systemd {

/// True when started by systemd with a notify socket.
bool under_notify();
void notify_ready(const std::string& status = "");
void notify_status(const std::string& status);
void notify_stopping(const std::string& status = "");
/// WATCHDOG=1 if the unit has a watchdog; harmless otherwise.
void notify_watchdog();
/// The unit's watchdog interval (WatchdogSec=) in ms; a large value when
/// there is none.
int64_t watchdog_ms();

/// Where a program that loads libsystemd only while it needs it
/// (runwarden-watcher, systemd/lazy/) lets it go: no sd-bus object may be
/// alive. Elsewhere, where libsystemd is linked, nothing happens.
void release_libsystemd();

}  // namespace rw::systemd
