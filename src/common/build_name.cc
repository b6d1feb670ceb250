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

std::string name_rule(size_t max) {
  return "a letter or digit, then letters, digits, '.', '_', '-'; no '..', no '.' at the end; at most " +
         std::to_string(max) + " characters";
}

Status validate_name(const std::string& name, const std::string& what, size_t max) {
  const std::string rule = " (allowed: " + name_rule(max) + ")";
  if (name.empty()) return err("invalid " + what + ": empty" + rule, 2);
  if (name.size() > max)
    return err("invalid " + what + ": " + std::to_string(name.size()) + " characters, at most " +
                   std::to_string(max) + rule,
               2);
  for (size_t i = 0; i < name.size(); ++i) {
    if (!allowed_char(name[i], i == 0)) {
      return err("invalid " + what + " '" + printable(name) + "': character " + std::to_string(i + 1) + " ('" +
                     printable(std::string(1, name[i])) + "') is not allowed" + rule,
                 2);
    }
  }
  if (name.find("..") != std::string::npos) return err("invalid " + what + " '" + name + "': contains '..'" + rule, 2);
  if (name.back() == '.') return err("invalid " + what + " '" + name + "': ends with '.'" + rule, 2);
  return {};
}

Status validate_build_name(const std::string& name) { return validate_name(name, "build name", kMaxKey); }

std::string runner_unit(const std::string& build) { return "runner@" + build + ".service"; }
std::string watcher_unit(const std::string& build) { return "watcher@" + build + ".service"; }

}  // namespace rw
