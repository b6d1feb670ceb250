// runwarden: one binary for the service entry points (runner, watcher) and
// the admin commands; invoked as start-run or cancel-run it is that command.

#include <cstring>
#include <iostream>
#include <string>

#include "cli/cli.h"
#include "common/config.h"

int main(int argc, char** argv) {
  std::string self = argv[0];
  if (auto slash = self.rfind('/'); slash != std::string::npos) self = self.substr(slash + 1);

  if (auto s = rw::load_config(); !s) {
    std::cerr << self << ": " << s.error().message << "\n";
    return rw::cli::kUsage;
  }
  CLI::App app{"runwarden: long test and provisioning runs as systemd services, one chat message when done"};
  app.name("runwarden");  // the usage line names the program
  app.set_version_flag("--version", RUNWARDEN_VERSION);
  app.require_subcommand(1);
  rw::cli::Action action;
  rw::cli::add_start(app, &action);
  rw::cli::add_cancel(app, &action);
  rw::cli::add_status(app, &action);
  rw::cli::add_list(app, &action);
  rw::cli::add_serve(app, &action);
  rw::cli::add_logs(app, &action);
  rw::cli::add_notify(app, &action);
  rw::cli::add_event(app, &action);
  rw::cli::add_validate(app, &action);
  rw::cli::add_exec(app, &action);
  rw::cli::add_testbed(app, &action);
  rw::cli::add_runner(app, &action);
  rw::cli::add_watcher(app, &action);

  // start-run / cancel-run are `runwarden start` / `runwarden cancel`.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);
  if (self == "start-run" || self == "cancel-run") {
    // The subcommand takes the program's name, so its usage line reads
    // "start-run [OPTIONS]" as the man page and the examples do.
    app.get_subcommand(self == "start-run" ? "start" : "cancel")->name(self)->set_version_flag("--version", RUNWARDEN_VERSION);
    args.emplace_back(self);
    app.name("");
  }
  return rw::cli::parse_and_run(app, std::move(args), action);
}
