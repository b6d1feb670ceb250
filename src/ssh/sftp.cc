// Session::push and Session::fetch: SFTP over the shared connection, one
// SFTP subsystem channel per call (an LIBSSH2_SFTP keeps per-instance state,
// so instances are never shared between threads).

#include <dirent.h>
#include <fcntl.h>
#include <libssh2_sftp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/fd.h"
#include "common/files.h"
#include "ssh/conn.h"
#include "ssh/remote_command.h"
#include "ssh/session.h"

namespace rw::ssh {
namespace {

constexpr int64_t kStallMs = 120'000;  // one SFTP call making no progress this long: give up
constexpr size_t kChunk = 256 * 1024;

std::string fx_text(unsigned long code) {
  switch (code) {
    case LIBSSH2_FX_NO_SUCH_FILE: return "no such file";
    case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied";
    case LIBSSH2_FX_FAILURE: return "failure";
    case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: return "no space left on device";
    case LIBSSH2_FX_QUOTA_EXCEEDED: return "quota exceeded";
    case LIBSSH2_FX_FILE_ALREADY_EXISTS: return "file exists";
    case LIBSSH2_FX_WRITE_PROTECT: return "read-only file system";
    case LIBSSH2_FX_NOT_A_DIRECTORY: return "not a directory";
    case LIBSSH2_FX_NO_SUCH_PATH: return "no such path";
    default: return "SFTP status " + std::to_string(code);
  }
}

std::string parent_of(const std::string& p) {
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

std::string base_of(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string random_suffix() {
  static std::atomic<unsigned> counter{0};
  thread_local std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08x%04x", static_cast<unsigned>(rng()), counter++ & 0xffffu);
  return buf;
}

// One SFTP subsystem on a Conn, used by one thread, with the Conn's lock held
// except while a callback runs.
class Sftp {
 public:
  Sftp(Conn& c, Conn::Lock& lk, const std::atomic<bool>* cancel) : c_(c), lk_(lk), cancel_(cancel) {}
  ~Sftp() { close(); }

  Status start(int64_t deadline) {
    if (auto s = c_.acquire_slot(lk_, kNoDeadline, cancel_); !s) return s;
    if (auto s = c_.acquire_opener(lk_, deadline, cancel_); !s) {
      c_.release_slot();
      return s;
    }
    // sftp_init opens a channel and keeps its progress in the libssh2
    // session, so it runs under the opener like any channel open.
    LIBSSH2_SESSION* raw = c_.raw();
    int rc = 0;
    for (int attempt = 0;; ++attempt) {
      sftp_ = c_.drive_ptr<LIBSSH2_SFTP>(lk_, [raw] { return libssh2_sftp_init(raw); }, deadline, &rc, cancel_);
      // Refused channel: see Conn::open_channel's retry_refused.
      if (sftp_ || rc != LIBSSH2_ERROR_CHANNEL_FAILURE) break;
      if (!c_.pause_before_retry(lk_, attempt, deadline, cancel_)) break;
    }
    if (sftp_) {
      c_.release_opener();
      return {};
    }
    if (rc == LIBSSH2_ERROR_TIMEOUT || rc == kCancelledRc) {
      Conn* c = &c_;
      auto got = std::make_shared<LIBSSH2_SFTP*>(nullptr);
      c_.in_background(
          [raw, got]() -> int {
            *got = libssh2_sftp_init(raw);
            return *got ? 0 : libssh2_session_last_errno(raw);
          },
          [c, got] {
            c->release_opener();
            if (!*got) {
              c->release_slot();
              return;
            }
            LIBSSH2_SFTP* s = *got;
            c->in_background([s] { return libssh2_sftp_shutdown(s); }, [c] { c->release_slot(); });
          });
      return err(rc == kCancelledRc ? "cancelled" : "timed out starting SFTP");
    }
    std::string why = c_.broken() ? "connection lost: " + c_.broken_reason() : c_.last_error();
    c_.release_opener();
    c_.release_slot();
    return err("cannot start SFTP: " + why + " (is the sftp subsystem enabled in sshd_config?)");
  }

  void close() {
    if (!sftp_) return;
    LIBSSH2_SFTP* s = sftp_;
    sftp_ = nullptr;
    int rc = c_.drive(lk_, [s] { return libssh2_sftp_shutdown(s); }, mono_ms() + 2000);
    if (rc == LIBSSH2_ERROR_TIMEOUT) {
      Conn* c = &c_;
      c_.in_background([s] { return libssh2_sftp_shutdown(s); }, [c] { c->release_slot(); });
    } else {
      c_.release_slot();
    }
  }

  /// Calls f until it is done; errors name `what`.
  Status run(const std::function<int()>& f, const std::string& what) {
    int rc = c_.drive(lk_, f, mono_ms() + kStallMs, cancel_);
    if (rc >= 0) return {};
    return failure(rc, what);
  }

  Status failure(int rc, const std::string& what) {
    if (rc == kCancelledRc) return err("cancelled", kCancelledRc);
    if (rc == LIBSSH2_ERROR_TIMEOUT) return err(what + ": no progress for " + std::to_string(kStallMs / 1000) + "s");
    if (c_.broken()) return err(what + ": connection lost: " + c_.broken_reason());
    if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) return err(what + ": " + fx_text(libssh2_sftp_last_error(sftp_)));
    return err(what + ": " + c_.last_error());
  }

  unsigned long last_fx() const { return libssh2_sftp_last_error(sftp_); }

  Result<LIBSSH2_SFTP_HANDLE*> open(const std::string& path, unsigned long flags, long mode, int type,
                                    const std::string& what) {
    int rc = 0;
    LIBSSH2_SFTP* s = sftp_;
    auto* h = c_.drive_ptr<LIBSSH2_SFTP_HANDLE>(
        lk_,
        [&] {
          return libssh2_sftp_open_ex(s, path.data(), static_cast<unsigned>(path.size()), flags, mode, type);
        },
        mono_ms() + kStallMs, &rc, cancel_);
    if (h) return h;
    return failure(rc, what).error();
  }

  void close_handle(LIBSSH2_SFTP_HANDLE* h) {
    c_.drive(lk_, [h] { return libssh2_sftp_close_handle(h); }, mono_ms() + 10'000);
  }

  /// stat: nullopt when the path does not exist.
  Result<std::optional<LIBSSH2_SFTP_ATTRIBUTES>> stat(const std::string& path) {
    LIBSSH2_SFTP_ATTRIBUTES a{};
    LIBSSH2_SFTP* s = sftp_;
    int rc = c_.drive(
        lk_,
        [&] { return libssh2_sftp_stat_ex(s, path.data(), static_cast<unsigned>(path.size()), LIBSSH2_SFTP_STAT, &a); },
        mono_ms() + kStallMs, cancel_);
    if (rc == 0) return std::optional<LIBSSH2_SFTP_ATTRIBUTES>(a);
    if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL &&
        (last_fx() == LIBSSH2_FX_NO_SUCH_FILE || last_fx() == LIBSSH2_FX_NO_SUCH_PATH)) {
      return std::optional<LIBSSH2_SFTP_ATTRIBUTES>{};
    }
    return failure(rc, "stat " + path).error();
  }

  Status setstat(const std::string& path, LIBSSH2_SFTP_ATTRIBUTES a) {
    LIBSSH2_SFTP* s = sftp_;
    return run([&] { return libssh2_sftp_stat_ex(s, path.data(), static_cast<unsigned>(path.size()), LIBSSH2_SFTP_SETSTAT, &a); },
               "set mode of " + path);
  }

  /// Makes `path` an existing directory (mode for a new one, exactly).
  Status ensure_dir(const std::string& path, int mode) {
    RW_ASSIGN(auto st, stat(path));
    if (st) {
      if (!LIBSSH2_SFTP_S_ISDIR(st->permissions)) return err(path + " exists and is not a directory");
      return {};
    }
    LIBSSH2_SFTP* s = sftp_;
    int rc = c_.drive(lk_, [&] { return libssh2_sftp_mkdir_ex(s, path.data(), static_cast<unsigned>(path.size()), mode); },
                      mono_ms() + kStallMs, cancel_);
    if (rc != 0) {
      // Another task may have created it meanwhile.
      RW_ASSIGN(auto again, stat(path));
      if (again && LIBSSH2_SFTP_S_ISDIR(again->permissions)) return {};
      return failure(rc, "create directory " + path);
    }
    LIBSSH2_SFTP_ATTRIBUTES a{};
    a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
    a.permissions = static_cast<unsigned long>(mode & 07777);
    return setstat(path, a);  // the server applied its umask to mkdir's mode
  }

  /// mkdir -p for the directories above a remote path.
  Status ensure_parents(const std::string& path) {
    std::string parent = parent_of(path);
    if (parent.empty() || parent == "/") return {};
    RW_ASSIGN(auto st, stat(parent));
    if (st) {
      if (!LIBSSH2_SFTP_S_ISDIR(st->permissions)) return err(parent + " exists and is not a directory");
      return {};
    }
    RW_TRY(ensure_parents(parent));
    return ensure_dir(parent, 0755);
  }

  /// Writes one file atomically. When the server's rename refuses to
  /// replace an existing file (SFTP v3 as OpenSSH implements it), the
  /// temporary is left in place and queued in `moves` for `mv -f`.
  Status put_file(const std::string& local, const struct ::stat& st, const std::string& dst, int mode,
                  std::vector<std::pair<std::string, std::string>>* moves) {
    Fd in(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return sys_err("open " + local, errno);
    std::string dir = parent_of(dst);
    std::string tmp = (dir.empty() ? "" : dir + "/") + "." + base_of(dst) + ".rwtmp-" + random_suffix();
    RW_ASSIGN(LIBSSH2_SFTP_HANDLE * h,
              open(tmp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL | LIBSSH2_FXF_TRUNC, 0600,
                   LIBSSH2_SFTP_OPENFILE, "create " + tmp));
    Status st_write = copy_in(in.get(), h, local, tmp);
    if (st_write) {
      // Durable before it becomes visible; servers without fsync@openssh.com
      // just skip this.
      c_.drive(lk_, [h] { return libssh2_sftp_fsync(h); }, mono_ms() + kStallMs, cancel_);
      LIBSSH2_SFTP_ATTRIBUTES a{};
      a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS | LIBSSH2_SFTP_ATTR_ACMODTIME;
      a.permissions = static_cast<unsigned long>(mode & 07777);
      a.atime = static_cast<unsigned long>(st.st_atime);
      a.mtime = static_cast<unsigned long>(st.st_mtime);
      st_write = run([&] { return libssh2_sftp_fsetstat(h, &a); }, "set mode of " + tmp);
    }
    close_handle(h);
    if (st_write) st_write = rename_into_place(tmp, dst, moves);
    if (!st_write) unlink(tmp);
    return st_write;
  }

  void unlink(const std::string& path) {
    LIBSSH2_SFTP* s = sftp_;
    c_.drive(lk_, [&] { return libssh2_sftp_unlink_ex(s, path.data(), static_cast<unsigned>(path.size())); },
             mono_ms() + 10'000);
  }

  LIBSSH2_SFTP* raw() const { return sftp_; }

 private:
  Status copy_in(int fd, LIBSSH2_SFTP_HANDLE* h, const std::string& local, const std::string& tmp) {
    std::vector<char> buf(kChunk);
    for (;;) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return sys_err("read " + local, errno);
      if (n == 0) return {};
      size_t off = 0;
      while (off < static_cast<size_t>(n)) {
        ssize_t w = 0;
        int rc = c_.drive(
            lk_,
            [&] {
              w = libssh2_sftp_write(h, buf.data() + off, static_cast<size_t>(n) - off);
              return w < 0 ? static_cast<int>(w) : 0;
            },
            mono_ms() + kStallMs, cancel_);
        if (rc != 0) return failure(rc, "write " + tmp);
        off += static_cast<size_t>(w);
      }
    }
  }

  Status rename_into_place(const std::string& tmp, const std::string& dst,
                           std::vector<std::pair<std::string, std::string>>* moves) {
    LIBSSH2_SFTP* s = sftp_;
    int rc = c_.drive(
        lk_,
        [&] {
          return libssh2_sftp_rename_ex(s, tmp.data(), static_cast<unsigned>(tmp.size()), dst.data(),
                                        static_cast<unsigned>(dst.size()),
                                        LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                            LIBSSH2_SFTP_RENAME_NATIVE);
        },
        mono_ms() + kStallMs, cancel_);
    if (rc == 0) return {};
    if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL) return failure(rc, "rename " + tmp + " to " + dst);
    RW_ASSIGN(auto existing, stat(dst));
    if (!existing) return failure(rc, "rename " + tmp + " to " + dst);
    if (LIBSSH2_SFTP_S_ISDIR(existing->permissions)) return err(dst + " is a directory; not replacing it with a file");
    moves->emplace_back(tmp, dst);
    return {};
  }

  Conn& c_;
  Conn::Lock& lk_;
  const std::atomic<bool>* cancel_;
  LIBSSH2_SFTP* sftp_ = nullptr;
};

struct LocalEntry {
  std::string path;
  struct ::stat st;
};

// Files and directories under `dir`, sorted by name. A symlink is pushed as
// what it points to only when that stays inside the pushed tree `root` (a
// resolved path): a link to ~/.ssh/id_ed25519 inside a suite would otherwise
// copy the controller's key to the host. Links leading out, and dangling
// ones, are refused with their names.
Result<std::vector<std::pair<std::string, LocalEntry>>> list_dir(const std::string& dir, const std::string& root) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return sys_err("open directory " + dir, errno);
  std::vector<std::pair<std::string, LocalEntry>> out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    LocalEntry le{dir + "/" + n, {}};
    if (::lstat(le.path.c_str(), &le.st) != 0) {
      int errnum = errno;
      ::closedir(d);
      return sys_err("stat " + le.path, errnum);
    }
    if (S_ISLNK(le.st.st_mode)) {
      char* real = ::realpath(le.path.c_str(), nullptr);
      std::string target = real ? real : "";
      std::free(real);
      const bool inside = !target.empty() && target.size() > root.size() &&
                          target.compare(0, root.size(), root) == 0 && target[root.size()] == '/';
      if (!inside) {
        ::closedir(d);
        return err("symlink " + le.path + (target.empty() ? " is dangling" : " points outside the pushed directory") +
                   ": not pushed (only links that stay inside it are)");
      }
      if (::stat(target.c_str(), &le.st) != 0) {
        int errnum = errno;
        ::closedir(d);
        return sys_err("stat " + target, errnum);
      }
      le.path = target;
    }
    out.emplace_back(n, le);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace

Status Session::push(const std::string& local, const std::string& remote, std::optional<int> mode,
                     const std::atomic<bool>* cancel) {
  auto s = sftp_push(local, remote, mode, cancel);
  // (kCancelledRc stays inside ssh/: a cancelled push is an ordinary error
  // whose message says "cancelled"; the caller knows it asked for it.)
  if (!s) return err(label_ + ": push " + local + " to " + remote + ": " + s.error().message);
  return s;
}

Status Session::sftp_push(const std::string& local, const std::string& remote, std::optional<int> mode,
                          const std::atomic<bool>* cancel) {
  if (remote.empty()) return err("no remote path");
  struct ::stat st {};
  if (::stat(local.c_str(), &st) != 0) return sys_err("stat " + local, errno);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return err(local + " is not a regular file or directory");
  std::string dst = remote;
  const bool into_dir = dst.back() == '/';
  while (dst.size() > 1 && dst.back() == '/') dst.pop_back();

  std::vector<std::pair<std::string, std::string>> moves;
  {
    Conn& c = *conn_;
    Conn::Lock lk(c.mutex());
    if (c.broken()) return err("connection lost: " + c.broken_reason());
    Sftp sftp(c, lk, cancel);
    RW_TRY(sftp.start(mono_ms() + opt_.connect_timeout.count()));
    RW_TRY(sftp.ensure_parents(dst));
    if (S_ISREG(st.st_mode)) {
      // Like cp: "dir/" or an existing directory receives the file under its own name.
      RW_ASSIGN(auto existing, sftp.stat(dst));
      if (into_dir || (existing && LIBSSH2_SFTP_S_ISDIR(existing->permissions))) {
        if (!existing) RW_TRY(sftp.ensure_dir(dst, 0755));
        std::string name = local.substr(local.rfind('/') == std::string::npos ? 0 : local.rfind('/') + 1);
        dst = (dst == "/" ? "" : dst) + "/" + name;
      }
      RW_TRY(sftp.put_file(local, st, dst, mode ? *mode : static_cast<int>(st.st_mode & 07777), &moves));
    } else {
      // Depth-first, directories before their contents; (dev, inode) pairs
      // guard against symlink loops.
      std::set<std::pair<dev_t, ino_t>> seen;
      char* real_root = ::realpath(local.c_str(), nullptr);
      if (!real_root) return sys_err("resolve " + local, errno);
      const std::string root(real_root);
      std::free(real_root);
      std::function<Status(const std::string&, const struct ::stat&, const std::string&)> walk =
          [&](const std::string& ldir, const struct ::stat& dst_st, const std::string& rdir) -> Status {
        if (!seen.insert({dst_st.st_dev, dst_st.st_ino}).second) return err(ldir + ": directory loop (symlink)");
        RW_TRY(sftp.ensure_dir(rdir, static_cast<int>(dst_st.st_mode & 07777)));
        RW_ASSIGN(auto entries, list_dir(ldir, root));
        for (auto& [name, e] : entries) {
          if (cancel && cancel->load()) return err("cancelled", kCancelledRc);
          std::string r = rdir + "/" + name;
          if (S_ISDIR(e.st.st_mode)) {
            RW_TRY(walk(e.path, e.st, r));
          } else if (S_ISREG(e.st.st_mode)) {
            RW_TRY(sftp.put_file(e.path, e.st, r, mode ? *mode : static_cast<int>(e.st.st_mode & 07777), &moves));
          } else {
            return err(e.path + " is not a regular file or directory");
          }
        }
        return {};
      };
      RW_TRY(walk(local, st, dst));
    }
  }
  // Replacing existing files: rename(2) through a shell, which overwrites
  // atomically where SFTP v3 rename would refuse.
  size_t i = 0;
  while (i < moves.size()) {
    std::string cmd;
    size_t first = i;
    for (; i < moves.size() && cmd.size() < 64 * 1024; ++i) {
      if (!cmd.empty()) cmd += " && ";
      cmd += "mv -f -- " + shell_quote(moves[i].first) + " " + shell_quote(moves[i].second);
    }
    std::string errors;
    ExecOptions o;
    o.raw = true;
    o.timeout = Millis(kStallMs);
    o.cancel = cancel;
    auto r = exec(cmd, o, [&](bool is_err, std::string_view d) {
      if (is_err && errors.size() < 2000) errors.append(d);
    });
    if (!r) return r.error();
    if (r->cancelled) return err("cancelled", kCancelledRc);
    if (r->exit_code != 0) {
      return err("replacing " + moves[first].second + (i - first > 1 ? " and others" : "") +
                 " failed: " + (errors.empty() ? "mv exited with an error" : errors));
    }
  }
  return {};
}

Status Session::fetch(const std::string& remote, const std::string& local, const std::atomic<bool>* cancel) {
  auto fail = [&](const Error& e) -> Status {
    return err(label_ + ": fetch " + remote + " to " + local + ": " + e.message);
  };
  std::string dir = local.rfind('/') == std::string::npos ? "." : local.substr(0, local.rfind('/'));
  if (dir.empty()) dir = "/";
  if (!path_exists(dir)) {
    if (auto s = make_dirs(dir, 0755); !s) return fail(s.error());
  }
  std::string tmp = local + ".rwtmp-XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  Fd out(::mkostemp(name.data(), O_CLOEXEC));
  if (!out.valid()) {
    int errnum = errno;
    return fail(sys_err("create a temporary file in " + dir, errnum));
  }
  tmp.assign(name.data());
  auto remove_tmp = [&] { ::unlink(tmp.c_str()); };

  Conn& c = *conn_;
  Conn::Lock lk(c.mutex());
  if (c.broken()) {
    remove_tmp();
    return fail(Error{"connection lost: " + c.broken_reason()});
  }
  Sftp sftp(c, lk, cancel);
  if (auto s = sftp.start(mono_ms() + opt_.connect_timeout.count()); !s) {
    remove_tmp();
    return fail(s.error());
  }
  auto h = sftp.open(remote, LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE, "open " + remote);
  if (!h) {
    remove_tmp();
    return fail(h.error());
  }
  LIBSSH2_SFTP_ATTRIBUTES a{};
  int mode = 0644;
  if (c.drive(lk, [&] { return libssh2_sftp_fstat(*h, &a); }, mono_ms() + kStallMs, cancel) == 0 &&
      (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS)) {
    if (LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
      sftp.close_handle(*h);
      remove_tmp();
      return fail(Error{remote + " is a directory (fetch copies one file)"});
    }
    mode = static_cast<int>(a.permissions & 0777);
  }
  std::vector<char> buf(kChunk);
  Status st;
  for (;;) {
    ssize_t got = 0;
    int rc = c.drive(
        lk,
        [&] {
          got = libssh2_sftp_read(*h, buf.data(), buf.size());
          return got < 0 ? static_cast<int>(got) : 0;
        },
        mono_ms() + kStallMs, cancel);
    if (rc != 0) {
      st = sftp.failure(rc, "read " + remote);
      break;
    }
    if (got == 0) break;
    // Local disk writes happen under the connection lock; they are short
    // and keep the code simple.
    size_t off = 0;
    while (off < static_cast<size_t>(got)) {
      ssize_t w = ::write(out.get(), buf.data() + off, static_cast<size_t>(got) - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        st = sys_err("write " + tmp, errno);
        break;
      }
      off += static_cast<size_t>(w);
    }
    if (!st) break;
  }
  sftp.close_handle(*h);
  sftp.close();
  lk.unlock();
  if (st && ::fchmod(out.get(), static_cast<mode_t>(mode)) != 0) st = sys_err("chmod " + tmp, errno);
  if (st && ::fsync(out.get()) != 0) st = sys_err("fsync " + tmp, errno);
  out.reset();
  if (st && ::rename(tmp.c_str(), local.c_str()) != 0) st = sys_err("rename " + tmp + " to " + local, errno);
  if (!st) {
    remove_tmp();
    return fail(st.error());
  }
  return {};
}

}  // namespace rw::ssh
