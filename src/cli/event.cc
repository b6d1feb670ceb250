// runwarden event: lets runner commands report sub-runs and progress.

#include <cstdlib>

#include "cli/cli.h"
#include "cli/common.h"
#include "state/events.h"

namespace rw::cli {
namespace {

int append_event(const state::Event& e, const std::string& file_opt) {
  std::string file = file_opt;
  if (file.empty()) {
    const char* env = std::getenv("RUNWARDEN_EVENTS");
    if (!env || !*env)
      return fail(err("RUNWARDEN_EVENTS is not set: run this from a runner command, or pass --events-file", kUsage));
    file = env;
  }
  // Checked with the reader's own rules first: bad input is a usage error.
  if (auto back = state::parse_event_line(state::format_event_line(e)); !back)
    return fail(err(back.error().message, kUsage));
  if (auto s = state::append_event(file, e); !s) return fail(s.error());
  return kOk;
}

}  // namespace

void add_event(CLI::App& app, Action* action) {
  auto* cmd = app.add_subcommand("event", "Report a sub-run or progress from inside a runner command");
  cmd->footer(
      "Writes one JSON line to $RUNWARDEN_EVENTS, e.g.\n"
      "  runwarden event subrun linux --status RUNNING\n"
      "  runwarden event subrun linux --status COMPLETED --exit-code 0 --message '412 passed'\n"
      "  runwarden event progress 'suite 3/7'\n"
      "Line format: {\"type\":\"subrun\",\"key\":K,\"status\":\"RUNNING|COMPLETED|FAILED\",\"exit_code\":N,\n"
      "             \"message\":TEXT,\"log\":PATH}  or  {\"type\":\"progress\",\"message\":TEXT}");
  cmd->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  cmd->add_option("--events-file", *file, "Events file (default: $RUNWARDEN_EVENTS)");

  auto sub = std::make_shared<state::Event>();
  auto status = std::make_shared<std::string>("RUNNING");
  auto code = std::make_shared<int>(-1);
  auto* s = cmd->add_subcommand("subrun", "A sub-run started or ended (one chat message when it ends)");
  s->add_option("key", sub->key, "Sub-run key: letters, digits, '.', '_', '-'")->required();
  s->add_option("--status", *status, "RUNNING, COMPLETED or FAILED")->check(CLI::IsMember({"RUNNING", "COMPLETED", "FAILED"}));
  s->add_option("--exit-code", *code, "Exit code of the sub-run");
  s->add_option("--message", sub->message, "Short summary shown in the chat message");
  s->add_option("--log", sub->log, "Log file of the sub-run; its tail goes into a failure message");
  s->callback([=] {
    *action = [=] {
      state::Event e = *sub;
      e.type = "subrun";
      e.status = state::parse_run_status(*status);
      if (*code >= 0) e.exit_code = *code;
      return append_event(e, *file);
    };
  });

  auto text = std::make_shared<std::string>();
  auto* p = cmd->add_subcommand("progress", "Progress text (shown in runwarden status)");
  p->add_option("text", *text, "Progress text")->required();
  p->callback([=] {
    *action = [=] {
      state::Event e;
      e.type = "progress";
      e.message = *text;
      return append_event(e, *file);
    };
  });
}

}  // namespace rw::cli
