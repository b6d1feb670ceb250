#pragma once
// The chat message for a run that ended COMPLETED or FAILED.

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "notify/secrets.h"

namespace rw::notify {

struct MessageInput {
  std::string build;
  std::string status;  ///< COMPLETED or FAILED
  std::string subrun;  ///< empty if not a sub-run
  int64_t started_at_ms = 0;
  int64_t ended_at_ms = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;
  std::string failed_stage, failed_task, failed_target;
  std::string log_tail;
  std::map<std::string, std::string> meta;
  std::string host;
  std::string mention;  ///< used only when FAILED
};

/// Mattermost splits longer posts into several; dump() stays below this.
constexpr size_t kMaxMessageChars = 16000;

/// Slack-compatible incoming-webhook payload (Mattermost accepts it as is):
/// {"text": summary line (+ mention on failure), "username"/"channel" if
/// configured, "attachments": [{"fallback", "color", "title", "text" (reason
/// and log tail in a ``` block), "fields": [{"short", "title", "value"}...]}]}.
/// Fields: Status, Duration, Sub-run, Exit code / Signal, Failed at
/// (stage / task @ target), Host, each meta key, Logs (the commands to read them).
/// Always valid UTF-8 (invalid input bytes become U+FFFD, so any dump() works)
/// and dump().size() < kMaxMessageChars: the log tail is shortened first (its
/// end kept, "..." in front), then long texts and meta values, then meta fields.
nlohmann::json render_message(const MessageInput& in, const WebhookConfig& cfg);

}  // namespace rw::notify
