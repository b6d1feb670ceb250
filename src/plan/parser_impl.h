#pragma once
// Internal to plan/: the plan parser's class and the helpers its source
// files share (parser.cc for the run's own sections, parser_testbed.cc for
// the testbed: section). Nothing outside plan/ includes this.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/result.h"
#include "plan/plan.h"

namespace rw::plan::detail {

// cli::kUsage: a bad plan is bad input, nothing was touched. plan/ sits below
// cli/, so the number is repeated here rather than included.
constexpr int kBadInput = 2;
constexpr size_t kMaxStoredProblems = 10'000;

/// 1-based place in the plan text.
struct Pos {
  int line = 1;
  int column = 1;
};
Pos pos_of(const YAML::Mark& m);

/// One key: value pair of a YAML map, in file order.
struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};
const Entry* find(const std::vector<Entry>& entries, std::string_view key);
/// Where to point for a problem with a value.
YAML::Mark value_mark(const Entry& e);

/// User text quoted for a one-line message: clipped, control characters escaped.
std::string quoted(std::string_view s);
/// `msg` on one line and valid UTF-8: newlines and other control
/// characters escaped (and bytes above 0x7f, when the whole is not UTF-8), so
/// every line of a parse error starts with FILE:LINE:COLUMN and prints as
/// JSON whatever text a message carries (both found by the fuzzer).
std::string one_line(std::string_view msg);
/// "'text'", "a list", "a map" or "nothing", for messages.
std::string what_node(const YAML::Node& n);
/// "a, b, c" for at most 12 names; `total` counts names left out.
std::string join_names(const std::vector<std::string>& names, size_t total = 0);
/// Names of hosts, guests, stages, tasks and testbed objects.
bool valid_name(std::string_view s);
extern const char* const kNameRule;

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  Result<Plan> parse(const std::string& text);

 private:
  struct Problem {
    Pos pos;
    std::string text;
  };

  std::string where(Pos p) const {
    return file_ + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": ";
  }
  Error fail_now(Pos p, const std::string& msg) const { return err(where(p) + one_line(msg), kBadInput); }
  void problem(const YAML::Mark& m, std::string msg) {
    // Bounded so a huge broken plan costs memory in proportion to what is shown.
    if (problems_.size() < kMaxStoredProblems) problems_.push_back({pos_of(m), one_line(msg)});
    else ++dropped_;
  }
  Mark mark_of(const YAML::Mark& m) const {
    Pos p = pos_of(m);
    return Mark{file_, p.line, p.column};
  }
  Result<Plan> finish();

  std::optional<std::vector<Entry>> entries(const YAML::Node& map, const std::string& ctx,
                                            std::span<const std::string_view> allowed,
                                            bool any_key = false);
  std::optional<std::string> str(const Entry& e, const std::string& ctx, bool allow_empty = false);
  std::optional<int64_t> integer(const Entry& e, const std::string& ctx, int64_t lo, int64_t hi);
  std::optional<bool> boolean(const Entry& e, const std::string& ctx);
  std::optional<Millis> duration(const Entry& e, const std::string& ctx, bool positive);
  std::optional<std::string> name(const Entry& e, const std::string& ctx, const char* what);
  std::optional<std::string> choice(const Entry& e, const std::string& ctx,
                                    std::span<const std::string_view> allowed);
  std::optional<int> file_mode(const Entry& e, const std::string& ctx);
  std::optional<std::map<std::string, std::string>> string_map(const Entry& e, const std::string& ctx,
                                                                bool env_names);

  void parse_top(const YAML::Node& root);
  void parse_hosts(const Entry& e);
  void parse_guests(const Entry& e);
  bool declare(const Entry& e, const char* what);
  void ssh_settings(const std::vector<Entry>& f, Target& t, const std::string& ctx);
  void resolve_via();
  void parse_stages(const Entry& e);
  void parse_stage(const YAML::Node& n, size_t index, size_t count);
  std::optional<Task> parse_task(const YAML::Node& n, size_t index, const std::string& stage_ctx,
                                 std::map<std::string, Pos>& names);
  void parse_on(const Entry& e, const std::string& ctx, Task& t);
  // The testbed: section (parser_testbed.cc).
  void parse_testbed(const Entry& e);
  /// What a testbed: section has declared so far, for the guests and
  /// goldens that refer to it.
  struct TestbedScope {
    Testbed& tb;
    std::set<std::string>& images;
    std::set<std::string>& networks;  ///< declared, even with a bad subnet
    std::map<std::string, Subnet>& subnets;
    std::map<std::string, uint32_t>& next_host;  ///< the next address to reserve, per network
    std::map<std::string, std::set<uint32_t>> taken;  ///< host numbers reserved so far, per network
    std::set<std::string> goldens;
    size_t placed = 0;  ///< guest instances placed so far (round-robin over the hosts)
  };
  /// A guest group or a golden (`golden`): its settings, targets and addresses.
  void parse_testbed_machine(TestbedScope& sc, const Entry& ge, const std::vector<Entry>& settings,
                             const std::string& gctx, bool golden);
  /// A golden's setup: tasks run on its build VM only.
  void parse_golden_setup(const std::vector<Entry>& settings, TestbedGuest& g, const std::string& gctx);
  /// Each named entry of testbed map `key` whose name is valid and whose
  /// value is a map of `allowed` settings, given to `fn`; problems otherwise.
  void testbed_section(const std::vector<Entry>& top, const char* key, const char* singular, const char* example,
                       std::span<const std::string_view> allowed, bool non_empty,
                       const std::function<void(const Entry&, const std::vector<Entry>&, const std::string&)>& fn);
  /// Puts the testbed's generated stages around the user's.
  void add_testbed_stages();
  void parse_kind(const std::vector<Entry>& f, const YAML::Node& n, const std::string& ctx, Task& t);
  std::string declared_targets() const;

  std::string file_;
  Plan plan_;
  std::vector<Problem> problems_;
  std::map<std::string, Pos> declared_;        ///< hosts and guests as written
  std::vector<std::string> guest_order_;       ///< guests in file order
  std::map<std::string, YAML::Mark> via_mark_;  ///< where each guest's via is written
  std::map<std::string, Pos> stage_names_;
  std::vector<YAML::Mark> restart_marks_;
  std::string golden_setup_;  ///< the golden whose setup is being read: its VM is a valid target  ///< per stage, where restart_from is written
  size_t dropped_ = 0;  ///< problems past kMaxStoredProblems, counted only
  size_t instances_ = 0;
  bool stop_ = false;  ///< too much work: stop walking
};

}  // namespace rw::plan::detail
