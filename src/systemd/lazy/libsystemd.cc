// libsystemd for runwarden-watcher, loaded only while it is needed.
//
// An idle watcher (one per run, for hours) needs no library but libc: it
// sleeps in poll() on an inotify fd, a timer and a pidfd. It needs
// libsystemd for moments: the bus at start and when the runner's process
// exits (journal records and sd_notify it sends itself). Linked, libsystemd
// and what it brings (libgcrypt, liblzma, libzstd, liblz4, libcap,
// libgpg-error) stay mapped for the watcher's life, most of its resident
// memory. So the watcher is linked with this file instead: each sd_*
// function the core calls is defined here and forwards to libsystemd,
// dlopen'ed on the first call; the watcher's loop calls
// release_libsystemd() before it sleeps, which dlclose's it again.
//
// Only this executable's own calls come here: the symbols are not exported
// (the watcher is not linked with -rdynamic and no linked library refers to
// them), so libsystemd's calls to itself stay inside libsystemd. Variadic
// entry points go to their va_list twins. Not thread-safe: the watcher has
// one thread.

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "systemd/notify.h"

namespace {

void* handle = nullptr;

void* load() {
  if (!handle) handle = ::dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
  return handle;
}

/// `name` in libsystemd, loading it if needed; null if it cannot be had.
template <typename F>
F sym(const char* name) {
  void* h = load();
  return h ? reinterpret_cast<F>(::dlsym(h, name)) : nullptr;
}

}  // namespace

namespace rw::systemd {

void release_libsystemd() {
  if (!handle) return;
  ::dlclose(handle);
  handle = nullptr;
}

}  // namespace rw::systemd

