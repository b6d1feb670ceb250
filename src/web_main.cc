// runwarden-web: the entry point of runwarden-web.service (what `runwarden
// serve` runs in-process), an executable of its own so that a long-lived
// read-only server loads libsystemd and libmicrohttpd only: not the SSH and
// libvirt layers (nor their libraries' start-up work under the unit's
// syscall filter).

#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "common/config.h"
#include "web/server.h"

int main(int argc, char** argv) {
  if (auto s = rw::load_config(); !s) {
    std::cerr << "runwarden-web: " << s.error().message << "\n";
    return 2;
  }
  CLI::App app{"runwarden-web: the read-only web view, JSON API and metrics (runwarden-web.service; "
               "interactively: runwarden serve)"};
  app.name("runwarden-web");
  const char* env = std::getenv("RUNWARDEN_WEB_LISTEN");
  std::string listen = env && *env ? env : "127.0.0.1:8470";
  app.add_option("--listen", listen, "HOST:PORT when systemd passes no socket (default 127.0.0.1:8470)");
  CLI11_PARSE(app, argc, argv);
  return rw::web::serve(listen);
}
