// runwarden exec: ad-hoc fan-out of one command over a plan's targets.

#include <cstdio>
#include <mutex>
#include <thread>

#include "cli/cli.h"
#include "cli/common.h"
#include "engine/runner.h"
#include "plan/parser.h"

namespace rw::cli {
namespace {

struct ExecOptions {
  std::string plan_file;
  std::vector<std::string> on;
  std::vector<std::string> command;
};

int exec_cmd(const ExecOptions& o) {
  auto p = plan::load_plan(o.plan_file);
  if (!p) return fail(p.error());
  std::vector<std::string> targets;
  for (const auto& spec : o.on) {
    if (spec == "all") {
      for (const auto& [name, t] : p->targets) targets.push_back(name);
      continue;
    }
    size_t start = 0;
    while (start <= spec.size()) {
      size_t comma = spec.find(',', start);
      std::string name = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!name.empty()) {
        if (!p->targets.count(name))
          return fail(err("--on " + name + ": no such host or guest in " + o.plan_file, kUsage));
        targets.push_back(name);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  std::string command;
  for (const auto& a : o.command) command += (command.empty() ? "" : " ") + a;

  plan::Task task;
  task.name = "exec";
  task.kind = plan::TaskKind::Run;
  task.run = command;
  auto executors = engine::default_executors(*p);
  std::vector<engine::TaskOutcome> outcomes(targets.size());
  std::vector<std::string> outputs(targets.size());
  std::vector<std::thread> threads;
  std::atomic<bool> cancel{false};
  for (size_t i = 0; i < targets.size(); ++i) {
    threads.emplace_back([&, i] {
      const auto& target = p->targets.at(targets[i]);
      engine::TaskContext ctx;
      ctx.plan = &*p;
      ctx.task = &task;
      ctx.target = &target;
      ctx.workdir = p->workdir;
      ctx.cancel = &cancel;
      ctx.output = [&](bool, std::string_view d) { outputs[i].append(d); };
      engine::Executor* ex = executors->find(task, target);
      if (!ex) {
        outcomes[i].reason = "no executor for target " + target.name;
        return;
      }
      outcomes[i] = ex->run(ctx);
    });
  }
  for (auto& t : threads) t.join();
  int failed = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& out = outcomes[i];
    std::printf("=== %s: %s\n", targets[i].c_str(), out.ok ? "ok" : out.reason.c_str());
    std::fwrite(outputs[i].data(), 1, outputs[i].size(), stdout);
    if (!outputs[i].empty() && outputs[i].back() != '\n') std::printf("\n");
    failed += !out.ok;
  }
  if (failed) std::fprintf(stderr, "%d of %zu targets failed\n", failed, targets.size());
  return failed ? kFailed : kOk;
}

}  // namespace

void add_exec(CLI::App& app, Action* action) {
  auto o = std::make_shared<ExecOptions>();
  auto* cmd = app.add_subcommand("exec", "Run one command on a plan's hosts and guests at once");
  cmd->footer("Example: runwarden exec --plan lab.yaml --on hv1,hv2,web1 -- uptime\n"
              "Output is grouped per target; the exit code is 1 if any target failed.");
  cmd->add_option("--plan", o->plan_file, "Plan file naming the hosts and guests")->required();
  cmd->add_option("--on", o->on, "Targets: NAME[,NAME...] or all")->required();
  cmd->add_option("command", o->command, "Command (after --)")->required();
  cmd->callback([=] { *action = [=] { return exec_cmd(*o); }; });
}

}  // namespace rw::cli
