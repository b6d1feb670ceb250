#include "common/text.h"

#include <algorithm>
#include <cctype>

namespace rw {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool uri_names_a_host(std::string_view uri) {
  const size_t at = uri.find("://");
  return at != std::string_view::npos && at + 3 < uri.size() && uri[at + 3] != '/';
}

}  // namespace rw
