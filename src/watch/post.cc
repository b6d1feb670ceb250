#include "watch/post.h"

#include <cstdlib>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/files.h"
#include "notify/secrets.h"
#include "notify/webhook.h"
#include "systemd/journal.h"

namespace rw::watch {

namespace sd = rw::systemd;

namespace {

constexpr size_t kLogTailBytes = 4000;

std::string tail_of(const std::string& path) {
  auto t = read_tail(path, kLogTailBytes);
  return t.ok() ? *t : "";
}

/// `path` with every link resolved, if it exists.
std::optional<std::string> real_path(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r) return std::nullopt;
  std::string out(r);
  std::free(r);
  return out;
}

/// Whether `path` (resolved) is inside directory `dir` (resolved).
bool inside(const std::string& path, const std::string& dir) {
  auto d = real_path(dir);
  return d && path.size() > d->size() && path.compare(0, d->size(), *d) == 0 && path[d->size()] == '/';
}

/// A sub-run's log as reported by its command, if it is a file of the run:
/// inside the run's workdir or its run directory. Anything else (an
/// absolute path elsewhere, a link leading out) is not read: its tail would
/// go to the chat.
std::optional<std::string> contained_log(const state::RunDir& dir, const state::RunState& run,
                                         const std::string& log) {
  std::string p = log;
  if (!p.empty() && p[0] != '/' && !run.workdir.empty()) p = run.workdir + "/" + p;
  auto r = real_path(p);
  if (!r) return std::nullopt;
  if ((!run.workdir.empty() && inside(*r, run.workdir)) || inside(*r, dir.path())) return r;
  return std::nullopt;
}

notify::RetryPolicy policy_from_env() {
  notify::RetryPolicy p;
  // Tests and impatient operators can shorten the backoff.
  if (const char* v = std::getenv("RUNWARDEN_NOTIFY_ATTEMPTS"); v && *v) p.max_attempts = std::max(1, std::atoi(v));
  if (const char* v = std::getenv("RUNWARDEN_NOTIFY_BASE_DELAY_MS"); v && *v)
    p.base_delay = Millis(std::max(0, std::atoi(v)));
  return p;
}

}  // namespace

notify::MessageInput message_for(const state::RunDir& dir, const state::RunState& run, const std::string& subrun) {
  notify::MessageInput in;
  in.build = run.build;
  in.meta = run.meta;
  in.host = run.host;
  in.mention = run.mention_on_failure;
  if (subrun.empty()) {
    in.status = to_string(run.status);
    in.started_at_ms = run.started_at_ms ? run.started_at_ms : run.created_at_ms;
    in.ended_at_ms = run.ended_at_ms;
    in.exit_code = run.exit_code;
    in.signal = run.signal;
    in.reason = run.reason;
    if (run.failure) {
      in.failed_stage = run.failure->stage;
      in.failed_task = run.failure->task;
      in.failed_target = run.failure->target;
    }
    if (run.status == state::RunStatus::Failed)
      in.log_tail = tail_of(run.failure && !run.failure->log.empty() ? dir.file(run.failure->log) : dir.runner_log());
    return in;
  }
  in.subrun = subrun;
  auto sub = dir.load_subrun(subrun);
  if (!sub) return in;
  in.status = to_string(sub->status);
  in.started_at_ms = sub->started_at_ms;
  in.ended_at_ms = sub->ended_at_ms;
  in.exit_code = sub->exit_code;
  in.reason = sub->message;
  if (sub->status == state::RunStatus::Failed) {
    if (!sub->log.empty()) {
      if (auto log = contained_log(dir, run, sub->log)) in.log_tail = tail_of(*log);
      else in.log_tail = "(log " + sub->log + " not included: only files in the run's workdir or run directory are)";
    }
    if (in.log_tail.empty()) in.log_tail = tail_of(dir.runner_log());
  }
  return in;
}

Result<bool> deliver(const state::RunDir& dir, const std::string& subrun, const std::string& payload,
                     DeliverBy who) {
  sd::LogFields f{dir.build(), "", subrun, ""};
  const bool quiet = who == DeliverBy::Resend;
  std::string what = subrun.empty() ? "run message" : "sub-run " + subrun + " message";
  // One lock from the marker check to the marker write: a resend and a
  // watcher never both post. The watcher waits its turn; a resend does not.
  RW_ASSIGN(Fd lock, dir.lock_delivery(who == DeliverBy::Watcher));
  if (path_exists(dir.posted_marker_for(subrun))) return false;

  state::NotificationRecord rec;
  rec.subrun = subrun;
  rec.status = "pending";
  if (!payload.empty()) {
    rec.payload = payload;
    if (auto old = dir.load_notification(subrun); old.ok()) rec.attempts = old->attempts;
  }
  auto cfg = notify::load_webhook_config(notify::current_environment());
  if (rec.payload.empty()) {
    RW_ASSIGN(state::RunState run, dir.load());
    notify::WebhookConfig render_cfg = cfg.ok() ? *cfg : notify::WebhookConfig{};
    rec.payload = notify::render_message(message_for(dir, run, subrun), render_cfg).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  rec.updated_at_ms = now_ms();
  // Not fsynced: it is on the path to the post, and after a crash the
  // watcher renders the message again from the state.
  RW_TRY(dir.save_notification(rec, false));
  if (!cfg) {
    rec.status = "failed";
    rec.last_error = cfg.error().message;
    (void)dir.save_notification(rec);
    return err(what + " not sent: " + cfg.error().message);
  }

  notify::HttpTransport transport;
  auto result = notify::send_with_retries(
      transport, cfg->url, rec.payload, policy_from_env(),
      [](Millis d) { std::this_thread::sleep_for(d); },
      [&](const std::string& line) {
        if (!quiet) sd::log_info(f, what + ": " + line);
      });
  rec.attempts += result.attempts;
  rec.last_http_status = result.last_status;
  rec.updated_at_ms = now_ms();
  if (result.delivered) {
    // The marker first: from here on no watcher, restarted or not, posts again.
    RW_TRY(write_file_atomic(dir.posted_marker_for(subrun), format_time(now_ms()) + "\n", 0644));
    rec.status = "sent";
    rec.last_error.clear();
    rec.response = result.reason;
    (void)dir.save_notification(rec);
    return true;
  }
  rec.status = "failed";
  rec.last_error = result.reason;
  (void)dir.save_notification(rec);
  return err(what + " not delivered after " + std::to_string(result.attempts) + " attempt(s): " + result.reason +
             " (kept in " + dir.notification_file_for(subrun) + "; send it with: runwarden notify --resend " +
             dir.build() + ")");
}

}  // namespace rw::watch
