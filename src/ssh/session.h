#pragma once
// One SSH connection to a target (a host, or a guest reached through a host),
// shared by every task on that target.
//
// Thread model: a Session may be used from several threads at once (one exec
// or push per thread). libssh2 is not thread-safe, so each connection (Conn)
// has one mutex held around every libssh2 call; the socket is non-blocking and
// a thread that must wait releases the mutex and polls. Several channels on
// one session therefore progress concurrently. See conn.h for the details.
//
// Jump hosts: a guest's Session runs over a local socketpair; a pump thread
// (tunnel.h) copies between it and a direct-tcpip channel to the guest. No ssh
// subprocess, no ProxyCommand. Those channels, and tcp_check probes, use a
// second connection to the host, opened on first use: libssh2 opens one
// channel at a time per connection, and a direct-tcpip open to a guest whose
// firewall drops SYNs only fails when the host's own connect gives up
// (minutes), which must not hold up the host's exec and push. A connection
// with such a stuck open is replaced for the next tunnel or probe.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/duration.h"
#include "common/fd.h"
#include "common/result.h"
#include "ssh/endpoint.h"

namespace rw::ssh {

class Conn;
class Tunnel;

class Session {
 public:
  /// Connects directly, or through `jump` (an already connected Session,
  /// which must outlive this one) over a direct-tcpip channel. Checks the host
  /// key against known_hosts: an unknown key is refused under "strict" and
  /// recorded under "accept-new"; a changed key is always refused.
  /// Authenticates with `identity`, else with ssh-agent. Network failures are
  /// retried `connect_attempts` times; host key and auth failures are not.
  /// Errors read "NAME (ADDR:PORT[ via JUMP]): what happened [and what to do]".
  static Result<std::unique_ptr<Session>> connect(const Endpoint& ep, Session* jump,
                                                  const ConnectOptions& opt);

  /// Closes the connection. No exec/push/fetch may still be running on it,
  /// and no Session may still use it as a jump host.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  struct ExecOptions {
    std::map<std::string, std::string> env;  ///< exported by the remote wrapper
    std::string workdir;                     ///< cd before running; exit 1 if it fails
    std::optional<Millis> timeout;           ///< then the remote group is killed, timed_out set
    const std::atomic<bool>* cancel = nullptr;  ///< polled; true: kill the remote group, cancelled set
    Millis kill_grace{5000};                    ///< SIGTERM to SIGKILL
    /// Send the command as is: no wrapper, so no env/workdir, and cancel can
    /// only close the channel (for servers without a POSIX sh).
    bool raw = false;
  };
  struct ExecResult {
    std::optional<int> exit_code;  ///< unset when the command died of a signal or was abandoned
    std::string exit_signal;       ///< "TERM", "KILL", ... (without "SIG")
    bool timed_out = false;
    bool cancelled = false;
  };
  using OutputFn = std::function<void(bool is_stderr, std::string_view data)>;

  /// Runs a shell command in its own remote process group (see
  /// remote_command.h). Output goes to `on_output` as it arrives, from the
  /// calling thread, never under a lock. A cancel or timeout sends EOF on the
  /// channel; the remote wrapper then sends SIGTERM to the group and SIGKILL
  /// after kill_grace. If the channel still has not closed after kill_grace +
  /// 3 s, a second channel runs `kill -KILL -PGID`. The same watcher kills the
  /// group when the connection drops (runner killed, network lost).
  Result<ExecResult> exec(const std::string& command, const ExecOptions& opt, const OutputFn& on_output);

  /// Copies a local file or directory (recursively, following symlinks) over
  /// SFTP. A file goes to `remote` itself, or into it under its own name when
  /// `remote` ends in '/' or is a directory (like cp); a directory's contents
  /// go into the directory `remote` (created). Each file is written to a temporary name
  /// in its destination directory and renamed over the target, so a reader
  /// sees the old file or the new one. Modes are kept, or `mode` for every
  /// file when set. Missing parent directories are created (0755).
  Status push(const std::string& local, const std::string& remote, std::optional<int> mode = std::nullopt,
              const std::atomic<bool>* cancel = nullptr);

  /// Fetches a remote file to a local path (temp file + fsync + rename;
  /// creates the local parent directories; keeps the remote mode's 0777 bits).
  Status fetch(const std::string& remote, const std::string& local, const std::atomic<bool>* cancel = nullptr);

  /// Can this target reach host:port? A direct-tcpip channel is opened and
  /// closed again (wait_for tcp on guests). Fails with "connection refused",
  /// "timed out", "prohibited by the server"...
  Status tcp_check(const std::string& host, int port, Millis timeout);

  /// Runs `command` on this target as is (no wrapper), on the second
  /// connection that tunnels use, and carries `local` (a connected stream
  /// socket) to its stdin and its stdout back, until either side closes:
  /// see Relay. Errors start with label().
  Result<std::unique_ptr<Tunnel>> exec_tunnel(const std::string& command, Fd local, Millis timeout,
                                              const std::atomic<bool>* cancel);

  /// False once the connection is known to be gone; reconnect then.
  bool alive() const;

  const std::string& name() const { return ep_.name; }
  const Endpoint& endpoint() const { return ep_; }
  /// "hv1 (10.0.0.5:22)", "web1 (192.168.122.10:22 via hv1)": the prefix of every error.
  const std::string& label() const { return label_; }
  /// Set when accept-new recorded this host's key: "ssh-ed25519 SHA256:... added to FILE".
  const std::string& recorded_host_key() const { return recorded_host_key_; }

 private:
  Session() = default;
  static Result<std::unique_ptr<Session>> connect_once(const Endpoint& ep, Session* jump,
                                                       const ConnectOptions& opt, bool* retryable);
  Status sftp_push(const std::string& local, const std::string& remote, std::optional<int> mode,
                   const std::atomic<bool>* cancel);
  /// The second connection to this target that carries tunnels to guests
  /// and tcp_check probes (created on first use).
  Result<std::shared_ptr<Session>> side_session();
  /// Forgets the side connection if an open on it is stuck, so the next
  /// tunnel or probe gets a fresh one.
  void drop_side_if_stuck(const std::shared_ptr<Session>& side);

  Endpoint ep_;
  ConnectOptions opt_;
  std::string label_;
  std::string recorded_host_key_;
  Session* jump_ = nullptr;
  std::atomic<int> dependents_{0};  ///< Sessions using this one as their jump host
  std::unique_ptr<Tunnel> tunnel_;  ///< outlives conn_: conn_'s socket is the tunnel's other end
  std::unique_ptr<Conn> conn_;
  std::mutex side_mu_;
  std::shared_ptr<Session> side_;
};

/// Can the controller open a TCP connection to address:port within timeout?
/// (wait_for tcp on hosts). Errors: "ADDR:PORT: connection refused" etc.
Status tcp_probe(const std::string& address, int port, Millis timeout);

}  // namespace rw::ssh
