#include "ssh/conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/clock.h"
#include "ssh/load_error.h"

namespace rw::ssh {
namespace {

// Each thread waits on at most one Conn at a time, so one eventfd per thread
// is enough to wake it.
int thread_wake_fd() {
  thread_local Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  return fd.get();
}

void drain_eventfd(int fd) {
  uint64_t v;
  while (::read(fd, &v, sizeof v) > 0) {
  }
}

void poke_eventfd(int fd) {
  uint64_t one = 1;
  ssize_t n = ::write(fd, &one, sizeof one);
  (void)n;  // a full counter still wakes the reader
}

int clamp_ms(int64_t ms) {
  if (ms < 0) return 0;
  if (ms > 60'000) return 60'000;
  return static_cast<int>(ms);
}

}  // namespace

Conn::Conn(Fd sock) : sock_(std::move(sock)) {
  int proto = 0;
  socklen_t len = sizeof proto;
  tcp_ = ::getsockopt(sock_.get(), SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP;
}

Conn::~Conn() { shutdown(); }

Status Conn::init() {
  s_ = libssh2_session_init_ex(nullptr, nullptr, nullptr, this);
  if (!s_) return err(with_load_error("cannot create an SSH session (libssh2_session_init)", libssh2_load_error()));
  // The callbacks get `abstract`, i.e. this Conn.
  LIBSSH2_RECV_FUNC((*recv)) = &Conn::recv_cb;
  LIBSSH2_SEND_FUNC((*send)) = &Conn::send_cb;
  void* recv_ptr = nullptr;
  void* send_ptr = nullptr;
  static_assert(sizeof recv_ptr == sizeof recv);
  std::memcpy(&recv_ptr, &recv, sizeof recv);
  std::memcpy(&send_ptr, &send, sizeof send);
  libssh2_session_callback_set(s_, LIBSSH2_CALLBACK_RECV, recv_ptr);
  libssh2_session_callback_set(s_, LIBSSH2_CALLBACK_SEND, send_ptr);
  libssh2_session_set_blocking(s_, 0);
  return {};
}

ssize_t Conn::recv_cb(libssh2_socket_t fd, void* buf, size_t len, int flags, void** abstract) {
  auto* self = static_cast<Conn*>(*abstract);
  ssize_t n;
  if (fd != self->sock_.get()) {  // libssh2's ssh-agent client uses our callbacks too
    do {
      n = ::recv(fd, buf, len, flags);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
  }
  if (self->broken_) return -ECONNRESET;
  do {
    n = ::recv(fd, buf, len, flags | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    self->rx_bytes_ += static_cast<uint64_t>(n);
    return n;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -EAGAIN;
  int e = n == 0 ? ECONNRESET : errno;
  self->mark_broken(n == 0 ? "the server closed the connection" : std::strerror(e));
  return n == 0 ? 0 : -e;
}

ssize_t Conn::send_cb(libssh2_socket_t fd, const void* buf, size_t len, int flags, void** abstract) {
  auto* self = static_cast<Conn*>(*abstract);
  if (fd != self->sock_.get()) {  // the ssh-agent socket: plain, blocking
    ssize_t n;
    do {
      n = ::send(fd, buf, len, flags | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
  }
  if (self->broken_) return -EPIPE;
  const char* p = static_cast<const char*>(buf);
  size_t sent = 0;
  if (self->out_off_ >= self->out_.size()) {  // nothing queued: try the kernel directly
    while (sent < len) {
      ssize_t n = ::send(fd, p + sent, len - sent, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      int e = n < 0 ? errno : EPIPE;
      self->mark_broken(std::strerror(e));
      return -e;
    }
  }
  if (sent < len) {
    bool was_empty = self->out_off_ >= self->out_.size();
    self->out_.append(p + sent, len - sent);
    // Waiters must add POLLOUT to their poll set.
    if (was_empty) self->notify_waiters_locked();
  }
  return static_cast<ssize_t>(len);
}

void Conn::flush_locked() {
  while (!broken_ && out_off_ < out_.size()) {
    ssize_t n = ::send(sock_.get(), out_.data() + out_off_, out_.size() - out_off_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    mark_broken(std::strerror(n < 0 ? errno : EPIPE));
  }
  if (out_off_ >= out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ > (1u << 20)) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
}

void Conn::after_call_locked(uint64_t rx_before) {
  if (rx_bytes_ == rx_before) return;
  if (tcp_) {
    // Sends the ACK the kernel would otherwise delay (see conn.h); Linux
    // clears the flag again by itself, hence once per call that read.
    int one = 1;
    ::setsockopt(sock_.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }
  notify_waiters_locked();
}

void Conn::notify_waiters_locked() {
  for (int fd : waiters_) poke_eventfd(fd);
}

void Conn::mark_broken(const std::string& why) {
  if (broken_) return;
  broken_ = true;
  broken_reason_ = why;
  notify_waiters_locked();
}

void Conn::wait(Lock& lk, uint64_t seen, int timeout_ms, pollfd* extra, int nextra, bool watch_socket) {
  if (rx_bytes_ != seen || broken_) return;
  int wake = thread_wake_fd();
  pollfd fds[8];
  int n = 0;
  int sock_idx = -1;
  if (watch_socket) {
    sock_idx = n;
    fds[n++] = {sock_.get(), static_cast<short>(POLLIN | (out_off_ < out_.size() ? POLLOUT : 0)), 0};
  }
  int wake_idx = n;
  fds[n++] = {wake, POLLIN, 0};
  int extra_idx = n;
  for (int i = 0; i < nextra && n < 8; ++i) fds[n++] = extra[i];
  waiters_.push_back(wake);
  lk.unlock();
  int rc;
  do {
    rc = ::poll(fds, static_cast<nfds_t>(n), timeout_ms);
  } while (rc < 0 && errno == EINTR);
  if (fds[wake_idx].revents) drain_eventfd(wake);
  lk.lock();
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), wake));
  if (sock_idx >= 0 && (fds[sock_idx].revents & POLLOUT)) flush_locked();
  for (int i = 0; i < nextra && extra_idx + i < n; ++i) extra[i].revents = fds[extra_idx + i].revents;
}

int Conn::drive(Lock& lk, const std::function<int()>& f, int64_t deadline, const std::atomic<bool>* cancel) {
  for (;;) {
    if (broken_) return LIBSSH2_ERROR_SOCKET_DISCONNECT;
    int rc = call(f);
    if (rc != LIBSSH2_ERROR_EAGAIN) return rc;
    uint64_t seen = rx_bytes_;
    if (broken_) return LIBSSH2_ERROR_SOCKET_DISCONNECT;
    if (cancel && cancel->load()) return kCancelledRc;
    int64_t now = mono_ms();
    if (now >= deadline) return LIBSSH2_ERROR_TIMEOUT;
    int64_t left = deadline == kNoDeadline ? 60'000 : deadline - now;
    if (cancel) left = std::min<int64_t>(left, 100);
    wait(lk, seen, clamp_ms(left));
  }
}

std::string Conn::last_error() const {
  char* msg = nullptr;
  int len = 0;
  libssh2_session_last_error(s_, &msg, &len, 0);
  if (!msg || len == 0) return "(none)";
  return std::string(msg, static_cast<size_t>(len));
}

Status Conn::acquire_opener(Lock& lk, int64_t deadline, const std::atomic<bool>* cancel) {
  while (opener_busy_) {
    if (broken_) return err("connection lost: " + broken_reason_);
    if (cancel && cancel->load()) return err("cancelled", kCancelledRc);
    int64_t now = mono_ms();
    if (now >= deadline) {
      return err(opener_stuck_ ? "timed out: an earlier channel open on this connection is still pending"
                               : "timed out waiting for another channel open to finish");
    }
    wait(lk, rx_bytes_, clamp_ms(std::min<int64_t>(deadline - now, cancel ? 100 : 1000)), nullptr, 0,
         false);
  }
  opener_busy_ = true;
  return {};
}

void Conn::release_opener() {
  opener_busy_ = false;
  notify_waiters_locked();
}

Status Conn::acquire_slot(Lock& lk, int64_t deadline, const std::atomic<bool>* cancel) {
  while (slots_used_ >= max_channels_) {
    if (broken_) return err("connection lost: " + broken_reason_);
    if (cancel && cancel->load()) return err("cancelled", kCancelledRc);
    int64_t now = mono_ms();
    if (now >= deadline) {
      return err("timed out waiting for a free channel (" + std::to_string(max_channels_) + " in use)",
                 LIBSSH2_ERROR_TIMEOUT);
    }
    wait(lk, rx_bytes_, clamp_ms(std::min<int64_t>(deadline - now, cancel ? 100 : 1000)), nullptr, 0, false);
  }
  ++slots_used_;
  return {};
}

void Conn::release_slot() {
  if (slots_used_ > 0) --slots_used_;
  notify_waiters_locked();
}

bool Conn::pause_before_retry(Lock& lk, int attempt, int64_t deadline, const std::atomic<bool>* cancel) {
  if (attempt >= 7 || broken_) return false;
  const int64_t until = mono_ms() + (20LL << attempt);  // 20 ms .. 1.3 s, 2.5 s in all
  if (until >= deadline) return false;
  for (int64_t now = mono_ms(); now < until; now = mono_ms()) {
    if (broken_ || (cancel && cancel->load())) return false;
    wait(lk, rx_bytes_, clamp_ms(std::min<int64_t>(until - now, 100)), nullptr, 0, false);
  }
  return true;
}

Result<LIBSSH2_CHANNEL*> Conn::open_channel(Lock& lk, const std::function<LIBSSH2_CHANNEL*()>& open,
                                            int64_t deadline, const std::atomic<bool>* cancel,
                                            bool slot_held, const std::string& what, bool retry_refused) {
  if (auto s = acquire_opener(lk, deadline, cancel); !s) {
    if (slot_held) release_slot();
    return s.error();
  }
  int rc = 0;
  LIBSSH2_CHANNEL* ch = nullptr;
  for (int attempt = 0;; ++attempt) {
    ch = drive_ptr<LIBSSH2_CHANNEL>(lk, open, deadline, &rc, cancel);
    if (ch || !retry_refused || rc != LIBSSH2_ERROR_CHANNEL_FAILURE) break;
    if (!pause_before_retry(lk, attempt, deadline, cancel)) break;
  }
  if (ch) {
    release_opener();
    return ch;
  }
  if (rc == LIBSSH2_ERROR_TIMEOUT || rc == kCancelledRc) {
    // libssh2 cannot abandon an open halfway: finish it in the background,
    // keeping the opener (and the slot) until then.
    auto result = std::make_shared<LIBSSH2_CHANNEL*>(nullptr);
    opener_stuck_ = true;
    in_background(
        [this, open, result]() -> int {
          *result = open();
          if (*result) return 0;
          return libssh2_session_last_errno(s_);
        },
        [this, result, slot_held]() {
          opener_stuck_ = false;
          release_opener();
          if (*result) {
            queue_free(*result, slot_held);
          } else if (slot_held) {
            release_slot();
          }
        });
    if (rc == kCancelledRc) return err("cancelled", kCancelledRc);
    return err("timed out opening " + what);
  }
  std::string why = broken_ ? "connection lost: " + broken_reason_ : "cannot open " + what + ": " + last_error();
  release_opener();
  if (slot_held) release_slot();
  return err(why);
}

void Conn::free_channel(Lock& lk, LIBSSH2_CHANNEL* ch, int64_t deadline, bool slot_held) {
  int rc = drive(lk, [ch] { return libssh2_channel_free(ch); }, deadline);
  if (rc != LIBSSH2_ERROR_TIMEOUT) {
    if (slot_held) release_slot();
    return;
  }
  queue_free(ch, slot_held);
}

void Conn::queue_free(LIBSSH2_CHANNEL* ch, bool slot_held) {
  in_background([ch] { return libssh2_channel_free(ch); },
                [this, slot_held] {
                  if (slot_held) release_slot();
                });
}

void Conn::in_background(std::function<int()> step, std::function<void()> done) {
  pending_.push_back({std::move(step), std::move(done)});
  if (stop_fd_.valid()) poke_eventfd(stop_fd_.get());
}

void Conn::start_background(int keepalive_seconds) {
  keepalive_seconds_ = keepalive_seconds;
  if (keepalive_seconds > 0) libssh2_keepalive_config(s_, 0, static_cast<unsigned>(keepalive_seconds));
  stop_fd_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  background_ = std::thread([this] { background_loop(); });
}

void Conn::background_loop() {
  int64_t next_keepalive = mono_ms() + keepalive_seconds_ * 1000LL;
  Lock lk(mu_);
  while (!stop_) {
    flush_locked();
    int64_t now = mono_ms();
    if (keepalive_seconds_ > 0 && now >= next_keepalive && !broken_) {
      int next = keepalive_seconds_;
      call([&] { return libssh2_keepalive_send(s_, &next); });
      next_keepalive = now + std::max(1, next) * 1000LL;
    }
    // Finish what callers gave up on. done() may queue more work.
    std::vector<Pending> work;
    work.swap(pending_);
    std::vector<Pending> again;
    for (auto& p : work) {
      int rc = broken_ ? LIBSSH2_ERROR_SOCKET_DISCONNECT : call(p.step);
      if (rc == LIBSSH2_ERROR_EAGAIN) {
        again.push_back(std::move(p));
      } else {
        p.done();
      }
    }
    for (auto& p : again) pending_.push_back(std::move(p));
    if (broken_ && !pending_.empty()) continue;  // everything fails fast now

    pollfd stop{stop_fd_.get(), POLLIN, 0};
    int64_t until_keepalive = keepalive_seconds_ > 0 ? next_keepalive - mono_ms() : 1000;
    if (!pending_.empty()) {
      wait(lk, rx_bytes_, clamp_ms(std::min<int64_t>(until_keepalive, 200)), &stop, 1, true);
    } else {
      bool out_pending = out_off_ < out_.size();
      lk.unlock();
      pollfd fds[2] = {stop, {sock_.get(), POLLOUT, 0}};
      ::poll(fds, out_pending ? 2 : 1, clamp_ms(std::min<int64_t>(until_keepalive, 1000)));
      lk.lock();
    }
    if (stop_fd_.valid()) drain_eventfd(stop_fd_.get());
  }
}

void Conn::shutdown() {
  if (background_.joinable()) {
    {
      Lock lk(mu_);
      stop_ = true;
    }
    poke_eventfd(stop_fd_.get());
    background_.join();
  }
  if (!s_) return;
  Lock lk(mu_);
  if (!broken_) {
    const int64_t deadline = mono_ms() + 1000;
    drive(lk, [this] { return libssh2_session_disconnect(s_, "closed by runwarden"); }, deadline);
    while (!broken_ && out_off_ < out_.size() && mono_ms() < deadline) {
      lk.unlock();
      pollfd p{sock_.get(), POLLOUT, 0};
      ::poll(&p, 1, 100);
      lk.lock();
      flush_locked();
    }
  }
  // From here on every send/recv fails, so freeing cannot wait for the peer.
  mark_broken("closed");
  for (int i = 0; i < 100 && libssh2_session_free(s_) == LIBSSH2_ERROR_EAGAIN; ++i) {
  }
  s_ = nullptr;
  sock_.reset();
}

}  // namespace rw::ssh
