// Fuzzes the webhook client's reading of a server's reply and of a URL:
// whatever the bytes, a reply gives either an error and nothing else, or a
// final (non-1xx) status with at most 64 KiB of body; a URL it takes puts no
// byte on the request line or in Host that could end a header.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http/plain_client.h"

namespace {

bool header_safe(const std::string& s) {
  for (unsigned char c : s)
    if (c <= ' ' || c >= 0x7f) return false;
  return !s.empty();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  rw::http::Response r = rw::http::parse_reply(in);
  if (!r.error.empty() && (r.status != 0 || !r.body.empty() || !r.retry_after.empty())) std::abort();
  if (r.error.empty() && (r.status < 0 || r.status > 999 || (r.status >= 100 && r.status < 200))) std::abort();
  if (r.body.size() > rw::http::kMaxResponseBody) std::abort();
  if (r.retry_after.find('\n') != std::string::npos) std::abort();  // one header line at most

  if (auto u = rw::http::parse_plain_url(in)) {
    if (!header_safe(u->target) || u->target[0] != '/' || !header_safe(u->host_header) || u->host.empty())
      std::abort();
    if (u->target.find('#') != std::string::npos) std::abort();
  }
  return 0;
}
