#include "engine/testbed_executor.h"

#include <cstdlib>

#include "common/files.h"
#include "common/text.h"
#include "state/events.h"
#include "state/store.h"
#include "testbed/up.h"

namespace rw::engine {
namespace {

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
  const char* env = std::getenv("RUNWARDEN_LIBVIRT_URI");
  return env && *env ? env : "qemu:///system";
}

Result<testbed::Testbed> resolve_testbed(const plan::Testbed& tb, const std::string& build,
                                         const std::string& workdir) {
  testbed::Testbed out;
  out.id = build;
  out.uri = testbed_uri(tb);
  out.images_dir = tb.images_dir;
  out.up_timeout = tb.up_timeout;
  for (const auto& i : tb.images) out.images.push_back({i.name, i.path, i.format});
  for (const auto& n : tb.networks) {
    testbed::NetworkSpec s;
    s.name = n.name;
    s.mode = n.nat ? testbed::NetworkSpec::Mode::Nat : testbed::NetworkSpec::Mode::Isolated;
    RW_ASSIGN(s.subnet, parse_subnet(n.subnet));
    s.mtu = n.mtu;
    out.networks.push_back(std::move(s));
  }
  for (const auto& g : tb.guests) {
    testbed::GuestGroup o;
    o.name = g.name;
    o.instances = g.instances;
    o.image = g.image;
    o.disk_bytes = g.disk_bytes;
    o.vcpus = g.cpus;
    o.memory_mib = g.memory_mib;
    o.accel = accel_of(g.accel);
    o.kernel = g.kernel;
    o.initrd = g.initrd;
    o.cmdline = g.cmdline;
    o.networks = g.networks;
    o.addresses = g.addresses;
    o.user_data = g.user_data;
    if (!g.ssh_key.empty()) {
      const std::string path = g.ssh_key[0] == '/' ? g.ssh_key : (workdir.empty() ? "." : workdir) + "/" + g.ssh_key;
      auto key = read_file(path);
      if (!key) return err("guest " + g.name + ": ssh_key: " + key.error().message);
      std::string k(trim(*key));
      if (k.rfind("ssh-", 0) != 0 && k.rfind("ecdsa-", 0) != 0)
        return err("guest " + g.name + ": ssh_key " + path + " is not an OpenSSH public key (give the .pub file)");
      o.ssh_keys.push_back(k);
    }
    out.guests.push_back(std::move(o));
  }
  return out;
}

TaskOutcome TestbedExecutor::run(const TaskContext& ctx) {
  const plan::Task& task = *ctx.task;
  if (!ctx.plan || !ctx.plan->testbed) return outcome(false, "the plan has no testbed: section");
  auto out = [&](const std::string& line) {
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
  auto tb = resolve_testbed(*ctx.plan->testbed, ctx.build, ctx.workdir);
  if (!tb) return outcome(false, tb.error().message);
  // This run of the build name: what an earlier run left is replaced, what
  // this one made (before a crash) is kept.
  if (auto st = state::RunDir(state::state_root(), ctx.build).load(); st && st->created_at_ms)
    tb->run = std::to_string(st->created_at_ms);
  auto host = testbed::Virt::open(tb->uri);
  if (!host) return outcome(false, host.error().message);
  if (task.testbed_op == "up") {
    auto r = testbed::up(*host, *tb, ctx.cancel, out);
    if (!r) {
      if (ctx.cancel && ctx.cancel->load()) {
        TaskOutcome o = outcome(false, r.error().message);
        o.cancelled = true;
        return o;
      }
      return outcome(false, r.error().message);
    }
    for (const auto& g : r->guests) {
      std::string addrs;
      for (const auto& a : g.addresses) addrs += (addrs.empty() ? "" : ", ") + a;
      out("guest " + g.name + " (" + g.libvirt_name + ") up at " + addrs);
    }
    return outcome(true, "");
  }
  if (task.testbed_op == "down") {
    auto r = testbed::down(*host, tb->id);
    if (!r) return outcome(false, r.error().message);
    out("testbed " + tb->id + ": removed " + std::to_string(*r) + " object(s) from " + tb->uri);
    return outcome(true, "");
  }
  return outcome(false, "unknown testbed operation '" + task.testbed_op + "'");
}

}  // namespace rw::engine
