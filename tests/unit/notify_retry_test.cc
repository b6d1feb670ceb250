#include "notify/retry_policy.h"

#include <gtest/gtest.h>

namespace rw::notify {
namespace {

Attempt http(int status, std::string body = "", std::optional<Millis> retry_after = std::nullopt) {
  Attempt a;
  a.http_status = status;
  a.body = std::move(body);
  a.retry_after = retry_after;
  return a;
}

Attempt connection_error(std::string what) {
  Attempt a;
  a.transport_error = std::move(what);
  return a;
}

TEST(NotifyRetryPolicy, Http200WithOkIsDelivered) {
  EXPECT_EQ(decide_retry({}, 1, http(200, "ok")).verdict, Verdict::Delivered);
  EXPECT_EQ(decide_retry({}, 3, http(200, " ok\n")).verdict, Verdict::Delivered);
}

TEST(NotifyRetryPolicy, AnySuccessStatusIsDeliveredWhateverTheBody) {
  // Rocket.Chat and Zulip answer 200 with JSON, Discord 204 with nothing.
  auto d = decide_retry({}, 1, http(200, R"({"success":true})"));
  EXPECT_EQ(d.verdict, Verdict::Delivered);
  EXPECT_NE(d.reason.find("HTTP 200"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("success"), std::string::npos) << "the body is kept: " << d.reason;
  EXPECT_EQ(decide_retry({}, 1, http(204)).verdict, Verdict::Delivered);
  EXPECT_EQ(decide_retry({}, 1, http(201, "created")).verdict, Verdict::Delivered);
  EXPECT_EQ(decide_retry({}, 1, http(299)).verdict, Verdict::Delivered);
  EXPECT_EQ(decide_retry({}, 1, http(300)).verdict, Verdict::GiveUp);
  EXPECT_EQ(decide_retry({}, 1, http(199)).verdict, Verdict::GiveUp);
}

TEST(NotifyRetryPolicy, RetryPolicyNeverRetriesA400) {
  auto d = decide_retry({}, 1, http(400, R"({"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook","status_code":400})"));
  EXPECT_EQ(d.verdict, Verdict::GiveUp);
  EXPECT_EQ(d.reason.rfind("HTTP 400 (Mattermost error web.incoming_webhook.invalid.app_error: Invalid webhook)", 0), 0u)
      << d.reason;
}

TEST(NotifyRetryPolicy, OtherClientErrorsAndRedirectsAreNotRetried) {
  for (int s : {301, 302, 401, 403, 404, 413}) EXPECT_EQ(decide_retry({}, 1, http(s)).verdict, Verdict::GiveUp) << s;
}

TEST(NotifyRetryPolicy, ANonJsonBodyIsQuotedUpTo200Chars) {
  auto d = decide_retry({}, 1, http(404, std::string(500, 'x') + "\n"));
  EXPECT_NE(d.reason.find("HTTP 404 (" + std::string(200, 'x') + "...)"), std::string::npos) << d.reason;
  EXPECT_EQ(d.reason.find(std::string(201, 'x')), std::string::npos);
}

TEST(NotifyRetryPolicy, ServerErrorsBackOffExponentiallyUpToTheCap) {
  RetryPolicy p;
  p.max_attempts = 10;
  const int64_t expected[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  for (int attempt = 1; attempt <= 9; ++attempt) {
    auto d = decide_retry(p, attempt, http(502, "Bad Gateway"));
    ASSERT_EQ(d.verdict, Verdict::Retry) << attempt;
    EXPECT_EQ(d.delay.count(), expected[attempt - 1]) << attempt;
    EXPECT_NE(d.reason.find("HTTP 502 (Bad Gateway)"), std::string::npos) << d.reason;
  }
}

TEST(NotifyRetryPolicy, ConnectionErrorsAreRetried) {
  auto d = decide_retry({}, 2, connection_error("Couldn't connect to server"));
  EXPECT_EQ(d.verdict, Verdict::Retry);
  EXPECT_EQ(d.delay, Millis(1000));
  EXPECT_EQ(d.reason, "connection error: Couldn't connect to server");
}

TEST(NotifyRetryPolicy, TooManyRequestsHonoursRetryAfter) {
  auto d = decide_retry({}, 1, http(429, "", Millis(2000)));
  EXPECT_EQ(d.verdict, Verdict::Retry);
  EXPECT_EQ(d.delay, Millis(2000));
  // Without the header it is an ordinary backoff.
  EXPECT_EQ(decide_retry({}, 3, http(429)).delay, Millis(2000));
}

TEST(NotifyRetryPolicy, RetryAfterIsCappedAtMaxRetryAfter) {
  RetryPolicy p;
  auto d = decide_retry(p, 1, http(429, "", Millis(3600 * 1000)));
  EXPECT_EQ(d.verdict, Verdict::Retry);
  EXPECT_EQ(d.delay, p.max_retry_after);
}

TEST(NotifyRetryPolicy, RetryAfterOnA503IsHonouredToo) {
  EXPECT_EQ(decide_retry({}, 1, http(503, "", Millis(7000))).delay, Millis(7000));
  // ...but not on a 500, where it means nothing.
  EXPECT_EQ(decide_retry({}, 1, http(500, "", Millis(7000))).delay, Millis(500));
}

TEST(NotifyRetryPolicy, GivesUpAtMaxAttempts) {
  RetryPolicy p;
  p.max_attempts = 3;
  EXPECT_EQ(decide_retry(p, 2, http(500)).verdict, Verdict::Retry);
  auto d = decide_retry(p, 3, http(500));
  EXPECT_EQ(d.verdict, Verdict::GiveUp);
  EXPECT_NE(d.reason.find("gave up after 3 attempts"), std::string::npos) << d.reason;
  EXPECT_EQ(decide_retry(p, 3, http(200, "ok")).verdict, Verdict::Delivered);
}

TEST(NotifyRetryPolicy, ParseRetryAfterAcceptsDeltaSecondsOnly) {
  EXPECT_EQ(parse_retry_after("2"), Millis(2000));
  EXPECT_EQ(parse_retry_after(" 120 "), Millis(120000));
  EXPECT_EQ(parse_retry_after("0"), Millis(0));
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("-5"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5"), std::nullopt);
  auto huge = parse_retry_after("99999999999999999999999");
  ASSERT_TRUE(huge.has_value());
  EXPECT_GT(*huge, Millis(0));
}

TEST(NotifyRetryPolicy, ReasonsAreSingleLinePrintableText) {
  auto d = decide_retry({}, 1, http(403, "line one\nline two\x01\xff"));
  EXPECT_EQ(d.reason.find('\n'), std::string::npos) << d.reason;
  for (char c : d.reason) EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f);
}

}  // namespace
}  // namespace rw::notify
