#pragma once
// Shared by the testbed unit tests: libvirt's own test driver as the host.

#include <gtest/gtest.h>

#include "testbed/spec.h"
#include "testbed/virt.h"

namespace rw::testbed {

/// A connection to test:///default (in-memory domains, networks, pools).
inline Virt test_host() {
  auto v = Virt::open("test:///default");
  EXPECT_TRUE(v.ok()) << v.error().message;
  return std::move(v).value();
}

/// A testbed on the test driver: base image "base", network "lab" on
/// `net`.0/24, and `guests` TCG guests web-1..N with addresses reserved
/// from .10, 64 MiB clones, one SSH key.
inline Testbed lab_testbed(const std::string& id, int guests, const std::string& net) {
  Testbed tb;
  tb.id = id;
  tb.uri = "test:///default";
  tb.images.push_back({"base", "/srv/base.qcow2", "qcow2"});
  NetworkSpec n;
  n.name = "lab";
  n.subnet = *parse_subnet(net + ".0/24");
  tb.networks.push_back(n);
  GuestGroup g;
  g.name = "web";
  for (int i = 1; i <= guests; ++i) {
    g.instances.push_back("web-" + std::to_string(i));
    g.addresses[g.instances.back()] = {net + "." + std::to_string(9 + i)};
  }
  g.image = "base";
  g.disk_bytes = 64 << 20;
  g.accel = Accel::Tcg;
  g.networks = {"lab"};
  g.ssh_keys.push_back("ssh-ed25519 AAAA test");
  tb.guests.push_back(g);
  tb.up_timeout = Millis(2'000);
  return tb;
}

}  // namespace rw::testbed
