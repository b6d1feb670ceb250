#include "plan/parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "plan/describe.h"

namespace rw::plan {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

Plan parse_ok(const std::string& text) {
  auto r = parse_plan(text, "plan.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Plan{};
}

std::string parse_error(const std::string& text) {
  auto r = parse_plan(text, "plan.yaml");
  EXPECT_FALSE(r.ok()) << "parsed, expected an error:\n" << text;
  return r.ok() ? "" : r.error().message;
}

/// A plan whose stages section is `stages` (indented as written), with a
/// host and a guest declared.
std::string with_stages(const std::string& stages) {
  return "hosts:\n"
         "  hv1: {address: 10.0.0.5}\n"
         "guests:\n"
         "  web1: {via: hv1, address: 192.168.122.10}\n"
         "stages:\n" +
         stages;
}

// The sketch from DESIGN.md, verbatim.
const char* const kDesignSketch = R"(version: 1
workdir: /srv/e2e
template_command: python3 ./make-templates.py --name e2e   # start-run runs it first, synchronously
hung_after: 45m
meta: {config_family: gold, integration: "pure with fc"}  # shown in the chat message
notify: {mention_on_failure: "@qa-oncall"}
hosts:
  controller: {local: true}
  hv1: {address: 10.0.0.5, user: root, identity: /etc/runwarden/keys/id_ed25519}
guests:
  web1: {via: hv1, address: 192.168.122.10, user: root}  # reached through hv1
stages:
  - name: prepare
    tasks:
      - {name: clean, on: [hv1, web1], run: "rm -rf /tmp/e2e && mkdir /tmp/e2e"}
      - {name: push-suite, on: web1, push: {src: ./suite, dst: /tmp/e2e/suite}}
  - name: test
    subruns: true          # categorized: every task is a sub-run with its own message
    parallel: 1
    retries: 1
    tasks:
      - {name: linux, on: controller, run: "./run-suite --group linux", timeout: 2h}
      - {name: windows, on: controller, run: "./run-suite --group windows", timeout: 2h}
)";

TEST(PlanParser, ParserReadsTheDesignSketch) {
  Plan p = parse_ok(kDesignSketch);
  EXPECT_EQ(p.version, 1);
  EXPECT_EQ(p.source, "plan.yaml");
  EXPECT_EQ(p.workdir, "/srv/e2e");
  EXPECT_EQ(p.template_command, "python3 ./make-templates.py --name e2e");
  ASSERT_TRUE(p.hung_after);
  EXPECT_EQ(*p.hung_after, std::chrono::minutes(45));
  EXPECT_EQ(p.meta.at("config_family"), "gold");
  EXPECT_EQ(p.meta.at("integration"), "pure with fc");
  EXPECT_EQ(p.mention_on_failure, "@qa-oncall");

  ASSERT_EQ(p.targets.size(), 3u);
  EXPECT_TRUE(p.targets.at("controller").local);
  const Target& hv1 = p.targets.at("hv1");
  EXPECT_FALSE(hv1.local);
  EXPECT_FALSE(hv1.guest);
  EXPECT_EQ(hv1.address, "10.0.0.5");
  EXPECT_EQ(hv1.port, 22);
  EXPECT_EQ(hv1.user, "root");
  EXPECT_EQ(hv1.identity, "/etc/runwarden/keys/id_ed25519");
  const Target& web1 = p.targets.at("web1");
  EXPECT_TRUE(web1.guest);
  EXPECT_EQ(web1.via, "hv1");
  EXPECT_EQ(web1.address, "192.168.122.10");

  ASSERT_EQ(p.stages.size(), 2u);
  const Stage& prepare = p.stages[0];
  EXPECT_EQ(prepare.name, "prepare");
  EXPECT_EQ(prepare.parallel, 0);
  EXPECT_FALSE(prepare.subruns);
  ASSERT_EQ(prepare.tasks.size(), 2u);
  EXPECT_EQ(prepare.tasks[0].name, "clean");
  EXPECT_THAT(prepare.tasks[0].on, ElementsAre("hv1", "web1"));
  EXPECT_EQ(prepare.tasks[0].kind, TaskKind::Run);
  EXPECT_EQ(prepare.tasks[0].run, "rm -rf /tmp/e2e && mkdir /tmp/e2e");
  EXPECT_EQ(prepare.tasks[1].kind, TaskKind::Push);
  EXPECT_THAT(prepare.tasks[1].on, ElementsAre("web1"));
  EXPECT_EQ(prepare.tasks[1].push.src, "./suite");
  EXPECT_EQ(prepare.tasks[1].push.dst, "/tmp/e2e/suite");
  EXPECT_FALSE(prepare.tasks[1].push.mode);

  const Stage& test = p.stages[1];
  EXPECT_EQ(test.name, "test");
  EXPECT_TRUE(test.subruns);
  EXPECT_EQ(test.parallel, 1);
  EXPECT_EQ(test.retries, 1);
  ASSERT_EQ(test.tasks.size(), 2u);
  EXPECT_EQ(test.tasks[1].name, "windows");
  EXPECT_THAT(test.tasks[1].on, ElementsAre("controller"));
  ASSERT_TRUE(test.tasks[1].timeout);
  EXPECT_EQ(*test.tasks[1].timeout, std::chrono::hours(2));
}

TEST(PlanParser, ParserKeepsMarksForTargetsStagesAndTasks) {
  Plan p = parse_ok(kDesignSketch);
  EXPECT_EQ(p.targets.at("hv1").mark.str(), "plan.yaml:9:3");
  EXPECT_EQ(p.targets.at("web1").mark.str(), "plan.yaml:11:3");
  EXPECT_EQ(p.stages[1].mark.str(), "plan.yaml:17:5");
  EXPECT_EQ(p.stages[0].tasks[1].mark.str(), "plan.yaml:16:9");
}

TEST(PlanParser, ParserFillsDefaults) {
  Plan p = parse_ok("stages:\n  - name: only\n    tasks:\n      - name: t\n        run: make\n");
  EXPECT_EQ(p.version, 1);
  EXPECT_FALSE(p.hung_after);
  ASSERT_EQ(p.targets.count("controller"), 1u);
  EXPECT_TRUE(p.targets.at("controller").local);
  const Stage& s = p.stages.at(0);
  EXPECT_EQ(s.parallel, 0);
  EXPECT_EQ(s.retries, 0);
  EXPECT_EQ(s.retry_delay, Millis(0));
  EXPECT_EQ(s.retry, RetryMode::Task);
  EXPECT_EQ(s.restart_from, "");
  EXPECT_FALSE(s.subruns);
  const Task& t = s.tasks.at(0);
  EXPECT_THAT(t.on, ElementsAre("controller"));
  EXPECT_FALSE(t.timeout);
  EXPECT_FALSE(t.retries);
  EXPECT_TRUE(t.env.empty());

  Plan q = parse_ok("hosts:\n  h: {address: h.example}\nstages: [{name: s, tasks: [{name: t, on: h, run: x}]}]\n");
  const Target& h = q.targets.at("h");
  EXPECT_EQ(h.port, 22);
  EXPECT_EQ(h.user, "root");
  EXPECT_EQ(h.host_key_policy, "strict");
  EXPECT_EQ(h.identity, "");
}

TEST(PlanParser, ParserReadsBlockAndFlowStylesAlike) {
  const std::string block = with_stages(R"(  - name: s
    parallel: 2
    retries: 3
    retry_delay: 30s
    retry: stage
    tasks:
      - name: a
        on:
          - hv1
          - web1
        run: echo a
        timeout: 1h30m
        retries: 0
        env:
          LANG: C.UTF-8
        workdir: /tmp
      - name: b
        push:
          src: ./x
          dst: /tmp/x
          mode: "0600"
)");
  const std::string flow = with_stages(
      "  - {name: s, parallel: 2, retries: 3, retry_delay: 30s, retry: stage, tasks: [\n"
      "      {name: a, on: [hv1, web1], run: echo a, timeout: 1h30m, retries: 0, env: {LANG: C.UTF-8}, workdir: /tmp},\n"
      "      {name: b, push: {src: ./x, dst: /tmp/x, mode: \"0600\"}}]}\n");
  Plan a = parse_ok(block);
  Plan b = parse_ok(flow);
  EXPECT_EQ(describe_json(a)["steps"], describe_json(b)["steps"]);
  const Stage& s = a.stages.at(0);
  EXPECT_EQ(s.parallel, 2);
  EXPECT_EQ(s.retries, 3);
  EXPECT_EQ(s.retry_delay, std::chrono::seconds(30));
  EXPECT_EQ(s.retry, RetryMode::Stage);
  EXPECT_EQ(*s.tasks.at(0).timeout, std::chrono::minutes(90));
  EXPECT_EQ(s.tasks.at(0).retries, 0);
  EXPECT_EQ(s.tasks.at(0).env.at("LANG"), "C.UTF-8");
  EXPECT_EQ(s.tasks.at(0).workdir, "/tmp");
  EXPECT_EQ(s.tasks.at(1).push.mode, 0600);
}

TEST(PlanParser, ParserAcceptsOnAsAStringOrAList) {
  Plan p = parse_ok(with_stages(
      "  - name: s\n"
      "    tasks:\n"
      "      - {name: one, on: web1, run: x}\n"
      "      - {name: list, on: [hv1, web1], run: x}\n"
      "      - {name: single, on: [hv1], run: x}\n"));
  EXPECT_THAT(p.stages[0].tasks[0].on, ElementsAre("web1"));
  EXPECT_THAT(p.stages[0].tasks[1].on, ElementsAre("hv1", "web1"));
  EXPECT_THAT(p.stages[0].tasks[2].on, ElementsAre("hv1"));
}

TEST(PlanParser, ParserReadsEveryTaskKind) {
  Plan p = parse_ok(with_stages(R"(  - name: s
    tasks:
      - {name: r, run: make}
      - {name: sc, on: hv1, script: ./setup.sh}
      - {name: pu, on: hv1, push: {src: a, dst: /b, mode: 0755}}
      - {name: fe, on: hv1, fetch: {src: /var/log/syslog, dst: logs/syslog}}
      - {name: ws, on: web1, wait_for: {ssh: true, timeout: 10m}}
      - {name: wt, on: web1, wait_for: {tcp: 8080}}
)"));
  const auto& t = p.stages.at(0).tasks;
  ASSERT_EQ(t.size(), 6u);
  EXPECT_EQ(t[0].kind, TaskKind::Run);
  EXPECT_EQ(t[1].kind, TaskKind::Script);
  EXPECT_EQ(t[1].script, "./setup.sh");
  EXPECT_EQ(t[2].kind, TaskKind::Push);
  EXPECT_EQ(t[2].push.mode, 0755);
  EXPECT_EQ(t[3].kind, TaskKind::Fetch);
  EXPECT_EQ(t[3].fetch.src, "/var/log/syslog");
  EXPECT_EQ(t[3].fetch.dst, "logs/syslog");
  EXPECT_EQ(t[4].kind, TaskKind::WaitFor);
  EXPECT_EQ(t[4].wait_for.what, "ssh");
  EXPECT_EQ(t[4].wait_for.timeout, std::chrono::minutes(10));
  EXPECT_EQ(t[5].wait_for.what, "tcp");
  EXPECT_EQ(t[5].wait_for.port, 8080);
}

TEST(PlanParser, ParserReadsPushModesAsOctalWhicheverWayTheyAreWritten) {
  for (const char* mode : {"\"0755\"", "0755", "755", "0o755", "'755'"}) {
    Plan p = parse_ok(std::string("stages: [{name: s, tasks: [{name: t, push: {src: a, dst: b, mode: ") +
                      mode + "}}]}]\n");
    EXPECT_EQ(p.stages.at(0).tasks.at(0).push.mode, 0755) << mode;
  }
  std::string msg = parse_error("stages: [{name: s, tasks: [{name: t, push: {src: a, dst: b, mode: 0799}}]}]\n");
  EXPECT_THAT(msg, AllOf(StartsWith("plan.yaml:1:67: "), HasSubstr("octal"), HasSubstr("'0799'")));
}

TEST(PlanParser, ParserResolvesJumpChainsThroughGuests) {
  Plan p = parse_ok(R"(hosts:
  hv1: {address: 10.0.0.5}
guests:
  outer: {via: hv1, address: 192.168.122.10}
  inner: {via: outer, address: 10.10.0.2}
  direct: {via: controller, address: 192.168.0.7}
stages: [{name: s, tasks: [{name: t, on: inner, run: x}]}]
)");
  EXPECT_THAT(p.jumps("inner"), ElementsAre("hv1", "outer"));
  EXPECT_THAT(p.jumps("outer"), ElementsAre("hv1"));
  EXPECT_TRUE(p.jumps("hv1").empty());
  // A guest reached through a local host is reached directly.
  EXPECT_EQ(p.targets.at("direct").via, "");
}

TEST(PlanParser, ParserAcceptsTheControllerDeclaredAsLocal) {
  Plan p = parse_ok("hosts: {controller: {local: true}, bench: {local: true}}\n"
                    "stages: [{name: s, tasks: [{name: t, on: bench, run: x}]}]\n");
  EXPECT_TRUE(p.targets.at("controller").local);
  EXPECT_TRUE(p.targets.at("bench").local);
}

TEST(PlanParser, ParserAcceptsRestartFromAnEarlierStage) {
  Plan p = parse_ok("stages:\n"
                    "  - {name: deploy, tasks: [{name: t, run: x}]}\n"
                    "  - {name: test, restart_from: deploy, retries: 2, tasks: [{name: t, run: x}]}\n");
  EXPECT_EQ(p.stages.at(1).restart_from, "deploy");
}

TEST(PlanParser, ParserTreatsEmptyOptionalSectionsAsAbsent) {
  Plan p = parse_ok("hosts:\nguests:\nmeta:\nnotify:\nstages: [{name: s, tasks: [{name: t, run: x, env: }]}]\n");
  EXPECT_EQ(p.targets.size(), 1u);
  EXPECT_TRUE(p.meta.empty());
}

// ---------------------------------------------------------------------------
// Errors: each names file:line:column of the offending node.
// ---------------------------------------------------------------------------

TEST(PlanParser, ParserRejectsAnUnknownTaskKeyWithLineAndColumn) {
  std::string msg = parse_error("stages:\n"
                                "  - name: s\n"
                                "    tasks:\n"
                                "      - name: t\n"
                                "        run: make\n"
                                "        timeot: 5m\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:6:9: stage 's', task 't': unknown key 'timeot'; did you mean 'timeout'?"));
  EXPECT_THAT(msg, HasSubstr("allowed keys: name, on, run, script, push, fetch, wait_for, snapshot, timeout, retries, env, workdir"));
}

TEST(PlanParser, ParserRejectsUnknownKeysAtEveryLevel) {
  EXPECT_THAT(parse_error("stage: []\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              AllOf(StartsWith("plan.yaml:1:1: plan: unknown key 'stage'; did you mean 'stages'?"),
                    HasSubstr("allowed keys: version, workdir")));
  EXPECT_THAT(parse_error("hosts: {h: {address: a, pass: x}}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              AllOf(StartsWith("plan.yaml:1:25: host 'h': unknown key 'pass'"), HasSubstr("host_key")));
  EXPECT_THAT(parse_error(with_stages("  - {name: s, paralel: 2, tasks: [{name: t, run: x}]}\n")),
              StartsWith("plan.yaml:6:15: stage 's': unknown key 'paralel'; did you mean 'parallel'?"));
  EXPECT_THAT(parse_error(with_stages("  - {name: s, tasks: [{name: t, push: {src: a, dest: b}}]}\n")),
              HasSubstr("plan.yaml:6:48: stage 's', task 't': 'push': unknown key 'dest'; did you mean 'dst'? "
                        "allowed keys: src, dst, mode"));
  EXPECT_THAT(parse_error("notify: {mention: x}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:10: notify: unknown key 'mention'"));
}

TEST(PlanParser, ParserRejectsYamlSyntaxErrorsWithLineAndColumn) {
  std::string msg = parse_error("stages:\n  - name: s\n    tasks: [{name: t, run: x}\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:4:1: YAML syntax error: "));
  EXPECT_THAT(parse_error("stages:\n  - name: s\n   bad: indent\n"),
              AllOf(StartsWith("plan.yaml:3:"), HasSubstr("YAML syntax error")));
}

TEST(PlanParser, ParserRejectsAListWhereAMapIsExpected) {
  EXPECT_THAT(parse_error("- a\n- b\n"), StartsWith("plan.yaml:1:1: a plan must be a map with the keys"));
  EXPECT_THAT(parse_error("hosts: [hv1]\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              AllOf(StartsWith("plan.yaml:1:8: plan: 'hosts' must be a map"), HasSubstr("got a list")));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, push: [a, b]}]}]\n"),
              AllOf(StartsWith("plan.yaml:1:44: stage 's', task 't': 'push' must be a map {src, dst[, mode]}"),
                    HasSubstr("got a list")));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: {name: t, run: x}}]\n"),
              StartsWith("plan.yaml:1:27: stage 's': 'tasks' must be a non-empty list of tasks"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: [make, all]}]}]\n"),
              StartsWith("plan.yaml:1:43: stage 's', task 't': 'run' must be a string, got a list"));
  EXPECT_THAT(parse_error("stages: [{name: s, parallel: two, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:30: stage 's': 'parallel' must be an integer from 1 to 100000, got 'two'"));
  EXPECT_THAT(parse_error("stages: [{name: s, subruns: yes, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:29: stage 's': 'subruns' must be true or false, got 'yes'"));
}

