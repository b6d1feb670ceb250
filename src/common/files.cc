#include "common/files.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "common/clock.h"
#include "common/fd.h"

namespace rw {

Status write_all(int fd, const std::string& data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_err("write " + what, errno);
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status write_file_atomic(const std::string& path, const std::string& content, int mode, bool durable) {
  // A fresh name, created exclusively and never through a link: a file or
  // symlink someone planted at a guessable name is not written through.
  static std::atomic<uint64_t> counter{0};
  std::string tmp;
  Fd fd;
  for (int tries = 0; tries < 16 && !fd.valid(); ++tries) {
    uint64_t r = 0;
    if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) r = uint64_t(now_ms()) ^ (counter << 32);
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "%.*s%d.%llu.%016llx", int(kAtomicTempInfix.size()),
                  kAtomicTempInfix.data(), int(::getpid()),
                  static_cast<unsigned long long>(counter++), static_cast<unsigned long long>(r));
    tmp = path + suffix;
    fd = Fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd.valid() && errno != EEXIST) return sys_err("create " + tmp, errno);
  }
  if (!fd.valid()) return sys_err("create a temporary file beside " + path, EEXIST);
  if (::fchmod(fd.get(), mode) != 0) return sys_err("chmod " + tmp, errno);
  if (auto s = write_all(fd.get(), content, tmp); !s) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (durable && ::fsync(fd.get()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys_err("fsync " + tmp, e);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys_err("rename to " + path, e);
  }
  if (!durable) return {};
  Fd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) ::fsync(dir.get());
  return {};
}

Result<std::string> read_all(int fd, const std::string& what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_err("read " + what, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return sys_err("open " + path, errno);
  return read_all(fd.get(), path);
}

Result<std::string> read_tail(const std::string& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return sys_err("open " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return sys_err("stat " + path, errno);
  off_t size = st.st_size;
  off_t start = size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
  // One byte more in front tells whether the window starts a line.
  off_t from = start > 0 ? start - 1 : 0;
  std::string out(static_cast<size_t>(size - from), '\0');
  ssize_t n = ::pread(fd.get(), out.data(), out.size(), from);
  if (n < 0) return sys_err("read " + path, errno);
  out.resize(static_cast<size_t>(n));
  if (start > 0) {
    auto nl = out.find('\n');
    if (nl != std::string::npos) out.erase(0, nl + 1);
    else out.erase(0, 1);
  }
  return out;
}

Status make_dirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return err("create directory " + path + ": " + ec.message());
  ::chmod(path.c_str(), static_cast<mode_t>(mode));
  return {};
}

std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "-";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
         "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec);
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Status touch_marker(const std::string& path, const std::string& content) {
  if (path_exists(path)) return {};
  return write_file_atomic(path, content, 0644);
}

}  // namespace rw
