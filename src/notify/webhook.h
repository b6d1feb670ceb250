#pragma once
// Posting a payload to the webhook, with retries. Transport is the seam:
// tests use a fake, production uses HttpTransport.

#include <functional>
#include <optional>
#include <string>

#include "common/duration.h"
#include "http/curl_client.h"
#include "notify/retry_policy.h"

namespace rw::notify {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual Attempt post(const std::string& url, const std::string& body, Millis timeout) = 0;
};

/// The real transport. A plain http:// webhook with no proxy configured is
/// posted by http/plain_client (no libcurl loaded); anything else by one
/// curl handle, made on the first post that needs it and reused after.
class HttpTransport : public Transport {
 public:
  Attempt post(const std::string& url, const std::string& body, Millis timeout) override;
  /// Whether a post went through libcurl (and so loaded it).
  bool used_libcurl() const { return curl_.has_value(); }

 private:
  std::optional<http::CurlClient> curl_;
};

/// http::Response as the retry logic sees it (Retry-After parsed).
Attempt to_attempt(const http::Response& r);

struct SendResult {
  bool delivered = false;
  int attempts = 0;
  int last_status = 0;  ///< 0 if the last attempt got no HTTP answer
  std::string reason;   ///< the last decision's reason; never the URL
};

/// Posts with retries per the policy. `sleep` is injected (tests record the
/// delays); `log` gets one line per attempt outcome. The URL, its path and
/// its long path segments (the hook's secret key) are scrubbed from every
/// logged and returned text, in case a server echoes them back.
SendResult send_with_retries(Transport& t, const std::string& url, const std::string& body, const RetryPolicy& p,
                             const std::function<void(Millis)>& sleep,
                             const std::function<void(const std::string&)>& log,
                             Millis per_attempt_timeout = Millis(10000));

/// `text` with the secret parts of `url` replaced by "[redacted]".
std::string redact_url(std::string text, const std::string& url);

}  // namespace rw::notify