TEST(PlanParser, ParserRejectsDuplicateKeys) {
  std::string msg = parse_error("stages:\n"
                                "  - name: s\n"
                                "    tasks:\n"
                                "      - name: t\n"
                                "        run: a\n"
                                "        run: b\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:6:9: stage 's', task 't': duplicate key 'run' (first at line 5, column 9)"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x}]}]\nstages: []\n"),
              StartsWith("plan.yaml:2:1: plan: duplicate key 'stages' (first at line 1, column 1)"));
}

TEST(PlanParser, ParserRejectsBadDurationsWithTheReason) {
  EXPECT_THAT(parse_error("hung_after: 45 minutes\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              AllOf(StartsWith("plan.yaml:1:13: plan: 'hung_after': invalid duration '45 minutes'"),
                    HasSubstr("examples: 30s, 45m")));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x, timeout: 2w}]}]\n"),
              StartsWith("plan.yaml:1:55: stage 's', task 't': 'timeout': invalid duration '2w': unknown unit 'w'"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x, timeout: 0s}]}]\n"),
              StartsWith("plan.yaml:1:55: stage 's', task 't': 'timeout' must be longer than 0"));
  EXPECT_THAT(parse_error("stages: [{name: s, retry_delay: -5s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:33: stage 's': 'retry_delay': invalid duration '-5s'"));
}

