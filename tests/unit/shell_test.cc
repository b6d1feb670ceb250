// One quoting function for every value on a shell command line, checked by
// a reference reader and by a real /bin/sh.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "common/shell.h"

namespace rw {
namespace {

std::string sh_echo(const std::string& word) {
  std::string cmd = "/bin/sh -c " + shell_quote("printf %s " + shell_quote(word));
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(Shell, QuotingSurvivesQuotesAndEveryMetacharacterThroughARealShell) {
  for (const std::string w : {"plain", "it's", "a'b'c'", "'", "''", "$(touch /nonexistent)", "`id`", "a b\tc\nd",
                              "; rm -rf x", "\\'\\", "*?[a]", "-n", "/srv/my 'suite'/run.sh"}) {
    EXPECT_EQ(sh_echo(w), w) << w;
    EXPECT_EQ(shell_unquote(shell_quote(w)), w) << w;
  }
}

TEST(Shell, UnquoteRefusesWhatAShellWouldInterpret) {
  EXPECT_FALSE(shell_unquote("a"));
  EXPECT_FALSE(shell_unquote("'a'b"));
  EXPECT_FALSE(shell_unquote("'a"));
  EXPECT_FALSE(shell_unquote("'a' 'b'"));
  EXPECT_EQ(shell_unquote("'a'\\''b'"), "a'b");
}

}  // namespace
}  // namespace rw
