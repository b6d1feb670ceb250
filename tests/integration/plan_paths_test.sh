#!/bin/bash
# Local paths in a plan (push source, script, identity, known_hosts) are
# relative to the plan file's directory, while the run's workdir (where
# commands run) is elsewhere and the runner's own cwd is /. A missing
# identity is refused when the plan is checked, with FILE:LINE:COLUMN.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
hosts_up 1
P=$IT_DIR/plans/lab          # the plan and what it ships
W=$IT_DIR/elsewhere          # the run's workdir
D=$IT_DIR/remote
mkdir -p "$P/keys" "$P/suite" "$W" "$D"
cp "$RW_NETNS_KEY" "$P/keys/id"
cp "$RW_NETNS_KNOWN_HOSTS" "$P/keys/known_hosts"
echo "from the plan's directory" >"$P/suite/data.txt"
printf '#!/bin/sh\necho "local script ran in $(pwd)"\n' >"$P/check.sh"
cat >"$P/plan.yaml" <<YAML
version: 1
workdir: $W
hosts:
  h1: {address: $RW_NETNS_HOST_NET.11, user: root, identity: keys/id, known_hosts: keys/known_hosts}
stages:
  - name: ship
    tasks:
      - {name: push, on: h1, push: {src: suite, dst: $D/suite}}
      - {name: local, script: check.sh}
YAML
(cd / && "$RW_BIN" validate "$P/plan.yaml" >/dev/null) || fail "plan invalid: $(cd / && "$RW_BIN" validate "$P/plan.yaml" 2>&1)"
(cd / && start_run -q --build-name pp-1 --plan "$P/plan.yaml")
wait_for -m "run pp-1 to end" eval '[[ $(run_status pp-1) == COMPLETED || $(run_status pp-1) == FAILED ]]'
assert_eq "$(run_status pp-1)" COMPLETED "the run: $(cat "$RUNWARDEN_STATE_DIR"/runs/pp-1/runner.log)"
assert_eq "$(cat "$D/suite/data.txt")" "from the plan's directory" "push source from the plan's directory"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR"/runs/pp-1/tasks/ship/local*)" "local script ran in $W" \
  "the script came from the plan's directory and ran in the workdir"

# A missing identity: refused where it is written, nothing started.
sed -i 's|identity: keys/id|identity: keys/nope|' "$P/plan.yaml"
rc=0; out=$("$RW_BIN" validate "$P/plan.yaml" 2>&1) || rc=$?
assert_eq "$rc" 2 "validate refuses it: $out"
assert_contains "$out" "$P/plan.yaml:4:3: target 'h1': identity $P/keys/nope cannot be read" "file:line:col and the path"
rc=0; out=$(start_run --build-name pp-2 --plan "$P/plan.yaml" 2>&1) || rc=$?
assert_eq "$rc" 2 "start-run refuses it: $out"
[[ ! -e $RUNWARDEN_STATE_DIR/runs/pp-2 ]] || fail "nothing is started for a bad plan"
pass
