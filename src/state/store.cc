#include "state/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/files.h"
#include "common/scope_exit.h"

namespace rw::state {

using nlohmann::json;

namespace {

// nlohmann accessors throw on a wrong type; these never do, so a damaged
// file is an error message, not a crash.
template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else {
    return it->is_number_integer() ? it->template get<T>() : fallback;
  }
}

std::optional<int> get_opt_int(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int>();
}

void put_opt(json& j, const char* key, const std::optional<int>& v) {
  if (v) j[key] = *v;
  else j[key] = nullptr;
}

json task_to_json(const TaskState& t) {
  json j{{"name", t.name},          {"target", t.target},           {"status", to_string(t.status)},
         {"attempts", t.attempts},  {"reason", t.reason},           {"started_at_ms", t.started_at_ms},
         {"ended_at_ms", t.ended_at_ms}, {"retry_at_ms", t.retry_at_ms}, {"log", t.log}};
  put_opt(j, "exit_code", t.exit_code);
  put_opt(j, "signal", t.signal);
  return j;
}

Result<TaskState> task_from_json(const json& j) {
  if (!j.is_object()) return err("task entry is not an object");
  TaskState t;
  t.name = get_or<std::string>(j, "name", "");
  t.target = get_or<std::string>(j, "target", "");
  auto st = parse_step_status(get_or<std::string>(j, "status", ""));
  if (!st) return err("task " + t.name + ": unknown status");
  t.status = *st;
  t.attempts = get_or<int>(j, "attempts", 0);
  t.exit_code = get_opt_int(j, "exit_code");
  t.signal = get_opt_int(j, "signal");
  t.reason = get_or<std::string>(j, "reason", "");
  t.started_at_ms = get_or<int64_t>(j, "started_at_ms", 0);
  t.ended_at_ms = get_or<int64_t>(j, "ended_at_ms", 0);
  t.retry_at_ms = get_or<int64_t>(j, "retry_at_ms", 0);
  t.log = get_or<std::string>(j, "log", "");
  return t;
}

}  // namespace

std::string state_root() {
  const char* env = std::getenv("RUNWARDEN_STATE_DIR");
  return env && *env ? env : "/var/lib/runwarden";
}

