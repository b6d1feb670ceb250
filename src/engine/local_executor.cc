#include "engine/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
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

/// The stack the child of spawn_shell() runs on until it execs: one per
/// thread, kept (CLONE_VFORK: the thread waits while the child uses it).
/// A new one per start would be fresh pages to fault in every time.
class ChildStack {
 public:
  static constexpr size_t kSize = 64 * 1024;
  ~ChildStack() {
    if (base_) ::munmap(base_, kSize);
  }
  /// Its top (stacks grow down); nullptr with errno when it cannot be made.
  void* get() {
    if (!base_) {
      void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      base_ = p;
    }
    return static_cast<char*>(base_) + kSize;
  }

 private:
  void* base_ = nullptr;
};
thread_local ChildStack child_stack;

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

  void* stack = child_stack.get();
  if (!stack) return {-1, kExec, errno};
  // No handler of this process may run in the child, which shares its memory.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  r.pid = ::clone(child_main, stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
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

ProcessGroup::ProcessGroup(SpawnSpec spec) : spec_(std::move(spec)) {
  int outp[2], errp[2];
  if (::pipe2(outp, O_CLOEXEC) != 0) {
    end_now(std::string("pipe: ") + std::strerror(errno));
    return;
  }
  out_r_ = Fd(outp[0]);
  Fd out_w(outp[1]);
  if (::pipe2(errp, O_CLOEXEC) != 0) {
    end_now(std::string("pipe: ") + std::strerror(errno));
    return;
  }
  err_r_ = Fd(errp[0]);
  Fd err_w(errp[1]);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  Spawned sp = spawn_shell(spec_, devnull.get(), out_w.get(), err_w.get());
  if (sp.stage == kGaveUp) {
    // Held until the gate opened on a cancelled task: it never started.
    out_.cancelled = true;
    end_now("cancelled");
    return;
  }
  if (sp.pid < 0) {
    end_now("cannot start /bin/sh" + std::string(spec_.workdir.empty() ? "" : " in " + spec_.workdir) + ": " +
            std::strerror(sp.error));
    return;
  }
  pid_ = sp.pid;
  // The shell's exit is seen through a pidfd; without one (a kernel before
  // 5.3) it is looked for every few milliseconds.
  exited_ = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  started_ms_ = mono_ms();
  settle();
}

ProcessGroup::~ProcessGroup() {
  drop(out_r_);
  drop(err_r_);
  drop(exited_);
  // Nothing of the group may outlive the task, even one given up on.
  if (pid_ > 0 && !done_) {
    ::kill(-pid_, SIGKILL);
    if (!reaped_) {
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
}

void ProcessGroup::end_now(std::string reason) {
  out_r_.reset();
  err_r_.reset();
  out_.reason = std::move(reason);
  done_ = true;
}

bool ProcessGroup::follow_with(int epoll_fd, uint64_t tag) {
  epoll_ = epoll_fd;
  auto fds = this->fds();
  for (size_t slot = 0; slot < fds.size(); ++slot) {
    if (fds[slot] < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag | slot;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fds[slot], &ev) != 0) {
      const int e = errno;
      for (size_t i = 0; i < slot; ++i)
        if (fds[i] >= 0) (void)::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fds[i], nullptr);
      epoll_ = -1;
      self_polled_ = true;
      errno = e;
      return false;
    }
  }
  return true;
}

void ProcessGroup::drop(Fd& fd) {
  // Closing is not enough to leave an epoll set: a child of another start
  // that has not exec'd yet still holds this file open (its copy of the
  // fd table), and the set would go on reporting it.
  if (epoll_ >= 0 && fd.valid()) (void)::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd.get(), nullptr);
  fd.reset();
}

std::array<int, 3> ProcessGroup::fds() const {
  return {out_r_.get(), err_r_.get(), reaped_ ? -1 : exited_.get()};
}

void ProcessGroup::ready(size_t slot, short revents) {
  if (done_ || slot > 2 || !(revents & (POLLIN | POLLHUP | POLLERR))) return;
  if (slot == 2) {
    reap();
    return;
  }
  Fd& fd = slot == 0 ? out_r_ : err_r_;
  if (!fd.valid()) return;
  char buf[16384];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n > 0) {
    if (spec_.output) spec_.output(slot == 1, std::string_view(buf, static_cast<size_t>(n)));
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    drop(fd);  // the other end is closed everywhere
  }
}

