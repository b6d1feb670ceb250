#include "common/config.h"

#include <cstdlib>
#include <sstream>

#include "common/files.h"

namespace rw {

Status load_config(const std::string& path) {
  if (!path_exists(path)) return {};
  RW_ASSIGN(std::string text, read_file(path));
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    auto eq = line.find('=');
    std::string key = eq == std::string::npos ? "" : line.substr(first, eq - first);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (key.empty() || key.rfind("RUNWARDEN_", 0) != 0)
      return err(path + ":" + std::to_string(n) + ": expected RUNWARDEN_KEY=VALUE", 2);
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0])
      value = value.substr(1, value.size() - 2);
    ::setenv(key.c_str(), value.c_str(), 0);
  }
  return {};
}

}  // namespace rw
