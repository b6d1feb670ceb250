#include "plan/parser.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/build_name.h"
#include "common/duration.h"
#include "common/files.h"
#include "plan/parser_impl.h"

namespace rw::plan {
namespace detail {



Pos pos_of(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// ---------------------------------------------------------------------------
// Nesting pre-scan. yaml-cpp recurses once per nesting level while parsing
// (its own guard stops only at 2000 levels, deep enough to exhaust a small
// stack under sanitizers), so the text is scanned first. The scan estimates
// depth from block indentation, compact entries ("- - x") and flow brackets,
// skipping quoted strings, comments and block scalars. It may count a plain
// multi-line scalar's continuation as a level, which no real plan comes close
// to turning into 64, and anything it undercounts is still bounded by
// yaml-cpp's guard.
// ---------------------------------------------------------------------------

/// True when `rest` (what follows '|' or '>') is only block scalar indicators,
/// optionally followed by a comment.
bool is_block_scalar_header(std::string_view rest) {
  size_t i = 0;
  while (i < rest.size() && (rest[i] == '+' || rest[i] == '-' || (rest[i] >= '0' && rest[i] <= '9'))) ++i;
  if (i == rest.size()) return true;
  if (!is_blank(rest[i])) return false;
  while (i < rest.size() && is_blank(rest[i])) ++i;
  return i == rest.size() || rest[i] == '#';
}

std::optional<Pos> find_deep_nesting(std::string_view text, int limit) {
  std::vector<int> block;  // indentation columns of the open block nodes
  int flow = 0;            // open '[' / '{'
  char quote = 0;          // inside a '...' or "..." scalar
  bool in_block_scalar = false;
  int block_scalar_parent = 0;
  bool expect = true;     // the next non-blank character starts a node
  bool in_token = false;  // inside a plain scalar, anchor or tag
  bool property = false;  // ... and it is an anchor (&a) or a tag (!t)
  int line_no = 0;
  size_t start = 0;
  for (;;) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    size_t first = line.find_first_not_of(" \t");
    bool blank = first == std::string_view::npos;

    auto too_deep = [&](size_t col) {
      return static_cast<int>(block.size()) + flow > limit
                 ? std::optional<Pos>(Pos{line_no, static_cast<int>(col) + 1})
                 : std::nullopt;
    };

    bool skip_line = false;
    size_t i = 0;
    if (in_block_scalar) {
      if (blank || static_cast<int>(indent) > block_scalar_parent) skip_line = true;
      else in_block_scalar = false;
    }
    if (!skip_line && quote == 0 && flow == 0) {
      if (blank || line[first] == '#' || (indent == 0 && line[0] == '%')) {
        skip_line = true;
      } else if (indent == 0 && (line.starts_with("---") || line.starts_with("...")) &&
                 (line.size() == 3 || is_blank(line[3]))) {
        block.clear();
        i = 3;
      } else {
        while (!block.empty() && block.back() >= static_cast<int>(indent)) block.pop_back();
        block.push_back(static_cast<int>(indent));
        i = indent;
        // Compact nesting on one line: "- - x", "- key: v", "? key".
        while (i < line.size() && (line[i] == '-' || line[i] == '?') &&
               (i + 1 == line.size() || is_blank(line[i + 1]))) {
          ++i;
          while (i < line.size() && is_blank(line[i])) ++i;
          if (i < line.size() && line[i] != '#') block.push_back(static_cast<int>(i));
        }
        if (auto p = too_deep(i < line.size() ? i : indent)) return p;
      }
      expect = true;
      in_token = property = false;
    } else if (!skip_line) {
      // A line break inside a flow collection or a quoted scalar is a blank.
      if (in_token && property) expect = true;
      in_token = property = false;
    }

    for (; !skip_line && i < line.size(); ++i) {
      char c = line[i];
      if (quote == '"') {
        if (c == '\\') ++i;
        else if (c == '"') quote = 0;
        continue;
      }
      if (quote == '\'') {
        if (c == '\'') {
          if (i + 1 < line.size() && line[i + 1] == '\'') ++i;
          else quote = 0;
        }
        continue;
      }
      if (is_blank(c)) {
        if (in_token && property) expect = true;
        in_token = property = false;
        continue;
      }
      if (c == '#' && (i == 0 || is_blank(line[i - 1]))) break;
      if (expect) {
        expect = false;
        if (c == '"' || c == '\'') {
          quote = c;
          continue;
        }
        if (c == '[' || c == '{') {
          ++flow;
          if (auto p = too_deep(i)) return p;
          expect = true;
          continue;
        }
        if (flow == 0 && (c == '|' || c == '>') && is_block_scalar_header(line.substr(i + 1))) {
          in_block_scalar = true;
          // Content is indented past the innermost block node ("- run: |"
          // opens a map at the column after "- ").
          block_scalar_parent = block.empty() ? static_cast<int>(indent) : block.back();
          break;
        }
        if (c == '&' || c == '!') {
          in_token = property = true;
          continue;
        }
        if ((c == '-' || c == '?') && (i + 1 == line.size() || is_blank(line[i + 1]))) {
          expect = true;
          continue;
        }
      }
      if (flow > 0) {
        if (c == '[' || c == '{') {
          ++flow;
          if (auto p = too_deep(i)) return p;
          expect = true;
          in_token = false;
          continue;
        }
        if (c == ']' || c == '}') {
          --flow;
          in_token = false;
          continue;
        }
        if (c == ',' || c == ':') {
          expect = true;
          in_token = false;
          continue;
        }
      } else if (c == ':' && (i + 1 == line.size() || is_blank(line[i + 1]))) {
        expect = true;
        in_token = false;
        continue;
      }
      in_token = true;
    }
    if (end == text.size()) break;
    start = end + 1;
  }
  return std::nullopt;
}

/// Offset of the first byte where `text` stops being valid UTF-8, or npos.
size_t invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto b = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xe0) == 0xc0) {
      len = 2;
      cp = b & 0x1f;
    } else if ((b & 0xf0) == 0xe0) {
      len = 3;
      cp = b & 0x0f;
    } else if ((b & 0xf8) == 0xf0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return i;
    }
    if (i + len > text.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return std::string_view::npos;
}