void ProcessGroup::reap() {
  if (reaped_ || pid_ <= 0) return;
  pid_t w = ::waitpid(pid_, &status_, WNOHANG);
  if (w == pid_) {
    reaped_ = true;
    drop(exited_);
  }
}

void ProcessGroup::settle() {
  if (done_) return;
  // Stop requests: timeout and cancellation end the whole group.
  const int64_t now = mono_ms();
  if (!term_sent_at_) {
    if (spec_.cancel && spec_.cancel->load()) {
      why_stopped_ = "cancelled";
      out_.cancelled = true;
    } else if (spec_.timeout && now - started_ms_ >= spec_.timeout->count()) {
      why_stopped_ = "timed out after " + format_duration(*spec_.timeout);
      out_.timed_out = true;
    }
    if (!why_stopped_.empty()) {
      ::kill(-pid_, SIGTERM);
      term_sent_at_ = now;
    }
  } else if (!killed_ && now - term_sent_at_ >= spec_.kill_grace.count()) {
    ::kill(-pid_, SIGKILL);
    killed_ = true;
  }
  if (!exited_.valid()) reap();  // no pidfd: looked for on every settle
  if (reaped_ && !out_r_.valid() && !err_r_.valid()) {
    // Nothing of the group may outlive the task.
    ::kill(-pid_, SIGKILL);
    done_ = true;
    if (WIFEXITED(status_)) out_.exit_code = WEXITSTATUS(status_);
    if (WIFSIGNALED(status_)) out_.signal = WTERMSIG(status_);
    out_.ok = !out_.cancelled && !out_.timed_out && WIFEXITED(status_) && WEXITSTATUS(status_) == 0;
    if (!out_.ok) out_.reason = why_stopped_.empty() ? describe_status(status_) : why_stopped_;
    return;
  }
  if (reaped_ && term_sent_at_ == 0) {
    // The shell is gone; whatever it left in its group (background jobs
    // holding the pipes) is part of the task and ends with it.
    ::kill(-pid_, SIGTERM);
    term_sent_at_ = now;
  }
}

int64_t ProcessGroup::wait_ms() const {
  if (done_) return 0;
  const int64_t now = mono_ms();
  int64_t w = -1;
  auto at = [&](int64_t due) {
    int64_t d = std::max<int64_t>(0, due - now);
    if (w < 0 || d < w) w = d;
  };
  if (!term_sent_at_ && spec_.cancel && spec_.cancel->load()) return 0;  // SIGTERM is due
  if (!term_sent_at_ && spec_.timeout) at(started_ms_ + spec_.timeout->count());
  if (term_sent_at_ && !killed_) at(term_sent_at_ + spec_.kill_grace.count());
  // Without a pidfd, the shell's end is looked for every few milliseconds
  // once its pipes are closed (it is exiting), else now and then.
  if (!reaped_ && !exited_.valid()) at(now + (out_r_.valid() || err_r_.valid() ? 200 : 2));
  if (self_polled_) at(now + 10);
  return w;
}

bool ProcessGroup::wait_once(int64_t max_ms) {
  auto fds = this->fds();
  pollfd p[3];
  for (size_t i = 0; i < 3; ++i) p[i] = {fds[i], POLLIN, 0};
  int64_t w = wait_ms();
  if (::poll(p, 3, static_cast<int>(w < 0 ? max_ms : std::min(w, max_ms))) < 0 && errno != EINTR) return false;
  for (size_t i = 0; i < 3; ++i)
    if (p[i].fd >= 0 && p[i].revents) ready(i, p[i].revents);
  settle();
  return true;
}

TaskOutcome run_process_group(const SpawnSpec& spec) {
  ProcessGroup group(spec);
  // A cancel flag is set by another thread: looked at every 200 ms.
  while (!group.done()) {
    if (!group.wait_once(200)) {
      TaskOutcome out;  // the group is killed as it goes
      out.reason = std::string("poll: ") + std::strerror(errno);
      return out;
    }
  }
  return group.take_outcome();
}

namespace {
SpawnSpec task_spec(const TaskContext& ctx) {
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
  return spec;
}
}  // namespace

std::unique_ptr<ProcessGroup> Executor::start(const TaskContext&) { return nullptr; }

TaskOutcome LocalExecutor::run(const TaskContext& ctx) { return run_process_group(task_spec(ctx)); }

std::unique_ptr<ProcessGroup> LocalExecutor::start(const TaskContext& ctx) {
  return std::make_unique<ProcessGroup>(task_spec(ctx));
}

}  // namespace rw::engine
