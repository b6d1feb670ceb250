#include "web/api.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "common/build_name.h"
#include "common/clock.h"
#include "common/files.h"
#include "state/store.h"
#include "web/pages.h"

namespace rw::web {
namespace {

using nlohmann::json;
using state::RunDir;
using state::RunState;

constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;
constexpr int kDefaultTail = 200;
constexpr int kMaxTail = 10'000;

Response error(int status, const std::string& message) {
  return {status, "application/json", json{{"error", message}, {"status", status}}.dump() + "\n"};
}

Response ok_json(const json& j) { return {200, "application/json", j.dump(2, ' ', false, json::error_handler_t::replace) + "\n"}; }

/// A query integer in [lo, hi], or the default; false if malformed.
bool query_int(const Request& r, const char* key, int lo, int hi, int fallback, int* out, std::string* why) {
  auto it = r.query.find(key);
  if (it == r.query.end()) {
    *out = fallback;
    return true;
  }
  const std::string& v = it->second;
  if (v.empty() || v.size() > 9 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    *why = std::string(key) + " must be a number";
    return false;
  }
  int n = std::atoi(v.c_str());
  if (n < lo || n > hi) {
    *why = std::string(key) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi);
    return false;
  }
  *out = n;
  return true;
}

std::string delivery(const RunDir& dir, const std::string& subrun) {
  if (path_exists(dir.posted_marker_for(subrun))) return "posted";
  auto n = dir.load_notification(subrun);
  return n ? n->status : "none";
}

/// The summary of one run the list and the pages show.
json summary(const RunDir& dir, const Result<RunState>& st) {
  json subs = json::array();
  for (const auto& key : dir.subrun_keys()) {
    auto s = dir.load_subrun(key);
    subs.push_back({{"key", key},
                    {"status", s ? to_string(s->status) : "UNKNOWN"},
                    {"message", delivery(dir, key)}});
  }
  if (!st) return {{"build", dir.build()}, {"status", "UNKNOWN"}, {"error", st.error().message}, {"subruns", subs}};
  size_t done = 0;
  for (const auto& s : st->stages) done += state::is_done(s.status) ? 1 : 0;
  const int64_t start = st->started_at_ms ? st->started_at_ms : st->created_at_ms;
  const int64_t end = st->ended_at_ms;
  return {{"build", st->build.empty() ? dir.build() : st->build},
          {"status", to_string(st->status)},
          {"progress", st->progress},
          {"stages_total", st->stages.size()},
          {"stages_done", done},
          {"created_at", st->created_at_ms ? json(format_time(st->created_at_ms)) : json(nullptr)},
          {"started_at", st->started_at_ms ? json(format_time(st->started_at_ms)) : json(nullptr)},
          {"ended_at", end ? json(format_time(end)) : json(nullptr)},
          {"duration_ms", start ? json((end ? end : now_ms()) - start) : json(nullptr)},
          {"decided_by", st->decided_by},
          {"reason", st->reason},
          {"message", delivery(dir, "")},
          {"categorized", st->categorized},
          {"subruns", subs}};
}

/// The run's full state as the API shows it: state.json with its journal
/// applied, plus sub-runs and message delivery.
json detail(const RunDir& dir, const RunState& st) {
  json j = json::parse(state::to_json(st), nullptr, false);
  json s = summary(dir, st);
  j["subruns"] = s["subruns"];
  j["message"] = s["message"];
  j["duration_ms"] = s["duration_ms"];
  j.erase("journal_seq");
  if (auto text = read_file(dir.testbed_file()))
    if (auto r = state::testbed_record_from_json(*text)) {
      json t = json::parse(state::to_json(*r), nullptr, false);
      t["updated_at"] = r->updated_at_ms ? json(format_time(r->updated_at_ms)) : json(nullptr);
      j["testbed"] = t;
    }
  return j;
}

/// What a run's summary is made of, as file identities: when none changed,
/// the summary parsed last time is still right (a list of 1000 runs then
/// costs a few stat calls per run, not 1000 JSON parses). A running run's
/// journal is read too: entries are written in place, so its size stays.
std::string summary_id(const RunDir& dir) {
  std::string id = file_identity(dir.state_file()) + "/" + dir.journal_identity() + "/" +
                   file_identity(dir.posted_marker()) + "/" + file_identity(dir.notification_file()) + "/" +
                   file_identity(dir.subruns_dir());
  if (id.back() != '-')
    for (const auto& key : dir.subrun_keys()) id += "/" + file_identity(dir.subrun_dir(key));
  return id;
}

struct CachedSummary {
  std::string id;
  json summary;
  std::string text;      ///< `summary` as compact JSON
  std::string status;
  int64_t start_ms = 0;  ///< to bring a running run's duration up to date
  bool ended = false;
};

/// A run's summary (its state and compact JSON), from the cache when its
/// files did not change; a running run's duration is brought up to date.
std::pair<std::string, std::string> cached_summary(const std::string& root, const std::string& build) {
  static std::mutex mu;
  static std::unordered_map<std::string, CachedSummary> cache;
  RunDir dir(root, build);
  const std::string key = root + "\n" + build;
  const std::string id = summary_id(dir);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(key); it != cache.end() && it->second.id == id) {
      const CachedSummary& c = it->second;
      if (c.ended || !c.start_ms) return {c.status, c.text};
      json j = c.summary;
      j["duration_ms"] = now_ms() - c.start_ms;
      return {c.status, j.dump(-1, ' ', false, json::error_handler_t::replace)};
    }
  }
  auto st = dir.load();
  CachedSummary c{id, summary(dir, st), "", "", 0, true};
  c.text = c.summary.dump(-1, ' ', false, json::error_handler_t::replace);
  c.status = c.summary.value("status", "UNKNOWN");
  if (st) {
    c.start_ms = st->started_at_ms ? st->started_at_ms : st->created_at_ms;
    c.ended = st->ended_at_ms != 0;
  }
  std::pair<std::string, std::string> out{c.status, c.text};
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() > 100'000) cache.clear();
  cache[key] = std::move(c);
  return out;
}

