#include "testbed/volume.h"

#include "testbed/qcow2.h"

#include <algorithm>
#include <string_view>

#include "testbed/names.h"

namespace rw::testbed {
namespace {

constexpr const char* kPoolPrefix = "rw-";

Result<std::string> pool_xml(virStoragePoolPtr p) {
  return take_string(virStoragePoolGetXMLDesc(p, 0), std::string("describe storage pool ") + virStoragePoolGetName(p));
}

/// The <target><path> of a pool's XML.
std::string target_path(const std::string& xml) {
  auto t = xml.find("<target>");
  if (t == std::string::npos) return "";
  auto a = xml.find("<path>", t), b = xml.find("</path>", t);
  if (a == std::string::npos || b == std::string::npos || b < a) return "";
  return xml.substr(a + 6, b - a - 6);
}

Status refresh(virStoragePoolPtr pool) {
  if (virStoragePoolRefresh(pool, 0) < 0)
    return last_virt_error(std::string("refresh storage pool ") + virStoragePoolGetName(pool)).error;
  return {};
}

}  // namespace

std::string pool_name(const std::string& testbed) { return kPoolPrefix + testbed; }

Result<PoolPtr> ensure_pool(const Virt& host, const std::string& testbed, const std::string& images_dir) {
  const std::string name = pool_name(testbed);
  const std::string dir = images_dir + "/" + name;
  RW_ASSIGN(PoolPtr pool, host.find_pool(name));
  if (pool) {
    RW_ASSIGN(std::string xml, pool_xml(pool.get()));
    if (target_path(xml) != dir)
      return err("storage pool " + name + " on " + host.uri() + " exists at " + target_path(xml) + ", not " + dir +
                 ": remove it or use that images directory");
  } else {
    const std::string xml = "<pool type='dir'><name>" + xml_escape(name) + "</name><target><path>" +
                            xml_escape(dir) + "</path><permissions><mode>0711</mode></permissions></target></pool>";
    virStoragePoolPtr made = virStoragePoolDefineXML(host.get(), xml.c_str(), 0);
    if (!made) return last_virt_error("define storage pool " + name + " on " + host.uri()).error;
    pool.reset(made);
    if (virStoragePoolBuild(pool.get(), 0) < 0) {
      auto e = last_virt_error("create the directory " + dir + " of storage pool " + name);
      (void)virStoragePoolUndefine(pool.get());
      return e.error;
    }
  }
  if (virStoragePoolIsActive(pool.get()) != 1 && virStoragePoolCreate(pool.get(), 0) < 0)
    return last_virt_error("start storage pool " + name + " on " + host.uri()).error;
  return pool;
}

std::string overlay_definition(const std::string& name, uint64_t capacity, const std::string& backing,
                               const std::string& backing_format) {
  std::string x = "<volume><name>" + xml_escape(name) + "</name><capacity unit='bytes'>" + std::to_string(capacity) +
                  "</capacity><target><format type='qcow2'/></target>";
  if (!backing.empty())
    x += "<backingStore><path>" + xml_escape(backing) + "</path><format type='" + xml_escape(backing_format) +
         "'/></backingStore>";
  return x + "</volume>";
}

Result<std::string> volume_path(virStorageVolPtr vol) {
  return take_string(virStorageVolGetPath(vol), std::string("read the path of volume ") + virStorageVolGetName(vol));
}

namespace {

/// The volume XML of a raw volume of `size` bytes.
std::string raw_definition(const std::string& name, uint64_t size) {
  return "<volume><name>" + xml_escape(name) + "</name><capacity unit='bytes'>" + std::to_string(size) +
         "</capacity><target><format type='raw'/></target></volume>";
}

/// Whether we write clones' qcow2 headers ourselves: on qemu hosts (local or
/// remote). libvirt's test driver neither takes uploads nor reads formats
/// back from files, so there libvirt makes the qcow2 volume.
bool write_own_overlays(const Virt& host) {
  const char* type = virConnectGetType(host.get());
  return type && std::string(type) == "QEMU";
}

/// An overlay volume that exists: complete when libvirt reads it as qcow2
/// with a backing store (it probes the file); a volume made but never
/// written (the runner died between the two) reads as raw.
Result<bool> overlay_complete(virStorageVolPtr vol, bool backed) {
  char* xml = virStorageVolGetXMLDesc(vol, 0);
  if (!xml) return last_virt_error(std::string("read volume ") + virStorageVolGetName(vol)).error;
  std::string x(xml);
  std::free(xml);
  return x.find("<format type='qcow2'/>") != std::string::npos &&
         (!backed || x.find("<backingStore>") != std::string::npos);
}

}  // namespace

Result<EnsuredVolume> ensure_overlay(const Virt& host, virStoragePoolPtr pool, const std::string& name,
                                     const std::string& backing, const std::string& backing_format,
                                     uint64_t capacity, const UploadFn& write) {
  if (!backing.empty() && backing_format != "qcow2" && backing_format != "raw")
    return err("image " + backing + ": format '" + backing_format + "' is not qcow2 or raw");
  if (backing.empty() && capacity == 0) return err("volume " + name + ": a blank disk needs a size");
  const bool own = write_own_overlays(host);
  EnsuredVolume out;
  RW_ASSIGN(out.vol, find_volume(pool, name));
  if (out.vol && own) {
    RW_ASSIGN(bool complete, overlay_complete(out.vol.get(), !backing.empty()));
    if (!complete) {
      RW_TRY(remove_volume(pool, name));
      out.vol.reset();
    }
  }
  if (!out.vol) {
    if (capacity == 0) {
      virStorageVolPtr base = virStorageVolLookupByPath(host.get(), backing.c_str());
      if (!base)
        return err("image " + backing + " on " + host.uri() +
                   " is not in a storage pool libvirt knows: give the guest's disk size");
      VolPtr owned(base);
      virStorageVolInfo info{};
      if (virStorageVolGetInfo(base, &info) < 0) return last_virt_error("read the size of " + backing).error;
      capacity = info.capacity;
    }
    // On qemu hosts a small raw volume holding the qcow2 header we write:
    // no qemu-img run by libvirtd per clone.
    std::string header;
    if (own) {
      RW_ASSIGN(header, qcow2_overlay(capacity, backing, backing_format));
    }
    const std::string xml =
        own ? raw_definition(name, header.size()) : overlay_definition(name, capacity, backing, backing_format);
    virStorageVolPtr made = virStorageVolCreateXML(pool, xml.c_str(), 0);
    if (!made)
      return last_virt_error("create volume " + name + (backing.empty() ? "" : " over " + backing) + " on " + host.uri())
          .error;
    out.vol.reset(made);
    out.created = true;
    if (own) {
      if (auto w = write(host, out.vol.get(), header); !w) {
        (void)remove_volume(pool, name);
        return w.error();
      }
    }
  }
  RW_ASSIGN(out.path, volume_path(out.vol.get()));
  return out;
}

Status upload(const Virt& host, virStorageVolPtr vol, const std::string& bytes) {
  const std::string name = virStorageVolGetName(vol);
  StreamPtr st(virStreamNew(host.get(), 0));
  if (!st) return last_virt_error("open a stream to " + host.uri()).error;
  if (virStorageVolUpload(vol, st.get(), 0, bytes.size(), 0) < 0)
    return last_virt_error("upload volume " + name + " to " + host.uri()).error;
  for (size_t sent = 0; sent < bytes.size();) {
    int n = virStreamSend(st.get(), bytes.data() + sent, std::min<size_t>(bytes.size() - sent, 256 * 1024));
    if (n < 0) {
      auto e = last_virt_error("upload volume " + name + " to " + host.uri());
      (void)virStreamAbort(st.get());
      return e.error;
    }
    sent += size_t(n);
  }
  if (virStreamFinish(st.get()) < 0) return last_virt_error("finish uploading volume " + name).error;
  return {};
}

Status copy_volume(const Virt& from, virStorageVolPtr src, const Virt& to, virStoragePoolPtr pool,
                   const std::string& name) {
  const std::string what = std::string("copy volume ") + virStorageVolGetName(src) + " from " + from.uri() + " to " +
                           to.uri();
  virStorageVolInfo info{};
  if (virStorageVolGetInfoFlags(src, &info, VIR_STORAGE_VOL_GET_PHYSICAL) < 0) return last_virt_error(what).error;
  const uint64_t size = info.allocation;  // the file's length, with this flag
  RW_TRY(remove_volume(pool, name));
  const std::string xml = raw_definition(name, size);
  VolPtr dst(virStorageVolCreateXML(pool, xml.c_str(), 0));
  if (!dst) return last_virt_error(what + ": create " + name).error;
  StreamPtr in(virStreamNew(from.get(), 0)), out(virStreamNew(to.get(), 0));
  if (!in || !out) return last_virt_error(what + ": open streams").error;
  auto failed = [&](const std::string& step) {
    auto e = last_virt_error(what + ": " + step);
    (void)virStreamAbort(in.get());
    (void)virStreamAbort(out.get());
    (void)remove_volume(pool, name);
    return e.error;
  };
  if (virStorageVolDownload(src, in.get(), 0, size, 0) < 0) return failed("download");
  if (virStorageVolUpload(dst.get(), out.get(), 0, size, 0) < 0) return failed("upload");
  std::vector<char> buf(1 << 20);
  uint64_t copied = 0;
  for (;;) {
    int n = virStreamRecv(in.get(), buf.data(), buf.size());
    if (n < 0) return failed("read");
    if (n == 0) break;
    for (int sent = 0; sent < n;) {
      int k = virStreamSend(out.get(), buf.data() + sent, size_t(n - sent));
      if (k < 0) return failed("write");
      sent += k;
    }
    copied += uint64_t(n);
  }
  if (copied != size) return failed("got " + std::to_string(copied) + " of " + std::to_string(size) + " bytes");
  if (virStreamFinish(in.get()) < 0 || virStreamFinish(out.get()) < 0) return failed("finish");
  return {};
}

Result<EnsuredVolume> ensure_uploaded(const Virt& host, virStoragePoolPtr pool, const std::string& name,
                                      const std::string& bytes, const UploadFn& write) {
  EnsuredVolume out;
  RW_ASSIGN(out.vol, find_volume(pool, name));
  if (!out.vol) {
    const std::string xml = raw_definition(name, bytes.size());
    virStorageVolPtr made = virStorageVolCreateXML(pool, xml.c_str(), 0);
    if (!made) return last_virt_error("create volume " + name + " on " + host.uri()).error;
    out.vol.reset(made);
    out.created = true;
  }
  // Written every time: the same bytes again after a resume, which is
  // cheaper than reading them back to compare.
  RW_TRY(write(host, out.vol.get(), bytes));
  RW_ASSIGN(out.path, volume_path(out.vol.get()));
  return out;
}

Result<bool> remove_pool(const Virt& host, const std::string& testbed) {
  const std::string name = pool_name(testbed);
  RW_ASSIGN(PoolPtr pool, host.find_pool(name));
  if (!pool) return false;
  if (virStoragePoolIsActive(pool.get()) != 1 && virStoragePoolCreate(pool.get(), 0) < 0)
    return last_virt_error("start storage pool " + name + " to empty it").error;
  RW_TRY(refresh(pool.get()));
  virStorageVolPtr* vols = nullptr;
  int n = virStoragePoolListAllVolumes(pool.get(), &vols, 0);
  if (n < 0) return last_virt_error("list the volumes of storage pool " + name).error;
  std::vector<VolPtr> owned;
  for (int i = 0; i < n; ++i) owned.emplace_back(vols[i]);
  std::free(vols);
  // Clones before the goldens they are overlays of.
  std::stable_partition(owned.begin(), owned.end(), [](const VolPtr& v) {
    return std::string_view(virStorageVolGetName(v.get())).rfind(kGoldenPrefix, 0) != 0;
  });
  for (const auto& v : owned)
    if (virStorageVolDelete(v.get(), 0) < 0)
      return last_virt_error(std::string("delete volume ") + virStorageVolGetName(v.get()) + " of " + name).error;
  if (virStoragePoolDestroy(pool.get()) < 0) return last_virt_error("stop storage pool " + name).error;
  if (virStoragePoolDelete(pool.get(), 0) < 0)
    return last_virt_error("delete the directory of storage pool " + name).error;
  if (virStoragePoolUndefine(pool.get()) < 0) return last_virt_error("undefine storage pool " + name).error;
  return true;
}

Result<bool> remove_volume(virStoragePoolPtr pool, const std::string& name) {
  RW_ASSIGN(VolPtr vol, find_volume(pool, name));
  if (!vol) return false;
  if (virStorageVolDelete(vol.get(), 0) < 0)
    return last_virt_error("delete volume " + name + " of " + virStoragePoolGetName(pool)).error;
  return true;
}

Result<std::vector<std::string>> testbeds_with_pools(const Virt& host) {
  RW_ASSIGN(std::vector<PoolPtr> all, host.all_pools());
  std::vector<std::string> out;
  const std::string prefix = kPoolPrefix;
  for (const auto& p : all) {
    std::string n = virStoragePoolGetName(p.get());
    if (n.size() > prefix.size() && n.compare(0, prefix.size(), prefix) == 0) out.push_back(n.substr(prefix.size()));
  }
  return out;
}

}  // namespace rw::testbed
