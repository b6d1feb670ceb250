// start-run: validate, lock, archive, write the run (PENDING), run the
// template command, start watcher@ (ready) then runner@ through sd-bus.

#include <unistd.h>

#include <cerrno>
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
  bool categorize = false;
  std::vector<std::string> meta;
  std::string workdir;
  std::string hung_after;
  std::string subrun_grace;
  std::string mention;
  bool json = false;
  bool quiet = false;
};

int history_keep() {
  const char* v = std::getenv("RUNWARDEN_HISTORY_KEEP");
  return v && *v ? std::max(1, std::atoi(v)) : 20;
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
  if (!o.plan_file.empty()) {
    // Read once: the run keeps exactly the text that was validated.
    auto text = read_file(o.plan_file);
    if (!text) return fail(err("cannot read the plan file: " + text.error().message, kUsage));
    plan_text = *text;
    auto p = plan::parse_plan(plan_text, o.plan_file);
    if (!p) return fail(err(p.error().message, kUsage));
    plan = std::move(p).value();
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
  for (const auto& unit : {runner_unit(o.build), watcher_unit(o.build)}) {
    auto st = bus->unit_state(unit);
    if (!st) return fail(st.error());
    if (st->running() || st->active == "deactivating" || st->sub == "auto-restart")
      return fail(err("build " + o.build + " is already running: " + unit + " is " + st->active +
                          " (cancel it with: cancel-run --build-name " + o.build + ")",
                      kConflict));
  }

  // 3. A new run never inherits markers or sub-runs of an old one.
  if (auto s = state::archive_run(root, o.build, history_keep()); !s) return fail(s.error());
  state::RunDir dir(root, o.build);
  if (auto s = make_dirs(dir.path(), 0750); !s) return fail(s.error());
  state::RunState st;
  st.build = o.build;
  st.status = state::RunStatus::Pending;
  st.decided_by = "start-run";
  st.created_at_ms = now_ms();
  st.hung_after_ms = hung_after;
  st.subrun_grace_ms = grace;
  bool plan_subruns = false;
  for (const auto& s : plan.stages) plan_subruns |= s.subruns;
  st.categorized = o.categorize || plan_subruns;
  st.workdir = workdir;
  st.runner_command = o.runner_command;
  st.template_command = template_command;
  st.meta = meta;
  st.mention_on_failure = plan.mention_on_failure;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  st.host = host;
  if (!plan_text.empty()) {
    st.plan_file = "plan.yaml";
    if (auto s = write_file_atomic(dir.plan_file(), plan_text, 0640); !s) return fail(s.error());
  }
  if (auto s = dir.save(st); !s) return fail(s.error());

  auto failed_to_start = [&](const std::string& reason, int code) {
    (void)dir.update([&](state::RunState& cur) {
      cur.status = state::RunStatus::FailedToStart;
      cur.decided_by = "start-run";
      cur.reason = reason;
      cur.ended_at_ms = now_ms();
      return true;
    });
    return fail(err(reason, code));
  };

  // 4. The template command runs here, synchronously.
  if (!template_command.empty()) {
    if (!o.quiet && !o.json) std::fprintf(stderr, "running template command: %s\n", template_command.c_str());
    std::FILE* log = std::fopen(dir.template_log().c_str(), "we");
    engine::SpawnSpec spec;
    spec.command = template_command;
    spec.workdir = workdir;
    spec.env = {{"RUNWARDEN_BUILD", o.build}, {"RUNWARDEN_RUN_DIR", dir.path()}};
    spec.output = [&](bool, std::string_view data) {
      if (log) std::fwrite(data.data(), 1, data.size(), log);
      if (!o.quiet && !o.json) std::fwrite(data.data(), 1, data.size(), stderr);
    };
    auto out = engine::run_process_group(spec);
    if (log) std::fclose(log);
    if (!out.ok)
      return failed_to_start("template command failed (" + out.reason + "); see " + dir.template_log() +
                                 "; nothing was started",
                             kTemplateFailed);
  }

  // 5. The watcher first, ready before the runner can end the run.
  for (const auto& unit : {watcher_unit(o.build), runner_unit(o.build)}) {
    (void)bus->reset_failed(unit);
    auto job = bus->start_unit(unit, Millis(90'000));
    if (!job) return failed_to_start(job.error().message, kSystemd);
    if (*job != "done")
      return failed_to_start("starting " + unit + " ended with '" + *job + "' (see: journalctl -u " + unit + ")",
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
  auto* cmd = app.add_subcommand("start", "Start a run: watcher@BUILD then runner@BUILD (also: start-run)");
  cmd->footer(
      "Examples:\n"
      "  start-run --build-name nightly-42 --runner-command './run-suite --all' --meta branch=main\n"
      "  start-run --build-name e2e-rhel9 --plan e2e.yaml --hung-after 45m\n"
      "  start-run --build-name suites --categorize --runner-command ./suites.sh   # sub-runs via runwarden event\n"
      "Exit codes: 0 started, 2 bad input, 3 already running, 5 template command failed, 6 service manager error.");
  cmd->add_option("--build-name,-b", o->build, "Build name: [A-Za-z0-9][A-Za-z0-9._-]{0,127}")->required();
  cmd->add_option("--plan", o->plan_file, "Plan file (YAML); see `runwarden validate`");
  cmd->add_option("--runner-command", o->runner_command, "Shell command to run (a one-stage plan on the controller)");
  cmd->add_option("--template-command", o->template_command,
                  "Shell command run first, synchronously; if it fails nothing starts");
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
