#include "http/plain_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <functional>
#include <memory>

#include "common/fd.h"
#include "common/text.h"

#ifndef RUNWARDEN_VERSION
#define RUNWARDEN_VERSION "dev"
#endif

namespace rw::http {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBlock = 100 * 1024;

// What curl_easy_strerror says of the same failures: the words users and
// logs already know from the libcurl path.
constexpr const char* kResolveFailed = "Couldn't resolve host name";
constexpr const char* kConnectFailed = "Couldn't connect to server";
constexpr const char* kTimedOut = "Timeout was reached";
constexpr const char* kSendFailed = "Failed sending data to the peer";
constexpr const char* kRecvFailed = "Failure when receiving data from the peer";
constexpr const char* kGotNothing = "Server returned nothing (no headers, no data)";
constexpr const char* kWeirdReply = "Weird server reply";
constexpr const char* kPartial = "Transferred a partial file";
constexpr const char* kNotHttp = "Unsupported protocol";  // no status line: HTTP/0.9, or not HTTP at all

bool all_of(std::string_view s, int (*pred)(int)) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
}

int is_host_char(int c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; }
int is_ipv6_char(int c) { return std::isxdigit(c) || c == ':' || c == '.'; }

/// A path with "." or ".." segments: libcurl rewrites those, so it posts them.
bool has_dot_segment(std::string_view path) {
  for (size_t at = 0; at < path.size();) {
    size_t end = path.find('/', at + 1);
    std::string_view seg = path.substr(at + 1, end == std::string_view::npos ? std::string_view::npos : end - at - 1);
    if (seg == "." || seg == "..") return true;
    if (end == std::string_view::npos) break;
    at = end;
  }
  return false;
}

/// One TCP connection with a deadline over everything done on it.
class Connection {
 public:
  explicit Connection(Clock::time_point deadline) : deadline_(deadline) {}

  /// Connects to the first address that answers; "" or what went wrong.
  std::string open(const PlainUrl& u, Millis connect_timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &found) != 0 || !found) return kResolveFailed;
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, ::freeaddrinfo);
    const Clock::time_point connect_by = std::min(deadline_, Clock::now() + connect_timeout);
    int left = 0;
    for (addrinfo* a = found; a; a = a->ai_next) ++left;
    std::string why = kConnectFailed;
    for (addrinfo* a = found; a; a = a->ai_next, --left) {
      // Each address gets its share of what is left, so one that never
      // answers does not take the time of those after it.
      const auto share = (connect_by - Clock::now()) / left;
      if (share <= Clock::duration::zero()) return kTimedOut;
      Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
      if (!fd.valid()) continue;
      int one = 1;
      ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) continue;
        if (!wait(fd.get(), POLLOUT, Clock::now() + share)) {
          why = kTimedOut;
          continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) continue;
      }
      fd_ = std::move(fd);
      return "";
    }
    return why;
  }

  std::string send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(size_t(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait(fd_.get(), POLLOUT, deadline_)) return kTimedOut;
      } else {
        return kSendFailed;
      }
    }
    return "";
  }

  /// Appends what arrives to `in`. 1: data, 0: the peer closed, -1: `error` set.
  int receive(std::string* in, std::string* error) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n > 0) {
        in->append(buf, size_t(n));
        return 1;
      }
      if (n == 0) return 0;
      if (errno != EAGAIN && errno != EINTR) {
        *error = kRecvFailed;
        return -1;
      }
      if (!wait(fd_.get(), POLLIN, deadline_)) {
        *error = kTimedOut;
        return -1;
      }
    }
  }

 private:
  /// False when `by` passed first.
  static bool wait(int fd, short events, Clock::time_point by) {
    for (;;) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(by - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      int r = ::poll(&p, 1, int(std::min<long long>(left, INT_MAX)));
      if (r > 0 || (r < 0 && errno != EINTR)) return true;  // the next call tells what happened
    }
  }

  Clock::time_point deadline_;
  Fd fd_;
};

/// Appends what arrives to its first argument. 1: data, 0: the peer closed,
/// -1: the second argument says what went wrong.
using Receive = std::function<int(std::string*, std::string*)>;

/// The reply, read as it arrives.
class Reader {
 public:
  explicit Reader(Receive receive) : receive_(std::move(receive)) {}