TEST(PlanParser, ParserRejectsUndefinedTargetsInOn) {
  std::string msg = parse_error(with_stages("  - name: s\n"
                                            "    tasks:\n"
                                            "      - {name: t, on: [hv1, web2], run: x}\n"));
  EXPECT_THAT(msg, StartsWith("plan.yaml:8:29: stage 's', task 't': target 'web2' is not declared; "
                              "declared targets: controller, hv1, web1"));
  EXPECT_THAT(parse_error(with_stages("  - {name: s, tasks: [{name: t, on: hv2, run: x}]}\n")),
              StartsWith("plan.yaml:6:37: stage 's', task 't': target 'hv2' is not declared"));
  EXPECT_THAT(parse_error(with_stages("  - {name: s, tasks: [{name: t, on: [hv1, hv1], run: x}]}\n")),
              StartsWith("plan.yaml:6:43: stage 's', task 't': target 'hv1' is listed twice in 'on'"));
  EXPECT_THAT(parse_error(with_stages("  - {name: s, tasks: [{name: t, on: [], run: x}]}\n")),
              StartsWith("plan.yaml:6:37: stage 's', task 't': 'on' must be a target name or a non-empty list"));
}

TEST(PlanParser, ParserRejectsJumpChainsLongerThanEight) {
  std::string text = "hosts: {hv: {address: h}}\nguests:\n";
  std::string via = "hv";
  for (int i = 1; i <= 10; ++i) {
    text += "  g" + std::to_string(i) + ": {via: " + via + ", address: a}\n";
    via = "g" + std::to_string(i);
  }
  text += "stages: [{name: s, tasks: [{name: t, on: g8, run: x}]}]\n";
  std::string msg = parse_error(text);
  EXPECT_EQ(msg, "plan.yaml:11:13: guest 'g9' is reached through more than 8 jump hosts; at most 8 are supported");
}

