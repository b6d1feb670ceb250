#include "ssh/relay.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ssh/session.h"
#include "ssh/tunnel.h"

namespace rw::ssh {

Relay::Relay(Session& session, std::string command) : session_(session), command_(std::move(command)) {}

Result<std::unique_ptr<Relay>> Relay::start(Session& session, const std::string& command) {
  std::unique_ptr<Relay> r(new Relay(session, command));
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/rw-relay-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return sys_err("mkdtemp " + tmpl, errno);
  r->dir_ = tmpl;
  r->path_ = tmpl + "/sock";
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (r->path_.size() >= sizeof sa.sun_path) return err("relay socket path too long: " + r->path_);
  std::memcpy(sa.sun_path, r->path_.c_str(), r->path_.size() + 1);
  r->listen_ = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!r->listen_.valid()) return sys_err("socket", errno);
  const mode_t old = ::umask(0177);
  int rc = ::bind(r->listen_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::umask(old);
  if (rc != 0) return sys_err("bind " + r->path_, errno);
  if (::listen(r->listen_.get(), 16) != 0) return sys_err("listen " + r->path_, errno);
  r->stop_ = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!r->stop_.valid()) return sys_err("eventfd", errno);
  r->thread_ = std::thread([p = r.get()] { p->serve(); });
  return r;
}

Relay::~Relay() {
  stopping_ = true;
  if (stop_.valid()) {
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  tunnels_.clear();  // each flushes, closes its channel, joins its pump
  listen_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

std::string Relay::last_error() const {
  std::lock_guard<std::mutex> g(mu_);
  return last_error_;
}

void Relay::serve() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, 1000) < 0 && errno != EINTR) break;
    // Tunnels whose libvirt connection ended go; the rest keep pumping.
    std::erase_if(tunnels_, [this](const std::unique_ptr<Tunnel>& t) {
      if (t->running()) return false;
      if (std::string e = t->stderr_text(); !e.empty()) {
        while (!e.empty() && (e.back() == '\n' || e.back() == '\r')) e.pop_back();
        std::lock_guard<std::mutex> g(mu_);
        last_error_ = command_ + ": " + e;
      }
      return true;
    });
    if (!(fds[0].revents & POLLIN)) continue;
    Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    auto t = session_.exec_tunnel(command_, std::move(conn), Millis(30'000), &stopping_);
    std::lock_guard<std::mutex> g(mu_);
    if (t) tunnels_.push_back(std::move(*t));
    else last_error_ = t.error().message;  // the client sees its connection closed
  }
}

}  // namespace rw::ssh
