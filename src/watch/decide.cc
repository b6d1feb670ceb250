#include "watch/decide.h"

#include <sys/inotify.h>

#include "common/files.h"

namespace rw::watch {

using state::RunStatus;

Decision decide(const Observation& o) {
  Decision d;
  if (o.cancelled_marker) {
    d.exit = true;
    d.reason = "cancelled: no message";
    return d;
  }
  if (!o.state_readable) {
    d.verdict = RunStatus::Unknown;
    d.reason = "state unreadable: " + o.state_error;
    d.exit = true;
    return d;
  }
  const auto& s = o.state;
  if (s.status == RunStatus::Unknown) {
    d.verdict = RunStatus::Unknown;
    d.reason = "state has a status the watcher does not know";
    d.exit = true;
    return d;
  }
  if (s.status == RunStatus::Cancelled) {
    d.exit = true;
    d.reason = "cancelled: no message";
    return d;
  }
  // Sub-runs post as they end, while the run goes on.
  if (s.categorized) {
    for (const auto& sub : o.subruns) {
      if (sub.readable && state::is_postable(sub.state.status) && !sub.posted && !sub.delivery_failed)
        d.post_subruns.push_back(sub.key);
    }
  }
  if (state::is_terminal(s.status)) {
    if (state::is_postable(s.status) && !o.posted_marker && !o.delivery_failed) {
      // A categorized run speaks through its sub-runs; only a run that failed
      // before reporting any sub-run posts for itself, so it is not silent.
      bool any_subrun_posts = false;
      for (const auto& sub : o.subruns) any_subrun_posts |= sub.readable && state::is_postable(sub.state.status);
      d.post_run = !s.categorized || (s.status == RunStatus::Failed && !any_subrun_posts);
    }
    d.reason = std::string("run ") + to_string(s.status);
    // The runner closes every sub-run before it writes its own end, so once
    // all are closed nothing more can arrive. Only sub-runs left open (a
    // runner that could not close them) get the grace window for late
    // reports; without an end time it starts when the watcher saw the end.
    bool all_closed = true;
    for (const auto& sub : o.subruns) all_closed &= sub.readable && state::is_terminal(sub.state.status);
    if (s.categorized && state::is_postable(s.status) && !all_closed) {
      int64_t base = s.ended_at_ms ? s.ended_at_ms : (o.terminal_seen_ms ? o.terminal_seen_ms : o.now_ms);
      int64_t end = base + s.subrun_grace_ms;
      if (o.now_ms < end) {
        d.wake_at_ms = end;
        return d;
      }
    }
    d.exit = true;
    return d;
  }
  // PENDING or RUNNING. A unit state from before this run was created (a
  // reused name's previous runner@ that failed) says nothing about this run.
  const int64_t run_born = s.created_at_ms ? s.created_at_ms : s.started_at_ms;
  const bool runner_current = o.runner_known && o.runner.state_change_ms >= run_born;
  if (runner_current && o.runner.gone() && (s.status == RunStatus::Running || o.runner.active == "failed")) {
    d.verdict = RunStatus::Terminated;
    d.reason = "runner unit " + o.runner.active + " (" + (o.runner.result.empty() ? o.runner.sub : o.runner.result) +
               ") with no terminal state";
    d.exit = true;
    return d;
  }
  if (s.hung_after_ms > 0) {
    int64_t deadline = o.last_progress_ms + s.hung_after_ms;
    if (o.now_ms >= deadline) {
      d.verdict = RunStatus::Hung;
      d.reason = "no progress for " + std::to_string((o.now_ms - o.last_progress_ms) / 1000) + "s";
      d.exit = true;
      return d;
    }
    d.wake_at_ms = deadline;
  }
  return d;
}

Look look_for(std::string_view name, uint32_t mask) {
  const bool dir = (mask & IN_ISDIR) != 0;
  // write_file_atomic's temporary file: made, written and renamed over its
  // file, whose IN_MOVED_TO is the change that matters.
  if (!dir && is_atomic_temp(name)) return Look::None;
  // The runner writes these for every task; each look reads the whole run.
  const bool progress = name == "journal.jsonl" || name == "state.lock" || name == "runner.log" ||
                        name == "events.jsonl";
  return progress && (mask & ~(IN_CLOSE_WRITE | IN_ISDIR)) == 0 ? Look::Later : Look::Now;
}

}  // namespace rw::watch
