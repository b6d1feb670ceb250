#include "notify/secrets.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace rw::notify {
namespace {

constexpr const char* kUrl = "https://chat.example.com/hooks/s3cr3tk3yxyz123";
constexpr const char* kKey = "s3cr3tk3yxyz123";

class NotifySecrets : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rw-secrets-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::map<std::string, std::string> env_for(const std::string& env_file) {
    return {{"RUNWARDEN_WEBHOOK_ENV", env_file}};
  }

  std::string dir_;
};

TEST_F(NotifySecrets, AGroupOrWorldReadableEnvFileIsRefusedNamingFileModeAndFix) {
  std::string path = write("watcher.env", std::string("MATTERMOST_WEBHOOK_URL=") + kUrl + "\n", 0644);
  auto r = load_webhook_config(env_for(path));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("0644"), std::string::npos) << m;
  EXPECT_NE(m.find("chmod 600 " + path), std::string::npos) << m;
  EXPECT_EQ(m.find(kKey), std::string::npos) << m;

  ::chmod(path.c_str(), 0640);
  r = load_webhook_config(env_for(path));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("0640"), std::string::npos) << r.error().message;
}

TEST_F(NotifySecrets, APrivateEnvFileIsAccepted) {
  std::string path = write("watcher.env",
                           std::string("MATTERMOST_WEBHOOK_URL=") + kUrl +
                               "\nMATTERMOST_CHANNEL=qa\nMATTERMOST_USERNAME=runwarden\n",
                           0600);
  auto r = load_webhook_config(env_for(path));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->url, kUrl);
  EXPECT_EQ(r->channel, "qa");
  EXPECT_EQ(r->username, "runwarden");
  EXPECT_EQ(r->source, path);
}

TEST_F(NotifySecrets, QuotesCommentsExportAndUnknownKeysAreHandled) {
  std::string path = write("watcher.env",
                           "# the team hook\n"
                           "\n"
                           "   # indented comment\n"
                           "export MATTERMOST_WEBHOOK_URL=\"" + std::string(kUrl) + "\"\r\n"
                           "MATTERMOST_CHANNEL = 'qa lab'\n"
                           "export\tMATTERMOST_USERNAME=bot\n"
                           "SOMETHING_ELSE=whatever\n",
                           0600);
  auto r = load_webhook_config(env_for(path));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->url, kUrl);
  EXPECT_EQ(r->channel, "qa lab");
  EXPECT_EQ(r->username, "bot");
}

TEST_F(NotifySecrets, TheCredentialWinsOverTheEnvFileWhichStillGivesTheChannel) {
  std::filesystem::create_directory(dir_ + "/creds");
  write("creds/webhook-url", "  https://other.example.com/hooks/fromcredential\n\n", 0400);
  std::string path = write("watcher.env", std::string("MATTERMOST_WEBHOOK_URL=") + kUrl + "\nMATTERMOST_CHANNEL=qa\n", 0600);
  auto env = env_for(path);
  env["CREDENTIALS_DIRECTORY"] = dir_ + "/creds";
  auto r = load_webhook_config(env);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->url, "https://other.example.com/hooks/fromcredential");
  EXPECT_EQ(r->channel, "qa");
  EXPECT_EQ(r->source, "credential webhook-url");
}

TEST_F(NotifySecrets, TheCredentialAloneIsEnough) {
  std::filesystem::create_directory(dir_ + "/creds");
  write("creds/webhook-url", kUrl, 0400);
  auto env = env_for(dir_ + "/absent.env");
  env["CREDENTIALS_DIRECTORY"] = dir_ + "/creds";
  auto r = load_webhook_config(env);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->url, kUrl);
  EXPECT_TRUE(r->channel.empty());
}

TEST_F(NotifySecrets, MissingEverythingGivesAClearErrorExplainingBothWays) {
  auto env = env_for(dir_ + "/absent.env");
  env["CREDENTIALS_DIRECTORY"] = dir_;  // set, but holds no webhook-url
  auto r = load_webhook_config(env);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_EQ(m.rfind("no webhook configured: ", 0), 0u) << m;
  EXPECT_NE(m.find("LoadCredential=webhook-url"), std::string::npos) << m;
  EXPECT_NE(m.find("MATTERMOST_WEBHOOK_URL="), std::string::npos) << m;
  EXPECT_NE(m.find(dir_ + "/absent.env"), std::string::npos) << m;
}

TEST_F(NotifySecrets, AnEnvFileWithoutTheUrlIsAnError) {
  std::string path = write("watcher.env", "MATTERMOST_CHANNEL=qa\n", 0600);
  auto r = load_webhook_config(env_for(path));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not set MATTERMOST_WEBHOOK_URL"), std::string::npos) << r.error().message;
}

TEST_F(NotifySecrets, ADirectoryIsNotAnEnvFile) {
  std::filesystem::create_directory(dir_ + "/d");
  ::chmod((dir_ + "/d").c_str(), 0700);
  auto r = load_webhook_config(env_for(dir_ + "/d"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos) << r.error().message;
}

TEST_F(NotifySecrets, AUrlWithoutHttpSchemeIsRefusedWithoutShowingIt) {
  std::string path = write("watcher.env", "MATTERMOST_WEBHOOK_URL=ftp://chat.example.com/hooks/s3cr3tk3yxyz123\n", 0600);
  auto r = load_webhook_config(env_for(path));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("http:// or https://"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(kKey), std::string::npos) << r.error().message;
}

TEST_F(NotifySecrets, NoErrorEverContainsTheUrlOrAPartOfIt) {
  const std::string u(kUrl);
  struct Case {
    std::string content;
    mode_t mode;
  };
  const std::vector<Case> cases = {
      {"MATTERMOST_WEBHOOK_URL=" + u + "\n", 0644},
      {"MATTERMOST_WEBHOOK_URL " + u + "\n", 0600},                // no '='
      {"MATTERMOST_WEBHOOK_URL=\"" + u + "\n", 0600},              // unterminated quote
      {u + "\n", 0600},                                            // just the URL
      {"MATTERMOST_WEBHOOK_URL=chat.example.com/hooks/" + std::string(kKey) + "\n", 0600},  // no scheme
      {"MATTERMOST_WEBHOOK_URL=" + u + "/with space\n", 0600},
      {"MATTERMOST-WEBHOOK-URL=" + u + "\n", 0600},                // bad key
  };
  for (const auto& c : cases) {
    std::string path = write("watcher.env", c.content, c.mode);
    auto r = load_webhook_config(env_for(path));
    ASSERT_FALSE(r.ok()) << c.content;
    EXPECT_EQ(r.error().message.find(kKey), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("chat.example.com"), std::string::npos) << r.error().message;
  }
}

TEST_F(NotifySecrets, AnEmptyCredentialIsAnError) {
  std::filesystem::create_directory(dir_ + "/creds");
  write("creds/webhook-url", "\n", 0400);
  auto env = env_for(dir_ + "/absent.env");
  env["CREDENTIALS_DIRECTORY"] = dir_ + "/creds";
  auto r = load_webhook_config(env);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is empty"), std::string::npos) << r.error().message;
}

TEST(NotifyEnvironment, CurrentEnvironmentHasTheProcessVariables) {
  ::setenv("RW_NOTIFY_TEST_VAR", "a=b", 1);
  auto env = current_environment();
  EXPECT_EQ(env["RW_NOTIFY_TEST_VAR"], "a=b");
  ::unsetenv("RW_NOTIFY_TEST_VAR");
}

}  // namespace
}  // namespace rw::notify
