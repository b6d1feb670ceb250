#include "notify/webhook.h"

#include <algorithm>
#include <vector>

#include "http/plain_client.h"

namespace rw::notify {
namespace {

// A path segment this long is a token (Mattermost hook id: 26, Slack secret: 24);
// shorter ones ("hooks", "services", Slack team ids) are not secret.
constexpr size_t kMinSecretSegment = 12;

}  // namespace

Attempt to_attempt(const http::Response& r) {
  Attempt a;
  a.http_status = r.status;
  a.body = r.body;
  if (!r.retry_after.empty()) a.retry_after = parse_retry_after(r.retry_after);
  a.transport_error = r.error;
  return a;
}

Attempt HttpTransport::post(const std::string& url, const std::string& body, Millis timeout) {
  if (!http::proxy_configured()) {
    if (auto plain = http::parse_plain_url(url)) return to_attempt(http::post_json_plain(*plain, body, timeout));
  }
  if (!curl_) curl_.emplace();
  return to_attempt(curl_->post_json(url, body, timeout));
}

std::string redact_url(std::string text, const std::string& url) {
  if (url.empty()) return text;
  std::vector<std::string> secrets{url};
  size_t scheme = url.find("://");
  size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (path != std::string::npos) {
    if (url.size() - path >= kMinSecretSegment) secrets.push_back(url.substr(path));
    size_t pos = path;
    while (pos < url.size()) {
      size_t end = url.find_first_of("/?#&=", pos + 1);
      if (end == std::string::npos) end = url.size();
      if (end - pos - 1 >= kMinSecretSegment) secrets.push_back(url.substr(pos + 1, end - pos - 1));
      pos = end;
    }
  }
  // Longest first, so the whole URL is replaced before its pieces are.
  std::sort(secrets.begin(), secrets.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& s : secrets) {
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 10)) text.replace(at, s.size(), "[redacted]");
  }
  return text;
}

SendResult send_with_retries(Transport& t, const std::string& url, const std::string& body, const RetryPolicy& p,
                             const std::function<void(Millis)>& sleep,
                             const std::function<void(const std::string&)>& log, Millis per_attempt_timeout) {
  SendResult result;
  const std::string of = "/" + std::to_string(std::max(p.max_attempts, 1));
  for (int attempt = 1;; ++attempt) {
    Attempt a = t.post(url, body, per_attempt_timeout);
    RetryDecision d = decide_retry(p, attempt, a);
    result.attempts = attempt;
    result.last_status = a.http_status;
    result.reason = redact_url(d.reason, url);
    std::string line = "webhook attempt " + std::to_string(attempt) + of + ": ";
    switch (d.verdict) {
      case Verdict::Delivered:
        result.delivered = true;
        log(line + "delivered (" + result.reason + ")");
        return result;
      case Verdict::GiveUp:
        log(line + "not delivered: " + result.reason);
        return result;
      case Verdict::Retry:
        log(line + result.reason + "; retrying in " + format_duration(d.delay));
        sleep(d.delay);
        break;
    }
  }
}

}  // namespace rw::notify