TEST(PlanParser, ParserRejectsAnUndefinedVia) {
  std::string msg = parse_error("guests:\n  web1: {via: hv9, address: a}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:2:15: guest 'web1': via 'hv9' is not a declared host or guest; "
                              "declared: controller, web1"));
}

TEST(PlanParser, ParserNamesTheCycleInVia) {
  std::string msg = parse_error("hosts:\n"
                                "  hv1: {address: h}\n"
                                "guests:\n"
                                "  web1: {via: web2, address: a}\n"
                                "  web2: {via: web1, address: b}\n"
                                "  web3: {via: web1, address: c}\n"
                                "  self: {via: self, address: d}\n"
                                "stages: [{name: s, tasks: [{name: t, run: x}]}]\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:4:15: guest 'web1': via makes a cycle: web1 -> web2 -> web1; "
                              "a guest's via chain must end at a host"));
  EXPECT_THAT(msg, HasSubstr("\nplan.yaml:7:15: guest 'self': via makes a cycle: self -> self"));
  EXPECT_THAT(msg, Not(HasSubstr("web3")));
}

TEST(PlanParser, ParserRejectsRestartFromThatIsNotAnEarlierStage) {
  const std::string head = "stages:\n  - {name: a, tasks: [{name: t, run: x}]}\n";
  EXPECT_THAT(parse_error(head + "  - {name: b, restart_from: b, tasks: [{name: t, run: x}]}\n"),
              StartsWith("plan.yaml:3:29: stage 'b': restart_from 'b' names the stage itself; it must name an "
                         "earlier stage: a"));
  EXPECT_THAT(parse_error(head + "  - {name: b, restart_from: c, tasks: [{name: t, run: x}]}\n"
                                 "  - {name: c, tasks: [{name: t, run: x}]}\n"),
              StartsWith("plan.yaml:3:29: stage 'b': restart_from 'c' names a later stage; it must name an "
                         "earlier stage: a"));
  EXPECT_THAT(parse_error(head + "  - {name: b, restart_from: nope, tasks: [{name: t, run: x}]}\n"),
              StartsWith("plan.yaml:3:29: stage 'b': restart_from 'nope' is not a stage of this plan"));
  EXPECT_THAT(parse_error("stages:\n  - {name: a, restart_from: a, tasks: [{name: t, run: x}]}\n"),
              HasSubstr("the first stage has no earlier stage to restart from"));
}

