#include "engine/ssh_executor.h"

#include <set>
#include <thread>

#include "common/clock.h"
#include "common/files.h"
#include "common/shell.h"

namespace rw::engine {
namespace {

TaskOutcome failed(std::string reason) {
  TaskOutcome o;
  o.reason = std::move(reason);
  return o;
}

TaskOutcome from_exec(const Result<ssh::Session::ExecResult>& r, const std::optional<Millis>& timeout) {
  if (!r) return failed(r.error().message);
  TaskOutcome o;
  o.exit_code = r->exit_code;
  o.timed_out = r->timed_out;
  o.cancelled = r->cancelled;
  o.ok = !r->timed_out && !r->cancelled && r->exit_code && *r->exit_code == 0;
  if (!o.ok) {
    if (r->cancelled) o.reason = "cancelled";
    else if (r->timed_out) o.reason = "timed out after " + format_duration(timeout.value_or(Millis(0)));
    else if (r->exit_code) o.reason = "exit code " + std::to_string(*r->exit_code);
    else if (!r->exit_signal.empty()) o.reason = "killed by signal SIG" + r->exit_signal;
    else o.reason = "the remote command ended without an exit status";
  }
  return o;
}

std::string local_path(const TaskContext& ctx, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return (ctx.workdir.empty() ? "." : ctx.workdir) + "/" + p;
}

/// wait_for: polls `probe` every second until it succeeds or the timeout.
TaskOutcome wait_until(const TaskContext& ctx, const std::function<Status()>& probe) {
  const auto& w = ctx.task->wait_for;
  int64_t deadline = mono_ms() + w.timeout.count();
  std::string last;
  for (;;) {
    auto s = probe();
    if (s.ok()) {
      TaskOutcome o;
      o.ok = true;
      o.exit_code = 0;
      return o;
    }
    last = s.error().message;
    if (ctx.output) ctx.output(true, "waiting: " + last + "\n");
    for (int i = 0; i < 10; ++i) {
      if (ctx.cancel && ctx.cancel->load()) {
        TaskOutcome o = failed("cancelled");
        o.cancelled = true;
        return o;
      }
      if (mono_ms() >= deadline) {
        TaskOutcome o = failed("not reachable after " + format_duration(w.timeout) + ": " + last);
        o.timed_out = true;
        return o;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace

ssh::Endpoint endpoint_for(const plan::Target& t) {
  ssh::Endpoint ep;
  ep.name = t.name;
  ep.address = t.address;
  ep.port = t.port;
  ep.user = t.user;
  ep.identity = t.identity;
  ep.known_hosts = t.known_hosts;
  ep.host_key_policy = t.host_key_policy;
  return ep;
}

SessionPool::~SessionPool() {
  // Guests before the hosts they tunnel through.
  std::vector<std::string> order;
  std::set<std::string> seen;
  for (auto& [name, e] : entries_) {
    std::vector<std::string> chain;
    for (std::string n = name; !n.empty() && !seen.count(n);) {
      chain.push_back(n);
      seen.insert(n);
      auto it = plan_.targets.find(n);
      n = it == plan_.targets.end() ? "" : it->second.via;
    }
    order.insert(order.begin(), chain.rbegin(), chain.rend());
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    auto e = entries_.find(*it);
    if (e != entries_.end()) e->second->session.reset();
  }
  retired_.clear();
}

Result<ssh::Session*> SessionPool::get(const std::string& target, const std::atomic<bool>* cancel) {
  auto t = plan_.targets.find(target);
  if (t == plan_.targets.end()) return err("no target " + target);
  ssh::Session* jump = nullptr;
  if (!t->second.via.empty()) {
    RW_ASSIGN(jump, get(t->second.via, cancel));
  }
  Entry* e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = entries_[target];
    if (!slot) slot = std::make_unique<Entry>();
    e = slot.get();
  }
  std::lock_guard<std::mutex> lock(e->mu);
  if (e->session && e->session->alive()) return e->session.get();
  retire(*e);
  if (stopping_ || (cancel && cancel->load())) return err(t->second.name + ": cancelled");
  ssh::ConnectOptions opt;
  opt.cancel = &stopping_;
  auto s = ssh::Session::connect(endpoint_for(t->second), jump, opt);
  if (!s) return s.error();
  e->session = std::move(s).value();
  return e->session.get();
}

void SessionPool::drop(const std::string& target) {
  Entry* e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(target);
    if (it == entries_.end()) return;
    e = it->second.get();
  }
  std::lock_guard<std::mutex> lock(e->mu);
  retire(*e);
}

void SessionPool::retire(Entry& e) {
  if (!e.session) return;
  // Kept, not closed: a guest's session may still use it as its jump host.
  std::lock_guard<std::mutex> g(mu_);
  retired_.push_back(std::move(e.session));
}

TaskOutcome RemoteExecutor::run(const TaskContext& ctx) {
  const plan::Task& task = *ctx.task;
  if (task.kind == plan::TaskKind::WaitFor) {
    const plan::Target& t = *ctx.target;
    const auto& w = task.wait_for;
    if (w.what == "ssh" && !t.local) {
      return wait_until(ctx, [&]() -> Status {
        auto s = pool_.get(t.name, ctx.cancel);
        if (!s) return s.error();
        return {};
      });
    }
    int port = w.what == "ssh" ? t.port : w.port;
    if (t.local || t.via.empty()) {
      std::string addr = t.local ? "127.0.0.1" : t.address;
      return wait_until(ctx, [&] { return ssh::tcp_probe(addr, port, Millis(3000)); });
    }
    // A guest: probe from its jump host, where its address is reachable.
    return wait_until(ctx, [&]() -> Status {
      auto jump = pool_.get(t.via, ctx.cancel);
      if (!jump) return jump.error();
      return (*jump)->tcp_check(t.address, port, Millis(3000));
    });
  }
  auto session = pool_.get(ctx.target->name, ctx.cancel);
  if (!session) return failed(session.error().message);
  ssh::Session* s = *session;

  ssh::Session::ExecOptions opt;
  opt.env = task.env;
  opt.env["RUNWARDEN_BUILD"] = ctx.build;
  opt.env["RUNWARDEN_TASK"] = task.name;
  opt.env["RUNWARDEN_TARGET"] = ctx.target->name;
  opt.env["RUNWARDEN_ATTEMPT"] = std::to_string(ctx.attempt);
  opt.workdir = task.workdir;
  opt.timeout = task.timeout;
  opt.cancel = ctx.cancel;
  opt.kill_grace = ctx.kill_grace;
  auto out = [&](bool is_stderr, std::string_view d) {
    if (ctx.output) ctx.output(is_stderr, d);
  };

  switch (task.kind) {
    case plan::TaskKind::Run:
      return from_exec(s->exec(task.run, opt, out), task.timeout);
    case plan::TaskKind::Script: {
      std::string remote = "/tmp/.runwarden-" + ctx.build + "-" + task.name + "-" + std::to_string(ctx.attempt) + ".sh";
      if (auto p = s->push(local_path(ctx, task.script), remote, 0700, ctx.cancel); !p)
        return failed("push of script " + task.script + ": " + p.error().message);
      const std::string q = shell_quote(remote);
      auto r = s->exec(q + "; rc=$?; rm -f " + q + "; exit $rc", opt, out);
      return from_exec(r, task.timeout);
    }
    case plan::TaskKind::Push: {
      auto p = s->push(local_path(ctx, task.push.src), task.push.dst, task.push.mode, ctx.cancel);
      if (!p) return failed(p.error().message);
      out(false, "pushed " + task.push.src + " to " + ctx.target->name + ":" + task.push.dst + "\n");
      TaskOutcome o;
      o.ok = true;
      o.exit_code = 0;
      return o;
    }
    case plan::TaskKind::Fetch: {
      // Fetched files have a directory of their own per target: a dst can
      // never replace the run's state, markers or logs.
      std::string dst = ctx.run_dir + "/fetched/" + ctx.target->name + "/" + task.fetch.dst;
      auto p = s->fetch(task.fetch.src, dst, ctx.cancel);
      if (!p) return failed(p.error().message);
      out(false, "fetched " + ctx.target->name + ":" + task.fetch.src + " to " + dst + "\n");
      TaskOutcome o;
      o.ok = true;
      o.exit_code = 0;
      return o;
    }
    case plan::TaskKind::WaitFor:
    case plan::TaskKind::Testbed:
    case plan::TaskKind::Snapshot:
      break;
  }
  return failed("unsupported task kind");
}

TaskOutcome LocalExtrasExecutor::run(const TaskContext& ctx) {
  const plan::Task& task = *ctx.task;
  if (task.kind == plan::TaskKind::Script) {
    SpawnSpec spec;
    spec.command = "exec /bin/sh " + shell_quote(local_path(ctx, task.script));
    spec.workdir = task.workdir.empty() ? ctx.workdir : task.workdir;
    spec.env = task.env;
    spec.env["RUNWARDEN_BUILD"] = ctx.build;
    spec.env["RUNWARDEN_EVENTS"] = ctx.events_file;
    spec.timeout = task.timeout;
    spec.cancel = ctx.cancel;
    spec.kill_grace = ctx.kill_grace;
    spec.output = ctx.output;
    return run_process_group(spec);
  }
  return failed(std::string(plan::to_string(task.kind)) + " is not supported on the controller");
}

Executor* StandardExecutors::find(const plan::Task& task, const plan::Target& target) {
  if (task.kind == plan::TaskKind::Testbed) return target.local ? &testbed_ : nullptr;
  // Snapshots go through libvirt: of one guest, or of all on the controller.
  if (task.kind == plan::TaskKind::Snapshot) return target.local || target.testbed ? &testbed_ : nullptr;
  if (task.kind == plan::TaskKind::WaitFor) return &remote_;  // handled in RemoteExecutor's wait path
  if (target.local) {
    if (task.kind == plan::TaskKind::Run) return &local_;
    if (task.kind == plan::TaskKind::Script) return &local_extras_;
    return nullptr;
  }
  return &remote_;
}

}  // namespace rw::engine
