#include "notify/message.h"

#include <signal.h>
#include <string.h>

#include <algorithm>

#include "common/duration.h"

namespace rw::notify {
namespace {

using nlohmann::json;

constexpr const char* kColorCompleted = "#2eb886";
constexpr const char* kColorFailed = "#d00000";
constexpr const char* kColorOther = "#8a8a8a";
constexpr size_t kNoLimit = std::string::npos;
/// The log tail is the most useful part of a failure message: meta fields are
/// dropped before it goes below this.
constexpr size_t kMinTailChars = 2000;
/// What "long" means for a meta value or other free text once space is short.
constexpr size_t kLongText = 200;
/// A line break this close to the cut gives a clean first line.
constexpr size_t kLineSnap = 200;

/// How much of each variable-size part to keep.
struct Limits {
  size_t tail = kNoLimit;         ///< bytes of the log tail's end
  size_t meta_value = kNoLimit;   ///< bytes per meta value
  size_t meta_fields = kNoLimit;  ///< number of meta fields
  size_t text = kNoLimit;         ///< bytes of any other string
};

std::string dump_lenient(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

/// Invalid UTF-8 becomes U+FFFD, using nlohmann's own notion of valid.
std::string valid_utf8(const std::string& s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) return s;
  json back = json::parse(dump_lenient(json(s)), nullptr, /*allow_exceptions=*/false);
  return back.is_string() ? back.get<std::string>() : std::string();
}

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

/// At most `n` bytes of valid UTF-8 `s`, cut on a character boundary.
std::string head(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && continuation(s[n])) --n;
  return s.substr(0, n) + "...";
}

/// The last `n` bytes of `s`, starting on a character (and if one is near, a
/// line) boundary.
std::string tail(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t start = s.size() - n;
  while (start < s.size() && continuation(s[start])) ++start;
  if (size_t nl = s.find('\n', start); nl != std::string::npos && nl - start < kLineSnap) return "...\n" + s.substr(nl + 1);
  return "..." + s.substr(start);
}

/// Colour codes make a log unreadable in chat, and a ``` inside the log
/// would end the code block early.
std::string clean_log(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && !(s[j] >= 0x40 && s[j] <= 0x7e)) ++j;  // CSI ends at a byte in @..~
      i = j;
      continue;
    }
    if (s[i] == '`' && s.compare(i, 3, "```") == 0) {
      out += "'''";
      i += 2;
      continue;
    }
    out += s[i];
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : "");
}

struct Prepared {
  MessageInput in;
  WebhookConfig cfg;
};

/// Copies of every string as valid UTF-8, with the log cleaned once up front
/// (rendering runs several times while fitting the size).
Prepared prepare(const MessageInput& in, const WebhookConfig& cfg) {
  Prepared p;
  p.in = in;
  for (std::string* s : {&p.in.build, &p.in.status, &p.in.subrun, &p.in.reason, &p.in.failed_stage,
                         &p.in.failed_task, &p.in.failed_target, &p.in.host, &p.in.mention})
    *s = valid_utf8(*s);
  p.in.log_tail = valid_utf8(clean_log(in.log_tail));
  p.in.meta.clear();
  // Two keys may collapse into one after replacement; last one wins, harmless.
  for (const auto& [k, v] : in.meta) p.in.meta[valid_utf8(k)] = valid_utf8(v);
  p.cfg.channel = valid_utf8(cfg.channel);
  p.cfg.username = valid_utf8(cfg.username);
  return p;
}

