#include "http/curl_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <string_view>

#include "common/text.h"

#ifndef RUNWARDEN_VERSION
#define RUNWARDEN_VERSION "dev"
#endif

namespace rw::http {
namespace {

constexpr size_t kMaxBody = 64 * 1024;
constexpr Millis kMaxConnectTimeout{10000};

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  size_t len = size * n;
  if (r->body.size() < kMaxBody) r->body.append(data, std::min(len, kMaxBody - r->body.size()));
  // Claim everything: returning less aborts the transfer, and the status
  // (what we actually need) would be reported as a write error.
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string_view line(data, size * n);
  // A status line starts a new response (e.g. after "100 Continue"); only the
  // final response's headers count.
  if (line.starts_with("HTTP/")) r->retry_after.clear();
  constexpr std::string_view kRetryAfter = "retry-after:";
  if (starts_with_nocase(line, kRetryAfter)) r->retry_after = trim(line.substr(kRetryAfter.size()));
  return size * n;
}

}  // namespace

void CurlClient::Deleter::operator()(void* handle) const { curl_easy_cleanup(handle); }

CurlClient::CurlClient() {
  global_init_once();
  handle_.reset(curl_easy_init());
}

Response CurlClient::post_json(const std::string& url, const std::string& body, Millis timeout) {
  Response r;
  if (!handle_) {
    r.error = "curl_easy_init failed";
    return r;
  }
  CURL* h = handle_.get();
  curl_easy_reset(h);  // drop options from the previous post, keep the connection cache

  curl_slist* list = nullptr;
  for (const char* line : {"Content-Type: application/json",
                           // Without this curl 7.x sends "Expect: 100-continue" for
                           // bodies over 1 KiB and may wait a second for a reply.
                           "Expect:"}) {
    curl_slist* grown = curl_slist_append(list, line);
    if (!grown) {
      curl_slist_free_all(list);
      r.error = curl_easy_strerror(CURLE_OUT_OF_MEMORY);
      return r;
    }
    list = grown;
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);

  const long total_ms = std::max<long>(1, static_cast<long>(timeout.count()));  // 0 would mean "forever"
  const long connect_ms = std::min<long>(total_ms, static_cast<long>(kMaxConnectTimeout.count()));

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, "runwarden/" RUNWARDEN_VERSION);
  // Signals would interrupt the watcher's event loop; timeouts work without them.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);

  CURLcode rc = curl_easy_perform(h);
  // No CURLOPT_ERRORBUFFER on purpose: its text may quote the URL, a secret.
  if (rc != CURLE_OK) {
    r = Response{};
    r.error = curl_easy_strerror(rc);
    return r;
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  r.status = static_cast<int>(code);
  return r;
}

}  // namespace rw::http
