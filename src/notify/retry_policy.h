#pragma once
// When to retry a webhook post. Pure logic: no I/O, no clock.

#include <optional>
#include <string>
#include <string_view>

#include "common/duration.h"

namespace rw::notify {

/// One post's outcome, as the retry logic sees it.
struct Attempt {
  int http_status = 0;  ///< 0: no HTTP answer (connection error, timeout)
  std::string body;
  std::optional<Millis> retry_after;
  std::string transport_error;
};

struct RetryPolicy {
  int max_attempts = 6;
  Millis base_delay{500};
  Millis max_delay{30000};
  Millis max_retry_after{300000};  ///< a server asking for longer still gets retried after this
};

enum class Verdict { Delivered, Retry, GiveUp };

struct RetryDecision {
  Verdict verdict;
  Millis delay{0};     ///< wait before the next attempt (Retry only)
  std::string reason;  ///< human readable; never the URL
};

/// attempt is 1-based. Delivered for any 2xx, whatever the body.
/// 5xx, 429 and connection errors: Retry after base*2^(attempt-1) capped at
/// max_delay, or after Retry-After (capped at max_retry_after) when a 429 or
/// 503 carries one; GiveUp once attempt reaches max_attempts. Anything else
/// (other 4xx, 3xx) is GiveUp at once: it would fail again.
RetryDecision decide_retry(const RetryPolicy& p, int attempt, const Attempt& a);

/// "HTTP 400 (Mattermost error ID: MESSAGE)", "HTTP 502 (first 200 chars of
/// the body)", "connection error: Timeout was reached".
std::string describe(const Attempt& a);

/// Retry-After as delta-seconds; an HTTP-date or garbage gives nullopt.
std::optional<Millis> parse_retry_after(std::string_view v);

}  // namespace rw::notify
