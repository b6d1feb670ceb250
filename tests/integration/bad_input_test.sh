#!/bin/bash
# Bad input: a clear message, a non-zero exit code, nothing created or started.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup

nothing_touched() {
  local what=$1
  [[ -z "$(ls -A "$RUNWARDEN_STATE_DIR/runs" 2>/dev/null)" ]] || fail "$what: a run directory was created"
  [[ ! -e "$RUNWARDEN_STATE_DIR/history" ]] || fail "$what: history touched"
  local units
  units=$(ctl list-units --all --no-legend 'runner@*' 'watcher@*' || true)
  [[ -z "$units" ]] || fail "$what: units were started: $units"
}

# --help names the program in its usage line, as the man pages do.
assert_contains "$("$RW_BIN" --help)" "Usage: runwarden [OPTIONS] SUBCOMMAND" "runwarden --help"
assert_contains "$("$RW_BUILD/start-run" --help)" "Usage: start-run [OPTIONS]" "start-run --help"
assert_contains "$("$RW_BUILD/cancel-run" --help)" "Usage: cancel-run [OPTIONS]" "cancel-run --help"

# expect_refused CODE NEEDLE ARGS...: start-run fails with CODE and says NEEDLE.
expect_refused() {
  local code=$1 needle=$2; shift 2
  local msg rc=0
  msg=$(start_run "$@" 2>&1) || rc=$?
  assert_eq "$rc" "$code" "exit code for: $*"
  assert_contains "$msg" "$needle" "message for: $*"
  nothing_touched "$*"
}

long=$(printf 'a%.0s' $(seq 1 200))
expect_refused 2 "is not allowed" --build-name ../etc --runner-command true
expect_refused 2 "contains '..'" --build-name a..etc --runner-command true
expect_refused 2 "empty" --build-name "" --runner-command true
expect_refused 2 "200 characters" --build-name "$long" --runner-command true
expect_refused 2 "character 2 (' ')" --build-name "a b" --runner-command true
expect_refused 2 "('/')" --build-name "a/b" --runner-command true
expect_refused 2 "is not allowed" --build-name "caf$(printf '\xc3\xa9')" --runner-command true
expect_refused 2 "exactly one of" --build-name ok --runner-command true --plan /dev/null
expect_refused 2 "--hung-after" --build-name ok --runner-command true --hung-after 5x
expect_refused 2 "KEY=VALUE" --build-name ok --runner-command true --meta novalue
expect_refused 2 "PrivateTmp" --build-name ok --runner-command true --workdir /tmp

printf 'version: 1\nstages:\n  - name: a\n    tasks: [ {name: t, run: "x"}\n' >"$IT_DIR/work/syntax.yaml"
rc=0; msg=$(start_run --build-name p1 --plan "$IT_DIR/work/syntax.yaml" 2>&1) || rc=$?
assert_eq "$rc" 2 "syntax error exit code"
[[ "$msg" =~ syntax.yaml:[0-9]+:[0-9]+: ]] || fail "syntax error names line and column: $msg"
nothing_touched "plan with a syntax error"

printf 'version: 1\nstages:\n  - name: a\n    tasks:\n      - name: t\n        run: "true"\n        colour: red\n' >"$IT_DIR/work/unknown.yaml"
rc=0; msg=$(start_run --build-name p2 --plan "$IT_DIR/work/unknown.yaml" 2>&1) || rc=$?
assert_eq "$rc" 2 "unknown key exit code"
assert_contains "$msg" "unknown.yaml:7:9" "unknown key located"
assert_contains "$msg" "colour" "unknown key named"
nothing_touched "plan with an unknown key"

# A secrets file others can read is refused, and the URL is never printed.
chmod 0644 "$RUNWARDEN_WEBHOOK_ENV"
rc=0; msg=$(start_run --build-name s1 --runner-command true 2>&1) || rc=$?
chmod 0600 "$RUNWARDEN_WEBHOOK_ENV"
assert_eq "$rc" 2 "secrets file mode exit code"
assert_contains "$msg" "$RUNWARDEN_WEBHOOK_ENV" "message names the file"
assert_contains "$msg" "644" "message names the mode"
assert_not_contains "$msg" "testsecret" "the URL is not printed"
nothing_touched "secrets file 0644"

# A template command that fails: nothing started, no message.
rc=0; msg=$(start_run --build-name tmpl --template-command 'echo making templates; exit 9' --runner-command true 2>&1) || rc=$?
assert_eq "$rc" 5 "template failure exit code"
assert_contains "$msg" "template command failed" "template failure message"
assert_eq "$(run_status tmpl)" FAILED_TO_START "state records the failed start"
assert_contains "$(cat "$RUNWARDEN_STATE_DIR/runs/tmpl/template.log")" "making templates" "template.log"
units=$(ctl list-units --all --no-legend 'runner@*' 'watcher@*' || true)
[[ -z "$units" ]] || fail "template failure started units: $units"
sleep 1
assert_eq "$(receiver_count)" 0 "no message for bad input"
pass
