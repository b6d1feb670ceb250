#include "ssh/load_error.h"

namespace rw::ssh {

// Weak: an executable that loads the libraries itself defines these again.
__attribute__((weak)) std::string libssh2_load_error() { return {}; }
__attribute__((weak)) std::string libcrypto_load_error() { return {}; }

std::string with_load_error(std::string what, const std::string& load_error) {
  if (!load_error.empty()) what += ": " + load_error;
  return what;
}

}  // namespace rw::ssh
