#pragma once
// Conn: one libssh2 session on one socket, safe to use from several threads.
// Internal to ssh/.
//
// The rules, and why:
// - One mutex per connection around every libssh2 call: libssh2 sessions are
//   not thread-safe.
// - The libssh2 session is non-blocking and does its I/O through our own
//   send/recv callbacks. A thread whose call returns EAGAIN waits in wait():
//   the mutex is released, the thread polls the socket plus a per-thread
//   eventfd. Any call that receives bytes may have queued packets for other
//   channels, so it wakes every waiting thread through their eventfds; each
//   retries its own call. Nothing spins: a thread retries only after bytes
//   arrived or its poll fired.
// - The send callback never returns EAGAIN: what the kernel does not take is
//   kept in an output buffer and flushed before the next call or when poll
//   says the socket is writable. libssh2 fails with "bad use" when a
//   partially sent packet is followed by a different one, which interleaved
//   channels would otherwise cause. The buffer is bounded in practice by the
//   channel windows.
// - Opening a channel (and sftp_init) uses state libssh2 keeps per session,
//   not per channel, so only one open may be in progress at a time (the
//   "opener"). An open that exceeds its deadline cannot be abandoned halfway;
//   the background thread finishes it and closes the result.
// - The background thread sends keepalives, flushes output nobody else is
//   flushing, and finishes abandoned opens and channel frees.
// - Callers never run user code (output callbacks) with the mutex held.
// - On a TCP socket, bytes received are acknowledged at once (TCP_QUICKACK
//   after each call that read some). sshd leaves Nagle on for sessions
//   without a pty, so a message it sends while an earlier one is not yet
//   acknowledged waits for that ACK; a client with nothing to send delays
//   it by 40 ms (Linux). Seen on every connection: the channel-open
//   confirmation waited behind the hostkeys-00 notice sshd sends after
//   USERAUTH_SUCCESS, which the client does not answer.

#include <libssh2.h>
#include <poll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace rw::ssh {

inline constexpr int64_t kNoDeadline = INT64_MAX;
/// What drive() returns when the cancel flag became true.
inline constexpr int kCancelledRc = -1000;

class Conn {
 public:
  using Lock = std::unique_lock<std::mutex>;

  /// `sock` must be non-blocking: a TCP socket, or a Tunnel's socketpair end.
  explicit Conn(Fd sock);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  /// Creates the libssh2 session (non-blocking, our I/O callbacks).
  Status init();

  LIBSSH2_SESSION* raw() const { return s_; }
  int fd() const { return sock_.get(); }
  std::mutex& mutex() { return mu_; }

  /// One libssh2 call under the (held) lock: flushes pending output first
  /// and wakes the other waiters if the call received bytes.
  template <typename F>
  auto call(F&& f) -> decltype(f()) {
    flush_locked();
    uint64_t before = rx_bytes_;
    auto rc = f();
    after_call_locked(before);
    return rc;
  }

  /// Calls `f` until it stops returning LIBSSH2_ERROR_EAGAIN. Returns f's
  /// result, LIBSSH2_ERROR_TIMEOUT at `deadline` (mono ms), kCancelledRc when
  /// *cancel became true, LIBSSH2_ERROR_SOCKET_DISCONNECT when the connection
  /// broke.
  int drive(Lock& lk, const std::function<int()>& f, int64_t deadline,
            const std::atomic<bool>* cancel = nullptr);
  /// The same for calls that return a pointer (NULL + last errno EAGAIN
  /// means again). On failure returns NULL and sets *rc.
  template <typename T>
  T* drive_ptr(Lock& lk, const std::function<T*()>& f, int64_t deadline, int* rc,
               const std::atomic<bool>* cancel = nullptr) {
    T* out = nullptr;
    *rc = drive(
        lk,
        [&]() -> int {
          out = f();
          if (out) return 0;
          int e = libssh2_session_last_errno(s_);
          return e == LIBSSH2_ERROR_EAGAIN ? e : (e ? e : LIBSSH2_ERROR_SOCKET_NONE);
        },
        deadline, cancel);
    return *rc == 0 ? out : nullptr;
  }

  /// Waits with the lock released until the socket is readable (or writable
  /// with output pending), another thread received bytes since `seen`
  /// (rx_mark() right after the caller's last call), an `extra` fd is ready,
  /// or `timeout_ms` passed. With watch_socket false, only wake-ups and
  /// `extra` count (for threads waiting for the opener or a slot).
  void wait(Lock& lk, uint64_t seen, int timeout_ms, pollfd* extra = nullptr, int nextra = 0,
            bool watch_socket = true);
  uint64_t rx_mark() const { return rx_bytes_; }

