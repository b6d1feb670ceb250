#include "ssh/session.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "ssh/conn.h"
#include "ssh/host_key.h"
#include "ssh/remote_command.h"
#include "ssh/tcp.h"
#include "ssh/tunnel.h"

namespace rw::ssh {
namespace {

void init_libssh2_once() {
  static std::once_flag once;
  std::call_once(once, [] { libssh2_init(0); });
}

std::string make_label(const Endpoint& ep, const Session* jump) {
  std::string l = ep.name + " (" + ep.address + ":" + std::to_string(ep.port);
  if (jump) l += " via " + jump->name();
  return l + ")";
}

struct AgentFree {
  void operator()(LIBSSH2_AGENT* a) const {
    libssh2_agent_disconnect(a);
    libssh2_agent_free(a);
  }
};

// Public key authentication; `retryable` is set for network trouble only.
Status authenticate(Conn& c, Conn::Lock& lk, const Endpoint& ep, int64_t deadline,
                    const std::atomic<bool>* cancel, bool* retryable) {
  LIBSSH2_SESSION* s = c.raw();
  const auto ulen = static_cast<unsigned>(ep.user.size());
  auto network = [&](int rc, const char* during) -> Status {
    *retryable = true;
    if (rc == kCancelledRc) return err("cancelled");
    if (rc == LIBSSH2_ERROR_TIMEOUT) return err(std::string("timed out during ") + during);
    return err(std::string("connection lost during ") + during + ": " + c.broken_reason());
  };

  // Also tells us which methods the server would accept, for the error.
  int rc = 0;
  char* methods =
      c.drive_ptr<char>(lk, [&] { return libssh2_userauth_list(s, ep.user.c_str(), ulen); }, deadline, &rc, cancel);
  if (!methods && libssh2_userauth_authenticated(s)) return {};  // "none" was enough
  if (!methods && (rc == LIBSSH2_ERROR_TIMEOUT || rc == kCancelledRc || c.broken())) {
    return network(rc, "authentication");
  }
  const std::string accepted = methods ? methods : "unknown";

  if (!ep.identity.empty()) {
    if (::access(ep.identity.c_str(), R_OK) != 0) {
      return err("identity file " + ep.identity + ": " + std::strerror(errno));
    }
    rc = c.drive(
        lk,
        [&] {
          return libssh2_userauth_publickey_fromfile_ex(s, ep.user.c_str(), ulen, nullptr, ep.identity.c_str(),
                                                        nullptr);
        },
        deadline, cancel);
    if (rc == 0) return {};
    if (rc == LIBSSH2_ERROR_TIMEOUT || rc == kCancelledRc || c.broken()) return network(rc, "authentication");
    if (rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED) {
      return err("auth failed: cannot use key file " + ep.identity + ": " + c.last_error() +
                 " (use an unencrypted ed25519 or ecdsa key in OpenSSH format, or ssh-agent)");
    }
    return err("auth failed: the server refused key " + ep.identity + " for user " + ep.user +
               " (server accepts: " + accepted + "); is its .pub in the user's authorized_keys?");
  }

  const char* sock = std::getenv("SSH_AUTH_SOCK");
  if (!sock || !*sock) {
    return err("auth failed: no identity file configured and no ssh-agent (SSH_AUTH_SOCK is not set)");
  }
  std::unique_ptr<LIBSSH2_AGENT, AgentFree> agent(libssh2_agent_init(s));
  if (!agent) return err("auth failed: cannot create an ssh-agent client");
  if (c.drive(lk, [&] { return libssh2_agent_connect(agent.get()); }, deadline) != 0) {
    return err(std::string("auth failed: cannot connect to ssh-agent at ") + sock + ": " + c.last_error());
  }
  if (c.drive(lk, [&] { return libssh2_agent_list_identities(agent.get()); }, deadline) != 0) {
    return err("auth failed: cannot list ssh-agent identities: " + c.last_error());
  }
  int tried = 0;
  libssh2_agent_publickey* prev = nullptr;
  libssh2_agent_publickey* id = nullptr;
  while (libssh2_agent_get_identity(agent.get(), &id, prev) == 0) {
    ++tried;
    rc = c.drive(lk, [&] { return libssh2_agent_userauth(agent.get(), ep.user.c_str(), id); }, deadline, cancel);
    if (rc == 0) return {};
    if (rc == LIBSSH2_ERROR_TIMEOUT || rc == kCancelledRc || c.broken()) return network(rc, "authentication");
    prev = id;
  }
  return err("auth failed: the server refused all " + std::to_string(tried) + " ssh-agent keys for user " +
             ep.user + " (server accepts: " + accepted + ")");
}

int grace_seconds(Millis grace) {
  auto ms = grace.count();
  if (ms <= 0) return 0;
  return static_cast<int>((ms + 999) / 1000);
}

}  // namespace

Result<std::unique_ptr<Session>> Session::connect(const Endpoint& ep_in, Session* jump,
                                                  const ConnectOptions& opt) {
  init_libssh2_once();
  Endpoint ep = ep_in;
  if (ep.name.empty()) ep.name = ep.address;
  const std::string label = make_label(ep, jump);
  if (ep.address.empty()) return err(ep.name + ": no address");
  if (ep.port < 1 || ep.port > 65535) return err(label + ": invalid port");
  if (ep.user.empty()) return err(label + ": no user");
  if (ep.host_key_policy != "strict" && ep.host_key_policy != "accept-new") {
    return err(label + ": host_key_policy must be strict or accept-new, not '" + ep.host_key_policy + "'");
  }
  const int attempts = opt.connect_attempts < 1 ? 1 : opt.connect_attempts;
  auto cancelled = [&] { return opt.cancel && opt.cancel->load(); };
  std::string last;
  for (int i = 1; i <= attempts; ++i) {
    bool retryable = false;
    auto s = connect_once(ep, jump, opt, &retryable);
    if (s) return s;
    if (cancelled()) return err(label + ": cancelled");
    if (!retryable || attempts == 1) return s.error();
    last = s.error().message;
    if (i < attempts) {
      const int64_t until = mono_ms() + opt.retry_delay.count();
      while (mono_ms() < until) {
        if (cancelled()) return err(label + ": cancelled");
        std::this_thread::sleep_for(Millis(std::min<int64_t>(100, until - mono_ms())));
      }
    }
  }
  return err(last + " (gave up after " + std::to_string(attempts) + " attempts)");
}

Result<std::unique_ptr<Session>> Session::connect_once(const Endpoint& ep, Session* jump,
                                                       const ConnectOptions& opt, bool* retryable) {
  std::unique_ptr<Session> s(new Session());
  s->ep_ = ep;
  s->opt_ = opt;
  s->label_ = make_label(ep, jump);
  const std::string& label = s->label_;
  const int64_t deadline = mono_ms() + opt.connect_timeout.count();

  Fd sock;
  if (jump) {
    if (!jump->alive()) {
      return err(label + ": the jump host " + jump->label() + " is disconnected; reconnect it first");
    }
    auto side = jump->side_session();
    if (!side) {
      *retryable = true;
      return err(label + ": the jump host " + jump->name() + ": " + side.error().message);
    }
    auto t = Tunnel::open(*(*side)->conn_, *side, ep.address, ep.port, deadline, opt.cancel, &sock);
    if (!t) {
      jump->drop_side_if_stuck(*side);
      *retryable = true;
      return err(label + ": the jump host " + jump->name() + " could not connect: " + t.error().message);
    }
    s->tunnel_ = std::move(*t);
    s->jump_ = jump;
    ++jump->dependents_;
  } else {
    auto fd = tcp_connect(ep.address, ep.port, opt.connect_timeout, opt.cancel);
    if (!fd) {
      *retryable = true;
      return err(label + ": " + fd.error().message);
    }
    sock = std::move(*fd);
    if (opt.keepalive_seconds > 0) set_tcp_user_timeout(sock.get(), std::max(30, opt.keepalive_seconds * 3));
  }

  s->conn_ = std::make_unique<Conn>(std::move(sock));
  Conn& c = *s->conn_;
  if (auto st = c.init(); !st) return err(label + ": " + st.error().message);
  c.set_max_channels(opt.max_channels);
  const HostKeyTarget hk = host_key_target(ep);
  {
    Conn::Lock lk(c.mutex());
    prefer_known_hostkey_algorithms(c.raw(), hk);
    int rc = c.drive(lk, [&] { return libssh2_session_handshake(c.raw(), c.fd()); }, deadline, opt.cancel);
    if (rc != 0) {
      *retryable = true;
      if (rc == LIBSSH2_ERROR_TIMEOUT) {
        return err(label + ": SSH handshake timed out after " + format_duration(opt.connect_timeout) +
                   " (is an SSH server listening there?)");
      }
      if (c.broken()) return err(label + ": connection closed during the SSH handshake: " + c.broken_reason());
      return err(label + ": SSH handshake failed: " + c.last_error());
    }
    if (auto st = verify_host_key(c.raw(), hk, &s->recorded_host_key_); !st) {
      return err(label + ": " + st.error().message);
    }
    if (auto st = authenticate(c, lk, ep, deadline, opt.cancel, retryable); !st) {
      return err(label + ": " + st.error().message);
    }
  }
  c.start_background(opt.keepalive_seconds);
  return s;
}

Session::~Session() {
  assert(dependents_.load() == 0 && "a Session is destroyed while another uses it as jump host");
  side_.reset();
  if (conn_) conn_->shutdown();
  conn_.reset();
  tunnel_.reset();  // after the inner connection said goodbye through it
  if (jump_) --jump_->dependents_;
}

bool Session::alive() const {
  if (!conn_) return false;
  Conn::Lock lk(conn_->mutex());
  return !conn_->broken();
}

Result<Session::ExecResult> Session::exec(const std::string& command, const ExecOptions& opt,
                                          const OutputFn& on_output) {
  std::string text = command;
  if (!opt.raw) {
    WrapOptions w{opt.env, opt.workdir, grace_seconds(opt.kill_grace)};
    auto wrapped = wrap_command(command, w);
    if (!wrapped) return err(label_ + ": " + wrapped.error().message);
    text = std::move(*wrapped);
  }
  Conn& c = *conn_;
  const int64_t start = mono_ms();
  const int64_t open_deadline = start + opt_.connect_timeout.count();
  const int64_t run_deadline = opt.timeout ? start + opt.timeout->count() : kNoDeadline;
  ExecResult res;
  auto lost = [&](const char* when) {
    return err(label_ + ": connection lost " + when + ": " + c.broken_reason());
  };

  Conn::Lock lk(c.mutex());
  if (c.broken()) return lost("before the command started");
  // With max_channels commands running, wait for one to end (bounded by
  // this command's own timeout).
  if (auto s = c.acquire_slot(lk, run_deadline, opt.cancel); !s) {
    if (s.error().code == kCancelledRc) {
      res.cancelled = true;
      return res;
    }
    if (s.error().code == LIBSSH2_ERROR_TIMEOUT) {
      res.timed_out = true;
      return res;
    }
    return err(label_ + ": " + s.error().message);
  }
  LIBSSH2_SESSION* raw = c.raw();
  auto opened = c.open_channel(
      lk, [raw] { return libssh2_channel_open_session(raw); }, open_deadline, opt.cancel, true,
      "a session channel", true);
  if (!opened) {
    if (opened.error().code == kCancelledRc) {
      res.cancelled = true;
      return res;
    }
    return err(label_ + ": " + opened.error().message);
  }
  LIBSSH2_CHANNEL* ch = *opened;
  int rc = c.drive(
      lk,
      [&] {
        return libssh2_channel_process_startup(ch, "exec", 4, text.data(), static_cast<unsigned>(text.size()));
      },
      open_deadline, opt.cancel);
  if (rc != 0) {
    // If the request got through, closing the channel ends the command: its
    // watcher sees EOF.
    std::string why = rc == LIBSSH2_ERROR_TIMEOUT ? "timed out" : c.last_error();
    bool broken = c.broken();
    c.free_channel(lk, ch, mono_ms() + 2000, true);
    if (rc == kCancelledRc) {
      res.cancelled = true;
      return res;
    }
    if (broken) return lost("starting the command");
    return err(label_ + ": the server refused to run the command: " + why);
  }

  PgidMarkerFilter marker;
  ExitMarkerFilter exit_marker;
  bool eof = false, stopping = false, fallback_tried = false;
  int64_t stop_deadline = 0;
  std::vector<std::pair<bool, std::string>> chunks;
  char buf[32768];
  for (;;) {
    // Read everything available on both streams (a full stderr window would
    // stall stdout otherwise).
    int read_error = 0;
    size_t total = 0;
    for (int stream = 0; stream < 2 && !read_error; ++stream) {
      while (total < (1u << 20)) {
        ssize_t n = c.call([&] { return libssh2_channel_read_ex(ch, stream, buf, sizeof buf); });
        if (n > 0) {
          chunks.emplace_back(stream == 1, std::string(buf, static_cast<size_t>(n)));
          total += static_cast<size_t>(n);
          continue;
        }
        if (n != LIBSSH2_ERROR_EAGAIN && n != 0) read_error = static_cast<int>(n);
        break;
      }
    }
    if (!chunks.empty()) {
      lk.unlock();
      for (auto& [is_err, data] : chunks) {
        if (is_err && !opt.raw) data = exit_marker.feed(marker.feed(data));
        if (!data.empty() && on_output) on_output(is_err, data);
      }
      chunks.clear();
      lk.lock();
      continue;  // more may have come meanwhile
    }
    if (read_error || c.broken()) {
      c.free_channel(lk, ch, mono_ms() + 1000, true);
      if (stopping) return res;  // the group is gone with the connection (its watcher saw EOF)
      if (c.broken()) return lost("while the command ran");
      return err(label_ + ": reading the command's output failed: " + c.last_error());
    }
    if (!eof) eof = libssh2_channel_eof(ch) == 1;
    if (eof) {
      rc = c.call([&] { return libssh2_channel_wait_closed(ch); });
      if (rc == 0) break;
      if (rc != LIBSSH2_ERROR_EAGAIN) {
        c.free_channel(lk, ch, mono_ms() + 1000, true);
        if (c.broken()) return lost("while the command ran");
        return err(label_ + ": waiting for the command to end failed: " + c.last_error());
      }
    }
    const uint64_t seen = c.rx_mark();

    const int64_t now = mono_ms();
    if (!stopping) {
      const bool cancel = opt.cancel && opt.cancel->load();
      const bool expired = now >= run_deadline;
      if (cancel || expired) {
        stopping = true;
        res.cancelled = cancel;
        res.timed_out = !cancel;
        if (opt.raw) {  // no watcher to tell: just close the channel
          c.free_channel(lk, ch, now + 2000, true);
          return res;
        }
        // The remote watcher sees EOF: SIGTERM to the group, SIGKILL after the grace.
        c.call([&] { return libssh2_channel_send_eof(ch); });
        stop_deadline = now + opt.kill_grace.count() + 3000;
        continue;
      }
    } else if (now >= stop_deadline) {
      if (!fallback_tried && marker.pgid()) {
        // The watcher did not finish the job (killed itself? no /bin/sh
        // job control?): kill the group from a second channel.
        fallback_tried = true;
        lk.unlock();
        ExecOptions k;
        k.raw = true;
        k.timeout = Millis(5000);
        (void)exec(kill_group_command(*marker.pgid()), k, nullptr);
        lk.lock();
        stop_deadline = mono_ms() + 3000;
        continue;
      }
      c.free_channel(lk, ch, mono_ms() + 1000, true);
      return res;  // abandoned: no exit status
    }

    int64_t until = stopping ? stop_deadline : run_deadline;
    int64_t wait_ms = until == kNoDeadline ? 1000 : until - now;
    if (opt.cancel && !stopping) wait_ms = std::min<int64_t>(wait_ms, 100);
    wait_ms = std::max<int64_t>(0, std::min<int64_t>(wait_ms, 1000));
    c.wait(lk, seen, static_cast<int>(wait_ms));
  }

  char* sig = nullptr;
  size_t siglen = 0;
  libssh2_channel_get_exit_signal(ch, &sig, &siglen, nullptr, nullptr, nullptr, nullptr);
  if (sig && siglen > 0) res.exit_signal.assign(sig, siglen);
  // libssh2 says 0 when no exit-status came at all: only the wrapper's own
  // last line says how a wrapped command ended. Without it (the wrapper was
  // killed, the channel closed early) there is no status, which is a failure.
  const int channel_status = libssh2_channel_get_exit_status(ch);
  if (sig) libssh2_free(raw, sig);
  c.free_channel(lk, ch, mono_ms() + 2000, true);
  lk.unlock();
  if (!opt.raw) {
    std::string tail = exit_marker.feed(marker.finish());
    tail += exit_marker.finish();
    if (!tail.empty() && on_output) on_output(true, tail);
    if (res.exit_signal.empty()) res.exit_code = exit_marker.status();
  } else if (res.exit_signal.empty()) {
    res.exit_code = channel_status;
  }
  return res;
}

Result<std::shared_ptr<Session>> Session::side_session() {
  std::lock_guard<std::mutex> g(side_mu_);
  if (side_) {
    bool usable;
    {
      Conn::Lock lk(side_->conn_->mutex());
      usable = !side_->conn_->broken() && !side_->conn_->opener_stuck();
    }
    if (usable) return side_;
    side_.reset();  // tunnels still using it keep it alive
  }
  bool retryable = false;
  auto s = connect_once(ep_, jump_, opt_, &retryable);
  if (!s) return err("cannot open a second connection (for tunnels and probes): " + s.error().message);
  side_ = std::shared_ptr<Session>(std::move(*s));
  return side_;
}

void Session::drop_side_if_stuck(const std::shared_ptr<Session>& side) {
  std::lock_guard<std::mutex> g(side_mu_);
  if (side_ != side) return;
  Conn::Lock lk(side->conn_->mutex());
  if (side->conn_->opener_stuck() || side->conn_->broken()) {
    lk.unlock();
    side_.reset();
  }
}

Status Session::tcp_check(const std::string& host, int port, Millis timeout) {
  const std::string target = host + ":" + std::to_string(port);
  auto side = side_session();
  if (!side) return err(label_ + ": " + side.error().message);
  Conn& c = *(*side)->conn_;
  Conn::Lock lk(c.mutex());
  if (c.broken()) return err(label_ + ": connection lost: " + c.broken_reason());
  LIBSSH2_SESSION* raw = c.raw();
  auto ch = c.open_channel(
      lk, [raw, host, port] { return libssh2_channel_direct_tcpip_ex(raw, host.c_str(), port, "127.0.0.1", 22); },
      mono_ms() + timeout.count(), nullptr, false, "a connection to " + target);
  if (!ch) {
    lk.unlock();
    drop_side_if_stuck(*side);
    return err(label_ + ": " + target + " is not reachable from " + name() + ": " + ch.error().message);
  }
  c.free_channel(lk, *ch, mono_ms() + 2000, false);
  return {};
}

Result<std::unique_ptr<Tunnel>> Session::exec_tunnel(const std::string& command, Fd local, Millis timeout,
                                                     const std::atomic<bool>* cancel) {
  auto side = side_session();
  if (!side) return err(label_ + ": " + side.error().message);
  auto t = Tunnel::exec(*(*side)->conn_, *side, command, std::move(local), mono_ms() + timeout.count(), cancel);
  if (!t) {
    drop_side_if_stuck(*side);
    return err(label_ + ": " + t.error().message);
  }
  return t;
}

}  // namespace rw::ssh
