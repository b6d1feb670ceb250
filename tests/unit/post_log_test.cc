// A failed sub-run's message carries the tail of the log its command named,
// only when that log is a file of the run (its workdir or run directory):
// never an arbitrary file of the controller.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/files.h"
#include "watch/post.h"

namespace rw::watch {
namespace {

class SubrunLog : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/rw-post-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    work_ = root_ + "/work";
    ASSERT_TRUE(make_dirs(work_).ok());
    ASSERT_TRUE(write_file_atomic(root_ + "/secret", "SECRET-CONTENT\n").ok());
    ASSERT_TRUE(write_file_atomic(work_ + "/suite.log", "test_login FAILED\n").ok());
    ASSERT_EQ(::symlink((root_ + "/secret").c_str(), (work_ + "/link.log").c_str()), 0);
    run_.build = "b1";
    run_.workdir = work_;
    dir_ = std::make_unique<state::RunDir>(root_ + "/state", "b1");
    ASSERT_TRUE(make_dirs(dir_->path()).ok());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string tail_for(const std::string& log) {
    state::SubrunState s;
    s.key = "linux";
    s.status = state::RunStatus::Failed;
    s.log = log;
    EXPECT_TRUE(dir_->save_subrun(s).ok());
    return message_for(*dir_, run_, "linux").log_tail;
  }

  std::string root_, work_;
  state::RunState run_;
  std::unique_ptr<state::RunDir> dir_;
};

TEST_F(SubrunLog, ALogInTheWorkdirIsQuoted) {
  EXPECT_NE(tail_for("suite.log").find("test_login FAILED"), std::string::npos);
}

TEST_F(SubrunLog, AFileOutsideTheRunOrALinkLeadingOutIsNeverRead) {
  for (const std::string& log : std::vector<std::string>{root_ + "/secret", "link.log", "../secret"}) {
    std::string t = tail_for(log);
    EXPECT_EQ(t.find("SECRET-CONTENT"), std::string::npos) << log;
    EXPECT_NE(t.find("not included"), std::string::npos) << log << ": " << t;
  }
}

}  // namespace
}  // namespace rw::watch
