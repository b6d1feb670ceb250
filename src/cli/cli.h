#pragma once
// Subcommands. Each file in cli/ adds one subcommand to the app and, when the
// user chose it, sets *action to the function that runs it. main() parses,
// runs the action and returns its exit code.

#include <CLI/CLI.hpp>
#include <functional>

namespace rw::cli {

/// Exit codes that mean something to scripts.
enum Exit : int {
  kOk = 0,
  kFailed = 1,       ///< the operation failed (run FAILED, post failed, ...)
  kUsage = 2,        ///< bad input: build name, plan, options; nothing touched
  kConflict = 3,     ///< the build is running / locked by another start-run
  kNotFound = 4,     ///< no such build
  kTemplateFailed = 5,  ///< the template command failed; nothing started
  kSystemd = 6,      ///< the service manager refused or is unreachable
};

using Action = std::function<int()>;

/// Parses `args` (in reverse, as CLI11 takes a vector) and runs the action
/// a subcommand's callback set: --help and --version exit 0, a bad command
/// line kUsage.
int parse_and_run(CLI::App& app, std::vector<std::string> args, const Action& action);

void add_start(CLI::App& app, Action* action);
void add_cancel(CLI::App& app, Action* action);
void add_status(CLI::App& app, Action* action);
void add_list(CLI::App& app, Action* action);
void add_logs(CLI::App& app, Action* action);
void add_notify(CLI::App& app, Action* action);
void add_event(CLI::App& app, Action* action);
void add_validate(CLI::App& app, Action* action);  ///< validate + plan
void add_runner(CLI::App& app, Action* action);
void add_watcher(CLI::App& app, Action* action);
void add_exec(CLI::App& app, Action* action);
void add_serve(CLI::App& app, Action* action);
void add_testbed(CLI::App& app, Action* action);  ///< testbed ls|gc|down

}  // namespace rw::cli
