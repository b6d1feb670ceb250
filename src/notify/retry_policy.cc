#include "notify/retry_policy.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/text.h"

namespace rw::notify {
namespace {

constexpr size_t kMaxBodyInReason = 200;

/// One line of printable ASCII, at most `max` chars: reasons end up in logs,
/// the journal and JSON files, where raw bytes from a server do not belong.
std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : trim(s)) {
    if (out.size() == max) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? ' ' : u >= 0x80 ? '?' : c;
  }
  return out;
}

/// Mattermost answers errors with {"id": "...", "message": "...", ...}.
std::string body_detail(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    auto id = j.find("id");
    auto msg = j.find("message");
    if (id != j.end() && id->is_string()) {
      std::string out = "Mattermost error " + printable(id->get<std::string>(), kMaxBodyInReason);
      if (msg != j.end() && msg->is_string() && !msg->get<std::string>().empty())
        out += ": " + printable(msg->get<std::string>(), kMaxBodyInReason);
      return out;
    }
  }
  return printable(body, kMaxBodyInReason);
}

bool is_success(int status) { return status >= 200 && status <= 299; }

bool retryable(int status) { return status == 0 || status == 429 || (status >= 500 && status <= 599); }

Millis backoff(const RetryPolicy& p, int attempt) {
  Millis d = std::max(p.base_delay, Millis(0));
  // Doubling stops at the cap, so it cannot overflow.
  for (int i = 1; i < attempt && d < p.max_delay; ++i) d *= 2;
  return std::min(d, p.max_delay);
}

}  // namespace

std::string describe(const Attempt& a) {
  if (a.http_status == 0)
    return "connection error: " + (a.transport_error.empty() ? std::string("no HTTP response") : printable(a.transport_error, kMaxBodyInReason));
  std::string out = "HTTP " + std::to_string(a.http_status);
  if (is_success(a.http_status)) {
    std::string body = printable(a.body, kMaxBodyInReason);
    return body.empty() ? out : out + " " + body;
  }
  std::string detail = body_detail(a.body);
  return detail.empty() ? out : out + " (" + detail + ")";
}

RetryDecision decide_retry(const RetryPolicy& p, int attempt, const Attempt& a) {
  // Mattermost answers 200 "ok", Slack-compatible servers 200 with JSON
  // (Rocket.Chat, Zulip) or 204 (Discord): any 2xx means the post arrived.
  if (is_success(a.http_status)) return {Verdict::Delivered, Millis(0), describe(a)};
  if (!retryable(a.http_status)) return {Verdict::GiveUp, Millis(0), describe(a) + "; not retried"};
  if (attempt >= p.max_attempts)
    return {Verdict::GiveUp, Millis(0), describe(a) + "; gave up after " + std::to_string(attempt) + " attempts"};
  Millis delay = backoff(p, attempt);
  // 503 may carry Retry-After too (RFC 9110); the server knows best when it is back.
  if ((a.http_status == 429 || a.http_status == 503) && a.retry_after)
    delay = std::clamp(*a.retry_after, Millis(0), p.max_retry_after);
  return {Verdict::Retry, delay, describe(a)};
}

std::optional<Millis> parse_retry_after(std::string_view v) {
  v = trim(v);
  if (v.empty()) return std::nullopt;
  int64_t seconds = 0;
  for (char c : v) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    // Saturate: absurd values are capped by the policy anyway.
    if (seconds < 1'000'000'000) seconds = seconds * 10 + (c - '0');
  }
  return Millis(std::min<int64_t>(seconds, 1'000'000'000) * 1000);
}

}  // namespace rw::notify
