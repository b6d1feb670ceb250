#pragma once
// The one way a value enters a shell command line, local or remote.

#include <optional>
#include <string>
#include <string_view>

namespace rw {

/// Quotes `s` as one POSIX shell word: 'it'\''s'. Any byte string, NUL
/// excepted (a shell word cannot hold one), comes back as itself.
std::string shell_quote(std::string_view s);

/// The word a POSIX shell reads from `quoted`, if it is one word made of
/// single-quoted runs and backslash-escaped characters only (what
/// shell_quote writes); nullopt otherwise. For tests and fuzzing.
std::optional<std::string> shell_unquote(std::string_view quoted);

}  // namespace rw
