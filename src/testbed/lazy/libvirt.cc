// libvirt for the runwarden executable, loaded on the first call.
//
// runwarden is the runner of every run and the CLI, and only testbed runs
// and the testbed commands talk to libvirt. Linked, libvirt and what it
// brings (GLib, libxml2, GnuTLS, ICU, Kerberos, LDAP, ...: 45 libraries)
// are loaded and relocated at every start: about two thirds of the time a
// runner takes to start, on the path of every start-run and of every
// `runwarden status`. So runwarden is linked with this file instead of
// libvirt: each libvirt function the core calls is defined here and forwards
// to libvirt.so.0, dlopen'ed on the first call and kept (libvirt keeps
// threads and state that must not be unloaded).
//
// The definitions are checked against libvirt's own declarations (the
// headers are included: a signature that differs does not compile). A
// function used for the first time by the core needs its line here, or
// runwarden does not link. If libvirt cannot be loaded, each function fails
// as libvirt does (-1 or null) and virGetLastError() says why.
// Thread-safe: the library is loaded once, each symbol looked up once.

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "common/lazy_library.h"

namespace {

const rw::LazyLibrary& libvirt() {
  static const rw::LazyLibrary l = rw::open_lazy_library("libvirt.so.0", "libvirt0");
  return l;
}

template <typename F>
F sym(const char* name) {
  return rw::lazy_symbol<F>(libvirt(), name);
}

}  // namespace

#define RW_LAZY(ret, name, params, args, fail) RW_LAZY_IN(libvirt, ret, name, params, args, fail)
#define RW_LAZY_VOID(name, params, args) RW_LAZY_VOID_IN(libvirt, name, params, args)

// Errors: libvirt's own once it is loaded; otherwise why it is not.
extern "C" virErrorPtr virGetLastError(void) {
  static const auto f = sym<virErrorPtr (*)(void)>("virGetLastError");
  if (f) return f();
  thread_local virError e{};
  e.code = VIR_ERR_NO_SUPPORT;
  e.domain = VIR_FROM_NONE;
  e.level = VIR_ERR_ERROR;
  e.message = const_cast<char*>(libvirt().why.c_str());
  return &e;
}
extern "C" int virGetLastErrorCode(void) {
  static const auto f = sym<int (*)(void)>("virGetLastErrorCode");
  return f ? f() : VIR_ERR_NO_SUPPORT;
}

