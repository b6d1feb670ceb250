#include "ssh/remote_command.h"

#include <gtest/gtest.h>

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

TEST(WrapCommand, RunsTheCommandAsTheSecondArgumentOfSh) {
  auto w = wrap_command("echo hi", {});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->rfind("exec /bin/sh -c 'eval \"$0\"' '", 0), 0u) << *w;
  EXPECT_NE(w->find("' 'echo hi'"), std::string::npos) << *w;
}

TEST(WrapCommand, PrintsTheMarkerAndStartsTheStdinWatcherWithTheGrace) {
  WrapOptions o;
  o.kill_grace_seconds = 7;
  auto w = wrap_command("true", o);
  ASSERT_TRUE(w.ok());
  EXPECT_NE(w->find("RWPGID:$$"), std::string::npos);
  EXPECT_NE(w->find("kill -TERM -$$; sleep 7; kill -KILL -$$"), std::string::npos) << *w;
  EXPECT_NE(w->find("exec setsid"), std::string::npos);
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
