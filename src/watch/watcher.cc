#include "watch/watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>
#include <string_view>

#include "common/build_name.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/files.h"
#include "state/store.h"
#include "systemd/bus.h"
#include "systemd/journal.h"
#include "systemd/notify.h"
#include "watch/decide.h"
#include "watch/post.h"

namespace rw::watch {

namespace sd = rw::systemd;
using state::RunStatus;

namespace {

int64_t mtime_ms(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

/// Newest modification time of the task logs (tasks/<stage>/<task>.log):
/// every byte a task prints lands there, lines or not.
int64_t newest_task_output_ms(const std::string& tasks_dir) {
  int64_t newest = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(tasks_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 1) it.disable_recursion_pending();
    if (it->is_regular_file(ec)) newest = std::max(newest, mtime_ms(it->path().string()));
  }
  return newest;
}

/// A pidfd: readable once the process has exited. -1 (errno set) if none.
int pidfd_open(uint32_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)); }

/// Sets a timerfd to fire once at `ms` (relative, or absolute with
/// TFD_TIMER_ABSTIME); 0 disarms it.
void set_timer_ms(int fd, int64_t ms, int flags = 0) {
  itimerspec its{};
  its.it_value.tv_sec = ms / 1000;
  its.it_value.tv_nsec = (ms % 1000) * 1'000'000;
  ::timerfd_settime(fd, flags, &its, nullptr);
}

/// Re-reads of a unit that is between states start this soon and double up
/// to the cap (a restart waits RestartSec=2s).
constexpr int64_t kRecheckFirstMs = 50;
constexpr int64_t kRecheckMaxMs = 2000;

/// Writes that only say the run moved on (the runner's journal of task
/// transitions, its lock, its log, a command's `event progress`) are looked
/// at this long after the first one, all together: the runner makes them for
/// every task, and each look reads the whole run. A terminal state is
/// written by rename (state.json), so it still wakes the watcher at once,
/// and so do markers, sub-runs and the runner's exit.
constexpr int64_t kProgressLookMs = 1000;

/// Drains the inotify fd: the most any of its events asks for.
Look drain_inotify(int fd) {
  Look most = Look::None;
  alignas(inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t off = 0; off + ssize_t(sizeof(inotify_event)) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
      // Overflow (wd -1): anything may have changed.
      most = std::max(most, ev->wd < 0 ? Look::Now : look_for(name, ev->mask));
      off += ssize_t(sizeof(inotify_event)) + ev->len;
    }
  }
  return most;
}

class Watcher {
 public:
  explicit Watcher(std::string build) : dir_(state::state_root(), build), fields_{build, "", "", ""} {}
  int run();

 private:
  Observation observe();
  /// Reads the runner unit's state from the manager over a connection opened
  /// for it (when its main process exited, a re-read is due, or `force`d),
  /// and follows its main process with a pidfd.
  void refresh_runner(bool force);
  /// Follows `pid`, runner@'s MainPID in `u`, with a pidfd; reads the unit
  /// again after opening it, since the pid may have been reused meanwhile.
  void follow_main_pid(sd::Bus& bus, sd::UnitState* u);
  /// The unit is between states with no process to follow: read it again
  /// after a backoff.
  void recheck_later();
  void watch_subruns();
  void act(const Decision& d, const Observation& o);
  void arm_timer(int64_t at_ms);
  /// The delivery of this message ended without success: recorded so, or
  /// already attempted by this watcher (each message gets one attempt).
  bool delivery_failed(const std::string& key) const;
  /// Stops runner@ the way cancel-run does (its tasks, local and remote,
  /// are aborted), leaving the state the watcher recorded.
  void stop_runner(const std::string& why);

  state::RunDir dir_;
  sd::LogFields fields_;
  std::string runner_unit_;
  sd::UnitState runner_;
  bool runner_known_ = false;
  bool runner_dirty_ = true;  ///< the unit state read last may be stale
  Fd pidfd_;                  ///< runner@'s main process, while there is one
  uint32_t pid_ = 0;          ///< ... and its pid
  int64_t backoff_ms_ = 0;    ///< the next re-read's delay; 0: none pending
  Fd ino_;
  Fd timer_;
  Fd recheck_;  ///< CLOCK_MONOTONIC: the next re-read of a unit between states
  Fd progress_;  ///< CLOCK_MONOTONIC: the look after progress-only writes
  bool progress_armed_ = false;
  std::set<std::string> watched_subruns_;
  bool subruns_dir_watched_ = false;
  int64_t armed_at_ = -1;
  int64_t terminal_seen_ms_ = 0;
  std::set<std::string> attempted_;  ///< message keys ("" = the run) delivered or tried
  /// The STATUS= last sent: the watcher wakes for every write to the run's
  /// files, and each notification costs the service manager a message, a
  /// lookup of the sender's unit and a property change to signal.
  std::string status_sent_;
};

