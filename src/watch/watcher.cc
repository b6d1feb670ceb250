#include "watch/watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <filesystem>
#include <set>

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

/// What the runner's PropertiesChanged signals leave behind.
struct RunnerSignals {
  bool dirty = true;  ///< the unit state read last may be stale
  uint64_t seen = 0;  ///< signals received so far
};

int on_properties_changed(sd_bus_message*, void* userdata, sd_bus_error*) {
  auto* s = static_cast<RunnerSignals*>(userdata);
  s->dirty = true;
  ++s->seen;
  return 0;
}

class Watcher {
 public:
  explicit Watcher(std::string build) : dir_(state::state_root(), build), fields_{build, "", "", ""} {}
  int run();

 private:
  Observation observe();
  /// Reads the runner unit's state from the manager (when signals said it
  /// changed, or when `force`d).
  void refresh_runner(bool force);
  void watch_subruns();
  void act(const Decision& d, const Observation& o);
  void arm_timer(int64_t at_ms);
  /// The delivery of this message ended without success: recorded so, or
  /// already attempted by this watcher (each message gets one attempt).
  bool delivery_failed(const std::string& key) const;
  /// Stops runner@ the way cancel-run does (its tasks, local and remote,
  /// are aborted), leaving the state the watcher recorded.
  void stop_runner(const std::string& why);
  /// Runs every bus message already queued; true if a new signal about the
  /// runner arrived (a state read long ago does not wake the loop again).
  bool drain_bus();

  state::RunDir dir_;
  sd::LogFields fields_;
  std::optional<sd::Bus> bus_;
  std::string runner_unit_;
  RunnerSignals runner_signals_;
  sd::UnitState runner_;
  bool runner_known_ = false;
  Fd ino_;
  Fd timer_;
  std::set<std::string> watched_subruns_;
  bool subruns_dir_watched_ = false;
  int64_t armed_at_ = -1;
  int64_t terminal_seen_ms_ = 0;
  std::set<std::string> attempted_;  ///< message keys ("" = the run) delivered or tried
};

bool Watcher::delivery_failed(const std::string& key) const {
  if (attempted_.count(key)) return true;
  auto rec = dir_.load_notification(key);
  return rec.ok() && rec->status == "failed";
}