json build_message(const MessageInput& in, const WebhookConfig& cfg, const Limits& lim) {
  auto t = [&](const std::string& s) { return head(s, lim.text); };
  const bool failed = in.status == "FAILED";
  const bool completed = in.status == "COMPLETED";

  const std::string name = t(in.build) + (in.subrun.empty() ? "" : " / " + t(in.subrun));
  const std::string status = t(in.status);
  const bool known_duration = in.started_at_ms > 0 && in.ended_at_ms >= in.started_at_ms;
  const std::string duration = known_duration ? format_duration(Millis(in.ended_at_ms - in.started_at_ms)) : "unknown";

  std::string failed_at = t(in.failed_stage);
  if (!in.failed_task.empty()) failed_at += (failed_at.empty() ? "" : " / ") + t(in.failed_task);
  if (!in.failed_target.empty() && !failed_at.empty()) failed_at += " @ " + t(in.failed_target);

  std::string summary = std::string(failed ? ":x: " : completed ? ":white_check_mark: " : "") + name + " " + status;
  if (known_duration) summary += (failed ? " after " : " in ") + duration;
  if (failed && !failed_at.empty()) summary += " at " + failed_at;

  json fields = json::array();
  auto field = [&](const std::string& title, const std::string& value, bool is_short) {
    fields.push_back({{"title", title}, {"value", value}, {"short", is_short}});
  };
  field("Status", status, true);
  field("Duration", duration, true);
  if (!in.subrun.empty()) field("Sub-run", t(in.subrun), true);
  if (in.exit_code) field("Exit code", std::to_string(*in.exit_code), true);
  if (in.signal) field("Signal", signal_text(*in.signal), true);
  if (!failed_at.empty()) field("Failed at", failed_at, false);
  if (!in.host.empty()) field("Host", t(in.host), true);
  size_t shown = 0, meta_bytes = 0;
  for (const auto& [key, value] : in.meta) {
    // Past the size limit the message cannot fit whatever follows, so
    // building the rest of a huge map would only waste time while fitting.
    if (shown == lim.meta_fields || meta_bytes >= kMaxMessageChars) break;
    std::string v = head(value, std::min(lim.meta_value, lim.text));
    meta_bytes += key.size() + v.size();
    field(t(key), v, v.size() <= 40);
    ++shown;
  }
  if (shown < in.meta.size()) field("Meta", std::to_string(in.meta.size() - shown) + " more fields not shown", true);
  const std::string b = t(in.build);
  field("Logs", "`runwarden logs " + b + "`\n`journalctl RUNWARDEN_BUILD=" + b + "`", false);

  std::string text = t(in.reason);
  if (!in.log_tail.empty()) {
    if (!text.empty()) text += "\n";
    if (lim.tail == 0) {
      text += "(log tail left out to keep the message short; see `runwarden logs " + b + "`)";
    } else {
      text += "Last lines of the log" + (in.failed_task.empty() ? "" : " of " + t(in.failed_task)) + ":\n```\n" +
              tail(in.log_tail, lim.tail) + "\n```";
    }
  }

  json msg;
  msg["text"] = failed && !in.mention.empty() ? summary + " " + t(in.mention) : summary;
  if (!cfg.username.empty()) msg["username"] = t(cfg.username);
  if (!cfg.channel.empty()) msg["channel"] = t(cfg.channel);
  msg["attachments"] = json::array({{{"fallback", summary},
                                     {"color", failed ? kColorFailed : completed ? kColorCompleted : kColorOther},
                                     {"title", name + ": " + status},
                                     {"text", text},
                                     {"fields", fields}}});
  return msg;
}

}  // namespace

json render_message(const MessageInput& input, const WebhookConfig& config) {
  const Prepared p = prepare(input, config);
  Limits lim;
  auto fits = [&] { return dump_lenient(build_message(p.in, p.cfg, lim)).size() < kMaxMessageChars; };
  // Sets one knob to the largest value in [0, hi] that fits, the others held.
  // False if even 0 does not fit. The result was always checked, so it fits
  // even where size is not quite monotonic (line snapping, U+FFFD).
  auto largest = [&](size_t Limits::*knob, size_t hi) {
    lim.*knob = 0;
    if (!fits()) return false;
    size_t lo = 0;
    while (lo < hi) {
      size_t mid = lo + (hi - lo + 1) / 2;
      lim.*knob = mid;
      if (fits()) lo = mid;
      else hi = mid - 1;
    }
    lim.*knob = lo;
    return true;
  };
  auto done = [&] { return build_message(p.in, p.cfg, lim); };

  if (fits()) return done();
  // Every kept byte of the tail is at least one byte of output.
  const size_t tail_hi = std::min(p.in.log_tail.size(), kMaxMessageChars);
  const size_t tail_floor = std::min(p.in.log_tail.size(), kMinTailChars);
  if (largest(&Limits::tail, tail_hi) && lim.tail >= tail_floor) return done();
  lim.meta_value = kLongText;
  lim.text = kLongText;
  if (largest(&Limits::tail, tail_hi) && lim.tail >= tail_floor) return done();
  // Too many meta fields: drop the last ones, keeping room for the tail if possible.
  for (size_t reserve : {tail_floor, size_t{0}}) {
    lim.tail = reserve;
    if (largest(&Limits::meta_fields, p.in.meta.size())) {
      largest(&Limits::tail, tail_hi);
      return done();
    }
  }
  // Unreachable with every string capped, but the size promise must hold.
  return json{{"text", head(p.in.build, kLongText) + " " + head(p.in.status, kLongText)}};
}

}  // namespace rw::notify
