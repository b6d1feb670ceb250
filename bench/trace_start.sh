#!/bin/bash
# bench/trace_start.sh [N=5]: where start-run's wall time goes, on an idle
# sandbox. Runs N start-runs (the command users type) one after the other
# (command `sleep 600`), prints their wall times, then traces one more with
# `strace -f -tt -T` and prints its slow syscalls (> 5 ms) and the journal
# lines of its two units with their timestamps. A diagnostic aid for
# many_runs.sh.
source "$(dirname "$0")/bench_lib.sh"
command -v strace >/dev/null || { apt-get install -y strace >/dev/null || exit 1; }

N=${1:-5}
bench_setup
for ((i = 0; i < N; i++)); do
  t0=$(date +%s%N)
  "$RW_BUILD/start-run" -q --build-name "ts-$i" --runner-command "sleep 600"
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
done | bench_stats "start-run wall time, sequential, idle sandbox" ms

b=ts-traced
strace -f -tt -T -s 100 -o "$IT_DIR/start.strace" "$RW_BUILD/start-run" -q --build-name "$b" --runner-command "sleep 600"
echo "--- slow syscalls of the traced start-run (> 5 ms):"
grep -E '<([0-9]+\.[0-9]+)>$' "$IT_DIR/start.strace" |
  awk '{ d = $NF; gsub(/[<>]/, "", d); if (d + 0 > 0.005) print }' | cut -c1-220 | sed 's/^/  /'
echo "--- first and last syscall: $(head -1 "$IT_DIR/start.strace" | awk '{print $2}') .. $(tail -1 "$IT_DIR/start.strace" | awk '{print $2}')"
echo "--- journal of its units:"
journal --no-hostname -o short-precise -u "watcher@$b.service" -u "runner@$b.service" 2>/dev/null | sed 's/^/  /'

bench_keep_journal
