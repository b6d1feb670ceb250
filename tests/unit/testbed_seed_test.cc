// The NoCloud seed image, read back by independent FAT readers: blkid (what
// cloud-init uses to find it), fsck.fat and mtools.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "testbed/seed.h"

namespace rw::testbed {
namespace {

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "<popen failed>";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) out += "<exit " + std::to_string(rc) + ">";
  return out;
}

std::string write_image(const std::string& img) {
  char path[] = "/var/tmp/rw-seed-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path, std::ios::binary) << img;
  return path;
}

TEST(TestbedSeed, AnIndependentFatReaderFindsTheLabelAndEveryFileByItsLongName) {
  auto files = nocloud_files("web-1-b1", "web-1", {"ssh-ed25519 AAAAC3Nza... test@key"});
  files["network-config"] = std::string(5000, 'n');  // spans clusters
  auto img = fat_seed_image(files);
  ASSERT_TRUE(img.ok()) << img.error().message;
  std::string path = write_image(*img);
  EXPECT_EQ(run("blkid -o value -s LABEL " + path), "CIDATA\n");
  EXPECT_EQ(run("blkid -o value -s TYPE " + path), "vfat\n");
  EXPECT_EQ(run("fsck.fat -n " + path + " >/dev/null 2>&1 && echo clean"), "clean\n");
  for (const auto& [name, content] : files)
    EXPECT_EQ(run("MTOOLS_SKIP_CHECK=1 mtype -i " + path + " ::" + name), content) << name;
  std::remove(path.c_str());
}

TEST(TestbedSeed, UserDataCarriesTheKeysQuotedAndAllowsRootByKey) {
  auto f = nocloud_files("id", "web-1", {"ssh-ed25519 AAAA \"quoted\" key"});
  EXPECT_NE(f["user-data"].find("#cloud-config\n"), std::string::npos);
  EXPECT_NE(f["user-data"].find("  - \"ssh-ed25519 AAAA \\\"quoted\\\" key\""), std::string::npos) << f["user-data"];
  EXPECT_NE(f["user-data"].find("disable_root: false"), std::string::npos);
  EXPECT_NE(f["meta-data"].find("local-hostname: \"web-1\""), std::string::npos);
}

TEST(TestbedSeed, BadNamesAndOversizedSeedsAreRefused) {
  EXPECT_FALSE(fat_seed_image({{"../x", "a"}}).ok());
  EXPECT_FALSE(fat_seed_image({{"", "a"}}).ok());
  EXPECT_FALSE(fat_seed_image({{"big", std::string(5u << 20, 'x')}}).ok());
}

TEST(TestbedSeed, NetworkConfigGivesStaticAddressesByMacAndLeavesTheRestToDhcp) {
  EXPECT_EQ(network_config({{"n1", "52:54:00:00:00:01", 0, ""}}), "") << "all leased: cloud-init's default";
  const std::string nc =
      network_config({{"n1", "52:54:00:00:00:01", 0, ""}, {"n2", "52:54:00:00:00:02", 1450, "10.81.0.10/24"}});
  EXPECT_EQ(nc,
            "version: 2\nethernets:\n"
            "  nic0:\n    match:\n      macaddress: \"52:54:00:00:00:01\"\n    dhcp4: true\n"
            "  nic1:\n    match:\n      macaddress: \"52:54:00:00:00:02\"\n    dhcp4: false\n"
            "    addresses:\n      - \"10.81.0.10/24\"\n    mtu: 1450\n");
}

}  // namespace
}  // namespace rw::testbed