/// Where the plan text stops being valid UTF-8 (YAML is Unicode text; a
/// stray byte would also make the JSON description of the plan unprintable).
std::optional<Pos> find_invalid_utf8(std::string_view text) {
  // A raw NUL is valid UTF-8 but not YAML; yaml-cpp garbles what follows it.
  size_t at = std::min(invalid_utf8_at(text), text.find('\0'));
  if (at == std::string_view::npos) return std::nullopt;
  size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
  line_start = (line_start == std::string_view::npos || at == 0) ? 0 : line_start + 1;
  auto line = static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
  return Pos{line + 1, static_cast<int>(at - line_start) + 1};  // columns in bytes, as yaml-cpp counts
}

/// Text a plan may carry: UTF-8 without NUL (escapes in double-quoted YAML
/// can produce either; a NUL would silently cut a command short).
bool plain_text(std::string_view s) {
  return invalid_utf8_at(s) == std::string_view::npos && s.find('\0') == std::string_view::npos;
}

// ---------------------------------------------------------------------------
// Helpers for messages.
// ---------------------------------------------------------------------------

std::string one_line(std::string_view msg) {
  static constexpr char kHex[] = "0123456789abcdef";
  // yaml-cpp may quote one byte of a multi-byte character ("unknown escape
  // character: \xd0"): when the whole is not UTF-8, every byte above 0x7f
  // is escaped too, so the message stays printable as JSON.
  const bool utf8 = invalid_utf8_at(msg) == std::string_view::npos;
  std::string out;
  out.reserve(msg.size());
  for (char ch : msg) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

/// User text quoted for a one-line message: clipped, control characters
/// escaped (a newline inside a message would break "every line starts with
/// FILE:LINE:COLUMN").
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 60;
  const bool utf8 = invalid_utf8_at(s) == std::string_view::npos;
  std::string out = "'";
  size_t cut = std::min(s.size(), kMax);
  while (utf8 && cut > 0 && cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
  for (size_t i = 0; i < cut; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (cut < s.size()) out += "...";
  return out + "'";
}

std::string what_node(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return quoted(n.Scalar());
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

std::string join(std::span<const std::string_view> items) {
  std::string out;
  for (auto s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

/// "a, b, c" for at most 12 names: enough to spot a typo, short enough to
/// read. `total` counts names the caller left out of `names`.
std::string join_names(const std::vector<std::string>& names, size_t total) {
  std::string out;
  total = std::max(total, names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == 12) return out + ", ... (" + std::to_string(total) + " in all)";
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// " did you mean 'x'?" when an allowed key is close to the unknown one.
std::string suggestion(std::string_view key, std::span<const std::string_view> allowed) {
  if (key.size() > 64) return "";
  std::string_view best;
  size_t best_d = 3;
  for (auto a : allowed) {
    size_t d = edit_distance(key, a);
    if (d < best_d && d < a.size()) {
      best = a;
      best_d = d;
    }
  }
  return best.empty() ? "" : " did you mean '" + std::string(best) + "'?";
}

/// Names of hosts, guests, stages, tasks and testbed objects become file
/// names, unit-visible strings, log paths and sub-run keys: the one name
/// rule (common/build_name.h), short enough that "task.target" is a key.
bool valid_name(std::string_view s) { return validate_name(std::string(s), "name", kMaxPlanName).ok(); }
const char* const kNameRule =
    "use a letter or digit, then letters, digits, '.', '_' and '-', with no '..' and no '.' at the end, "
    "at most 63 characters";

bool valid_env_name(std::string_view s) {
  auto head = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !head(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return head(c) || (c >= '0' && c <= '9'); });
}

// Keys allowed at each level, in the order the documentation lists them.
constexpr std::string_view kTopKeys[] = {"version",    "workdir", "template_command", "template_timeout",
                                         "hung_after", "meta",    "notify",           "hosts",
                                         "guests",     "testbed",          "stages"};
constexpr std::string_view kNotifyKeys[] = {"mention_on_failure"};
constexpr std::string_view kHostKeys[] = {"local", "address",     "port",    "user",
                                          "identity", "known_hosts", "host_key"};
constexpr std::string_view kGuestKeys[] = {"via",      "address",     "port",    "user",
                                           "identity", "known_hosts", "host_key"};
constexpr std::string_view kStageKeys[] = {"name",  "tasks",        "parallel", "retries",
                                           "retry_delay", "retry", "restart_from", "subruns"};
constexpr std::string_view kTaskKeys[] = {"name",     "on",      "run",     "script", "push",    "fetch",
                                          "wait_for", "snapshot", "timeout", "retries", "env", "workdir"};
constexpr std::string_view kTaskKinds[] = {"run", "script", "push", "fetch", "wait_for", "snapshot"};
constexpr std::string_view kSnapshotOps[] = {"create", "revert", "delete"};
constexpr std::string_view kPushKeys[] = {"src", "dst", "mode"};
constexpr std::string_view kFetchKeys[] = {"src", "dst"};
constexpr std::string_view kWaitForKeys[] = {"ssh", "tcp", "timeout"};

constexpr int kMaxRetries = 1000;
/// Jump hosts on the way to a guest. Nested virtualisation goes two or three
/// deep; the bound keeps chains (and the messages naming them) short.
constexpr size_t kMaxJumps = 8;
constexpr int kMaxParallel = 100'000;


const Entry* find(const std::vector<Entry>& entries, std::string_view key) {
  for (const auto& e : entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

/// Where to point for a problem with a value. A missing value (`key:` at the
/// end of a line) is placed by yaml-cpp on the next line; point at the key.
YAML::Mark value_mark(const Entry& e) {
  YAML::Mark v = e.value.Mark();
  YAML::Mark k = e.key_node.Mark();
  if (v.is_null() || (e.value.IsNull() && v.line != k.line)) return k;
  return v;
}

/// The name a stage or task map gives itself, for messages about its other
/// keys written before the name has been checked.
std::string peek_name(const YAML::Node& map) {
  if (!map.IsMap()) return "";
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node key = it->first;  // copies: `it->` yields a temporary
    YAML::Node value = it->second;
    if (key.IsScalar() && key.Scalar() == "name" && value.IsScalar() && valid_name(value.Scalar())) {
      return value.Scalar();
    }
  }
  return "";
}

/// Records where each YAML document starts; ignores everything else.
struct DocumentStarts : YAML::EventHandler {
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// ---------------------------------------------------------------------------
// The parser: walks the YAML tree once, fills the Plan and collects problems.
// ---------------------------------------------------------------------------


Result<Plan> Parser::parse(const std::string& text) {
  if (text.size() > kMaxPlanBytes) {
    return fail_now({}, "the plan is " + std::to_string(text.size()) + " bytes; plans are limited to " +
                            std::to_string(kMaxPlanBytes / (1024 * 1024)) + " MiB");
  }
  if (auto bad = find_invalid_utf8(text)) {
    return fail_now(*bad, "the plan is not valid UTF-8 here (or holds a NUL byte); plan files must be "
                          "UTF-8 text");
  }
  if (auto deep = find_deep_nesting(text, kMaxNesting)) {
    return fail_now(*deep, "the plan nests deeper than " + std::to_string(kMaxNesting) +
                               " levels here; a plan needs only a few (stages > tasks > push), "
                               "so this is probably not a plan file");
  }
  // yaml-cpp's LoadAll loops forever, allocating empty documents, on a stray
  // ',' at block level (found by the fuzzer). So: count at most two
  // documents with a bounded event pass, then Load the first one.
  YAML::Node root;
  std::vector<YAML::Mark> starts;
  try {
    std::istringstream in(text);
    YAML::Parser events(in);
    DocumentStarts handler;
    for (int i = 0; i < 2 && events.HandleNextDocument(handler); ++i) {
    }
    starts = std::move(handler.marks);
    if (starts.size() < 2) root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail_now(pos_of(e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return fail_now({}, std::string("cannot read the plan as YAML: ") + e.what());
  } catch (...) {
    return fail_now({}, "cannot read the plan as YAML");
  }
  if (starts.size() > 1) {
    auto at = static_cast<size_t>(std::max(starts[1].pos, 0));
    std::string_view rest = std::string_view(text).substr(std::min(at, text.size()));
    if (rest.starts_with("---")) {
      return fail_now(pos_of(starts[1]), "a second YAML document ('---') starts here; a plan file "
                                         "holds exactly one plan");
    }
    if (rest.starts_with(",")) {
      return fail_now(pos_of(starts[1]), "YAML syntax error: unexpected ',' outside [...] or {...}; "
                                         "quote the value if the comma belongs to it");
    }
    return fail_now(pos_of(starts[1]), "YAML syntax error: unexpected text after the end of the plan");
  }
  if (starts.empty() || root.IsNull()) {
    return fail_now({}, "the plan is empty; a plan needs at least 'version: 1' and a list of 'stages'");
  }
  try {
    parse_top(root);
  } catch (const std::exception& e) {
    // Nothing above is meant to throw; if yaml-cpp does anyway, say so plainly.
    return fail_now({}, std::string("internal error while reading the plan: ") + e.what());
  } catch (...) {
    return fail_now({}, "internal error while reading the plan");
  }
  return finish();
}

Result<Plan> Parser::finish() {
  if (problems_.empty()) return std::move(plan_);
  std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  // An aliased node walked twice reports the same problem twice: keep one.
  problems_.erase(std::unique(problems_.begin(), problems_.end(),
                              [](const Problem& a, const Problem& b) {
                                return a.pos.line == b.pos.line && a.pos.column == b.pos.column &&
                                       a.text == b.text;
                              }),
                  problems_.end());
  std::string msg;
  for (size_t i = 0; i < problems_.size() && i < kMaxErrors; ++i) {
    if (i) msg += "\n";
    msg += where(problems_[i].pos) + problems_[i].text;
  }
  if (problems_.size() + dropped_ > kMaxErrors) {
    Pos next = problems_.size() > kMaxErrors ? problems_[kMaxErrors].pos : problems_.back().pos;
    msg += "\n" + where(next) + "... and " + std::to_string(problems_.size() + dropped_ - kMaxErrors) +
           " more problems";
  }
  return err(msg, kBadInput);
}

std::optional<std::vector<Entry>> Parser::entries(const YAML::Node& map, const std::string& ctx,
                                                  std::span<const std::string_view> allowed,
                                                  bool any_key) {
  if (!map.IsMap()) return std::nullopt;
  std::vector<Entry> out;
  std::map<std::string, Pos> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    // Copies, not references: yaml-cpp's `it->` returns a temporary pair, so
    // a reference to its member dangles (found by the fuzzer under ASan).
    YAML::Node k = it->first;
    YAML::Node v = it->second;
    if (!k.IsScalar()) {
      problem(k.Mark(), ctx + ": keys must be plain names, got " + what_node(k));
      continue;
    }
    std::string key = k.Scalar();
    if (!plain_text(key)) {
      problem(k.Mark(), ctx + ": the key " + quoted(key) + " is not plain UTF-8 text (a NUL or an "
                                                           "invalid byte, perhaps from a \\x escape)");
      continue;
    }
    auto [prev, fresh] = seen.emplace(key, pos_of(k.Mark()));
    if (!fresh) {
      problem(k.Mark(), ctx + ": duplicate key " + quoted(key) + " (first at line " +
                            std::to_string(prev->second.line) + ", column " +
                            std::to_string(prev->second.column) + "); each key may appear once");
      continue;
    }
    if (!any_key && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      problem(k.Mark(), ctx + ": unknown key " + quoted(key) + ";" + suggestion(key, allowed) +
                            " allowed keys: " + join(allowed));
      continue;
    }
    out.push_back({std::move(key), k, v});
  }
  return out;
}

std::optional<std::string> Parser::str(const Entry& e, const std::string& ctx, bool allow_empty) {
  if (!e.value.IsScalar()) {
    problem(value_mark(e), ctx + ": '" + e.key + "' must be a string, got " + what_node(e.value));
    return std::nullopt;
  }
  if (!plain_text(e.value.Scalar())) {
    problem(value_mark(e), ctx + ": '" + e.key + "' is not plain UTF-8 text (a NUL or an invalid "
                                                 "byte, perhaps from a \\x escape): " + what_node(e.value));
    return std::nullopt;
  }
  if (!allow_empty && e.value.Scalar().empty()) {
    problem(value_mark(e), ctx + ": '" + e.key + "' must not be empty");
    return std::nullopt;
  }
  return e.value.Scalar();
}

std::optional<int64_t> Parser::integer(const Entry& e, const std::string& ctx, int64_t lo, int64_t hi) {
  auto bad = [&] {
    problem(value_mark(e), ctx + ": '" + e.key + "' must be an integer from " + std::to_string(lo) +
                               " to " + std::to_string(hi) + ", got " + what_node(e.value));
    return std::nullopt;
  };
  if (!e.value.IsScalar()) return bad();
  const std::string& s = e.value.Scalar();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return bad();
  return v;
}

std::optional<bool> Parser::boolean(const Entry& e, const std::string& ctx) {
  if (e.value.IsScalar()) {
    const std::string& s = e.value.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  problem(value_mark(e), ctx + ": '" + e.key + "' must be true or false, got " + what_node(e.value));
  return std::nullopt;
}

std::optional<Millis> Parser::duration(const Entry& e, const std::string& ctx, bool positive) {
  if (!e.value.IsScalar()) {
    problem(value_mark(e), ctx + ": '" + e.key + "' must be a duration such as 30s, 45m, 2h or 1h30m, got " +
                               what_node(e.value));
    return std::nullopt;
  }
  auto d = parse_duration(e.value.Scalar());
  if (!d) {
    std::string why = d.error().message;
    std::replace(why.begin(), why.end(), '\n', ' ');
    problem(value_mark(e), ctx + ": '" + e.key + "': " + why);
    return std::nullopt;
  }
  if (positive && d->count() == 0) {
    problem(value_mark(e), ctx + ": '" + e.key + "' must be longer than 0");
    return std::nullopt;
  }
  return *d;
}

std::optional<std::string> Parser::name(const Entry& e, const std::string& ctx, const char* what) {
  auto s = str(e, ctx);
  if (!s) return std::nullopt;
  if (!valid_name(*s)) {
    problem(value_mark(e), ctx + ": " + quoted(*s) + " is not a valid " + what + ": " + kNameRule);
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Parser::choice(const Entry& e, const std::string& ctx,
                                          std::span<const std::string_view> allowed) {
  if (e.value.IsScalar() &&
      std::find(allowed.begin(), allowed.end(), e.value.Scalar()) != allowed.end()) {
    return e.value.Scalar();
  }
  problem(value_mark(e), ctx + ": '" + e.key + "' must be one of " + join(allowed) + ", got " +
                             what_node(e.value));
  return std::nullopt;
}

std::optional<int> Parser::file_mode(const Entry& e, const std::string& ctx) {
  // Modes are octal whichever way they are written: "0755", 0755 and 755 all
  // mean rwxr-xr-x. Reading a plain 755 as decimal would silently set odd bits.
  auto bad = [&] {
    problem(value_mark(e), ctx + ": '" + e.key +
                               "' must be octal permission bits such as \"0644\" or \"0755\" "
                               "(at most 07777), got " + what_node(e.value));
    return std::nullopt;
  };
  if (!e.value.IsScalar()) return bad();
  std::string_view s = e.value.Scalar();
  if (s.starts_with("0o") || s.starts_with("0O")) s.remove_prefix(2);
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 8);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0 || v > 07777) return bad();
  return v;
}

std::optional<std::map<std::string, std::string>> Parser::string_map(const Entry& e,
                                                                      const std::string& ctx,
                                                                      bool env_names) {
  std::map<std::string, std::string> out;
  if (e.value.IsNull()) return out;
  auto f = entries(e.value, ctx + ": '" + e.key + "'", {}, true);
  if (!f) {
    problem(value_mark(e), ctx + ": '" + e.key + "' must be a map of names to values, e.g. {" +
                               (env_names ? "LANG: C.UTF-8" : "owner: qa") + "}, got " +
                               what_node(e.value));
    return std::nullopt;
  }
  bool ok = true;
  for (const auto& item : *f) {
    if (env_names && !valid_env_name(item.key)) {
      problem(item.key_node.Mark(), ctx + ": " + quoted(item.key) +
                                        " is not a valid environment variable name: use letters, "
                                        "digits and '_', not starting with a digit");
      ok = false;
      continue;
    }
    if (!item.value.IsScalar()) {
      problem(value_mark(item), ctx + ": '" + e.key + "': the value of " + quoted(item.key) +
                                    " must be a string or number, got " + what_node(item.value));
      ok = false;
      continue;
    }
    if (!plain_text(item.value.Scalar())) {
      problem(value_mark(item), ctx + ": '" + e.key + "': the value of " + quoted(item.key) +
                                    " is not plain UTF-8 text (a NUL or an invalid byte, perhaps from a \\x escape)");
      ok = false;
      continue;
    }
    out[item.key] = item.value.Scalar();
  }
  if (!ok) return std::nullopt;
  return out;
}

void Parser::parse_top(const YAML::Node& root) {
  plan_.source = file_;
  Target controller;
  controller.name = Plan::kController;
  controller.local = true;
  controller.mark = Mark{file_, 0, 0};  // implicit: not written in the file
  plan_.targets[Plan::kController] = controller;

  const std::string ctx = "plan";
  auto top = entries(root, ctx, kTopKeys);
  if (!top) {
    problem(root.Mark(), "a plan must be a map with the keys " + join(kTopKeys) + "; got " +
                             what_node(root));
    return;
  }
  if (const Entry* e = find(*top, "version")) {
    if (!e->value.IsScalar() || e->value.Scalar() != "1") {
      problem(value_mark(*e), "plan: 'version' must be 1 (the only plan format this runwarden "
                              "reads), got " + what_node(e->value));
    }
  }
  if (const Entry* e = find(*top, "workdir")) {
    if (auto v = str(*e, ctx)) plan_.workdir = *v;
  }
  if (const Entry* e = find(*top, "template_command")) {
    if (auto v = str(*e, ctx)) plan_.template_command = *v;
  }
  if (const Entry* e = find(*top, "template_timeout")) {
    if (auto v = duration(*e, ctx, true)) plan_.template_timeout = *v;
  }
  if (const Entry* e = find(*top, "hung_after")) {
    if (auto v = duration(*e, ctx, true)) plan_.hung_after = *v;
  }
  if (const Entry* e = find(*top, "meta")) {
    if (auto v = string_map(*e, ctx, false)) plan_.meta = std::move(*v);
  }
  if (const Entry* e = find(*top, "notify"); e && !e->value.IsNull()) {
    if (auto f = entries(e->value, "notify", kNotifyKeys)) {
      if (const Entry* m = find(*f, "mention_on_failure")) {
        if (auto v = str(*m, "notify")) plan_.mention_on_failure = *v;
      }
    } else {
      problem(value_mark(*e), "plan: 'notify' must be a map such as {mention_on_failure: \"@qa-oncall\"}, got " +
                                  what_node(e->value));
    }
  }
  if (const Entry* e = find(*top, "hosts")) parse_hosts(*e);
  if (const Entry* e = find(*top, "guests")) parse_guests(*e);
  if (const Entry* e = find(*top, "testbed")) parse_testbed(*e);
  resolve_via();
  if (const Entry* e = find(*top, "stages")) {
    parse_stages(*e);
    add_testbed_stages();
  } else {
    problem(root.Mark(), "plan: missing key 'stages': a plan needs a non-empty list of stages, "
                         "e.g. stages: [{name: test, tasks: [{name: hello, run: \"echo hello\"}]}]");
  }
}

/// Records a host or guest name; false (and a problem) if it is invalid or taken.
bool Parser::declare(const Entry& e, const char* what) {
  if (!valid_name(e.key)) {
    problem(e.key_node.Mark(), std::string(what) + " " + quoted(e.key) + ": not a valid name: " + kNameRule);
    return false;
  }
  auto [prev, fresh] = declared_.emplace(e.key, pos_of(e.key_node.Mark()));
  if (!fresh) {
    problem(e.key_node.Mark(), std::string(what) + " '" + e.key + "' is already declared at line " +
                                   std::to_string(prev->second.line) + ", column " +
                                   std::to_string(prev->second.column) +
                                   "; host and guest names must be unique");
    return false;
  }
  return true;
}

void Parser::ssh_settings(const std::vector<Entry>& f, Target& t, const std::string& ctx) {
  if (const Entry* e = find(f, "address")) {
    if (auto v = str(*e, ctx)) {
      if (v->find_first_of(" \t\n") != std::string::npos) {
        problem(value_mark(*e), ctx + ": 'address' must be a host name or IP address, got " + quoted(*v));
      } else {
        t.address = *v;
      }
    }
  }
  if (const Entry* e = find(f, "port")) {
    if (auto v = integer(*e, ctx, 1, 65535)) t.port = static_cast<int>(*v);
  }
  if (const Entry* e = find(f, "user")) {
    if (auto v = str(*e, ctx)) t.user = *v;
  }
  if (const Entry* e = find(f, "identity")) {
    if (auto v = str(*e, ctx)) t.identity = *v;
  }
  if (const Entry* e = find(f, "known_hosts")) {
    if (auto v = str(*e, ctx)) t.known_hosts = *v;
  }
  if (const Entry* e = find(f, "host_key")) {
    static constexpr std::string_view kPolicies[] = {"strict", "accept-new"};
    if (auto v = choice(*e, ctx, kPolicies)) t.host_key_policy = *v;
  }
}

void Parser::parse_hosts(const Entry& hosts) {
  if (hosts.value.IsNull()) return;
  auto list = entries(hosts.value, "hosts", {}, true);
  if (!list) {
    problem(value_mark(hosts), "plan: 'hosts' must be a map of host names to settings, e.g. "
                               "hv1: {address: 10.0.0.5}; got " + what_node(hosts.value));
    return;
  }
  for (const Entry& e : *list) {
    if (!declare(e, "host")) continue;
    const std::string ctx = "host '" + e.key + "'";
    Target t;
    t.name = e.key;
    t.mark = mark_of(e.key_node.Mark());
    // Registered even if its settings are wrong, so tasks naming it do not
    // pile up "undefined target" problems on top of the real one.
    auto f = entries(e.value, ctx, kHostKeys);
    if (!f) {
      problem(value_mark(e), ctx + " must be a map of settings such as {address: 10.0.0.5, user: root} "
                                   "or {local: true}; got " + what_node(e.value));
      t.local = e.key == Plan::kController;
      plan_.targets[t.name] = t;
      continue;
    }
    const Entry* local = find(*f, "local");
    if (local) t.local = boolean(*local, ctx).value_or(false);
    if (t.local) {
      for (const Entry& s : *f) {
        if (s.key != "local") {
          problem(s.key_node.Mark(), ctx + " is local (local: true), so it takes no SSH settings; "
                                           "remove '" + s.key + "'");
        }
      }
    } else if (e.key == Plan::kController) {
      problem((local ? value_mark(*local) : e.key_node.Mark()),
              "host 'controller' is the machine runwarden runs on and is always local: declare it "
              "as {local: true} or leave it out, and give an SSH host another name");
      t.local = true;
    } else {
      if (!find(*f, "address")) {
        problem(e.value.Mark(), ctx + ": missing key 'address': an SSH host needs an address "
                                      "(host name or IP), or local: true for this machine");
      }
      ssh_settings(*f, t, ctx);
    }
    plan_.targets[t.name] = t;
  }
}

void Parser::parse_guests(const Entry& guests) {
  if (guests.value.IsNull()) return;
  auto list = entries(guests.value, "guests", {}, true);
  if (!list) {
    problem(value_mark(guests), "plan: 'guests' must be a map of guest names to settings, e.g. "
                                "web1: {via: hv1, address: 192.168.122.10}; got " + what_node(guests.value));
    return;
  }
  for (const Entry& e : *list) {
    if (e.key == Plan::kController) {
      problem(e.key_node.Mark(), "guest 'controller': 'controller' is the machine runwarden runs "
                                 "on; give the guest another name");
      continue;
    }
    if (!declare(e, "guest")) continue;
    const std::string ctx = "guest '" + e.key + "'";
    Target t;
    t.name = e.key;
    t.guest = true;
    t.mark = mark_of(e.key_node.Mark());
    guest_order_.push_back(t.name);
    auto f = entries(e.value, ctx, kGuestKeys);
    if (!f) {
      problem(value_mark(e), ctx + " must be a map of settings such as {via: hv1, address: 192.168.122.10}; got " +
                                 what_node(e.value));
      plan_.targets[t.name] = t;
      continue;
    }
    for (const char* required : {"via", "address"}) {
      if (!find(*f, required)) {
        problem(e.value.Mark(), ctx + ": missing key '" + required +
                                    "': a guest needs via (the host or guest it is reached through) "
                                    "and address");
      }
    }
    if (const Entry* via = find(*f, "via")) {
      if (auto v = str(*via, ctx)) {
        t.via = *v;
        via_mark_[t.name] = value_mark(*via);
      }
    }
    ssh_settings(*f, t, ctx);
    plan_.targets[t.name] = t;
  }
}

std::string Parser::declared_targets() const {
  std::string out;
  size_t i = 0;
  for (const auto& [n, t] : plan_.targets) {
    if (i == 12) return out + ", ... (" + std::to_string(plan_.targets.size()) + " in all)";
    out += (i++ ? ", " : "") + n;
  }
  return out;
}

void Parser::resolve_via() {
  for (const std::string& g : guest_order_) {
    Target& t = plan_.targets[g];
    if (t.via.empty() || plan_.targets.count(t.via)) continue;
    problem(via_mark_[g], "guest '" + g + "': via " + quoted(t.via) +
                              " is not a declared host or guest; declared: " + declared_targets());
    t.via.clear();
  }
  // Follow each chain; a name met again on the current path closes a cycle.
  enum State { kNew, kOnPath, kDone };
  std::map<std::string, State> state;
  for (const std::string& g : guest_order_) {
    std::vector<std::string> path;
    std::string cur = g;
    while (plan_.targets[cur].guest && state[cur] == kNew) {
      state[cur] = kOnPath;
      path.push_back(cur);
      if (plan_.targets[cur].via.empty()) break;
      cur = plan_.targets[cur].via;
    }
    if (plan_.targets[cur].guest && state[cur] == kOnPath && !plan_.targets[cur].via.empty()) {
      auto from = std::find(path.begin(), path.end(), cur);
      if (from != path.end()) {
        std::string cycle;
        for (auto it = from; it != path.end(); ++it) cycle += *it + " -> ";
        cycle += cur;
        problem(via_mark_[cur], "guest '" + cur + "': via makes a cycle: " + cycle +
                                    "; a guest's via chain must end at a host");
        for (auto it = from; it != path.end(); ++it) plan_.targets[*it].via.clear();
      }
    }
    for (const auto& p : path) state[p] = kDone;
  }
  // A guest reached through a local host is reached directly.
  for (const std::string& g : guest_order_) {
    Target& t = plan_.targets[g];
    if (!t.via.empty() && plan_.targets[t.via].local) t.via.clear();
  }
  // Chains are acyclic now: count the jumps to each guest, each chain once.
  std::map<std::string, size_t> jumps;
  for (const std::string& g : guest_order_) {
    std::vector<std::string> path;
    std::string cur = g;
    size_t base = 0;
    for (;;) {
      if (auto known = jumps.find(cur); known != jumps.end()) {
        base = known->second;
        break;
      }
      const Target& t = plan_.targets[cur];
      if (t.via.empty()) break;  // a host, or a guest reached directly
      path.push_back(cur);
      cur = t.via;
    }
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      jumps[*it] = ++base;
      if (base == kMaxJumps + 1) {  // report where the chain first gets too long
        problem(via_mark_[*it], "guest '" + *it + "' is reached through more than " +
                                    std::to_string(kMaxJumps) + " jump hosts; at most " +
                                    std::to_string(kMaxJumps) + " are supported");
      }
    }
  }
}

void Parser::parse_stages(const Entry& e) {
  if (!e.value.IsSequence() || e.value.size() == 0) {
    problem(value_mark(e), "plan: 'stages' must be a non-empty list of stages, e.g. "
                           "- {name: test, tasks: [{name: hello, run: \"echo hello\"}]}; got " +
                               (e.value.IsSequence() ? std::string("an empty list") : what_node(e.value)));
    return;
  }
  size_t count = e.value.size();
  size_t position = 0;
  for (auto it = e.value.begin(); it != e.value.end() && !stop_; ++it) parse_stage(*it, position++, count);
  if (stop_) return;

  // restart_from names an earlier stage: checked once every name is known.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan_.stages.size(); ++i) index.emplace(plan_.stages[i].name, i);
  for (size_t i = 0; i < plan_.stages.size(); ++i) {
    const Stage& s = plan_.stages[i];
    if (s.restart_from.empty()) continue;
    auto found = index.find(s.restart_from);
    if (found != index.end() && found->second < i) continue;
    std::string allowed = "the first stage has no earlier stage to restart from";
    if (i > 0) {
      std::vector<std::string> earlier;
      for (size_t j = 0; j < i && j <= 12; ++j) earlier.push_back(plan_.stages[j].name);
      allowed = "it must name an earlier stage: " + join_names(earlier, i);
    }
    std::string ctx = (s.name.empty() ? "stage " + std::to_string(i + 1) : "stage '" + s.name + "'") +
                      ": restart_from " + quoted(s.restart_from);
    if (found == index.end()) {
      problem(restart_marks_[i], ctx + " is not a stage of this plan; " + allowed);
    } else if (found->second == i) {
      problem(restart_marks_[i], ctx + " names the stage itself; " + allowed);
    } else {
      problem(restart_marks_[i], ctx + " names a later stage; " + allowed);
    }
  }
}

void Parser::parse_stage(const YAML::Node& n, size_t index, size_t count) {
  std::string ctx = "stage " + std::to_string(index + 1) + " of " + std::to_string(count);
  if (std::string n0 = peek_name(n); !n0.empty()) ctx = "stage '" + n0 + "'";
  auto f = entries(n, ctx, kStageKeys);
  if (!f) {
    problem(n.Mark(), ctx + " must be a map with name and tasks, e.g. {name: test, tasks: [...]}; got " +
                          what_node(n));
    return;
  }
  Stage s;
  s.mark = mark_of(n.Mark());
  YAML::Mark restart_mark = n.Mark();
  if (const Entry* e = find(*f, "name")) {
    if (auto v = name(*e, ctx, "stage name")) {
      s.name = *v;
      ctx = "stage '" + s.name + "'";
      auto [prev, fresh] = stage_names_.emplace(s.name, pos_of(value_mark(*e)));
      if (!fresh) {
        problem(value_mark(*e), "stage name '" + s.name + "' is already used at line " +
                                    std::to_string(prev->second.line) + ", column " +
                                    std::to_string(prev->second.column) + "; stage names must be unique");
      }
    }
  } else {
    problem(n.Mark(), ctx + ": missing key 'name'; every stage needs a unique name");
  }
  if (const Entry* e = find(*f, "parallel")) {
    if (auto v = integer(*e, ctx, 1, kMaxParallel)) s.parallel = static_cast<int>(*v);
  }
  if (const Entry* e = find(*f, "retries")) {
    if (auto v = integer(*e, ctx, 0, kMaxRetries)) s.retries = static_cast<int>(*v);
  }
  if (const Entry* e = find(*f, "retry_delay")) {
    if (auto v = duration(*e, ctx, false)) s.retry_delay = *v;
  }
  if (const Entry* e = find(*f, "retry")) {
    static constexpr std::string_view kModes[] = {"task", "stage"};
    if (auto v = choice(*e, ctx, kModes)) s.retry = *v == "stage" ? RetryMode::Stage : RetryMode::Task;
  }
  if (const Entry* e = find(*f, "restart_from")) {
    if (auto v = str(*e, ctx)) {
      s.restart_from = *v;
      restart_mark = value_mark(*e);
    }
  }
  if (const Entry* e = find(*f, "subruns")) {
    if (auto v = boolean(*e, ctx)) s.subruns = *v;
  }
  if (const Entry* e = find(*f, "tasks")) {
    if (!e->value.IsSequence() || e->value.size() == 0) {
      problem(value_mark(*e), ctx + ": 'tasks' must be a non-empty list of tasks, e.g. "
                                    "- {name: hello, run: \"echo hello\"}; got " +
                                    (e->value.IsSequence() ? std::string("an empty list") : what_node(e->value)));
    } else {
      std::map<std::string, Pos> names;
      size_t k = 0;
      for (auto it = e->value.begin(); it != e->value.end() && !stop_; ++it) {
        if (auto t = parse_task(*it, k++, ctx, names)) s.tasks.push_back(std::move(*t));
      }
    }
  } else {
    problem(n.Mark(), ctx + ": missing key 'tasks'; every stage needs a non-empty list of tasks");
  }
  plan_.stages.push_back(std::move(s));
  restart_marks_.push_back(restart_mark);
}

std::optional<Task> Parser::parse_task(const YAML::Node& n, size_t index, const std::string& stage_ctx,
                                       std::map<std::string, Pos>& names) {
  std::string ctx = stage_ctx + ", task " + std::to_string(index + 1);
  if (std::string n0 = peek_name(n); !n0.empty()) ctx = stage_ctx + ", task '" + n0 + "'";
  auto f = entries(n, ctx, kTaskKeys);
  if (!f) {
    problem(n.Mark(), ctx + " must be a map such as {name: hello, on: hv1, run: \"echo hello\"}; got " +
                          what_node(n));
    return std::nullopt;
  }
  Task t;
  t.mark = mark_of(n.Mark());
  if (const Entry* e = find(*f, "name")) {
    if (auto v = name(*e, ctx, "task name")) {
      t.name = *v;
      ctx = stage_ctx + ", task '" + t.name + "'";
      auto [prev, fresh] = names.emplace(t.name, pos_of(value_mark(*e)));
      if (!fresh) {
        problem(value_mark(*e), ctx + ": the name is already used at line " +
                                    std::to_string(prev->second.line) + ", column " +
                                    std::to_string(prev->second.column) +
                                    "; task names must be unique within a stage");
      }
    }
  } else {
    problem(n.Mark(), ctx + ": missing key 'name'; every task needs a name, unique within its stage");
  }
  if (const Entry* e = find(*f, "on")) {
    parse_on(*e, ctx, t);
  } else {
    t.on = {Plan::kController};
  }
  parse_kind(*f, n, ctx, t);
  if (const Entry* e = find(*f, "timeout")) {
    if (auto v = duration(*e, ctx, true)) t.timeout = *v;
  }
  if (const Entry* e = find(*f, "retries")) {
    if (auto v = integer(*e, ctx, 0, kMaxRetries)) t.retries = static_cast<int>(*v);
  }
  if (const Entry* e = find(*f, "env")) {
    if (auto v = string_map(*e, ctx, true)) t.env = std::move(*v);
  }
  if (const Entry* e = find(*f, "workdir")) {
    if (auto v = str(*e, ctx)) t.workdir = *v;
  }
  instances_ += std::max<size_t>(t.on.size(), 1);
  if (instances_ > kMaxTaskInstances) {
    problem(n.Mark(), ctx + ": the plan has more than " + std::to_string(kMaxTaskInstances) +
                          " task instances (tasks times targets); split it into several runs");
    stop_ = true;
  }
  return t;
}

void Parser::parse_on(const Entry& e, const std::string& ctx, Task& t) {
  std::vector<YAML::Node> items;
  if (e.value.IsScalar()) {
    items.push_back(e.value);
  } else if (e.value.IsSequence() && e.value.size() > 0) {
    for (auto it = e.value.begin(); it != e.value.end(); ++it) items.push_back(*it);
  } else {
    problem(value_mark(e), ctx + ": 'on' must be a target name or a non-empty list of them, e.g. "
                               "on: hv1 or on: [hv1, web1]; got " +
                               (e.value.IsSequence() ? std::string("an empty list") : what_node(e.value)));
    return;
  }
  std::set<std::string> seen;
  for (const YAML::Node& item : items) {
    if (instances_ + t.on.size() > kMaxTaskInstances) break;  // parse_task reports it
    if (!item.IsScalar()) {
      problem(item.Mark(), ctx + ": each entry of 'on' must be a target name, got " + what_node(item));
      continue;
    }
    const std::string& target = item.Scalar();
    if (!plan_.targets.count(target)) {
      problem(item.Mark(), ctx + ": target " + quoted(target) +
                               " is not declared; declared targets: " + declared_targets());
      continue;
    }
    if (plan_.targets[target].golden && target != golden_setup_) {
      problem(item.Mark(), ctx + ": '" + target + "' is the build VM of golden '" + target +
                               "', which exists only while the golden is made: put these steps under "
                               "testbed: goldens: " + target + ": setup");
      continue;
    }
    if (!seen.insert(target).second) {
      problem(item.Mark(), ctx + ": target " + quoted(target) + " is listed twice in 'on'");
      continue;
    }
    t.on.push_back(target);
  }
}

void Parser::parse_kind(const std::vector<Entry>& f, const YAML::Node& n, const std::string& ctx, Task& t) {
  const std::string kinds = join(kTaskKinds);
  const Entry* kind = nullptr;
  for (const Entry& e : f) {
    if (std::find(std::begin(kTaskKinds), std::end(kTaskKinds), e.key) == std::end(kTaskKinds)) continue;
    if (kind) {
      problem(e.key_node.Mark(), ctx + ": has both '" + kind->key + "' and '" + e.key +
                                     "'; a task does exactly one of " + kinds + ": split it into two tasks");
      continue;
    }
    kind = &e;
  }
  if (!kind) {
    problem(n.Mark(), ctx + ": nothing to do: a task needs exactly one of " + kinds);
    return;
  }
  const Entry& e = *kind;
  if (e.key == "run") {
    t.kind = TaskKind::Run;
    if (auto v = str(e, ctx)) t.run = *v;
  } else if (e.key == "script") {
    t.kind = TaskKind::Script;
    if (auto v = str(e, ctx)) t.script = *v;
  } else if (e.key == "push") {
    t.kind = TaskKind::Push;
    auto p = entries(e.value, ctx + ": 'push'", kPushKeys);
    if (!p) {
      problem(value_mark(e), ctx + ": 'push' must be a map {src, dst[, mode]}, e.g. "
                                   "{src: ./suite, dst: /tmp/suite}; got " + what_node(e.value));
      return;
    }
    for (const char* required : {"src", "dst"}) {
      if (!find(*p, required)) {
        problem(e.value.Mark(), ctx + ": 'push' is missing '" + required + "'; push needs src (local) and dst (remote)");
      }
    }
    if (const Entry* s = find(*p, "src")) t.push.src = str(*s, ctx + ": push").value_or("");
    if (const Entry* d = find(*p, "dst")) t.push.dst = str(*d, ctx + ": push").value_or("");
    if (const Entry* m = find(*p, "mode")) t.push.mode = file_mode(*m, ctx + ": push");
  } else if (e.key == "snapshot") {
    t.kind = TaskKind::Snapshot;
    auto p = entries(e.value, ctx + ": 'snapshot'", kSnapshotOps);
    if (!p || p->size() != 1) {
      problem(value_mark(e), ctx + ": 'snapshot' must be a map with one of create, revert or delete and the "
                                   "snapshot's name, e.g. {create: clean}; got " + what_node(e.value));
      return;
    }
    t.snapshot_op = p->front().key;
    if (auto v = name(p->front(), ctx + ": snapshot", "snapshot name")) t.snapshot_name = *v;
    if (!plan_.testbed) {
      problem(e.key_node.Mark(), ctx + ": snapshots are of testbed guests, and the plan has no testbed: section");
      return;
    }
    for (const std::string& target : t.on) {
      const Target& tt = plan_.targets[target];
      if (!tt.local && !tt.testbed) {
        problem(e.key_node.Mark(), ctx + ": snapshot on '" + target + "', which is not a testbed guest: name "
                                         "testbed guests in 'on', or leave 'on' out for every guest at once");
        break;
      }
    }
  } else if (e.key == "fetch") {
    t.kind = TaskKind::Fetch;
    auto p = entries(e.value, ctx + ": 'fetch'", kFetchKeys);
    if (!p) {
      problem(value_mark(e), ctx + ": 'fetch' must be a map {src, dst}, e.g. "
                                   "{src: /var/log/syslog, dst: logs/syslog}; got " + what_node(e.value));
      return;
    }
    for (const char* required : {"src", "dst"}) {
      if (!find(*p, required)) {
        problem(e.value.Mark(), ctx + ": 'fetch' is missing '" + required +
                                    "'; fetch needs src (remote) and dst (under fetched/<target>/ in the run "
                                    "directory)");
      }
    }
    if (const Entry* s = find(*p, "src")) t.fetch.src = str(*s, ctx + ": fetch").value_or("");
    if (const Entry* d = find(*p, "dst")) {
      if (auto v = str(*d, ctx + ": fetch")) {
        // dst lands in the run directory's fetched/<target>/: never outside it.
        bool dotdot = false;
        for (size_t start = 0; start <= v->size();) {
          size_t slash = v->find('/', start);
          if (slash == std::string::npos) slash = v->size();
          if (v->compare(start, slash - start, "..") == 0) dotdot = true;
          start = slash + 1;
        }
        if ((*v)[0] == '/' || dotdot) {
          problem(value_mark(*d), ctx + ": fetch: 'dst' must be a relative path (it goes under "
                                        "fetched/<target>/ in the run directory), without a leading '/' or '..', got " +
                                        quoted(*v));
        } else {
          t.fetch.dst = *v;
        }
      }
    }
  } else {
    t.kind = TaskKind::WaitFor;
    auto p = entries(e.value, ctx + ": 'wait_for'", kWaitForKeys);
    if (!p) {
      problem(value_mark(e), ctx + ": 'wait_for' must be a map, {ssh: true} or {tcp: PORT}, "
                                   "optionally with timeout; got " + what_node(e.value));
      return;
    }
    const Entry* ssh = find(*p, "ssh");
    const Entry* tcp = find(*p, "tcp");
    if (ssh && tcp) {
      problem(tcp->key_node.Mark(), ctx + ": 'wait_for' has both 'ssh' and 'tcp'; wait for one of them");
    } else if (!ssh && !tcp) {
      problem(e.value.Mark(), ctx + ": 'wait_for' needs ssh: true or tcp: PORT");
    } else if (ssh) {
      t.wait_for.what = "ssh";
      if (auto v = boolean(*ssh, ctx + ": wait_for"); v && !*v) {
        problem(value_mark(*ssh), ctx + ": wait_for: 'ssh' can only be true (wait until the target "
                                        "accepts SSH logins); remove the task instead");
      }
      for (const std::string& target : t.on) {
        if (plan_.targets[target].local) {
          problem(value_mark(*ssh), ctx + ": wait_for ssh on '" + target +
                                        "', which is local: nothing to wait for; name the host or guest in 'on'");
          break;
        }
      }
    } else if (auto v = integer(*tcp, ctx + ": wait_for", 1, 65535)) {
      t.wait_for.what = "tcp";
      t.wait_for.port = static_cast<int>(*v);
    }
    if (const Entry* d = find(*p, "timeout")) {
      if (auto v = duration(*d, ctx + ": wait_for", true)) t.wait_for.timeout = *v;
    }
  }
}

}  // namespace detail

using detail::kBadInput;
using detail::Parser;

Result<Plan> parse_plan(const std::string& text, const std::string& file_name) {
  try {
    return Parser(file_name).parse(text);
  } catch (...) {
    // Only allocation can get here; a caller still gets an answer, not a crash.
    return err(file_name + ":1:1: out of memory while reading the plan", kBadInput);
  }
}

Result<Plan> load_plan(const std::string& path) {
  auto text = read_file(path);
  if (!text) return err("cannot read the plan file: " + text.error().message, kBadInput);
  return parse_plan(*text, path);
}

}  // namespace rw::plan
