#pragma once
// A POST over plain HTTP/1.1 without libcurl. Loading libcurl and what it
// pulls in (TLS, Kerberos, LDAP, ...) costs a watcher about 10k symbol
// relocations and hundreds of page faults: more than the post itself. For a
// plain http:// webhook with no proxy in the environment this client sends
// the request itself; anything else (https, a proxy, user:password@ in the
// URL) goes to CurlClient. Both give the same Response for the same reply.

#include <optional>
#include <string>
#include <string_view>

#include "common/duration.h"
#include "http/curl_client.h"

namespace rw::http {

/// Where a plain http:// URL points, and what to put on the request line.
struct PlainUrl {
  std::string host;  ///< without the brackets of an IPv6 literal
  std::string port;  ///< "80" unless the URL says otherwise
  std::string host_header;
  std::string target;  ///< path and query, "/" at least; no fragment
};

/// The URL parsed when this client can post to it alone: scheme http (any
/// case), no userinfo, a valid port, only printable ASCII. nullopt otherwise
/// (then libcurl decides, and reports what is wrong with it).
std::optional<PlainUrl> parse_plain_url(std::string_view url);

/// Whether the environment names a proxy that libcurl would use for an
/// http:// URL (http_proxy, all_proxy, ALL_PROXY).
bool proxy_configured();

/// POSTs `body` as application/json to `url` (which parse_plain_url took),
/// `timeout` bounding the whole exchange (connect at most 10 s of it) once
/// the host's addresses are known: a name is resolved by getaddrinfo, which
/// only the resolver's own timeouts bound (resolv.conf; libcurl's resolver
/// counts against `timeout`).
/// Redirects are not followed. One connection per post (Connection: close).
Response post_json_plain(const PlainUrl& url, const std::string& body, Millis timeout);

/// What post_json_plain makes of `reply` when the server sends exactly that
/// and closes (the parser on its own, for tests and fuzzing).
Response parse_reply(std::string_view reply);

}  // namespace rw::http
