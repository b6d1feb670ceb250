#!/bin/bash
# cancel-run during testbed-up: the run ends CANCELLED with no message, the
# teardown (teardown: always) still runs, and nothing the run made is left on
# the libvirt host. Runs in a network namespace of its own.
source "$(dirname "$0")/../testbed/libvirt-host.sh"
testbed_enter_netns "$0" "$@"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
testbed_it_setup
# rdinit=/bin/sh: the guests boot to a shell and never ask for an address,
# so testbed-up is still waiting when the run is cancelled.
testbed_plan "$IT_DIR/work/lab.yaml" 10.79.0.0/24 2 "up_timeout: 5m" "guest.cmdline: console=ttyS0 quiet rdinit=/bin/sh" <<'YAML'
stages:
  - name: test
    tasks:
      - {name: never, on: [web-1], run: "true"}
YAML
start_run -q --build-name tc-1 --plan "$IT_DIR/work/lab.yaml" --workdir "$IT_DIR/work"
testbed_cancel_while_up tc-1 2
sleep 1
assert_eq "$(receiver_count)" 0 "no message for a cancelled run"
pass
