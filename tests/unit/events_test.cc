#include "state/events.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace rw::state {
namespace {

Result<Event> parse(const std::string& line) {
  try {
    return parse_event_line(line);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "parse_event_line threw: " << e.what() << "\ninput: " << line;
    return err("threw");
  }
}

TEST(Events, ASubrunThatCompletedIsParsedWithItsDetails) {
  auto e = parse(R"({"type":"subrun","key":"linux","status":"COMPLETED","exit_code":0,"message":"412 passed"})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->type, "subrun");
  EXPECT_EQ(e->key, "linux");
  EXPECT_EQ(e->status, RunStatus::Completed);
  EXPECT_EQ(e->exit_code, 0);
  EXPECT_EQ(e->message, "412 passed");
}

TEST(Events, ASubrunThatFailedCarriesItsLog) {
  auto e = parse(R"({"type":"subrun","key":"windows","status":"FAILED","exit_code":3,"log":"/srv/e2e/win.log"})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->status, RunStatus::Failed);
  EXPECT_EQ(e->exit_code, 3);
  EXPECT_EQ(e->log, "/srv/e2e/win.log");
}

TEST(Events, ARunningSubrunHasNoExitCode) {
  auto e = parse(R"({"type":"subrun","key":"linux","status":"RUNNING"})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->status, RunStatus::Running);
  EXPECT_FALSE(e->exit_code.has_value());
}

TEST(Events, AProgressEventNeedsOnlyItsMessage) {
  auto e = parse(R"({"type":"progress","message":"suite 3/7"})");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->type, "progress");
  EXPECT_EQ(e->message, "suite 3/7");
}

TEST(Events, UnknownOrMissingTypesAreRefusedNamingTheType) {
  auto e = parse(R"({"type":"heartbeat"})");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("'heartbeat'"), std::string::npos) << e.error().message;
  EXPECT_FALSE(parse(R"({"key":"linux","status":"COMPLETED"})").ok());
  EXPECT_FALSE(parse(R"({"type":"SUBRUN","key":"linux","status":"COMPLETED"})").ok());
  EXPECT_FALSE(parse(R"({"type":5,"key":"linux","status":"COMPLETED"})").ok());
}

TEST(Events, SubrunKeysThatCouldEscapeTheRunDirectoryAreRefused) {
  for (const char* key : {"", "..", "../../etc", "a/b", ".hidden", "-x", "with space"}) {
    auto e = parse(std::string(R"({"type":"subrun","status":"COMPLETED","key":")") + key + "\"}");
    EXPECT_FALSE(e.ok()) << "accepted key '" << key << "'";
  }
  EXPECT_FALSE(parse(R"({"type":"subrun","status":"COMPLETED","key":7})").ok());
  auto too_long = parse(R"({"type":"subrun","status":"COMPLETED","key":")" + std::string(129, 'k') + "\"}");
  EXPECT_FALSE(too_long.ok());
}

TEST(Events, OnlyRunningCompletedAndFailedAreSubrunStatuses) {
  for (const char* st : {"CANCELLED", "TERMINATED", "HUNG", "PENDING", "UNKNOWN", "completed", "", " FAILED"}) {
    auto e = parse(std::string(R"({"type":"subrun","key":"linux","status":")") + st + "\"}");
    EXPECT_FALSE(e.ok()) << "accepted status '" << st << "'";
  }
  auto numeric = parse(R"({"type":"subrun","key":"linux","status":2})");
  ASSERT_FALSE(numeric.ok());
  EXPECT_NE(numeric.error().message.find("RUNNING, COMPLETED or FAILED"), std::string::npos)
      << numeric.error().message;
}

TEST(Events, AnExitCodeOfTheWrongTypeIsIgnored) {
  for (const char* code : {R"("0")", "1.5", "true", "null"}) {
    auto e = parse(std::string(R"({"type":"subrun","key":"linux","status":"FAILED","exit_code":)") + code + "}");
    ASSERT_TRUE(e.ok()) << code;
    EXPECT_FALSE(e->exit_code.has_value()) << code;
  }
}

TEST(Events, LinesThatAreNotJsonObjectsAreErrors) {
  for (const char* line : {"", "not json", "{", "[]", "\"subrun\"", "null", R"({"type":"progress"} extra)"})
    EXPECT_FALSE(parse(line).ok()) << line;
}

TEST(Events, AFormattedSubrunParsesBackToTheSameEvent) {
  Event e;
  e.type = "subrun";
  e.key = "windows";
  e.status = RunStatus::Failed;
  e.exit_code = 3;
  e.message = "2 failed\nsee log";
  e.log = "/srv/e2e/win.log";
  std::string line = format_event_line(e);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << "one event, one line: " << line;
  auto back = parse(line.substr(0, line.size() - 1));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->type, "subrun");
  EXPECT_EQ(back->key, "windows");
  EXPECT_EQ(back->status, RunStatus::Failed);
  EXPECT_EQ(back->exit_code, 3);
  EXPECT_EQ(back->message, "2 failed\nsee log");
  EXPECT_EQ(back->log, "/srv/e2e/win.log");
}

TEST(Events, AFormattedSubrunLeavesOutWhatItDoesNotHave) {
  Event e;
  e.type = "subrun";
  e.key = "linux";
  e.status = RunStatus::Running;
  std::string line = format_event_line(e);
  EXPECT_EQ(line.find("exit_code"), std::string::npos) << line;
  EXPECT_EQ(line.find("\"log\""), std::string::npos) << line;
  EXPECT_EQ(line.find("\"message\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"RUNNING\""), std::string::npos) << line;
}

TEST(Events, AFormattedProgressEventParsesBack) {
  Event e;
  e.type = "progress";
  e.message = "suite 3/7";
  std::string line = format_event_line(e);
  EXPECT_EQ(line.find("\"key\""), std::string::npos) << line;
  auto back = parse(line);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->type, "progress");
  EXPECT_EQ(back->message, "suite 3/7");
}

TEST(Events, InvalidUtf8InAMessageIsReplacedNotThrown) {
  Event e;
  e.type = "progress";
  e.message = "caf\xe9";
  std::string line;
  ASSERT_NO_THROW(line = format_event_line(e));
  auto back = parse(line);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->message, "caf\xEF\xBF\xBD");
}

}  // namespace
}  // namespace rw::state

namespace rw::state {
namespace {

TEST(EventLineSplitter, CompleteLinesComeOutWhateverTheChunks) {
  EventLineSplitter s;
  auto a = s.feed("{\"a\":1}\n{\"b\"");
  EXPECT_EQ(a.lines, (std::vector<std::string>{"{\"a\":1}"}));
  auto b = s.feed(":2}\n\n");
  EXPECT_EQ(b.lines, (std::vector<std::string>{"{\"b\":2}", ""}));
}

TEST(EventLineSplitter, ALineWithoutEndIsDroppedOnceItPassesTheCapAndMemoryStaysBounded) {
  EventLineSplitter s(16);
  size_t dropped = 0;
  for (int i = 0; i < 1000; ++i) dropped += s.feed(std::string(100, 'x')).dropped;
  EXPECT_EQ(dropped, 1u) << "one over-long line, reported once";
  auto next = s.feed("still the long line\n{\"ok\":1}\n");
  EXPECT_EQ(next.lines, (std::vector<std::string>{"{\"ok\":1}"})) << "the next line is read again";
  EXPECT_EQ(next.dropped, 0u);
}

}  // namespace
}  // namespace rw::state
