#include "web/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "common/fd.h"
#include "state/store.h"
#include "systemd/notify.h"
#include "web/api.h"

namespace rw::web {
namespace {

struct Context {
  std::string root;
  std::atomic<bool> stopping{false};
};

/// One Server-Sent Events connection: the snapshot whenever it changes
/// (looked at every second), a comment every 15 s so a closed client is
/// noticed. Each connection has its own thread (MHD_USE_THREAD_PER_CONNECTION),
/// so waiting here blocks nobody else.
struct Stream {
  Context* ctx;
  std::string what;
  std::string last;
  std::string pending;  ///< bytes not yet handed to MHD
  size_t sent = 0;
};

ssize_t read_stream(void* cls, uint64_t, char* buf, size_t max) {
  auto* s = static_cast<Stream*>(cls);
  using namespace std::chrono;
  auto quiet_since = steady_clock::now();
  while (s->sent >= s->pending.size()) {
    if (s->ctx->stopping.load()) return MHD_CONTENT_READER_END_OF_STREAM;
    std::string now = snapshot(s->ctx->root, s->what);
    if (now != s->last) {
      s->last = now;
      s->pending = "data: " + now + "\n\n";
      s->sent = 0;
      break;
    }
    if (steady_clock::now() - quiet_since > seconds(15)) {
      s->pending = ":\n\n";
      s->sent = 0;
      break;
    }
    std::this_thread::sleep_for(seconds(1));
  }
  size_t n = std::min(max, s->pending.size() - s->sent);
  std::memcpy(buf, s->pending.data() + s->sent, n);
  s->sent += n;
  return static_cast<ssize_t>(n);
}

void free_stream(void* cls) { delete static_cast<Stream*>(cls); }

MHD_Result add_arg(void* cls, MHD_ValueKind, const char* key, const char* value) {
  auto* q = static_cast<std::map<std::string, std::string>*>(cls);
  if (q->size() > kMaxQueryArgs) return MHD_NO;
  (*q)[key ? key : ""] = value ? value : "";
  return MHD_YES;
}

MHD_Result on_request(void* cls, MHD_Connection* c, const char* url, const char* method, const char*,
                      const char*, size_t* upload_size, void** state) {
  static int started;
  if (*state == nullptr) {  // headers in; a body, if any, comes next
    *state = &started;
    return MHD_YES;
  }
  Response res;
  if (*upload_size != 0) {
    *upload_size = 0;
    res = {413, "application/json", "{\"error\": \"read-only: no request bodies\", \"status\": 413}\n"};
  } else {
    Request req;
    req.method = method ? method : "";
    req.path = url ? url : "";
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &req.query);
    res = handle(static_cast<Context*>(cls)->root, req);
  }
  auto* ctx = static_cast<Context*>(cls);
  MHD_Response* r = nullptr;
  if (!res.stream.empty() && std::string(method ? method : "") == "GET")
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, read_stream, new Stream{ctx, res.stream, "", "", 0},
                                          free_stream);
  else
    r = MHD_create_response_from_buffer(res.body.size(), res.body.data(), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", res.content_type.c_str());
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Content-Security-Policy",
                          "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'");
  if (res.status == 405) MHD_add_response_header(r, "Allow", "GET, HEAD");
  MHD_Result ok = MHD_queue_response(c, static_cast<unsigned>(res.status), r);
  MHD_destroy_response(r);
  return ok;
}

/// A listening TCP socket on "HOST:PORT" ("[v6]:PORT" for IPv6).
int open_listener(const std::string& listen, std::string* bound) {
  std::string host = listen, port = "8470";
  if (auto colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    std::fprintf(stderr, "runwarden serve: --listen %s: expected HOST:PORT\n", listen.c_str());
    return -1;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(std::stoi(port)));
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(std::stoi(port)));
    len = sizeof *v6;
  } else {
    std::fprintf(stderr, "runwarden serve: --listen %s: not an IP address (use 127.0.0.1 or [::1])\n", listen.c_str());
    return -1;
  }
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 128) != 0) {
    std::fprintf(stderr, "runwarden serve: listen on %s: %s\n", listen.c_str(), std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return -1;
  }
  len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char text[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    *bound = std::string(text) + ":" + std::to_string(ntohs(v4->sin_port));
  } else {
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    *bound = "[" + std::string(text) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  return fd;
}

}  // namespace

int serve(const std::string& listen) {
  Context ctx{state::state_root()};
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // before MHD's threads exist
  ::signal(SIGPIPE, SIG_IGN);

  int fd = -1;
  std::string where;
  int n = sd_listen_fds(1);
  if (n > 1) {
    std::fprintf(stderr, "runwarden serve: systemd passed %d sockets; give the socket unit one ListenStream=\n", n);
    return 2;
  }
  if (n == 1) {
    fd = SD_LISTEN_FDS_START;
    where = "the socket from systemd";
  } else {
    fd = open_listener(listen, &where);
    if (fd < 0) return 2;
  }
  MHD_Daemon* d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0, nullptr,
      nullptr, on_request, &ctx, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 256u,
      MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(64 * 1024),
      MHD_OPTION_END);
  if (!d) {
    std::fprintf(stderr, "runwarden serve: cannot start the HTTP server on %s\n", where.c_str());
    return 1;
  }
  std::printf("listening on %s\n", where.c_str());
  std::fflush(stdout);
  systemd::notify_ready("serving " + ctx.root + " on " + where);
  int sig = 0;
  sigwait(&mask, &sig);
  ctx.stopping = true;
  MHD_stop_daemon(d);
  return 0;
}

}  // namespace rw::web
