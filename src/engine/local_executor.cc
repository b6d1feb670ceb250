#include "engine/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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

/// What the child of spawn_shell() does before exec, set up by the parent:
/// only async-signal-safe calls, on its own stack, in the parent's memory
/// (CLONE_VM | CLONE_VFORK: the calling thread waits until it execs or ends).
struct ChildPlan {
  char* const* argv;
  char* const* envp;
  const char* workdir;  ///< nullptr: the runner's
  int fd_in, fd_out, fd_err;
  int go_r = -1;  ///< held: exec only after a byte arrives here
  int go_w = -1;  ///< the write end's number: the child's copy is closed
  int report_w;   ///< close-on-exec: a failure's stage and errno
};

enum ChildStage : int { kChdir = 1, kExec = 2, kGaveUp = 3 };

int child_main(void* arg) {
  const auto* c = static_cast<const ChildPlan*>(arg);
  auto fail = [c](int stage, int e) {
    int report[2] = {stage, e};
    (void)!::write(c->report_w, report, sizeof report);
    ::_exit(127);
  };
  // Default dispositions (the runner's handlers mean nothing after exec),
  // its own process group (the whole tree is signalled as one), stdin
  // from /dev/null, stdout and stderr to the runner's pipes.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  ::setpgid(0, 0);
  if (::dup2(c->fd_in, 0) < 0 || ::dup2(c->fd_out, 1) < 0 || ::dup2(c->fd_err, 2) < 0) fail(kExec, errno);
  if (c->workdir && ::chdir(c->workdir) != 0) fail(kChdir, errno);
  if (c->go_r >= 0) {
    // Held: a runner that dies meanwhile takes this process with it (its
    // pipe's other end may also live in a sibling held the same way).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (c->go_w >= 0) ::close(c->go_w);
    char b = 0;
    ssize_t n;
    do n = ::read(c->go_r, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) fail(kGaveUp, 0);
    ::prctl(PR_SET_PDEATHSIG, 0);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve("/bin/sh", c->argv, c->envp);
  fail(kExec, errno);
  return 127;
}

struct Spawned {
  pid_t pid = -1;
  int stage = 0;  ///< ChildStage that failed; 0: running
  int error = 0;
};

/// Starts `/bin/sh -c command` as spawn_shell's child. With a gate, the
/// child is made and set up at once but execs only when the gate opens.
Spawned spawn_shell(const SpawnSpec& spec, int fd_in, int fd_out, int fd_err) {
  Spawned r;
  auto env = build_environment(spec.env);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = spec.command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

  int rp[2];
  if (::pipe2(rp, O_CLOEXEC) != 0) return {-1, kExec, errno};
  Fd report_r(rp[0]), report_w(rp[1]);
  ChildPlan plan{argv, envp.data(), spec.workdir.empty() ? nullptr : spec.workdir.c_str(), fd_in, fd_out, fd_err,
                 -1, -1, report_w.get()};
  Fd go_r;
  if (spec.gate) {
    int gp[2];
    if (::pipe2(gp, O_CLOEXEC) != 0) return {-1, kExec, errno};
    go_r = Fd(gp[0]);
    plan.go_r = gp[0];
    plan.go_w = gp[1];
    if (Fd go = spec.gate->hold(Fd(gp[1]), spec.cancel); go.valid()) StartGate::release(std::move(go), spec.cancel);
  }

  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return {-1, kExec, errno};
  // No handler of this process may run in the child, which shares its memory.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  r.pid = ::clone(child_main, static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  if (r.pid < 0) return {-1, kExec, clone_errno};
  // The child has exec'd (its end of the report pipe closed) or ended.
  report_w.reset();
  int report[2] = {0, 0};
  ssize_t n;
  do n = ::read(report_r.get(), report, sizeof report);
  while (n < 0 && errno == EINTR);
  if (n == sizeof report) {
    int status = 0;
    while (::waitpid(r.pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.stage = report[0];
    r.error = report[1];
    r.pid = -1;
  }
  return r;
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

  Spawned sp = spawn_shell(spec, devnull.get(), out_w.get(), err_w.get());
  out_w.reset();
  err_w.reset();
  if (sp.stage == kGaveUp) {
    // Held until the gate opened on a cancelled task: it never started.
    out.cancelled = true;
    out.reason = "cancelled";
    return out;
  }
  if (sp.pid < 0) {
    out.reason = "cannot start /bin/sh" + std::string(spec.workdir.empty() ? "" : " in " + spec.workdir) + ": " +
                 std::strerror(sp.error);
    return out;
  }
  const pid_t pid = sp.pid;

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
  spec.gate = ctx.gate;
  return run_process_group(spec);
}

}  // namespace rw::engine
