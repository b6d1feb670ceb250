#include "systemd/bus.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string_view>

#include "common/clock.h"
#include "common/files.h"
#include "common/scope_exit.h"

namespace rw::systemd {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";
constexpr const char* kPrivateSocket = "/run/systemd/private";

/// JobRemoved signals of the units a job waits for, by job path.
struct JobWait {
  std::vector<std::string> units;
  std::map<std::string, std::pair<std::string, std::string>> removed;  ///< job -> (unit, result)
};

/// A filter, not a match: sd-bus (252) does not match argN of a signal
/// whose earlier arguments are not strings, so the daemon filters by unit
/// (AddMatch with arg2) and this picks the units' JobRemoved out locally.
int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  if (!sd_bus_message_is_signal(m, kManagerIface, "JobRemoved")) return 0;
  const char* mpath = sd_bus_message_get_path(m);
  if (!mpath || std::string_view(mpath) != kManagerPath) return 0;
  auto* w = static_cast<JobWait*>(userdata);
  uint32_t id = 0;
  const char *path = nullptr, *unit = nullptr, *result = nullptr;
  if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) return 0;
  (void)sd_bus_message_rewind(m, true);
  for (const auto& u : w->units)
    if (u == unit) w->removed[path] = {unit, result};
  return 0;
}

}  // namespace

Error bus_error(const std::string& what, int r, const sd_bus_error* e) {
  if (e && sd_bus_error_is_set(e) && e->message) return err(what + ": " + e->message, 6);
  return err(what + ": " + std::strerror(r < 0 ? -r : r), 6);
}

std::string unit_object_path(const std::string& unit) {
  char* path = nullptr;
  if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &path) < 0) return {};
  std::string out = path;
  std::free(path);
  return out;
}

namespace {

/// A connection straight to a manager's private socket: no bus daemon, no
/// Hello; the manager sends it every signal of every unit.
Result<BusPtr> connect_direct(const std::string& address) {
  sd_bus* raw = nullptr;
  int r = sd_bus_new(&raw);
  if (r < 0) return bus_error("sd_bus_new", r);
  BusPtr bus(raw);
  if ((r = sd_bus_set_address(raw, address.c_str())) < 0) return bus_error("bus address " + address, r);
  if ((r = sd_bus_start(raw)) < 0) return bus_error("connect to the service manager at " + address, r);
  return bus;
}

}  // namespace

Result<Bus> Bus::connect() {
  if (const char* a = std::getenv("RUNWARDEN_BUS_ADDRESS"); a && *a) {
    RW_ASSIGN(BusPtr bus, connect_direct(a));
    return Bus(std::move(bus), a, false);
  }
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  if (r >= 0) return Bus(BusPtr(raw), "system bus", true);
  // No bus daemon (a minimal host or container): the manager itself.
  if (::geteuid() == 0 && path_exists(kPrivateSocket)) {
    std::string address = std::string("unix:path=") + kPrivateSocket;
    RW_ASSIGN(BusPtr bus, connect_direct(address));
    return Bus(std::move(bus), address, false);
  }
  return bus_error("connect to the system bus", r);
}

namespace {

/// One GetAll of `iface` ("" for every interface) on `path`; `take` is called
/// with each property name and the reply positioned on its variant, and
/// returns true if it read the variant (entered, read, exited), false to
/// have it skipped.
template <class Take>
Status get_all(sd_bus* bus, const std::string& path, const char* iface, const std::string& what, Take take) {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  ScopeExit cleanup([&] {
    sd_bus_error_free(&e);
    sd_bus_message_unref(reply);
  });
  int r = sd_bus_call_method(bus, kDest, path.c_str(), "org.freedesktop.DBus.Properties", "GetAll", &e, &reply, "s",
                             iface);
  if (r < 0) return bus_error("read the properties of " + what, r, &e);
  if ((r = sd_bus_message_enter_container(reply, 'a', "{sv}")) < 0) return bus_error("read GetAll reply", r);
  while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
    const char* name = nullptr;
    if ((r = sd_bus_message_read(reply, "s", &name)) < 0) return bus_error("read GetAll reply", r);
    r = take(std::string_view(name), reply) ? 0 : sd_bus_message_skip(reply, "v");
    if (r < 0) return bus_error(std::string("read property ") + name + " of " + what, r);
    if ((r = sd_bus_message_exit_container(reply)) < 0) return bus_error("read GetAll reply", r);
  }
  if (r < 0) return bus_error("read GetAll reply", r);
  return {};
}