TEST(PlanParser, ParserPointsAtTheMapThatLacksARequiredKey) {
  EXPECT_THAT(parse_error("stages:\n  - name: s\n    parallel: 2\n"),
              StartsWith("plan.yaml:2:5: stage 's': missing key 'tasks'"));
  EXPECT_THAT(parse_error("stages:\n  - tasks: [{name: t, run: x}]\n"),
              StartsWith("plan.yaml:2:5: stage 1 of 1: missing key 'name'"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{on: controller, run: x}]}]\n"),
              StartsWith("plan.yaml:1:28: stage 's', task 1: missing key 'name'"));
  EXPECT_THAT(parse_error("guests:\n  web1:\n    address: a\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:3:5: guest 'web1': missing key 'via'"));
  EXPECT_THAT(parse_error("hosts: {hv1: {user: root}}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:14: host 'hv1': missing key 'address'"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, push: {src: a}}]}]\n"),
              StartsWith("plan.yaml:1:44: stage 's', task 't': 'push' is missing 'dst'"));
  EXPECT_THAT(parse_error("version: 1\nworkdir: /srv\n"),
              StartsWith("plan.yaml:1:1: plan: missing key 'stages'"));
}

TEST(PlanParser, ParserRejectsTasksWithZeroOrTwoKinds) {
  EXPECT_THAT(parse_error("stages:\n  - name: s\n    tasks:\n      - name: t\n        timeout: 5m\n"),
              StartsWith("plan.yaml:4:9: stage 's', task 't': nothing to do: a task needs exactly one of "
                         "run, script, push, fetch, wait_for"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x, script: y.sh}]}]\n"),
              StartsWith("plan.yaml:1:46: stage 's', task 't': has both 'run' and 'script'; a task does "
                         "exactly one of"));
}

TEST(PlanParser, ParserRejectsAnEmptyOrMissingStagesList) {
  EXPECT_THAT(parse_error("stages: []\n"),
              StartsWith("plan.yaml:1:9: plan: 'stages' must be a non-empty list of stages"));
  EXPECT_THAT(parse_error("stages:\n"), AllOf(StartsWith("plan.yaml:1:1: plan: 'stages' must be a non-empty list"),
                                              HasSubstr("got nothing")));
  EXPECT_THAT(parse_error(""), StartsWith("plan.yaml:1:1: the plan is empty"));
  EXPECT_THAT(parse_error("# only a comment\n"), StartsWith("plan.yaml:1:1: the plan is empty"));
}

