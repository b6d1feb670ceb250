#include "ssh/tunnel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>

#include "common/clock.h"
#include "ssh/conn.h"

namespace rw::ssh {
namespace {

constexpr size_t kBufferCap = 1 << 20;  // per direction, then back-pressure

}  // namespace

Result<std::unique_ptr<Tunnel>> Tunnel::open(Conn& outer, std::shared_ptr<void> owner, const std::string& host,
                                             int port, int64_t deadline, const std::atomic<bool>* cancel,
                                             Fd* inner_end) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    return sys_err("socketpair", errno);
  }
  Fd mine(sv[0]);
  Fd theirs(sv[1]);
  LIBSSH2_CHANNEL* ch = nullptr;
  {
    Conn::Lock lk(outer.mutex());
    if (outer.broken()) return err("connection lost: " + outer.broken_reason());
    LIBSSH2_SESSION* s = outer.raw();
    // Captured by value: an open that times out is finished in the background.
    auto opened = outer.open_channel(
        lk, [s, host, port] { return libssh2_channel_direct_tcpip_ex(s, host.c_str(), port, "127.0.0.1", 22); },
        deadline, cancel, false, "a direct-tcpip channel to " + host + ":" + std::to_string(port));
    if (!opened) return opened.error();
    ch = *opened;
  }
  std::unique_ptr<Tunnel> t(new Tunnel(outer, std::move(owner), ch, std::move(mine)));
  t->thread_ = std::thread([p = t.get()] { p->pump(); });
  *inner_end = std::move(theirs);
  return t;
}

Result<std::unique_ptr<Tunnel>> Tunnel::exec(Conn& outer, std::shared_ptr<void> owner, const std::string& command,
                                             Fd local, int64_t deadline, const std::atomic<bool>* cancel) {
  int fl = ::fcntl(local.get(), F_GETFL);
  if (fl < 0 || ::fcntl(local.get(), F_SETFL, fl | O_NONBLOCK) != 0) return sys_err("fcntl", errno);
  LIBSSH2_CHANNEL* ch = nullptr;
  {
    Conn::Lock lk(outer.mutex());
    if (outer.broken()) return err("connection lost: " + outer.broken_reason());
    LIBSSH2_SESSION* s = outer.raw();
    auto opened = outer.open_channel(
        lk, [s] { return libssh2_channel_open_session(s); }, deadline, cancel, false, "a session channel");
    if (!opened) return opened.error();
    ch = *opened;
    int rc = outer.drive(
        lk,
        [&] {
          return libssh2_channel_process_startup(ch, "exec", 4, command.data(),
                                                 static_cast<unsigned>(command.size()));
        },
        deadline, cancel);
    if (rc != 0) {
      std::string why = rc == LIBSSH2_ERROR_TIMEOUT ? "timed out" : outer.last_error();
      outer.free_channel(lk, ch, mono_ms() + 2000, false);
      return err("the server refused to run " + command + ": " + why);
    }
  }
  std::unique_ptr<Tunnel> t(new Tunnel(outer, std::move(owner), ch, std::move(local)));
  t->half_close_ = true;
  t->thread_ = std::thread([p = t.get()] { p->pump(); });
  return t;
}

Tunnel::Tunnel(Conn& outer, std::shared_ptr<void> owner, LIBSSH2_CHANNEL* ch, Fd mine)
    : owner_(std::move(owner)), outer_(outer), ch_(ch), mine_(std::move(mine)), stop_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Tunnel::~Tunnel() {
  stopping_ = true;
  uint64_t one = 1;
  ssize_t n = ::write(stop_.get(), &one, sizeof one);
  (void)n;
  if (thread_.joinable()) thread_.join();
}

