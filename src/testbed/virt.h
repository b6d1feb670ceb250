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
struct PoolFree {
  void operator()(virStoragePoolPtr p) const { virStoragePoolFree(p); }
};
struct VolFree {
  void operator()(virStorageVolPtr v) const { virStorageVolFree(v); }
};
struct DomainFree {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
struct StreamFree {
  void operator()(virStreamPtr s) const { virStreamFree(s); }
};
using ConnPtr = std::unique_ptr<virConnect, ConnClose>;
using NetworkPtr = std::unique_ptr<virNetwork, NetworkFree>;
using PoolPtr = std::unique_ptr<virStoragePool, PoolFree>;
using VolPtr = std::unique_ptr<virStorageVol, VolFree>;
using DomainPtr = std::unique_ptr<virDomain, DomainFree>;
using StreamPtr = std::unique_ptr<virStream, StreamFree>;

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
  /// The storage pool named `name`, or nullptr when there is none.
  Result<PoolPtr> find_pool(const std::string& name) const;
  Result<std::vector<PoolPtr>> all_pools() const;
  /// The domain named `name`, or nullptr when there is none.
  Result<DomainPtr> find_domain(const std::string& name) const;
  Result<std::vector<DomainPtr>> all_domains() const;

 private:
  Virt(ConnPtr c, std::string uri) : conn_(std::move(c)), uri_(std::move(uri)) {}
  ConnPtr conn_;
  std::string uri_;
};

/// The XML description of a network (its live one while it runs).
Result<std::string> network_xml(virNetworkPtr n);

/// Takes a string libvirt allocated (nullptr on error) and frees it.
Result<std::string> take_string(char* s, const std::string& what);

/// The volume named `name` in `pool`, or nullptr when there is none.
Result<VolPtr> find_volume(virStoragePoolPtr pool, const std::string& name);

}  // namespace rw::testbed