/// Reads a variant of signature `sig` holding one basic value into `out`.
template <class T>
int read_variant(sd_bus_message* m, const char* sig, T* out) {
  int r = sd_bus_message_enter_container(m, 'v', sig);
  if (r < 0) return r;
  if ((r = sd_bus_message_read_basic(m, sig[0], out)) < 0) return r;
  return sd_bus_message_exit_container(m);
}

}  // namespace

Result<UnitState> Bus::unit_state(const std::string& unit) {
  const std::string path = unit_object_path(unit);
  if (path.empty()) return err("no object path for unit " + unit, 6);
  UnitState st;
  auto str = [](sd_bus_message* m, std::string* out) {
    const char* v = nullptr;
    int r = read_variant(m, "s", &v);
    if (r >= 0) *out = v;
    return r >= 0;
  };
  // "" asks for every interface at once: Unit and, for a service, Service.
  RW_TRY(get_all(bus_.get(), path, "", unit, [&](std::string_view name, sd_bus_message* m) {
    if (name == "ActiveState") return str(m, &st.active);
    if (name == "SubState") return str(m, &st.sub);
    if (name == "Result") return str(m, &st.result);
    if (name == "StateChangeTimestamp") {
      uint64_t us = 0;
      if (read_variant(m, "t", &us) < 0) return false;
      st.state_change_ms = static_cast<int64_t>(us / 1000);
      return true;
    }
    if (name == "MainPID") {
      uint32_t pid = 0;
      if (read_variant(m, "u", &pid) < 0) return false;
      st.main_pid = pid;
      return true;
    }
    if (name == "Job") {
      const char* job_path = nullptr;
      uint32_t id = 0;
      if (sd_bus_message_enter_container(m, 'v', "(uo)") < 0) return false;
      if (sd_bus_message_read(m, "(uo)", &id, &job_path) < 0) return false;
      st.job = id;
      return sd_bus_message_exit_container(m) >= 0;
    }
    return false;
  }));
  if (st.active.empty()) return err("the service manager reported no ActiveState for " + unit, 6);
  return st;
}

Result<UnitState> Bus::unit_state_if_loaded(const std::string& unit) {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  ScopeExit cleanup([&] {
    sd_bus_error_free(&e);
    sd_bus_message_unref(reply);
  });
  int r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, "GetUnit", &e, &reply, "s",
                             unit.c_str());
  if (r < 0) {
    if (sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit")) {
      UnitState st;
      st.active = "inactive";
      st.sub = "dead";
      return st;
    }
    return bus_error("look up " + unit, r, &e);
  }
  return unit_state(unit);
}

Status Bus::reset_failed(const std::string& unit) {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  int r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, "ResetFailedUnit", &e, nullptr,
                             "s", unit.c_str());
  ScopeExit cleanup([&] { sd_bus_error_free(&e); });
  // A unit that is not loaded or not failed has nothing to reset: not an error.
  (void)r;
  return {};
}