// Functions returning an int report a library that cannot be loaded as
// -ENOSYS, as libsystemd reports a missing facility; those returning a
// pointer (the unref family) return null, which is what they return anyway.
#define RW_LAZY_INT(name, params, args)                   \
  extern "C" int name params {                            \
    auto f = sym<int(*) params>(#name);                   \
    return f ? f args : -ENOSYS;                          \
  }
#define RW_LAZY_PTR(type, name, params, args)             \
  extern "C" type name params {                           \
    auto f = sym<type(*) params>(#name);                  \
    return f ? f args : nullptr;                          \
  }

// Status and readiness are sent here too: loading libsystemd and its six
// libraries costs milliseconds, and the watcher says something at each
// change of the run and when it ends. systemd's notify protocol: the state
// as one datagram to $NOTIFY_SOCKET ("@" starts an abstract name); the
// manager takes the sender's pid from the socket's credentials.
extern "C" int sd_notify(int unset_environment, const char* state) {
  const char* env = ::getenv("NOTIFY_SOCKET");
  const std::string path = env ? env : "";
  if (unset_environment) ::unsetenv("NOTIFY_SOCKET");
  if (path.empty()) return 0;
  if (!state) return -EINVAL;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || path.size() < 2) return -EAFNOSUPPORT;
  if (path.size() >= sizeof sa.sun_path) return -EINVAL;
  std::memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = '\0';
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const ssize_t sent = ::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
  const int e = errno;
  ::close(fd);
  return sent < 0 ? -e : 1;
}
RW_LAZY_INT(sd_watchdog_enabled, (int unset_environment, uint64_t* usec), (unset_environment, usec))
// Journal records are written here, not by libsystemd: it keeps its
// socket in a static that a dlclose would leak, one descriptor per load.
// The native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): one datagram of
// KEY=VALUE lines, a value with a newline as KEY, newline, its length as a
// little-endian 64-bit number, the value, newline. A record too large for
// one datagram fails (-EMSGSIZE) and the caller writes it to stderr, which
// reaches the journal too.
extern "C" int sd_journal_sendv_with_location(const char* file, const char* line, const char* func,
                                              const struct iovec* iov, int n) {
  static int fd = -1;
  if (fd < 0 && (fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) return -errno;
  std::string d;
  auto field = [&](const char* p, size_t len) {
    const char* eq = static_cast<const char*>(std::memchr(p, '=', len));
    if (!eq) return;
    if (!std::memchr(eq + 1, '\n', len - size_t(eq + 1 - p))) {
      d.append(p, len).push_back('\n');
      return;
    }
    d.append(p, size_t(eq - p)).push_back('\n');
    uint64_t v = len - size_t(eq + 1 - p);
    for (int i = 0; i < 8; ++i) d.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    d.append(eq + 1, v).push_back('\n');
  };
  for (int i = 0; i < n; ++i) field(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  for (const char* f : {file, line})
    if (f) field(f, std::strlen(f));
  if (func) {
    std::string f = std::string("CODE_FUNC=") + func;
    field(f.data(), f.size());
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, "/run/systemd/journal/socket", sizeof sa.sun_path - 1);
  if (::sendto(fd, d.data(), d.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return -errno;
  return 0;
}

RW_LAZY_INT(sd_bus_new, (sd_bus * *ret), (ret))
RW_LAZY_INT(sd_bus_open_system, (sd_bus * *ret), (ret))
RW_LAZY_INT(sd_bus_set_address, (sd_bus * bus, const char* address), (bus, address))
RW_LAZY_INT(sd_bus_start, (sd_bus * bus), (bus))
RW_LAZY_PTR(sd_bus*, sd_bus_flush_close_unref, (sd_bus * bus), (bus))
RW_LAZY_INT(sd_bus_process, (sd_bus * bus, sd_bus_message** r), (bus, r))
RW_LAZY_INT(sd_bus_wait, (sd_bus * bus, uint64_t timeout_usec), (bus, timeout_usec))
RW_LAZY_INT(sd_bus_add_filter, (sd_bus * bus, sd_bus_slot** slot, sd_bus_message_handler_t callback, void* userdata),
            (bus, slot, callback, userdata))
RW_LAZY_PTR(sd_bus_slot*, sd_bus_slot_unref, (sd_bus_slot * slot), (slot))
RW_LAZY_INT(sd_bus_path_encode, (const char* prefix, const char* external_id, char** ret_path),
            (prefix, external_id, ret_path))
RW_LAZY_PTR(sd_bus_message*, sd_bus_message_unref, (sd_bus_message * m), (m))
RW_LAZY_INT(sd_bus_message_enter_container, (sd_bus_message * m, char type, const char* contents), (m, type, contents))
RW_LAZY_INT(sd_bus_message_exit_container, (sd_bus_message * m), (m))
RW_LAZY_INT(sd_bus_message_is_signal, (sd_bus_message * m, const char* interface, const char* member),
            (m, interface, member))
RW_LAZY_INT(sd_bus_message_read_basic, (sd_bus_message * m, char type, void* p), (m, type, p))
RW_LAZY_INT(sd_bus_message_rewind, (sd_bus_message * m, int complete), (m, complete))
RW_LAZY_INT(sd_bus_message_skip, (sd_bus_message * m, const char* types), (m, types))
RW_LAZY_INT(sd_bus_error_is_set, (const sd_bus_error* e), (e))

extern "C" const char* sd_bus_message_get_path(sd_bus_message* m) {
  auto f = sym<const char* (*)(sd_bus_message*)>("sd_bus_message_get_path");
  return f ? f(m) : nullptr;
}

// A boolean: without the library no call could have set the error.
extern "C" int sd_bus_error_has_name(const sd_bus_error* e, const char* name) {
  auto f = sym<int (*)(const sd_bus_error*, const char*)>("sd_bus_error_has_name");
  return f ? f(e, name) : 0;
}
extern "C" void sd_bus_error_free(sd_bus_error* e) {
  // An error nothing was put in owns nothing: no need to load anything.
  if (!e || (!e->name && !e->message)) return;
  if (auto f = sym<void (*)(sd_bus_error*)>("sd_bus_error_free")) f(e);
}

extern "C" int sd_bus_message_read(sd_bus_message* m, const char* types, ...) {
  auto f = sym<int (*)(sd_bus_message*, const char*, va_list)>("sd_bus_message_readv");
  if (!f) return -ENOSYS;
  va_list ap;
  va_start(ap, types);
  int r = f(m, types, ap);
  va_end(ap);
  return r;
}

extern "C" int sd_bus_call_method(sd_bus* bus, const char* destination, const char* path, const char* interface,
                                  const char* member, sd_bus_error* ret_error, sd_bus_message** reply,
                                  const char* types, ...) {
  auto f = sym<int (*)(sd_bus*, const char*, const char*, const char*, const char*, sd_bus_error*, sd_bus_message**,
                       const char*, va_list)>("sd_bus_call_methodv");
  if (!f) return -ENOSYS;
  va_list ap;
  va_start(ap, types);
  int r = f(bus, destination, path, interface, member, ret_error, reply, types, ap);
  va_end(ap);
  return r;
}

extern "C" int sd_bus_call_method_async(sd_bus* bus, sd_bus_slot** slot, const char* destination, const char* path,
                                        const char* interface, const char* member,
                                        sd_bus_message_handler_t callback, void* userdata, const char* types, ...) {
  auto f = sym<int (*)(sd_bus*, sd_bus_slot**, const char*, const char*, const char*, const char*,
                       sd_bus_message_handler_t, void*, const char*, va_list)>("sd_bus_call_method_asyncv");
  if (!f) return -ENOSYS;
  va_list ap;
  va_start(ap, types);
  int r = f(bus, slot, destination, path, interface, member, callback, userdata, types, ap);
  va_end(ap);
  return r;
}
