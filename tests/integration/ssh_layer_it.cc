// The SSH layer against real sshds in network namespaces.
//
// Needs RW_NETNS_DIR from `tests/integration/netns-hosts.sh up DIR N` (N >= 2)
// and root (it inspects the namespaces with `ip netns exec`). Run it through
// tests/integration/ssh_layer_test.sh, which sets everything up and tears it
// down. Without RW_NETNS_DIR every test is skipped.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/files.h"
#include "ssh/relay.h"
#include "ssh/session.h"

namespace rw::ssh {
namespace {

namespace fs = std::filesystem;

// netns.env as written by netns-hosts.sh.
const std::map<std::string, std::string>& env() {
  static const std::map<std::string, std::string> values = [] {
    std::map<std::string, std::string> m;
    const char* dir = std::getenv("RW_NETNS_DIR");
    if (!dir) return m;
    std::ifstream in(std::string(dir) + "/netns.env");
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return m;
  }();
  return values;
}

std::string var(const std::string& k) {
  auto it = env().find(k);
  return it == env().end() ? "" : it->second;
}

std::string host_addr(int i) { return var("RW_NETNS_HOST_NET") + "." + std::to_string(10 + i); }
std::string host_ns(int i) { return var("RW_NETNS_PREFIX") + "h" + std::to_string(i); }

Endpoint host(int i) {
  Endpoint e;
  e.name = host_ns(i);
  e.address = host_addr(i);
  e.identity = var("RW_NETNS_KEY");
  e.known_hosts = var("RW_NETNS_KNOWN_HOSTS");
  return e;
}

Endpoint guest() {
  Endpoint e;
  e.name = var("RW_NETNS_GUEST");
  e.address = var("RW_NETNS_GUEST_ADDR");
  e.identity = var("RW_NETNS_KEY");
  e.known_hosts = var("RW_NETNS_KNOWN_HOSTS");
  return e;
}

ConnectOptions quick() {
  ConnectOptions o;
  o.connect_timeout = Millis(3000);
  o.connect_attempts = 1;
  return o;
}

struct Output {
  std::mutex mu;
  std::string out, err;
  Session::OutputFn fn() {
    return [this](bool is_err, std::string_view d) {
      std::lock_guard<std::mutex> g(mu);
      (is_err ? err : out).append(d);
    };
  }
};

// A local command's stdout (for inspecting the namespaces).
std::string local(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// "sleep 4242" as a pattern that does not match the shell running pgrep.
std::string self_safe(const std::string& pattern) { return "[" + pattern.substr(0, 1) + "]" + pattern.substr(1); }

// Processes whose command line contains `pattern` (wrappers included), seen
// from host 1's namespace (pids are shared, so this is only inspection).
std::string pgrep_on_h1(const std::string& pattern) {
  return local("ip netns exec " + host_ns(1) + " pgrep -af '" + self_safe(pattern) + "' 2>/dev/null");
}

// Waits up to `ms` for no process to match.
bool gone_within(const std::string& pattern, int ms) {
  int64_t until = mono_ms() + ms;
  while (mono_ms() < until) {
    if (pgrep_on_h1(pattern).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return pgrep_on_h1(pattern).empty();
}

// A file's content, "" when it cannot be read.
std::string slurp(const std::string& path) {
  auto r = read_file(path);
  return r.ok() ? *r : std::string();
}

int unique_seconds() {
  static std::mt19937 rng(std::random_device{}());
  return 3000 + static_cast<int>(rng() % 6000);
}

// A directory under /tmp (the hosts share the controller's filesystem, so
// it serves as a remote path too), removed when the test ends either way.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag) {
    std::string t = "/tmp/rw-ssh-it-" + tag + "-XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data())) path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

class SshLayer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("RW_NETNS_DIR")) GTEST_SKIP() << "RW_NETNS_DIR is not set (see ssh_layer_test.sh)";
    ASSERT_FALSE(var("RW_NETNS_KEY").empty()) << "no netns.env in RW_NETNS_DIR";
  }

  std::unique_ptr<Session> connect_host(int i, ConnectOptions o = quick()) {
    auto s = Session::connect(host(i), nullptr, o);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
};

TEST_F(SshLayer, ExecReportsTheExitCodeAndBothStreams) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  Output o;
  auto r = s->exec("echo hi; echo err >&2; exit 3", {}, o.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->exit_signal, "");
  EXPECT_FALSE(r->timed_out);
  EXPECT_FALSE(r->cancelled);
  EXPECT_EQ(o.out, "hi\n");
  EXPECT_EQ(o.err, "err\n");  // the wrapper's RWPGID line is not shown
}

/// A client of a Relay's socket: what it reads back after writing `send`
/// and closing its write side.
std::string through_relay(const std::string& path, const std::string& send) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return "connect failed";
  }
  (void)!::write(fd, send.data(), send.size());
  ::shutdown(fd, SHUT_WR);
  std::string got;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return got;
}

