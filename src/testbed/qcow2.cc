#include "testbed/qcow2.h"

namespace rw::testbed {
namespace {

void put_be(std::string& out, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[at + size_t(i)] = static_cast<char>((v >> (8 * (bytes - 1 - i))) & 0xff);
}

}  // namespace

Result<std::string> qcow2_overlay(uint64_t size, const std::string& backing, const std::string& backing_format) {
  constexpr uint64_t kCluster = kQcow2ClusterSize;
  constexpr uint64_t kRefcountTable = 1 * kCluster, kRefcountBlock = 2 * kCluster, kL1 = 3 * kCluster;
  constexpr uint32_t kHeaderLength = 104;           // version 3's fixed part
  constexpr uint32_t kBackingFormatExt = 0xE2792ACA;  // header extension: backing file format name
  // One L2 table maps cluster_size / 8 clusters.
  const uint64_t l2_span = kCluster * (kCluster / 8);
  const uint64_t l1_size = (size + l2_span - 1) / l2_span;
  if (backing.size() > 1023)
    return err("backing file name of " + std::to_string(backing.size()) + " bytes: qemu takes 1 to 1023");
  if (backing.empty() != backing_format.empty()) return err("a backing file needs its format, and a format its file");
  if (l1_size * 8 > kCluster) return err("a disk of " + std::to_string(size) + " bytes is over 4 TiB");
  std::string img(4 * kCluster, '\0');
  put_be(img, 0, 0x514649fb, 4);  // "QFI\xfb"
  put_be(img, 4, 3, 4);           // version
  put_be(img, 20, 16, 4);         // cluster_bits
  put_be(img, 24, size, 8);
  put_be(img, 32, 0, 4);          // no encryption
  put_be(img, 36, l1_size, 4);
  put_be(img, 40, kL1, 8);
  put_be(img, 48, kRefcountTable, 8);
  put_be(img, 56, 1, 4);          // refcount table clusters
  put_be(img, 96, 4, 4);          // refcount_order: 16-bit refcounts
  put_be(img, 100, kHeaderLength, 4);
  // Extensions: the backing format, then the end mark; then the backing
  // file's name (not NUL-terminated), all in cluster 0.
  // file's name (not NUL-terminated), all in cluster 0. A blank image (no
  // backing): the end mark alone.
  size_t at = kHeaderLength;
  if (!backing.empty()) {
    put_be(img, at, kBackingFormatExt, 4);
    put_be(img, at + 4, backing_format.size(), 4);
    img.replace(at + 8, backing_format.size(), backing_format);
    at += 8 + ((backing_format.size() + 7) / 8) * 8;
  }
  at += 8;  // type 0, length 0: the end of the extensions
  if (!backing.empty()) {
    put_be(img, 8, at, 8);  // backing_file_offset
    put_be(img, 16, backing.size(), 4);
    img.replace(at, backing.size(), backing);
  }
  // The refcount table points at the one refcount block, which counts the
  // four clusters in use once each; the L1 table is empty (all clusters
  // come from the backing file).
  put_be(img, kRefcountTable, kRefcountBlock, 8);
  for (uint64_t c = 0; c < 4; ++c) put_be(img, kRefcountBlock + 2 * c, 1, 2);
  return img;
}

}  // namespace rw::testbed
