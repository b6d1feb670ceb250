#include "ssh/remote_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

namespace rw::ssh {
namespace {

TEST(ShellQuote, WrapsInSingleQuotesAndEscapesThem) {
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("plain"), "'plain'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("$HOME `x` \"y\" \\n"), "'$HOME `x` \"y\" \\n'");
}

TEST(EnvNames, AcceptOnlyPortableNames) {
  EXPECT_TRUE(valid_env_name("PATH"));
  EXPECT_TRUE(valid_env_name("_x1"));
  EXPECT_FALSE(valid_env_name(""));
  EXPECT_FALSE(valid_env_name("1X"));
  EXPECT_FALSE(valid_env_name("A-B"));
  EXPECT_FALSE(valid_env_name("A B"));
  EXPECT_FALSE(valid_env_name("A=B"));
}

TEST(WrapCommand, IsOneExecOfShWithTheScriptAndTheCommandAsArguments) {
  auto w = wrap_command("echo hi", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->rfind("exec /bin/sh -c 'eval \"$1\"' /bin/sh '", 0), 0u) << *w;
  EXPECT_NE(w->find("' 'echo hi'"), std::string::npos) << *w;
}

TEST(WrapCommand, PrintsTheMarkerAndStartsTheStdinWatcherWithTheGrace) {
  WrapOptions o;
  o.kill_grace_seconds = 7;
  auto w = wrap_command("true", o);
  ASSERT_TRUE(w.ok());
  EXPECT_NE(w->find("RWPGID:$$"), std::string::npos);
  EXPECT_NE(w->find("kill -TERM -$$; sleep 7; kill -KILL -$$"), std::string::npos) << *w;
  EXPECT_NE(w->find("kill -0 -$$"), std::string::npos) << *w;
  EXPECT_NE(w->find("exec setsid"), std::string::npos);
}

TEST(WrapCommand, RunsTheCommandInASubshellWithoutASecondExec) {
  auto w = wrap_command("true", {});
  ASSERT_TRUE(w.ok());
  // Inside the quoted script: `( unset w; eval "set -- ; $2" )`.
  EXPECT_NE(w->find("( unset w; eval \"set -- ; $2\" )"), std::string::npos) << *w;
  EXPECT_EQ(w->find("/bin/sh -c \"$"), std::string::npos) << *w;
  // The login shell's exec of /bin/sh, and setsid's when regrouping: no other.
  size_t execs = 0;
  for (size_t p = 0; (p = w->find("exec ", p)) != std::string::npos; ++p)
    if (w->compare(p, 7, "exec 3<") != 0) ++execs;
  EXPECT_EQ(execs, 2u) << *w;
}

TEST(WrapCommand, ExportsEnvAndChangesDirectoryQuoted) {
  WrapOptions o;
  o.env = {{"A", "x y"}, {"B", "it's"}};
  o.workdir = "/srv/e2e dir";
  auto w = wrap_command("true", o);
  ASSERT_TRUE(w.ok());
  // The script is itself single-quoted in the outer line, so quotes inside
  // appear escaped once more.
  EXPECT_NE(w->find("export A='\\''x y'\\''"), std::string::npos) << *w;
  EXPECT_NE(w->find("cd '\\''/srv/e2e dir'\\'' || { kill $w 2>/dev/null; echo \"RWEXIT:1\" >&2; exit 1; }"), std::string::npos) << *w;
}

TEST(WrapCommand, RejectsBadEnvNamesAndNulBytes) {
  WrapOptions o;
  o.env = {{"BAD-NAME", "1"}};
  EXPECT_FALSE(wrap_command("true", o).ok());
  EXPECT_FALSE(wrap_command(std::string("a\0b", 3), {}).ok());
}

TEST(PgidMarker, StripsTheFirstLineAndRemembersThePgid) {
  PgidMarkerFilter f;
  EXPECT_EQ(f.feed("RWPGID:4242\nerr\n"), "err\n");
  EXPECT_EQ(f.pgid(), 4242);
  EXPECT_EQ(f.feed("RWPGID:1\n"), "RWPGID:1\n");  // only the first line
}

TEST(PgidMarker, HandlesTheMarkerSplitAcrossChunks) {
  PgidMarkerFilter f;
  EXPECT_EQ(f.feed("RW"), "");
  EXPECT_EQ(f.feed("PGID:12"), "");
  EXPECT_EQ(f.feed("3\nrest"), "rest");
  EXPECT_EQ(f.pgid(), 123);
}

TEST(PgidMarker, PassesOtherStreamsThroughUnchanged) {
  PgidMarkerFilter f;
  EXPECT_EQ(f.feed("R"), "");
  EXPECT_EQ(f.feed("X"), "RX");
  EXPECT_EQ(f.feed("more"), "more");
  EXPECT_FALSE(f.pgid().has_value());

  PgidMarkerFilter g;
  EXPECT_EQ(g.feed("RWPGID:notanumber\n"), "RWPGID:notanumber\n");
  EXPECT_FALSE(g.pgid().has_value());

  PgidMarkerFilter h;
  EXPECT_EQ(h.feed("RWPGID:5"), "");
  EXPECT_EQ(h.finish(), "RWPGID:5");  // stream ended before the newline
}