TEST(PlanParser, ParserRejectsVersionOtherThanOne) {
  EXPECT_THAT(parse_error("version: 2\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:10: plan: 'version' must be 1 (the only plan format this runwarden "
                         "reads), got '2'"));
  EXPECT_THAT(parse_error("version: [1]\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:10: plan: 'version' must be 1"));
}

TEST(PlanParser, ParserRejectsDeclaringTheControllerAsRemote) {
  EXPECT_THAT(parse_error("hosts:\n  controller: {address: 10.0.0.1}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:2:3: host 'controller' is the machine runwarden runs on and is always local"));
  EXPECT_THAT(parse_error("hosts:\n  controller: {local: false}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:2:23: host 'controller' is the machine runwarden runs on"));
  EXPECT_THAT(parse_error("guests:\n  controller: {via: x, address: y}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:2:3: guest 'controller': 'controller' is the machine runwarden runs on"));
  EXPECT_THAT(parse_error("hosts:\n  bench: {local: true, user: qa}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:2:24: host 'bench' is local (local: true), so it takes no SSH settings; "
                         "remove 'user'"));
}

TEST(PlanParser, ParserRejectsTargetNamesUsedTwiceAcrossHostsAndGuests) {
  std::string msg = parse_error("hosts:\n  hv1: {address: a}\nguests:\n  hv1: {via: hv1, address: b}\n"
                                "stages: [{name: s, tasks: [{name: t, run: x}]}]\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:4:3: guest 'hv1' is already declared at line 2, column 3; host and guest "
                              "names must be unique"));
}

TEST(PlanParser, ParserRejectsNamesOutsideTheAllowedAlphabet) {
  EXPECT_THAT(parse_error("stages: [{name: ../etc, tasks: [{name: t, run: x}]}]\n"),
              AllOf(StartsWith("plan.yaml:1:17: stage 1 of 1: '../etc' is not a valid stage name"),
                    HasSubstr("use a letter or digit")));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: a/b, run: x}]}]\n"),
              StartsWith("plan.yaml:1:35: stage 's', task 1: 'a/b' is not a valid task name"));
  EXPECT_THAT(parse_error("hosts: {'h 1': {address: a}}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:9: host 'h 1': not a valid name"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x, env: {1BAD: x}}]}]\n"),
              StartsWith("plan.yaml:1:52: stage 's', task 't': '1BAD' is not a valid environment variable name"));
}

TEST(PlanParser, ParserRejectsReusedStageAndTaskNames) {
  EXPECT_THAT(parse_error("stages:\n  - {name: s, tasks: [{name: t, run: x}]}\n  - {name: s, tasks: [{name: t, run: x}]}\n"),
              StartsWith("plan.yaml:3:12: stage name 's' is already used at line 2, column 12"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x}, {name: t, run: y}]}]\n"),
              StartsWith("plan.yaml:1:54: stage 's', task 't': the name is already used at line 1, column 35"));
}

TEST(PlanParser, ParserRejectsFetchDestinationsOutsideTheRunDirectory) {
  for (const char* dst : {"/etc/passwd", "../x", "a/../../x", ".."}) {
    std::string msg = parse_error(std::string("stages: [{name: s, tasks: [{name: t, fetch: {src: /a, dst: ") +
                                  dst + "}}]}]\n");
    EXPECT_THAT(msg, AllOf(StartsWith("plan.yaml:1:60: stage 's', task 't': fetch: 'dst' must be a relative path "
                                      "(it goes under fetched/<target>/ in the run directory)")))
        << dst;
  }
  parse_ok("stages: [{name: s, tasks: [{name: t, fetch: {src: /a, dst: logs/..hidden/x}}]}]\n");
}

TEST(PlanParser, ParserRejectsWaitForSshOnTheController) {
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, wait_for: {ssh: true}}]}]\n"),
              StartsWith("plan.yaml:1:54: stage 's', task 't': wait_for ssh on 'controller', which is local"));
  EXPECT_THAT(parse_error(with_stages("  - {name: s, tasks: [{name: t, on: web1, wait_for: {ssh: true, tcp: 22}}]}\n")),
              StartsWith("plan.yaml:6:65: stage 's', task 't': 'wait_for' has both 'ssh' and 'tcp'"));
}

TEST(PlanParser, ParserRejectsASecondYamlDocument) {
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x}]}]\n---\nstages: []\n"),
              StartsWith("plan.yaml:2:1: a second YAML document ('---') starts here"));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: x}]}]\n...\nstages: []\n"),
              StartsWith("plan.yaml:3:1: YAML syntax error: unexpected text after the end of the plan"));
}

