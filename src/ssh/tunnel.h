#pragma once
// Tunnel: a direct-tcpip channel of an outer connection, presented as a local
// socket. A pump thread copies bytes between one end of a socketpair and the
// channel, so the inner SSH session runs on the other end exactly as it would
// on a TCP socket. Internal to ssh/.

#include <libssh2.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/fd.h"
#include "common/result.h"

namespace rw::ssh {

class Conn;

class Tunnel {
 public:
  /// Opens host:port from the far side of `outer` (deadline in mono ms) and
  /// starts pumping. `*inner_end` receives the non-blocking socket for the
  /// inner session. `owner` keeps `outer` alive as long as the Tunnel.
  static Result<std::unique_ptr<Tunnel>> open(Conn& outer, std::shared_ptr<void> owner, const std::string& host,
                                              int port, int64_t deadline, const std::atomic<bool>* cancel,
                                              Fd* inner_end);
  /// Runs `command` on the far side of `outer` in an exec channel of its own
  /// (as is: no wrapper) and pumps between its stdin/stdout and `local`, a
  /// connected stream socket (made non-blocking here): a netcat over SSH,
  /// for virt-ssh-helper. The tunnel ends when either side closes.
  static Result<std::unique_ptr<Tunnel>> exec(Conn& outer, std::shared_ptr<void> owner, const std::string& command,
                                              Fd local, int64_t deadline, const std::atomic<bool>* cancel);
  /// False once the far side or the local socket closed (or the connection
  /// broke): the tunnel can be dropped.
  bool running() const { return !done_; }
  /// An exec tunnel's command's stderr (its last 4 KiB), once it is done.
  std::string stderr_text() const { return done_ ? stderr_ : std::string(); }
  /// Flushes what the inner side wrote (bounded), closes the channel, joins.
  ~Tunnel();
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

 private:
  Tunnel(Conn& outer, std::shared_ptr<void> owner, LIBSSH2_CHANNEL* ch, Fd mine);
  void pump();

  std::shared_ptr<void> owner_;  ///< destroyed last
  Conn& outer_;
  LIBSSH2_CHANNEL* ch_;
  Fd mine_;  ///< our end of the socketpair
  Fd stop_;  ///< eventfd: stop pumping
  std::atomic<bool> stopping_{false};
  std::atomic<bool> done_{false};
  /// An exec tunnel: the local side's EOF goes to the command as EOF on its
  /// stdin, and its output is still carried back until it closes.
  bool half_close_ = false;
  std::string stderr_;  ///< written by the pump only, read once done_
  std::thread thread_;
};

}  // namespace rw::ssh
