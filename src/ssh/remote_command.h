#pragma once
// The shell text runwarden sends to sshd for a task, and the marker it prints.
// Pure string logic: tested without a server in tests/unit/ssh_remote_command_test.cc.
//
// Why the wrapper exists: sshd runs an exec request as `$SHELL -c TEXT` in a
// new session (sshd calls setsid()), so the shell's pid is also its process
// group id. TEXT is one line, `exec /bin/sh -c 'eval "$1"' /bin/sh SCRIPT CMD`,
// so the login shell becomes a POSIX sh with the same pid (the one exec per
// task). SCRIPT
//   1. makes sure it leads its own process group (re-exec under setsid(1) when
//      the server did not do it, e.g. some dropbear builds),
//   2. prints "RWPGID:<pgid>" as the first stderr line (the client strips it),
//   3. starts a watcher that reads the channel's stdin: when the client sends
//      EOF (cancel, timeout) or the connection drops (runner killed), the
//      watcher sends SIGTERM to the whole group, waits the grace period and
//      sends SIGKILL, so children like `sleep 300 & sleep 300; wait` go too.
//      sshd itself signals nothing when a session without a pty loses its
//      client, so without this process a dropped connection would leave the
//      command running,
//   4. exports env, changes directory and runs CMD in a subshell (a fork, no
//      second exec) with stdin from /dev/null, no positional parameters and
//      $0 "/bin/sh", as `sh -c CMD` would; on a normal exit it stops the
//      watcher so that processes the command deliberately left running
//      (`nohup daemon &`) survive, as with plain ssh, and prints
//      "RWEXIT:<status>" as the last stderr line.
// Unlike `sh -c CMD`, CMD's $$ is the wrapper's pid (the group id) and its
// $PPID is sshd's.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/shell.h"

namespace rw::ssh {

using rw::shell_quote;

/// True for a portable environment variable name: [A-Za-z_][A-Za-z0-9_]*.
bool valid_env_name(std::string_view name);

struct WrapOptions {
  std::map<std::string, std::string> env;
  std::string workdir;
  int kill_grace_seconds = 5;  ///< SIGTERM to SIGKILL, remotely
};

/// The exec request text for `command` (see the file comment). Fails on an
/// invalid env name or a NUL byte.
Result<std::string> wrap_command(const std::string& command, const WrapOptions& opt);

/// The first stderr line the wrapper prints.
inline constexpr std::string_view kPgidMarker = "RWPGID:";
/// The wrapper's last stderr line: "RWEXIT:<status>". Without it the command
/// did not end through the wrapper, whatever status the channel reports.
inline constexpr std::string_view kExitMarker = "RWEXIT:";

/// Removes the "RWPGID:<n>\n" line from the start of a stderr stream, however
/// the stream is split into chunks, and remembers the pgid. Anything else
/// passes through unchanged (a stream that does not start with the marker is
/// delivered as is).
class PgidMarkerFilter {
 public:
  /// Returns the part of `data` to deliver now (may be empty).
  std::string feed(std::string_view data);
  /// At end of stream: whatever is still held back.
  std::string finish();
  std::optional<long> pgid() const { return pgid_; }

 private:
  bool done_ = false;
  std::string held_;
  std::optional<long> pgid_;
};

/// Removes the wrapper's "RWEXIT:<status>" line from the stderr stream and
/// keeps the status.
class ExitMarkerFilter {
 public:
  /// Returns the part of `data` to deliver now (may be empty): everything
  /// but a line that is, or may still become, the marker.
  std::string feed(std::string_view data);
  /// At end of stream: whatever is still held back (not a marker).
  std::string finish();
  std::optional<int> status() const { return status_; }

 private:
  std::string held_;  ///< the current unfinished line, when it may be the marker
  std::optional<int> status_;
};

/// A plain (unwrapped) command that kills process group `pgid` with SIGKILL:
/// the fallback when the wrapper's own watcher did not end the command.
std::string kill_group_command(long pgid);

}  // namespace rw::ssh
