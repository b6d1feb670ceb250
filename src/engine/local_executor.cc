#include "engine/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/clock.h"
#include "common/fd.h"

extern char** environ;

namespace rw::engine {
namespace {

std::vector<std::string> build_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos && extra.count(kv.substr(0, eq))) continue;
    out.push_back(kv);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "ended";
}

}  // namespace

TaskOutcome run_process_group(const SpawnSpec& spec) {
  TaskOutcome out;
  int outp[2], errp[2];
  if (::pipe2(outp, O_CLOEXEC) != 0 || ::pipe2(errp, O_CLOEXEC) != 0) {
    out.reason = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  Fd out_r(outp[0]), out_w(outp[1]), err_r(errp[0]), err_w(errp[1]);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  if (!spec.workdir.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.workdir.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // Own process group (so the whole tree can be signalled), signals unblocked
  // and default dispositions (the runner blocks SIGTERM for its signalfd).
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);

  auto env = build_environment(spec.env);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = spec.command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  pid_t pid = -1;
  int r = ::posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  out_w.reset();
  err_w.reset();
  if (r != 0) {
    out.reason = "cannot start /bin/sh" + std::string(spec.workdir.empty() ? "" : " in " + spec.workdir) + ": " +
                 std::strerror(r);
    return out;
  }

  // The shell's exit wakes the loop through a pidfd; without one (a kernel
  // before 5.3) the loop looks every few milliseconds.
  Fd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  const int64_t start = mono_ms();
  int64_t term_sent_at = 0;
  bool killed = false;
  auto signal_group = [&](int sig) { ::kill(-pid, sig); };
  std::string why_stopped;

  pollfd fds[3] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}, {-1, POLLIN, 0}};
  int open_fds = 2;
  int status = 0;
  bool reaped = false;
  char buf[16384];
  for (;;) {
    // Stop requests: timeout and cancellation end the whole group.
    int64_t now = mono_ms();
    if (!term_sent_at) {
      if (spec.cancel && spec.cancel->load()) {
        why_stopped = "cancelled";
        out.cancelled = true;
      } else if (spec.timeout && now - start >= spec.timeout->count()) {
        why_stopped = "timed out after " + format_duration(*spec.timeout);
        out.timed_out = true;
      }
      if (!why_stopped.empty()) {
        signal_group(SIGTERM);
        term_sent_at = now;
      }
    } else if (!killed && now - term_sent_at >= spec.kill_grace.count()) {
      signal_group(SIGKILL);
      killed = true;
    }
    if (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) reaped = true;
    }
    if (reaped && open_fds == 0) break;
    if (reaped && term_sent_at == 0) {
      // The shell is gone; whatever it left in its group (background jobs
      // holding the pipes) is part of the task and ends with it.
      signal_group(SIGTERM);
      term_sent_at = now;
    }
    // Pipes closed but the shell not reaped yet: it is exiting (its files
    // close before it can be waited for); wait on its pidfd only.
    if (open_fds == 0 && !exited.valid()) {
      ::usleep(2000);
      continue;
    }
    fds[2] = {reaped || !exited.valid() ? -1 : exited.get(), POLLIN, 0};
    int pr = ::poll(fds, 3, 200);
    if (pr < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (spec.output) spec.output(i == 1, std::string_view(buf, static_cast<size_t>(n)));
      } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  // Nothing of the group may outlive the task.
  signal_group(SIGKILL);

  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  out.ok = !out.cancelled && !out.timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!out.ok) out.reason = why_stopped.empty() ? describe_status(status) : why_stopped;
  return out;
}

TaskOutcome LocalExecutor::run(const TaskContext& ctx) {
  SpawnSpec spec;
  spec.command = ctx.task->run;
  spec.workdir = ctx.workdir;
  spec.env = ctx.task->env;
  spec.env["RUNWARDEN_BUILD"] = ctx.build;
  spec.env["RUNWARDEN_RUN_DIR"] = ctx.run_dir;
  spec.env["RUNWARDEN_EVENTS"] = ctx.events_file;
  spec.env["RUNWARDEN_TASK"] = ctx.task->name;
  spec.env["RUNWARDEN_TARGET"] = ctx.target ? ctx.target->name : "controller";
  spec.env["RUNWARDEN_ATTEMPT"] = std::to_string(ctx.attempt);
  spec.timeout = ctx.task->timeout;
  spec.cancel = ctx.cancel;
  spec.kill_grace = ctx.kill_grace;
  spec.output = ctx.output;
  return run_process_group(spec);
}

}  // namespace rw::engine