void Tunnel::pump() {
  std::string to_local, to_remote;  // pending bytes and how much of them went out
  size_t lo = 0, ro = 0;
  bool remote_eof = false, local_eof = false, eof_sent = false, local_shut = false, failed = false;
  int64_t stop_deadline = 0;
  char buf[32768];
  const int me = mine_.get();

  Conn::Lock lk(outer_.mutex());
  for (;;) {
    bool progress = false;
    // channel -> inner session
    while (!remote_eof && !failed && to_local.size() - lo < kBufferCap) {
      ssize_t n = outer_.call([&] { return libssh2_channel_read(ch_, buf, sizeof buf); });
      if (n > 0) {
        to_local.append(buf, static_cast<size_t>(n));
        progress = true;
      } else if (n == LIBSSH2_ERROR_EAGAIN) {
        break;
      } else if (n == 0) {
        if (libssh2_channel_eof(ch_)) remote_eof = true;
        break;
      } else {
        failed = true;
      }
    }
    // An exec tunnel's stderr is kept for errors; unread, it would also
    // keep the channel from ever reporting EOF.
    while (half_close_ && !failed) {
      ssize_t n = outer_.call([&] { return libssh2_channel_read_stderr(ch_, buf, sizeof buf); });
      if (n <= 0) break;
      stderr_.append(buf, static_cast<size_t>(n));
      if (stderr_.size() > 4096) stderr_.erase(0, stderr_.size() - 4096);
      progress = true;
    }
    while (lo < to_local.size()) {
      ssize_t n = ::send(me, to_local.data() + lo, to_local.size() - lo, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        lo += static_cast<size_t>(n);
        progress = true;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        failed = true;  // the inner session is gone
        break;
      }
    }
    if (lo == to_local.size()) {
      to_local.clear();
      lo = 0;
    }
    if (remote_eof && to_local.empty() && !local_shut) {
      ::shutdown(me, SHUT_WR);  // the inner session sees the server's EOF
      local_shut = true;
    }
    // inner session -> channel
    while (!local_eof && to_remote.size() - ro < kBufferCap) {
      ssize_t n = ::recv(me, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        to_remote.append(buf, static_cast<size_t>(n));
        progress = true;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      } else {
        local_eof = true;
      }
    }
    while (!failed && ro < to_remote.size()) {
      ssize_t n = outer_.call(
          [&] { return libssh2_channel_write(ch_, to_remote.data() + ro, to_remote.size() - ro); });
      if (n > 0) {
        ro += static_cast<size_t>(n);
        progress = true;
      } else if (n == LIBSSH2_ERROR_EAGAIN) {
        break;  // window full: wait for the far side to adjust it
      } else {
        failed = true;
      }
    }
    if (ro == to_remote.size()) {
      to_remote.clear();
      ro = 0;
    }
    if (local_eof && to_remote.empty() && !eof_sent && !failed) {
      outer_.call([&] { return libssh2_channel_send_eof(ch_); });
      eof_sent = true;
    }

    if (failed || outer_.broken()) break;
    if (local_eof && to_remote.empty() && !half_close_) break;  // the inner session closed
    if (remote_eof && to_local.empty() && local_shut) break;  // the far side closed
    if (stopping_) {
      int64_t now = mono_ms();
      if (stop_deadline == 0) stop_deadline = now + 1000;
      if (to_remote.empty() || now >= stop_deadline) break;
    }
    if (progress) continue;

    uint64_t seen = outer_.rx_mark();
    short ev = static_cast<short>((!local_eof && to_remote.size() - ro < kBufferCap ? POLLIN : 0) |
                                  (lo < to_local.size() ? POLLOUT : 0));
    pollfd extra[2] = {{ev ? me : -1, ev, 0}, {stop_.get(), POLLIN, 0}};
    // With our buffer towards the inner session full we do not read the
    // channel, so the socket's readability is none of our business.
    bool watch_socket = to_local.size() - lo < kBufferCap;
    outer_.wait(lk, seen, stopping_ ? 50 : 1000, extra, 2, watch_socket);
    if (extra[1].revents) {
      uint64_t v;
      ssize_t n = ::read(stop_.get(), &v, sizeof v);
      (void)n;
    }
  }
  outer_.free_channel(lk, ch_, mono_ms() + 2000, false);
  ch_ = nullptr;
  ::shutdown(me, SHUT_RDWR);  // the inner session sees the end of the line
  done_ = true;
}

}  // namespace rw::ssh
