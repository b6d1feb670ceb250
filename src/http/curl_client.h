#pragma once
// The one owner of a libcurl easy handle. Knows HTTP, not webhooks: retry
// decisions and Mattermost semantics live in notify/.

#include <cstddef>
#include <memory>
#include <string>

#include "common/duration.h"

namespace rw::http {

/// What one POST keeps of a reply's body; the rest is read and discarded.
inline constexpr size_t kMaxResponseBody = 64 * 1024;
/// The most of a post's time its connect may take.
inline constexpr Millis kMaxConnectTimeout{10000};

/// What one POST produced. status 0 means no HTTP answer (see error).
struct Response {
  int status = 0;
  std::string body;         ///< at most kMaxResponseBody
  std::string retry_after;  ///< raw Retry-After header value, empty if absent
  std::string error;        ///< curl_easy_strerror text; never the URL
};

class CurlClient {
 public:
  CurlClient();
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  /// POSTs `body` as application/json. `timeout` bounds the whole exchange;
  /// redirects are not followed (a webhook that redirects is misconfigured).
  /// The handle is reused, so consecutive posts may share a connection.
  Response post_json(const std::string& url, const std::string& body, Millis timeout);

 private:
  // CURL is `void` to C++ callers; keeping <curl/curl.h> out of this header.
  struct Deleter {
    void operator()(void* handle) const;
  };
  std::unique_ptr<void, Deleter> handle_;
};

}  // namespace rw::http