TEST(KillGroupCommand, KillsTheGroupAndTheLeader) {
  EXPECT_EQ(kill_group_command(77), "kill -KILL -77 2>/dev/null; kill -KILL 77 2>/dev/null; true");
}

}  // namespace
}  // namespace rw::ssh

namespace rw::ssh {
namespace {

TEST(ExitMarker, TheWrapperEndsWithItsStatusLine) {
  auto w = wrap_command("true", WrapOptions{});
  ASSERT_TRUE(w.ok());
  EXPECT_NE(w->find("echo \"RWEXIT:$r\" >&2"), std::string::npos) << *w;
}

TEST(ExitMarker, TheStatusLineIsTakenOutOfStderrWhereverTheChunksSplit) {
  const std::string stream = "warning: x\nRWPGID-lookalike\nRWEXIT:3\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ExitMarkerFilter f;
    std::string out = f.feed(stream.substr(0, cut));
    out += f.feed(stream.substr(cut));
    out += f.finish();
    EXPECT_EQ(out, "warning: x\nRWPGID-lookalike\n") << cut;
    EXPECT_EQ(f.status(), 3) << cut;
  }
}

TEST(ExitMarker, NoStatusLineMeansNoStatus) {
  ExitMarkerFilter f;
  std::string out = f.feed("RWEXIT:12x\nRWEX");
  out += f.finish();
  EXPECT_EQ(out, "RWEXIT:12x\nRWEX") << "look-alikes are output";
  EXPECT_FALSE(f.status().has_value());
}

}  // namespace
}  // namespace rw::ssh

namespace rw::ssh {
namespace {

// The wrapper run by a local /bin/sh as sshd runs it: `sh -c TEXT`, stdin a
// pipe held open (the channel), stdout and stderr apart; in a new session
// (as sshd does) or, with new_session false, in the caller's process group.
struct Ran {
  pid_t pid = 0;
  int status = -1;
  std::string out, err;
};

Ran run_wrapped(const std::string& text, bool new_session) {
  Ran r;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return r;
  r.pid = ::fork();
  if (r.pid == 0) {
    if (new_session) ::setsid();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execl("/bin/sh", "sh", "-c", text.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* dst[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0 && ::poll(fds, 2, 10'000) > 0) {
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        dst[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  ::waitpid(r.pid, &r.status, 0);
  ::close(in[1]);  // the channel closes after the command ended
  return r;
}

TEST(WrappedCommand, RunsUnderShLikeShDashCInItsOwnGroup) {
  WrapOptions o;
  o.env = {{"RW_X", "a 'b'"}};
  o.workdir = "/";
  auto w = wrap_command("echo \"$0|$#|$RW_X|$(pwd)\"; read x || echo no-stdin; echo oops >&2; exit 3", o);
  ASSERT_TRUE(w.ok());
  Ran r = run_wrapped(*w, true);
  ASSERT_TRUE(WIFEXITED(r.status)) << r.status;
  EXPECT_EQ(WEXITSTATUS(r.status), 3);
  EXPECT_EQ(r.out, "/bin/sh|0|a 'b'|/\nno-stdin\n");
  EXPECT_EQ(r.err, "RWPGID:" + std::to_string(r.pid) + "\noops\nRWEXIT:3\n");
}

TEST(WrappedCommand, RegroupsUnderSetsidWhenTheServerDidNot) {
  if (::access("/usr/bin/setsid", X_OK) != 0 && ::access("/bin/setsid", X_OK) != 0) GTEST_SKIP() << "no setsid(1)";
  auto w = wrap_command("ps -o pgid= -p $$ | tr -d ' '", {});
  ASSERT_TRUE(w.ok());
  Ran r = run_wrapped(*w, false);  // in the test's own process group
  ASSERT_TRUE(WIFEXITED(r.status)) << r.status;
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
  // setsid(1) does not fork when the caller leads no group: same pid, now
  // leading a group of its own.
  EXPECT_EQ(r.err, "RWPGID:" + std::to_string(r.pid) + "\nRWEXIT:0\n");
  EXPECT_EQ(r.out, std::to_string(r.pid) + "\n");
}

TEST(WrappedCommand, ASyntaxErrorIsReportedOnTheCommandsOwnLine) {
  auto w = wrap_command("true\nif then", {});
  ASSERT_TRUE(w.ok());
  Ran r = run_wrapped(*w, true);
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 2);
  EXPECT_NE(r.err.find(" 2: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("RWEXIT:2\n"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rw::ssh
