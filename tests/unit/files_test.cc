#include "common/files.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace rw {
namespace {

namespace fs = std::filesystem;

class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "rw-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  static int mode_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return static_cast<int>(st.st_mode & 07777);
  }
  static std::string read(const std::string& p) {
    auto r = read_file(p);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : "";
  }

  std::string dir_;
};

TEST_F(Files, WriteFileAtomicCreatesTheFileWithTheContent) {
  ASSERT_TRUE(write_file_atomic(path("a.json"), "{\"x\":1}\n").ok());
  EXPECT_EQ(read(path("a.json")), "{\"x\":1}\n");
}

TEST_F(Files, WriteFileAtomicReplacesTheWholeContent) {
  ASSERT_TRUE(write_file_atomic(path("a"), std::string(10'000, 'x')).ok());
  ASSERT_TRUE(write_file_atomic(path("a"), "short").ok());
  EXPECT_EQ(read(path("a")), "short");
  ASSERT_TRUE(write_file_atomic(path("a"), "").ok());
  EXPECT_EQ(read(path("a")), "");
}

TEST_F(Files, WriteFileAtomicSetsTheModeWhateverTheUmask) {
  mode_t old = ::umask(077);
  auto s1 = write_file_atomic(path("public"), "p", 0644);
  ::umask(old);
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(mode_of(path("public")), 0644);
  ASSERT_TRUE(write_file_atomic(path("secret"), "s", 0600).ok());
  EXPECT_EQ(mode_of(path("secret")), 0600);
}

TEST_F(Files, WriteFileAtomicGivesAReplacedFileTheNewMode) {
  ASSERT_TRUE(write_file_atomic(path("n.json"), "old", 0644).ok());
  ASSERT_TRUE(write_file_atomic(path("n.json"), "new", 0640).ok());
  EXPECT_EQ(mode_of(path("n.json")), 0640);
  EXPECT_EQ(read(path("n.json")), "new");
}

TEST_F(Files, WriteFileAtomicLeavesNoTempFilesBehind) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(write_file_atomic(path("state.json"), std::to_string(i)).ok());
  EXPECT_EQ(entries(), std::vector<std::string>{"state.json"});
}

TEST_F(Files, WriteFileAtomicIntoAMissingDirectoryFailsNamingThePath) {
  auto s = write_file_atomic(path("nope/state.json"), "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("nope/state.json"), std::string::npos) << s.error().message;
  EXPECT_TRUE(entries().empty());
}

TEST_F(Files, AConcurrentReaderNeverSeesATornFile) {
  // Two large contents of different sizes and bytes: a torn read would be a
  // mix, a prefix, or an empty file.
  const std::string a(1 << 20, 'a');
  const std::string b((1 << 20) + (1 << 19), 'b');
  const std::string p = path("state.json");
  ASSERT_TRUE(write_file_atomic(p, a).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, torn{0}, saw_a{0}, saw_b{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto r = read_file(p);
      if (!r.ok()) {
        ++torn;  // the file must always exist
        continue;
      }
      ++reads;
      if (*r == a) ++saw_a;
      else if (*r == b) ++saw_b;
      else ++torn;
    }
  });
  int writes = 0;
  for (; writes < 40; ++writes) {
    if (!write_file_atomic(p, writes % 2 ? a : b).ok()) break;
  }
  // Let the reader look at the last version too.
  for (int seen = reads + torn; reads + torn < seen + 3;) std::this_thread::yield();
  stop = true;
  reader.join();

  EXPECT_EQ(writes, 40);
  EXPECT_EQ(torn.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(saw_a.load() + saw_b.load(), 0);
  EXPECT_EQ(read(p), a);  // write 39 (odd) wrote `a`
}

TEST_F(Files, ReadFileOfAMissingFileIsAnErrorNamingIt) {
  auto r = read_file(path("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(path("missing")), std::string::npos) << r.error().message;
}

TEST_F(Files, ReadFileReadsFilesLargerThanItsBuffer) {
  std::string big;
  for (int i = 0; i < 50'000; ++i) big += std::to_string(i) + "\n";
  ASSERT_GT(big.size(), 65536u * 2);
  ASSERT_TRUE(write_file_atomic(path("big"), big).ok());
  EXPECT_EQ(read(path("big")), big);
}

TEST_F(Files, ReadTailReturnsASmallFileWhole) {
  ASSERT_TRUE(write_file_atomic(path("log"), "one\ntwo\n").ok());
  auto r = read_tail(path("log"), 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "one\ntwo\n");
}

TEST_F(Files, ReadTailStartsAtALineBoundary) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "line " + std::to_string(i) + " of the log\n";
  ASSERT_TRUE(write_file_atomic(path("log"), text).ok());
  auto r = read_tail(path("log"), 100);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->size(), 100u);
  ASSERT_FALSE(r->empty());
  EXPECT_EQ(r->rfind("line ", 0), 0u) << *r;  // a whole first line
  EXPECT_EQ(text.substr(text.size() - r->size()), *r);
  EXPECT_EQ(r->back(), '\n');
  EXPECT_NE(r->find("line 999 of the log\n"), std::string::npos);
}

TEST_F(Files, ReadTailCutsAPartialFirstLine) {
  ASSERT_TRUE(write_file_atomic(path("log"), "aaaa\nbb\ncc\n").ok());
  auto r = read_tail(path("log"), 8);  // window "a\nbb\ncc\n" starts inside "aaaa"
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "bb\ncc\n");
}

// Regression: read_tail (src/common/files.cc) always drops everything up to the
// first '\n' of the window when the window does not start at offset 0, even
// when the byte before the window is a '\n', i.e. the window already starts
// at a line boundary. A tail that fits exactly loses its first whole line;
// for a last line that fits exactly the result is empty.
TEST_F(Files, ReadTailKeepsAWholeFirstLineThatFitsExactly) {
  ASSERT_TRUE(write_file_atomic(path("log"), "line1\nline2\nline3\n").ok());
  auto r = read_tail(path("log"), 12);  // exactly "line2\nline3\n"
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "line2\nline3\n");
  auto last = read_tail(path("log"), 6);  // exactly "line3\n"
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, "line3\n");
}

TEST_F(Files, ReadTailOfAMissingFileIsAnError) { EXPECT_FALSE(read_tail(path("missing"), 10).ok()); }

TEST_F(Files, MakeDirsCreatesNestedDirectoriesWithTheMode) {
  std::string p = path("a/b/c");
  ASSERT_TRUE(make_dirs(p, 0750).ok());
  EXPECT_TRUE(fs::is_directory(p));
  EXPECT_EQ(mode_of(p), 0750);
  EXPECT_TRUE(make_dirs(p, 0750).ok());  // existing is fine
}

TEST_F(Files, MakeDirsOverAFileFails) {
  ASSERT_TRUE(write_file_atomic(path("f"), "x").ok());
  EXPECT_FALSE(make_dirs(path("f/sub")).ok());
}

TEST_F(Files, PathExistsSeesFilesDirectoriesAndDanglingSymlinks) {
  EXPECT_FALSE(path_exists(path("x")));
  ASSERT_TRUE(write_file_atomic(path("x"), "").ok());
  EXPECT_TRUE(path_exists(path("x")));
  EXPECT_TRUE(path_exists(dir_));
  fs::create_symlink(path("nowhere"), path("link"));
  EXPECT_TRUE(path_exists(path("link")));
}

TEST_F(Files, TouchMarkerCreatesTheMarkerOnceAndNeverRewritesIt) {
  ASSERT_TRUE(touch_marker(path("posted.marker"), "first\n").ok());
  EXPECT_EQ(read(path("posted.marker")), "first\n");
  ASSERT_TRUE(touch_marker(path("posted.marker"), "second\n").ok());
  EXPECT_EQ(read(path("posted.marker")), "first\n");
  ASSERT_TRUE(touch_marker(path("empty.marker")).ok());
  EXPECT_EQ(read(path("empty.marker")), "");
}

}  // namespace
}  // namespace rw

namespace rw {
namespace {

TEST(WriteFileAtomic, ALinkPlantedAtAGuessableTemporaryNameIsNotWrittenThrough) {
  char tmpl[] = "/var/tmp/rw-files-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string victim = dir + "/victim";
  ASSERT_TRUE(write_file_atomic(victim, "precious").ok());
  // The names an older writer used: <path>.tmp.<pid>.
  const std::string target = dir + "/state.json";
  ASSERT_EQ(::symlink(victim.c_str(), (target + ".tmp." + std::to_string(::getpid())).c_str()), 0);
  ASSERT_TRUE(write_file_atomic(target, "new state").ok());
  EXPECT_EQ(*read_file(victim), "precious");
  EXPECT_EQ(*read_file(target), "new state");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rw
