#include "ssh/tcp.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "ssh/session.h"

namespace rw::ssh {
namespace {

std::string reason_for(int e, Millis timeout) {
  switch (e) {
    case ECONNREFUSED: return "connection refused (nothing listens on that port)";
    case ETIMEDOUT: return "connection timed out after " + format_duration(timeout);
    case EHOSTUNREACH: return "no route to host (host down or unreachable)";
    case ENETUNREACH: return "network unreachable";
    case ECONNRESET: return "connection reset";
    default: return std::strerror(e);
  }
}

}  // namespace

Result<Fd> tcp_connect(const std::string& address, int port, Millis timeout, const std::atomic<bool>* cancel) {
  if (address.empty()) return err("no address");
  if (port < 1 || port > 65535) return err("invalid port " + std::to_string(port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(address.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return err("cannot resolve '" + address + "': " + ::gai_strerror(rc));
  }
  const int64_t deadline = mono_ms() + timeout.count();
  int last = ETIMEDOUT;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
      last = errno;
      continue;
    }
    if (rc != 0) {
      pollfd p{fd.get(), POLLOUT, 0};
      int n = 0;
      for (;;) {
        if (cancel && cancel->load()) {
          ::freeaddrinfo(res);
          return err("cancelled");
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) break;
        n = ::poll(&p, 1, static_cast<int>(cancel && left > 100 ? 100 : left));
        if (n == 0 || (n < 0 && errno == EINTR)) continue;
        break;
      }
      if (n <= 0) {
        last = ETIMEDOUT;
        continue;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) {
        last = soerr;
        continue;
      }
    }
    ::freeaddrinfo(res);
    return fd;
  }
  ::freeaddrinfo(res);
  return err(reason_for(last, timeout));
}

void set_tcp_user_timeout(int fd, int seconds) {
  unsigned ms = static_cast<unsigned>(seconds) * 1000u;
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

Status tcp_probe(const std::string& address, int port, Millis timeout) {
  auto fd = tcp_connect(address, port, timeout);
  if (!fd) return err(address + ":" + std::to_string(port) + ": " + fd.error().message);
  return {};
}

}  // namespace rw::ssh
