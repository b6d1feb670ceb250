// start-run and cancel-run: the commands people type, an executable of their
// own (dispatched on argv[0]) so that each start loads only what starting and
// cancelling use: not the libvirt, libssh2 and libmicrohttpd layers of the
// runner and the web view, whose dynamic linking alone took several
// milliseconds of every start-run. `runwarden start` and `runwarden cancel`
// are the same commands in the big binary.

#include <iostream>
#include <string>

#include "cli/cli.h"
#include "common/config.h"

int main(int argc, char** argv) {
  std::string self = argv[0];
  if (auto slash = self.rfind('/'); slash != std::string::npos) self = self.substr(slash + 1);
  if (self != "start-run" && self != "cancel-run") {
    std::cerr << self << ": run as start-run or cancel-run (or use: runwarden start|cancel)\n";
    return rw::cli::kUsage;
  }
  if (auto s = rw::load_config(); !s) {
    std::cerr << self << ": " << s.error().message << "\n";
    return rw::cli::kUsage;
  }
  // Parsed as `runwarden start|cancel` is, under the program's own name, so
  // the usage line reads "start-run [OPTIONS]" as the man page does.
  CLI::App app{"runwarden: long test and provisioning runs as systemd services, one chat message when done"};
  app.name("");
  app.set_version_flag("--version", RUNWARDEN_VERSION);
  app.require_subcommand(1);
  rw::cli::Action action;
  if (self == "start-run") rw::cli::add_start(app, &action);
  else rw::cli::add_cancel(app, &action);
  app.get_subcommand(self == "start-run" ? "start" : "cancel")->name(self)->set_version_flag("--version", RUNWARDEN_VERSION);
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);
  args.emplace_back(self);
  return rw::cli::parse_and_run(app, std::move(args), action);
}