  /// The next line without its CR LF; nullopt when the stream ended or failed
  /// first (`error` says which).
  std::optional<std::string> line(size_t limit) {
    for (;;) {
      size_t nl = in_.find('\n', pos_);
      if (nl != std::string::npos) {
        std::string l = in_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        if (!l.empty() && l.back() == '\r') l.pop_back();
        return l;
      }
      if (in_.size() - pos_ > limit) {
        error = kWeirdReply;
        return std::nullopt;
      }
      if (!more()) return std::nullopt;
    }
  }

  /// Exactly `n` bytes, the first `keep` of them appended to `out`.
  bool bytes(size_t n, std::string* out, size_t keep) {
    while (n > 0) {
      if (pos_ == in_.size() && !more()) return false;
      size_t take = std::min(n, in_.size() - pos_);
      out->append(in_, pos_, std::min(take, keep));
      keep -= std::min(take, keep);
      pos_ += take;
      n -= take;
    }
    return true;
  }

  /// Everything until the peer closes.
  bool rest(std::string* out, size_t keep) {
    for (;;) {
      size_t take = in_.size() - pos_;
      out->append(in_, pos_, std::min(take, keep));
      keep -= std::min(take, keep);
      pos_ = in_.size();
      if (!more()) return error.empty();
    }
  }

  /// Whether the peer sent a single byte.
  bool anything() const { return got_any_; }

  std::string error;  ///< set when the stream failed; empty when it only ended

 private:
  bool more() {
    if (closed_) return false;
    if (pos_ > 0 && pos_ == in_.size()) {
      in_.clear();
      pos_ = 0;
    }
    int r = receive_(&in_, &error);
    if (r == 0) closed_ = true;
    if (r > 0) got_any_ = true;
    return r > 0;
  }

  Receive receive_;
  std::string in_;
  size_t pos_ = 0;
  bool closed_ = false;
  bool got_any_ = false;
};

/// Reads one reply into `r`; "" or what went wrong.
std::string read_reply(Reader* rd, Response* r) {
  bool chunked = false;
  int64_t length = -1;  // no Content-Length
  for (;;) {  // header blocks: informational (1xx) ones are skipped
    auto status_line = rd->line(kMaxHeaderBlock);
    if (!status_line) return !rd->error.empty() ? rd->error : rd->anything() ? kWeirdReply : kGotNothing;
    const std::string& s = *status_line;
    if (s.compare(0, 5, "HTTP/") != 0) return kNotHttp;
    if (s.size() < 12 || s.compare(0, 7, "HTTP/1.") != 0 || !std::isdigit(static_cast<unsigned char>(s[7])) ||
        s[8] != ' ' || !all_of(std::string_view(s).substr(9, 3), std::isdigit) || (s.size() > 12 && s[12] != ' '))
      return kWeirdReply;
    r->status = std::atoi(s.substr(9, 3).c_str());
    r->retry_after.clear();
    chunked = false;
    length = -1;
    size_t block = s.size();
    for (;;) {
      auto h = rd->line(kMaxHeaderBlock);
      if (!h) return !rd->error.empty() ? rd->error : kWeirdReply;
      if (h->empty()) break;
      block += h->size();
      if (block > kMaxHeaderBlock) return kWeirdReply;
      size_t colon = h->find(':');
      if (colon == std::string::npos) continue;
      std::string_view name(h->data(), colon);
      std::string_view value = trim(std::string_view(*h).substr(colon + 1));
      if (equals_nocase(name, "Retry-After")) {
        r->retry_after = std::string(value);
      } else if (equals_nocase(name, "Content-Length")) {
        if (value.empty() || value.size() > 18 || !all_of(value, std::isdigit)) return kWeirdReply;
        length = std::strtoll(std::string(value).c_str(), nullptr, 10);
      } else if (equals_nocase(name, "Transfer-Encoding")) {
        std::string_view last = value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1);
        chunked = equals_nocase(trim(last), "chunked");
      }
    }
    if (r->status >= 100 && r->status < 200) {
      if (r->status == 101) return kWeirdReply;
      continue;
    }
    break;
  }
  if (r->status == 204 || r->status == 304) return "";
  if (chunked) {
    for (;;) {
      auto size_line = rd->line(1024);
      if (!size_line) return !rd->error.empty() ? rd->error : kPartial;
      std::string_view hex = trim(std::string_view(*size_line).substr(0, size_line->find(';')));
      if (hex.empty() || hex.size() > 15 || !all_of(hex, std::isxdigit)) return kRecvFailed;
      uint64_t n = std::strtoull(std::string(hex).c_str(), nullptr, 16);
      if (n == 0) {
        // Trailers up to the blank line; a peer that closes instead is done too.
        while (auto t = rd->line(kMaxHeaderBlock)) {
          if (t->empty()) break;
        }
        return "";
      }
      if (!rd->bytes(n, &r->body, kMaxResponseBody - std::min(kMaxResponseBody, r->body.size())))
        return !rd->error.empty() ? rd->error : kPartial;
      auto crlf = rd->line(2);
      if (!crlf || !crlf->empty()) return !rd->error.empty() ? rd->error : kRecvFailed;
    }
  }
  if (length >= 0) {
    if (!rd->bytes(uint64_t(length), &r->body, kMaxResponseBody)) return !rd->error.empty() ? rd->error : kPartial;
    return "";
  }
  if (!rd->rest(&r->body, kMaxResponseBody)) return rd->error;
  return "";
}

}  // namespace

