// runwarden serve: the read-only web view, JSON API and metrics, served by
// runwarden-web (the executable of runwarden-web.service, beside this one):
// runwarden itself does not load libmicrohttpd and its TLS stack, a few ms
// of every run's start and every command.

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli/cli.h"
#include "common/result.h"

namespace rw::cli {
namespace {

int exec_web(const std::string& listen) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string web = "runwarden-web";
  if (n > 0) {
    std::string path(self, size_t(n));
    web = path.substr(0, path.rfind('/') + 1) + "runwarden-web";
  }
  // Same pid: a socket systemd passed (LISTEN_PID) stays this process's.
  ::execl(web.c_str(), "runwarden-web", "--listen", listen.c_str(), static_cast<char*>(nullptr));
  std::cerr << "runwarden serve: " << errno_message("cannot run " + web, errno) << "\n";
  return 1;
}

}  // namespace

void add_serve(CLI::App& app, Action* action) {
  auto* cmd = app.add_subcommand(
      "serve", "Serve a read-only web view, JSON API and Prometheus metrics of the runs (runwarden-web.socket)");
  auto listen = std::make_shared<std::string>();
  const char* env = std::getenv("RUNWARDEN_WEB_LISTEN");
  *listen = env && *env ? env : "127.0.0.1:8470";
  cmd->add_option("--listen", *listen,
                  "HOST:PORT to listen on when systemd passes no socket ($RUNWARDEN_WEB_LISTEN; default "
                  "127.0.0.1:8470; port 0: any free port)");
  cmd->footer(
      "Endpoints (GET or HEAD; nothing starts or cancels over HTTP):\n"
      "  /                          the runs page      /runs/BUILD   one run, its tasks and log tail\n"
      "  /api/v1/runs               ?state=RUNNING,FAILED&prefix=nightly-&limit=100&offset=0\n"
      "  /api/v1/runs/BUILD         the run (state, stages, tasks, sub-runs, message delivery)\n"
      "  /api/v1/runs/BUILD/history earlier runs of BUILD    /api/v1/runs/BUILD/log?tail=200\n"
      "  /api/v1/events             Server-Sent Events of the list   /api/v1/runs/BUILD/events  of one run and its log\n"
      "  /metrics                   Prometheus text format\n"
      "Errors: 400 bad build name or query, 404 no such path or run, 405 not GET/HEAD, 413 a body, 414 too long.\n"
      "Loopback by default: put it behind a reverse proxy with authentication (INSTALL.md) to share it.");
  cmd->callback([=] { *action = [=] { return exec_web(*listen); }; });
}

}  // namespace rw::cli
