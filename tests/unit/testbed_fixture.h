#pragma once
// Shared by the testbed unit tests: libvirt's own test driver as the host.

#include <gtest/gtest.h>

#include "testbed/virt.h"

namespace rw::testbed {

/// A connection to test:///default (in-memory domains, networks, pools).
inline Virt test_host() {
  auto v = Virt::open("test:///default");
  EXPECT_TRUE(v.ok()) << v.error().message;
  return std::move(v).value();
}

}  // namespace rw::testbed
