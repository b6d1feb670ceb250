#include "plan/plan.h"

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

}  // namespace rw::plan
