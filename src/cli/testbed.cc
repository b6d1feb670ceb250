// runwarden testbed ls|gc|status|down|diff|snapshots: what runs made on a libvirt host, found by
// their ownership tags, and its removal. gc never touches a testbed whose
// run is still going; down removes one testbed and refuses a live run.

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/build_name.h"
#include "state/store.h"
#include "engine/ssh_executor.h"
#include "engine/runner.h"
#include "engine/testbed_executor.h"
#include "state/testbed_record.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/text.h"
#include "ssh/relay.h"
#include "plan/parser.h"
#include "testbed/diff.h"
#include "testbed/span.h"
#include "testbed/inventory.h"
#include "testbed/domain.h"
#include "testbed/snapshot.h"
#include "testbed/volume.h"

namespace rw::cli {
namespace {

using nlohmann::json;

struct TestbedOptions {
  std::string uri;  ///< empty: the plan's, else $RUNWARDEN_LIBVIRT_URI, else qemu:///system
  std::string testbed;
  std::string build;  ///< diff of a plan file: the testbed (build name) it is compared with
  bool json = false;
  bool dry_run = false;
  bool exit_code = false;
  bool keep = false;  ///< up: keep what a failed up made
  bool all_runs = false;  ///< gc: every hypervisor the runs here used
  std::optional<std::string> host_of_json;  ///< "host" in --json objects, across hosts
};

std::string default_uri() {
  const char* u = std::getenv("RUNWARDEN_LIBVIRT_URI");
  return u && *u ? u : "qemu:///system";
}

/// The state of the run a testbed belongs to: its status, or "none" when
/// there is no such run (a leftover of a removed run).
std::string run_of(const std::string& testbed) {
  if (!validate_build_name(testbed).ok()) return "none";
  state::RunDir dir(state::state_root(), testbed);
  if (!dir.exists()) return "none";
  auto st = dir.load();
  return st.ok() ? state::to_string(st->status) : "UNREADABLE";
}

/// A run that may still use its testbed: not ended, or unreadable (so
/// nothing is removed on a guess).
bool run_is_live(const std::string& run) {
  if (run == "none") return false;
  if (run == "UNREADABLE") return true;
  return !state::is_terminal(state::parse_run_status(run));
}

json object_json(const testbed::Object& o, const std::string& run) {
  return {{"kind", testbed::to_string(o.kind)}, {"testbed", o.testbed}, {"name", o.name}, {"run", run}};
}

Result<testbed::Virt> connect(TestbedOptions& o) {
  if (o.uri.empty()) o.uri = default_uri();
  auto v = testbed::Virt::open(o.uri);
  if (!v) return err(v.error().message, kFailed);
  return v;
}

/// Where a build's testbed is: --connect's URI; else, for a run whose plan
/// has a testbed, where that plan put it (each of its plan hosts, reached
/// over SSH as the run reached them, or its libvirt URI); else
/// $RUNWARDEN_LIBVIRT_URI or qemu:///system.
struct Hosts {
  std::unique_ptr<plan::Plan> plan;  ///< the run's, when it names plan hosts
  std::unique_ptr<engine::SessionPool> pool;
  std::vector<std::string> names;  ///< the plan hosts, in order; {""} otherwise
  std::vector<engine::TestbedHost> conns;
  std::optional<testbed::Testbed> tb;  ///< resolved, with the plan
  std::string where;  ///< all of them, for messages
  bool spanning() const { return names.size() > 1; }
};

Result<std::pair<plan::Plan, std::string>> diff_plan(const TestbedOptions& o);

Result<Hosts> open_hosts(TestbedOptions& o) {
  Hosts h;
  if (o.uri.empty() && state::RunDir(state::state_root(), o.testbed).exists()) {
    TestbedOptions by_build = o;
    by_build.build.clear();
    if (auto pb = diff_plan(by_build); pb && !pb->first.testbed->hosts.empty()) {
      h.plan = std::make_unique<plan::Plan>(std::move(pb->first));
      h.pool = std::make_unique<engine::SessionPool>(*h.plan);
      RW_ASSIGN(testbed::Testbed tb, engine::resolve_testbed(*h.plan, o.testbed, h.plan->workdir));
      h.tb = std::move(tb);
      h.names = h.plan->testbed->hosts;
      auto session = [&h](const std::string& t) { return h.pool->get(t, nullptr); };
      for (const auto& name : h.names) {
        RW_ASSIGN(engine::TestbedHost c, engine::open_testbed_host(*h.plan->testbed, "", session, name));
        h.conns.push_back(std::move(c));
      }
      h.where = engine::testbed_where(*h.plan->testbed);
      o.uri = h.where;
      return h;
    } else if (pb) {
      if (!pb->first.testbed->libvirt.empty()) o.uri = engine::testbed_uri(*pb->first.testbed);
      if (auto tb = engine::resolve_testbed(pb->first, o.testbed, pb->first.workdir)) h.tb = std::move(*tb);
    }
  }
  RW_ASSIGN(testbed::Virt v, connect(o));
  h.names = {""};
  h.where = o.uri;
  h.conns.push_back(engine::TestbedHost{nullptr, std::move(v), o.uri});
  return h;
}

/// Runs shell `script` on hypervisor `k`: over the run's SSH for a plan
/// host, here for a local URI (qemu:///system), not at all for a URI of
/// another machine (libvirt's protocol is all there is). Its output, or an
/// error with it when it fails.
Result<std::string> on_hypervisor(Hosts& h, size_t k, const std::string& uri, const std::string& script) {
  std::string said;
  if (!h.names[k].empty()) {
    RW_ASSIGN(ssh::Session* session, h.pool->get(h.names[k], nullptr));
    RW_ASSIGN(auto r, session->exec(script, {}, [&](bool, std::string_view d) { said += d; }));
    if (r.exit_code != 0) return err(said.empty() ? std::string("it failed") : std::string(trim(said)));
    return said;
  }
  if (uri_names_a_host(uri)) return said;
  FILE* p = popen(("{\n" + script + "\n} 2>&1").c_str(), "r");
  if (!p) return err(std::string("cannot run /bin/sh: ") + std::strerror(errno));
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) said.append(buf, n);
  const int st = pclose(p);
  if (st != 0) return err(said.empty() ? "the script failed" : std::string(trim(said)));
  return said;
}

int ls(TestbedOptions& o) {
  auto host = connect(o);
  if (!host) return fail(host.error());
  auto inv = testbed::inventory(*host, o.testbed);
  if (!inv) return fail(inv.error());
  json out = json::array();
  for (const auto& obj : *inv) {
    std::string run = run_of(obj.testbed);
    if (o.json) out.push_back(object_json(obj, run));
    else std::cout << testbed::to_string(obj.kind) << "\t" << obj.testbed << "\t" << (obj.name.empty() ? "-" : obj.name)
                   << "\trun " << run << "\n";
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  else if (inv->empty()) std::cout << "nothing made by runwarden on " << o.uri << "\n";
  return kOk;
}

/// Removes `objs` (already in removal order), printing what happened; with
/// --json, one object each goes into `out` (printed by the caller once).
int remove_objects(const testbed::Virt& host, const std::vector<testbed::Object>& objs, const TestbedOptions& o,
                   json& out) {
  int failed = 0;
  for (const auto& obj : objs) {
    std::string what = std::string(testbed::to_string(obj.kind)) + " " + obj.testbed +
                       (obj.name.empty() ? "" : "/" + obj.name);
    json j = object_json(obj, run_of(obj.testbed));
    if (o.dry_run) {
      j["action"] = "would remove";
      if (!o.json) std::cout << "would remove " << what << "\n";
    } else if (auto r = testbed::remove_object(host, obj); !r) {
      ++failed;
      j["action"] = "failed";
      j["error"] = r.error().message;
      std::cerr << "runwarden testbed: " << r.error().message << "\n";
    } else {
      j["action"] = *r ? "removed" : "gone";
      if (!o.json) std::cout << (*r ? "removed " : "already gone: ") << what << "\n";
    }
    if (o.host_of_json) j["host"] = *o.host_of_json;
    out.push_back(std::move(j));
  }
  if (!o.json && objs.empty()) std::cout << "nothing to remove on " << o.uri << "\n";
  return failed ? kFailed : kOk;
}

/// What the host holds outside libvirt, as --json shows it.
json host_object_json(const testbed::HostObject& obj, const std::string& action, const TestbedOptions& o) {
  json j{{"kind", obj.kind == "ovs" ? "ovs-bridge" : "vxlan-link"}, {"testbed", obj.testbed}, {"name", obj.name},
         {"run", run_of(obj.testbed)}, {"action", action}};
  if (o.host_of_json) j["host"] = *o.host_of_json;
  return j;
}

/// gc on hypervisor `k` of `h`: libvirt's objects, then the Open vSwitch
/// bridges and VXLAN links whose testbed's run is not live (where a script
/// can run there: a plan host, or this machine).
int gc_on(Hosts& h, size_t k, TestbedOptions& o, json& out) {
  const testbed::Virt& host = h.conns[k].virt;
  auto inv = testbed::inventory(host, o.testbed);
  if (!inv) return fail(inv.error());
  std::vector<testbed::Object> dead;
  for (const auto& obj : *inv)
    if (!run_is_live(run_of(obj.testbed))) dead.push_back(obj);
  TestbedOptions one = o;
  one.uri = h.conns[k].where;
  one.host_of_json = one.uri;
  int rc = remove_objects(host, dead, one, out);
  auto said = on_hypervisor(h, k, h.conns[k].where, testbed::host_leftovers_script());
  if (!said) {
    std::cerr << "runwarden testbed: bridges and links on " << one.uri << ": " << said.error().message << "\n";
    return kFailed;
  }
  std::vector<testbed::HostObject> gone;
  for (auto& obj : testbed::parse_host_leftovers(*said))
    if ((o.testbed.empty() || obj.testbed == o.testbed) && !run_is_live(run_of(obj.testbed))) gone.push_back(obj);
  if (gone.empty()) return rc;
  if (o.dry_run) {
    for (const auto& obj : gone) {
      if (o.json) out.push_back(host_object_json(obj, "would remove", one));
      else std::cout << "would remove " << (obj.kind == "ovs" ? "Open vSwitch bridge " : "VXLAN link ") << obj.name
                     << " of " << obj.testbed << "\n";
    }
    return rc;
  }
  auto removed = on_hypervisor(h, k, h.conns[k].where, testbed::host_remove_script(gone));
  for (const auto& obj : gone)
    if (o.json) out.push_back(host_object_json(obj, removed ? "removed" : "failed", one));
  if (!removed) {
    std::cerr << "runwarden testbed: on " << one.uri << ": " << removed.error().message << "\n";
    return kFailed;
  }
  if (!o.json) std::cout << *removed;
  return rc;
}

int gc(TestbedOptions& o) {
  json out = json::array();
  auto done = [&](int rc) {
    if (o.json) std::cout << out.dump(2) << "\n";
    return rc;
  };
  if (!o.all_runs) {
    auto host = connect(o);
    if (!host) return fail(host.error());
    Hosts h;
    h.names = {""};
    h.conns.push_back(engine::TestbedHost{nullptr, std::move(*host), o.uri});
    return done(gc_on(h, 0, o, out));
  }
  // Every hypervisor a run on this controller used: its plan's hosts over
  // SSH (with that plan's addresses and keys), or its libvirt URI; each once.
  std::set<std::string> seen;
  int rc = kOk;
  for (const auto& build : state::list_builds(state::state_root())) {
    TestbedOptions by_run = o;
    by_run.testbed = build;
    by_run.uri.clear();
    auto h = open_hosts(by_run);
    if (!h || !h->tb) continue;  // no testbed, or its hosts cannot be reached now
    for (size_t k = 0; k < h->conns.size(); ++k) {
      const std::string key = h->names[k].empty() ? h->conns[k].where
                                                  : h->plan->targets.at(h->names[k]).address + ":" +
                                                        std::to_string(h->plan->targets.at(h->names[k]).port);
      if (!seen.insert(key).second) continue;
      if (int r = gc_on(*h, k, o, out); r != kOk) rc = r;
    }
  }
  if (seen.empty() && !o.json) std::cout << "no run on this controller has a testbed\n";
  return done(rc);
}

int down(TestbedOptions& o) {
  int rc;
  if (!check_build(o.testbed, &rc)) return rc;
  std::string run = run_of(o.testbed);
  if (run_is_live(run))
    return fail(err("run " + o.testbed + " is " + run + ": cancel it first (cancel-run --build-name " + o.testbed +
                        ")",
                    kConflict));
  auto hosts = open_hosts(o);
  if (!hosts) return fail(hosts.error());
  rc = kOk;
  json out = json::array();
  for (size_t k = 0; k < hosts->conns.size(); ++k) {
    auto inv = testbed::inventory(hosts->conns[k].virt, o.testbed);
    if (!inv) return fail(inv.error());
    TestbedOptions one = o;
    one.uri = hosts->conns[k].where;
    if (hosts->spanning()) one.host_of_json = hosts->names[k];
    if (int r = remove_objects(hosts->conns[k].virt, *inv, one, out); r != kOk) rc = r;
    if (o.dry_run) continue;
    // What libvirt does not know: Open vSwitch bridges (by their tag) and,
    // across hosts, the VXLAN links.
    std::string script = testbed::ovs_remove_script(o.testbed);
    if (hosts->spanning()) script = testbed::vxlan_remove_script(*hosts->tb) + script;
    const std::string where = hosts->names[k].empty() ? o.uri : hosts->names[k];
    auto said = on_hypervisor(*hosts, k, o.uri, script);
    if (!said) {
      std::cerr << "runwarden testbed: on " << where << ": " << said.error().message << "\n";
      rc = kFailed;
    } else if (!o.json) {
      std::cout << *said;
    } else {
      // "removed VXLAN link NAME", "removed Open vSwitch bridge NAME"
      std::istringstream lines(*said);
      for (std::string line; std::getline(lines, line);) {
        const bool link = line.rfind("removed VXLAN link ", 0) == 0;
        if (!link && line.rfind("removed Open vSwitch bridge ", 0) != 0) continue;
        testbed::HostObject obj{link ? "link" : "ovs", line.substr(line.rfind(' ') + 1), o.testbed};
        out.push_back(host_object_json(obj, "removed", one));
      }
    }
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  return rc;
}

/// Guest `name`'s addresses NIC by NIC, with the run's plan: static (from
/// its seed) on Open vSwitch networks, else its lease in `leases` (MAC ->
/// IPv4).
json guest_addresses(const testbed::Testbed& tb, const std::string& name,
                     const std::map<std::string, std::string>& leases) {
  json out = json::array();
  for (const auto& g : tb.guests) {
    auto at = g.addresses.find(name);
    if (at == g.addresses.end()) continue;
    for (size_t i = 0; i < g.networks.size(); ++i) {
      bool ovs = false;
      for (const auto& n : tb.networks) ovs = ovs || (n.name == g.networks[i] && n.ovs);
      if (ovs && i < at->second.size()) out.push_back(at->second[i]);
      else if (auto l = leases.find(testbed::nic_mac(tb.id, g, name, i)); l != leases.end()) out.push_back(l->second);
    }
  }
  return out;
}

/// What is on the host for one testbed, with or without its run: guests
/// with their state, addresses and snapshots, networks, the pool.
int status(TestbedOptions& o) {
  int rc;
  if (!check_build(o.testbed, &rc)) return rc;
  auto hosts = open_hosts(o);
  if (!hosts) return fail(hosts.error());
  // Across hosts every guest leases from the first host's networks; its
  // MACs are its own (nic_mac), whichever host it runs on.
  std::map<std::string, std::string> home_leases;
  if (hosts->spanning())
    for (const auto& n : hosts->tb->networks)
      if (!n.ovs)
        if (auto l = testbed::network_leases(hosts->conns[0].virt, o.testbed, n.name)) home_leases.insert(l->begin(), l->end());
  const std::string run = run_of(o.testbed);
  json objs = json::array();
  for (size_t k = 0; k < hosts->conns.size(); ++k) {
    const testbed::Virt& host = hosts->conns[k].virt;
    auto inv = testbed::inventory(host, o.testbed);
    if (!inv) return fail(inv.error());
    auto snaps = testbed::list_snapshots(host, o.testbed);
    if (!snaps) return fail(snaps.error());
    for (const auto& obj : *inv) {
      json j{{"kind", testbed::to_string(obj.kind)}, {"name", obj.name.empty() ? testbed::pool_name(obj.testbed) : obj.name}};
      if (hosts->spanning()) j["host"] = hosts->names[k];
      if (obj.kind == testbed::Object::Kind::Guest) {
        auto st = testbed::guest_state(host, o.testbed, obj.name);
        j["state"] = st ? *st : "unknown";
        std::map<std::string, std::string> leases = home_leases;
        if (!hosts->spanning())
          if (auto l = testbed::leased_addresses(host, o.testbed, obj.name)) leases = std::move(*l);
        json addrs = json::array();
        if (hosts->tb) {
          addrs = guest_addresses(*hosts->tb, obj.name, leases);
        } else {
          for (const auto& [mac, ip] : leases) addrs.push_back(ip);  // no plan: what the host leased
        }
        j["addresses"] = addrs;
        json names = json::array();
        for (const auto& sn : *snaps)
          if (sn.guest == obj.name) names.push_back(sn.name);
        j["snapshots"] = names;
      }
      objs.push_back(std::move(j));
    }
  }
  if (o.json) {
    std::cout << json{{"testbed", o.testbed}, {"uri", o.uri}, {"run", run}, {"objects", objs}}.dump(2) << "\n";
    return kOk;
  }
  std::cout << "testbed " << o.testbed << " on " << o.uri << " (run " << run << ")\n";
  if (objs.empty()) std::cout << "  nothing there\n";
  for (const auto& j : objs) {
    std::cout << "  " << j["kind"].get<std::string>() << " " << j["name"].get<std::string>();
    if (j.contains("host")) std::cout << " on " << j["host"].get<std::string>();
    if (j.contains("state")) {
      std::cout << ": " << j["state"].get<std::string>();
      for (const auto& a : j["addresses"]) std::cout << " " << a.get<std::string>();
      if (!j["snapshots"].empty()) std::cout << " (" << j["snapshots"].size() << " snapshot(s))";
    }
    std::cout << "\n";
  }
  return kOk;
}

int snapshots(TestbedOptions& o) {
  int rc;
  if (!check_build(o.testbed, &rc)) return rc;
  auto hosts = open_hosts(o);
  if (!hosts) return fail(hosts.error());
  auto list = Result<std::vector<testbed::SnapshotInfo>>(std::vector<testbed::SnapshotInfo>{});
  for (const auto& c : hosts->conns) {
    auto some = testbed::list_snapshots(c.virt, o.testbed);
    if (!some) return fail(some.error());
    list->insert(list->end(), some->begin(), some->end());
  }
  json out = json::array();
  for (const auto& s : *list) {
    if (o.json) {
      out.push_back({{"guest", s.guest}, {"name", s.name}, {"created", s.created}, {"state", s.state}});
      continue;
    }
    std::time_t t = s.created;
    char when[32] = "-";
    if (std::tm tm{}; gmtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
    std::cout << s.guest << "\t" << s.name << "\t" << when << "\t" << s.state << "\n";
  }
  if (o.json) std::cout << out.dump(2) << "\n";
  else if (list->empty()) std::cout << "no snapshots of testbed " << o.testbed << " on " << o.uri << "\n";
  return kOk;
}

/// The plan and build `diff` compares: a plan file and --build, or a run's
/// build name (its own copy of the plan).
Result<std::pair<plan::Plan, std::string>> diff_plan(const TestbedOptions& o) {
  std::string file = o.testbed, base, build = o.build;
  if (::access(file.c_str(), F_OK) == 0) {
    if (build.empty()) return err("diff of a plan file needs --build NAME: the testbed to compare it with", kUsage);
    base = plan::plan_directory(file);
  } else {
    if (auto v = validate_build_name(o.testbed); !v) return err(o.testbed + ": no such plan file, and " + v.error().message, kUsage);
    state::RunDir dir(state::state_root(), o.testbed);
    auto st = dir.load();
    if (!st) return err("no plan file " + o.testbed + " and no run of that name", kNotFound);
    file = dir.plan_file();
    base = st->plan_dir;
    if (build.empty()) build = o.testbed;
  }
  if (auto v = validate_build_name(build); !v) return err(v.error().message, kUsage);
  auto p = plan::load_plan(file);
  if (!p) return p.error();
  if (!base.empty()) (void)plan::resolve_local_paths(*p, base, false);
  if (!p->testbed) return err(file + ": the plan has no testbed: section", kUsage);
  return std::make_pair(std::move(*p), build);
}

/// `up PLAN --build NAME`: the plan's testbed made and kept, as a run of
/// its own with only the testbed's stages, run here in the foreground (no
/// units, no message). A failed or interrupted up removes what it made
/// (unless --keep). `down NAME` removes the testbed later.
int up(TestbedOptions& o) {
  if (o.build.empty()) return fail(err("testbed up needs --build NAME: the testbed's name (its run's build name)", kUsage));
  if (auto v = validate_build_name(o.build); !v) return fail(err(v.error().message, kUsage));
  auto text = read_file(o.testbed);
  if (!text) return fail(err(o.testbed + ": " + text.error().message, kUsage));
  auto plan = plan::parse_plan(*text, o.testbed);
  if (!plan) return fail(err(plan.error().message, kUsage));
  if (!plan->testbed) return fail(err(o.testbed + ": the plan has no testbed: section", kUsage));
  const std::string run = run_of(o.build);
  if (run_is_live(run))
    return fail(err("run " + o.build + " is " + run + ": its testbed is in use (cancel-run --build-name " + o.build +
                        " first)",
                    kConflict));
  const std::string root = state::state_root();
  if (auto s = make_dirs(root + "/runs", 0750); !s) return fail(s.error());
  auto lock = state::BuildLock::acquire(root, o.build);
  if (!lock) return fail(lock.error());
  auto begun = begin_run(root, o.build, "testbed up");
  if (!begun) return fail(begun.error());
  state::RunDir dir(root, o.build);
  state::RunState& st = *begun;
  st.testbed_only = true;
  st.plan_dir = plan::plan_directory(o.testbed);
  // As start-run: the plan's workdir (relative: to here), else here.
  char cwd[4096] = ".";
  if (!::getcwd(cwd, sizeof cwd)) return fail(err(errno_message("getcwd", errno)));
  st.workdir = plan->workdir.empty() ? cwd : plan->workdir[0] == '/' ? plan->workdir : std::string(cwd) + "/" + plan->workdir;
  st.plan_file = "plan.yaml";
  if (auto s = write_file_atomic(dir.plan_file(), *text, 0640); !s) return fail(s.error());
  if (auto s = dir.save(st); !s) return fail(s.error());
  if (!o.json) std::cerr << "testbed " << o.build << ": coming up (Ctrl-C stops it and removes what it made)\n";
  (void)engine::run_runner(o.build);
  auto end = dir.load();
  if (!end) return fail(end.error());
  if (end->status == state::RunStatus::Completed) {
    auto rec = read_file(dir.file(state::kTestbedRecordFile));
    auto r = rec ? state::testbed_record_from_json(*rec) : Result<state::TestbedRecord>(rec.error());
    if (!r) return fail(r.error());
    if (o.json) {
      json guests = json::array();
      for (const auto& g : r->guests)
        guests.push_back({{"name", g.name}, {"domain", g.libvirt_name}, {"addresses", g.addresses}});
      std::cout << json{{"testbed", o.build}, {"uri", r->uri}, {"up", true}, {"guests", guests}}.dump(2) << "\n";
    } else {
      std::cout << "testbed " << o.build << " is up on " << r->uri << " (remove it: runwarden testbed down " << o.build
                << ")\n";
      for (const auto& g : r->guests) {
        std::cout << "  " << g.name;
        for (const auto& a : g.addresses) std::cout << " " << a;
        std::cout << "\n";
      }
    }
    return kOk;
  }
  // Not up: an interrupt left the run unfinished; it is over now.
  (void)dir.update([&](state::RunState& cur) {
    if (state::is_terminal(cur.status)) return false;
    cur.status = state::RunStatus::Cancelled;
    cur.decided_by = "testbed up";
    cur.reason = "testbed up was interrupted";
    cur.ended_at_ms = now_ms();
    return true;
  });
  end = dir.load();
  const std::string why = end ? end->reason : end.error().message;
  if (o.json)
    std::cout << json{{"testbed", o.build}, {"up", false}, {"error", why}, {"kept", o.keep}}.dump(2) << "\n";
  else std::cerr << "runwarden testbed: " << o.build << " did not come up: " << why << "\n";
  if (!o.keep) {
    TestbedOptions rm;
    rm.testbed = o.build;
    rm.json = true;  // its report is not this command's
    std::ostringstream quiet;
    auto* saved = std::cout.rdbuf(quiet.rdbuf());
    int rc = down(rm);
    std::cout.rdbuf(saved);
    if (rc != kOk) std::cerr << "runwarden testbed: removing what it made failed; see runwarden testbed down " << o.build << "\n";
  }
  return kFailed;
}

int diff(TestbedOptions& o) {
  // diff(1)'s convention: 0 the same, 1 different (with --exit-code), 2 trouble.
  constexpr int kTrouble = 2;
  auto pb = diff_plan(o);
  if (!pb) return fail(err(pb.error().message, kTrouble));
  auto& [plan, build] = *pb;
  auto tb = engine::resolve_testbed(plan, build, plan.workdir);
  if (!tb) return fail(err(tb.error().message, kTrouble));
  // A hypervisor on a plan host is reached as a run reaches it, over SSH
  // to the host with the plan's own settings (the pool outlives `host`).
  // Across several hosts, each host's part is compared with what it holds.
  engine::SessionPool pool(plan);
  auto session = [&](const std::string& t) { return pool.get(t, nullptr); };
  const auto& hosts = plan.testbed->hosts;
  const bool spanning = hosts.size() > 1 && o.uri.empty();
  std::string where;
  std::vector<std::pair<std::string, testbed::Drift>> drifts;  // host ("" for one), drift
  for (size_t k = 0; k < (spanning ? hosts.size() : 1); ++k) {
    auto host = engine::open_testbed_host(*plan.testbed, o.uri, session, spanning ? hosts[k] : "");
    if (!host) return fail(err(host.error().message, kTrouble));
    if (k == 0) where = spanning ? engine::testbed_where(*plan.testbed) : host->where;
    auto r = testbed::diff(host->virt, spanning ? testbed::on_host(*tb, k) : *tb);
    if (!r) return fail(err(r.error().message, kTrouble));
    for (auto& d : *r) drifts.emplace_back(spanning ? hosts[k] : "", std::move(d));
  }
  const std::string run = run_of(build);
  const bool orphaned = !run_is_live(run);
  int differences = 0, present = 0;
  json objs = json::array();
  for (const auto& [on, d] : drifts) {
    if (d.status != "in-sync") ++differences;
    if (d.status != "missing") ++present;
    json fields = json::array();
    for (const auto& f : d.fields) fields.push_back({{"field", f.field}, {"want", f.want}, {"have", f.have}});
    json obj = {{"kind", d.kind}, {"name", d.name}, {"status", d.status}, {"holder", d.holder}, {"fields", fields}};
    if (!on.empty()) obj["host"] = on;
    objs.push_back(std::move(obj));
  }
  // What is there while no run of the build is going: nobody will remove it.
  const bool orphans = orphaned && present > 0;
  if (o.json) {
    std::cout << json{{"testbed", build},     {"uri", where},
                      {"run", run},           {"orphaned", orphans},
                      {"in_sync", differences == 0 && !orphans}, {"differences", differences},
                      {"objects", objs}}.dump(2)
              << "\n";
  } else {
    std::cout << "testbed " << build << " on " << where << ": "
              << (differences ? std::to_string(differences) + " difference(s)" : std::string("in sync with the plan"))
              << (orphans ? "; orphaned: its run is " + run + ", nothing will remove it (runwarden testbed down " +
                                build + ")"
                          : std::string())
              << "\n";
    for (const auto& [on, d] : drifts) {
      if (d.status == "in-sync") continue;
      std::cout << "  " << d.kind << " " << d.name << (on.empty() ? "" : " on " + on) << ": " << d.status;
      if (!d.holder.empty()) std::cout << " (held by " << d.holder << ")";
      for (size_t i = 0; i < d.fields.size(); ++i)
        std::cout << (i ? ", " : " ") << d.fields[i].field << " want '" << d.fields[i].want << "' have '"
                  << d.fields[i].have << "'";
      std::cout << "\n";
    }
  }
  return o.exit_code && (differences > 0 || orphans) ? 1 : kOk;
}

}  // namespace

void add_testbed(CLI::App& app, Action* action) {
  auto o = std::make_shared<TestbedOptions>();
  auto* cmd = app.add_subcommand("testbed",
                                 "Testbeds on a libvirt host: list what runs made (ls), remove what no live run "
                                 "owns (gc), show one (status), remove one (down), compare it with its plan (diff), "
                                 "list its guests' snapshots (snapshots)");
  cmd->require_subcommand(1);
  auto common = [&](CLI::App* sub) {
    sub->add_option("--connect,-c", o->uri,
                    "libvirt URI of the host (default: the plan's for diff, else $RUNWARDEN_LIBVIRT_URI, else "
                    "qemu:///system)");
    sub->add_flag("--json", o->json, "Print as JSON");
  };
  auto* ls_cmd = cmd->add_subcommand("ls", "List the guests, networks and pools runs made, with their run's state");
  common(ls_cmd);
  ls_cmd->add_option("--testbed", o->testbed, "Only this testbed (a build name)");
  ls_cmd->callback([=] { *action = [=] { return ls(*o); }; });

  auto* gc_cmd = cmd->add_subcommand(
      "gc", "Remove what runs made whose run has ended or no longer exists; a live run's testbed is never touched");
  common(gc_cmd);
  gc_cmd->add_option("--testbed", o->testbed, "Only this testbed (a build name)");
  gc_cmd->add_flag("--dry-run,-n", o->dry_run, "Only print what would be removed");
  gc_cmd->add_flag("--runs", o->all_runs,
                   "Every hypervisor the runs on this controller used (their plans' hosts over SSH, or their "
                   "libvirt URIs), Open vSwitch bridges and VXLAN links included");
  gc_cmd->callback([=] { *action = [=] { return gc(*o); }; });

  auto* up_cmd = cmd->add_subcommand(
      "up", "Make a plan's testbed and keep it (its guests up, SSH answering), without running the plan's stages: "
            "the stages a run would start with, here in the foreground. Prints the guests; remove them with "
            "`runwarden testbed down NAME`. Ctrl-C, or a failure, removes what it made (unless --keep)");
  up_cmd->add_option("plan", o->testbed, "The plan file")->required();
  up_cmd->add_option("--build", o->build, "The testbed's name (as a run's build name: a later run of that name replaces it)")
      ->required();
  up_cmd->add_flag("--keep", o->keep, "Keep what a failed up made (for debugging)");
  up_cmd->add_flag("--json", o->json, "Print the result as JSON");
  up_cmd->callback([=] { *action = [=] { return up(*o); }; });

  auto* down_cmd = cmd->add_subcommand("down", "Remove every guest, network and pool of one testbed (exit 3 if its "
                                               "run is still going)");
  common(down_cmd);
  down_cmd->add_option("testbed", o->testbed, "The testbed: its run's build name")->required();
  down_cmd->add_flag("--dry-run,-n", o->dry_run, "Only print what would be removed");
  down_cmd->callback([=] { *action = [=] { return down(*o); }; });

  auto* diff_cmd = cmd->add_subcommand(
      "diff", "Compare a testbed's plan with what is on the host: missing, extra, changed (by field), conflicting "
              "(a name held by something not this testbed's) and orphaned (no live run owns it). Exit 0 in sync, "
              "1 different (with --exit-code), 2 trouble");
  common(diff_cmd);
  diff_cmd->add_option("plan_or_build", o->testbed, "A plan file (with --build), or a run's build name (its plan)")
      ->required();
  diff_cmd->add_option("--build", o->build, "For a plan file: the testbed (build name) to compare it with");
  diff_cmd->add_flag("--exit-code", o->exit_code, "Exit 1 when there is any difference, as diff(1) does");
  diff_cmd->callback([=] { *action = [=] { return diff(*o); }; });

  auto* status_cmd = cmd->add_subcommand(
      "status", "Show one testbed as it is on the host, with or without its run: guests (state, addresses, "
                "snapshots), networks, pool");
  common(status_cmd);
  status_cmd->add_option("testbed", o->testbed, "The testbed: its run's build name")->required();
  status_cmd->callback([=] { *action = [=] { return status(*o); }; });

  auto* snap_cmd = cmd->add_subcommand("snapshots", "List the snapshots of one testbed's guests: guest, name, when "
                                                    "taken (UTC), the guest's state then");
  common(snap_cmd);
  snap_cmd->add_option("testbed", o->testbed, "The testbed: its run's build name")->required();
  snap_cmd->callback([=] { *action = [=] { return snapshots(*o); }; });
}

}  // namespace rw::cli
