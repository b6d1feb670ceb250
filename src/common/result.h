#pragma once
// Result<T>: a value or an error message. Low layers return it; only cli/
// turns errors into exit codes. Propagate with RW_TRY.

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace rw {

struct Error {
  std::string message;
  int code = 1;  ///< exit code the CLI should use if this error reaches main
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error e) : v_(std::move(e)) {}      // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)) {}  // NOLINT
  bool ok() const { return !e_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

inline Error err(std::string message, int code = 1) { return Error{std::move(message), code}; }

/// "what: strerror(errno)"
std::string errno_message(const std::string& what, int errnum);
inline Error sys_err(const std::string& what, int errnum) { return Error{errno_message(what, errnum), 1}; }

}  // namespace rw

#define RW_CONCAT_(a, b) a##b
#define RW_CONCAT(a, b) RW_CONCAT_(a, b)
/// Propagates an error from a Status / Result expression.
#define RW_TRY(expr)                                              \
  do {                                                            \
    auto&& rw_try_result_ = (expr);                               \
    if (!rw_try_result_.ok()) return rw_try_result_.error();      \
  } while (0)
/// Declares `var` from a Result expression, or returns its error.
#define RW_ASSIGN(var, expr)                                                     \
  auto RW_CONCAT(rw_assign_, __LINE__) = (expr);                                 \
  if (!RW_CONCAT(rw_assign_, __LINE__).ok()) return RW_CONCAT(rw_assign_, __LINE__).error(); \
  var = std::move(RW_CONCAT(rw_assign_, __LINE__)).value()
