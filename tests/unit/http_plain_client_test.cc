#include "http/plain_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"

namespace rw::http {
namespace {

TEST(PlainUrl, TakesPlainHttpUrlsAndSaysWhatGoesOnTheWire) {
  auto u = parse_plain_url("http://chat.example.com/hooks/abc?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "chat.example.com");
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->host_header, "chat.example.com");
  EXPECT_EQ(u->target, "/hooks/abc?x=1");

  u = parse_plain_url("HTTP://127.0.0.1:8065");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "8065");
  EXPECT_EQ(u->host_header, "127.0.0.1:8065");
  EXPECT_EQ(u->target, "/");

  u = parse_plain_url("http://[::1]:0080?q");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->host_header, "[::1]");
  EXPECT_EQ(u->target, "/?q");
}

TEST(PlainUrl, LeavesEverythingElseToLibcurl) {
  for (const char* url : {"https://chat.example.com/hooks/abc", "ftp://h/x", "http://", "http:///x",
                          "http://user:pw@h/x", "http://h:0/x", "http://h:65536/x", "http://h:/x", "http://h:8a/x",
                          "http://h x/y", "http://h/a b", "http://[::1/x", "http://[::1]x/y", "http://a:1:2/",
                          "http://h/a/../b", "http://h/./b", "http://h/a/..", "http://h\xc3\xa9/x", "http://h%41/x"}) {
    EXPECT_FALSE(parse_plain_url(url)) << url;
  }
}

TEST(PlainUrl, AProxyInTheEnvironmentIsLibcurlsToUse) {
  ::unsetenv("http_proxy");
  ::unsetenv("all_proxy");
  ::unsetenv("ALL_PROXY");
  EXPECT_FALSE(proxy_configured());
  ::setenv("all_proxy", "http://proxy:3128", 1);
  EXPECT_TRUE(proxy_configured());
  ::setenv("all_proxy", "", 1);
  EXPECT_FALSE(proxy_configured());
  ::setenv("http_proxy", "http://proxy:3128", 1);
  EXPECT_TRUE(proxy_configured());
  ::unsetenv("http_proxy");
  ::unsetenv("all_proxy");
}

/// One connection on 127.0.0.1: reads a request (headers and Content-Length
/// body), keeps it, answers with `pieces` (a pause between them), then closes;
/// or, with `hold`, says nothing until the client goes.
class OneShotServer {
 public:
  OneShotServer(std::vector<std::string> pieces, bool hold) {
    listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_.get(), 4) != 0)
      return;
    socklen_t len = sizeof addr;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, pieces = std::move(pieces), hold] { serve(pieces, hold); });
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  /// What the client sent; waits for the exchange to end.
  std::string request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  void serve(const std::vector<std::string>& pieces, bool hold) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return;
    Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[65536];
    size_t want = std::string::npos;
    while (want == std::string::npos || request_.size() < want) {
      pollfd q{c.get(), POLLIN, 0};
      if (::poll(&q, 1, 10000) <= 0) return;
      ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      request_.append(buf, size_t(n));
      size_t end = request_.find("\r\n\r\n");
      if (want == std::string::npos && end != std::string::npos) {
        size_t cl = request_.find("Content-Length: ");
        want = end + 4 + (cl < end ? std::strtoul(request_.c_str() + cl + 16, nullptr, 10) : 0);
      }
    }
    if (hold) {
      pollfd q{c.get(), POLLIN, 0};
      (void)::poll(&q, 1, 10000);  // the client gives up first
      return;
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      (void)!::send(c.get(), pieces[i].data(), pieces[i].size(), MSG_NOSIGNAL);
    }
  }

  Fd listener_;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

struct Exchange {
  Response response;
  std::string request;
};

enum class Client { Curl, Plain };

Exchange post_with(Client client, const std::vector<std::string>& reply, bool hold, Millis timeout,
                   const std::string& path) {
  OneShotServer server(reply, hold);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + path;
  const std::string body = R"({"text":"run done"})";
  Exchange e;
  if (client == Client::Curl) {
    CurlClient curl;
    e.response = curl.post_json(url, body, timeout);
  } else {
    auto u = parse_plain_url(url);
    if (!u) {
      e.response.error = "plain client refused the url";
      return e;
    }
    e.response = post_json_plain(*u, body, timeout);
  }
  // Each exchange has its own server: the port in Host is the one difference.
  e.request = server.request();
  const std::string port = ":" + std::to_string(server.port());
  if (size_t at = e.request.find(port); at != std::string::npos) e.request.replace(at, port.size(), ":PORT");
  return e;
}

