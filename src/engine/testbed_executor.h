#pragma once
// Runs the testbed's generated tasks (testbed_op "up" and "down") on the
// controller: the plan's testbed: section resolved for this run, then
// testbed::up or testbed::down through the libvirt API.

#include "common/result.h"
#include "engine/executor.h"
#include "testbed/spec.h"

namespace rw::engine {

/// The libvirt URI a plan's testbed uses: its `libvirt:` key, else
/// $RUNWARDEN_LIBVIRT_URI, else qemu:///system.
std::string testbed_uri(const plan::Testbed& tb);

/// The plan's testbed for run `build`: the build name is the ownership tag;
/// relative ssh_key paths are read from `workdir`. Reads the key files, so
/// a missing one fails here, before anything is made.
Result<testbed::Testbed> resolve_testbed(const plan::Testbed& tb, const std::string& build,
                                         const std::string& workdir);

class TestbedExecutor : public Executor {
 public:
  TaskOutcome run(const TaskContext& ctx) override;
};

}  // namespace rw::engine
