#include "http/curl_client.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <mutex>
#include <string_view>
#include <type_traits>

#include "common/text.h"

#ifndef RUNWARDEN_VERSION
#define RUNWARDEN_VERSION "dev"
#endif

namespace rw::http {
namespace {

/// libcurl, loaded when the first post is due: a watcher spends nearly all
/// its life waiting, and libcurl with what it pulls in (TLS, Kerberos, LDAP,
/// ...) is most of what it would otherwise map.
struct CurlApi {
  std::string error;  ///< why it could not be loaded; empty when it was
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
};

const CurlApi& curl() {
  static const CurlApi api = [] {
    CurlApi a;
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      a.error = std::string("cannot load libcurl.so.4 (install libcurl4): ") + (why ? why : "unknown error");
      return a;
    }
    bool missing = false;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (!fn) missing = true;
    };
    sym(a.global_init, "curl_global_init");
    sym(a.easy_init, "curl_easy_init");
    sym(a.easy_cleanup, "curl_easy_cleanup");
    sym(a.easy_reset, "curl_easy_reset");
    sym(a.easy_setopt, "curl_easy_setopt");
    sym(a.easy_perform, "curl_easy_perform");
    sym(a.easy_getinfo, "curl_easy_getinfo");
    sym(a.easy_strerror, "curl_easy_strerror");
    sym(a.slist_append, "curl_slist_append");
    sym(a.slist_free_all, "curl_slist_free_all");
    if (missing) {
      a.error = "libcurl.so.4 lacks a function runwarden needs";
      return a;
    }
    a.global_init(CURL_GLOBAL_DEFAULT);
    return a;
  }();
  return api;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  size_t len = size * n;
  if (r->body.size() < kMaxResponseBody) r->body.append(data, std::min(len, kMaxResponseBody - r->body.size()));
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
  if (equals_nocase(line.substr(0, kRetryAfter.size()), kRetryAfter)) r->retry_after = trim(line.substr(kRetryAfter.size()));
  return size * n;
}

}  // namespace

void CurlClient::Deleter::operator()(void* handle) const { curl().easy_cleanup(handle); }

CurlClient::CurlClient() {
  if (curl().error.empty()) handle_.reset(curl().easy_init());
}

Response CurlClient::post_json(const std::string& url, const std::string& body, Millis timeout) {
  Response r;
  const CurlApi& api = curl();
  if (!handle_) {
    r.error = api.error.empty() ? "curl_easy_init failed" : api.error;
    return r;
  }
  CURL* h = handle_.get();
  api.easy_reset(h);  // drop options from the previous post, keep the connection cache

  curl_slist* list = nullptr;
  for (const char* line : {"Content-Type: application/json",
                           // Without this curl 7.x sends "Expect: 100-continue" for
                           // bodies over 1 KiB and may wait a second for a reply.
                           "Expect:"}) {
    curl_slist* grown = api.slist_append(list, line);
    if (!grown) {
      api.slist_free_all(list);
      r.error = api.easy_strerror(CURLE_OUT_OF_MEMORY);
      return r;
    }
    list = grown;
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(list, api.slist_free_all);

  const long total_ms = std::max<long>(1, static_cast<long>(timeout.count()));  // 0 would mean "forever"
  const long connect_ms = std::min<long>(total_ms, static_cast<long>(kMaxConnectTimeout.count()));

  api.easy_setopt(h, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  api.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  api.easy_setopt(h, CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  api.easy_setopt(h, CURLOPT_POST, 1L);
  api.easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  api.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  api.easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  api.easy_setopt(h, CURLOPT_USERAGENT, "runwarden/" RUNWARDEN_VERSION);
  // Signals would interrupt the watcher's event loop; timeouts work without them.
  api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  api.easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
  api.easy_setopt(h, CURLOPT_WRITEFUNCTION, &on_body);
  api.easy_setopt(h, CURLOPT_WRITEDATA, &r);
  api.easy_setopt(h, CURLOPT_HEADERFUNCTION, &on_header);
  api.easy_setopt(h, CURLOPT_HEADERDATA, &r);

  CURLcode rc = api.easy_perform(h);
  // No CURLOPT_ERRORBUFFER on purpose: its text may quote the URL, a secret.
  if (rc != CURLE_OK) {
    r = Response{};
    r.error = api.easy_strerror(rc);
    return r;
  }
  long code = 0;
  api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  r.status = static_cast<int>(code);
  return r;
}

}  // namespace rw::http
