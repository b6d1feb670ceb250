#include "testbed/virt.h"

#include <cstdlib>
#include <mutex>

namespace rw::testbed {
namespace {

void ignore_error(void*, virErrorPtr) {}

}  // namespace

VirtError last_virt_error(const std::string& what) {
  VirtError v;
  virErrorPtr e = virGetLastError();
  if (!e) {
    v.error = err(what + ": unknown libvirt error");
    return v;
  }
  v.code = e->code;
  v.error = err(what + ": " + (e->message ? e->message : "libvirt error " + std::to_string(e->code)));
  return v;
}

Result<Virt> Virt::open(const std::string& uri) {
  static std::once_flag quiet;
  std::call_once(quiet, [] { virSetErrorFunc(nullptr, ignore_error); });
  virConnectPtr c = virConnectOpen(uri.c_str());
  if (!c) return last_virt_error("connect to libvirt at " + uri).error;
  return Virt(ConnPtr(c), uri);
}

namespace {

/// A lookup by name: the object, nullptr when libvirt says `missing_code`.
template <class Ptr, class Raw>
Result<Ptr> lookup(Raw raw, int missing_code, const std::string& what) {
  if (raw) return Ptr(raw);
  auto e = last_virt_error("look up " + what);
  if (e.code == missing_code) return Ptr();
  return e.error;
}

/// A virConnectListAll* result as owned pointers.
template <class Ptr, class Raw>
Result<std::vector<Ptr>> take_list(int n, Raw* list, const std::string& what) {
  if (n < 0) return last_virt_error("list " + what).error;
  std::vector<Ptr> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.emplace_back(list[i]);
  std::free(list);
  return out;
}

}  // namespace

Result<NetworkPtr> Virt::find_network(const std::string& name) const {
  return lookup<NetworkPtr>(virNetworkLookupByName(conn_.get(), name.c_str()), VIR_ERR_NO_NETWORK,
                            "network " + name);
}

Result<std::vector<NetworkPtr>> Virt::all_networks() const {
  virNetworkPtr* list = nullptr;
  int n = virConnectListAllNetworks(conn_.get(), &list, 0);
  return take_list<NetworkPtr>(n, list, "the networks of " + uri_);
}

Result<PoolPtr> Virt::find_pool(const std::string& name) const {
  return lookup<PoolPtr>(virStoragePoolLookupByName(conn_.get(), name.c_str()), VIR_ERR_NO_STORAGE_POOL,
                         "storage pool " + name);
}

Result<std::vector<PoolPtr>> Virt::all_pools() const {
  virStoragePoolPtr* list = nullptr;
  int n = virConnectListAllStoragePools(conn_.get(), &list, 0);
  return take_list<PoolPtr>(n, list, "the storage pools of " + uri_);
}

Result<DomainPtr> Virt::find_domain(const std::string& name) const {
  return lookup<DomainPtr>(virDomainLookupByName(conn_.get(), name.c_str()), VIR_ERR_NO_DOMAIN, "guest " + name);
}

Result<std::vector<DomainPtr>> Virt::all_domains() const {
  virDomainPtr* list = nullptr;
  int n = virConnectListAllDomains(conn_.get(), &list, 0);
  return take_list<DomainPtr>(n, list, "the guests of " + uri_);
}

Result<VolPtr> find_volume(virStoragePoolPtr pool, const std::string& name) {
  return lookup<VolPtr>(virStorageVolLookupByName(pool, name.c_str()), VIR_ERR_NO_STORAGE_VOL, "volume " + name);
}

Result<std::string> take_string(char* s, const std::string& what) {
  if (!s) return last_virt_error(what).error;
  std::string out(s);
  std::free(s);
  return out;
}

Result<std::string> network_xml(virNetworkPtr n) {
  return take_string(virNetworkGetXMLDesc(n, 0), std::string("describe network ") + virNetworkGetName(n));
}

}  // namespace rw::testbed
