#include "common/result.h"

#include <cstring>

namespace rw {

std::string errno_message(const std::string& what, int errnum) {
  return what + ": " + std::strerror(errnum);
}

}  // namespace rw