Response list_runs(const std::string& root, const Request& r) {
  int limit = 0, offset = 0;
  std::string why;
  if (!query_int(r, "limit", 1, kMaxLimit, kDefaultLimit, &limit, &why) ||
      !query_int(r, "offset", 0, 1'000'000, 0, &offset, &why))
    return error(400, why);
  std::vector<std::string> states;
  if (auto it = r.query.find("state"); it != r.query.end()) {
    std::stringstream ss(it->second);
    std::string s;
    while (std::getline(ss, s, ',')) {
      if (state::parse_run_status(s) == state::RunStatus::Unknown && s != "UNKNOWN")
        return error(400, "state: unknown run state '" + s.substr(0, 40) + "'");
      states.push_back(s);
    }
  }
  std::string prefix;
  if (auto it = r.query.find("prefix"); it != r.query.end()) {
    prefix = it->second;
    if (prefix.size() > 128 || !std::all_of(prefix.begin(), prefix.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        }))
      return error(400, "prefix: at most 128 of [A-Za-z0-9._-]");
  }
  // Built as text from the cached summaries: no JSON tree per request.
  std::string runs = "[";
  size_t total = 0, shown = 0;
  for (const auto& build : state::list_builds(root)) {
    if (build.rfind(prefix, 0) != 0) continue;
    auto [status, text] = cached_summary(root, build);
    if (!states.empty() && std::find(states.begin(), states.end(), status) == states.end()) continue;
    if (total++ < static_cast<size_t>(offset) || shown >= static_cast<size_t>(limit)) continue;
    runs += (shown++ ? "," : "") + text;
  }
  runs += "]";
  return {200, "application/json",
          "{\"limit\":" + std::to_string(limit) + ",\"offset\":" + std::to_string(offset) + ",\"runs\":" + runs +
              ",\"total\":" + std::to_string(total) + "}\n"};
}

Response history(const std::string& root, const std::string& build) {
  namespace fs = std::filesystem;
  json out = json::array();
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root + "/history/" + build, ec))
    if (e.is_directory(ec)) ids.push_back(e.path().filename().string());
  std::sort(ids.rbegin(), ids.rend());  // newest first
  for (const auto& id : ids) {
    auto text = read_file(root + "/history/" + build + "/" + id + "/state.json");
    auto st = text ? state::run_state_from_json(*text) : Result<RunState>(text.error());
    json j = {{"id", id}};
    if (st) {
      j["status"] = to_string(st->status);
      j["started_at"] = st->started_at_ms ? json(format_time(st->started_at_ms)) : json(nullptr);
      j["ended_at"] = st->ended_at_ms ? json(format_time(st->ended_at_ms)) : json(nullptr);
      j["decided_by"] = st->decided_by;
      j["reason"] = st->reason;
    } else {
      j["status"] = "UNKNOWN";
    }
    j["message"] = path_exists(root + "/history/" + build + "/" + id + "/posted.marker") ? "posted" : "none";
    out.push_back(j);
  }
  return ok_json({{"build", build}, {"history", out}});
}

