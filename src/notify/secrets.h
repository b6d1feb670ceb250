#pragma once
// Where the webhook URL comes from. The URL is a secret (anyone holding it
// can post to the channel), so no error built here ever contains it.

#include <map>
#include <string>

#include "common/result.h"

namespace rw::notify {

struct WebhookConfig {
  std::string url;
  std::string channel;   ///< optional override of the hook's default channel
  std::string username;  ///< optional override of the hook's display name
  /// "credential webhook-url" or the env file path: what messages may name
  /// instead of the URL.
  std::string source;
};

/// Default env file and the systemd credential name (LoadCredential=webhook-url:...).
inline constexpr const char* kDefaultWebhookEnvFile = "/etc/runwarden/watcher.env";
inline constexpr const char* kWebhookCredential = "webhook-url";

/// env: the process environment as a map (tests pass their own).
/// 1. If CREDENTIALS_DIRECTORY is set and $CREDENTIALS_DIRECTORY/webhook-url
///    exists, the URL is its trimmed content.
/// 2. The env file (RUNWARDEN_WEBHOOK_ENV, else /etc/runwarden/watcher.env):
///    KEY=VALUE lines, blank lines, '#' comments, optional `export `, optional
///    single or double quotes. MATTERMOST_WEBHOOK_URL (required unless a
///    credential gave the URL), MATTERMOST_CHANNEL, MATTERMOST_USERNAME;
///    other keys are ignored. Channel and username come from it even when the
///    URL came from the credential.
/// Refuses an env file that is not a regular file or whose mode has any group
/// or other bits (it holds the secret), naming the file, its mode and the fix.
/// The URL must start with http:// or https://.
Result<WebhookConfig> load_webhook_config(const std::map<std::string, std::string>& env);

/// The process environment (environ) as a map.
std::map<std::string, std::string> current_environment();

}  // namespace rw::notify
