// Fuzzes shell_quote: whatever the bytes (NUL excepted: a shell word cannot
// hold one), the quoted text is one word that reads back as the input, with
// nothing outside single quotes but escaped quotes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/shell.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  if (in.find('\0') != std::string::npos) return 0;
  std::string q = rw::shell_quote(in);
  auto back = rw::shell_unquote(q);
  if (!back || *back != in) std::abort();
  return 0;
}
