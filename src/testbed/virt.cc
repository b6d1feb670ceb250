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

Result<NetworkPtr> Virt::find_network(const std::string& name) const {
  virNetworkPtr n = virNetworkLookupByName(conn_.get(), name.c_str());
  if (n) return NetworkPtr(n);
  auto e = last_virt_error("look up network " + name);
  if (e.code == VIR_ERR_NO_NETWORK) return NetworkPtr();
  return e.error;
}

Result<std::vector<NetworkPtr>> Virt::all_networks() const {
  virNetworkPtr* list = nullptr;
  int n = virConnectListAllNetworks(conn_.get(), &list, 0);
  if (n < 0) return last_virt_error("list the networks of " + uri_).error;
  std::vector<NetworkPtr> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.emplace_back(list[i]);
  std::free(list);
  return out;
}

Result<std::string> network_xml(virNetworkPtr n) {
  char* x = virNetworkGetXMLDesc(n, 0);
  if (!x) return last_virt_error(std::string("describe network ") + virNetworkGetName(n)).error;
  std::string s(x);
  std::free(x);
  return s;
}

}  // namespace rw::testbed
