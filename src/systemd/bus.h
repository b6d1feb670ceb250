#pragma once
// The service manager over sd-bus. One owner of the sd_bus connection; every
// negative errno becomes an Error at the call site.

#include <systemd/sd-bus.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/duration.h"
#include "common/result.h"

namespace rw::systemd {

struct BusDeleter {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
using BusPtr = std::unique_ptr<sd_bus, BusDeleter>;

struct UnitState {
  std::string active;  ///< ActiveState: active, inactive, failed, activating, deactivating, reloading
  std::string sub;     ///< SubState: running, dead, auto-restart, ...
  std::string result;  ///< Service Result: success, exit-code, signal, start-limit-hit, ...
  uint32_t main_pid = 0;
  /// StateChangeTimestamp: when ActiveState last changed (epoch ms; 0 never).
  int64_t state_change_ms = 0;
  /// Not running and not about to run again.
  bool gone() const { return (active == "inactive" || active == "failed") && sub != "auto-restart"; }
  bool running() const { return active == "active" || active == "activating" || active == "reloading"; }
};

class Bus {
 public:
  /// Connects as systemctl does: $RUNWARDEN_BUS_ADDRESS if set (e.g.
  /// unix:path=/proc/PID/root/run/systemd/private for a throwaway manager),
  /// else as root the manager's private socket, else the system bus.
  static Result<Bus> connect();

  sd_bus* get() const { return bus_.get(); }
  const std::string& address() const { return address_; }

  /// Object path of a unit (loads it if needed).
  Result<std::string> unit_path(const std::string& unit);
  Result<UnitState> unit_state(const std::string& unit);

  /// Starts (or stops) a unit in mode "replace" and waits for its job to be
  /// removed; returns the job result ("done", "failed", "timeout", ...). For a
  /// Type=notify service "done" means it sent READY=1.
  Result<std::string> start_unit(const std::string& unit, Millis timeout);
  Result<std::string> stop_unit(const std::string& unit, Millis timeout);
  /// Clears a failed unit's state so it can be started again.
  Status reset_failed(const std::string& unit);
  /// Asks the manager to send unit and job signals to this connection.
  Status subscribe();

 private:
  Bus(BusPtr bus, std::string address) : bus_(std::move(bus)), address_(std::move(address)) {}
  Result<std::string> run_job(const char* method, const std::string& unit, Millis timeout);

  BusPtr bus_;
  std::string address_;
};

/// Dispatches every message sd-bus has already read. A synchronous call
/// reads the signals that arrive before its reply into sd-bus's queue, where
/// poll() on the socket no longer sees them: run this before each poll.
/// Returns a negative errno if the connection failed.
int process_queued(sd_bus* bus);

/// "what: strerror(-r)"
Error bus_error(const std::string& what, int r, const sd_bus_error* e = nullptr);

}  // namespace rw::systemd
