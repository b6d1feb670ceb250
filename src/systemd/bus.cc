#include "systemd/bus.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/clock.h"
#include "common/files.h"
#include "common/scope_exit.h"

namespace rw::systemd {
namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerIface = "org.freedesktop.systemd1.Manager";

struct JobWait {
  std::string job;
  std::string result;
  bool done = false;
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* w = static_cast<JobWait*>(userdata);
  uint32_t id = 0;
  const char *path = nullptr, *unit = nullptr, *result = nullptr;
  if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) return 0;
  if (!w->job.empty() && w->job == path) {
    w->result = result;
    w->done = true;
  }
  return 0;
}

}  // namespace

Error bus_error(const std::string& what, int r, const sd_bus_error* e) {
  if (e && sd_bus_error_is_set(e) && e->message) return err(what + ": " + e->message, 6);
  return err(what + ": " + std::strerror(r < 0 ? -r : r), 6);
}

Result<Bus> Bus::connect() {
  std::string address;
  if (const char* a = std::getenv("RUNWARDEN_BUS_ADDRESS"); a && *a) {
    address = a;
  } else if (::geteuid() == 0 && path_exists("/run/systemd/private")) {
    address = "unix:path=/run/systemd/private";
  }
  sd_bus* raw = nullptr;
  int r;
  if (address.empty()) {
    r = sd_bus_open_system(&raw);
    if (r < 0) return bus_error("connect to the system bus", r);
    return Bus(BusPtr(raw), "system bus");
  }
  r = sd_bus_new(&raw);
  if (r < 0) return bus_error("sd_bus_new", r);
  BusPtr bus(raw);
  if ((r = sd_bus_set_address(raw, address.c_str())) < 0) return bus_error("bus address " + address, r);
  if ((r = sd_bus_start(raw)) < 0)
    return bus_error("connect to the service manager at " + address, r);
  return Bus(std::move(bus), address);
}

Result<std::string> Bus::unit_path(const std::string& unit) {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  ScopeExit cleanup([&] {
    sd_bus_error_free(&e);
    sd_bus_message_unref(reply);
  });
  int r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, "LoadUnit", &e, &reply, "s",
                             unit.c_str());
  if (r < 0) return bus_error("load " + unit, r, &e);
  const char* path = nullptr;
  if ((r = sd_bus_message_read(reply, "o", &path)) < 0) return bus_error("read LoadUnit reply", r);
  return std::string(path);
}

namespace {

/// One GetAll of `iface` on `path`; `take` is called with each property name
/// and the reply positioned on its variant, and returns true if it read the
/// variant (entered, read, exited), false to have it skipped.
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
  RW_ASSIGN(std::string path, unit_path(unit));
  UnitState st;
  auto str = [](sd_bus_message* m, std::string* out) {
    const char* v = nullptr;
    int r = read_variant(m, "s", &v);
    if (r >= 0) *out = v;
    return r >= 0;
  };
  RW_TRY(get_all(bus_.get(), path, "org.freedesktop.systemd1.Unit", unit, [&](std::string_view name, sd_bus_message* m) {
    if (name == "ActiveState") return str(m, &st.active);
    if (name == "SubState") return str(m, &st.sub);
    if (name == "StateChangeTimestamp") {
      uint64_t us = 0;
      if (read_variant(m, "t", &us) < 0) return false;
      st.state_change_ms = static_cast<int64_t>(us / 1000);
      return true;
    }
    return false;
  }));
  if (st.active.empty()) return err("the service manager reported no ActiveState for " + unit, 6);
  // Service properties exist for services only; missing ones are not fatal.
  (void)get_all(bus_.get(), path, "org.freedesktop.systemd1.Service", unit, [&](std::string_view name, sd_bus_message* m) {
    if (name == "Result") return str(m, &st.result);
    if (name == "MainPID") {
      uint32_t pid = 0;
      if (read_variant(m, "u", &pid) < 0) return false;
      st.main_pid = pid;
      return true;
    }
    return false;
  });
  return st;
}

Status Bus::subscribe() {
  sd_bus_error e = SD_BUS_ERROR_NULL;
  int r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, "Subscribe", &e, nullptr, "");
  ScopeExit cleanup([&] { sd_bus_error_free(&e); });
  if (r < 0) return bus_error("subscribe to the service manager", r, &e);
  return {};
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

Result<std::string> Bus::run_job(const char* method, const std::string& unit, Millis timeout) {
  // Match first, then call: a fast job could be removed before we listen.
  JobWait wait;
  sd_bus_slot* slot = nullptr;
  int r = sd_bus_match_signal(bus_.get(), &slot, kDest, kManagerPath, kManagerIface, "JobRemoved",
                              on_job_removed, &wait);
  if (r < 0) return bus_error("watch JobRemoved", r);
  ScopeExit unslot([&] { sd_bus_slot_unref(slot); });
  RW_TRY(subscribe());

  sd_bus_error e = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  ScopeExit cleanup([&] {
    sd_bus_error_free(&e);
    sd_bus_message_unref(reply);
  });
  r = sd_bus_call_method(bus_.get(), kDest, kManagerPath, kManagerIface, method, &e, &reply, "ss", unit.c_str(),
                         "replace");
  if (r < 0) return bus_error(std::string(method == std::string("StartUnit") ? "start " : "stop ") + unit, r, &e);
  const char* job = nullptr;
  if ((r = sd_bus_message_read(reply, "o", &job)) < 0) return bus_error("read job path", r);
  wait.job = job;

  int64_t deadline = mono_ms() + timeout.count();
  while (!wait.done) {
    r = sd_bus_process(bus_.get(), nullptr);
    if (r < 0) return bus_error("process bus", r);
    if (r > 0) continue;
    int64_t left = deadline - mono_ms();
    if (left <= 0) return err("timed out after " + format_duration(timeout) + " waiting for " + unit, 6);
    r = sd_bus_wait(bus_.get(), static_cast<uint64_t>(left) * 1000);
    if (r < 0) return bus_error("wait on bus", r);
  }
  return wait.result;
}

int process_queued(sd_bus* bus) {
  for (;;) {
    int r = sd_bus_process(bus, nullptr);
    if (r <= 0) return r;
  }
}

Result<std::string> Bus::start_unit(const std::string& unit, Millis timeout) {
  return run_job("StartUnit", unit, timeout);
}

Result<std::string> Bus::stop_unit(const std::string& unit, Millis timeout) {
  return run_job("StopUnit", unit, timeout);
}

}  // namespace rw::systemd
