// runwarden notify --resend BUILD: delivers messages whose post failed.

#include <cstdio>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/files.h"
#include "state/store.h"
#include "watch/post.h"

namespace rw::cli {
namespace {

int resend(const std::string& build) {
  int rc;
  if (!check_build(build, &rc)) return rc;
  state::RunDir dir(state::state_root(), build);
  if (!dir.exists()) return fail(err("no run named " + build + " (see: runwarden list)", kNotFound));
  std::vector<std::string> keys{""};
  for (const auto& k : dir.subrun_keys()) keys.push_back(k);
  int pending = 0, sent = 0, failed = 0;
  for (const auto& key : keys) {
    if (path_exists(dir.posted_marker_for(key))) continue;
    auto rec = dir.load_notification(key);
    if (!rec) continue;  // nothing was ever due for this one
    ++pending;
    std::string what = key.empty() ? "run message" : "sub-run " + key;
    auto r = watch::deliver(dir, key, rec->payload, true);
    if (r.ok() && *r) {
      ++sent;
      std::printf("sent %s\n", what.c_str());
    } else {
      ++failed;
      fail(r.ok() ? err(what + ": not sent") : r.error());
    }
  }
  if (pending == 0) std::printf("nothing to resend for %s: every due message was delivered\n", build.c_str());
  return failed ? kFailed : kOk;
}

}  // namespace

void add_notify(CLI::App& app, Action* action) {
  auto build = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("notify", "Deliver chat messages whose post failed (kept in notification.json)");
  cmd->add_option("--resend", *build, "Build whose pending messages to send")->required();
  cmd->footer("A message is never sent twice: delivered ones have a posted.marker and are skipped.");
  cmd->callback([=] { *action = [=] { return resend(*build); }; });
}

}  // namespace rw::cli
