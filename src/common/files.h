#pragma once
// File helpers: atomic replace, whole-file reads, directories.

#include <string>
#include <string_view>

#include "common/result.h"

namespace rw {

/// Replaces `path` with `content` atomically: temp file in the same
/// directory (`path` + kAtomicTempInfix + pid, counter, random), fsync,
/// rename, fsync of the directory. Readers see the old
/// file or the new one, never a torn one. With `durable` false the fsyncs
/// are skipped: still atomic for readers, but a power loss may keep the old
/// file (for records that are rebuilt anyway after a crash).
Status write_file_atomic(const std::string& path, const std::string& content, int mode = 0644,
                         bool durable = true);

/// What write_file_atomic puts between `path` and the rest of its temporary
/// file's name.
inline constexpr std::string_view kAtomicTempInfix = ".tmp.";
/// Whether `name` is the name of write_file_atomic's temporary file.
inline bool is_atomic_temp(std::string_view name) { return name.find(kAtomicTempInfix) != std::string_view::npos; }

/// Writes all of `data` to `fd` (retrying short writes); `what` names it in errors.
Status write_all(int fd, const std::string& data, const std::string& what);

/// Reads what is left of an open descriptor; `what` names it in errors.
Result<std::string> read_all(int fd, const std::string& what);

/// Reads a whole file.
Result<std::string> read_file(const std::string& path);

/// Reads at most the last `max_bytes` of a file, starting at a line boundary.
Result<std::string> read_tail(const std::string& path, size_t max_bytes);

/// mkdir -p with the given mode for created directories.
Status make_dirs(const std::string& path, int mode = 0755);

bool path_exists(const std::string& path);

/// "inode:size:mtime:ctime" of `path` (nanoseconds), "-" if it does not
/// exist: an unchanged identity means the file was neither replaced nor
/// written since.
std::string file_identity(const std::string& path);

/// Creates an empty file (or a file with `content`) durably; ok if it exists.
Status touch_marker(const std::string& path, const std::string& content = "");

}  // namespace rw