/// The request line, Host, Content-Type, Content-Length and body: what a
/// webhook server looks at.
std::string essentials(const std::string& request) {
  std::string out;
  size_t end = request.find("\r\n\r\n");
  size_t at = 0;
  while (at < end) {
    size_t nl = request.find("\r\n", at);
    std::string line = request.substr(at, nl - at);
    if (at == 0 || line.rfind("Host:", 0) == 0 || line.rfind("Content-Type:", 0) == 0 ||
        line.rfind("Content-Length:", 0) == 0)
      out += line + "\n";
    at = nl + 2;
  }
  return out + (end == std::string::npos ? "" : request.substr(end + 4));
}

struct Case {
  const char* name;
  std::vector<std::string> reply;
  bool hold = false;
  Millis timeout{5000};
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class SameAsLibcurl : public ::testing::TestWithParam<Case> {};

TEST_P(SameAsLibcurl, ForTheSameReplyBothClientsGiveTheSameResponse) {
  const Case& c = GetParam();
  Exchange curl = post_with(Client::Curl, c.reply, c.hold, c.timeout, "/hooks/abc?channel=qa");
  Exchange plain = post_with(Client::Plain, c.reply, c.hold, c.timeout, "/hooks/abc?channel=qa");
  EXPECT_EQ(plain.response.status, curl.response.status);
  EXPECT_EQ(plain.response.body, curl.response.body);
  EXPECT_EQ(plain.response.retry_after, curl.response.retry_after);
  EXPECT_EQ(plain.response.error, curl.response.error);
  EXPECT_EQ(essentials(plain.request), essentials(curl.request));
  EXPECT_NE(essentials(plain.request).find(R"({"text":"run done"})"), std::string::npos) << plain.request;
}

const std::string kBig(100 * 1024, 'x');

INSTANTIATE_TEST_SUITE_P(
    Replies, SameAsLibcurl,
    ::testing::Values(
        Case{"ContentLength", {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}},
        Case{"SlackJson", {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"}},
        Case{"ChunkedInPieces",
             {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWi", "ki\r\n5;ext=1\r\npedia\r\n",
              "0\r\nX-Trailer: t\r\n\r\n"}},
        Case{"UntilClose", {"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nhello ", "world"}},
        Case{"ContinueThenRateLimited",
             {"HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\n",
              "HTTP/1.1 429 Too Many Requests\r\nretry-after:  3 \r\nContent-Length: 4\r\n\r\nslow"}},
        Case{"ContinueThenOk", {"HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"}},
        Case{"NoContent", {"HTTP/1.1 204 No Content\r\n\r\n"}},
        Case{"ServerErrorWithBareLineFeeds", {"HTTP/1.1 500 Oops\nContent-Length: 3\n\nbad"}},
        Case{"BodyOver64KiBIsCut", {"HTTP/1.1 400 Bad\r\nContent-Length: 102400\r\n\r\n" + kBig}},
        Case{"ChunkedBodyOver64KiBIsCut",
             {"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n19000\r\n" + kBig + "\r\n0\r\n\r\n"}},
        Case{"ClosedWithoutAWord", {}},
        Case{"ClosedMidBody", {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"}},
        Case{"ClosedMidChunk", {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc"}},
        Case{"NotHttp", {"SSH-2.0-OpenSSH_9.2\r\n"}},
        Case{"Silent", {}, true, Millis(300)}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PlainClient, ALocalNameIsResolvedAndAClosedPortIsRefusedWithoutTheUrl) {
  Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  s.reset();
  auto u = parse_plain_url("http://localhost:" + port + "/hooks/s3cretpath");
  ASSERT_TRUE(u);
  Response r = post_json_plain(*u, "{}", Millis(5000));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.error, "Couldn't connect to server");
}

}  // namespace
}  // namespace rw::http