namespace {

json stage_header_to_json(const StageState& st) {
  return {{"name", st.name},
          {"status", to_string(st.status)},
          {"attempts", st.attempts},
          {"started_at_ms", st.started_at_ms},
          {"ended_at_ms", st.ended_at_ms}};
}

Result<StageState> stage_header_from_json(const json& sj) {
  if (!sj.is_object()) return err("stage entry is not an object");
  StageState st;
  st.name = get_or<std::string>(sj, "name", "");
  auto ss = parse_step_status(get_or<std::string>(sj, "status", ""));
  if (!ss) return err("stage " + st.name + ": unknown status");
  st.status = *ss;
  st.attempts = get_or<int>(sj, "attempts", 0);
  st.started_at_ms = get_or<int64_t>(sj, "started_at_ms", 0);
  st.ended_at_ms = get_or<int64_t>(sj, "ended_at_ms", 0);
  return st;
}

std::string journal_line(const JournalEntry& e) {
  json stages = json::array();
  for (const auto& [i, h] : e.stages) {
    json sj = stage_header_to_json(h);
    sj["i"] = i;
    stages.push_back(std::move(sj));
  }
  json tasks = json::array();
  for (const auto& t : e.tasks) {
    json tj = task_to_json(t.state);
    tj["s"] = t.stage;
    tj["i"] = t.index;
    tasks.push_back(std::move(tj));
  }
  json j{{"seq", e.seq}, {"progress", e.progress}, {"stages", stages}, {"tasks", tasks}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<JournalEntry> journal_entry_from_json(const std::string& line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return err("not a JSON object");
  JournalEntry e;
  e.seq = get_or<uint64_t>(j, "seq", 0);
  if (e.seq == 0) return err("no seq");
  e.progress = get_or<std::string>(j, "progress", "");
  if (auto it = j.find("stages"); it != j.end() && it->is_array()) {
    for (const auto& sj : *it) {
      RW_ASSIGN(StageState h, stage_header_from_json(sj));
      e.stages.emplace_back(get_or<size_t>(sj, "i", SIZE_MAX), std::move(h));
    }
  }
  if (auto it = j.find("tasks"); it != j.end() && it->is_array()) {
    for (const auto& tj : *it) {
      RW_ASSIGN(TaskState t, task_from_json(tj));
      e.tasks.push_back({get_or<size_t>(tj, "s", SIZE_MAX), get_or<size_t>(tj, "i", SIZE_MAX), std::move(t)});
    }
  }
  return e;
}

}  // namespace

std::string to_json(const RunState& s) {
  json stages = json::array();
  for (const auto& st : s.stages) {
    json tasks = json::array();
    for (const auto& t : st.tasks) tasks.push_back(task_to_json(t));
    json sj = stage_header_to_json(st);
    sj["tasks"] = std::move(tasks);
    stages.push_back(std::move(sj));
  }
  json j{{"schema", s.schema},
         {"build", s.build},
         {"status", to_string(s.status)},
         {"decided_by", s.decided_by},
         {"reason", s.reason},
         {"created_at_ms", s.created_at_ms},
         {"started_at_ms", s.started_at_ms},
         {"ended_at_ms", s.ended_at_ms},
         {"hung_after_ms", s.hung_after_ms},
         {"subrun_grace_ms", s.subrun_grace_ms},
         {"categorized", s.categorized},
         {"testbed_only", s.testbed_only},
         {"host", s.host},
         {"workdir", s.workdir},
         {"plan_dir", s.plan_dir},
         {"plan_file", s.plan_file},
         {"runner_command", s.runner_command},
         {"template_command", s.template_command},
         {"meta", s.meta},
         {"mention_on_failure", s.mention_on_failure},
         {"runner_starts", s.runner_starts},
         {"progress", s.progress},
         {"journal_seq", s.journal_seq},
         {"stages", stages}};
  put_opt(j, "exit_code", s.exit_code);
  put_opt(j, "signal", s.signal);
  if (s.failure) {
    j["failure"] = {{"stage", s.failure->stage},
                    {"task", s.failure->task},
                    {"target", s.failure->target},
                    {"log", s.failure->log}};
  } else {
    j["failure"] = nullptr;
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<RunState> run_state_from_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return err("not valid JSON");
  if (!j.is_object()) return err("not a JSON object");
  RunState s;
  s.schema = get_or<int>(j, "schema", 0);
  if (s.schema != 1) return err("unsupported schema " + std::to_string(s.schema));
  s.build = get_or<std::string>(j, "build", "");
  // Strict: a status we do not know stays Unknown, and Unknown never posts.
  s.status = parse_run_status(get_or<std::string>(j, "status", ""));
  s.decided_by = get_or<std::string>(j, "decided_by", "");
  s.reason = get_or<std::string>(j, "reason", "");
  s.created_at_ms = get_or<int64_t>(j, "created_at_ms", 0);
  s.started_at_ms = get_or<int64_t>(j, "started_at_ms", 0);
  s.ended_at_ms = get_or<int64_t>(j, "ended_at_ms", 0);
  s.hung_after_ms = get_or<int64_t>(j, "hung_after_ms", 0);
  s.subrun_grace_ms = get_or<int64_t>(j, "subrun_grace_ms", 30'000);
  s.categorized = get_or<bool>(j, "categorized", false);
  s.testbed_only = get_or<bool>(j, "testbed_only", false);
  s.host = get_or<std::string>(j, "host", "");
  s.workdir = get_or<std::string>(j, "workdir", "");
  s.plan_dir = get_or<std::string>(j, "plan_dir", "");
  s.plan_file = get_or<std::string>(j, "plan_file", "");
  s.runner_command = get_or<std::string>(j, "runner_command", "");
  s.template_command = get_or<std::string>(j, "template_command", "");
  s.mention_on_failure = get_or<std::string>(j, "mention_on_failure", "");
  s.runner_starts = get_or<int>(j, "runner_starts", 0);
  s.progress = get_or<std::string>(j, "progress", "");
  s.journal_seq = get_or<uint64_t>(j, "journal_seq", 0);
  s.exit_code = get_opt_int(j, "exit_code");
  s.signal = get_opt_int(j, "signal");
  if (auto it = j.find("meta"); it != j.end() && it->is_object()) {
    for (auto& [k, v] : it->items())
      if (v.is_string()) s.meta[k] = v.get<std::string>();
  }
  if (auto it = j.find("failure"); it != j.end() && it->is_object()) {
    s.failure = FailureInfo{get_or<std::string>(*it, "stage", ""), get_or<std::string>(*it, "task", ""),
                            get_or<std::string>(*it, "target", ""), get_or<std::string>(*it, "log", "")};
  }
  if (auto it = j.find("stages"); it != j.end() && it->is_array()) {
    for (const auto& sj : *it) {
      RW_ASSIGN(StageState st, stage_header_from_json(sj));
      if (auto tj = sj.find("tasks"); tj != sj.end() && tj->is_array()) {
        for (const auto& t : *tj) {
          RW_ASSIGN(TaskState ts, task_from_json(t));
          st.tasks.push_back(std::move(ts));
        }
      }
      s.stages.push_back(std::move(st));
    }
  }
  return s;
}

std::string to_json(const SubrunState& s) {
  json j{{"key", s.key},
         {"status", to_string(s.status)},
         {"started_at_ms", s.started_at_ms},
         {"ended_at_ms", s.ended_at_ms},
         {"message", s.message},
         {"log", s.log}};
  put_opt(j, "exit_code", s.exit_code);
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<SubrunState> subrun_state_from_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return err("not a JSON object");
  SubrunState s;
  s.key = get_or<std::string>(j, "key", "");
  s.status = parse_run_status(get_or<std::string>(j, "status", ""));
  s.started_at_ms = get_or<int64_t>(j, "started_at_ms", 0);
  s.ended_at_ms = get_or<int64_t>(j, "ended_at_ms", 0);
  s.exit_code = get_opt_int(j, "exit_code");
  s.message = get_or<std::string>(j, "message", "");
  s.log = get_or<std::string>(j, "log", "");
  return s;
}

RunDir::RunDir(std::string root, std::string build)
    : root_(std::move(root)), build_(std::move(build)), path_(root_ + "/runs/" + build_) {}

bool RunDir::exists() const { return path_exists(path_); }

Result<RunState> RunDir::load() const {
  RW_ASSIGN(std::string text, read_file(state_file()));
  auto s = run_state_from_json(text);
  if (!s) return err(state_file() + ": " + s.error().message);
  // The journal's entries after the last full write. It is appended under
  // state.lock and synced per entry, so only its last line can be torn (a
  // crash mid-append): replay stops at the first line that does not parse.
  auto journal = read_file(journal_file());
  if (!journal) return s;
  // Written in place: the zeros after the entries are not part of them.
  journal->resize(journal_extent(*journal).end);
  size_t pos = 0;
  while (pos < journal->size()) {
    size_t nl = journal->find('\n', pos);
    if (nl == std::string::npos) break;  // torn last line
    auto e = journal_entry_from_json(journal->substr(pos, nl - pos));
    pos = nl + 1;
    if (!e) break;
    if (e->seq <= s->journal_seq) continue;  // already in state.json
    if (!apply_journal_entry(*s, *e)) break;
  }
  return s;
}

Status RunDir::save(const RunState& s) const { return write_file_atomic(state_file(), to_json(s)); }

JournalExtent journal_extent(std::string_view text) {
  JournalExtent x;
  x.end = std::min(text.size(), text.find('\0'));
  size_t nl = text.substr(0, x.end).rfind('\n');
  x.used = nl == std::string_view::npos ? 0 : nl + 1;
  size_t last = text.find_last_not_of('\0');
  x.dirty = last == std::string_view::npos ? 0 : last + 1;
  return x;
}

namespace {

/// Writes `data` at `offset` one page at most per call: the page cache then
/// holds the file in single pages (a write's length sets the size of the
/// folio it makes), so a later entry dirties, and a sync writes, one or two
/// pages, not a large folio around them.
Status pwrite_pages(int fd, std::string_view data, uint64_t offset, const std::string& what) {
  constexpr uint64_t kPage = 4096;
  while (!data.empty()) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(data.size(), kPage - offset % kPage));
    ssize_t n = ::pwrite(fd, data.data(), len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_err("write " + what, errno);
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return {};
}

Result<std::string> pread_all(int fd, uint64_t size, const std::string& what) {
  std::string text(size, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::pread(fd, text.data() + got, text.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_err("read " + what, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return text;
}

}  // namespace

Result<uint64_t> RunDir::append_journal(const JournalEntry& e) const {
  const std::string line = journal_line(e);
  std::lock_guard<std::mutex> guard(journal_->mu);
  JournalWriter& w = *journal_;
  // state.lock stays open between appends (no open and close, which the
  // watcher would be woken by, per transition); locked for this one.
  if (!w.lock.valid()) {
    const std::string lock_path = file("state.lock");
    w.lock = Fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!w.lock.valid()) return sys_err("open " + lock_path, errno);
  }
  while (::flock(w.lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return sys_err("lock " + file("state.lock"), errno);
  }
  ScopeExit unlock([&] { ::flock(w.lock.get(), LOCK_UN); });
  const std::string path = journal_file();
  // The file by its path (someone may have removed it), else our open one.
  // Only its identity and size are asked for: a query of its times makes
  // the kernel (multigrain timestamps) give the next write a fresh mtime,
  // and a changed mtime is an inode write in the sync (ext4 without a
  // journal); left alone, writes within one clock tick keep the same one.
  struct statx sx {};
  const unsigned mask = STATX_INO | STATX_SIZE;
  auto same_file = [&] {
    return ::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, mask, &sx) == 0 && sx.stx_ino == w.ino &&
           makedev(sx.stx_dev_major, sx.stx_dev_minor) == w.dev;
  };
  if (!w.fd.valid() || !same_file()) {
    // O_NOATIME: our reads (the check below) leave the inode alone too.
    w.fd = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOATIME, 0640));
    if (!w.fd.valid() && errno == EPERM)  // not the file's owner
      w.fd = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (!w.fd.valid()) return sys_err("open " + path, errno);
    if (::statx(w.fd.get(), "", AT_EMPTY_PATH, mask, &sx) != 0) return sys_err("stat " + path, errno);
    w.dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    w.ino = sx.stx_ino;
    w.known = false;
  }
  const uint64_t size = sx.stx_size;
  // Our last entry still ends the entries (a NUL after its newline) unless
  // the file changed under us: compacted (truncated), or another writer.
  if (w.known && size == w.capacity) {
    char b[2] = {};
    if (w.used >= size) w.known = false;
    else if (w.used == 0) w.known = ::pread(w.fd.get(), b, 1, 0) == 1 && b[0] == '\0';
    else w.known = ::pread(w.fd.get(), b, 2, static_cast<off_t>(w.used - 1)) == 2 && b[0] == '\n' && b[1] == '\0';
  }
  uint64_t dirty = 0;
  if (!w.known || size != w.capacity) {
    RW_ASSIGN(std::string text, pread_all(w.fd.get(), size, path));
    JournalExtent x = journal_extent(text);
    w.used = x.used;
    dirty = x.dirty;  // what a crash left past the entries is zeroed below
    w.capacity = size;
    w.known = true;
  }
  // The entry, zeros over what a torn entry left, and when the file is full,
  // a new chunk of zeros: one write, one sync.
  const uint64_t end = w.used + line.size();
  uint64_t capacity = w.capacity;
  if (end >= capacity) capacity = (end / kJournalChunk + 1) * kJournalChunk;
  std::string data = line;
  const uint64_t zero_to = std::max(dirty, capacity > w.capacity ? capacity : uint64_t(0));
  if (zero_to > end) data.append(zero_to - end, '\0');
  w.known = false;  // until the write and the sync succeed
  RW_TRY(pwrite_pages(w.fd.get(), data, w.used, path));
  if (::fdatasync(w.fd.get()) != 0) return sys_err("fdatasync " + path, errno);
  w.used = end;
  w.capacity = std::max(capacity, w.capacity);
  w.known = true;
  return w.used;
}

std::string RunDir::journal_identity() const {
  std::string id = file_identity(journal_file());
  struct stat st {};
  if (::stat(journal_file().c_str(), &st) != 0 || st.st_size == 0) return id;
  auto text = read_file(journal_file());
  return id + ":" + std::to_string(text ? journal_extent(*text).end : 0);
}

Result<Fd> RunDir::lock_state() const {
  std::string lock_path = file("state.lock");
  Fd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.valid()) return sys_err("open " + lock_path, errno);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return sys_err("lock " + lock_path, errno);
  }
  return fd;
}

Status RunDir::update(const std::function<bool(RunState&)>& change) const {
  Fd lock;
  RW_ASSIGN(lock, lock_state());
  // The journal is empty (size 0) right after a write here, and an append
  // makes it a chunk long: its file identity tells whether it has entries.
  auto file_id = [&]() -> std::string {
    std::string id = file_identity(state_file());
    return id == "-" ? "" : id + "/" + file_identity(journal_file());
  };
  std::lock_guard<std::mutex> guard(last_->mu);
  RunState s;
  std::string id = file_id();
  if (last_->state && !id.empty() && id == last_->id) {
    s = *last_->state;  // nobody else wrote since: skip the parse
  } else {
    RW_ASSIGN(s, load());
  }
  if (!change(s)) return {};
  RW_TRY(save(s));
  // state.json now holds every journal entry: start the journal afresh (by
  // path: a runner appends through its own open).
  if (::truncate(journal_file().c_str(), 0) != 0 && errno != ENOENT) return sys_err("truncate " + journal_file(), errno);
  last_->state = std::move(s);
  last_->id = file_id();
  return {};
}

Result<SubrunState> RunDir::load_subrun(const std::string& key) const {
  std::string path = subrun_dir(key) + "/state.json";
  RW_ASSIGN(std::string text, read_file(path));
  auto s = subrun_state_from_json(text);
  if (!s) return err(path + ": " + s.error().message);
  return s;
}

Status RunDir::save_subrun(const SubrunState& s) const {
  RW_TRY(make_dirs(subrun_dir(s.key), 0755));
  return write_file_atomic(subrun_dir(s.key) + "/state.json", to_json(s));
}

std::string to_json(const NotificationRecord& n) {
  json payload = json::parse(n.payload, nullptr, false);
  if (payload.is_discarded()) payload = n.payload;
  json j{{"subrun", n.subrun},
         {"status", n.status},
         {"attempts", n.attempts},
         {"last_http_status", n.last_http_status},
         {"last_error", n.last_error},
         {"response", n.response},
         {"updated_at_ms", n.updated_at_ms},
         {"payload", payload}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string RunDir::posted_marker_for(const std::string& subrun) const {
  return subrun.empty() ? posted_marker() : subrun_dir(subrun) + "/posted.marker";
}

std::string RunDir::notification_file_for(const std::string& subrun) const {
  return subrun.empty() ? notification_file() : subrun_dir(subrun) + "/notification.json";
}

Result<NotificationRecord> RunDir::load_notification(const std::string& subrun) const {
  std::string path = notification_file_for(subrun);
  RW_ASSIGN(std::string text, read_file(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return err(path + ": not a JSON object");
  NotificationRecord n;
  n.subrun = get_or<std::string>(j, "subrun", "");
  n.status = get_or<std::string>(j, "status", "");
  n.attempts = get_or<int>(j, "attempts", 0);
  n.last_http_status = get_or<int>(j, "last_http_status", 0);
  n.last_error = get_or<std::string>(j, "last_error", "");
  n.updated_at_ms = get_or<int64_t>(j, "updated_at_ms", 0);
  n.response = get_or<std::string>(j, "response", "");
  auto it = j.find("payload");
  if (it == j.end() || !it->is_object()) return err(path + ": no payload");
  n.payload = it->dump(-1, ' ', false, json::error_handler_t::replace);
  return n;
}

Status RunDir::save_notification(const NotificationRecord& n, bool durable) const {
  if (!n.subrun.empty()) RW_TRY(make_dirs(subrun_dir(n.subrun), 0755));
  return write_file_atomic(notification_file_for(n.subrun), to_json(n), 0640, durable);
}

namespace {
std::vector<std::string> list_dirs(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.is_directory(ec)) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> RunDir::subrun_keys() const { return list_dirs(subruns_dir()); }

std::vector<std::string> list_builds(const std::string& root) { return list_dirs(root + "/runs"); }

Status archive_run(const std::string& root, const std::string& build, int keep) {
  RunDir dir(root, build);
  if (!dir.exists()) return {};
  int64_t started = 0;
  if (auto s = dir.load(); s.ok()) started = s->created_at_ms;
  if (started == 0) {
    struct stat st {};
    if (::stat(dir.path().c_str(), &st) == 0) started = int64_t(st.st_mtime) * 1000;
  }
  std::string hist = root + "/history/" + build;
  RW_TRY(make_dirs(hist, 0750));
  std::string dest = hist + "/" + compact_time(started);
  for (int n = 1; path_exists(dest); ++n) dest = hist + "/" + compact_time(started) + "-" + std::to_string(n);
  if (::rename(dir.path().c_str(), dest.c_str()) != 0) return sys_err("archive " + dir.path(), errno);
  if (keep > 0) {
    auto entries = list_dirs(hist);  // names sort by time
    for (size_t i = 0; i + keep < entries.size(); ++i) {
      std::error_code ec;
      std::filesystem::remove_all(hist + "/" + entries[i], ec);
    }
  }
  return {};
}

Result<Fd> RunDir::lock_delivery(bool wait) const {
  // Read-only: closing it raises no IN_CLOSE_WRITE, so it does not wake the watcher.
  std::string path = file("delivery.lock");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.valid()) return sys_err("open " + path, errno);
  while (::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EWOULDBLOCK && !wait)
      return err("watcher@" + build_ + " is delivering a message of this run right now; try again when it is done",
                 3);
    if (errno != EINTR) return sys_err("lock " + path, errno);
  }
  return fd;
}

Result<BuildLock> BuildLock::acquire(const std::string& root, const std::string& build) {
  std::string dir = root + "/locks";
  RW_TRY(make_dirs(dir, 0750));
  std::string path = dir + "/" + build + ".lock";
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (!fd.valid()) return sys_err("open " + path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return err("build " + build + " is being started by another start-run (lock " + path + ")", 3);
    return sys_err("lock " + path, errno);
  }
  return BuildLock(std::move(fd));
}

}  // namespace rw::state
