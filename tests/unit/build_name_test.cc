#include "common/build_name.h"

#include <gtest/gtest.h>

#include <string>

namespace rw {
namespace {

/// The error message of a refused name ("" if the name was accepted).
std::string refusal(const std::string& name) {
  auto s = validate_build_name(name);
  return s.ok() ? "" : s.error().message;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(BuildName, TheFieldExampleIsAccepted) {
  EXPECT_TRUE(validate_build_name("e2e-redhat9.6-ubuntu24.04-w2k25-fc").ok());
}

TEST(BuildName, PlainNamesWithDotsUnderscoresAndDashesAreAccepted) {
  for (const char* name : {"a", "Z", "7", "nightly_2024-01-02", "build.1", "A1-b2_c3.d4", "x-", "z_"})
    EXPECT_TRUE(validate_build_name(name).ok()) << name << ": " << refusal(name);
}

TEST(BuildName, AnEmptyNameIsRefusedAsEmpty) {
  auto msg = refusal("");
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(contains(msg, "empty")) << msg;
}

TEST(BuildName, PathTraversalIsRefused) {
  for (const char* name : {"../etc", "..", "a/../b", "a..b", "x..", "/etc/passwd", "a/b"})
    EXPECT_FALSE(validate_build_name(name).ok()) << name;
}

TEST(BuildName, ADoubleDotInsideTheNameIsNamedInTheMessage) {
  auto msg = refusal("a..b");
  EXPECT_TRUE(contains(msg, "'..'")) << msg;
  EXPECT_TRUE(contains(msg, "a..b")) << msg;
}

TEST(BuildName, ASlashIsRefusedNamingTheCharacterAndItsPosition) {
  auto msg = refusal("web/1");
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(contains(msg, "character 4")) << msg;
  EXPECT_TRUE(contains(msg, "'/'")) << msg;
}

TEST(BuildName, A128CharacterNameIsAccepted) {
  std::string name(128, 'a');
  EXPECT_TRUE(validate_build_name(name).ok()) << refusal(name);
}

TEST(BuildName, A129CharacterNameIsRefusedNamingItsLength) {
  auto msg = refusal(std::string(129, 'a'));
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(contains(msg, "129 characters")) << msg;
  EXPECT_TRUE(contains(msg, "at most 128")) << msg;
}

TEST(BuildName, A200CharacterNameIsRefused) {
  auto msg = refusal(std::string(200, 'b'));
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(contains(msg, "200 characters")) << msg;
}

TEST(BuildName, SpacesAreRefused) {
  for (const char* name : {"my build", " build", "build ", "tab\tbuild", "new\nline"})
    EXPECT_FALSE(validate_build_name(name).ok()) << name;
  EXPECT_TRUE(contains(refusal("my build"), "' '")) << refusal("my build");
}

TEST(BuildName, NonAsciiUtf8IsRefusedAndShownEscaped) {
  std::string name = "b\xc3\xbcild";  // "büild"
  auto msg = refusal(name);
  ASSERT_FALSE(msg.empty());
  EXPECT_TRUE(contains(msg, "character 2")) << msg;
  // Raw bytes of the name are escaped, not copied into the message.
  EXPECT_TRUE(contains(msg, "\\xc3")) << msg;
  EXPECT_FALSE(contains(msg, "\xc3")) << msg;
}

TEST(BuildName, ALeadingDashOrDotOrUnderscoreIsRefused) {
  for (const char* name : {"-build", ".build", "_build", ".", "-"}) {
    auto msg = refusal(name);
    EXPECT_FALSE(msg.empty()) << name;
    EXPECT_TRUE(contains(msg, "character 1")) << name << ": " << msg;
  }
}

TEST(BuildName, ShellAndUnitNameSpecialCharactersAreRefused) {
  for (const char* name : {"a@b", "a;b", "a$b", "a*b", "a\\b", "a:b", "a%i", "a'b", "a\"b"})
    EXPECT_FALSE(validate_build_name(name).ok()) << name;
}

TEST(BuildName, RefusalsCarryExitCode2AndStateTheRule) {
  auto s = validate_build_name("../etc");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, 2);
  EXPECT_TRUE(contains(s.error().message, "invalid build name")) << s.error().message;
  EXPECT_TRUE(contains(s.error().message, "allowed")) << s.error().message;
}

TEST(BuildName, UnitNamesUseTheBuildAsInstance) {
  EXPECT_EQ(runner_unit("e2e-x"), "runner@e2e-x.service");
  EXPECT_EQ(watcher_unit("e2e-x"), "watcher@e2e-x.service");
}

}  // namespace
}  // namespace rw

namespace rw {
namespace {

TEST(NameRule, ATrailingDotIsRefusedSoThatTaskDotTargetNeverHoldsTwoDots) {
  auto v = validate_name("a.", "task name", kMaxPlanName);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("ends with '.'"), std::string::npos) << v.error().message;
  EXPECT_FALSE(validate_build_name("y.").ok());
}

TEST(NameRule, TwoLongestPlanNamesMakeAValidKey) {
  std::string task(kMaxPlanName, 't'), target(kMaxPlanName, 'h');
  EXPECT_TRUE(validate_name(task, "task name", kMaxPlanName).ok());
  EXPECT_FALSE(validate_name(task + "x", "task name", kMaxPlanName).ok());
  EXPECT_TRUE(validate_name(task + "." + target, "sub-run key", kMaxKey).ok());
}

}  // namespace
}  // namespace rw
