#include "engine/testbed_executor.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/files.h"
#include "common/shell.h"
#include "common/text.h"
#include "ssh/known_hosts.h"
#include "ssh/relay.h"
#include "state/events.h"
#include "state/store.h"
#include "state/testbed_record.h"
#include "testbed/snapshot.h"
#include "testbed/span.h"
#include "testbed/up.h"

namespace rw::engine {
namespace {

/// The last steps on a golden's build VM: cloud-init forgets this instance
/// (and its host keys, which cloud-init makes again per clone), the machine
/// id is emptied (each clone takes its own from its UUID), the disks are
/// synced, and the VM powers itself off once this command has returned.
constexpr const char* kSealCommand =
    "sync\n"
    "if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs --seed; "
    "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; fi\n"
    "if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi\n"
    "rm -f /var/lib/dbus/machine-id\n"
    "sync\n"
    "setsid sh -c 'sleep 1; if [ -d /run/systemd/system ]; then systemctl poweroff; else poweroff; fi' "
    "</dev/null >/dev/null 2>&1 &\n";

TaskOutcome outcome(bool ok, const std::string& reason) {
  TaskOutcome o;
  o.ok = ok;
  o.exit_code = ok ? 0 : 1;
  o.reason = reason;
  return o;
}

testbed::Accel accel_of(const std::string& a) {
  if (a == "kvm") return testbed::Accel::Kvm;
  if (a == "tcg") return testbed::Accel::Tcg;
  return testbed::Accel::Auto;
}

}  // namespace

std::string testbed_uri(const plan::Testbed& tb) {
  if (!tb.libvirt.empty()) return tb.libvirt;
  if (!tb.host.empty()) return "qemu:///system";
  const char* env = std::getenv("RUNWARDEN_LIBVIRT_URI");
  return env && *env ? env : "qemu:///system";
}

std::string testbed_where(const plan::Testbed& tb) {
  std::string w = testbed_uri(tb);
  for (size_t k = 0; k < tb.hosts.size(); ++k) w += (k ? ", " : " on ") + tb.hosts[k];
  return w;
}

Result<TestbedHost> open_testbed_host(const plan::Testbed& tb, const std::string& uri,
                                      const std::function<Result<ssh::Session*>(const std::string&)>& session,
                                      const std::string& host) {
  const std::string& hv = host.empty() ? tb.host : host;
  if (!uri.empty() || hv.empty()) {
    RW_ASSIGN(testbed::Virt v, testbed::Virt::open(uri.empty() ? testbed_uri(tb) : uri));
    std::string where = v.uri();
    return TestbedHost{nullptr, std::move(v), where};
  }
  auto failed = [&](const std::string& why) { return err("testbed host " + hv + ": " + why); };
  if (!session) return failed("no SSH sessions here");
  auto s = session(hv);
  if (!s) return failed(s.error().message);
  const std::string remote = testbed_uri(tb);
  auto relay = ssh::Relay::start(**s, "virt-ssh-helper " + shell_quote(remote));
  if (!relay) return failed(relay.error().message);
  auto v = testbed::Virt::open("qemu+unix:///system?socket=" + (*relay)->socket_path());
  if (!v) {
    const std::string said = (*relay)->last_error();
    return failed(v.error().message + (said.empty() ? "" : " (" + said + ")"));
  }
  return TestbedHost{std::move(*relay), std::move(*v), remote + " on " + hv};
}

Result<testbed::Testbed> resolve_testbed(const plan::Plan& plan, const std::string& build,
                                         const std::string& workdir) {
  const plan::Testbed& tb = *plan.testbed;
  testbed::Testbed out;
  if (tb.hosts.size() > 1)
    for (const auto& h : tb.hosts) {
      auto t = plan.targets.find(h);
      out.hosts.push_back({h, t == plan.targets.end() ? std::string() : t->second.address});
    }
  out.id = build;
  out.uri = testbed_uri(tb);
  out.images_dir = tb.images_dir;
  out.up_timeout = tb.up_timeout;
  if (const char* p = std::getenv("RUNWARDEN_TESTBED_PARALLEL"); p && std::atoi(p) > 0) out.parallel = std::atoi(p);
  if (tb.parallel > 0) out.parallel = tb.parallel;
  for (const auto& i : tb.images) out.images.push_back({i.name, i.path, i.format});
  for (const auto& n : tb.networks) {
    testbed::NetworkSpec s;
    s.name = n.name;
    s.mode = n.nat ? testbed::NetworkSpec::Mode::Nat : testbed::NetworkSpec::Mode::Isolated;
    RW_ASSIGN(s.subnet, parse_subnet(n.subnet));
    s.mtu = n.mtu;
    s.ovs = n.ovs;
    out.networks.push_back(std::move(s));
  }
  auto group = [&](const plan::TestbedGuest& g) -> Result<testbed::GuestGroup> {
    testbed::GuestGroup o;
    o.name = g.name;
    o.instances = g.instances;
    o.image = g.image;
    o.golden = g.golden;
    o.disk_bytes = g.disk_bytes;
    o.data_disks = g.data_disk_bytes;
    o.vcpus = g.cpus;
    o.memory_mib = g.memory_mib;
    o.accel = accel_of(g.accel);
    o.kernel = g.kernel;
    o.initrd = g.initrd;
    o.cmdline = g.cmdline;
    o.networks = g.networks;
    o.macs = g.nic_macs;
    o.placement = g.placement;
    o.addresses = g.addresses;
    o.user_data = g.user_data;
    if (!g.ssh_key.empty()) {
      const std::string path = g.ssh_key[0] == '/' ? g.ssh_key : (workdir.empty() ? "." : workdir) + "/" + g.ssh_key;
      auto key = read_file(path);
      if (!key) return err(g.name + ": ssh_key: " + key.error().message);
      std::string k(trim(*key));
      if (k.rfind("ssh-", 0) != 0 && k.rfind("ecdsa-", 0) != 0)
        return err(g.name + ": ssh_key " + path + " is not an OpenSSH public key (give the .pub file)");
      o.ssh_keys.push_back(k);
    }
    return o;
  };
  for (const auto& g : tb.goldens) {
    RW_ASSIGN(testbed::GuestGroup o, group(g));
    out.goldens.push_back(std::move(o));
  }
  for (const auto& g : tb.guests) {
    RW_ASSIGN(testbed::GuestGroup o, group(g));
    out.guests.push_back(std::move(o));
  }
  return out;
}

/// Each guest's and golden's SSH host key (made once per run, kept in the
/// run directory) into the testbed's seeds and the run's known_hosts.
Status seed_host_keys(const TaskContext& ctx, testbed::Testbed& tb) {
  if (ctx.plan->testbed->host_keys != "seed") return {};
  // Goldens are made side by side, and all of them write known_hosts.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const std::string dir = ctx.run_dir + "/testbed-hostkeys";
  for (auto* groups : {&tb.goldens, &tb.guests})
    for (auto& g : *groups)
      for (const auto& name : g.instances) {
        RW_ASSIGN(testbed::HostKey k, testbed::load_or_make_host_key(dir, name));
        auto t = ctx.plan->targets.find(name);
        if (t != ctx.plan->targets.end() && !t->second.known_hosts.empty() && !t->second.address.empty())
          RW_TRY(ssh::trust_host(t->second.known_hosts, t->second.address, t->second.port, k.public_key));
        g.host_keys[name] = std::move(k);
      }
  return {};
}

namespace {

/// The guests `up` brought up, in the output and in the run's testbed.json
/// (for the views that do not ask libvirt: web, metrics; not the run's
/// truth, so a failure to write it is only logged).
void record_up(const TaskContext& ctx, const std::string& where, const std::vector<testbed::GuestUp>& guests,
               const std::function<void(const std::string&)>& out) {
  std::vector<state::GuestRecord> records;
  for (const auto& g : guests) {
    std::string addrs;
    for (const auto& a : g.addresses) addrs += (addrs.empty() ? "" : ", ") + a;
    out("guest " + g.name + " (" + g.libvirt_name + ") up at " + addrs);
    records.push_back({g.name, g.libvirt_name, g.addresses, "up"});
  }
  if (auto s = ctx.run_dir.empty() ? Status{} : state::record_guests_up(ctx.run_dir + "/" + state::kTestbedRecordFile, where, records); !s)
    out("cannot record the testbed's guests: " + s.error().message);
}

void record_removed(const TaskContext& ctx, const std::function<void(const std::string&)>& out) {
  if (auto s = ctx.run_dir.empty() ? Status{} : state::record_guests_removed(ctx.run_dir + "/" + state::kTestbedRecordFile); !s)
    out("cannot record the testbed's removal: " + s.error().message);
}

/// A failed testbed task; cancelled when the run is being cancelled.
TaskOutcome failure(const TaskContext& ctx, const std::string& why) {
  TaskOutcome o = outcome(false, why);
  o.cancelled = ctx.cancel && ctx.cancel->load();
  return o;
}

}  // namespace

TaskOutcome TestbedExecutor::run(const TaskContext& ctx) {
  const plan::Task& task = *ctx.task;
  if (!ctx.plan || !ctx.plan->testbed) return outcome(false, "the plan has no testbed: section");
  // Several hosts' parts are made side by side, each telling its progress.
  auto out_mu = std::make_shared<std::mutex>();
  auto out = [&ctx, out_mu](const std::string& line) {
    std::lock_guard<std::mutex> lock(*out_mu);
    if (ctx.output) ctx.output(false, line + "\n");
    // "testbed: 7/12 guests up" also becomes the run's progress (state.json,
    // runwarden status, systemctl status runner@X).
    if (line.rfind("testbed: ", 0) == 0 && !ctx.events_file.empty()) {
      state::Event e;
      e.type = "progress";
      e.message = line;
      (void)state::append_event(ctx.events_file, e);
    }
  };
  auto tb = resolve_testbed(*ctx.plan, ctx.build, ctx.workdir);
  if (!tb) return outcome(false, tb.error().message);
  // This run of the build name: what an earlier run left is replaced, what
  // this one made (before a crash) is kept.
  if (auto st = state::RunDir(state::state_root(), ctx.build).load(); st && st->created_at_ms)
    tb->run = std::to_string(st->created_at_ms);
  if (task.testbed_op == "golden" || task.testbed_op == "up")
    if (auto s = seed_host_keys(ctx, *tb); !s) return outcome(false, "testbed host keys: " + s.error().message);
  // A hypervisor on a plan host: libvirt's protocol goes through a local
  // socket relayed over the run's SSH connection to virt-ssh-helper there.
  auto session = [&](const std::string& t) -> Result<ssh::Session*> {
    if (!session_) return err("no SSH sessions here");
    return session_(t, ctx.cancel);
  };
  if (tb->hosts.size() > 1 && task.testbed_op != "golden") {
    std::vector<TestbedHost> hosts;
    for (const auto& h : tb->hosts) {
      auto c = open_testbed_host(*ctx.plan->testbed, "", session, h.name);
      if (!c) return failure(ctx, c.error().message);
      hosts.push_back(std::move(*c));
    }
    if (task.kind != plan::TaskKind::Snapshot) return spanning(ctx, *tb, hosts, out);
    auto host_of = [&](const std::string& guest) -> const testbed::Virt& {
      for (const auto& g : tb->guests)
        if (auto at = g.placement.find(guest); at != g.placement.end())
          for (size_t k = 0; k < tb->hosts.size(); ++k)
            if (tb->hosts[k].name == at->second) return hosts[k].virt;
      return hosts.front().virt;
    };
    return snapshot(ctx, host_of, *tb, out);
  }
  auto conn = open_testbed_host(*ctx.plan->testbed, ctx.plan->testbed->host.empty() ? tb->uri : "", session);
  if (!conn) return outcome(false, conn.error().message);
  if (conn->relay) out("testbed: libvirt " + conn->where + ", over SSH");
  const testbed::Virt* host = &conn->virt;
  if (task.kind == plan::TaskKind::Snapshot)
    return snapshot(ctx, [host](const std::string&) -> const testbed::Virt& { return *host; }, *tb, out);
  // Open vSwitch bridges are the host's own: made before libvirt plugs a
  // guest into them, by a script on the hypervisor (its plan host, or here).
  const std::string hv = ctx.plan->testbed->host.empty() ? std::string(plan::Plan::kController)
                                                          : ctx.plan->testbed->host;
  if (task.testbed_op == "golden" || task.testbed_op == "up")
    if (auto o = ovs_bridges(ctx, *tb, 0, hv, out); !o.ok) return failure(ctx, o.reason);
  // Goldens are built on the first host, with its part of the networks.
  if (task.testbed_op == "golden") return golden(ctx, *host, testbed::on_host(*tb, 0), out);
  if (task.testbed_op == "up") {
    auto r = testbed::up(*host, *tb, ctx.cancel, out);
    if (!r) return failure(ctx, r.error().message);
    record_up(ctx, conn->where, r->guests, out);
    return outcome(true, "");
  }
  if (task.testbed_op == "down") {
    auto r = testbed::down(*host, tb->id);
    if (!r) return outcome(false, r.error().message);
    if (auto o = ovs_remove(ctx, *tb, hv); !o.ok) return failure(ctx, o.reason);
    out("testbed " + tb->id + ": removed " + std::to_string(*r) + " object(s) from " + tb->uri);
    record_removed(ctx, out);
    return outcome(true, "");
  }
  return outcome(false, "unknown testbed operation '" + task.testbed_op + "'");
}

TaskOutcome TestbedExecutor::on_host(const TaskContext& ctx, const std::string& host, const std::string& name,
                                     const std::string& script) {
  auto target = ctx.plan->targets.find(host);
  if (target == ctx.plan->targets.end()) return outcome(false, "no host " + host);
  plan::Task t;
  t.name = name;
  t.on = {host};
  t.kind = plan::TaskKind::Run;
  t.run = script;
  t.timeout = Millis(60'000);
  return step(ctx, t, target->second);
}

TaskOutcome TestbedExecutor::ovs_bridges(const TaskContext& ctx, const testbed::Testbed& tb, size_t k,
                                         const std::string& host, const std::function<void(const std::string&)>& out) {
  const std::string script = testbed::ovs_ensure_script(tb, k);
  if (script.empty()) return outcome(true, "");
  auto o = on_host(ctx, host, "ovs", script);
  if (!o.ok) return outcome(false, "Open vSwitch bridges: " + o.reason);
  out("testbed: Open vSwitch bridges on " + host + " ready");
  return o;
}

TaskOutcome TestbedExecutor::ovs_remove(const TaskContext& ctx, const testbed::Testbed& tb, const std::string& host) {
  if (std::none_of(tb.networks.begin(), tb.networks.end(), [](const testbed::NetworkSpec& n) { return n.ovs; }))
    return outcome(true, "");
  auto o = on_host(ctx, host, "ovs-down", testbed::ovs_remove_script(tb.id));
  if (!o.ok) return outcome(false, "Open vSwitch bridges: " + o.reason);
  return o;
}

TaskOutcome TestbedExecutor::spanning(const TaskContext& ctx, const testbed::Testbed& tb,
                                      std::vector<TestbedHost>& hosts,
                                      const std::function<void(const std::string&)>& out) {
  const std::string& op = ctx.task->testbed_op;
  const std::string where = testbed_where(*ctx.plan->testbed);
  if (op == "down") {
    // The other hosts' parts first; each host's VXLAN links once its
    // guests and bridges are gone.
    int removed = 0;
    for (size_t k = hosts.size(); k-- > 0;) {
      const std::string& name = tb.hosts[k].name;
      auto r = testbed::down(hosts[k].virt, tb.id);
      if (!r) return failure(ctx, name + ": " + r.error().message);
      removed += *r;
      auto o = on_host(ctx, name, "vxlan-down", testbed::vxlan_remove_script(tb));
      if (!o.ok) return failure(ctx, name + ": VXLAN links: " + o.reason);
      if (o = ovs_remove(ctx, tb, name); !o.ok) return failure(ctx, name + ": " + o.reason);
    }
    out("testbed " + tb.id + ": removed " + std::to_string(removed) + " object(s) from " + where);
    record_removed(ctx, out);
    return outcome(true, "");
  }
  if (op != "up") return outcome(false, "unknown testbed operation '" + op + "'");
  const size_t n = hosts.size();
  std::vector<testbed::Testbed> parts;
  for (size_t k = 0; k < n; ++k) parts.push_back(testbed::on_host(tb, k));
  // Every host's networks and pool, then the VXLAN links that join the
  // bridges, then golden copies: before any guest boots and asks for DHCP.
  testbed::UpReport rep;
  std::vector<testbed::PoolPtr> pools;
  for (size_t k = 0; k < n; ++k) {
    if (auto o = ovs_bridges(ctx, tb, k, tb.hosts[k].name, out); !o.ok) return failure(ctx, tb.hosts[k].name + ": " + o.reason);
    auto pool = testbed::prepare_host(hosts[k].virt, parts[k], rep, out);
    if (!pool) return failure(ctx, tb.hosts[k].name + ": " + pool.error().message);
    pools.push_back(std::move(*pool));
    auto o = on_host(ctx, tb.hosts[k].name, "vxlan", testbed::vxlan_ensure_script(parts[k], k));
    if (!o.ok) return failure(ctx, tb.hosts[k].name + ": VXLAN links: " + o.reason);
    out("testbed: networks on " + tb.hosts[k].name + " joined to the other hosts by VXLAN");
  }
  for (size_t k = 1; k < n; ++k)
    for (const auto& g : parts[k].goldens) {
      auto c = testbed::copy_golden(hosts[0].virt, hosts[k].virt, tb.id, g.name);
      if (!c) return failure(ctx, tb.hosts[k].name + ": " + c.error().message);
      out("testbed: golden " + g.name + (*c ? " copied to " : " present on ") + tb.hosts[k].name);
    }
  if (ctx.cancel && ctx.cancel->load()) return failure(ctx, "testbed up cancelled");
  // Each host's clones and guests, the hosts side by side.
  std::vector<std::vector<testbed::GuestSpec>> specs(n);
  std::vector<testbed::UpReport> made(n);
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < n; ++k)
    threads.emplace_back([&, k] {
      auto r = testbed::make_guests(hosts[k].virt, pools[k].get(), parts[k], ctx.cancel, made[k]);
      if (r) specs[k] = std::move(*r);
      else errors[k] = tb.hosts[k].name + ": " + r.error().message;
    });
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (!e.empty()) return failure(ctx, e);
  std::vector<testbed::GuestSpec> all;
  for (auto& s : specs) all.insert(all.end(), s.begin(), s.end());
  auto up = testbed::wait_for_leases(hosts[0].virt, parts[0], all, ctx.cancel, out);
  if (!up) return failure(ctx, up.error().message);
  record_up(ctx, where, *up, out);
  return outcome(true, "");
}

TaskOutcome TestbedExecutor::step(const TaskContext& ctx, const plan::Task& step, const plan::Target& target) {
  Executor* ex = steps_ ? steps_->find(step, target) : nullptr;
  if (!ex) return outcome(false, std::string("no executor for a ") + plan::to_string(step.kind) + " step on " + target.name);
  TaskContext c = ctx;
  c.task = &step;
  c.target = &target;
  c.workdir = step.workdir.empty() ? ctx.plan->workdir : step.workdir;
  return ex->run(c);
}

TaskOutcome TestbedExecutor::wait_ssh(const TaskContext& ctx, const std::string& target, Millis timeout) {
  auto t = ctx.plan->targets.find(target);
  if (t == ctx.plan->targets.end()) return outcome(false, "no target " + target);
  plan::Task wait;
  wait.name = "ssh";
  wait.on = {target};
  wait.kind = plan::TaskKind::WaitFor;
  wait.wait_for.what = "ssh";
  wait.wait_for.timeout = timeout;
  return step(ctx, wait, t->second);
}

TaskOutcome TestbedExecutor::golden(const TaskContext& ctx, const testbed::Virt& host, const testbed::Testbed& tb,
                                    const std::function<void(const std::string&)>& out) {
  const std::string& name = ctx.task->golden;
  const plan::TestbedGuest* g = nullptr;
  for (const auto& gg : ctx.plan->testbed->goldens)
    if (gg.name == name) g = &gg;
  auto target = ctx.plan->targets.find(name);
  if (!g || target == ctx.plan->targets.end()) return outcome(false, "the plan has no golden named " + name);
  auto failed = [&](const std::string& why) {
    TaskOutcome o = outcome(false, "golden " + name + ": " + why);
    o.cancelled = ctx.cancel && ctx.cancel->load();
    return o;
  };
  // The build VM lives as long as `host`'s connection: this task's. A
  // failure, a cancel or a crashed runner leaves it nowhere.
  auto boot = testbed::boot_golden(host, tb, name, ctx.cancel, out);
  if (!boot) return failed(boot.error().message);
  if (boot->sealed) {
    out("testbed: golden " + name + " is made already");
    return outcome(true, "");
  }
  // A build VM made again (a retry, a restarted runner) has new host keys,
  // unless they come from its seed.
  if (ctx.plan->testbed->host_keys != "seed" && !target->second.known_hosts.empty())
    (void)ssh::forget_host(target->second.known_hosts, target->second.address, target->second.port);
  drop_(name);
  out("testbed: golden " + name + ": build VM at " +
      (boot->vm.addresses.empty() ? std::string("no address") : boot->vm.addresses.front()));
  if (auto o = wait_ssh(ctx, name, tb.up_timeout); !o.ok) return failed("no SSH: " + o.reason);
  const size_t n = g->setup.size();
  for (size_t i = 0; i < n; ++i) {
    const plan::Task& s = g->setup[i];
    out("testbed: golden " + name + ": setup " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + s.name + ")");
    if (auto o = step(ctx, s, target->second); !o.ok) return failed("setup step '" + s.name + "' failed: " + o.reason);
  }
  plan::Task seal;
  seal.name = "seal";
  seal.on = {name};
  seal.kind = plan::TaskKind::Run;
  seal.run = kSealCommand;
  seal.timeout = Millis(120'000);
  out("testbed: golden " + name + ": sealing");
  if (auto o = step(ctx, seal, target->second); !o.ok) return failed("seal failed: " + o.reason);
  drop_(name);
  if (auto s = testbed::seal_golden(host, tb, name, Millis(120'000), ctx.cancel); !s)
    return failed(s.error().message);
  out("testbed: golden " + name + " sealed");
  return outcome(true, "");
}

TaskOutcome TestbedExecutor::snapshot(const TaskContext& ctx,
                                      const std::function<const testbed::Virt&(const std::string&)>& host_of,
                                      const testbed::Testbed& tb, const std::function<void(const std::string&)>& out) {
  const plan::Task& t = *ctx.task;
  std::vector<std::string> guests;
  if (ctx.target->local) {
    for (const auto& g : tb.guests) guests.insert(guests.end(), g.instances.begin(), g.instances.end());
  } else {
    guests = {ctx.target->name};
  }
  const std::string& snap = t.snapshot_name;
  if (t.snapshot_op == "create") {
    if (guests.size() == 1) {
      if (auto s = testbed::create_snapshot(host_of(guests[0]), tb.id, guests[0], snap); !s)
        return outcome(false, s.error().message);
      out("snapshot " + snap + " of " + guests[0] + " taken");
      return outcome(true, "");
    }
    // The whole testbed: each host's guests paused, snapshotted and resumed
    // together, host after host; a failure deletes what was taken, so the
    // set is complete or absent.
    std::vector<std::pair<const testbed::Virt*, std::vector<std::string>>> by_host;
    for (const auto& g : guests) {
      const testbed::Virt* h = &host_of(g);
      auto at = std::find_if(by_host.begin(), by_host.end(), [&](const auto& e) { return e.first == h; });
      if (at == by_host.end()) by_host.push_back({h, {g}});
      else at->second.push_back(g);
    }
    for (size_t i = 0; i < by_host.size(); ++i) {
      if (auto s = testbed::snapshot_all(*by_host[i].first, tb.id, by_host[i].second, snap); !s) {
        for (size_t j = 0; j < i; ++j)
          for (const auto& g : by_host[j].second) (void)testbed::delete_snapshot(*by_host[j].first, tb.id, g, snap);
        return outcome(false, s.error().message);
      }
    }
    for (const auto& g : guests) out("snapshot " + snap + " of " + g + " taken");
    return outcome(true, "");
  }
  if (t.snapshot_op == "revert") {
    for (const auto& g : guests) {
      if (auto s = testbed::revert_snapshot(host_of(g), tb.id, g, snap); !s) return outcome(false, s.error().message);
      // Its sessions were open before the revert, or not yet: either way
      // the guest does not know them now.
      drop_(g);
      out("guest " + g + " reverted to snapshot " + snap);
    }
    for (const auto& g : guests)
      if (auto o = wait_ssh(ctx, g, tb.up_timeout); !o.ok) return outcome(false, g + ": no SSH after the revert: " + o.reason);
    return outcome(true, "");
  }
  if (t.snapshot_op == "delete") {
    for (const auto& g : guests) {
      auto r = testbed::delete_snapshot(host_of(g), tb.id, g, snap);
      if (!r) return outcome(false, r.error().message);
      out(*r ? "snapshot " + snap + " of " + g + " deleted" : g + " has no snapshot " + snap);
    }
    return outcome(true, "");
  }
  return outcome(false, "unknown snapshot operation '" + t.snapshot_op + "'");
}

}  // namespace rw::engine
