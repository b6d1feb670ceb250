#!/bin/bash
# A 4-stage plan on 4 sshd hosts and a guest behind host 1: tasks of a stage
# overlap, a stage starts only after the previous one ended, pushes keep
# modes, fetch brings a file back, one message.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"
it_setup
hosts_up 4
D=$IT_DIR/remote   # every namespace shares this machine's filesystem
mkdir -p "$D" "$IT_DIR/work/suite/bin"
printf '#!/bin/sh\necho "suite ran as $1"\n' >"$IT_DIR/work/suite/bin/run"
chmod 0755 "$IT_DIR/work/suite/bin/run"
echo config >"$IT_DIR/work/suite/config"
chmod 0600 "$IT_DIR/work/suite/config"

plan_file three-stages <<EOF
workdir: $IT_DIR/work
stages:
  - name: prepare
    tasks:
      - name: mark
        on: [h1, h2, h3, h4, g1]
        run: 'f=$D/mark.\$(cat /proc/sys/kernel/hostname).\$\$; echo "start \$(date +%s.%N)" >> \$f; sleep 1; echo "end \$(date +%s.%N)" >> \$f'
  - name: deploy
    tasks:
      - {name: push-suite, on: [h2, g1], push: {src: suite, dst: $D/pushed/suite}}
  - name: test
    tasks:
      - {name: run-suite, on: g1, run: 'date +%s.%N > $D/s3.start; $D/pushed/suite/bin/run guest'}
      - {name: collect, on: h3, run: 'echo collected-from-h3 > $D/h3-result.txt'}
  - name: gather
    tasks:
      - {name: fetch-result, on: h3, fetch: {src: $D/h3-result.txt, dst: results/h3.txt}}
      - {name: fetch-named-like-the-state, on: h3, fetch: {src: $D/h3-result.txt, dst: state.json}}
EOF
plan=$IT_DIR/work/three-stages.yaml
"$RW_BIN" validate "$plan" >/dev/null || fail "plan invalid: $("$RW_BIN" validate "$plan" 2>&1)"
start_run -q --build-name plan-1 --plan "$plan"
wait_status plan-1 COMPLETED 90
wait_watcher_done plan-1
assert_eq "$(receiver_count)" 1 "one message"

# Stage 1 ran on all five targets, concurrently; stage 3 after it.
"$IT_PYTHON" - "$D" <<'PY' || fail "stage timing"
import glob, sys
d = sys.argv[1]
files = glob.glob(d + "/mark.*")
assert len(files) == 5, f"stage 1 ran {len(files)} times, want 5: {files}"
starts, ends = [], []
for f in files:
    for line in open(f):
        k, t = line.split()
        (starts if k == "start" else ends).append(float(t))
assert max(starts) < min(ends), f"stage 1 tasks did not overlap: starts {starts} ends {ends}"
s3 = float(open(d + "/s3.start").read())
assert s3 >= max(ends), f"stage 3 started at {s3} before stage 1 ended at {max(ends)}"
PY
out=$("$RW_BIN" logs plan-1)
assert_contains "$out" "suite ran as guest" "the pushed script ran on the guest"
assert_eq "$(stat -c %a "$D/pushed/suite/bin/run")" 755 "pushed executable mode kept"
assert_eq "$(stat -c %a "$D/pushed/suite/config")" 600 "pushed private mode kept"
assert_eq "$(cat "$RUNWARDEN_STATE_DIR/runs/plan-1/fetched/h3/results/h3.txt")" collected-from-h3 "fetched under fetched/<target>/"
assert_eq "$(cat "$RUNWARDEN_STATE_DIR/runs/plan-1/fetched/h3/state.json")" collected-from-h3 "a dst named state.json stays there"
assert_eq "$(run_status plan-1)" COMPLETED "the run's own state.json is intact"
st=$("$RW_BIN" status plan-1)
assert_contains "$st" "mark@g1" "status lists task instances with targets"
assert_contains "$st" "4/4 gather" "status lists stages"
pass