// yaml-cpp's LoadAll never returns on these (found by the fuzzer).
TEST(PlanParser, ParserRejectsAStrayCommaInsteadOfHanging) {
  EXPECT_THAT(parse_error(","), StartsWith("plan.yaml:1:1: YAML syntax error: unexpected ','"));
  EXPECT_THAT(parse_error("- x\n,\n"), StartsWith("plan.yaml:2:1: YAML syntax error: unexpected ','"));
  // A comma inside a plain value is text.
  Plan p = parse_ok("stages: [{name: s, tasks: [{name: t, run: \"a, b\"}]}]\nworkdir: a, b\n");
  EXPECT_EQ(p.workdir, "a, b");
}

TEST(PlanParser, ParserRejectsNestingDeeperThan64Levels) {
  std::string flow = "stages: " + std::string(100, '[') + std::string(100, ']') + "\n";
  EXPECT_THAT(parse_error(flow), StartsWith("plan.yaml:1:72: the plan nests deeper than 64 levels"));
  std::string block = "stages:\n";
  for (int i = 0; i < 80; ++i) block += std::string(2 * i + 2, ' ') + "- x:\n";
  EXPECT_THAT(parse_error(block), HasSubstr("nests deeper than 64 levels"));
  // Brackets inside strings, comments and block scalars are text, not nesting.
  std::string deep_text(200, '[');
  Plan p = parse_ok("stages:\n  - name: s\n    tasks:\n"
                    "      - {name: a, run: \"" + deep_text + "\"}  # " + deep_text + "\n"
                    "      - name: b\n        run: |\n          " + deep_text + "\n          [[\n"
                    "      - {name: c, run: '" + deep_text + "'}\n");
  EXPECT_EQ(p.stages.at(0).tasks.at(1).run, deep_text + "\n[[\n");
  // A block scalar ends where its map does, even in compact "- key: |" form:
  // the brackets quoted on the following lines are strings, not nesting.
  Plan q = parse_ok("stages:\n  - name: s\n    tasks:\n      - run: |\n          echo\n"
                    "        workdir: \"" + deep_text + "\n          " + deep_text + "\"\n        name: t\n");
  EXPECT_EQ(q.stages.at(0).tasks.at(0).run, "echo\n");
}

TEST(PlanParser, ParserReportsSeveralProblemsInFileOrder) {
  std::string msg = parse_error("stages:\n"
                                "  - name: s\n"
                                "    retries: -1\n"
                                "    tasks:\n"
                                "      - {name: t, on: nowhere, run: x}\n"
                                "version: 3\n");
  EXPECT_EQ(msg,
            "plan.yaml:3:14: stage 's': 'retries' must be an integer from 0 to 1000, got '-1'\n"
            "plan.yaml:5:23: stage 's', task 't': target 'nowhere' is not declared; declared targets: controller\n"
            "plan.yaml:6:10: plan: 'version' must be 1 (the only plan format this runwarden reads), got '3'");
}

TEST(PlanParser, ParserKeepsEveryMessageLineLocatedEvenWithControlCharacters) {
  std::string msg = parse_error("stages: [{name: s, tasks: [{name: t, run: x, \"bad\\nkey\": 1}]}]\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:1:46: stage 's', task 't': unknown key 'bad\\nkey'"));
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(PlanParser, ParserRejectsTextThatIsNotUtf8) {
  EXPECT_THAT(parse_error("stages:\n  - name: \xff\n"),
              StartsWith("plan.yaml:2:11: the plan is not valid UTF-8 here"));
  // Escapes in double quotes can produce a NUL or a lone surrogate (found by
  // the fuzzer: the JSON description of such a plan could not be printed).
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: t, run: \"rm -rf /tmp/x\\0 /\"}]}]\n"),
              StartsWith("plan.yaml:1:43: stage 's', task 't': 'run' is not plain UTF-8 text (a NUL"));
  EXPECT_THAT(parse_error("meta: {\"k\\0\": v}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n"),
              StartsWith("plan.yaml:1:8: plan: 'meta': the key 'k\\x00' is not plain UTF-8 text"));
  EXPECT_THAT(parse_error(std::string("meta: {k\0: v}\n", 14)),
              StartsWith("plan.yaml:1:9: the plan is not valid UTF-8 here (or holds a NUL byte)"));
  Plan p = parse_ok("meta: {owner: \"J\\u00f6rg\"}\nstages: [{name: s, tasks: [{name: t, run: x}]}]\n");
  EXPECT_EQ(p.meta.at("owner"), "J\xc3\xb6rg");
  // A backslash before a multi-byte character: yaml-cpp's message quotes the
  // character's first byte alone (found by the fuzzer); the message stays
  // valid UTF-8, printable as JSON.
  std::string msg = parse_error("meta: {k: \"J0\\\xd0\x8e" "f6rg\"}\n");
  EXPECT_THAT(msg, StartsWith("plan.yaml:1:16: YAML syntax error: unknown escape character: \\xd0"));
  EXPECT_NO_THROW((void)nlohmann::json(msg).dump());
}

TEST(PlanParser, ParserBoundsTheWorkAliasesCanMultiply) {
  // 200 stages sharing one aliased list of 60 tasks on one target: 12,000
  // task instances from a few kilobytes.
  std::string text = "stages:\n  - {name: s0, tasks: &t [";
  for (int i = 0; i < 60; ++i) text += std::string(i ? ", " : "") + "{name: t" + std::to_string(i) + ", run: x}";
  text += "]}\n";
  for (int i = 1; i < 200; ++i) text += "  - {name: s" + std::to_string(i) + ", tasks: *t}\n";
  EXPECT_THAT(parse_error(text), HasSubstr("more than 10000 task instances"));
}

