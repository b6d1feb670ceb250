// Why libssh2 or OpenSSL's libcrypto could not be loaded.
#pragma once

#include <string>

namespace rw::ssh {

/// Empty where the library is linked (it was loaded with the program).
/// runwarden loads them on first use (src/ssh/lazy/libssh2.cc): there, the
/// loader's error once a load has failed ("cannot load libssh2.so.1
/// (install libssh2-1): ..."). Call after a call into the library failed.
std::string libssh2_load_error();
std::string libcrypto_load_error();

/// `what`, with the library's load error when there is one.
std::string with_load_error(std::string what, const std::string& load_error);

}  // namespace rw::ssh
