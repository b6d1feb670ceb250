#include "plan/plan.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rw::plan {

std::string Mark::str() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

const char* to_string(TaskKind k) {
  switch (k) {
    case TaskKind::Run: return "run";
    case TaskKind::Script: return "script";
    case TaskKind::Push: return "push";
    case TaskKind::Fetch: return "fetch";
    case TaskKind::WaitFor: return "wait_for";
    case TaskKind::Testbed: return "testbed";
    case TaskKind::Snapshot: return "snapshot";
  }
  return "?";
}

const char* to_string(Teardown t) {
  switch (t) {
    case Teardown::Always: return "always";
    case Teardown::OnSuccess: return "on_success";
    case Teardown::Never: return "never";
  }
  return "?";
}

Plan Plan::from_command(const std::string& command, bool categorized) {
  Plan p;
  p.source = "<command>";
  Target controller;
  controller.name = kController;
  controller.local = true;
  p.targets[kController] = controller;
  Stage s;
  s.name = "run";
  s.subruns = false;  // a categorized command reports its sub-runs through events
  (void)categorized;
  Task t;
  t.name = "command";
  t.on = {kController};
  t.kind = TaskKind::Run;
  t.run = command;
  s.tasks.push_back(t);
  p.stages.push_back(s);
  return p;
}

namespace {

std::string against(const std::string& base, const std::string& p) {
  if (p.empty() || p[0] == '/' || base.empty()) return p;
  if (p == "~" || p.rfind("~/", 0) == 0) return p;  // the SSH layer expands these
  return base + "/" + p;
}

}  // namespace

std::string plan_directory(const std::string& plan_file) {
  std::string dir = plan_file.rfind('/') == std::string::npos ? "." : plan_file.substr(0, plan_file.rfind('/'));
  if (dir.empty()) dir = "/";
  char* real = ::realpath(dir.c_str(), nullptr);
  if (!real) return dir;
  std::string out(real);
  std::free(real);
  return out;
}

Status resolve_local_paths(Plan& plan, const std::string& base, bool check) {
  std::string problems;
  auto need = [&](const std::string& path, const Mark& m, const std::string& what) {
    if (!check || path.empty() || ::access(path.c_str(), R_OK) == 0) return;
    if (!problems.empty()) problems += "\n";
    problems += m.str() + ": " + what + " " + path + " cannot be read (" + std::strerror(errno) +
                "); relative paths are relative to the plan file's directory";
  };
  for (auto& [name, t] : plan.targets) {
    t.identity = against(base, t.identity);
    t.known_hosts = against(base, t.known_hosts);
    need(t.identity, t.mark, "target '" + name + "': identity");
  }
  auto task_paths = [&](Task& t) {
    if (t.kind == TaskKind::Push) {
      t.push.src = against(base, t.push.src);
      need(t.push.src, t.mark, "task '" + t.name + "': push source");
    } else if (t.kind == TaskKind::Script) {
      t.script = against(base, t.script);
      need(t.script, t.mark, "task '" + t.name + "': script");
    }
  };
  for (auto& s : plan.stages)
    for (auto& t : s.tasks) task_paths(t);
  if (plan.testbed) {
    for (auto& g : plan.testbed->guests) {
      g.ssh_key = against(base, g.ssh_key);
      need(g.ssh_key, g.mark, "testbed guest '" + g.name + "': ssh_key");
    }
    for (auto& g : plan.testbed->goldens) {
      g.ssh_key = against(base, g.ssh_key);
      need(g.ssh_key, g.mark, "testbed golden '" + g.name + "': ssh_key");
      for (auto& t : g.setup) task_paths(t);
    }
  }
  if (!problems.empty()) return err(problems, 2);
  return {};
}

}  // namespace rw::plan
