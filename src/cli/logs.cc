// runwarden logs BUILD [-f] [--task ID] [--template]

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdio>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/fd.h"
#include "common/files.h"
#include "state/store.h"

namespace rw::cli {
namespace {

struct LogsOptions {
  std::string build;
  bool follow = false;
  std::string task;
  bool template_log = false;
};

int logs(const LogsOptions& o) {
  int rc;
  if (!check_build(o.build, &rc)) return rc;
  state::RunDir dir(state::state_root(), o.build);
  if (!dir.exists()) return fail(err("no run named " + o.build + " (see: runwarden list)", kNotFound));
  std::string path = dir.runner_log();
  if (o.template_log) path = dir.template_log();
  if (!o.task.empty()) {
    auto st = dir.load();
    if (!st) return fail(st.error());
    path.clear();
    for (const auto& s : st->stages)
      for (const auto& t : s.tasks)
        if (t.id() == o.task || t.name == o.task || s.name + "/" + t.id() == o.task) path = dir.file(t.log);
    if (path.empty()) return fail(err("no task " + o.task + " in run " + o.build + " (see: runwarden status)", kNotFound));
  }
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() && !o.follow) return fail(err("no log yet: " + path, kNotFound));
  Fd ino(o.follow ? ::inotify_init1(IN_CLOEXEC) : -1);
  if (o.follow) {
    ::inotify_add_watch(ino.get(), dir.path().c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO);
  }
  char buf[65536];
  for (;;) {
    if (!fd.valid()) fd = Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.valid()) {
      ssize_t n;
      while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
        if (std::fwrite(buf, 1, static_cast<size_t>(n), stdout) != static_cast<size_t>(n)) return kFailed;
      }
      std::fflush(stdout);
    }
    if (!o.follow) break;
    // Follow until the run has ended and nothing more arrives.
    auto st = dir.load();
    if (st.ok() && state::is_terminal(st->status)) break;
    pollfd p{ino.get(), POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) (void)!::read(ino.get(), buf, sizeof buf);
  }
  return kOk;
}

}  // namespace

void add_logs(CLI::App& app, Action* action) {
  auto o = std::make_shared<LogsOptions>();
  auto* cmd = app.add_subcommand("logs", "Print a run's output (runner.log), or one task's or the template's");
  cmd->footer("The journal has the same lines with fields: journalctl RUNWARDEN_BUILD=BUILD [STAGE=..] [TASK=..]");
  cmd->add_option("build", o->build, "Build name")->required();
  cmd->add_flag("--follow,-f", o->follow, "Keep printing until the run ends");
  cmd->add_option("--task", o->task, "Only this task: NAME, NAME@TARGET or STAGE/NAME@TARGET");
  cmd->add_flag("--template", o->template_log, "The template command's output");
  cmd->callback([=] { *action = [=] { return logs(*o); }; });
}

}  // namespace rw::cli