namespace {

/// The reply of EnqueueUnitJob(unit, "start", mode): (id, job, unit, unit
/// path, type, affected jobs a(uosos)). Appends `unit`'s own job, then the
/// jobs the transaction queued for the `pulled` units, to `jobs`.
Status read_enqueued_jobs(sd_bus_message* reply, const std::string& unit, const std::vector<std::string>& pulled,
                          std::vector<std::string>* jobs) {
  uint32_t id = 0;
  const char *job = nullptr, *unit_id = nullptr, *unit_path = nullptr, *job_type = nullptr;
  int r = sd_bus_message_read(reply, "uosos", &id, &job, &unit_id, &unit_path, &job_type);
  if (r < 0) return bus_error("read the job of " + unit, r);
  jobs->push_back(job);
  if ((r = sd_bus_message_enter_container(reply, 'a', "(uosos)")) < 0)
    return bus_error("read the jobs queued with " + unit, r);
  while ((r = sd_bus_message_read(reply, "(uosos)", &id, &job, &unit_id, &unit_path, &job_type)) > 0) {
    if (std::find(pulled.begin(), pulled.end(), unit_id) != pulled.end() &&
        std::find(jobs->begin(), jobs->end(), job) == jobs->end())
      jobs->push_back(job);
  }
  if (r < 0) return bus_error("read the jobs queued with " + unit, r);
  return {};
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> Bus::run_job(const char* type, const std::string& unit,
                                                                      const std::vector<std::string>& pulled,
                                                                      Millis timeout) {
  // Listen first, then call: a fast job could be removed before we listen.
  JobWait wait;
  wait.units = {unit};
  wait.units.insert(wait.units.end(), pulled.begin(), pulled.end());
  sd_bus_slot* filter = nullptr;
  int r = sd_bus_add_filter(bus_.get(), &filter, on_job_removed, &wait);
  if (r < 0) return bus_error("watch the jobs of " + unit, r);
  ScopeExit unslot([&] { sd_bus_slot_unref(filter); });
  if (bus_client_) {
    // One rule per unit (arg2 is the unit's name): the daemon hands us these
    // units' JobRemoved and nothing of the other runs'. The connection is
    // this command's own; its rules go with it.
    for (const auto& u : wait.units) {
      const std::string rule = std::string("type='signal',sender='") + kDest + "',path='" + kManagerPath +
                               "',interface='" + kManagerIface + "',member='JobRemoved',arg2='" + u + "'";
      sd_bus_error me = SD_BUS_ERROR_NULL;
      r = sd_bus_call_method(bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                             "AddMatch", &me, nullptr, "s", rule.c_str());
      ScopeExit free_me([&] { sd_bus_error_free(&me); });
      if (r < 0) return bus_error("watch the jobs of " + u, r, &me);
    }
  }
  // The manager sends job signals to the bus only while someone subscribed
  // (a direct connection gets them anyway). No reply needed: the manager
  // handles it before the call below, which follows it on this connection.
  r = sd_bus_call_method_async(bus_.get(), nullptr, kDest, kManagerPath, kManagerIface, "Subscribe", nullptr,
                               nullptr, "");
  if (r < 0) return bus_error("subscribe to the service manager", r);

  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  ScopeExit cleanup([&] {
    sd_bus_error_free(&e);
    sd_bus_message_unref(reply);
  });
  // Jobs to wait for: the unit's own, then those of `pulled` in the same
  // transaction. EnqueueUnitJob names every job the transaction installed,
  // so nothing depends on which of them the manager finishes first (the
  // pulled units are not ordered before `unit`).
  std::vector<std::string> jobs;
  const bool start = std::string_view(type) == "start";
  if (start) {
    r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, "EnqueueUnitJob", &e, &reply, "sss",
                           unit.c_str(), "start", "replace");
    if (r >= 0) {
      RW_TRY(read_enqueued_jobs(reply, unit, pulled, &jobs));
    } else if (sd_bus_error_has_name(&e, SD_BUS_ERROR_UNKNOWN_METHOD)) {
      // A manager older than systemd 243: the unit's own job only; the
      // caller checks the pulled units' state itself.
      sd_bus_error_free(&e);
    } else {
      return bus_error(std::string(type) + " " + unit, r, &e);
    }
  }
  if (jobs.empty()) {
    sd_bus_message_unref(reply);
    reply = nullptr;
    r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, start ? "StartUnit" : "StopUnit", &e,
                           &reply, "ss", unit.c_str(), "replace");
    if (r < 0) return bus_error(std::string(type) + " " + unit, r, &e);
    const char* job = nullptr;
    if ((r = sd_bus_message_read(reply, "o", &job)) < 0) return bus_error("read the job of " + unit, r);
    jobs.push_back(job);
  }

  int64_t deadline = mono_ms() + timeout.count();
  auto all_removed = [&] {
    for (const auto& j : jobs)
      if (!wait.removed.count(j)) return false;
    return true;
  };
  while (!all_removed()) {
    r = sd_bus_process(bus_.get(), nullptr);
    if (r < 0) return bus_error("process bus", r);
    if (r > 0) continue;
    int64_t left = deadline - mono_ms();
    if (left <= 0) return err("timed out after " + format_duration(timeout) + " waiting for " + unit, 6);
    r = sd_bus_wait(bus_.get(), static_cast<uint64_t>(left) * 1000);
    if (r < 0) return bus_error("wait on bus", r);
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& j : jobs) out.push_back(wait.removed[j]);
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> Bus::start_unit(const std::string& unit,
                                                                         const std::vector<std::string>& pulled,
                                                                         Millis timeout) {
  return run_job("start", unit, pulled, timeout);
}

Result<std::string> Bus::stop_unit(const std::string& unit, Millis timeout) {
  RW_ASSIGN(auto jobs, run_job("stop", unit, {}, timeout));
  return jobs.front().second;
}

}  // namespace rw::systemd
