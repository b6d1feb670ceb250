#include "notify/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string_view>

#include "common/fd.h"
#include "common/files.h"
#include "common/text.h"

extern char** environ;

namespace rw::notify {
namespace {

// A webhook env file is a few lines; anything bigger is not one.
constexpr size_t kMaxSecretFile = 1 << 20;

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

/// Reads a file that may hold the secret; nullopt if it does not exist.
/// Type and mode are checked on the open descriptor, so the file cannot be
/// swapped between check and read; O_NONBLOCK keeps a FIFO from hanging us.
Result<std::optional<std::string>> read_secret_file(const std::string& path, bool must_be_private) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<std::string>();
    return sys_err("open " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return sys_err("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return err(path + " is not a regular file; it must be a file with mode 0600");
  if (must_be_private && (st.st_mode & 077) != 0) {
    return err(path + " has mode " + octal_mode(st.st_mode) +
               ", so users other than its owner may read it, and it holds the webhook secret; "
               "refusing to use it. Fix: chmod 600 " + path);
  }
  if (static_cast<size_t>(st.st_size) > kMaxSecretFile) return err(path + " is larger than 1 MiB; it is not a webhook env file");
  RW_ASSIGN(std::string out, read_all(fd.get(), path));
  return std::optional<std::string>(std::move(out));
}

bool valid_key(std::string_view k) {
  if (k.empty() || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
  for (char c : k)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

struct EnvFile {
  std::string url, channel, username;
};

/// Errors name the line number only: the line itself may be the secret.
Result<EnvFile> parse_env_file(const std::string& path, std::string_view text) {
  EnvFile out;
  int lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++lineno;
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& why) {
      return err(path + ":" + std::to_string(lineno) + ": " + why + " (line not shown: it may hold the secret)");
    };
    if (line.starts_with("export") && line.size() > 6 && std::isspace(static_cast<unsigned char>(line[6])))
      line = trim(line.substr(7));
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return bad("expected KEY=VALUE");
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (!valid_key(key)) return bad("expected KEY=VALUE with KEY made of letters, digits and _");
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      if (value.size() < 2 || value.back() != value.front()) return bad("unterminated quote");
      value = value.substr(1, value.size() - 2);
    }
    if (key == "MATTERMOST_WEBHOOK_URL") out.url = value;
    else if (key == "MATTERMOST_CHANNEL") out.channel = value;
    else if (key == "MATTERMOST_USERNAME") out.username = value;
  }
  return out;
}

Status check_url(const std::string& url, const std::string& source) {
  auto has_scheme = [&](std::string_view scheme) {
    if (url.size() <= scheme.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(url[i])) != scheme[i]) return false;
    return true;
  };
  const std::string hidden = " (value not shown: the URL is a secret)";
  if (!has_scheme("http://") && !has_scheme("https://"))
    return err("the webhook URL from " + source + " must start with http:// or https://" + hidden);
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f)
      return err("the webhook URL from " + source + " contains whitespace or control characters" + hidden);
  }
  return {};
}

}  // namespace

Result<WebhookConfig> load_webhook_config(const std::map<std::string, std::string>& env) {
  const std::string cred_source = std::string("credential ") + kWebhookCredential;
  std::string cred_path;
  std::optional<std::string> cred;
  if (auto it = env.find("CREDENTIALS_DIRECTORY"); it != env.end() && !it->second.empty()) {
    cred_path = it->second + "/" + kWebhookCredential;
    RW_ASSIGN(cred, read_secret_file(cred_path, /*must_be_private=*/false));
  }

  std::string env_path = kDefaultWebhookEnvFile;
  if (auto it = env.find("RUNWARDEN_WEBHOOK_ENV"); it != env.end() && !it->second.empty()) env_path = it->second;
  // Read even when the credential supplies the URL: channel and username may
  // live there, and a loose-mode secrets file is refused either way.
  RW_ASSIGN(std::optional<std::string> text, read_secret_file(env_path, /*must_be_private=*/true));
  EnvFile file;
  if (text) {
    RW_ASSIGN(file, parse_env_file(env_path, *text));
  }

  WebhookConfig cfg;
  if (cred) {
    cfg.url = trim(*cred);
    cfg.source = cred_source;
    if (cfg.url.empty()) return err(cred_source + " (" + cred_path + ") is empty");
  } else if (text) {
    if (file.url.empty())
      return err(env_path + " does not set MATTERMOST_WEBHOOK_URL (add a line MATTERMOST_WEBHOOK_URL=https://...)");
    cfg.url = file.url;
    cfg.source = env_path;
  } else {
    return err("no webhook configured: neither " +
               (cred_path.empty() ? std::string("$CREDENTIALS_DIRECTORY/") + kWebhookCredential : cred_path) +
               " nor " + env_path +
               " exists. Either give the watcher a systemd credential (LoadCredential=" + kWebhookCredential +
               ":/etc/runwarden/" + kWebhookCredential + " in watcher@.service, the file holding only the URL), or "
               "write " + env_path + " with a line MATTERMOST_WEBHOOK_URL=https://... and chmod 600 it");
  }
  cfg.channel = file.channel;
  cfg.username = file.username;
  RW_TRY(check_url(cfg.url, cfg.source));
  return cfg;
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

}  // namespace rw::notify
