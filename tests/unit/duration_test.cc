#include "common/clock.h"
#include "common/duration.h"

#include <gtest/gtest.h>

#include <string>

namespace rw {
namespace {

int64_t ms(std::string_view text) {
  auto r = parse_duration(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r->count() : -1;
}

std::string refusal(std::string_view text) {
  auto r = parse_duration(text);
  return r.ok() ? "" : r.error().message;
}

TEST(Duration, ABareNumberMeansSeconds) {
  EXPECT_EQ(ms("90"), 90'000);
  EXPECT_EQ(ms("0"), 0);
}

TEST(Duration, EveryUnitHasItsMultiplier) {
  EXPECT_EQ(ms("500ms"), 500);
  EXPECT_EQ(ms("90s"), 90'000);
  EXPECT_EQ(ms("45m"), 45 * 60'000);
  EXPECT_EQ(ms("10min"), 10 * 60'000);
  EXPECT_EQ(ms("2h"), 2 * 3'600'000);
  EXPECT_EQ(ms("1d"), 86'400'000);
}

TEST(Duration, ComponentsAddUp) {
  EXPECT_EQ(ms("1h30m"), 90 * 60'000);
  EXPECT_EQ(ms("1d2h3m4s5ms"), 86'400'000 + 2 * 3'600'000 + 3 * 60'000 + 4'000 + 5);
  EXPECT_EQ(ms("1s1s"), 2'000);
}

TEST(Duration, AnEmptyStringIsRefusedAsEmpty) {
  auto msg = refusal("");
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
}

TEST(Duration, NegativesAreRefused) {
  EXPECT_FALSE(parse_duration("-5").ok());
  EXPECT_FALSE(parse_duration("-5s").ok());
  EXPECT_FALSE(parse_duration("1h-5m").ok());
}

TEST(Duration, UnknownUnitsAreRefusedNamingTheUnit) {
  auto msg = refusal("5x");
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("unknown unit 'x'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'5x'"), std::string::npos) << msg;
  EXPECT_FALSE(parse_duration("5S").ok());  // units are case-sensitive
  EXPECT_FALSE(parse_duration("5 s").ok());
  EXPECT_FALSE(parse_duration("3w").ok());
}

TEST(Duration, ABareNumberAfterAComponentIsRefused) {
  auto msg = refusal("1h30");
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("missing unit"), std::string::npos) << msg;
  EXPECT_FALSE(parse_duration("1.5h").ok());
}

TEST(Duration, SurroundingWhitespaceAndLoneUnitsAreRefused) {
  for (const char* text : {" 5s", "5s ", "h", "ms", "s5"}) EXPECT_FALSE(parse_duration(text).ok()) << text;
}

TEST(Duration, HugeNumbersAreRefusedAsTooLarge) {
  auto msg = refusal("99999999999999999999999s");
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("too large"), std::string::npos) << msg;
}

TEST(Duration, TheLargestDayCountThatFitsIsAccepted) {
  // 106751991167 days is just under INT64_MAX milliseconds.
  EXPECT_EQ(ms("106751991167d"), int64_t{106751991167} * 86'400'000);
}

// Regression: the overflow guard in parse_duration (src/common/duration.cc) checks
// the number before its last digit is appended and never checks n * mult or
// the running total, so values just past INT64_MAX ms overflow (signed
// overflow, in practice a negative duration) instead of "too large".
TEST(Duration, ANumberOfDaysPastInt64MillisecondsIsRefused) {
  auto r = parse_duration("106751991169d");
  EXPECT_FALSE(r.ok()) << "accepted as " << (r.ok() ? r->count() : 0) << " ms";
}

// Regression: same cause: two components that each fit overflow the sum.
TEST(Duration, ComponentsWhoseSumOverflowsAreRefused) {
  auto r = parse_duration("106751991167d106751991167d");
  EXPECT_FALSE(r.ok()) << "accepted as " << (r.ok() ? r->count() : 0) << " ms";
}

TEST(Duration, FormatUsesMillisecondsBelowOneSecond) {
  EXPECT_EQ(format_duration(Millis(0)), "0ms");
  EXPECT_EQ(format_duration(Millis(450)), "450ms");
  EXPECT_EQ(format_duration(Millis(999)), "999ms");
}

TEST(Duration, FormatShowsHoursMinutesAndSeconds) {
  EXPECT_EQ(format_duration(Millis(1'000)), "1s");
  EXPECT_EQ(format_duration(Millis(1'500)), "1s");
  EXPECT_EQ(format_duration(Millis(61'000)), "1m 1s");
  EXPECT_EQ(format_duration(Millis(3'723'000)), "1h 2m 3s");
  EXPECT_EQ(format_duration(Millis(3'600'000)), "1h 0m 0s");
  EXPECT_EQ(format_duration(Millis(25 * 3'600'000)), "25h 0m 0s");
}

TEST(Duration, FormatClampsNegativesToZero) { EXPECT_EQ(format_duration(Millis(-5'000)), "0ms"); }

TEST(Duration, FormatReadsBackToTheSameWholeSeconds) {
  for (int64_t v : {int64_t{1'000}, int64_t{59'000}, int64_t{3'723'000}, int64_t{90'061'000}}) {
    std::string text = format_duration(Millis(v));
    std::string compact;
    for (char c : text)
      if (c != ' ') compact += c;
    EXPECT_EQ(ms(compact), v) << text;
  }
}

}  // namespace
}  // namespace rw

namespace rw {
namespace {

int64_t g_real = 1'000'000, g_mono = 50;
int64_t fake_real() { return g_real; }
int64_t fake_mono() { return g_mono; }

TEST(SteadyWallClock, AWallClockJumpNeitherShortensNorStretchesWhatItMeasures) {
  SteadyWallClock c(fake_real, fake_mono);
  EXPECT_EQ(c.now(), 1'000'000) << "starts at wall time";
  const int64_t retry_at = c.now() + 60'000;  // a one-minute retry delay
  g_real += 3'600'000;                        // the wall clock is set an hour ahead
  g_mono += 1'000;                            // one real second passes
  EXPECT_EQ(c.now(), 1'001'000);
  EXPECT_LT(c.now(), retry_at) << "the retry is not due after one second";
  g_real -= 7'200'000;  // and two hours back
  g_mono += 59'000;
  EXPECT_EQ(c.now(), retry_at) << "due after exactly its delay";
}

}  // namespace
}  // namespace rw
