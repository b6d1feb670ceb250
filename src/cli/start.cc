// start-run: validate, lock, archive, write the run (PENDING), run the
// template command, then one start job for runner@, whose Wants= brings
// watcher@ into the same transaction; the two start in parallel.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/build_name.h"
#include "common/clock.h"
#include "common/files.h"
#include "engine/local_executor.h"
#include "notify/secrets.h"
#include "plan/parser.h"
#include "state/store.h"
#include "systemd/bus.h"

namespace rw::cli {
namespace {

struct StartOptions {
  std::string build;
  std::string plan_file;
  std::string runner_command;
  std::string template_command;
  std::string template_timeout;
  bool categorize = false;
  std::vector<std::string> meta;
  std::string workdir;
  std::string hung_after;
  std::string subrun_grace;
  std::string mention;
  bool json = false;
  bool quiet = false;
};

constexpr Millis kDefaultTemplateTimeout{2 * 3600 * 1000};
constexpr Millis kDefaultUnitStartTimeout{90'000};

/// The signal that interrupted start-run while the template command ran.
std::atomic<int> g_interrupted{0};
extern "C" void on_interrupt(int sig) { g_interrupted.store(sig); }

/// How long start-run waits for each unit's start job:
/// $RUNWARDEN_START_TIMEOUT (a duration), else 90s.
Millis unit_start_timeout() {
  const char* v = std::getenv("RUNWARDEN_START_TIMEOUT");
  if (!v || !*v) return kDefaultUnitStartTimeout;
  auto d = parse_duration(v);
  return d ? *d : kDefaultUnitStartTimeout;
}

enum class TemplateEnd { Ok, Failed, Cancelled, Interrupted };

/// Runs the template command in its own process group, into template.log.
/// Its group is killed on a timeout, on SIGINT/SIGTERM/SIGHUP to start-run,
/// and when cancel-run writes the run's cancelled.marker.
TemplateEnd run_template(const StartOptions& o, const state::RunDir& dir, const std::string& command,
                         const std::string& workdir, Millis timeout, std::string* reason) {
  if (!o.quiet && !o.json) std::fprintf(stderr, "running template command: %s\n", command.c_str());
  std::FILE* log = std::fopen(dir.template_log().c_str(), "we");
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  struct sigaction sa {}, old_int{}, old_term{}, old_hup{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  g_interrupted.store(0);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  ::sigaction(SIGHUP, &sa, &old_hup);
  std::thread stopper([&] {
    while (!done.load()) {
      if (g_interrupted.load() || path_exists(dir.cancelled_marker())) {
        stop.store(true);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  engine::SpawnSpec spec;
  spec.command = command;
  spec.workdir = workdir;
  spec.env = {{"RUNWARDEN_BUILD", o.build}, {"RUNWARDEN_RUN_DIR", dir.path()}};
  spec.timeout = timeout;
  spec.cancel = &stop;
  spec.kill_grace = Millis(5'000);
  spec.output = [&](bool, std::string_view data) {
    if (log) std::fwrite(data.data(), 1, data.size(), log);
    if (!o.quiet && !o.json) std::fwrite(data.data(), 1, data.size(), stderr);
  };
  auto out = engine::run_process_group(spec);
  done.store(true);
  stopper.join();
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGHUP, &old_hup, nullptr);
  if (log) std::fclose(log);
  if (out.cancelled) {
    int sig = g_interrupted.load();
    *reason = sig ? std::string("start-run was interrupted (") + strsignal(sig) + ") during the template command"
                  : "cancelled by cancel-run during the template command";
    return sig ? TemplateEnd::Interrupted : TemplateEnd::Cancelled;
  }
  if (out.ok) return TemplateEnd::Ok;
  *reason = "template command failed (" + out.reason + "); see " + dir.template_log() + "; nothing was started";
  return TemplateEnd::Failed;
}

/// The webhook must be usable before anything starts: a bad secrets file
/// is bad input, reported now rather than at the end of a 6-hour run.
Status check_webhook() {
  if (path_exists("/etc/runwarden/webhook-url")) return {};
  auto cfg = notify::load_webhook_config(notify::current_environment());
  if (!cfg) return err(cfg.error().message, kUsage);
  return {};
}

int start(const StartOptions& o) {
  // 1. Everything the user gave is checked before anything is touched.
  int rc;
  if (!check_build(o.build, &rc)) return rc;
  if (o.plan_file.empty() == o.runner_command.empty())
    return fail(err("give exactly one of --plan FILE or --runner-command CMD", kUsage));
  plan::Plan plan;
  std::string plan_text;
  std::string plan_dir;
  if (!o.plan_file.empty()) {
    // Read once: the run keeps exactly the text that was validated.
    auto text = read_file(o.plan_file);
    if (!text) return fail(err("cannot read the plan file: " + text.error().message, kUsage));
    plan_text = *text;
    auto p = plan::parse_plan(plan_text, o.plan_file);
    if (!p) return fail(err(p.error().message, kUsage));
    plan = std::move(p).value();
    // Local paths are relative to the plan file's directory, wherever the
    // run's workdir is: checked now, resolved again by the runner.
    plan_dir = plan::plan_directory(o.plan_file);
    if (auto r = plan::resolve_local_paths(plan, plan_dir, true); !r) return fail(err(r.error().message, kUsage));
  } else {
    plan = plan::Plan::from_command(o.runner_command, o.categorize);
  }
  std::string template_command = !o.template_command.empty() ? o.template_command : plan.template_command;
  std::string workdir = !o.workdir.empty() ? o.workdir : plan.workdir;
  if (workdir.empty() || workdir[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return fail(sys_err("getcwd", errno));
    workdir = workdir.empty() ? std::string(cwd) : std::string(cwd) + "/" + workdir;
  }
  // runner@ has its own /tmp and /var/tmp (PrivateTmp=yes): a workdir there
  // would not be the directory the user sees.
  for (const char* priv : {"/tmp", "/var/tmp"}) {
    std::string p = priv;
    if (workdir == p || workdir.rfind(p + "/", 0) == 0)
      return fail(err("workdir " + workdir + " is under " + p +
                          ", which runner@ does not share (PrivateTmp=yes); give --workdir elsewhere",
                      kUsage));
  }
  if (::access(workdir.c_str(), X_OK) != 0)
    return fail(err("--workdir " + workdir + ": not an accessible directory", kUsage));
  int64_t hung_after = plan.hung_after ? plan.hung_after->count() : 0;
  if (!o.hung_after.empty()) {
    auto d = parse_duration(o.hung_after);
    if (!d) return fail(err("--hung-after: " + d.error().message, kUsage));
    hung_after = d->count();
  }
  Millis template_timeout = plan.template_timeout.value_or(kDefaultTemplateTimeout);
  if (!o.template_timeout.empty()) {
    auto d = parse_duration(o.template_timeout);
    if (!d || d->count() <= 0)
      return fail(err("--template-timeout: " + (d ? std::string("must be positive") : d.error().message), kUsage));
    template_timeout = *d;
  }
  int64_t grace = 30'000;
  if (!o.subrun_grace.empty()) {
    auto d = parse_duration(o.subrun_grace);
    if (!d) return fail(err("--subrun-grace: " + d.error().message, kUsage));
    grace = d->count();
  }
  std::map<std::string, std::string> meta = plan.meta;
  for (const auto& kv : o.meta) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(err("--meta '" + kv + "': expected KEY=VALUE", kUsage));
    meta[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (auto s = check_webhook(); !s) return fail(s.error());

  const std::string root = state::state_root();
  // 2. One start-run per build at a time.
  if (auto s = make_dirs(root + "/runs", 0750); !s) return fail(s.error());
  auto lock = state::BuildLock::acquire(root, o.build);
  if (!lock) return fail(lock.error());
  auto bus = systemd::Bus::connect();
  if (!bus) return fail(bus.error());
  std::vector<std::string> failed_units;
  for (const auto& unit : {runner_unit(o.build), watcher_unit(o.build)}) {
    // Not loaded means inactive: not loaded for the question either (the
    // start below loads it once).
    auto st = bus->unit_state_if_loaded(unit);
    if (!st) return fail(st.error());
    if (st->active == "failed") failed_units.push_back(unit);
    if (st->running() || st->active == "deactivating" || st->sub == "auto-restart" || st->job != 0)
      return fail(err("build " + o.build + " is already running: " + unit + " is " + st->active +
                          " (cancel it with: cancel-run --build-name " + o.build + ")",
                      kConflict));
  }

  // 3. A new run never inherits markers or sub-runs of an old one.
  auto begun = begin_run(root, o.build, "start-run");
  if (!begun) return fail(begun.error());
  state::RunDir dir(root, o.build);
  state::RunState& st = *begun;
  st.hung_after_ms = hung_after;
  st.subrun_grace_ms = grace;
  bool plan_subruns = false;
  for (const auto& s : plan.stages) plan_subruns |= s.subruns;
  st.categorized = o.categorize || plan_subruns;
  st.workdir = workdir;
  st.plan_dir = plan_dir;
  st.runner_command = o.runner_command;
  st.template_command = template_command;
  st.meta = meta;
  st.mention_on_failure = plan.mention_on_failure;
  if (!plan_text.empty()) {
    st.plan_file = "plan.yaml";
    if (auto s = write_file_atomic(dir.plan_file(), plan_text, 0640); !s) return fail(s.error());
  }
  if (auto s = dir.save(st); !s) return fail(s.error());

  // Units this start-run asked the manager to start: a start that fails
  // half-way stops them again, so nothing runs for a run that did not start.
  std::vector<std::string> started;
  auto end_before_start = [&](state::RunStatus status, const std::string& reason, int code) {
    for (auto it = started.rbegin(); it != started.rend(); ++it) {
      auto r = bus->stop_unit(*it, Millis(120'000));
      if (!r) std::fprintf(stderr, "start-run: cannot stop %s: %s\n", it->c_str(), r.error().message.c_str());
    }
    // Never over a terminal state: a cancel-run or the watcher decided first.
    (void)dir.update([&](state::RunState& cur) {
      if (state::is_terminal(cur.status)) return false;
      cur.status = status;
      cur.decided_by = "start-run";
      cur.reason = reason;
      cur.ended_at_ms = now_ms();
      return true;
    });
    return fail(err(reason, code));
  };

  // 4. The template command runs here, synchronously.
  if (!template_command.empty()) {
    std::string reason;
    switch (run_template(o, dir, template_command, workdir, template_timeout, &reason)) {
      case TemplateEnd::Ok: break;
      case TemplateEnd::Failed: return end_before_start(state::RunStatus::FailedToStart, reason, kTemplateFailed);
      case TemplateEnd::Cancelled: return end_before_start(state::RunStatus::Cancelled, reason, kFailed);
      case TemplateEnd::Interrupted:
        return end_before_start(state::RunStatus::Cancelled, reason, 128 + g_interrupted.load());
    }
  }
  if (path_exists(dir.cancelled_marker()))
    return end_before_start(state::RunStatus::Cancelled, "cancelled by cancel-run before the units started",
                            kFailed);

  // 5. Both units' old failures are cleared before either starts: a watcher
  // must not see the previous run's failed runner@ as this run's end.
  for (const auto& unit : failed_units) (void)bus->reset_failed(unit);
  // One transaction: runner@ Wants= watcher@, unordered, so both are forked
  // at once; the watcher reads the run's files and runner@ when it starts,
  // so a run that ends before it is ready is still posted. Both jobs are
  // waited for, in whatever order they end (Wants= alone would start a
  // runner whose watcher failed).
  started = {runner_unit(o.build), watcher_unit(o.build)};
  auto jobs = bus->start_unit(runner_unit(o.build), {watcher_unit(o.build)}, unit_start_timeout());
  if (!jobs) return end_before_start(state::RunStatus::FailedToStart, jobs.error().message, kSystemd);
  bool watcher_job = false;
  for (const auto& [unit, result] : *jobs) {
    watcher_job |= unit == watcher_unit(o.build);
    if (result != "done")
      return end_before_start(state::RunStatus::FailedToStart,
                              "starting " + unit + " ended with '" + result + "' (see: journalctl -u " + unit + ")",
                              kSystemd);
  }
  // A runner@ unit without the Wants= (an old or overridden unit file).
  if (!watcher_job) {
    auto w = bus->unit_state(watcher_unit(o.build));
    if (!w || !w->running())
      return end_before_start(state::RunStatus::FailedToStart,
                              watcher_unit(o.build) + " did not start with " + runner_unit(o.build) +
                                  " (does runner@.service still have Wants=watcher@%i.service?)",
                              kSystemd);
  }

  if (o.json) {
    nlohmann::json j{{"build", o.build},
                     {"run_dir", dir.path()},
                     {"runner_unit", runner_unit(o.build)},
                     {"watcher_unit", watcher_unit(o.build)},
                     {"categorized", st.categorized},
                     {"started_at", format_time(st.created_at_ms)}};
    std::cout << j.dump() << "\n";
  } else if (!o.quiet) {
    std::cout << "started " << o.build << ": " << runner_unit(o.build) << " and " << watcher_unit(o.build) << "\n"
              << "  progress: systemctl status " << runner_unit(o.build) << "   or: runwarden status " << o.build
              << "\n"
              << "  logs:     runwarden logs " << o.build << " -f\n"
              << "  cancel:   cancel-run --build-name " << o.build << "\n";
  }
  return kOk;
}

}  // namespace

void add_start(CLI::App& app, Action* action) {
  auto o = std::make_shared<StartOptions>();
  auto* cmd = app.add_subcommand("start", "Start a run: runner@BUILD and its watcher@BUILD (also: start-run)");
  cmd->footer(
      "Examples:\n"
      "  start-run --build-name nightly-42 --runner-command './run-suite --all' --meta branch=main\n"
      "  start-run --build-name e2e-rhel9 --plan e2e.yaml --hung-after 45m\n"
      "  start-run --build-name suites --categorize --runner-command ./suites.sh   # sub-runs via runwarden event\n"
      "Exit codes: 0 started, 1 cancelled (cancel-run) before it started, 2 bad input, 3 already running,\n"
      "5 template command failed or timed out, 6 service manager error, 130 interrupted (Ctrl-C).\n"
      "$RUNWARDEN_START_TIMEOUT (default 90s): how long to wait for both units to start; on a timeout\n"
      "what was started is stopped again and the run ends FAILED_TO_START.");
  cmd->add_option("--build-name,-b", o->build, "Build name: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, no '..', no '.' at the end")->required();
  cmd->add_option("--plan", o->plan_file, "Plan file (YAML); see `runwarden validate`");
  cmd->add_option("--runner-command", o->runner_command, "Shell command to run (a one-stage plan on the controller)");
  cmd->add_option("--template-command", o->template_command,
                  "Shell command run first, synchronously; if it fails nothing starts");
  cmd->add_option("--template-timeout", o->template_timeout,
                  "Kill the template command after this long, e.g. 30m (plan: template_timeout; default 2h). "
                  "Ctrl-C or cancel-run also stop it");
  cmd->add_flag("--categorize", o->categorize,
                "The command reports sub-runs (runwarden event subrun ...); one message per sub-run");
  cmd->add_option("--meta", o->meta, "KEY=VALUE shown in the chat message (repeatable)");
  cmd->add_option("--workdir", o->workdir, "Working directory of the commands (default: the current one)");
  cmd->add_option("--hung-after", o->hung_after, "HUNG after this long without progress, e.g. 45m (default: never)");
  cmd->add_option("--subrun-grace", o->subrun_grace, "How long the watcher waits for late sub-run reports (30s)");
  cmd->add_flag("--json", o->json, "Print the result as JSON");
  cmd->add_flag("--quiet,-q", o->quiet, "Print nothing on success");
  cmd->callback([=] { *action = [=] { return start(*o); }; });
}

}  // namespace rw::cli