TEST_F(SshLayer, ARelayCarriesEachConnectionToACommandOnTheHost) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  // What virt-ssh-helper is to libvirt, `cat` is here: the bytes go to the
  // command's stdin and come back from its stdout, whole and in order.
  auto r = ssh::Relay::start(*s, "cat");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string path = (*r)->socket_path();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "only root talks to the hypervisor through it";
  std::string big(300'000, 'x');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  EXPECT_EQ(through_relay(path, "hello\n"), "hello\n");
  std::string got = through_relay(path, big);
  EXPECT_TRUE(got == big) << "larger than a channel window: " << got.size() << " of " << big.size() << " bytes back";
  // Two at once: each connection has its own channel.
  std::string a, b;
  std::thread ta([&] { a = through_relay(path, std::string(100'000, 'a')); });
  std::thread tb([&] { b = through_relay(path, std::string(100'000, 'b')); });
  ta.join();
  tb.join();
  EXPECT_TRUE(a == std::string(100'000, 'a')) << a.size() << " bytes back";
  EXPECT_TRUE(b == std::string(100'000, 'b')) << b.size() << " bytes back";
  EXPECT_EQ((*r)->last_error(), "");
  r->reset();
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "the socket is removed with the relay";
}

TEST_F(SshLayer, ARelayWhoseCommandFailsClosesTheConnection) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  auto r = ssh::Relay::start(*s, "echo no such helper >&2; exit 127");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(through_relay((*r)->socket_path(), "hello"), "") << "EOF, not a hang";
  // What the command said on stderr is kept for the error message.
  for (int i = 0; i < 50 && (*r)->last_error().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE((*r)->last_error().find("no such helper"), std::string::npos) << (*r)->last_error();
}

TEST_F(SshLayer, ExecAppliesEnvAndWorkdir) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  Output o;
  Session::ExecOptions eo;
  eo.env = {{"RW_TEST_VALUE", "a b 'c' $HOME"}, {"LANG", "C"}};
  eo.workdir = "/usr/share";
  auto r = s->exec("printf '%s|' \"$RW_TEST_VALUE\"; pwd; read x || echo stdin-is-empty", eo, o.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(o.out, "a b 'c' $HOME|/usr/share\nstdin-is-empty\n");

  Output bad;
  eo.workdir = "/nonexistent-dir";
  r = s->exec("echo should-not-run", eo, bad.fn());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(bad.out, "");
  EXPECT_NE(bad.err.find("nonexistent-dir"), std::string::npos) << bad.err;
}

TEST_F(SshLayer, FiftySequentialExecsReuseOneSession) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::vector<int64_t> ms;
  for (int i = 0; i < 50; ++i) {
    Output o;
    int64_t t0 = mono_ms();
    auto r = s->exec("echo " + std::to_string(i), {}, o.fn());
    ms.push_back(mono_ms() - t0);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->exit_code, 0);
    ASSERT_EQ(o.out, std::to_string(i) + "\n");
  }
  std::vector<int64_t> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  std::ostringstream line;
  for (auto v : ms) line << v << ' ';
  std::printf("per-exec latency (ms): %s\nmin %lld, median %lld, max %lld\n", line.str().c_str(),
              static_cast<long long>(sorted.front()), static_cast<long long>(sorted[sorted.size() / 2]),
              static_cast<long long>(sorted.back()));
}

TEST_F(SshLayer, FourThreadsRunCommandsConcurrentlyOnOneSession) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::atomic<int> failures{0};
  std::vector<std::string> problems(5);
  std::vector<std::thread> threads;
  int64_t t0 = mono_ms();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        Output o;
        std::string tag = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = s->exec("sleep 0.2; echo " + tag + "; echo e-" + tag + " >&2", {}, o.fn());
        if (!r.ok() || r->exit_code != 0 || o.out != tag + "\n" || o.err != "e-" + tag + "\n") {
          ++failures;
          problems[t] = r.ok() ? "out='" + o.out + "' err='" + o.err + "'" : r.error().message;
        }
      }
    });
  }
  // Meanwhile a fifth thread streams 4 MB, which needs many window adjusts.
  size_t big = 0;
  threads.emplace_back([&] {
    auto r = s->exec("head -c 4000000 /dev/zero | tr '\\0' x", {}, [&](bool is_err, std::string_view d) {
      if (!is_err) big += d.size();
    });
    if (!r.ok() || r->exit_code != 0) {
      ++failures;
      problems[4] = r.ok() ? "exit" : r.error().message;
    }
  });
  for (auto& th : threads) th.join();
  int64_t elapsed = mono_ms() - t0;
  for (const auto& p : problems) EXPECT_EQ(p, "");
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(big, 4000000u);
  // 8 x 0.2 s per thread: concurrent runs take ~2 s, serialized ones 6.4 s.
  std::printf("4 threads x 8 execs of 0.2 s + 4 MB stream: %lld ms\n", static_cast<long long>(elapsed));
  EXPECT_LT(elapsed, 6000) << "execs on one session did not overlap";
}

TEST_F(SshLayer, MoreCommandsThanTheServersMaxSessionsWaitForAChannel) {
  // OpenSSH allows 10 session channels per connection (MaxSessions).
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::atomic<int> ok{0};
  std::vector<std::string> errors(14);
  std::vector<std::thread> threads;
  int64_t t0 = mono_ms();
  for (int t = 0; t < 14; ++t) {
    threads.emplace_back([&, t] {
      auto r = s->exec("sleep 0.5", {}, nullptr);
      if (r.ok() && r->exit_code == 0) {
        ++ok;
      } else {
        errors[t] = r.ok() ? "exit" : r.error().message;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(ok.load(), 14);
  EXPECT_GE(mono_ms() - t0, 1000) << "14 commands cannot all have had a channel at once";
}

TEST_F(SshLayer, ABigPushAndCommandsShareOneSession) {
  TempDir dir_tmp("big");
  const std::string dir = dir_tmp.path;
  std::string big = dir + "/big.bin";
  ASSERT_EQ(local("head -c 30000000 /dev/urandom > " + big + " && echo ok"), "ok\n");
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::atomic<bool> pushing{true};
  std::atomic<int> execs{0}, bad{0};
  std::thread t([&] {
    while (pushing) {
      Output o;
      auto r = s->exec("echo ping", {}, o.fn());
      if (!r.ok() || o.out != "ping\n") ++bad;
      ++execs;
    }
  });
  int64_t t0 = mono_ms();
  auto p = s->push(big, dir + "/copy/big.bin");
  int64_t took = mono_ms() - t0;
  pushing = false;
  t.join();
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(local("cmp " + big + " " + dir + "/copy/big.bin && echo same"), "same\n");
  std::printf("push of 30 MB: %lld ms, with %d execs meanwhile\n", static_cast<long long>(took), execs.load());
}

TEST_F(SshLayer, PushStopsWhenCancelledAndLeavesNoTemporaryFile) {
  TempDir dir_tmp("pcancel");
  const std::string dir = dir_tmp.path;
  ASSERT_EQ(local("head -c 200000000 /dev/zero > " + dir + "/huge && echo ok"), "ok\n");
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  auto p = s->push(dir + "/huge", dir + "/out/huge", std::nullopt, &cancel);
  canceller.join();
  ASSERT_FALSE(p.ok()) << "200 MB copied in 300 ms?";
  EXPECT_NE(p.error().message.find("cancelled"), std::string::npos) << p.error().message;
  EXPECT_EQ(local("ls -A " + dir + "/out"), "");
  EXPECT_TRUE(s->exec("true", {}, nullptr).ok());  // the session is still usable
}

TEST_F(SshLayer, GuestRunsCommandsThroughTheJumpHost) {
  auto h1 = connect_host(1);
  ASSERT_TRUE(h1);
  auto g = Session::connect(guest(), h1.get(), quick());
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ((*g)->label(), var("RW_NETNS_GUEST") + " (" + var("RW_NETNS_GUEST_ADDR") + ":22 via " + host_ns(1) + ")");
  Output o;
  auto r = (*g)->exec("ip -o -4 addr show dev eth0", {}, o.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_NE(o.out.find(var("RW_NETNS_GUEST_ADDR") + "/24"), std::string::npos) << o.out;

  // Host and guest at once, several channels on each, and a bulk transfer
  // through the tunnel.
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      Session* s = t == 0 ? h1.get() : g->get();
      for (int i = 0; i < 5; ++i) {
        Output oo;
        auto rr = s->exec("echo " + std::to_string(i), {}, oo.fn());
        if (!rr.ok() || rr->exit_code != 0 || oo.out != std::to_string(i) + "\n") ++bad;
      }
    });
  }
  size_t big = 0;
  auto rb = (*g)->exec("head -c 3000000 /dev/zero", {}, [&](bool e, std::string_view d) {
    if (!e) big += d.size();
  });
  for (auto& th : threads) th.join();
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_EQ(big, 3000000u);
  EXPECT_EQ(bad.load(), 0);

  // Per-exec latency through the jump host, for the record.
  int64_t t0 = mono_ms();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*g)->exec("true", {}, nullptr).ok());
  std::printf("guest via jump host: %.1f ms per exec\n", (mono_ms() - t0) / 10.0);
  g->reset();  // before the jump host
}

TEST_F(SshLayer, UnknownHostKeyIsRefusedWhenStrictAndRecordedWithAcceptNew) {
  TempDir dir_tmp("kh");
  const std::string dir = dir_tmp.path;
  std::string kh = dir + "/sub/known_hosts";  // accept-new creates the directory too
  Endpoint e = host(2);
  e.known_hosts = kh;
  auto strict = Session::connect(e, nullptr, quick());
  ASSERT_FALSE(strict.ok());
  const std::string& m = strict.error().message;
  EXPECT_NE(m.find(host_ns(2) + " (" + host_addr(2) + ":22)"), std::string::npos) << m;
  EXPECT_NE(m.find("host key not known"), std::string::npos) << m;
  EXPECT_NE(m.find(kh), std::string::npos) << m;
  EXPECT_NE(m.find("accept-new"), std::string::npos) << m;
  EXPECT_NE(m.find("ssh-ed25519 SHA256:"), std::string::npos) << m;
  EXPECT_FALSE(path_exists(kh));

  e.host_key_policy = "accept-new";
  auto accepted = Session::connect(e, nullptr, quick());
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_NE((*accepted)->recorded_host_key().find(kh), std::string::npos);
  auto text = read_file(kh);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->rfind(host_addr(2) + " ssh-ed25519 ", 0), 0u) << *text;
  struct stat st {};
  ASSERT_EQ(::stat(kh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Now known: strict accepts it, and nothing more is recorded.
  e.host_key_policy = "strict";
  auto again = Session::connect(e, nullptr, quick());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ((*again)->recorded_host_key(), "");
  EXPECT_EQ(slurp(kh), *text);
}

TEST_F(SshLayer, ChangedHostKeyIsRefusedEvenWithAcceptNew) {
  TempDir dir_tmp("kh2");
  const std::string dir = dir_tmp.path;
  std::string kh = dir + "/known_hosts";
  // Host 1's address with host 2's key: what a man in the middle looks like.
  auto pub = read_file(std::string(std::getenv("RW_NETNS_DIR")) + "/" + host_ns(2) + "/ssh_host_ed25519_key.pub");
  ASSERT_TRUE(pub.ok());
  std::istringstream fields(*pub);
  std::string type, key;
  fields >> type >> key;
  ASSERT_TRUE(write_file_atomic(kh, "# comment\n@cert-authority *.example ssh-ed25519 AAAA\n" + host_addr(1) + " " +
                                        type + " " + key + "\n")
                  .ok());
  for (const char* policy : {"strict", "accept-new"}) {
    Endpoint e = host(1);
    e.known_hosts = kh;
    e.host_key_policy = policy;
    auto s = Session::connect(e, nullptr, quick());
    ASSERT_FALSE(s.ok()) << policy;
    const std::string& m = s.error().message;
    EXPECT_NE(m.find("host key for " + host_ns(1) + " (" + host_addr(1) + ") changed"), std::string::npos) << m;
    EXPECT_NE(m.find("man-in-the-middle"), std::string::npos) << m;
    EXPECT_NE(m.find("ssh-keygen -R"), std::string::npos) << m;
  }
}

TEST_F(SshLayer, PushCopiesADirectoryKeepingModesAndReplacesFilesAtomically) {
  TempDir src_tmp("src");
  const std::string src = src_tmp.path;
  ASSERT_TRUE(write_file_atomic(src + "/run.sh", "#!/bin/sh\necho script-ran \"$1\"\n", 0755).ok());
  ASSERT_TRUE(write_file_atomic(src + "/secret", "s3cret\n", 0600).ok());
  ASSERT_TRUE(make_dirs(src + "/nested/deeper", 0750).ok());
  ASSERT_EQ(::chmod((src + "/nested").c_str(), 0750), 0);
  ASSERT_TRUE(write_file_atomic(src + "/nested/deeper/data.txt", std::string(300000, 'd'), 0644).ok());
  TempDir remote_root_tmp("dst");
  const std::string remote_root = remote_root_tmp.path;  // same filesystem: lets us clean up
  std::string dst = remote_root + "/a/b/suite";

  auto s = connect_host(1);
  ASSERT_TRUE(s);
  auto p = s->push(src, dst);
  ASSERT_TRUE(p.ok()) << p.error().message;

  Output o;
  auto r = s->exec("cd " + dst + " && ./run.sh arg && stat -c '%a %n' run.sh secret nested nested/deeper "
                   "nested/deeper/data.txt && wc -c < nested/deeper/data.txt && ls -A",
                   {}, o.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << o.err;
  EXPECT_EQ(o.out,
            "script-ran arg\n755 run.sh\n600 secret\n750 nested\n750 nested/deeper\n644 nested/deeper/data.txt\n"
            "300000\nnested\nrun.sh\nsecret\n");

  // Again with new content: existing files are replaced, no temporaries stay.
  ASSERT_TRUE(write_file_atomic(src + "/secret", "changed\n", 0600).ok());
  p = s->push(src, dst);
  ASSERT_TRUE(p.ok()) << p.error().message;
  Output o2;
  r = s->exec("cat " + dst + "/secret; find " + dst + " -name '*.rwtmp-*' | wc -l", {}, o2.fn());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(o2.out, "changed\n0\n");

  // A single file with an explicit mode, into a new directory.
  p = s->push(src + "/run.sh", remote_root + "/single/tool", 0700);
  ASSERT_TRUE(p.ok()) << p.error().message;
  Output o3;
  r = s->exec("stat -c %a " + remote_root + "/single/tool && " + remote_root + "/single/tool x", {}, o3.fn());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(o3.out, "700\nscript-ran x\n");

  // Into an existing directory, and into "dir/" (created), like cp.
  ASSERT_TRUE(s->push(src + "/secret", remote_root + "/single").ok());
  ASSERT_TRUE(s->push(src + "/secret", remote_root + "/newdir/").ok());
  EXPECT_EQ(slurp(remote_root + "/single/secret"), "changed\n");
  EXPECT_EQ(slurp(remote_root + "/newdir/secret"), "changed\n");

  // A missing source says so.
  auto missing = s->push(src + "/nope", remote_root + "/x");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
}

TEST_F(SshLayer, FetchCopiesARemoteFileWithItsMode) {
  TempDir dir_tmp("fetch");
  const std::string dir = dir_tmp.path;
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::string remote = dir + "/remote.log";
  auto r = s->exec("seq 1 50000 > " + remote + " && chmod 640 " + remote, {}, nullptr);
  ASSERT_TRUE(r.ok() && r->exit_code == 0);
  std::string local_path = dir + "/got/it/copy.log";
  auto f = s->fetch(remote, local_path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto got = read_file(local_path);
  auto want = read_file(remote);
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_EQ(*got, *want);
  struct stat st {};
  ASSERT_EQ(::stat(local_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  auto missing = s->fetch(dir + "/nothing-here", dir + "/x");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no such file"), std::string::npos) << missing.error().message;
  EXPECT_FALSE(path_exists(dir + "/x"));
}

TEST_F(SshLayer, CancelKillsTheWholeRemoteProcessGroup) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  for (bool ignores_term : {false, true}) {
    std::string pattern = "sleep " + std::to_string(unique_seconds());
    std::string cmd = std::string(ignores_term ? "trap '' TERM; " : "") + pattern + " & " + pattern + "; wait";
    std::atomic<bool> cancel{false};
    Session::ExecOptions eo;
    eo.cancel = &cancel;
    eo.kill_grace = Millis(1000);
    Result<Session::ExecResult> r = err("not run");
    std::thread t([&] { r = s->exec(cmd, eo, nullptr); });
    // Both sleeps running?
    int64_t until = mono_ms() + 5000;
    std::string seen;
    while (mono_ms() < until) {
      seen = local("pgrep -f '^" + pattern + "$' | wc -l");
      if (seen == "2\n") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(seen, "2\n") << "the command did not start";
    int64_t t0 = mono_ms();
    cancel = true;
    t.join();
    int64_t took = mono_ms() - t0;
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(r->cancelled);
    EXPECT_FALSE(r->timed_out);
    EXPECT_FALSE(r->exit_code.has_value());
    EXPECT_EQ(r->exit_signal, "TERM");
    EXPECT_TRUE(gone_within(pattern, 3000)) << pgrep_on_h1(pattern);
    std::printf("cancel (%s): returned after %lld ms\n", ignores_term ? "TERM ignored" : "plain",
                static_cast<long long>(took));
  }
  // The session is still good.
  Output o;
  auto r = s->exec("echo after", {}, o.fn());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(o.out, "after\n");
}

TEST_F(SshLayer, CancelFallsBackToKillingTheGroupWhenTheWatcherIsGone) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::string pattern = "sleep " + std::to_string(unique_seconds());
  // The command kills the wrapper's stdin watcher (the wrapper's child
  // reading the channel, where the command's stdin is /dev/null; the
  // wrapper's pid is the command's $$) and ignores SIGTERM: only the
  // second-channel `kill -KILL -PGID` can end it.
  std::string cmd =
      "for p in $(pgrep -P $$); do [ \"$(readlink /proc/$p/fd/0)\" != /dev/null ] && kill -9 $p; done; "
      "trap '' TERM; " + pattern + " & " + pattern + "; wait";
  std::atomic<bool> cancel{false};
  Session::ExecOptions eo;
  eo.cancel = &cancel;
  eo.kill_grace = Millis(500);
  Result<Session::ExecResult> r = err("not run");
  std::thread t([&] { r = s->exec(cmd, eo, nullptr); });
  int64_t until = mono_ms() + 5000;
  while (mono_ms() < until && local("pgrep -f '^" + pattern + "$' | wc -l") != "2\n") {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  cancel = true;
  t.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->cancelled);
  EXPECT_EQ(r->exit_signal, "KILL");
  EXPECT_TRUE(gone_within(pattern, 3000)) << pgrep_on_h1(pattern);
}

TEST_F(SshLayer, KeepalivesKeepAnIdleSessionUsable) {
  ConnectOptions o = quick();
  o.keepalive_seconds = 1;
  auto s = connect_host(1, o);
  ASSERT_TRUE(s);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_TRUE(s->alive());
  Output out;
  auto r = s->exec("echo still-here", {}, out.fn());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(out.out, "still-here\n");
}

TEST_F(SshLayer, TimeoutKillsTheCommandAndSaysSo) {
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::string pattern = "sleep " + std::to_string(unique_seconds());
  Session::ExecOptions eo;
  eo.timeout = Millis(1000);
  eo.kill_grace = Millis(1000);
  Output o;
  int64_t t0 = mono_ms();
  auto r = s->exec("echo started; " + pattern + " & " + pattern + "; wait", eo, o.fn());
  int64_t took = mono_ms() - t0;
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->cancelled);
  EXPECT_FALSE(r->exit_code.has_value());
  EXPECT_EQ(o.out, "started\n");
  EXPECT_GE(took, 1000);
  EXPECT_LT(took, 8000);
  EXPECT_TRUE(gone_within(pattern, 3000)) << pgrep_on_h1(pattern);
}

TEST_F(SshLayer, ADroppedConnectionTakesTheRemoteCommandDown) {
  // The runner dying (or the network) must not leave the command running.
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  std::string pattern = "sleep " + std::to_string(unique_seconds());
  Session::ExecOptions eo;
  eo.kill_grace = Millis(1000);
  Result<Session::ExecResult> r = err("not run");
  std::thread t([&] { r = s->exec(pattern + " & " + pattern + "; wait", eo, nullptr); });
  int64_t until = mono_ms() + 5000;
  while (mono_ms() < until && local("pgrep -f '^" + pattern + "$' | wc -l") != "2\n") {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Kill the TCP connection from the server side (as a dead network would).
  std::string killed = local("ip netns exec " + host_ns(1) + " ss -K dst " + var("RW_NETNS_HOST_NET") +
                             ".1 dport != 22 2>&1");
  t.join();
  if (r.ok()) {
    GTEST_SKIP() << "could not kill the connection (ss -K needs CONFIG_INET_DIAG_DESTROY): " << killed;
  }
  EXPECT_NE(r.error().message.find("connection lost"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(host_ns(1) + " (" + host_addr(1) + ":22)"), std::string::npos);
  EXPECT_FALSE(s->alive());
  EXPECT_TRUE(gone_within(pattern, 4000)) << pgrep_on_h1(pattern);
  auto again = s->exec("true", {}, nullptr);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("connection lost"), std::string::npos);
}

TEST_F(SshLayer, ConnectingWhereNoSshdListensGivesAClearError) {
  Endpoint e = host(1);
  e.port = 2222;
  auto refused = Session::connect(e, nullptr, quick());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message.rfind(host_ns(1) + " (" + host_addr(1) + ":2222): connection refused", 0), 0u)
      << refused.error().message;

  Endpoint nobody = host(1);
  nobody.name = "ghost";
  nobody.address = var("RW_NETNS_HOST_NET") + ".99";
  ConnectOptions o = quick();
  o.connect_timeout = Millis(1500);
  o.connect_attempts = 2;
  o.retry_delay = Millis(100);
  int64_t t0 = mono_ms();
  auto absent = Session::connect(nobody, nullptr, o);
  int64_t took = mono_ms() - t0;
  ASSERT_FALSE(absent.ok());
  const std::string& m = absent.error().message;
  EXPECT_EQ(m.rfind("ghost (" + nobody.address + ":22): ", 0), 0u) << m;
  EXPECT_TRUE(m.find("timed out") != std::string::npos || m.find("no route to host") != std::string::npos) << m;
  EXPECT_NE(m.find("2 attempts"), std::string::npos) << m;
  EXPECT_LT(took, 10000);

  auto probe = tcp_probe(host_addr(1), 2222, Millis(1000));
  ASSERT_FALSE(probe.ok());
  EXPECT_NE(probe.error().message.find("connection refused"), std::string::npos);
  EXPECT_TRUE(tcp_probe(host_addr(1), 22, Millis(1000)).ok());
}

TEST_F(SshLayer, ConnectingStopsWhenCancelled) {
  Endpoint nobody = host(1);
  nobody.name = "ghost";
  nobody.address = var("RW_NETNS_HOST_NET") + ".97";
  std::atomic<bool> cancel{false};
  ConnectOptions o;
  o.connect_timeout = Millis(20000);
  o.connect_attempts = 3;
  o.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    cancel = true;
  });
  int64_t t0 = mono_ms();
  auto s = Session::connect(nobody, nullptr, o);
  int64_t took = mono_ms() - t0;
  canceller.join();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cancelled"), std::string::npos) << s.error().message;
  EXPECT_LT(took, 2500);
}

TEST_F(SshLayer, UnreachableJumpHostAndGuestGiveClearErrors) {
  // The jump host itself is down.
  Endpoint jump = host(1);
  jump.name = "deadjump";
  jump.address = var("RW_NETNS_HOST_NET") + ".98";
  ConnectOptions o = quick();
  o.connect_timeout = Millis(1500);
  auto j = Session::connect(jump, nullptr, o);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().message.rfind("deadjump (" + jump.address + ":22): ", 0), 0u) << j.error().message;

  // The jump host is fine, the guest behind it is not there.
  auto h1 = connect_host(1);
  ASSERT_TRUE(h1);
  Endpoint g = guest();
  g.name = "noguest";
  g.address = var("RW_NETNS_GUEST_NET") + ".99";
  auto gs = Session::connect(g, h1.get(), o);
  ASSERT_FALSE(gs.ok());
  const std::string& m = gs.error().message;
  EXPECT_EQ(m.rfind("noguest (" + g.address + ":22 via " + host_ns(1) + "): the jump host " + host_ns(1) +
                        " could not connect",
                    0),
            0u)
      << m;
  // A port nobody listens on behind the jump host, and tcp_check.
  Endpoint closed = guest();
  closed.port = 2222;
  auto cs = Session::connect(closed, h1.get(), o);
  ASSERT_FALSE(cs.ok());
  EXPECT_NE(cs.error().message.find("could not connect"), std::string::npos) << cs.error().message;
  EXPECT_TRUE(h1->tcp_check(var("RW_NETNS_GUEST_ADDR"), 22, Millis(2000)).ok());
  auto tc = h1->tcp_check(var("RW_NETNS_GUEST_ADDR"), 2222, Millis(2000));
  ASSERT_FALSE(tc.ok());
  EXPECT_NE(tc.error().message.find(var("RW_NETNS_GUEST_ADDR") + ":2222"), std::string::npos) << tc.error().message;
  // The jump host still works after all that.
  EXPECT_TRUE(h1->exec("true", {}, nullptr).ok());
}

TEST_F(SshLayer, AuthenticationFailureIsNotRetriedAndSaysWhy) {
  TempDir dir_tmp("auth");
  const std::string dir = dir_tmp.path;
  std::string key = dir + "/other_key";
  ASSERT_EQ(local("ssh-keygen -q -t ed25519 -N '' -f " + key + " >/dev/null 2>&1; echo $?"), "0\n");
  Endpoint e = host(1);
  e.identity = key;
  ConnectOptions o = quick();
  o.connect_attempts = 3;
  o.retry_delay = Millis(2000);
  int64_t t0 = mono_ms();
  auto s = Session::connect(e, nullptr, o);
  ASSERT_FALSE(s.ok());
  EXPECT_LT(mono_ms() - t0, 2000) << "an auth failure was retried";
  EXPECT_NE(s.error().message.find("auth failed"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find(key), std::string::npos) << s.error().message;

  e.identity = dir + "/missing_key";
  s = Session::connect(e, nullptr, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("missing_key"), std::string::npos) << s.error().message;
}

TEST_F(SshLayer, AuthenticatesThroughSshAgentWithoutAnIdentityFile) {
  TempDir dir_tmp("agent");
  const std::string dir = dir_tmp.path;
  std::string sock = dir + "/agent.sock";
  // Our own agent in the foreground, so we can stop and reap it by pid.
  std::vector<std::string> args = {"ssh-agent", "-D", "-a", sock};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t agent = 0;
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
  int spawned = ::posix_spawnp(&agent, "ssh-agent", &quiet, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&quiet);
  ASSERT_EQ(spawned, 0);
  auto stop_agent = [agent] {
    ::kill(agent, SIGTERM);
    ::waitpid(agent, nullptr, 0);
  };
  for (int i = 0; i < 50 && !path_exists(sock); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(local("SSH_AUTH_SOCK=" + sock + " ssh-add -q " + var("RW_NETNS_KEY") + " 2>&1; echo $?"), "0\n");
  const char* old = std::getenv("SSH_AUTH_SOCK");
  std::string saved = old ? old : "";
  ::setenv("SSH_AUTH_SOCK", sock.c_str(), 1);
  Endpoint e = host(1);
  e.identity.clear();
  auto s = Session::connect(e, nullptr, quick());
  if (old) ::setenv("SSH_AUTH_SOCK", saved.c_str(), 1); else ::unsetenv("SSH_AUTH_SOCK");
  stop_agent();
  ASSERT_TRUE(s.ok()) << s.error().message;
  Output o;
  ASSERT_TRUE((*s)->exec("echo via-agent", {}, o.fn()).ok());
  EXPECT_EQ(o.out, "via-agent\n");
}

}  // namespace
}  // namespace rw::ssh

namespace rw::ssh {
namespace {

TEST_F(SshLayer, PushNeverFollowsALinkOutOfThePushedTree) {
  TempDir outside_tmp("outside");
  ASSERT_TRUE(write_file_atomic(outside_tmp.path + "/id_ed25519", "PRIVATE-KEY\n", 0600).ok());
  TempDir src_tmp("linksrc");
  const std::string src = src_tmp.path;
  ASSERT_TRUE(write_file_atomic(src + "/data.txt", "data\n", 0644).ok());
  ASSERT_EQ(::symlink("data.txt", (src + "/alias.txt").c_str()), 0);  // inside: pushed as its content
  TempDir remote_tmp("linkdst");
  auto s = connect_host(1);
  ASSERT_TRUE(s);
  auto ok = s->push(src, remote_tmp.path + "/suite");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(slurp(remote_tmp.path + "/suite/alias.txt"), "data\n");

  ASSERT_EQ(::symlink((outside_tmp.path + "/id_ed25519").c_str(), (src + "/key").c_str()), 0);
  auto bad = s->push(src, remote_tmp.path + "/suite2");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(src + "/key points outside the pushed directory"), std::string::npos)
      << bad.error().message;
  EXPECT_EQ(slurp(remote_tmp.path + "/suite2/key"), "") << "the key never reached the host";
}

}  // namespace
}  // namespace rw::ssh
