#include "common/build_name.h"

namespace rw {
namespace {

bool allowed_char(char c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return !first && (c == '.' || c == '_' || c == '-');
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

Status validate_build_name(const std::string& name) {
  const std::string rule =
      " (allowed: a letter or digit, then up to 127 of letters, digits, '.', '_', '-'; no '..')";
  if (name.empty()) return err("invalid build name: empty" + rule, 2);
  if (name.size() > 128)
    return err("invalid build name: " + std::to_string(name.size()) + " characters, at most 128" + rule, 2);
  for (size_t i = 0; i < name.size(); ++i) {
    if (!allowed_char(name[i], i == 0)) {
      return err("invalid build name '" + printable(name) + "': character " + std::to_string(i + 1) +
                     " ('" + printable(std::string(1, name[i])) + "') is not allowed" + rule,
                 2);
    }
  }
  if (name.find("..") != std::string::npos)
    return err("invalid build name '" + name + "': contains '..'" + rule, 2);
  return {};
}

std::string runner_unit(const std::string& build) { return "runner@" + build + ".service"; }
std::string watcher_unit(const std::string& build) { return "watcher@" + build + ".service"; }

}  // namespace rw
