#pragma once
// Small text helpers shared by every layer.

#include <string_view>

namespace rw {

/// `s` without leading and trailing whitespace (isspace: ' ', \t, \r, \n, ...).
std::string_view trim(std::string_view s);

}  // namespace rw
