// The service entry points: `runwarden runner` and `runwarden watcher`.

#include "cli/cli.h"
#include "cli/common.h"
#include "engine/runner.h"
#include "watch/watcher.h"

namespace rw::cli {

void add_runner(CLI::App& app, Action* action) {
  auto* cmd = app.add_subcommand("runner", "Service entry point of runner@BUILD.service (not for interactive use)");
  auto build = std::make_shared<std::string>();
  cmd->add_option("--build-name", *build, "Build name (the unit instance)")->required();
  cmd->callback([=] {
    *action = [=]() -> int {
      int rc;
      if (!check_build(*build, &rc)) return static_cast<int>(engine::kRunnerNotResumable);
      return engine::run_runner(*build);
    };
  });
}

void add_watcher(CLI::App& app, Action* action) {
  auto* cmd = app.add_subcommand("watcher", "Service entry point of watcher@BUILD.service (not for interactive use)");
  auto build = std::make_shared<std::string>();
  cmd->add_option("--build-name", *build, "Build name (the unit instance)")->required();
  cmd->callback([=] { *action = [=] { return watch::run_watcher(*build); }; });
}

}  // namespace rw::cli
