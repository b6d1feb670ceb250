#include "common/shell.h"

namespace rw {

std::string shell_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  out += '\'';
  return out;
}

std::optional<std::string> shell_unquote(std::string_view q) {
  std::string out;
  size_t i = 0;
  if (q.empty()) return std::nullopt;
  while (i < q.size()) {
    if (q[i] == '\'') {
      size_t end = q.find('\'', i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      out.append(q.substr(i + 1, end - i - 1));
      i = end + 1;
    } else if (q[i] == '\\' && i + 1 < q.size()) {
      out += q[i + 1];
      i += 2;
    } else {
      return std::nullopt;  // an unquoted character: the shell would interpret it
    }
  }
  return out;
}

}  // namespace rw
