#!/bin/bash
# bench/trace_start.sh [N=5]: where start-run's wall time goes, on an idle
# sandbox. Runs N start-runs (the command users type) one after the other
# (command `sleep 600`), prints their wall times and three phases of each,
# from the manager's own timestamps of runner@ (CLOCK_MONOTONIC, as the
# start-run's): "to runner fork" (start-run starts, writes the run's files,
# asks for the units; the manager makes the transaction and forks runner@),
# "runner fork to ready" (the unit's sandbox is set up, runwarden is exec'd
# and starts, the run's state is written, READY=1), "ready to return"
# (start-run hears both jobs end). Then traces one more with `strace -f -tt
# -T` and prints its slow syscalls (> 5 ms) and the journal lines of its two
# units with their timestamps. A diagnostic aid for many_runs.sh.
source "$(dirname "$0")/bench_lib.sh"
command -v strace >/dev/null || { apt-get install -y strace >/dev/null || exit 1; }

N=${1:-5}
bench_setup
# "t0 t1" in microseconds of CLOCK_MONOTONIC around one start-run.
timed_start() {
  "$IT_PYTHON" - "$RW_BUILD/start-run" "$1" <<'PY'
import subprocess, sys, time
t0 = time.monotonic_ns() // 1000
subprocess.run([sys.argv[1], "-q", "--build-name", sys.argv[2], "--runner-command", "sleep 600"], check=True)
print(t0, time.monotonic_ns() // 1000)
PY
}
phases=$IT_DIR/phases
for ((i = 0; i < N; i++)); do
  read -r t0 t1 < <(timed_start "ts-$i")
  fork=$(ctl show -p InactiveExitTimestampMonotonic --value "runner@ts-$i.service")
  ready=$(ctl show -p ActiveEnterTimestampMonotonic --value "runner@ts-$i.service")
  echo "$(((t1 - t0) / 1000)) $(((fork - t0) / 1000)) $(((ready - fork) / 1000)) $(((t1 - ready) / 1000))"
done >"$phases"
awk '{print $1}' "$phases" | bench_stats "start-run wall time, sequential, idle sandbox" ms
awk '{print $2}' "$phases" | bench_stats "  to runner fork" ms
awk '{print $3}' "$phases" | bench_stats "  runner fork to ready" ms
awk '{print $4}' "$phases" | bench_stats "  ready to return" ms

b=ts-traced
strace -f -tt -T -s 100 -o "$IT_DIR/start.strace" "$RW_BUILD/start-run" -q --build-name "$b" --runner-command "sleep 600"
echo "--- slow syscalls of the traced start-run (> 5 ms):"
grep -E '<([0-9]+\.[0-9]+)>$' "$IT_DIR/start.strace" |
  awk '{ d = $NF; gsub(/[<>]/, "", d); if (d + 0 > 0.005) print }' | cut -c1-220 | sed 's/^/  /'
echo "--- first and last syscall: $(head -1 "$IT_DIR/start.strace" | awk '{print $2}') .. $(tail -1 "$IT_DIR/start.strace" | awk '{print $2}')"
echo "--- journal of its units:"
journal --no-hostname -o short-precise -u "watcher@$b.service" -u "runner@$b.service" 2>/dev/null | sed 's/^/  /'

bench_keep_journal