bool Watcher::delivery_failed(const std::string& key) const {
  if (attempted_.count(key)) return true;
  auto rec = dir_.load_notification(key);
  return rec.ok() && rec->status == "failed";
}

void Watcher::stop_runner(const std::string& why) {
  sd::log_warning(fields_, "stopping " + runner_unit_ + ": " + why);
  auto bus = sd::Bus::connect();
  auto r = bus ? bus->stop_unit(runner_unit_, Millis(600'000)) : Result<std::string>(bus.error());
  if (!r) sd::log_error(fields_, "cannot stop " + runner_unit_ + ": " + r.error().message);
  else if (*r != "done") sd::log_error(fields_, "stopping " + runner_unit_ + " ended with '" + *r + "'");
}

void Watcher::watch_subruns() {
  const uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE;
  if (!subruns_dir_watched_ && path_exists(dir_.subruns_dir())) {
    if (::inotify_add_watch(ino_.get(), dir_.subruns_dir().c_str(), kMask) >= 0) subruns_dir_watched_ = true;
  }
  for (const auto& key : dir_.subrun_keys()) {
    if (watched_subruns_.count(key)) continue;
    if (::inotify_add_watch(ino_.get(), dir_.subrun_dir(key).c_str(), kMask) >= 0) watched_subruns_.insert(key);
  }
}

Observation Watcher::observe() {
  Observation o;
  o.now_ms = now_ms();
  auto st = dir_.load();
  o.state_readable = st.ok();
  if (st.ok()) o.state = std::move(st).value();
  else o.state_error = st.error().message;
  o.cancelled_marker = path_exists(dir_.cancelled_marker());
  o.posted_marker = path_exists(dir_.posted_marker());
  o.delivery_failed = delivery_failed("");
  watch_subruns();
  for (const auto& key : dir_.subrun_keys()) {
    SubrunObservation s;
    s.key = key;
    auto sub = dir_.load_subrun(key);
    s.readable = sub.ok();
    if (sub.ok()) s.state = std::move(sub).value();
    s.posted = path_exists(dir_.posted_marker_for(key));
    s.delivery_failed = !s.posted && delivery_failed(key);
    o.subruns.push_back(std::move(s));
  }
  // The unit only matters while the run has not ended; a finished run is
  // posted without asking the (possibly busy) manager anything.
  if (o.state_readable && !state::is_terminal(o.state.status)) {
    // No process followed (the unit was gone when last read): a change to
    // the run's files may mean a runner started since, so read it again.
    if (!pidfd_.valid()) runner_dirty_ = true;
    refresh_runner(false);
  }
  o.runner_known = runner_known_;
  o.runner = runner_;
  // Progress: output, events and task transitions all touch one of these.
  if (o.state_readable && state::is_terminal(o.state.status) && terminal_seen_ms_ == 0) terminal_seen_ms_ = o.now_ms;
  o.terminal_seen_ms = terminal_seen_ms_;
  o.last_progress_ms = std::max({mtime_ms(dir_.runner_log()), mtime_ms(dir_.events_file()),
                                 mtime_ms(dir_.state_file()), mtime_ms(dir_.journal_file()),
                                 o.state.started_at_ms, o.state.created_at_ms});
  // Task output counts byte by byte (progress bars, dots): looked at only
  // when a HUNG deadline is due, since it never wakes the watcher.
  if (o.state.hung_after_ms > 0 && o.now_ms >= o.last_progress_ms + o.state.hung_after_ms)
    o.last_progress_ms = std::max(o.last_progress_ms, newest_task_output_ms(dir_.tasks_dir()));
  return o;
}

void Watcher::refresh_runner(bool force) {
  if (!(runner_dirty_ || force)) return;
  // A connection for this read only: the watcher holds none while it waits,
  // and the manager has no subscriber to send this run's signals to.
  auto bus = sd::Bus::connect();
  auto u = bus ? bus->unit_state(runner_unit_) : Result<sd::UnitState>(bus.error());
  if (!u) {
    sd::log_warning(fields_, "cannot read " + runner_unit_ + ": " + u.error().message);
    recheck_later();
    return;
  }
  if (u->main_pid != pid_) {
    pidfd_ = Fd();
    pid_ = 0;
  }
  if (u->main_pid != 0 && pid_ == 0) follow_main_pid(*bus, &*u);
  runner_ = *u;
  runner_known_ = true;
  runner_dirty_ = false;
  // Settled: a process to follow, or no process and none coming. Anything
  // else (a start job queued, activating before the fork, auto-restart,
  // stopping leftovers after the main process) is read again shortly.
  if (pid_ != 0 || u->gone()) {
    backoff_ms_ = 0;
    set_timer_ms(recheck_.get(), 0);
  } else {
    recheck_later();
  }
}

void Watcher::follow_main_pid(sd::Bus& bus, sd::UnitState* u) {
  for (int attempt = 0; attempt < 3 && u->main_pid != 0; ++attempt) {
    Fd fd(pidfd_open(u->main_pid));
    if (!fd.valid()) {
      // ESRCH: it exited already; the unit is read again shortly.
      if (errno != ESRCH) sd::log_warning(fields_, errno_message("pidfd_open", errno));
      return;
    }
    auto again = bus.unit_state(runner_unit_);
    if (!again) return;
    const uint32_t opened = u->main_pid;
    *u = *again;
    if (u->main_pid == opened) {
      pidfd_ = std::move(fd);
      pid_ = opened;
      return;
    }
  }
}

void Watcher::recheck_later() {
  backoff_ms_ = backoff_ms_ == 0 ? kRecheckFirstMs : std::min(backoff_ms_ * 2, kRecheckMaxMs);
  set_timer_ms(recheck_.get(), backoff_ms_);
}

void Watcher::act(const Decision& d, const Observation& o) {
  for (const auto& key : d.post_subruns) {
    attempted_.insert(key);
    auto r = deliver(dir_, key, "", DeliverBy::Watcher);
    if (!r) sd::log_error(fields_, r.error().message);
    else if (*r) sd::log_info(fields_, "posted the message of sub-run " + key);
  }
  if (d.post_run) {
    attempted_.insert("");
    auto r = deliver(dir_, "", "", DeliverBy::Watcher);
    if (!r) sd::log_error(fields_, r.error().message);
    else if (*r) sd::log_info(fields_, std::string("posted the run message: ") + to_string(o.state.status));
  }
  if (d.verdict && (*d.verdict == RunStatus::Terminated || *d.verdict == RunStatus::Hung)) {
    RunStatus v = *d.verdict;
    auto s = dir_.update([&](state::RunState& cur) {
      if (state::is_terminal(cur.status)) return false;  // the runner got there first
      cur.status = v;
      cur.decided_by = "watcher";
      cur.reason = d.reason;
      cur.ended_at_ms = o.now_ms;
      cur.progress = std::string(to_string(v)) + ": " + d.reason;
      return true;
    });
    if (!s) sd::log_error(fields_, "cannot record " + std::string(to_string(v)) + ": " + s.error().message);
  }
  if (d.verdict) sd::log_warning(fields_, std::string(to_string(*d.verdict)) + ": " + d.reason + " (no message)");
  // A hung run must not hold its tasks, its hosts and its build name.
  if (d.verdict == RunStatus::Hung) stop_runner("the run is HUNG");
}

void Watcher::arm_timer(int64_t at_ms) {
  if (at_ms == armed_at_) return;
  armed_at_ = at_ms;
  set_timer_ms(timer_.get(), std::max<int64_t>(at_ms, 0), TFD_TIMER_ABSTIME);
}

int Watcher::run() {
  if (!dir_.exists()) {
    sd::log_error(fields_, "no run directory " + dir_.path());
    sd::notify_ready("no run directory");
    return 0;
  }
  runner_unit_ = runner_unit(dir_.build());
  ino_ = Fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  timer_ = Fd(::timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK));
  recheck_ = Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  progress_ = Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!ino_.valid() || !timer_.valid() || !recheck_.valid() || !progress_.valid()) {
    sd::log_error(fields_, errno_message("inotify/timerfd", errno) +
                               (errno == EMFILE ? " (raise fs.inotify.max_user_instances: see INSTALL.md)" : ""));
    return 1;
  }
  // Everything that matters is written by rename (state, markers) or closed
  // after a write (events): neither output nor heartbeats wake us.
  ::inotify_add_watch(ino_.get(), dir_.path().c_str(),
                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF |
                          IN_MOVE_SELF);

  // Without the service manager we cannot tell TERMINATED: systemd
  // restarts us until it answers. A run that has already ended needs no
  // manager: its messages are posted (or were) without asking it anything,
  // so the post waits for no connection and survives a bus that is down.
  std::string manager = "not asked, the run has ended";
  if (auto st = dir_.load(); !st || !state::is_terminal(st->status)) {
    auto bus = sd::Bus::connect();
    if (!bus) {
      sd::log_error(fields_, bus.error().message);
      return 1;
    }
    manager = bus->address();
  }

  sd::notify_ready("watching " + runner_unit_);
  sd::log_info(fields_, "watching run " + dir_.build() + " (service manager: " + manager + ")");
  int rc = 0;
  for (;;) {
    Observation o = observe();
    Decision d = decide(o);
    if (d.verdict == RunStatus::Terminated) {
      // The unit state may be older than the file (a runner that just
      // started) or the file older than the unit state (a runner that wrote
      // its end and exited since): ask the manager now, then read the file
      // again. A runner writes its terminal state before it exits, so what
      // is still not terminal after a fresh "gone" really ended without one.
      refresh_runner(true);
      o = observe();
      d = decide(o);
    }
    act(d, o);
    if (d.exit) {
      sd::notify_stopping(d.reason);
      sd::log_info(fields_, "watcher done: " + d.reason);
      break;
    }
    arm_timer(d.wake_at_ms);
    std::string status = std::string(to_string(o.state.status)) +
                         (o.state.progress.empty() ? "" : ": " + o.state.progress);
    if (status != status_sent_) {
      sd::notify_status(status);
      status_sent_ = std::move(status);
    }

    // Idle means blocked here: the run directory, the HUNG/grace timer, a
    // pending re-read of the unit, a pending look at progress, and the
    // runner's main process exiting.
    bool woke = false;
    if (progress_armed_) {
      // This look covers whatever the pending one was for.
      set_timer_ms(progress_.get(), 0);
      progress_armed_ = false;
    }
    // Nothing of sd-bus is alive here (connections are opened per read):
    // the lazily loaded libsystemd goes until the next wake needs it.
    sd::release_libsystemd();
    while (!woke) {
      pollfd fds[5] = {{ino_.get(), POLLIN, 0},
                       {timer_.get(), POLLIN, 0},
                       {recheck_.get(), POLLIN, 0},
                       {pidfd_.valid() ? pidfd_.get() : -1, POLLIN, 0},
                       {progress_.get(), POLLIN, 0}};
      int pr = ::poll(fds, 5, -1);
      if (pr < 0 && errno != EINTR) {
        sd::log_error(fields_, errno_message("poll", errno));
        rc = 1;
        goto out;
      }
      if (fds[0].revents & POLLIN) {
        Look look = drain_inotify(ino_.get());
        if (look == Look::Now) {
          woke = true;
        } else if (look == Look::Later && !progress_armed_) {
          set_timer_ms(progress_.get(), kProgressLookMs);
          progress_armed_ = true;
        }
      }
      if (fds[4].revents & POLLIN) {
        uint64_t n;
        (void)!::read(progress_.get(), &n, sizeof n);
        progress_armed_ = false;
        woke = true;
      }
      if (fds[1].revents & POLLIN) {
        uint64_t n;
        (void)!::read(timer_.get(), &n, sizeof n);
        armed_at_ = -1;
        woke = true;
      }
      if (fds[2].revents & POLLIN) {
        uint64_t n;
        (void)!::read(recheck_.get(), &n, sizeof n);
        runner_dirty_ = true;
        woke = true;
      }
      if (fds[3].revents) {
        // The main process exited: a restart, a stop, or the end.
        pidfd_ = Fd();
        pid_ = 0;
        runner_dirty_ = true;
        woke = true;
      }
    }
  }
out:
  return rc;
}

}  // namespace

int run_watcher(const std::string& build) {
  if (auto s = validate_build_name(build); !s) {
    sd::log_error({}, s.error().message);
    return 2;
  }
  Watcher w(build);
  return w.run();
}

}  // namespace rw::watch
