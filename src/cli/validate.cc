// runwarden validate FILE / runwarden plan FILE: no systemd needed.

#include <iostream>

#include "cli/cli.h"
#include "cli/common.h"
#include "plan/describe.h"
#include "plan/parser.h"

namespace rw::cli {
namespace {

int validate(const std::string& file, bool show, bool as_json) {
  auto p = plan::load_plan(file);
  if (!p) {
    std::cerr << p.error().message << "\n";
    return kUsage;
  }
  if (auto r = plan::resolve_local_paths(*p, plan::plan_directory(file), true); !r) {
    std::cerr << r.error().message << "\n";
    return kUsage;
  }
  if (as_json) {
    std::cout << plan::describe_json(*p).dump(2) << "\n";
  } else if (show) {
    std::cout << plan::describe(*p);
  } else {
    size_t tasks = 0;
    for (const auto& s : p->stages)
      for (const auto& t : s.tasks) tasks += t.on.empty() ? 1 : t.on.size();
    std::cout << file << ": ok (" << p->stages.size() << " stages, " << tasks << " task instances, "
              << p->targets.size() << " targets)\n";
  }
  return kOk;
}

}  // namespace

void add_validate(CLI::App& app, Action* action) {
  for (bool show : {false, true}) {
    auto file = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(show ? "plan" : "validate",
                                   show ? "Print the instruction list a plan compiles to"
                                        : "Check a plan file; errors name file:line:column");
    cmd->add_option("file", *file, "Plan file (YAML)")->required();
    cmd->add_flag("--json", *as_json, "Print the instruction list as JSON");
    cmd->callback([=] { *action = [=] { return validate(*file, show, *as_json); }; });
  }
}

}  // namespace rw::cli