Response log_tail(const RunDir& dir, const Request& r) {
  int tail = 0;
  std::string why;
  if (!query_int(r, "tail", 1, kMaxTail, kDefaultTail, &tail, &why)) return error(400, why);
  auto text = read_tail(dir.runner_log(), static_cast<size_t>(tail) * 512);
  std::string body = text ? *text : "";
  // The last `tail` lines of what was read.
  size_t pos = body.size();
  int lines = 0;
  if (!body.empty() && body.back() == '\n') --pos;
  while (pos > 0) {
    size_t nl = body.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    if (++lines == tail) {
      pos = nl + 1;
      break;
    }
    pos = nl;
  }
  return {200, "text/plain; charset=utf-8", body.substr(pos)};
}

}  // namespace

Response handle(const std::string& root, const Request& r) {
  if (r.method != "GET" && r.method != "HEAD") return error(405, "read-only: GET or HEAD only");
  if (r.path.size() > kMaxPath) return error(414, "path too long");
  if (r.query.size() > kMaxQueryArgs) return error(400, "too many query arguments");
  for (const auto& [k, v] : r.query)
    if (k.size() > 32 || v.size() > 512) return error(400, "query argument too long");
  if (r.path == "/" || r.path == "/index.html") return {200, "text/html; charset=utf-8", runs_page()};
  if (r.path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics(root)};
  if (r.path == "/api/v1/runs" || r.path == "/api/v1/runs/") return list_runs(root, r);
  if (r.path == "/api/v1/events") return {200, "text/event-stream", "", "*"};

  // /api/v1/runs/BUILD[/history|/log] and /runs/BUILD
  std::string rest;
  bool page = false;
  if (r.path.rfind("/api/v1/runs/", 0) == 0) rest = r.path.substr(13);
  else if (r.path.rfind("/runs/", 0) == 0) rest = r.path.substr(6), page = true;
  else return error(404, "no such path");
  std::string build = rest, what;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    build = rest.substr(0, slash);
    what = rest.substr(slash + 1);
  }
  if (auto s = validate_build_name(build); !s) return error(400, "bad build name");
  if (page) {
    if (!what.empty()) return error(404, "no such path");
    if (!RunDir(root, build).exists() && !path_exists(root + "/history/" + build)) return error(404, "no run named " + build);
    return {200, "text/html; charset=utf-8", run_page(build)};
  }
  if (what == "history") return history(root, build);
  RunDir dir(root, build);
  if (!dir.exists()) return error(404, "no run named " + build);
  if (what.empty()) {
    auto st = dir.load();
    if (!st) return ok_json(summary(dir, st));
    return ok_json(detail(dir, *st));
  }
  if (what == "log") return log_tail(dir, r);
  if (what == "events") return {200, "text/event-stream", "", build};
  return error(404, "no such path");
}

std::string snapshot(const std::string& root, const std::string& stream) {
  if (stream == "*") return list_runs(root, Request{"GET", "/api/v1/runs", {{"limit", "1000"}}}).body;
  RunDir dir(root, stream);
  auto st = dir.load();
  json run = st ? detail(dir, *st) : summary(dir, st);
  std::string log = log_tail(dir, Request{"GET", "", {{"tail", "100"}}}).body;
  return json{{"run", run}, {"log", log}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

/// What one run directory (current or kept in history) adds to /metrics.
struct Contribution {
  bool loaded = false;     ///< its state.json could be read
  std::string status;      ///< current runs only: counted by state
  bool active = false;
  double duration_s = -1;  ///< ended runs
  uint64_t retries = 0, posted = 0, failed_deliveries = 0;
  size_t guests_up = 0, guests_removed = 0;
};

Contribution contribution(const RunState& st, const std::string& dir_path) {
  namespace fs = std::filesystem;
  Contribution c;
  c.loaded = true;
  c.status = to_string(st.status);
  c.active = !state::is_terminal(st.status);
  if (st.ended_at_ms && st.started_at_ms && st.ended_at_ms >= st.started_at_ms)
    c.duration_s = double(st.ended_at_ms - st.started_at_ms) / 1000.0;
  for (const auto& stage : st.stages)
    for (const auto& t : stage.tasks) c.retries += t.attempts > 1 ? static_cast<uint64_t>(t.attempts - 1) : 0;
  std::vector<std::string> dirs{dir_path};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_path + "/subruns", ec)) dirs.push_back(e.path().string());
  for (const auto& d : dirs) {
    if (path_exists(d + "/posted.marker")) ++c.posted;
    else if (auto t = read_file(d + "/notification.json"); t && t->find("\"status\": \"failed\"") != std::string::npos)
      ++c.failed_deliveries;
  }
  if (auto text = read_file(dir_path + "/" + state::kTestbedRecordFile))
    if (auto r = state::testbed_record_from_json(*text)) {
      c.guests_up = state::guests_up(*r);
      c.guests_removed = r->guests.size() - c.guests_up;
    }
  return c;
}

