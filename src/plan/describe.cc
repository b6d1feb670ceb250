#include "plan/describe.h"

#include <cstdint>
#include <utility>

namespace rw::plan {
namespace {

const char* to_string(RetryMode m) { return m == RetryMode::Stage ? "stage" : "task"; }

std::string stage_line(const Stage& s, size_t index, size_t count) {
  std::string out = "Stage " + std::to_string(index + 1) + "/" + std::to_string(count) + " " + s.name;
  out += " (parallel " + (s.parallel > 0 ? std::to_string(s.parallel) : std::string("unbounded"));
  out += ", retries " + std::to_string(s.retries);
  if (s.retry_delay.count() > 0) out += ", retry_delay " + short_duration(s.retry_delay);
  out += ", retry ";
  out += to_string(s.retry);
  if (!s.restart_from.empty()) out += ", restart_from " + s.restart_from;
  if (s.subruns) out += ", subruns";
  return out + ")";
}

std::string task_line(const Plan& p, const Task& t, const std::string& target) {
  std::string out = "  Task " + t.name + " [" + to_string(t.kind) + "] on " + target;
  auto jumps = p.jumps(target);
  if (!jumps.empty()) {
    out += " (via ";
    for (size_t i = 0; i < jumps.size(); ++i) out += (i ? " -> " : "") + jumps[i];
    out += ")";
  }
  if (t.timeout) out += ", timeout " + short_duration(*t.timeout);
  if (t.retries) out += ", retries " + std::to_string(*t.retries);
  return out;
}

nlohmann::json optional_ms(const std::optional<Millis>& d) {
  return d ? nlohmann::json(d->count()) : nlohmann::json(nullptr);
}

nlohmann::json task_detail(const Task& t) {
  switch (t.kind) {
    case TaskKind::Run: return {{"command", t.run}};
    case TaskKind::Script: return {{"script", t.script}};
    case TaskKind::Push:
      return {{"src", t.push.src},
              {"dst", t.push.dst},
              {"mode", t.push.mode ? nlohmann::json(*t.push.mode) : nlohmann::json(nullptr)}};
    case TaskKind::Fetch: return {{"src", t.fetch.src}, {"dst", t.fetch.dst}};
    case TaskKind::WaitFor:
      return {{"what", t.wait_for.what},
              {"port", t.wait_for.port},
              {"timeout_ms", t.wait_for.timeout.count()}};
  }
  return nlohmann::json::object();
}

}  // namespace

std::string short_duration(Millis d) {
  int64_t ms = d.count();
  if (ms <= 0) return "0s";
  static constexpr std::pair<int64_t, const char*> kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  std::string out;
  for (auto [size, unit] : kUnits) {
    if (ms >= size) {
      out += std::to_string(ms / size) + unit;
      ms %= size;
    }
  }
  return out;
}

std::string describe(const Plan& p) {
  std::string out = "Init\n";
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const Stage& s = p.stages[i];
    out += stage_line(s, i, p.stages.size()) + "\n";
    for (const Task& t : s.tasks) {
      for (const std::string& target : t.on) out += task_line(p, t, target) + "\n";
    }
  }
  return out + "End\n";
}

nlohmann::json describe_json(const Plan& p) {
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& [name, t] : p.targets) {
    targets.push_back({{"name", name},
                       {"local", t.local},
                       {"guest", t.guest},
                       {"address", t.address},
                       {"port", t.port},
                       {"user", t.user},
                       {"identity", t.identity},
                       {"known_hosts", t.known_hosts},
                       {"host_key", t.host_key_policy},
                       {"via", p.jumps(name)}});
  }
  nlohmann::json steps = nlohmann::json::array();
  steps.push_back({{"step", "init"}});
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const Stage& s = p.stages[i];
    steps.push_back({{"step", "stage"},
                     {"index", i + 1},
                     {"count", p.stages.size()},
                     {"name", s.name},
                     {"parallel", s.parallel},
                     {"retries", s.retries},
                     {"retry_delay_ms", s.retry_delay.count()},
                     {"retry", to_string(s.retry)},
                     {"restart_from", s.restart_from.empty() ? nlohmann::json(nullptr)
                                                             : nlohmann::json(s.restart_from)},
                     {"subruns", s.subruns}});
    for (const Task& t : s.tasks) {
      for (const std::string& target : t.on) {
        steps.push_back({{"step", "task"},
                         {"stage", s.name},
                         {"name", t.name},
                         {"kind", to_string(t.kind)},
                         {"target", target},
                         {"via", p.jumps(target)},
                         {"timeout_ms", optional_ms(t.timeout)},
                         {"retries", t.retries ? nlohmann::json(*t.retries) : nlohmann::json(nullptr)},
                         {"env", t.env},
                         {"workdir", t.workdir},
                         {"detail", task_detail(t)}});
      }
    }
  }
  steps.push_back({{"step", "end"}});
  return {{"source", p.source},
          {"version", p.version},
          {"workdir", p.workdir},
          {"template_command", p.template_command},
          {"template_timeout_ms", optional_ms(p.template_timeout)},
          {"hung_after_ms", optional_ms(p.hung_after)},
          {"meta", p.meta},
          {"mention_on_failure", p.mention_on_failure},
          {"targets", std::move(targets)},
          {"steps", std::move(steps)}};
}

}  // namespace rw::plan
