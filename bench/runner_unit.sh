#!/bin/bash
# bench/runner_unit.sh: a plan of N no-op local tasks run by runner@ as
# start-run starts it (a throwaway systemd: journald, sd_notify, the
# watcher and its post included), against one task running the same N
# commands in a shell loop, started the same way.
#
#   bench/runner_unit.sh [N=300] [ROUNDS=5]
#   PAR=8 bench/runner_unit.sh                  # the plan's `parallel:` (0: none)
#   BIN_B=/path/to/runwarden bench/runner_unit.sh  # A/B: the units' runwarden
#                                                  # alternates with this one
#   (with a runwarden-watcher next to BIN_B, the watcher alternates too)
#
# Each round runs, in turn, for each binary: `plan` (one stage of N tasks
# `run: 'true'`) and `loop` (--runner-command 'i=0; while [ $i -lt N ]; do
# /bin/sh -c true; i=$((i+1)); done'). Timed from the run's state.json:
#   e2e:    start-run called -> ended_at_ms (unit start-up included)
#   runner: started_at_ms -> ended_at_ms (the runner's own part)
# Both wall-clock ms, printed as medians over the rounds with the ratio
# plan/loop (same binary, same round), and A/B for the plan when BIN_B is set.
# The binary is swapped between runs by renaming a copy over the snapshot's
# runwarden (start-run is its own executable and stays A's).
set -euo pipefail
N=${1:-300}
ROUNDS=${2:-5}
PAR=${PAR:-1}
source "$(dirname "$0")/bench_lib.sh"

bench_setup
bench_note "$(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); N=$N ROUNDS=$ROUNDS PAR=$PAR"
BINS=("$RW_BUILD/runwarden")
mkdir -p "$IT_DIR/bins" "$IT_DIR/work"
cp "$RW_BUILD/runwarden" "$IT_DIR/bins/A"
cp "$RW_BUILD/runwarden-watcher" "$IT_DIR/bins/A-watcher"
if [[ -n "${BIN_B:-}" ]]; then
  cp "$BIN_B" "$IT_DIR/bins/B"
  b_watcher="$(dirname "$BIN_B")/runwarden-watcher"
  [[ -x "$b_watcher" ]] || b_watcher="$RW_BUILD/runwarden-watcher"
  cp "$b_watcher" "$IT_DIR/bins/B-watcher"
  bench_note "A: $(sha1sum "$IT_DIR/bins/A" | cut -c1-12)  B: $BIN_B ($(sha1sum "$IT_DIR/bins/B" | cut -c1-12))"
fi
use_bin() {  # A|B: the units' next runner and watcher are these
  cp "$IT_DIR/bins/$1" "$RW_BUILD/runwarden.next"
  mv -f "$RW_BUILD/runwarden.next" "$RW_BUILD/runwarden"
  cp "$IT_DIR/bins/$1-watcher" "$RW_BUILD/runwarden-watcher.next"
  mv -f "$RW_BUILD/runwarden-watcher.next" "$RW_BUILD/runwarden-watcher"
}

{
  echo "version: 1"
  echo "stages:"
  echo "  - name: s1"
  [[ $PAR -gt 0 ]] && echo "    parallel: $PAR"
  echo "    tasks:"
  for ((i = 1; i <= N; i++)); do printf "      - {name: t%04d, run: 'true'}\n" "$i"; done
} >"$IT_DIR/work/plan.yaml"
LOOP="i=0; while [ \$i -lt $N ]; do /bin/sh -c true; i=\$((i+1)); done"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# one KIND BIN ROUND: prints "KIND BIN e2e_ms runner_ms"
one() {
  local kind=$1 bin=$2 r=$3 b="ru-$1-$2-$3" t0
  use_bin "$bin"
  t0=$(now_ms)
  if [[ $kind == plan ]]; then
    start_run -q --build-name "$b" --plan "$IT_DIR/work/plan.yaml" --workdir "$IT_DIR/work"
  else
    start_run -q --build-name "$b" --runner-command "$LOOP" --workdir "$IT_DIR/work"
  fi
  wait_status "$b" COMPLETED 600
  wait_watcher_done "$b" 120
  "$IT_PYTHON" - "$RUNWARDEN_STATE_DIR/runs/$b/state.json" "$t0" "$kind" "$bin" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t0 = int(sys.argv[2])
print(sys.argv[3], sys.argv[4], s["ended_at_ms"] - t0, s["ended_at_ms"] - s["started_at_ms"])
PY
}

KEYS=(A)
[[ -n "${BIN_B:-}" ]] && KEYS=(A B)
RES=$IT_DIR/results.txt
: >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
  for bin in "${KEYS[@]}"; do
    for kind in plan loop; do
      line=$(one "$kind" "$bin" "$r")
      echo "$r $line" >>"$RES"
      bench_note "round $r: $line"
    done
  done
done
use_bin A

"$IT_PYTHON" - "$RES" "$N" <<'PY'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
by = {}
for r, kind, b, e2e, run in rows:
    by.setdefault((int(r), b), {})[kind] = (int(e2e), int(run))
bins = sorted({k[1] for k in by})
print("%-4s %-6s %10s %10s %10s %10s %12s %12s" % ("bin", "what", "plan_ms", "loop_ms", "plan/loop", "ovh_ms/t", "runner_ms", "runner/loop"))
med = {}
for b in bins:
    pr = [v for (r, bb), v in by.items() if bb == b and "plan" in v and "loop" in v]
    e2e_ratio = st.median(v["plan"][0] / v["loop"][0] for v in pr)
    run_ratio = st.median(v["plan"][1] / v["loop"][1] for v in pr)
    pe = st.median(v["plan"][0] for v in pr); le = st.median(v["loop"][0] for v in pr)
    prn = st.median(v["plan"][1] for v in pr); lrn = st.median(v["loop"][1] for v in pr)
    med[b] = [v["plan"][0] for v in pr]
    print("%-4s %-6s %10d %10d %10.3f %10.3f %12d %12.3f" % (b, "e2e", pe, le, e2e_ratio, (pe - le) / n, prn, run_ratio))
if len(bins) == 2:
    rounds = sorted({r for (r, b) in by})
    ab = [by[(r, "A")]["plan"][0] / by[(r, "B")]["plan"][0] for r in rounds if (r, "A") in by and (r, "B") in by]
    print("A/B plan e2e, median of per-round ratios: %.3f (min %.3f max %.3f)" % (st.median(ab), min(ab), max(ab)))
print("# medians over rounds; ratios are medians of per-round ratios (same round, same binary)")
PY
bench_note "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_keep_journal