std::optional<PlainUrl> parse_plain_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() <= kScheme.size() || !equals_nocase(url.substr(0, kScheme.size()), kScheme)) return std::nullopt;
  if (!std::all_of(url.begin(), url.end(), [](char c) { return c > ' ' && c < 0x7f; })) return std::nullopt;
  url.remove_prefix(kScheme.size());
  url = url.substr(0, url.find('#'));
  size_t auth_end = std::min(url.find('/'), url.find('?'));
  std::string_view authority = url.substr(0, auth_end);
  std::string_view rest = auth_end == std::string_view::npos ? std::string_view() : url.substr(auth_end);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;

  PlainUrl u;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    if (u.host.empty() || !all_of(u.host, is_ipv6_char)) return std::nullopt;
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    } else {
      port = "80";
    }
  } else {
    size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    port = colon == std::string_view::npos ? std::string_view("80") : authority.substr(colon + 1);
    if (u.host.empty() || !all_of(u.host, is_host_char)) return std::nullopt;
  }
  if (port.empty() || port.size() > 5 || !all_of(port, std::isdigit)) return std::nullopt;
  const int port_number = std::atoi(std::string(port).c_str());
  if (port_number < 1 || port_number > 65535) return std::nullopt;
  u.port = std::to_string(port_number);
  const bool bracketed = u.host.find(':') != std::string::npos;
  u.host_header = (bracketed ? "[" + u.host + "]" : u.host) + (port_number == 80 ? "" : ":" + u.port);
  if (rest.empty() || rest.front() == '?') u.target = "/" + std::string(rest);
  else u.target = std::string(rest);
  if (has_dot_segment(u.target.substr(0, u.target.find('?')))) return std::nullopt;
  return u;
}

bool proxy_configured() {
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v && *v) return true;
  }
  return false;
}

Response post_json_plain(const PlainUrl& url, const std::string& body, Millis timeout) {
  const Millis total = std::max(Millis(1), timeout);
  Connection conn(Clock::now() + total);
  Response r;
  auto fail = [&](std::string why) {
    r = Response{};
    r.error = std::move(why);
    return r;
  };
  if (auto why = conn.open(url, std::min(total, kMaxConnectTimeout)); !why.empty()) return fail(why);

  std::string request;
  request.reserve(body.size() + 256);
  request += "POST " + url.target + " HTTP/1.1\r\n";
  request += "Host: " + url.host_header + "\r\n";
  request += "User-Agent: runwarden/" RUNWARDEN_VERSION "\r\n";
  request += "Accept: */*\r\n";
  request += "Content-Type: application/json\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "Connection: close\r\n\r\n";
  request += body;
  if (auto why = conn.send_all(request); !why.empty()) return fail(why);

  Reader rd([&](std::string* in, std::string* error) { return conn.receive(in, error); });
  if (auto why = read_reply(&rd, &r); !why.empty()) return fail(why);
  return r;
}

Response parse_reply(std::string_view reply) {
  bool sent = false;
  Reader rd([&](std::string* in, std::string*) {
    if (sent || reply.empty()) return 0;
    in->append(reply);
    sent = true;
    return 1;
  });
  Response r;
  if (auto why = read_reply(&rd, &r); !why.empty()) {
    r = Response{};
    r.error = why;
  }
  return r;
}

}  // namespace rw::http
