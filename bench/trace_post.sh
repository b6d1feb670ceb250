#!/bin/bash
# bench/trace_post.sh [CONCURRENT=1]: where a watcher spends the time between
# the terminal state and the webhook post. Starts CONCURRENT runs that wait
# for a file, attaches `strace -f -tt -T` to the first run's watcher, releases
# all runs at once and prints the traced syscalls with their timestamps next
# to ended_at_ms and the receiver's received_at. A diagnostic aid for
# notify_latency.sh, not a benchmark of its own.
#
#   bench/trace_post.sh 1      # one run alone
#   bench/trace_post.sh 10     # one of ten runs ending together
source "$(dirname "$0")/bench_lib.sh"
command -v strace >/dev/null || { apt-get install -y strace >/dev/null || exit 1; }

C=${1:-1}
bench_setup
names=()
for ((i = 0; i < C; i++)); do names+=("$(printf 'tp-%04d' "$i")"); done
pids=()
for n in "${names[@]}"; do
  "$RW_BUILD/start-run" -q --build-name "$n" \
    --runner-command 'while [ ! -e "$RUNWARDEN_STATE_DIR/go" ]; do sleep 0.05; done' &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for n in "${names[@]}"; do wait_for unit_active "runner@$n.service"; done
wpid=$(unit_pid "watcher@${names[0]}.service")
strace -f -tt -T -s 120 -o "$IT_DIR/strace.txt" -p "$wpid" &
spid=$!
sleep 1
touch "$RUNWARDEN_STATE_DIR/go"
deadline=$((SECONDS + 30))
while (($(receiver_count) < C && SECONDS < deadline)); do sleep 0.05; done
sleep 0.5
kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
"$IT_PYTHON" - "$RUNWARDEN_STATE_DIR/runs/${names[0]}/state.json" "$IT_DIR/receiver.jsonl" "${names[0]}" <<'PY'
import json, sys, time
st = json.load(open(sys.argv[1]))
e = st["ended_at_ms"] / 1000.0
for line in open(sys.argv[2]):
    r = json.loads(line)
    if sys.argv[3] in json.dumps(r["body"]):
        print("ended_at    %s.%03d" % (time.strftime("%H:%M:%S", time.localtime(e)), st["ended_at_ms"] % 1000))
        ra = r["received_at"]
        print("received_at %s.%06d  latency %.1f ms" % (time.strftime("%H:%M:%S", time.localtime(ra)), int((ra % 1) * 1e6), (ra - e) * 1000))
PY
echo "--- strace of watcher@${names[0]} (pid $wpid): $(wc -l <"$IT_DIR/strace.txt") lines, saved in $IT_DIR/strace.txt"
cat "$IT_DIR/strace.txt"

bench_keep_journal