  /// The last libssh2 error message, "(none)" if empty. Under the lock.
  std::string last_error() const;

  bool broken() const { return broken_; }
  const std::string& broken_reason() const { return broken_reason_; }
  /// Makes every later send/recv fail; wakes all waiters.
  void mark_broken(const std::string& why);

  /// The right to open a channel or start SFTP (see the file comment).
  Status acquire_opener(Lock& lk, int64_t deadline, const std::atomic<bool>* cancel);
  void release_opener();
  /// A slot for a session channel (exec, sftp), at most max_channels at
  /// once. A timeout error has code LIBSSH2_ERROR_TIMEOUT.
  Status acquire_slot(Lock& lk, int64_t deadline, const std::atomic<bool>* cancel);
  void release_slot();
  void set_max_channels(int n) { max_channels_ = n > 0 ? n : 1; }
  /// An open that timed out is still being finished in the background: new
  /// opens wait behind it (up to the server's own connect timeout).
  bool opener_stuck() const { return opener_stuck_; }

  /// Opens a channel with `open` (holding the opener meanwhile). Past the
  /// deadline the unfinished open is handed to the background thread (which
  /// keeps the opener until it completes and frees the channel; it also
  /// releases a slot if `slot_held`). On any failure the slot is released
  /// (now or by the background thread). `what` names the channel in errors.
  /// With retry_refused, an open the server refuses is retried a few times
  /// with backoff: sshd counts a session against MaxSessions until it has
  /// cleaned it up, which can be just after our close reached it.
  Result<LIBSSH2_CHANNEL*> open_channel(Lock& lk, const std::function<LIBSSH2_CHANNEL*()>& open,
                                        int64_t deadline, const std::atomic<bool>* cancel,
                                        bool slot_held, const std::string& what, bool retry_refused = false);
  /// Backoff for such retries (attempt 0, 1, ...): false when it is time to
  /// give up (attempts, deadline, cancel, broken connection).
  bool pause_before_retry(Lock& lk, int attempt, int64_t deadline, const std::atomic<bool>* cancel);

  /// Closes and frees a channel, waiting at most until `deadline`; then the
  /// background thread finishes. Releases a slot afterwards if `slot_held`.
  void free_channel(Lock& lk, LIBSSH2_CHANNEL* ch, int64_t deadline, bool slot_held);
  /// The same without waiting: the background thread does it.
  void queue_free(LIBSSH2_CHANNEL* ch, bool slot_held);

  /// Runs `step` (under the lock) from the background thread until it
  /// returns something other than EAGAIN, then `done` (under the lock).
  void in_background(std::function<int()> step, std::function<void()> done);

  /// Starts the background thread. keepalive_seconds 0: no keepalives.
  void start_background(int keepalive_seconds);

  /// Stops the background thread, says goodbye to the server (bounded) and
  /// frees the libssh2 session. Idempotent; no other thread may use the Conn.
  void shutdown();

 private:
  static ssize_t recv_cb(libssh2_socket_t fd, void* buf, size_t len, int flags, void** abstract);
  static ssize_t send_cb(libssh2_socket_t fd, const void* buf, size_t len, int flags, void** abstract);
  void flush_locked();
  void after_call_locked(uint64_t rx_before);
  void notify_waiters_locked();
  void background_loop();

  struct Pending {
    std::function<int()> step;
    std::function<void()> done;
  };

  mutable std::mutex mu_;
  Fd sock_;
  bool tcp_ = false;  ///< sock_ is a TCP socket (not a Tunnel's socketpair)
  LIBSSH2_SESSION* s_ = nullptr;

  std::string out_;  ///< bytes libssh2 "sent" that the kernel has not taken yet
  size_t out_off_ = 0;
  uint64_t rx_bytes_ = 0;
  bool broken_ = false;
  std::string broken_reason_;
  std::vector<int> waiters_;  ///< eventfds of threads in wait()

  bool opener_busy_ = false;
  bool opener_stuck_ = false;
  int slots_used_ = 0;
  int max_channels_ = 10;

  std::vector<Pending> pending_;
  int keepalive_seconds_ = 0;
  bool stop_ = false;
  Fd stop_fd_;
  std::thread background_;
};

}  // namespace rw::ssh