void Watcher::stop_runner(const std::string& why) {
  if (!bus_) return;
  sd::log_warning(fields_, "stopping " + runner_unit_ + ": " + why);
  auto r = bus_->stop_unit(runner_unit_, Millis(600'000));
  if (!r) sd::log_error(fields_, "cannot stop " + runner_unit_ + ": " + r.error().message);
  else if (*r != "done") sd::log_error(fields_, "stopping " + runner_unit_ + " ended with '" + *r + "'");
}

bool Watcher::drain_bus() {
  // Synchronous calls (unit state, stop) read whatever signals arrived
  // meanwhile into sd-bus's queue; poll() on the socket would not see them.
  // An error shows up again in the poll loop, which reports it.
  const uint64_t before = runner_signals_.seen;
  (void)sd::process_queued(bus_->get());
  return runner_signals_.seen != before;
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
  if (o.state_readable && !state::is_terminal(o.state.status)) refresh_runner(false);
  o.runner_known = runner_known_;
  o.runner = runner_;
  // Progress: output, events and task transitions all touch one of these.
  if (o.state_readable && state::is_terminal(o.state.status) && terminal_seen_ms_ == 0) terminal_seen_ms_ = o.now_ms;
  o.terminal_seen_ms = terminal_seen_ms_;
  o.last_progress_ms = std::max({mtime_ms(dir_.runner_log()), mtime_ms(dir_.events_file()),
                                 mtime_ms(dir_.state_file()), o.state.started_at_ms, o.state.created_at_ms});
  // Task output counts byte by byte (progress bars, dots): looked at only
  // when a HUNG deadline is due, since it never wakes the watcher.
  if (o.state.hung_after_ms > 0 && o.now_ms >= o.last_progress_ms + o.state.hung_after_ms)
    o.last_progress_ms = std::max(o.last_progress_ms, newest_task_output_ms(dir_.tasks_dir()));
  return o;
}

void Watcher::refresh_runner(bool force) {
  if (!(runner_signals_.dirty || force) || !bus_) return;
  runner_signals_.dirty = false;
  auto u = bus_->unit_state(runner_unit_);
  if (u.ok()) {
    runner_ = *u;
    runner_known_ = true;
  } else {
    runner_signals_.dirty = true;
    sd::log_warning(fields_, "cannot read " + runner_unit_ + ": " + u.error().message);
  }
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
  itimerspec its{};
  if (at_ms > 0) {
    its.it_value.tv_sec = at_ms / 1000;
    its.it_value.tv_nsec = (at_ms % 1000) * 1'000'000;
  }
  ::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &its, nullptr);
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
  if (!ino_.valid() || !timer_.valid()) {
    sd::log_error(fields_, errno_message("inotify/timerfd", errno) +
                               (errno == EMFILE ? " (raise fs.inotify.max_user_instances: see INSTALL.md)" : ""));
    return 1;
  }
  // Everything that matters is written by rename (state, markers) or closed
  // after a write (events): neither output nor heartbeats wake us.
  ::inotify_add_watch(ino_.get(), dir_.path().c_str(),
                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF |
                          IN_MOVE_SELF);

  auto bus = sd::Bus::connect();
  sd_bus_slot* slot = nullptr;
  if (!bus) {
    sd::log_error(fields_, bus.error().message);
    return 1;  // systemd restarts us; without the bus we cannot tell TERMINATED
  }
  bus_.emplace(std::move(bus).value());
  auto path = bus_->unit_path(runner_unit_);
  if (!path) {
    sd::log_error(fields_, path.error().message);
    return 1;
  }
  int r = sd_bus_match_signal(bus_->get(), &slot, "org.freedesktop.systemd1", path->c_str(),
                              "org.freedesktop.DBus.Properties", "PropertiesChanged", on_properties_changed,
                              &runner_signals_);
  if (r < 0 || !bus_->subscribe().ok()) {
    sd::log_error(fields_, "cannot follow " + runner_unit_ + " on the bus");
    return 1;
  }

  sd::notify_ready("watching " + runner_unit_);
  sd::log_info(fields_, "watching run " + dir_.build());
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
    sd::notify_status(std::string(to_string(o.state.status)) +
                      (o.state.progress.empty() ? "" : ": " + o.state.progress));

    bool woke = false;
    while (!woke) {
      if (drain_bus()) break;
      int bus_fd = sd_bus_get_fd(bus_->get());
      int bus_events = sd_bus_get_events(bus_->get());
      pollfd fds[3] = {{ino_.get(), POLLIN, 0}, {timer_.get(), POLLIN, 0},
                       {bus_fd, static_cast<short>(bus_events > 0 ? bus_events : POLLIN), 0}};
      int pr = ::poll(fds, 3, -1);
      if (pr < 0 && errno != EINTR) {
        sd::log_error(fields_, errno_message("poll", errno));
        rc = 1;
        goto out;
      }
      if (fds[0].revents & POLLIN) {
        char buf[8192];
        while (::read(ino_.get(), buf, sizeof buf) > 0) {
        }
        woke = true;
      }
      if (fds[1].revents & POLLIN) {
        uint64_t n;
        (void)!::read(timer_.get(), &n, sizeof n);
        armed_at_ = -1;
        woke = true;
      }
      if (fds[2].revents) {
        const uint64_t before = runner_signals_.seen;
        for (;;) {
          int p = sd_bus_process(bus_->get(), nullptr);
          if (p < 0) {
            sd::log_error(fields_, "lost the service manager connection");
            rc = 1;
            goto out;
          }
          if (p == 0) break;
        }
        if (runner_signals_.seen != before) woke = true;
      }
    }
  }
out:
  sd_bus_slot_unref(slot);
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
