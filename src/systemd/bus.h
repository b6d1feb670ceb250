#pragma once
// The service manager over sd-bus. One owner of the sd_bus connection; every
// negative errno becomes an Error at the call site.

#include <systemd/sd-bus.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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
  /// The id of the job queued for the unit (a start waiting for its turn); 0: none.
  uint32_t job = 0;
  /// Not running and not about to run again.
  bool gone() const { return (active == "inactive" || active == "failed") && sub != "auto-restart" && job == 0; }
  bool running() const { return active == "active" || active == "activating" || active == "reloading"; }
};

class Bus {
 public:
  /// $RUNWARDEN_BUS_ADDRESS if set (a direct connection to a manager's
  /// private socket, e.g. unix:path=/proc/PID/root/run/systemd/private);
  /// else the system bus ($DBUS_SYSTEM_BUS_ADDRESS or the default socket),
  /// where the broker hands each client only the signals it matches; else,
  /// when no bus runs, as root the manager's private socket, which sends
  /// every unit's signals to every client.
  static Result<Bus> connect();
  /// Connected through a bus daemon (not a direct private connection).
  bool is_bus_client() const { return bus_client_; }

  sd_bus* get() const { return bus_.get(); }
  const std::string& address() const { return address_; }

  /// The state of a unit: one GetAll on its object path (the manager loads
  /// the unit when it is not loaded).
  Result<UnitState> unit_state(const std::string& unit);

  /// The state of a unit the manager has loaded; an unloaded one (never
  /// started, or inactive and collected since) is inactive/dead with no job
  /// and is not loaded for the question: GetUnit first, then GetAll. For
  /// checks that come before a start, which loads the unit anyway: a load
  /// for GetAll alone was parsed, collected, then parsed again by the start.
  Result<UnitState> unit_state_if_loaded(const std::string& unit);

  /// Starts a unit in mode "replace", one transaction (EnqueueUnitJob),
  /// and waits until its job and the jobs the transaction queued for the
  /// `pulled` units (brought in by its Wants=, in any order: they need not
  /// be ordered before it) are removed. Returns each job's unit and result
  /// ("done", "failed", "timeout", ...): the unit's own first. A pulled
  /// unit the transaction did not include is missing from the list. For a
  /// Type=notify service "done" means it sent READY=1.
  Result<std::vector<std::pair<std::string, std::string>>> start_unit(const std::string& unit,
                                                                      const std::vector<std::string>& pulled,
                                                                      Millis timeout);
  /// Stops a unit and waits for its job; returns the job's result.
  Result<std::string> stop_unit(const std::string& unit, Millis timeout);
  /// Clears a failed unit's state so it can be started again.
  Status reset_failed(const std::string& unit);

 private:
  Bus(BusPtr bus, std::string address, bool bus_client)
      : bus_(std::move(bus)), address_(std::move(address)), bus_client_(bus_client) {}
  Result<std::vector<std::pair<std::string, std::string>>> run_job(const char* type, const std::string& unit,
                                                                   const std::vector<std::string>& pulled,
                                                                   Millis timeout);

  BusPtr bus_;
  std::string address_;
  bool bus_client_ = false;
};

/// The manager's object path of a unit (no call: the name is escaped).
std::string unit_object_path(const std::string& unit);

/// "what: strerror(-r)"
Error bus_error(const std::string& what, int r, const sd_bus_error* e = nullptr);

}  // namespace rw::systemd
