#!/bin/bash
# Plans with each kind of error name file:line:column and start nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

# check NAME LINE:COL NEEDLE: validate and start-run both refuse it, located.
check() {
  local name=$1 where=$2 needle=$3 f=$IT_DIR/work/$1.yaml rc msg
  rc=0; msg=$("$RW_BIN" validate "$f" 2>&1) || rc=$?
  assert_eq "$rc" 2 "validate exit code ($name)"
  assert_contains "$msg" "$name.yaml:$where:" "location ($name)"
  assert_contains "$msg" "$needle" "what is wrong ($name)"
  rc=0; msg=$(start_run --build-name "p-$name" --plan "$f" 2>&1) || rc=$?
  assert_eq "$rc" 2 "start-run exit code ($name)"
  assert_contains "$msg" "$name.yaml:$where:" "start-run location ($name)"
  [[ ! -e $RUNWARDEN_STATE_DIR/runs/p-$name ]] || fail "$name: a run directory was created"
}
w() { cat >"$IT_DIR/work/$1.yaml"; }

w bad-duration <<'EOF'
version: 1
stages:
  - name: a
    retry_delay: 5 minutes
    tasks: [{name: t, run: "true"}]
EOF
check bad-duration 4:18 "duration"

w undefined-target <<'EOF'
version: 1
stages:
  - name: a
    tasks:
      - {name: t, on: [controller, nosuch], run: "true"}
EOF
check undefined-target 5:36 "nosuch"

w via-cycle <<'EOF'
version: 1
guests:
  g1: {via: g2, address: 10.0.0.1}
  g2: {via: g1, address: 10.0.0.2}
stages:
  - name: a
    tasks: [{name: t, on: g1, run: "true"}]
EOF
msg=$("$RW_BIN" validate "$IT_DIR/work/via-cycle.yaml" 2>&1 || true)
assert_contains "$msg" "g1 -> g2 -> g1" "the cycle is named"
check via-cycle 3:13 "cycle"

w restart-forward <<'EOF'
version: 1
stages:
  - name: a
    restart_from: b
    tasks: [{name: t, run: "true"}]
  - name: b
    tasks: [{name: t, run: "true"}]
EOF
check restart-forward 4:19 "earlier"

units=$(ctl list-units --all --no-legend 'runner@*' 'watcher@*' || true)
[[ -z "$units" ]] || fail "units were started: $units"
pass
