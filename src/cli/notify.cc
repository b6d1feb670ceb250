// runwarden notify --resend BUILD: delivers messages whose post failed.

#include <cstdio>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/build_name.h"
#include "common/files.h"
#include "state/store.h"
#include "systemd/bus.h"
#include "watch/post.h"

namespace rw::cli {
namespace {

/// Whether watcher@BUILD may still be delivering: true when it is running,
/// or when the manager cannot tell us.
bool watcher_may_deliver(const std::string& build) {
  auto bus = systemd::Bus::connect();
  if (!bus) return true;
  auto st = bus->unit_state(watcher_unit(build));
  return !st || !st->gone();
}

int resend(const std::string& build) {
  int rc;
  if (!check_build(build, &rc)) return rc;
  state::RunDir dir(state::state_root(), build);
  if (!dir.exists()) return fail(err("no run named " + build + " (see: runwarden list)", kNotFound));
  std::vector<std::string> keys{""};
  for (const auto& k : dir.subrun_keys()) keys.push_back(k);
  int due = 0, sent = 0, failed = 0, busy = 0;
  for (const auto& key : keys) {
    if (path_exists(dir.posted_marker_for(key))) continue;
    auto rec = dir.load_notification(key);
    if (!rec) continue;  // nothing was ever due for this one
    std::string what = key.empty() ? "run message" : "sub-run " + key;
    ++due;
    // "pending" is a delivery in progress, or one a watcher died in the
    // middle of (a restarted watcher takes it up). Only a stopped watcher
    // leaves it to us.
    if (rec->status != "failed" && watcher_may_deliver(build)) {
      ++busy;
      fail(err(what + " is still being delivered by " + watcher_unit(build) + "; resend only sends messages "
                   "whose delivery finally failed",
               kConflict));
      continue;
    }
    auto r = watch::deliver(dir, key, rec->payload, watch::DeliverBy::Resend);
    if (r.ok() && *r) {
      ++sent;
      std::printf("sent %s\n", what.c_str());
    } else if (!r.ok() && r.error().code == kConflict) {
      ++busy;
      fail(r.error());
    } else {
      ++failed;
      fail(r.ok() ? err(what + ": not sent (delivered meanwhile)") : r.error());
    }
  }
  if (due == 0) std::printf("nothing to resend for %s: every due message was delivered\n", build.c_str());
  return failed ? kFailed : busy ? kConflict : kOk;
}

}  // namespace

void add_notify(CLI::App& app, Action* action) {
  auto build = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("notify", "Deliver chat messages whose post failed (kept in notification.json)");
  cmd->add_option("--resend", *build, "Build whose pending messages to send")->required();
  cmd->footer(
      "Sends the messages whose delivery finally failed (status \"failed\" in notification.json).\n"
      "A message is never sent twice: delivered ones have a posted.marker and are skipped, and one lock\n"
      "covers the check, the post and the marker.\n"
      "Exit codes: 0 sent (or nothing to send), 1 a post failed again, 3 watcher@BUILD is still delivering,\n"
      "4 no such run.\n"
      "Example:\n"
      "  runwarden notify --resend nightly-42");
  cmd->callback([=] { *action = [=] { return resend(*build); }; });
}

}  // namespace rw::cli
