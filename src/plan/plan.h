#pragma once
// The plan: what a run executes. Parsed from YAML in plan/parser.cc (the only
// place that reads YAML), or built from --runner-command as a one-stage plan.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/result.h"

namespace rw::plan {

/// Where in the plan file a thing was written (1-based), for error messages.
struct Mark {
  std::string file;
  int line = 0;
  int column = 0;
  std::string str() const;  ///< "file:line:column"
};

/// A host (local or SSH) or a guest (SSH, reached `via` a host or guest).
struct Target {
  std::string name;
  bool local = false;
  bool guest = false;
  std::string address;
  int port = 22;
  std::string user = "root";
  std::string identity;     ///< private key file; empty: ssh-agent
  std::string known_hosts;  ///< empty: the default known_hosts file
  std::string host_key_policy = "strict";  ///< strict | accept-new
  std::string via;          ///< jump target name, empty when direct
  bool testbed = false;     ///< a testbed guest: made by the run, fresh host keys
  bool golden = false;      ///< a golden image's build VM: reached only by its setup steps
  Mark mark;
};

enum class TaskKind { Run, Script, Push, Fetch, WaitFor, Testbed, Snapshot };
const char* to_string(TaskKind k);

struct PushSpec {
  std::string src;  ///< local file or directory (relative to workdir)
  std::string dst;  ///< remote path
  std::optional<int> mode;  ///< overrides the local mode when set
};

struct FetchSpec {
  std::string src;  ///< remote file
  std::string dst;  ///< path under fetched/<target>/ in the run directory
};

struct WaitForSpec {
  std::string what = "ssh";  ///< ssh | tcp
  int port = 22;
  Millis timeout{Millis(300'000)};
};

struct Task {
  std::string name;
  std::vector<std::string> on;  ///< one task instance per target
  TaskKind kind = TaskKind::Run;
  std::string run;     ///< Run: shell command
  std::string script;  ///< Script: local file copied and run remotely
  PushSpec push;
  FetchSpec fetch;
  WaitForSpec wait_for;
  std::optional<Millis> timeout;
  std::optional<int> retries;  ///< overrides the stage's
  std::map<std::string, std::string> env;
  std::string workdir;
  std::string testbed_op;  ///< Testbed: "golden", "up" or "down" (generated tasks only)
  std::string golden;      ///< Testbed "golden": which golden image it builds
  /// Snapshot: "create", "revert" or "delete" of snapshot `snapshot_name`,
  /// per guest in `on`, or of every guest at once when on the controller.
  std::string snapshot_op;
  std::string snapshot_name;
  Mark mark;
};

enum class RetryMode { Task, Stage };

struct Stage {
  std::string name;
  std::vector<Task> tasks;
  int parallel = 0;  ///< 0: unbounded
  int retries = 0;
  Millis retry_delay{Millis(0)};
  RetryMode retry = RetryMode::Task;
  std::string restart_from;  ///< earlier stage to re-run from when this one fails
  bool subruns = false;      ///< categorized: each task instance is a sub-run
  bool generated = false;    ///< made from the testbed: section, not written by the user
  /// Runs after the others whatever they did, a cancel included (the
  /// testbed's teardown under `teardown: always`).
  bool always = false;
  Mark mark;
};

/// The testbed: section (docs/testbed.md). Paths are on the hypervisor host.
struct TestbedImage {
  std::string name;
  std::string path;
  std::string format = "qcow2";  ///< qcow2 | raw
  Mark mark;
};

struct TestbedNetwork {
  std::string name;
  bool nat = false;     ///< else isolated: reachable from the host only
  std::string subnet;   ///< "10.77.0.0/24"
  int mtu = 0;          ///< 0: default
  /// switch: ovs: an Open vSwitch bridge on each host (made by runwarden
  /// over the host's SSH, or on the controller), guests' addresses static
  /// from their seeds (no DHCP, no NAT). Else a Linux bridge libvirt makes.
  bool ovs = false;
  Mark mark;
};

struct TestbedGuest {
  std::string name;  ///< the group; instances are <name>-1..N when count > 1
  int count = 1;
  std::string image;   ///< a base image, or
  std::string golden;  ///< a golden image: the guests are its linked clones
  uint64_t disk_bytes = 0;  ///< 0: the image's size
  std::vector<uint64_t> data_disk_bytes;  ///< blank data disks, after the image's
  int cpus = 1;
  int memory_mib = 512;
  std::string accel = "auto";  ///< auto | kvm | tcg
  std::string kernel, initrd, cmdline;  ///< direct kernel boot
  std::vector<std::string> networks;    ///< one NIC each, in order
  std::vector<std::string> nic_macs;    ///< per NIC: the plan's MAC (count 1), or "" (made from the name)
  std::string ssh_key;    ///< public key file put in every instance's seed
  std::string user_data;  ///< extra #cloud-config lines
  /// Per instance, per NIC: the reserved address, in NIC order ("": DHCP
  /// from the network's range).
  std::map<std::string, std::vector<std::string>> addresses;
  std::vector<std::string> instances;
  /// Per instance: the testbed host (a name in Testbed::hosts) it runs on;
  /// empty when the hypervisor is not a plan host.
  std::map<std::string, std::string> placement;
  /// A golden image's steps, run on its build VM before it is sealed.
  std::vector<Task> setup;
  Mark mark;
};

enum class Teardown { Always, OnSuccess, Never };
/// The generated stage that removes a testbed.
inline constexpr const char* kTestbedDownStage = "testbed-down";
const char* to_string(Teardown t);

struct Testbed {
  std::string libvirt;  ///< URI of the hypervisor; empty: $RUNWARDEN_LIBVIRT_URI or qemu:///system
  /// A plan host (SSH) the hypervisor runs on: libvirt is reached through
  /// the run's connection to it (`libvirt` is then the URI there, default
  /// qemu:///system) and the guests through it. Empty: `libvirt` as is.
  std::string host;
  /// Several hypervisors (`hosts: [hv1, hv2]`): guests are placed over them,
  /// networks span them (a bridge on each, joined by VXLAN), goldens are
  /// built on the first and copied to the others. hosts[0] == host; one
  /// entry for `host: X`; empty for a hypervisor given by URI alone.
  std::vector<std::string> hosts;
  std::string images_dir = "/var/lib/libvirt/images";
  Teardown teardown = Teardown::Always;
  Millis up_timeout{Millis(600'000)};
  int parallel = 0;  ///< clones and guests made at once; 0: $RUNWARDEN_TESTBED_PARALLEL, else 4
  /// seed: each guest's SSH host key is made by the run and put in its seed,
  /// and known before it boots (strict); learn: the guest makes its own,
  /// trusted on first use (for images whose cloud-init cannot take keys).
  std::string host_keys = "seed";
  std::vector<TestbedImage> images;
  std::vector<TestbedNetwork> networks;
  std::vector<TestbedGuest> goldens;  ///< images made by booting a base once and running setup
  std::vector<TestbedGuest> guests;
  Mark mark;
};

struct Plan {
  int version = 1;
  std::string source;  ///< file name, or "<command>"
  std::string workdir;
  std::string template_command;
  /// The template command is killed (its whole process group) after this;
  /// the run then ends FAILED_TO_START. Unset: start-run's default.
  std::optional<Millis> template_timeout;
  std::optional<Millis> hung_after;
  std::map<std::string, std::string> meta;
  std::string mention_on_failure;
  std::map<std::string, Target> targets;  ///< hosts and guests by name
  std::vector<Stage> stages;
  std::optional<Testbed> testbed;

  /// A run on the controller: one stage, one task, `command`.
  static Plan from_command(const std::string& command, bool categorized);
  /// The controller target always exists and is local.
  static constexpr const char* kController = "controller";

  /// The jump targets an SSH connection to `target` goes through, outermost
  /// first: {"hv1"} for a guest reached via hv1, {} for hosts and unknown
  /// names. The parser rejects via cycles; the bound only guards hand-built plans.
  std::vector<std::string> jumps(const std::string& target) const {
    std::vector<std::string> chain;
    auto it = targets.find(target);
    while (it != targets.end() && !it->second.via.empty() && chain.size() < targets.size()) {
      chain.push_back(it->second.via);
      it = targets.find(it->second.via);
    }
    return {chain.rbegin(), chain.rend()};
  }
};

/// Makes the plan's local paths (files read on the controller: push
/// sources, scripts, identity and known_hosts files, testbed ssh_key) absolute
/// against `base`, the plan file's directory, so neither the run's workdir
/// nor the runner's cwd changes what they name. A task's `workdir` is only
/// where its command runs, and is left alone. With `check`, a missing
/// identity, push source or script is an error naming FILE:LINE:COLUMN.
Status resolve_local_paths(Plan& plan, const std::string& base, bool check);

/// The directory of a plan file, resolved (for resolve_local_paths).
std::string plan_directory(const std::string& plan_file);

}  // namespace rw::plan
