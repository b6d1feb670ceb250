#include "notify/message.h"

#include <gtest/gtest.h>

namespace rw::notify {
namespace {

using nlohmann::json;

MessageInput completed() {
  MessageInput in;
  in.build = "e2e-redhat9.6-ubuntu24.04-w2k25-fc";
  in.status = "COMPLETED";
  in.started_at_ms = 1'700'000'000'000;
  in.ended_at_ms = in.started_at_ms + 3'723'000;  // 1h 2m 3s
  in.host = "controller1";
  in.meta = {{"config_family", "gold"}, {"integration", "pure with fc"}};
  in.mention = "@qa-oncall";
  return in;
}

MessageInput failed() {
  MessageInput in = completed();
  in.status = "FAILED";
  in.exit_code = 3;
  in.reason = "task linux failed after 1 retry";
  in.failed_stage = "test";
  in.failed_task = "linux";
  in.failed_target = "controller";
  in.log_tail = "running suite\nAssertionError: expected 3 got 4\n";
  return in;
}

const json& attachment(const json& m) { return m.at("attachments").at(0); }

std::string field(const json& m, const std::string& title) {
  for (const auto& f : attachment(m).at("fields"))
    if (f.at("title") == title) return f.at("value").get<std::string>();
  return "<none>";
}

std::string all_text(const json& m) { return m.dump(); }

TEST(NotifyMessage, ACompletedMessageNamesBuildStatusAndDurationWithoutMention) {
  json m = render_message(completed(), {});
  std::string text = m.at("text");
  EXPECT_NE(text.find("e2e-redhat9.6-ubuntu24.04-w2k25-fc"), std::string::npos) << text;
  EXPECT_NE(text.find("COMPLETED"), std::string::npos) << text;
  EXPECT_NE(text.find("1h 2m 3s"), std::string::npos) << text;
  EXPECT_EQ(all_text(m).find("@qa-oncall"), std::string::npos);
  EXPECT_EQ(attachment(m).at("color"), "#2eb886");
  EXPECT_EQ(field(m, "Status"), "COMPLETED");
  EXPECT_EQ(field(m, "Duration"), "1h 2m 3s");
  EXPECT_EQ(field(m, "Host"), "controller1");
  EXPECT_EQ(field(m, "config_family"), "gold");
  EXPECT_EQ(field(m, "integration"), "pure with fc");
  EXPECT_EQ(field(m, "Exit code"), "<none>");
}

TEST(NotifyMessage, AFailedMessageHasExitCodeLogTailFailingTaskAndMention) {
  json m = render_message(failed(), {});
  std::string text = m.at("text");
  EXPECT_NE(text.find("FAILED"), std::string::npos) << text;
  EXPECT_NE(text.find("@qa-oncall"), std::string::npos) << text;
  EXPECT_EQ(attachment(m).at("color"), "#d00000");
  EXPECT_EQ(field(m, "Exit code"), "3");
  EXPECT_EQ(field(m, "Failed at"), "test / linux @ controller");
  std::string body = attachment(m).at("text");
  EXPECT_NE(body.find("task linux failed after 1 retry"), std::string::npos) << body;
  EXPECT_NE(body.find("```\nrunning suite\nAssertionError: expected 3 got 4\n```"), std::string::npos) << body;
  // The mention notifies people; the fallback (notification preview) stays plain.
  EXPECT_EQ(attachment(m).at("fallback").get<std::string>().find("@qa-oncall"), std::string::npos);
}

TEST(NotifyMessage, LogsFieldTellsHowToReadTheLogs) {
  json m = render_message(failed(), {});
  std::string logs = field(m, "Logs");
  EXPECT_NE(logs.find("runwarden logs e2e-redhat9.6-ubuntu24.04-w2k25-fc"), std::string::npos) << logs;
  EXPECT_NE(logs.find("journalctl RUNWARDEN_BUILD=e2e-redhat9.6-ubuntu24.04-w2k25-fc"), std::string::npos) << logs;
}

TEST(NotifyMessage, SubRunAndSignalAreShown) {
  MessageInput in = failed();
  in.subrun = "windows";
  in.exit_code.reset();
  in.signal = 9;
  json m = render_message(in, {});
  EXPECT_EQ(field(m, "Sub-run"), "windows");
  EXPECT_EQ(field(m, "Signal"), "9 (SIGKILL)");
  EXPECT_EQ(field(m, "Exit code"), "<none>");
  EXPECT_NE(m.at("text").get<std::string>().find("e2e-redhat9.6-ubuntu24.04-w2k25-fc / windows FAILED"), std::string::npos);
}

TEST(NotifyMessage, UsernameAndChannelAppearOnlyIfConfigured) {
  json plain = render_message(completed(), {});
  EXPECT_FALSE(plain.contains("username"));
  EXPECT_FALSE(plain.contains("channel"));
  WebhookConfig cfg;
  cfg.url = "https://chat.example.com/hooks/secretkey123";
  cfg.channel = "qa";
  cfg.username = "runwarden";
  json m = render_message(completed(), cfg);
  EXPECT_EQ(m.at("channel"), "qa");
  EXPECT_EQ(m.at("username"), "runwarden");
  EXPECT_EQ(m.dump().find("secretkey123"), std::string::npos);
}

TEST(NotifyMessage, AMegabyteLogTailIsCutToFitKeepingItsEnd) {
  MessageInput in = failed();
  in.log_tail.clear();
  for (int i = 0; in.log_tail.size() < (1 << 20); ++i) in.log_tail += "line " + std::to_string(i) + " of the test output\n";
  in.log_tail += "THE LAST LINE\n";
  json m = render_message(in, {});
  std::string dumped = m.dump();
  EXPECT_LT(dumped.size(), kMaxMessageChars);
  EXPECT_GT(dumped.size(), kMaxMessageChars - 1000) << "the tail should use the room it has";
  std::string body = attachment(m).at("text");
  EXPECT_NE(body.find("```\n...\nline "), std::string::npos) << body.substr(0, 200);
  EXPECT_NE(body.find("THE LAST LINE\n```"), std::string::npos);
  EXPECT_EQ(field(m, "config_family"), "gold") << "meta survives when the tail alone can be cut";
}

TEST(NotifyMessage, HugeMetaIsCutButTheTailKeepsItsShare) {
  MessageInput in = failed();
  in.log_tail = std::string(1 << 20, 'x') + "\nTHE END";
  for (int i = 0; i < 1000; ++i) in.meta["key" + std::to_string(i)] = std::string(1000, 'v');
  in.meta["big"] = std::string(1 << 20, 'b');
  json m = render_message(in, {});
  EXPECT_LT(m.dump().size(), kMaxMessageChars);
  std::string body = attachment(m).at("text");
  EXPECT_NE(body.find("THE END\n```"), std::string::npos);
  EXPECT_GE(body.size(), 2000u);
  EXPECT_NE(field(m, "Meta").find("more fields not shown"), std::string::npos);
  EXPECT_NE(field(m, "Logs"), "<none>");
}

TEST(NotifyMessage, EveryStringHugeStillFits) {
  MessageInput in = failed();
  const std::string huge(1 << 20, 'z');
  in.build = in.subrun = in.reason = in.failed_stage = in.failed_task = in.failed_target = in.host = in.mention = huge;
  in.log_tail = huge;
  for (int i = 0; i < 5000; ++i) in.meta[huge.substr(0, 1000) + std::to_string(i)] = huge.substr(0, 5000);
  WebhookConfig cfg;
  cfg.channel = cfg.username = huge;
  json m = render_message(in, cfg);
  EXPECT_LT(m.dump().size(), kMaxMessageChars);
}

TEST(NotifyMessage, ControlCharactersWhichGrowWhenEscapedStillFit) {
  MessageInput in = failed();
  in.log_tail = std::string(100000, '\x01');  // 6 bytes each once escaped
  json m = render_message(in, {});
  EXPECT_LT(m.dump().size(), kMaxMessageChars);
}

TEST(NotifyMessage, InvalidUtf8DoesNotThrowAndDumpsStrictly) {
  MessageInput in = failed();
  in.build = "bad\xff\xfe";
  in.log_tail = std::string(50000, '\xc3') + "end \xe2\x82";
  in.meta["k\xff"] = "v\xc0\xaf";
  in.reason = "r\xed\xa0\x80";
  WebhookConfig cfg;
  cfg.username = "u\x80";
  json m;
  ASSERT_NO_THROW(m = render_message(in, cfg));
  std::string dumped;
  ASSERT_NO_THROW(dumped = m.dump());  // default strict error handler
  EXPECT_LT(dumped.size(), kMaxMessageChars);
  EXPECT_NE(dumped.find("bad\xef\xbf\xbd"), std::string::npos);
}

TEST(NotifyMessage, MultibyteTextIsNeverCutInsideACharacter) {
  MessageInput in = failed();
  in.log_tail.clear();
  while (in.log_tail.size() < 100000) in.log_tail += "é";  // 2 bytes each, no newlines
  json m;
  ASSERT_NO_THROW(m = render_message(in, {}));
  std::string body = attachment(m).at("text");
  EXPECT_EQ(body.find("\xef\xbf\xbd"), std::string::npos) << "no U+FFFD from a split character";
  EXPECT_LT(m.dump().size(), kMaxMessageChars);
}

TEST(NotifyMessage, ColourCodesAndCodeFencesInTheLogAreNeutralised) {
  MessageInput in = failed();
  in.log_tail = "\x1b[31mred error\x1b[0m\n```\nmore";
  json m = render_message(in, {});
  std::string body = attachment(m).at("text");
  EXPECT_NE(body.find("```\nred error\n'''\nmore\n```"), std::string::npos) << body;
}

TEST(NotifyMessage, AnUnknownDurationIsSaidSo) {
  MessageInput in = completed();
  in.started_at_ms = 0;
  json m = render_message(in, {});
  EXPECT_EQ(field(m, "Duration"), "unknown");
}

}  // namespace
}  // namespace rw::notify
