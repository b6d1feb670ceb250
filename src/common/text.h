#pragma once
// Small text helpers shared by every layer.

#include <string_view>

namespace rw {

/// `s` without leading and trailing whitespace (isspace: ' ', \t, \r, \n, ...).
std::string_view trim(std::string_view s);

/// `a` == `b` ignoring ASCII case (HTTP header names, URL schemes).
bool equals_nocase(std::string_view a, std::string_view b);

/// Whether URI `uri` names another machine ("qemu+ssh://hv1/system"), as
/// opposed to this one ("qemu:///system", "qemu+unix:///system?socket=...").
bool uri_names_a_host(std::string_view uri);

}  // namespace rw