/// A run directory's contribution, parsed again only when one of its files
/// changed (1000 runs in history then cost a few stat calls each).
Contribution cached_contribution(const std::string& dir_path, const std::string& id,
                                 const std::function<Result<RunState>()>& load) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::pair<std::string, Contribution>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = cache.find(dir_path); it != cache.end() && it->second.first == id) return it->second.second;
  }
  auto st = load();
  Contribution c;
  if (st) c = contribution(*st, dir_path);
  else c.status = "UNKNOWN";
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() > 200'000) cache.clear();
  cache[dir_path] = {id, c};
  return c;
}

}  // namespace

std::string metrics(const std::string& root) {
  namespace fs = std::filesystem;
  std::map<std::string, int> by_state;
  for (const char* s : {"PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TERMINATED", "HUNG", "UNKNOWN",
                        "FAILED_TO_START"})
    by_state[s] = 0;
  const std::vector<double> buckets = {60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400};
  std::vector<uint64_t> counts(buckets.size(), 0);
  uint64_t duration_count = 0;
  double duration_sum = 0;
  uint64_t posted = 0, failed_deliveries = 0, retries = 0;
  size_t guests_up = 0, guests_removed = 0;
  int active = 0;
  auto account = [&](const Contribution& c, bool current) {
    if (current) {
      by_state[c.status] += 1;
      if (c.active) ++active;
      guests_up += c.guests_up;
      guests_removed += c.guests_removed;
    }
    if (c.duration_s >= 0) {
      ++duration_count;
      duration_sum += c.duration_s;
      for (size_t i = 0; i < buckets.size(); ++i)
        if (c.duration_s <= buckets[i]) ++counts[i];
    }
    retries += c.retries;
    posted += c.posted;
    failed_deliveries += c.failed_deliveries;
  };
  for (const auto& build : state::list_builds(root)) {
    RunDir dir(root, build);
    const std::string id = summary_id(dir) + "/" + file_identity(dir.testbed_file());
    account(cached_contribution(dir.path(), id, [&] { return dir.load(); }), true);
  }
  std::error_code ec;
  for (const auto& b : fs::directory_iterator(root + "/history", ec))
    for (const auto& e : fs::directory_iterator(b.path(), ec)) {
      const std::string path = e.path().string();
      const std::string id = file_identity(path + "/state.json") + "/" + file_identity(path + "/posted.marker") + "/" +
                             file_identity(path + "/notification.json") + "/" + file_identity(path + "/subruns");
      Contribution c = cached_contribution(path, id, [&]() -> Result<RunState> {
        RW_ASSIGN(std::string text, read_file(path + "/state.json"));
        return state::run_state_from_json(text);
      });
      if (c.loaded) account(c, false);
    }

  std::ostringstream o;
  o << "# HELP runwarden_runs Runs in the state directory (the current run of each build) by state.\n"
       "# TYPE runwarden_runs gauge\n";
  for (const auto& [s, n] : by_state) o << "runwarden_runs{state=\"" << s << "\"} " << n << "\n";
  o << "# HELP runwarden_active_runs Runs PENDING or RUNNING.\n# TYPE runwarden_active_runs gauge\n"
    << "runwarden_active_runs " << active << "\n";
  o << "# HELP runwarden_run_duration_seconds Duration of the runs that ended (current and kept history).\n"
       "# TYPE runwarden_run_duration_seconds histogram\n";
  for (size_t i = 0; i < buckets.size(); ++i)
    o << "runwarden_run_duration_seconds_bucket{le=\"" << buckets[i] << "\"} " << counts[i] << "\n";
  o << "runwarden_run_duration_seconds_bucket{le=\"+Inf\"} " << duration_count << "\n"
    << "runwarden_run_duration_seconds_sum " << duration_sum << "\n"
    << "runwarden_run_duration_seconds_count " << duration_count << "\n";
  auto counter = [&o](const char* name, const char* help, uint64_t value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n" << name << " " << value << "\n";
  };
  counter("runwarden_messages_delivered_total", "Messages posted (run and sub-run), current and kept history.", posted);
  counter("runwarden_message_delivery_failures_total", "Messages whose delivery finally failed.", failed_deliveries);
  counter("runwarden_task_retries_total", "Task attempts beyond the first.", retries);
  o << "# HELP runwarden_testbed_guests Testbed guests of the current runs, as their runners recorded them.\n"
       "# TYPE runwarden_testbed_guests gauge\n"
    << "runwarden_testbed_guests{state=\"up\"} " << guests_up << "\n"
    << "runwarden_testbed_guests{state=\"removed\"} " << guests_removed << "\n";
  return o.str();
}

}  // namespace rw::web
