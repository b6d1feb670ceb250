#include "state/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/build_name.h"
#include "common/fd.h"

#include <nlohmann/json.hpp>

namespace rw::state {

using nlohmann::json;

Result<Event> parse_event_line(const std::string& line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return err("not a JSON object");
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
  };
  Event e;
  e.type = str("type");
  e.message = str("message");
  if (e.type == "progress") return e;
  if (e.type != "subrun") return err("unknown event type '" + e.type + "' (expected subrun or progress)");
  e.key = str("key");
  if (auto v = validate_name(e.key, "sub-run key", kMaxKey); !v) return v.error();
  std::string status = str("status");
  e.status = parse_run_status(status);
  if (e.status != RunStatus::Running && e.status != RunStatus::Completed && e.status != RunStatus::Failed)
    return err("invalid sub-run status '" + status + "' (expected RUNNING, COMPLETED or FAILED)");
  if (auto it = j.find("exit_code"); it != j.end() && it->is_number_integer()) e.exit_code = it->get<int>();
  e.log = str("log");
  return e;
}

std::string format_event_line(const Event& e) {
  json j{{"type", e.type}};
  if (e.type == "subrun") {
    j["key"] = e.key;
    j["status"] = to_string(e.status);
    if (e.exit_code) j["exit_code"] = *e.exit_code;
    if (!e.log.empty()) j["log"] = e.log;
  }
  if (!e.message.empty()) j["message"] = e.message;
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

EventLineSplitter::Lines EventLineSplitter::feed(std::string_view chunk) {
  Lines out;
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    std::string_view piece = chunk.substr(0, nl);
    if (skipping_) {
      if (nl == std::string_view::npos) return out;
      skipping_ = false;
    } else if (partial_.size() + piece.size() > max_) {
      partial_.clear();
      ++out.dropped;
      skipping_ = nl == std::string_view::npos;
    } else if (nl == std::string_view::npos) {
      partial_.append(piece);
    } else {
      partial_.append(piece);
      out.lines.push_back(std::exchange(partial_, {}));
    }
    if (nl == std::string_view::npos) break;
    chunk.remove_prefix(nl + 1);
  }
  return out;
}

Status append_event(const std::string& file, const Event& e) {
  std::string line = format_event_line(e);
  if (auto back = parse_event_line(line); !back) return back.error();
  Fd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd.valid()) return sys_err("open " + file, errno);
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    return sys_err("write " + file, errno);
  return {};
}

}  // namespace rw::state
