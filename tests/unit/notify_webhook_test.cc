#include "notify/webhook.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/fd.h"

namespace rw::notify {
namespace {

constexpr const char* kUrl = "https://chat.example.com/hooks/k3yk3yk3yk3y99";

/// Answers from a script and records what was posted.
class FakeTransport : public Transport {
 public:
  explicit FakeTransport(std::deque<Attempt> script) : script_(std::move(script)) {}
  Attempt post(const std::string& url, const std::string& body, Millis timeout) override {
    urls.push_back(url);
    bodies.push_back(body);
    timeouts.push_back(timeout);
    if (script_.empty()) return status(599);
    Attempt a = script_.front();
    script_.pop_front();
    return a;
  }
  static Attempt status(int s, std::string body = "", std::optional<Millis> retry_after = std::nullopt) {
    Attempt a;
    a.http_status = s;
    a.body = std::move(body);
    a.retry_after = retry_after;
    return a;
  }
  static Attempt refused() {
    Attempt a;
    a.transport_error = "Couldn't connect to server";
    return a;
  }
  std::vector<std::string> urls, bodies;
  std::vector<Millis> timeouts;

 private:
  std::deque<Attempt> script_;
};

struct Recorder {
  std::vector<Millis> delays;
  std::vector<std::string> lines;
  std::function<void(Millis)> sleep() {
    return [this](Millis d) { delays.push_back(d); };
  }
  std::function<void(const std::string&)> log() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
};

TEST(NotifyWebhook, TwoServerErrorsThenOkIsDeliveredAfterThreeAttempts) {
  FakeTransport t({FakeTransport::status(500), FakeTransport::status(500), FakeTransport::status(200, "ok")});
  Recorder rec;
  SendResult r = send_with_retries(t, kUrl, "{}", RetryPolicy{}, rec.sleep(), rec.log(), Millis(1234));
  EXPECT_TRUE(r.delivered);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(r.last_status, 200);
  EXPECT_EQ(rec.delays, (std::vector<Millis>{Millis(500), Millis(1000)}));
  ASSERT_EQ(t.bodies.size(), 3u);
  EXPECT_EQ(t.urls[0], kUrl);
  EXPECT_EQ(t.bodies[2], "{}");
  EXPECT_EQ(t.timeouts[0], Millis(1234));
  ASSERT_EQ(rec.lines.size(), 3u);
  EXPECT_NE(rec.lines[0].find("attempt 1/6: HTTP 500; retrying in 500ms"), std::string::npos) << rec.lines[0];
  EXPECT_NE(rec.lines[2].find("delivered"), std::string::npos) << rec.lines[2];
}

TEST(NotifyWebhook, A400IsTriedOnceAndItsMattermostIdReported) {
  FakeTransport t({FakeTransport::status(400, R"({"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook"})")});
  Recorder rec;
  SendResult r = send_with_retries(t, kUrl, "{}", RetryPolicy{}, rec.sleep(), rec.log());
  EXPECT_FALSE(r.delivered);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.last_status, 400);
  EXPECT_NE(r.reason.find("web.incoming_webhook.invalid.app_error"), std::string::npos) << r.reason;
  EXPECT_TRUE(rec.delays.empty());
  EXPECT_EQ(t.timeouts[0], Millis(10000));
}

TEST(NotifyWebhook, TooManyRequestsWaitsForRetryAfter) {
  FakeTransport t({FakeTransport::status(429, "", Millis(2000)), FakeTransport::status(200, "ok")});
  Recorder rec;
  SendResult r = send_with_retries(t, kUrl, "{}", RetryPolicy{}, rec.sleep(), rec.log());
  EXPECT_TRUE(r.delivered);
  EXPECT_EQ(rec.delays, std::vector<Millis>{Millis(2000)});
}

TEST(NotifyWebhook, ConnectionErrorsAreRetriedUntilMaxAttempts) {
  RetryPolicy p;
  p.max_attempts = 4;
  FakeTransport t({FakeTransport::refused(), FakeTransport::refused(), FakeTransport::refused(), FakeTransport::refused(),
                   FakeTransport::status(200, "ok")});
  Recorder rec;
  SendResult r = send_with_retries(t, kUrl, "{}", p, rec.sleep(), rec.log());
  EXPECT_FALSE(r.delivered);
  EXPECT_EQ(r.attempts, 4);
  EXPECT_EQ(r.last_status, 0);
  EXPECT_EQ(rec.delays, (std::vector<Millis>{Millis(500), Millis(1000), Millis(2000)}));
  EXPECT_NE(r.reason.find("Couldn't connect to server"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("gave up after 4 attempts"), std::string::npos) << r.reason;
}

TEST(NotifyWebhook, AServerEchoingTheUrlNeverGetsItIntoLogsOrReasons) {
  FakeTransport t({FakeTransport::status(502, std::string("proxy could not reach ") + kUrl),
                   FakeTransport::status(404, "no such path /hooks/k3yk3yk3yk3y99")});
  Recorder rec;
  SendResult r = send_with_retries(t, kUrl, "{}", RetryPolicy{}, rec.sleep(), rec.log());
  EXPECT_FALSE(r.delivered);
  for (const auto& l : rec.lines) EXPECT_EQ(l.find("k3yk3yk3yk3y99"), std::string::npos) << l;
  EXPECT_EQ(r.reason.find("k3yk3yk3yk3y99"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("[redacted]"), std::string::npos) << r.reason;
}

TEST(NotifyWebhook, RedactUrlHidesQueryTokensAndSlackSecrets) {
  EXPECT_EQ(redact_url("x https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX y",
                       "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"),
            "x [redacted] y");
  EXPECT_EQ(redact_url("bad token abcdefgh12345", "http://h/hook?token=abcdefgh12345"), "bad token [redacted]");
  EXPECT_EQ(redact_url("keep hooks and services", "https://h/hooks/services/abcdefghijk"), "keep hooks and services");
}

TEST(NotifyWebhook, ARetryAfterHeaderBecomesAnAttemptDelay) {
  http::Response resp;
  resp.status = 429;
  resp.retry_after = "7";
  Attempt a = to_attempt(resp);
  EXPECT_EQ(a.http_status, 429);
  EXPECT_EQ(a.retry_after, Millis(7000));
  resp.retry_after = "Wed, 21 Oct 2015 07:28:00 GMT";
  EXPECT_EQ(to_attempt(resp).retry_after, std::nullopt);
}

/// A port on 127.0.0.1 that nobody listens on.
int closed_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return 0;
  return ntohs(addr.sin_port);
}

// A tiny HTTP server on 127.0.0.1 (python3), started per test.
constexpr const char* kServer = R"PY(
import http.server, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        with open(out, 'wb') as f:
            f.write(body)
        with open(out + '.ctype', 'w') as f:
            f.write(self.headers.get('Content-Type', ''))
        extra = []
        if self.path == '/busy':
            code, reply = 429, b'{"id":"api.context.rate_limit","message":"slow down"}'
            extra = [('Retry-After', '7')]
        else:
            code, reply = 200, b'ok'
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
)PY";

class HttpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rw-curl-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    received_ = dir_ + "/received";
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    Fd read_end(fds[0]), write_end(fds[1]);
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::dup2(write_end.get(), STDOUT_FILENO);
      ::execlp("python3", "python3", "-c", kServer, received_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    write_end.reset();
    // The server prints its ephemeral port once it listens.
    std::string line;
    for (;;) {
      pollfd p{read_end.get(), POLLIN, 0};
      if (::poll(&p, 1, 20000) <= 0) break;
      char c;
      if (::read(read_end.get(), &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) GTEST_SKIP() << "python3 http server did not start";
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  std::string url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  static std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  std::string dir_, received_;
  pid_t pid_ = -1;
  int port_ = 0;
};

TEST_F(HttpTransportTest, PostsJsonToARealServerAndReadsOk) {
  HttpTransport t;
  const std::string body = R"({"text":"hello"})" + std::string(20000, ' ');  // big enough to tempt Expect: 100-continue
  Attempt a = t.post(url("/hooks/abc"), body, Millis(10000));
  EXPECT_EQ(a.http_status, 200) << a.transport_error;
  EXPECT_EQ(a.body, "ok");
  EXPECT_TRUE(a.transport_error.empty());
  EXPECT_EQ(slurp(received_), body);
  EXPECT_EQ(slurp(received_ + ".ctype"), "application/json");
  EXPECT_EQ(decide_retry({}, 1, a).verdict, Verdict::Delivered);
}

TEST_F(HttpTransportTest, ReadsStatusBodyAndRetryAfterOfARefusal) {
  HttpTransport t;
  Attempt a = t.post(url("/busy"), "{}", Millis(10000));
  EXPECT_EQ(a.http_status, 429);
  EXPECT_EQ(a.retry_after, Millis(7000));
  auto d = decide_retry({}, 1, a);
  EXPECT_EQ(d.verdict, Verdict::Retry);
  EXPECT_EQ(d.delay, Millis(7000));
  EXPECT_NE(d.reason.find("api.context.rate_limit"), std::string::npos) << d.reason;
  EXPECT_EQ(t.post(url("/hooks/abc"), "{}", Millis(10000)).http_status, 200);
  EXPECT_FALSE(t.used_libcurl()) << "a plain http:// webhook is posted without libcurl";
}

TEST_F(HttpTransportTest, ProxiesAndHttpsAreLibcurlsAndItsHandleIsReused) {
  HttpTransport t;
  const std::string proxy = "http://127.0.0.1:" + std::to_string(closed_port());
  ::setenv("http_proxy", proxy.c_str(), 1);
  Attempt a = t.post(url("/hooks/abc"), "{}", Millis(5000));
  ::unsetenv("http_proxy");
  EXPECT_TRUE(t.used_libcurl());
  EXPECT_EQ(a.http_status, 0) << "the post went to the (closed) proxy";
  EXPECT_FALSE(a.transport_error.empty());
  EXPECT_EQ(t.post(url("/hooks/abc"), "{}", Millis(10000)).http_status, 200);

  HttpTransport tls;
  a = tls.post("https://127.0.0.1:" + std::to_string(closed_port()) + "/hooks/abc", "{}", Millis(5000));
  EXPECT_TRUE(tls.used_libcurl());
  EXPECT_EQ(a.transport_error, "Couldn't connect to server");
}

TEST(HttpTransportErrors, AClosedPortIsAConnectionErrorWithoutTheUrl) {
  const int port = closed_port();
  ASSERT_GT(port, 0);
  HttpTransport t;
  const std::string u = "http://127.0.0.1:" + std::to_string(port) + "/hooks/s3cretpath";
  Attempt a = t.post(u, "{}", Millis(5000));
  EXPECT_EQ(a.http_status, 0);
  EXPECT_FALSE(a.transport_error.empty());
  EXPECT_EQ(a.transport_error.find("s3cretpath"), std::string::npos) << a.transport_error;
  EXPECT_EQ(a.transport_error.find(std::to_string(port)), std::string::npos) << a.transport_error;
  EXPECT_EQ(decide_retry({}, 1, a).verdict, Verdict::Retry);
}

}  // namespace
}  // namespace rw::notify
