// The qcow2 overlays we write, read back by qemu's own tool: a consistent
// image with the backing file, its format and the virtual size we asked for.
#include "testbed/qcow2.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/files.h"

namespace rw::testbed {
namespace {

namespace fs = std::filesystem;

std::string run(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  *rc = ::pclose(p);
  return out;
}

class Qcow2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v qemu-img >/dev/null 2>&1") != 0) GTEST_SKIP() << "qemu-img is not installed";
    std::string tmpl = (fs::temp_directory_path() / "rw-qcow2-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(Qcow2, QemuReadsOurOverlayOfAQcow2AndOfARawImageAndOurBlankImage) {
  int rc = -1;
  run("qemu-img create -q -f qcow2 " + dir_ + "/base.qcow2 1G 2>&1", &rc);
  ASSERT_EQ(rc, 0);
  run("qemu-img create -q -f raw " + dir_ + "/base.raw 64M 2>&1", &rc);
  ASSERT_EQ(rc, 0);
  struct Case {
    std::string backing, format;
    uint64_t size;
  } cases[] = {{dir_ + "/base.qcow2", "qcow2", 1ull << 30}, {dir_ + "/base.raw", "raw", 64ull << 20},
               {dir_ + "/base.qcow2", "qcow2", (8ull << 30) + 12345 * 512},
               {"", "", 16ull << 20}};  // blank: a data disk
  for (const auto& c : cases) {
    auto img = qcow2_overlay(c.size, c.backing, c.format);
    ASSERT_TRUE(img.ok()) << img.error().message;
    const std::string file = dir_ + "/over.qcow2";
    ASSERT_TRUE(write_file_atomic(file, *img).ok());
    std::string check = run("qemu-img check -f qcow2 " + file + " 2>&1", &rc);
    EXPECT_EQ(rc, 0) << check;
    EXPECT_NE(check.find("No errors were found"), std::string::npos) << check;
    std::string info = run("qemu-img info -f qcow2 --output=json " + file + " 2>&1", &rc);
    ASSERT_EQ(rc, 0) << info;
    auto j = nlohmann::json::parse(info);
    EXPECT_EQ(j["virtual-size"], c.size);
    if (c.backing.empty()) {
      EXPECT_FALSE(j.contains("backing-filename")) << info;
    } else {
      EXPECT_EQ(j["backing-filename"], c.backing);
      EXPECT_EQ(j["backing-filename-format"], c.format);
    }
    EXPECT_EQ(j["cluster-size"], 65536);
    // Data written through it lands in the overlay, the backing file stays.
    std::string io = run("qemu-io -f qcow2 -c 'write -P 0x5a 1M 64k' -c 'read -P 0x5a 1M 64k' " + file + " 2>&1", &rc);
    EXPECT_EQ(rc, 0) << io;
    EXPECT_EQ(io.find("Pattern verification failed"), std::string::npos) << io;
    check = run("qemu-img check -f qcow2 " + file + " 2>&1", &rc);
    EXPECT_EQ(rc, 0) << "after a write: " << check;
  }
}

TEST(Qcow2Limits, ANameQemuCannotReadOrADiskTooLargeIsRefused) {
  EXPECT_FALSE(qcow2_overlay(1 << 30, std::string(1024, 'a'), "qcow2").ok());
  EXPECT_FALSE(qcow2_overlay(1 << 30, "", "qcow2").ok()) << "a format without a file";
  EXPECT_FALSE(qcow2_overlay(1 << 30, "/b", "").ok()) << "a file without a format";
  EXPECT_FALSE(qcow2_overlay(5ull << 40, "/b", "qcow2").ok());
  EXPECT_TRUE(qcow2_overlay(4ull << 40, "/b", "qcow2").ok());
}

}  // namespace
}  // namespace rw::testbed