TEST(PlanParser, ParserReadsALargePlan) {
  std::string text = "hosts:\n";
  for (int i = 0; i < 2000; ++i) text += "  h" + std::to_string(i) + ": {address: 10.0." + std::to_string(i) + "}\n";
  std::string on = "[";
  for (int i = 0; i < 40; ++i) on += (i ? ", h" : "h") + std::to_string(i * 50);
  on += "]";
  text += "stages:\n";
  for (int i = 0; i < 200; ++i) {
    text += "  - {name: s" + std::to_string(i) + (i ? ", restart_from: s0" : "") +
            ", tasks: [{name: t, on: " + on + ", run: x}]}\n";
  }
  Plan p = parse_ok(text);
  EXPECT_EQ(p.targets.size(), 2001u);
  ASSERT_EQ(p.stages.size(), 200u);
  EXPECT_EQ(p.stages[199].tasks[0].on.size(), 40u);
}

TEST(PlanParser, ParserShowsTheFirstTwentyProblemsAndCountsTheRest) {
  std::string text = "stages:\n";
  for (int i = 0; i < 5000; ++i) text += "  - {name: s" + std::to_string(i) + ", restart_from: nope, tasks: [{name: t, run: x}]}\n";
  std::string msg = parse_error(text);
  EXPECT_THAT(msg, StartsWith("plan.yaml:2:30: stage 's0': restart_from 'nope' is not a stage of this plan; "
                              "the first stage has no earlier stage to restart from\n"
                              "plan.yaml:3:30: stage 's1': restart_from 'nope' is not a stage of this plan; "
                              "it must name an earlier stage: s0\n"));
  EXPECT_THAT(msg, HasSubstr("it must name an earlier stage: s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, "
                             "... (19 in all)\n"));
  EXPECT_THAT(msg, HasSubstr("\nplan.yaml:22:31: ... and 4980 more problems"));
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 20);
}

TEST(PlanParser, ParserNeverThrowsOnHostileInput) {
  const std::string inputs[] = {
      std::string("\0\0\0", 3),
      "&a [*a]",
      "stages: &s [*s]",
      "stages: [{name: s, tasks: &t [{name: x, on: *t, run: y}]}]",
      "? [a, b]\n: c\n",
      "{stages: [{name: s, tasks: [{name: t, run: x}]}], ? {a: b} : c}",
      "stages: !!binary aGVsbG8=",
      "%YAML 1.2\n---\n",
      "stages:\n\t- tab",
      "\xef\xbb\xbfstages: [{name: s, tasks: [{name: t, run: x}]}]",
      "[" + std::string(5000, '{'),
      std::string(10000, '-') + " x",
      "'unterminated",
      ",",
      "- x\n,\n",
      "stages: [{name: s, tasks: [{name: t, run: x, retries: 99999999999999999999999}]}]",
  };
  for (const auto& in : inputs) {
    Result<Plan> r = Plan{};
    EXPECT_NO_THROW(r = parse_plan(in, "plan.yaml")) << in;
    if (!r.ok()) {
      EXPECT_THAT(r.error().message, StartsWith("plan.yaml:")) << in;
    }
  }
}

TEST(PlanParser, ParserErrorsCarryTheBadInputExitCode) {
  auto r = parse_plan("stages: []\n", "plan.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, 2);
}

TEST(PlanParser, LoadPlanReportsAMissingFile) {
  auto r = load_plan("/nonexistent/dir/plan.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, AllOf(HasSubstr("/nonexistent/dir/plan.yaml"), HasSubstr("No such file")));
  EXPECT_EQ(r.error().code, 2);
}

TEST(PlanParser, LoadPlanReadsEveryShippedExample) {
  std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "examples";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto r = load_plan(entry.path().string());
    EXPECT_TRUE(r.ok()) << entry.path() << ": " << (r.ok() ? "" : r.error().message);
    if (r.ok()) {
      EXPECT_EQ(r->source, entry.path().string());
    }
    ++count;
  }
  EXPECT_GE(count, 3);
}

}  // namespace
}  // namespace rw::plan

namespace rw::plan {
namespace {

TEST(PlanParser, ANameWhoseSubrunKeyWouldBeInvalidIsRefusedWhereItIsWritten) {
  // A task "a." on target hv1 would give the key "a..hv1".
  EXPECT_THAT(parse_error("hosts: {hv1: {address: a}}\nstages: [{name: s, subruns: true, tasks: [{name: 'a.', on: hv1, "
                          "run: x}]}]\n"),
              AllOf(StartsWith("plan.yaml:2:"), HasSubstr("'a.' is not a valid task name"), HasSubstr("no '.' at the end")));
  EXPECT_THAT(parse_error("stages: [{name: s, tasks: [{name: " + std::string(64, 'x') + ", run: x}]}]\n"),
              HasSubstr("at most 63 characters"));
}

}  // namespace
}  // namespace rw::plan
