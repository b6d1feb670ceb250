#include "ssh/remote_command.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace rw::ssh {

bool valid_env_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

Result<std::string> wrap_command(const std::string& command, const WrapOptions& opt) {
  if (command.find('\0') != std::string::npos) return err("command contains a NUL byte");
  int grace = opt.kill_grace_seconds < 0 ? 0 : opt.kill_grace_seconds;

  // $0 is "/bin/sh" (what the command sees), $1 this script (so it can
  // re-exec under setsid), $2 the command.
  std::string s;
  // 1. Lead a process group: `kill -0 -$$` (a builtin, no /proc, no fork)
  //    succeeds only if a group with our pid as its id exists, i.e. ours.
  s += "if [ -z \"${RW_REGROUPED-}\" ] && ! kill -0 -$$ 2>/dev/null && command -v setsid >/dev/null 2>&1; then "
       "RW_REGROUPED=1 exec setsid /bin/sh -c 'eval \"$1\"' \"$0\" \"$1\" \"$2\"; fi\n";
  s += "unset RW_REGROUPED\n";
  // 2. Tell the client the group.
  s += "echo \"";
  s += kPgidMarker;
  s += "$$\" >&2\n";
  // 3. The watcher: EOF on the channel's stdin means cancel (or a lost
  //    client). Asynchronous lists get /dev/null as stdin, hence fd 3.
  s += "exec 3<&0 </dev/null\n";
  s += "( while read -r _; do :; done <&3; trap '' TERM HUP INT; kill -TERM -$$; sleep " +
       std::to_string(grace) + "; kill -KILL -$$ ) >/dev/null 2>&1 &\n";
  s += "w=$!\nexec 3<&-\n";
  // 4. The command's environment and directory.
  if (!opt.workdir.empty()) {
    if (opt.workdir.find('\0') != std::string::npos) return err("workdir contains a NUL byte");
    s += "cd " + shell_quote(opt.workdir) + " || { kill $w 2>/dev/null; echo \"";
    s += kExitMarker;
    s += "1\" >&2; exit 1; }\n";
  }
  for (const auto& [k, v] : opt.env) {
    if (!valid_env_name(k)) return err("invalid environment variable name '" + k + "'");
    if (v.find('\0') != std::string::npos) return err("environment variable " + k + " contains a NUL byte");
    s += "export " + k + "=" + shell_quote(v) + "\n";
  }
  // The command runs in a subshell: a fork of this shell, not a second
  // /bin/sh started by exec (which cost a millisecond per task). The wrapper
  // must outlive it to stop the watcher, so that a normal exit does not kill
  // what the command left running. `set --` on the command's own first line
  // leaves it no positional parameters and keeps its line numbers, as
  // `sh -c` would.
  s += "( unset w; eval \"set -- ; $2\" )\nr=$?\nkill $w 2>/dev/null\necho \"";
  s += kExitMarker;
  s += "$r\" >&2\nexit $r\n";

  // The login shell runs this line (its one exec); everything else is /bin/sh.
  return "exec /bin/sh -c 'eval \"$1\"' /bin/sh " + shell_quote(s) + " " + shell_quote(command);
}

std::string PgidMarkerFilter::feed(std::string_view data) {
  if (done_) return std::string(data);
  held_.append(data);
  // Still a prefix of the marker? Keep waiting.
  size_t cmp = std::min(held_.size(), kPgidMarker.size());
  if (held_.compare(0, cmp, kPgidMarker.substr(0, cmp)) != 0) {
    done_ = true;
    return std::exchange(held_, {});
  }
  auto nl = held_.find('\n');
  if (nl == std::string::npos) {
    if (held_.size() > 64) {  // not our line after all
      done_ = true;
      return std::exchange(held_, {});
    }
    return {};
  }
  done_ = true;
  std::string_view num(held_.data() + kPgidMarker.size(), nl - kPgidMarker.size());
  long v = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (ec != std::errc() || p != num.data() + num.size() || v <= 1) {
    return std::exchange(held_, {});  // malformed: deliver it
  }
  pgid_ = v;
  std::string rest = held_.substr(nl + 1);
  held_.clear();
  return rest;
}

std::string PgidMarkerFilter::finish() {
  done_ = true;
  return std::exchange(held_, {});
}

namespace {

/// "RWEXIT:<digits>" (no newline): the status; nullopt for anything else.
std::optional<int> exit_marker_status(std::string_view line) {
  if (line.substr(0, kExitMarker.size()) != kExitMarker) return std::nullopt;
  std::string_view num = line.substr(kExitMarker.size());
  int v = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (num.empty() || ec != std::errc() || p != num.data() + num.size() || v < 0 || v > 255) return std::nullopt;
  return v;
}

/// Whether `partial` (a line without its newline yet) may still become one.
bool may_be_exit_marker(std::string_view partial) {
  size_t cmp = std::min(partial.size(), kExitMarker.size());
  if (partial.compare(0, cmp, kExitMarker.substr(0, cmp)) != 0) return false;
  if (partial.size() > kExitMarker.size() + 3) return false;
  for (size_t i = kExitMarker.size(); i < partial.size(); ++i)
    if (partial[i] < '0' || partial[i] > '9') return false;
  return true;
}

}  // namespace

std::string ExitMarkerFilter::feed(std::string_view data) {
  std::string in = std::exchange(held_, {});
  in.append(data);
  std::string out;
  size_t start = 0;
  for (size_t nl; (nl = in.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string_view line(in.data() + start, nl - start);
    if (auto st = exit_marker_status(line)) {
      status_ = st;
      continue;
    }
    out.append(line);
    out += '\n';
  }
  std::string_view rest(in.data() + start, in.size() - start);
  if (may_be_exit_marker(rest)) held_.assign(rest);
  else out.append(rest);
  return out;
}

std::string ExitMarkerFilter::finish() {
  if (auto st = exit_marker_status(held_)) {
    status_ = st;
    held_.clear();
  }
  return std::exchange(held_, {});
}

std::string kill_group_command(long pgid) {
  std::string g = std::to_string(pgid);
  return "kill -KILL -" + g + " 2>/dev/null; kill -KILL " + g + " 2>/dev/null; true";
}

}  // namespace rw::ssh
