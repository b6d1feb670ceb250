#pragma once
// Runs the testbed's generated tasks (testbed_op "up" and "down") on the
// controller: the plan's testbed: section resolved for this run, then
// testbed::up or testbed::down through the libvirt API.

#include <functional>

#include "common/result.h"
#include "engine/executor.h"
#include "testbed/spec.h"
#include "testbed/virt.h"

namespace rw::ssh {
class Relay;
class Session;
}

namespace rw::engine {

/// The libvirt URI a plan's testbed uses: its `libvirt:` key, else
/// $RUNWARDEN_LIBVIRT_URI, else qemu:///system. With `host:`, the URI on
/// that host: its `libvirt:` key, else qemu:///system.
std::string testbed_uri(const plan::Testbed& tb);

/// Where a plan's testbed lives, for messages and records: its URI, or
/// "URI on hv1" / "URI on hv1, hv2" for plan hosts.
std::string testbed_where(const plan::Testbed& tb);

/// A testbed's libvirt connection. With a `host:` it goes through `relay`
/// (virt-ssh-helper on that host over the run's SSH), declared first so the
/// connection closes before it. `where` names it: the URI, or "URI on HOST".
struct TestbedHost {
  std::unique_ptr<ssh::Relay> relay;
  testbed::Virt virt;
  std::string where;
};
/// Opens libvirt at `uri` (the plan's, or --connect's); when `uri` is empty
/// and the plan names a `host:`, through `session` to that host (or to
/// `hv`, one of its `hosts:`). Errors are prefixed "testbed host HOST: " and
/// carry what the helper said.
Result<TestbedHost> open_testbed_host(const plan::Testbed& tb, const std::string& uri,
                                      const std::function<Result<ssh::Session*>(const std::string&)>& session,
                                      const std::string& hv = "");

/// The plan's testbed for run `build`: the build name is the ownership tag;
/// relative ssh_key paths are read from `workdir`. Reads the key files, so
/// a missing one fails here, before anything is made.
Result<testbed::Testbed> resolve_testbed(const plan::Plan& plan, const std::string& build,
                                         const std::string& workdir);

/// Runs testbed tasks: golden (boot, setup, seal), up, down, and snapshots.
class TestbedExecutor : public Executor {
 public:
  using SessionFn = std::function<Result<ssh::Session*>(const std::string&, const std::atomic<bool>*)>;
  /// `steps` runs a golden's setup steps and SSH waits on guests; `drop`
  /// forgets a target's pooled SSH session (after a revert, a seal);
  /// `session` gives the run's session to a target (a testbed's `host:`).
  TestbedExecutor(ExecutorSet* steps, std::function<void(const std::string&)> drop, SessionFn session = nullptr)
      : steps_(steps), drop_(std::move(drop)), session_(std::move(session)) {}
  TaskOutcome run(const TaskContext& ctx) override;

 private:
  /// Runs `step` on `target` through the other executors.
  TaskOutcome step(const TaskContext& ctx, const plan::Task& step, const plan::Target& target);
  /// Waits until `target` answers SSH again, up to `timeout`.
  TaskOutcome wait_ssh(const TaskContext& ctx, const std::string& target, Millis timeout);
  TaskOutcome golden(const TaskContext& ctx, const testbed::Virt& host, const testbed::Testbed& tb,
                     const std::function<void(const std::string&)>& out);
  /// `host_of(guest)`: the connection to the host it runs on.
  TaskOutcome snapshot(const TaskContext& ctx, const std::function<const testbed::Virt&(const std::string&)>& host_of,
                       const testbed::Testbed& tb, const std::function<void(const std::string&)>& out);
  /// up and down of a testbed across several hosts (testbed/span.h).
  TaskOutcome spanning(const TaskContext& ctx, const testbed::Testbed& tb, std::vector<TestbedHost>& hosts,
                       const std::function<void(const std::string&)>& out);
  /// The testbed's Open vSwitch bridges on hypervisor `host` (plan host
  /// name, or the controller), as part `k`; ok when there are none.
  TaskOutcome ovs_bridges(const TaskContext& ctx, const testbed::Testbed& tb, size_t k, const std::string& host,
                          const std::function<void(const std::string&)>& out);
  TaskOutcome ovs_remove(const TaskContext& ctx, const testbed::Testbed& tb, const std::string& host);
  /// Runs shell `script` as a step on plan host `host`.
  TaskOutcome on_host(const TaskContext& ctx, const std::string& host, const std::string& name,
                      const std::string& script);

  ExecutorSet* steps_;
  std::function<void(const std::string&)> drop_;
  SessionFn session_;
};

}  // namespace rw::engine
