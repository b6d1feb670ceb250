#pragma once
// Virt: one owner per libvirt handle, and libvirt errors as rw::Error.
//
// libvirt's last error is thread-local: it is read right after the failing
// call, on the same thread, and decisions branch on its code, never on its
// message text.

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace rw::testbed {

struct ConnClose {
  void operator()(virConnectPtr c) const { virConnectClose(c); }
};
struct NetworkFree {
  void operator()(virNetworkPtr n) const { virNetworkFree(n); }
};
using ConnPtr = std::unique_ptr<virConnect, ConnClose>;
using NetworkPtr = std::unique_ptr<virNetwork, NetworkFree>;

/// The last libvirt error of this thread: its code (virErrorNumber, 0 if
/// none) and "what: message".
struct VirtError {
  int code = 0;
  Error error;
};
VirtError last_virt_error(const std::string& what);

/// One connection to a hypervisor host.
class Virt {
 public:
  /// Opens `uri` (e.g. qemu:///system, qemu+unix:///system?socket=...,
  /// test:///default). libvirt's default error printer is silenced: errors
  /// come back as values.
  static Result<Virt> open(const std::string& uri);

  virConnectPtr get() const { return conn_.get(); }
  const std::string& uri() const { return uri_; }

  /// The network named `name`, or nullptr when there is none.
  Result<NetworkPtr> find_network(const std::string& name) const;
  /// Every network this host has, active or not.
  Result<std::vector<NetworkPtr>> all_networks() const;

 private:
  Virt(ConnPtr c, std::string uri) : conn_(std::move(c)), uri_(std::move(uri)) {}
  ConnPtr conn_;
  std::string uri_;
};

/// The XML description of a network (its live one while it runs).
Result<std::string> network_xml(virNetworkPtr n);

}  // namespace rw::testbed
