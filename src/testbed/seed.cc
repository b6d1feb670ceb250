#include "testbed/seed.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rw::testbed {
namespace {

constexpr int kSector = 512;
constexpr int kSectorsPerCluster = 4;
constexpr int kCluster = kSector * kSectorsPerCluster;
constexpr int kRootEntries = 224;  // 14 sectors of 32-byte entries
constexpr int kRootSectors = kRootEntries * 32 / kSector;
constexpr int kMaxClusters = 4084;  // FAT12
constexpr size_t kMaxTotal = 4u << 20;

void put16(std::string& b, size_t at, uint16_t v) {
  b[at] = char(v & 0xff);
  b[at + 1] = char(v >> 8);
}
void put32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = char((v >> (8 * i)) & 0xff);
}

void set_fat12(std::string& fat, uint32_t cluster, uint16_t value) {
  size_t at = cluster + cluster / 2;
  if (cluster & 1) {
    fat[at] = char((uint8_t(fat[at]) & 0x0f) | ((value << 4) & 0xf0));
    fat[at + 1] = char((value >> 4) & 0xff);
  } else {
    fat[at] = char(value & 0xff);
    fat[at + 1] = char((uint8_t(fat[at + 1]) & 0xf0) | ((value >> 8) & 0x0f));
  }
}

bool valid_file_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || n == "." || n == "..") return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

/// The 8.3 name stored beside the long one: "NAME~N" + up to 3 of the
/// extension, upper case (the long name is what readers show).
std::string short_name(const std::string& name, int n) {
  std::string base = name, ext;
  if (auto dot = name.rfind('.'); dot != std::string::npos && dot > 0) {
    base = name.substr(0, dot);
    ext = name.substr(dot + 1);
  }
  auto clean = [](std::string s, size_t len) {
    std::string out;
    for (char c : s)
      if (std::isalnum(static_cast<unsigned char>(c))) out += char(std::toupper(static_cast<unsigned char>(c)));
    return out.substr(0, len);
  };
  std::string tail = "~" + std::to_string(n);
  std::string b = clean(base, 8 - tail.size()) + tail;
  std::string e = clean(ext, 3);
  b.resize(8, ' ');
  e.resize(3, ' ');
  return b + e;
}

uint8_t lfn_checksum(const std::string& short11) {
  uint8_t sum = 0;
  for (char c : short11) sum = uint8_t(((sum & 1) << 7) + (sum >> 1) + uint8_t(c));
  return sum;
}

/// Directory entries (32 bytes each) for a long name: LFN entries, last
/// part first, then the 8.3 entry.
std::string dir_entries(const std::string& name, const std::string& short11, uint16_t cluster, uint32_t size) {
  std::string out;
  const uint8_t sum = lfn_checksum(short11);
  const size_t parts = (name.size() + 13) / 13;  // room for the terminating NUL when it fits
  std::vector<std::string> lfn;
  for (size_t p = 0; p < parts; ++p) {
    std::string e(32, '\0');
    e[0] = char((p + 1) | (p + 1 == parts ? 0x40 : 0));
    e[11] = 0x0f;
    e[13] = char(sum);
    static const int kOffsets[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
    for (int i = 0; i < 13; ++i) {
      size_t at = p * 13 + i;
      uint16_t ch = at < name.size() ? uint16_t(uint8_t(name[at])) : at == name.size() ? 0x0000 : 0xffff;
      put16(e, kOffsets[i], ch);
    }
    lfn.push_back(e);
  }
  for (auto it = lfn.rbegin(); it != lfn.rend(); ++it) out += *it;
  std::string e(32, '\0');
  std::memcpy(e.data(), short11.data(), 11);
  e[11] = 0x20;  // archive
  const uint16_t date = uint16_t(((2020 - 1980) << 9) | (1 << 5) | 1);
  put16(e, 16, date);  // created
  put16(e, 18, date);  // accessed
  put16(e, 24, date);  // modified
  put16(e, 26, size ? cluster : 0);
  put32(e, 28, size);
  out += e;
  return out;
}

}  // namespace

