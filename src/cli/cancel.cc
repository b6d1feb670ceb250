// cancel-run: marker + CANCELLED, then the runner is stopped gracefully; the
// watcher sees the marker and exits without a message. Idempotent.

#include <iostream>
#include <thread>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/build_name.h"
#include "common/clock.h"
#include "common/files.h"
#include "state/store.h"
#include "systemd/bus.h"

namespace rw::cli {
namespace {

struct CancelOptions {
  std::string build;
  std::string reason;
  bool json = false;
};

int cancel(const CancelOptions& o) {
  int rc;
  if (!check_build(o.build, &rc)) return rc;
  state::RunDir dir(state::state_root(), o.build);
  if (!dir.exists()) return fail(err("no run named " + o.build + " (see: runwarden list)", kNotFound));

  // The state first, under its lock: if the run already ended, it stays as it
  // ended (a COMPLETED run is not turned into CANCELLED after its message).
  state::RunStatus before = state::RunStatus::Unknown;
  std::string reason = o.reason.empty() ? "cancelled by cancel-run" : o.reason;
  auto s = dir.update([&](state::RunState& cur) {
    before = cur.status;
    if (state::is_terminal(cur.status)) return false;
    cur.status = state::RunStatus::Cancelled;
    cur.decided_by = "cancel-run";
    cur.reason = reason;
    cur.ended_at_ms = now_ms();
    return true;
  });
  bool was_active = s.ok() && !state::is_terminal(before);
  // An unreadable state is still cancelled: the marker alone silences the watcher.
  if (!s.ok() || was_active) {
    if (auto m = touch_marker(dir.cancelled_marker(), format_time(now_ms()) + " " + reason + "\n"); !m)
      return fail(m.error());
  }

  auto bus = systemd::Bus::connect();
  if (!bus) return fail(bus.error());
  // A runner that died and waits to be restarted is started now instead:
  // stopping it would drop the restart, and with it the plan's `always`
  // stages (a testbed's teardown), which a runner started on a cancelled
  // run still runs before it ends. The stop below then waits for that.
  if (was_active) {
    if (auto u = bus->unit_state(runner_unit(o.build)); u && u->sub == "auto-restart") {
      auto started = bus->start_unit(runner_unit(o.build), {watcher_unit(o.build)}, Millis(60'000));
      if (!started) std::cerr << "cancel-run: could not start " << runner_unit(o.build) << " to end it: "
                              << started.error().message << "\n";
    }
  }
  // Stopping: SIGTERM to the runner, which aborts its tasks; systemd kills
  // what is left after TimeoutStopSec.
  auto job = bus->stop_unit(runner_unit(o.build), Millis(180'000));
  if (!job) return fail(job.error());
  // The watcher exits by itself on the marker; stop it if it lingers.
  for (int i = 0; i < 50; ++i) {
    auto w = bus->unit_state(watcher_unit(o.build));
    if (!w || w->gone()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (i == 49) (void)bus->stop_unit(watcher_unit(o.build), Millis(30'000));
  }

  auto now = dir.load();
  std::string final_status = now.ok() ? to_string(now->status) : "UNKNOWN";
  if (o.json) {
    std::cout << "{\"build\":\"" << o.build << "\",\"status\":\"" << final_status
              << "\",\"was_running\":" << (was_active ? "true" : "false") << "}\n";
  } else if (was_active) {
    std::cout << "cancelled " << o.build << "\n";
  } else if (s.ok()) {
    std::cout << o.build << " had already ended: " << to_string(before) << "\n";
  } else {
    std::cout << "cancelled " << o.build << " (its state was unreadable: " << s.error().message << ")\n";
  }
  return kOk;
}

}  // namespace

void add_cancel(CLI::App& app, Action* action) {
  auto o = std::make_shared<CancelOptions>();
  auto* cmd = app.add_subcommand("cancel", "Cancel a run: no message is sent (also: cancel-run)");
  cmd->footer("Running tasks get SIGTERM, then SIGKILL after a grace period; nothing of the run keeps running.\n"
              "Cancelling a run that already ended changes nothing. Exit codes: 0 done, 2 bad name, 4 no such run.");
  cmd->add_option("--build-name,-b", o->build, "Build name")->required();
  cmd->add_option("--reason", o->reason, "Why, recorded in the run state");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->callback([=] { *action = [=] { return cancel(*o); }; });
}

}  // namespace rw::cli
