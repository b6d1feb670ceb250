// runwarden status BUILD / runwarden list.

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/build_name.h"
#include "common/clock.h"
#include "common/files.h"
#include "engine/testbed_executor.h"
#include "plan/parser.h"
#include "state/store.h"
#include "systemd/bus.h"
#include "testbed/domain.h"

namespace rw::cli {
namespace {

using nlohmann::json;

struct Units {
  std::string runner = "?";
  std::string watcher = "?";
};

Units unit_states(std::optional<systemd::Bus>& bus, const std::string& build) {
  Units u;
  if (!bus) return u;
  auto show = [](const Result<systemd::UnitState>& s) {
    return s.ok() ? s->active + (s->sub.empty() ? "" : " (" + s->sub + ")") : std::string("?");
  };
  u.runner = show(bus->unit_state(runner_unit(build)));
  u.watcher = show(bus->unit_state(watcher_unit(build)));
  return u;
}

std::optional<systemd::Bus> try_bus() {
  auto b = systemd::Bus::connect();
  if (!b) return std::nullopt;
  return std::move(b).value();
}

std::string notification_summary(const state::RunDir& dir, const std::string& subrun) {
  if (path_exists(dir.posted_marker_for(subrun))) return "posted";
  auto n = dir.load_notification(subrun);
  if (!n) return "-";
  return n->status + (n->last_error.empty() ? "" : ": " + n->last_error);
}

struct GuestLine {
  std::string name, address, state;
  std::string host;   ///< the plan host it runs on (several hypervisors), else ""
  std::string where;  ///< its libvirt connection: "URI", or "URI on HOST"
};

/// The run's testbed guests (from its plan) with their reserved addresses and
/// their state on the libvirt host ("unknown" when the host cannot be asked).
std::vector<GuestLine> testbed_guests(const state::RunDir& dir, const state::RunState& st, std::string* uri) {
  std::vector<GuestLine> out;
  if (st.plan_file.empty()) return out;
  auto plan = plan::load_plan(dir.plan_file());
  if (!plan || !plan->testbed) return out;
  *uri = engine::testbed_where(*plan->testbed);
  // A hypervisor on a plan host is reached over the run's SSH connection,
  // which status does not have: its guests' states are unknown here
  // (`runwarden testbed status BUILD` asks it).
  const std::string& hv = plan->testbed->host;
  auto host = hv.empty() ? testbed::Virt::open(*uri) : Result<testbed::Virt>(err("reached over SSH"));
  for (const auto& g : plan->testbed->guests)
    for (const auto& name : g.instances) {
      GuestLine l{name, "", "unknown", "", *uri};
      if (auto p = g.placement.find(name); p != g.placement.end() && plan->testbed->hosts.size() > 1) {
        l.host = p->second;
        l.where = engine::testbed_uri(*plan->testbed) + " on " + l.host;
      }
      if (auto a = g.addresses.find(name); a != g.addresses.end() && !a->second.empty()) l.address = a->second.front();
      if (host) {
        auto s = testbed::guest_state(*host, st.build, name);
        l.state = s ? *s : "unknown";
      }
      out.push_back(l);
    }
  return out;
}

int status(const std::string& build, bool as_json) {
  int rc;
  if (!check_build(build, &rc)) return rc;
  state::RunDir dir(state::state_root(), build);
  if (!dir.exists()) return fail(err("no run named " + build + " (see: runwarden list)", kNotFound));
  auto bus = try_bus();
  Units units = unit_states(bus, build);
  auto st = dir.load();
  if (as_json) {
    json j;
    if (st.ok()) j = json::parse(state::to_json(*st));
    else j = {{"build", build}, {"status", "UNKNOWN"}, {"error", st.error().message}};
    j["run_dir"] = dir.path();
    j["units"] = {{"runner", units.runner}, {"watcher", units.watcher}};
    j["notification"] = notification_summary(dir, "");
    json subs = json::array();
    for (const auto& key : dir.subrun_keys()) {
      auto s = dir.load_subrun(key);
      subs.push_back({{"key", key},
                      {"status", s.ok() ? to_string(s->status) : "UNKNOWN"},
                      {"exit_code", s.ok() && s->exit_code ? json(*s->exit_code) : json(nullptr)},
                      {"notification", notification_summary(dir, key)}});
    }
    j["subruns"] = subs;
    if (st.ok()) {
      std::string uri;
      json guests = json::array();
      for (const auto& g : testbed_guests(dir, *st, &uri))
        guests.push_back({{"name", g.name},
                          {"address", g.address},
                          {"state", g.state},
                          {"host", g.where}});
      j["testbed_guests"] = guests;
    }
    std::cout << j.dump(2) << "\n";
    return kOk;
  }
  std::printf("build:     %s\n", build.c_str());
  if (!st) {
    std::printf("status:    UNKNOWN (%s)\n", st.error().message.c_str());
    return kOk;
  }
  std::printf("status:    %s%s\n", to_string(st->status),
              st->reason.empty() ? "" : (" (" + st->reason + ")").c_str());
  if (!st->progress.empty()) std::printf("progress:  %s\n", st->progress.c_str());
  std::printf("started:   %s\n", st->started_at_ms ? format_time(st->started_at_ms).c_str() : "-");
  std::printf("duration:  %s\n", elapsed(st->started_at_ms, st->ended_at_ms).c_str());
  if (st->exit_code) std::printf("exit code: %d\n", *st->exit_code);
  if (st->signal) std::printf("signal:    %d\n", *st->signal);
  std::printf("units:     runner %s, watcher %s\n", units.runner.c_str(), units.watcher.c_str());
  std::printf("message:   %s\n", notification_summary(dir, "").c_str());
  if (st->runner_starts > 1) std::printf("resumed:   %d time(s)\n", st->runner_starts - 1);
  for (size_t i = 0; i < st->stages.size(); ++i) {
    const auto& s = st->stages[i];
    std::printf("stage %zu/%zu %-20s %-10s attempts %d  %s\n", i + 1, st->stages.size(), s.name.c_str(),
                to_string(s.status), s.attempts, elapsed(s.started_at_ms, s.ended_at_ms).c_str());
    for (const auto& t : s.tasks) {
      std::string ec = t.exit_code ? "exit " + std::to_string(*t.exit_code) : "";
      std::printf("    %-30s %-10s attempts %d  %-8s %s %s\n", t.id().c_str(), to_string(t.status), t.attempts,
                  elapsed(t.started_at_ms, t.ended_at_ms).c_str(), ec.c_str(),
                  t.status == state::StepStatus::Completed ? "" : t.reason.c_str());
    }
  }
  auto keys = dir.subrun_keys();
  if (!keys.empty()) std::printf("sub-runs:\n");
  for (const auto& key : keys) {
    auto s = dir.load_subrun(key);
    std::printf("    %-30s %-10s %s  message %s\n", key.c_str(), s.ok() ? to_string(s->status) : "UNKNOWN",
                s.ok() ? elapsed(s->started_at_ms, s->ended_at_ms).c_str() : "-",
                notification_summary(dir, key).c_str());
  }
  std::string uri;
  auto guests = testbed_guests(dir, *st, &uri);
  if (!guests.empty()) std::printf("testbed:   on %s\n", uri.c_str());
  for (const auto& g : guests)
    std::printf("    %-30s %-16s %-8s %s\n", g.name.c_str(), g.address.c_str(), g.state.c_str(), g.host.c_str());
  std::printf("logs:      runwarden logs %s   or: journalctl RUNWARDEN_BUILD=%s (summaries)\n", build.c_str(),
              build.c_str());
  if (path_exists(dir.runner_log() + ".1"))
    std::printf("           runner.log was rotated ($RUNWARDEN_RUNNER_LOG_MAX, default 64 MiB): the older part is %s.1;"
                " task logs are complete under %s/tasks\n",
                dir.runner_log().c_str(), dir.path().c_str());
  return kOk;
}

int list(bool as_json) {
  const std::string root = state::state_root();
  auto bus = try_bus();
  json out = json::array();
  auto builds = state::list_builds(root);
  if (!as_json) {
    if (builds.empty()) std::printf("no runs in %s\n", root.c_str());
    else std::printf("%-32s %-16s %-20s %-20s %-24s %s\n", "BUILD", "STATUS", "RUNNER", "WATCHER", "STARTED", "DURATION");
  }
  for (const auto& build : builds) {
    state::RunDir dir(root, build);
    auto st = dir.load();
    Units units = unit_states(bus, build);
    std::string status = st.ok() ? to_string(st->status) : "UNKNOWN";
    int64_t started = st.ok() ? st->started_at_ms : 0;
    int64_t ended = st.ok() ? st->ended_at_ms : 0;
    auto keys = dir.subrun_keys();
    if (as_json) {
      json subs = json::array();
      for (const auto& key : keys) {
        auto s = dir.load_subrun(key);
        subs.push_back({{"key", key}, {"status", s.ok() ? to_string(s->status) : "UNKNOWN"}});
      }
      out.push_back({{"build", build},
                     {"status", status},
                     {"runner", units.runner},
                     {"watcher", units.watcher},
                     {"started_at", started ? json(format_time(started)) : json(nullptr)},
                     {"duration_ms", started ? json((ended ? ended : now_ms()) - started) : json(nullptr)},
                     {"subruns", subs}});
    } else {
      std::printf("%-32s %-16s %-20s %-20s %-24s %s%s\n", build.c_str(), status.c_str(), units.runner.c_str(),
                  units.watcher.c_str(), started ? format_time(started).c_str() : "-",
                  elapsed(started, ended).c_str(),
                  keys.empty() ? "" : ("  (" + std::to_string(keys.size()) + " sub-runs)").c_str());
    }
  }
  if (as_json) std::cout << out.dump(2) << "\n";
  return kOk;
}

}  // namespace

void add_status(CLI::App& app, Action* action) {
  auto build = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("status", "Show a run: state, progress, stages and tasks, sub-runs, units");
  cmd->add_option("build", *build, "Build name")->required();
  cmd->add_flag("--json", *as_json, "Print as JSON (state.json plus unit states and sub-runs)");
  cmd->callback([=] { *action = [=] { return status(*build, *as_json); }; });
}

void add_list(CLI::App& app, Action* action) {
  auto as_json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("list", "List every run: state, unit states, start, duration, sub-runs");
  cmd->add_flag("--json", *as_json, "Print as JSON");
  cmd->callback([=] { *action = [=] { return list(*as_json); }; });
}

}  // namespace rw::cli