Result<std::string> fat_seed_image(const std::map<std::string, std::string>& files) {
  if (files.size() > 16) return err("a seed disk holds at most 16 files");
  size_t data_clusters = 0, total_bytes = 0;
  for (const auto& [name, content] : files) {
    if (!valid_file_name(name)) return err("seed file name '" + name + "' is not 1-64 of [A-Za-z0-9._-]");
    data_clusters += (content.size() + kCluster - 1) / kCluster;
    total_bytes += content.size();
  }
  if (total_bytes > kMaxTotal) return err("seed files are " + std::to_string(total_bytes) + " bytes; at most 4 MiB");
  const size_t clusters = std::max<size_t>(data_clusters + 16, 512);
  if (clusters > kMaxClusters) return err("seed files do not fit a FAT12 image");
  const int fat_sectors = int(((clusters + 2) * 3 / 2 + kSector - 1) / kSector);
  const int first_data = 1 + 2 * fat_sectors + kRootSectors;
  const size_t total_sectors = first_data + clusters * kSectorsPerCluster;

  std::string img(total_sectors * kSector, '\0');
  // Boot sector and BIOS parameter block.
  const unsigned char jump[3] = {0xeb, 0x3c, 0x90};
  std::memcpy(img.data(), jump, 3);
  std::memcpy(img.data() + 3, "RUNWARDN", 8);
  put16(img, 11, kSector);
  img[13] = char(kSectorsPerCluster);
  put16(img, 14, 1);  // reserved sectors
  img[16] = 2;        // FATs
  put16(img, 17, kRootEntries);
  put16(img, 19, uint16_t(total_sectors));
  img[21] = char(0xf8);  // media: fixed disk
  put16(img, 22, uint16_t(fat_sectors));
  put16(img, 24, 32);  // sectors per track
  put16(img, 26, 64);  // heads
  img[36] = char(0x80);
  img[38] = 0x29;  // extended boot signature: id, label and type follow
  put32(img, 39, 0x52574344);  // volume id
  std::memcpy(img.data() + 43, "CIDATA     ", 11);
  std::memcpy(img.data() + 54, "FAT12   ", 8);
  img[510] = 0x55;
  img[511] = char(0xaa);

  std::string fat((size_t)fat_sectors * kSector, '\0');
  set_fat12(fat, 0, 0xff8);
  set_fat12(fat, 1, 0xfff);
  std::string root = std::string("CIDATA     ", 11) + std::string(1, 0x08) + std::string(20, '\0');
  uint32_t next = 2;
  int n = 1;
  for (const auto& [name, content] : files) {
    const uint32_t count = uint32_t((content.size() + kCluster - 1) / kCluster);
    root += dir_entries(name, short_name(name, n++), uint16_t(next), uint32_t(content.size()));
    for (uint32_t c = 0; c < count; ++c) set_fat12(fat, next + c, c + 1 == count ? 0xfff : uint16_t(next + c + 1));
    std::memcpy(img.data() + (size_t)(first_data + (next - 2) * kSectorsPerCluster) * kSector, content.data(),
                content.size());
    next += count;
  }
  if (root.size() > (size_t)kRootEntries * 32) return err("seed file names do not fit the root directory");
  for (int f = 0; f < 2; ++f) std::memcpy(img.data() + (size_t)(1 + f * fat_sectors) * kSector, fat.data(), fat.size());
  std::memcpy(img.data() + (size_t)(1 + 2 * fat_sectors) * kSector, root.data(), root.size());
  return img;
}

std::map<std::string, std::string> nocloud_files(const std::string& instance_id, const std::string& hostname,
                                                 const std::vector<std::string>& ssh_keys,
                                                 const std::string& extra_user_data, const HostKey* host_key) {
  // YAML double-quoted scalars: keys and names are escaped, never spliced raw.
  auto q = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    return out + "\"";
  };
  std::string meta = "instance-id: " + q(instance_id) + "\nlocal-hostname: " + q(hostname) + "\n";
  std::string user = "#cloud-config\nhostname: " + q(hostname) + "\ndisable_root: false\nssh_pwauth: false\n";
  user += "ssh_authorized_keys:\n";
  for (const auto& k : ssh_keys) user += "  - " + q(k) + "\n";
  if (host_key) {
    // This key only: the run's known_hosts has it before the guest boots.
    user += "ssh_deletekeys: true\nssh_genkeytypes: []\nssh_keys:\n  ed25519_private: |\n";
    for (size_t a = 0; a < host_key->private_key.size();) {
      size_t b = host_key->private_key.find('\n', a);
      if (b == std::string::npos) b = host_key->private_key.size();
      user += "    " + host_key->private_key.substr(a, b - a) + "\n";
      a = b + 1;
    }
    user += "  ed25519_public: " + q(host_key->public_key) + "\n";
  }
  user += extra_user_data;
  return {{"meta-data", meta}, {"user-data", user}};
}

std::string network_config(const std::vector<NicSpec>& nics) {
  if (std::none_of(nics.begin(), nics.end(), [](const NicSpec& n) { return !n.address.empty(); })) return "";
  std::string s = "version: 2\nethernets:\n";
  for (size_t i = 0; i < nics.size(); ++i) {
    s += "  nic" + std::to_string(i) + ":\n    match:\n      macaddress: \"" + nics[i].mac + "\"\n";
    if (nics[i].address.empty()) s += "    dhcp4: true\n";
    else s += "    dhcp4: false\n    addresses:\n      - \"" + nics[i].address + "\"\n";
    if (nics[i].mtu > 0) s += "    mtu: " + std::to_string(nics[i].mtu) + "\n";
  }
  return s;
}

}  // namespace rw::testbed
