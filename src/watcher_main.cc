// runwarden-watcher: the entry point of watcher@BUILD.service, an executable
// of its own so that a watcher, which lives as long as its run, loads only
// what watching and posting need: not the SSH and libvirt layers the runner
// uses (nor their libraries' start-up work under the unit's syscall filter).

#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "common/build_name.h"
#include "common/config.h"
#include "watch/watcher.h"

int main(int argc, char** argv) {
  if (auto s = rw::load_config(); !s) {
    std::cerr << "runwarden-watcher: " << s.error().message << "\n";
    return 2;
  }
  CLI::App app{"runwarden-watcher: the watcher of one run (watcher@BUILD.service; not for interactive use)"};
  app.name("runwarden-watcher");
  std::string build;
  app.add_option("--build-name,-b", build, "Build name (the unit instance)")->required();
  CLI11_PARSE(app, argc, argv);
  if (auto s = rw::validate_build_name(build); !s) {
    std::cerr << "runwarden-watcher: " << s.error().message << "\n";
    return 2;
  }
  return rw::watch::run_watcher(build);
}
