#pragma once
// Relay: a local UNIX socket whose every connection is carried over a
// session's own SSH connection to a command on the far side: for libvirt,
// `virt-ssh-helper URI` on a hypervisor host, so the controller speaks to
// the host's libvirtd as qemu+unix:///system?socket=PATH while jump hosts,
// the known_hosts policy and cancellation are the run's. (libssh2 1.10 has
// no streamlocal forwarding; an exec channel per connection does the same.)

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace rw::ssh {

class Session;
class Tunnel;

class Relay {
 public:
  /// Listens on a fresh socket (mode 0600, in a 0700 directory of its own
  /// under $TMPDIR or /tmp) and relays each connection to `command` run on
  /// `session`, which must outlive the Relay.
  static Result<std::unique_ptr<Relay>> start(Session& session, const std::string& command);
  /// Stops accepting, ends the tunnels, removes the socket and its directory.
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  const std::string& socket_path() const { return path_; }
  /// What went wrong with the last connection, if anything (an exec the
  /// server refused, a connection that could not be opened).
  std::string last_error() const;

 private:
  Relay(Session& session, std::string command);
  void serve();

  Session& session_;
  std::string command_;
  std::string dir_, path_;
  Fd listen_;
  Fd stop_;  ///< eventfd: stop serving
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::string last_error_;
  std::vector<std::unique_ptr<Tunnel>> tunnels_;
  std::thread thread_;
};

}  // namespace rw::ssh
