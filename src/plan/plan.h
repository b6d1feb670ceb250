#pragma once
// The plan: what a run executes. Parsed from YAML in plan/parser.cc (the only
// place that reads YAML), or built from --runner-command as a one-stage plan.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/duration.h"

namespace rw::plan {

/// Where in the plan file a thing was written (1-based), for error messages.
struct Mark {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const;  ///< "file:line:column"
};

/// A host (local or SSH) or a guest (SSH, reached `via` a host or guest).
struct Target {
  std::string name;
  bool local = false;
  bool guest = false;
  std::string address;
  int port = 22;
  std::string user = "root";
  std::string identity;     ///< private key file; empty: ssh-agent
  std::string known_hosts;  ///< empty: the default known_hosts file
  std::string host_key_policy = "strict";  ///< strict | accept-new
  std::string via;          ///< jump target name, empty when direct
  Mark mark;
};

enum class TaskKind { Run, Script, Push, Fetch, WaitFor };
const char* to_string(TaskKind k);

struct PushSpec {
  std::string src;  ///< local file or directory (relative to workdir)
  std::string dst;  ///< remote path
  std::optional<int> mode;  ///< overrides the local mode when set
};

struct FetchSpec {
  std::string src;  ///< remote file
  std::string dst;  ///< path relative to the run directory
};

struct WaitForSpec {
  std::string what = "ssh";  ///< ssh | tcp
  int port = 22;
  Millis timeout{Millis(300'000)};
};

struct Task {
  std::string name;
  std::vector<std::string> on;  ///< one task instance per target
  TaskKind kind = TaskKind::Run;
  std::string run;     ///< Run: shell command
  std::string script;  ///< Script: local file copied and run remotely
  PushSpec push;
  FetchSpec fetch;
  WaitForSpec wait_for;
  std::optional<Millis> timeout;
  std::optional<int> retries;  ///< overrides the stage's
  std::map<std::string, std::string> env;
  std::string workdir;
  Mark mark;
};

enum class RetryMode { Task, Stage };

struct Stage {
  std::string name;
  std::vector<Task> tasks;
  int parallel = 0;  ///< 0: unbounded
  int retries = 0;
  Millis retry_delay{Millis(0)};
  RetryMode retry = RetryMode::Task;
  std::string restart_from;  ///< earlier stage to re-run from when this one fails
  bool subruns = false;      ///< categorized: each task instance is a sub-run
  Mark mark;
};

struct Plan {
  int version = 1;
  std::string source;  ///< file name, or "<command>"
  std::string workdir;
  std::string template_command;
  /// The template command is killed (its whole process group) after this;
  /// the run then ends FAILED_TO_START. Unset: start-run's default.
  std::optional<Millis> template_timeout;
  std::optional<Millis> hung_after;
  std::map<std::string, std::string> meta;
  std::string mention_on_failure;
  std::map<std::string, Target> targets;  ///< hosts and guests by name
  std::vector<Stage> stages;

  /// A run on the controller: one stage, one task, `command`.
  static Plan from_command(const std::string& command, bool categorized);
  /// The controller target always exists and is local.
  static constexpr const char* kController = "controller";

  /// The jump targets an SSH connection to `target` goes through, outermost
  /// first: {"hv1"} for a guest reached via hv1, {} for hosts and unknown
  /// names. The parser rejects via cycles; the bound only guards hand-built plans.
  std::vector<std::string> jumps(const std::string& target) const {
    std::vector<std::string> chain;
    auto it = targets.find(target);
    while (it != targets.end() && !it->second.via.empty() && chain.size() < targets.size()) {
      chain.push_back(it->second.via);
      it = targets.find(it->second.via);
    }
    return {chain.rbegin(), chain.rend()};
  }
};

}  // namespace rw::plan
