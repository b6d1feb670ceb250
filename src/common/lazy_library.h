// A shared library opened on first use and kept, for the files that stand in
// for a library in one executable (src/testbed/lazy/libvirt.cc,
// src/ssh/lazy/libssh2.cc): each function the core calls is defined there
// with RW_LAZY_IN and forwards to the library's own, looked up once.
#pragma once

#include <dlfcn.h>

#include <string>

namespace rw {

struct LazyLibrary {
  void* handle = nullptr;
  std::string why;  ///< why it could not be loaded: names the file and the package
};

/// dlopen's `soname` (RTLD_NOW | RTLD_LOCAL); never closed.
inline LazyLibrary open_lazy_library(const char* soname, const char* package) {
  LazyLibrary r;
  r.handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!r.handle) {
    const char* e = ::dlerror();
    r.why = std::string("cannot load ") + soname + " (install " + package + "): " + (e ? e : "unknown error");
  }
  return r;
}

/// `name` in `l`; null when `l` could not be loaded or has no such symbol.
template <typename F>
F lazy_symbol(const LazyLibrary& l, const char* name) {
  return l.handle ? reinterpret_cast<F>(::dlsym(l.handle, name)) : nullptr;
}

}  // namespace rw

/// Defines `name` with C linkage: calls the library's own (`lib()` returns
/// its LazyLibrary), or returns `fail` when it cannot be had. Thread-safe:
/// the lookup is a function-local static.
#define RW_LAZY_IN(lib, ret, name, params, args, fail)                     \
  extern "C" ret name params {                                             \
    static const auto f = ::rw::lazy_symbol<ret(*) params>(lib(), #name);  \
    return f ? f args : fail;                                              \
  }
#define RW_LAZY_VOID_IN(lib, name, params, args)                           \
  extern "C" void name params {                                            \
    static const auto f = ::rw::lazy_symbol<void(*) params>(lib(), #name); \
    if (f) f args;                                                         \
  }
