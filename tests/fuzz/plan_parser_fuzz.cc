// libFuzzer target: parse_plan must never throw, crash or hang, whatever the
// bytes; a plan it accepts must hold the invariants the engine relies on, and
// every error line must start with "FILE:LINE:COLUMN: ".
// Build and run: scripts/fuzz.sh [SECONDS]

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>

#include "plan/describe.h"
#include "plan/parser.h"

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    std::abort();
  }
}

bool located(const std::string& line) {
  const std::string prefix = "fuzz.yaml:";
  if (line.compare(0, prefix.size(), prefix) != 0) return false;
  size_t i = prefix.size();
  for (int field = 0; field < 2; ++field) {
    size_t digits = 0;
    for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) ++digits;
    if (digits == 0 || i >= line.size() || line[i] != ':') return false;
    ++i;
  }
  return i < line.size() && line[i] == ' ';
}

void check_plan(const rw::plan::Plan& p) {
  using rw::plan::Plan;
  require(!p.stages.empty(), "a plan has stages");
  require(p.targets.count(Plan::kController) && p.targets.at(Plan::kController).local,
          "the controller exists and is local");
  for (const auto& [name, t] : p.targets) {
    require(t.local || !t.address.empty(), "an SSH target has an address");
    require(p.jumps(name).size() < p.targets.size(), "via chains end");
    for (const auto& jump : p.jumps(name)) require(p.targets.count(jump) == 1, "jumps are declared");
  }
  std::set<std::string> stage_names;
  for (const auto& s : p.stages) {
    require(stage_names.insert(s.name).second, "stage names are unique");
    if (!s.restart_from.empty()) require(stage_names.count(s.restart_from) && s.restart_from != s.name,
                                         "restart_from names an earlier stage");
    require(!s.tasks.empty(), "a stage has tasks");
    std::set<std::string> task_names;
    for (const auto& t : s.tasks) {
      require(task_names.insert(t.name).second, "task names are unique within a stage");
      require(!t.on.empty(), "a task runs somewhere");
      for (const auto& target : t.on) require(p.targets.count(target) == 1, "task targets are declared");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = rw::plan::parse_plan(text, "fuzz.yaml");
  if (r.ok()) {
    check_plan(*r);
    (void)rw::plan::describe(*r);
    (void)rw::plan::describe_json(*r).dump();  // throws on invalid UTF-8
  } else {
    std::istringstream lines(r.error().message);
    for (std::string line; std::getline(lines, line);) require(located(line), "error lines are located");
    (void)nlohmann::json(r.error().message).dump();  // messages are UTF-8, printable as JSON
  }
  return 0;
}