RW_LAZY(int, virConnectClose, (virConnectPtr conn), (conn), -1)
RW_LAZY(char *, virConnectGetDomainCapabilities, (virConnectPtr conn, const char *emulatorbin, const char *arch, const char *machine, const char *virttype, unsigned int flags), (conn, emulatorbin, arch, machine, virttype, flags), nullptr)
RW_LAZY(const char *, virConnectGetType, (virConnectPtr conn), (conn), nullptr)
RW_LAZY(int, virConnectListAllDomains, (virConnectPtr conn, virDomainPtr **domains, unsigned int flags), (conn, domains, flags), -1)
RW_LAZY(int, virConnectListAllNetworks, (virConnectPtr conn, virNetworkPtr **nets, unsigned int flags), (conn, nets, flags), -1)
RW_LAZY(int, virConnectListAllStoragePools, (virConnectPtr conn, virStoragePoolPtr **pools, unsigned int flags), (conn, pools, flags), -1)
RW_LAZY(virConnectPtr, virConnectOpen, (const char *name), (name), nullptr)
RW_LAZY(int, virDomainCreate, (virDomainPtr domain), (domain), -1)
RW_LAZY(virDomainPtr, virDomainCreateXML, (virConnectPtr conn, const char *xmlDesc, unsigned int flags), (conn, xmlDesc, flags), nullptr)
RW_LAZY(virDomainPtr, virDomainDefineXML, (virConnectPtr conn, const char *xml), (conn, xml), nullptr)
RW_LAZY(int, virDomainDestroy, (virDomainPtr domain), (domain), -1)
RW_LAZY(int, virDomainFree, (virDomainPtr domain), (domain), -1)
RW_LAZY(const char *, virDomainGetName, (virDomainPtr domain), (domain), nullptr)
RW_LAZY(int, virDomainGetState, (virDomainPtr domain, int *state, int *reason, unsigned int flags), (domain, state, reason, flags), -1)
RW_LAZY(char *, virDomainGetXMLDesc, (virDomainPtr domain, unsigned int flags), (domain, flags), nullptr)
RW_LAZY(int, virDomainInterfaceAddresses, (virDomainPtr dom, virDomainInterfacePtr **ifaces, unsigned int source, unsigned int flags), (dom, ifaces, source, flags), -1)
RW_LAZY_VOID(virDomainInterfaceFree, (virDomainInterfacePtr iface), (iface))
RW_LAZY(int, virDomainIsActive, (virDomainPtr dom), (dom), -1)
RW_LAZY(int, virDomainIsPersistent, (virDomainPtr dom), (dom), -1)
RW_LAZY(int, virDomainListAllSnapshots, (virDomainPtr domain, virDomainSnapshotPtr **snaps, unsigned int flags), (domain, snaps, flags), -1)
RW_LAZY(virDomainPtr, virDomainLookupByName, (virConnectPtr conn, const char *name), (conn, name), nullptr)
RW_LAZY(int, virDomainResume, (virDomainPtr domain), (domain), -1)
RW_LAZY(int, virDomainRevertToSnapshot, (virDomainSnapshotPtr snapshot, unsigned int flags), (snapshot, flags), -1)
RW_LAZY(int, virDomainShutdown, (virDomainPtr domain), (domain), -1)
RW_LAZY(virDomainSnapshotPtr, virDomainSnapshotCreateXML, (virDomainPtr domain, const char *xmlDesc, unsigned int flags), (domain, xmlDesc, flags), nullptr)
RW_LAZY(int, virDomainSnapshotDelete, (virDomainSnapshotPtr snapshot, unsigned int flags), (snapshot, flags), -1)
RW_LAZY(int, virDomainSnapshotFree, (virDomainSnapshotPtr snapshot), (snapshot), -1)
RW_LAZY(const char *, virDomainSnapshotGetName, (virDomainSnapshotPtr snapshot), (snapshot), nullptr)
RW_LAZY(char *, virDomainSnapshotGetXMLDesc, (virDomainSnapshotPtr snapshot, unsigned int flags), (snapshot, flags), nullptr)
RW_LAZY(virDomainSnapshotPtr, virDomainSnapshotLookupByName, (virDomainPtr domain, const char *name, unsigned int flags), (domain, name, flags), nullptr)
RW_LAZY(int, virDomainSuspend, (virDomainPtr domain), (domain), -1)
RW_LAZY(int, virDomainUndefineFlags, (virDomainPtr domain, unsigned int flags), (domain, flags), -1)
RW_LAZY(int, virNetworkCreate, (virNetworkPtr network), (network), -1)
RW_LAZY_VOID(virNetworkDHCPLeaseFree, (virNetworkDHCPLeasePtr lease), (lease))
RW_LAZY(virNetworkPtr, virNetworkDefineXML, (virConnectPtr conn, const char *xmlDesc), (conn, xmlDesc), nullptr)
RW_LAZY(int, virNetworkDestroy, (virNetworkPtr network), (network), -1)
RW_LAZY(int, virNetworkFree, (virNetworkPtr network), (network), -1)
RW_LAZY(int, virNetworkGetDHCPLeases, (virNetworkPtr network, const char *mac, virNetworkDHCPLeasePtr **leases, unsigned int flags), (network, mac, leases, flags), -1)
RW_LAZY(const char*, virNetworkGetName, (virNetworkPtr network), (network), nullptr)
RW_LAZY(char *, virNetworkGetXMLDesc, (virNetworkPtr network, unsigned int flags), (network, flags), nullptr)
RW_LAZY(int, virNetworkIsActive, (virNetworkPtr net), (net), -1)
RW_LAZY(int, virNetworkIsPersistent, (virNetworkPtr net), (net), -1)
RW_LAZY(virNetworkPtr, virNetworkLookupByName, (virConnectPtr conn, const char *name), (conn, name), nullptr)
RW_LAZY(int, virNetworkUndefine, (virNetworkPtr network), (network), -1)
RW_LAZY_VOID(virSetErrorFunc, (void *userData, virErrorFunc handler), (userData, handler))
RW_LAZY(int, virStoragePoolBuild, (virStoragePoolPtr pool, unsigned int flags), (pool, flags), -1)
RW_LAZY(int, virStoragePoolCreate, (virStoragePoolPtr pool, unsigned int flags), (pool, flags), -1)
RW_LAZY(virStoragePoolPtr, virStoragePoolDefineXML, (virConnectPtr conn, const char *xmlDesc, unsigned int flags), (conn, xmlDesc, flags), nullptr)
RW_LAZY(int, virStoragePoolDelete, (virStoragePoolPtr pool, unsigned int flags), (pool, flags), -1)
RW_LAZY(int, virStoragePoolDestroy, (virStoragePoolPtr pool), (pool), -1)
RW_LAZY(int, virStoragePoolFree, (virStoragePoolPtr pool), (pool), -1)
RW_LAZY(const char*, virStoragePoolGetName, (virStoragePoolPtr pool), (pool), nullptr)
RW_LAZY(char *, virStoragePoolGetXMLDesc, (virStoragePoolPtr pool, unsigned int flags), (pool, flags), nullptr)
RW_LAZY(int, virStoragePoolIsActive, (virStoragePoolPtr pool), (pool), -1)
RW_LAZY(int, virStoragePoolListAllVolumes, (virStoragePoolPtr pool, virStorageVolPtr **vols, unsigned int flags), (pool, vols, flags), -1)
RW_LAZY(virStoragePoolPtr, virStoragePoolLookupByName, (virConnectPtr conn, const char *name), (conn, name), nullptr)
RW_LAZY(int, virStoragePoolRefresh, (virStoragePoolPtr pool, unsigned int flags), (pool, flags), -1)
RW_LAZY(int, virStoragePoolUndefine, (virStoragePoolPtr pool), (pool), -1)
RW_LAZY(virStorageVolPtr, virStorageVolCreateXML, (virStoragePoolPtr pool, const char *xmldesc, unsigned int flags), (pool, xmldesc, flags), nullptr)
RW_LAZY(int, virStorageVolDelete, (virStorageVolPtr vol, unsigned int flags), (vol, flags), -1)
RW_LAZY(int, virStorageVolDownload, (virStorageVolPtr vol, virStreamPtr stream, unsigned long long offset, unsigned long long length, unsigned int flags), (vol, stream, offset, length, flags), -1)
RW_LAZY(int, virStorageVolFree, (virStorageVolPtr vol), (vol), -1)
RW_LAZY(int, virStorageVolGetInfo, (virStorageVolPtr vol, virStorageVolInfoPtr info), (vol, info), -1)
RW_LAZY(int, virStorageVolGetInfoFlags, (virStorageVolPtr vol, virStorageVolInfoPtr info, unsigned int flags), (vol, info, flags), -1)
RW_LAZY(const char*, virStorageVolGetName, (virStorageVolPtr vol), (vol), nullptr)
RW_LAZY(char *, virStorageVolGetPath, (virStorageVolPtr vol), (vol), nullptr)
RW_LAZY(char *, virStorageVolGetXMLDesc, (virStorageVolPtr pool, unsigned int flags), (pool, flags), nullptr)
RW_LAZY(virStorageVolPtr, virStorageVolLookupByName, (virStoragePoolPtr pool, const char *name), (pool, name), nullptr)
RW_LAZY(virStorageVolPtr, virStorageVolLookupByPath, (virConnectPtr conn, const char *path), (conn, path), nullptr)
RW_LAZY(int, virStorageVolUpload, (virStorageVolPtr vol, virStreamPtr stream, unsigned long long offset, unsigned long long length, unsigned int flags), (vol, stream, offset, length, flags), -1)
RW_LAZY(int, virStreamAbort, (virStreamPtr st), (st), -1)
RW_LAZY(int, virStreamFinish, (virStreamPtr st), (st), -1)
RW_LAZY(int, virStreamFree, (virStreamPtr st), (st), -1)
RW_LAZY(virStreamPtr, virStreamNew, (virConnectPtr conn, unsigned int flags), (conn, flags), nullptr)
RW_LAZY(int, virStreamRecv, (virStreamPtr st, char *data, size_t nbytes), (st, data, nbytes), -1)
RW_LAZY(int, virStreamSend, (virStreamPtr st, const char *data, size_t nbytes), (st, data, nbytes), -1)
