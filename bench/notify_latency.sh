#!/bin/bash
# bench/notify_latency.sh [N=200]: how long from the moment a run's terminal
# state is written to the moment the webhook request arrives.
#
#   sudo bench/notify_latency.sh 200
#   BATCH=10 CMD=true bench/notify_latency.sh 200
#
# Each run's command is `true` (CMD= to change it, e.g. 'exit 1' for FAILED),
# started BATCH at a time (start-run in parallel), on one throwaway systemd.
# Latency of a run = receiver's received_at (epoch s, taken when the POST's
# headers have been read) - state.json's ended_at_ms (epoch ms, taken by the
# runner right before it persists the terminal state and exits). Both clocks
# are CLOCK_REALTIME of this machine. Prints count, p50/p90/p99/max (target:
# p99 < 20 ms) and a sanity line: posts per build (must be exactly 1 each).
# Not a test: nothing is asserted, figures are printed.
source "$(dirname "$0")/bench_lib.sh"

N=${1:-200}
BATCH=${BATCH:-10}
CMD=${CMD:-true}
PREFIX=${PREFIX:-nl}

bench_setup
bench_note "notify_latency: N=$N BATCH=$BATCH CMD='$CMD' binary=$RW_BIN"
bench_note "sandbox: $IT_DIR (systemd pid $(cat "$IT_SANDBOX/systemd.pid"))"

# Rename-into-place times of state.json / notification.json, for a breakdown.
"$IT_PYTHON" "$BENCH_DIR/inotify_stamps.py" "$RUNWARDEN_STATE_DIR/runs" "$IT_DIR/stamps.jsonl" \
  --ready "$IT_DIR/stamps.ready" &
BENCH_PIDS+=($!)
wait_for test -e "$IT_DIR/stamps.ready"

names=()
for ((i = 0; i < N; i++)); do names+=("$(printf '%s-%04d' "$PREFIX" "$i")"); done

startfail=0
t0=$SECONDS
for ((b = 0; b < N; b += BATCH)); do
  pids=()
  for ((i = b; i < b + BATCH && i < N; i++)); do
    "$RW_BUILD/start-run" -q --build-name "${names[$i]}" --runner-command "$CMD" \
      >"$IT_DIR/start-${names[$i]}.out" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || startfail=$((startfail + 1)); done
  # The batch is done when every run in it has a terminal state and a post
  # (or 20 s passed); then the next batch starts.
  want=$((b + ${#pids[@]} - startfail))
  deadline=$((SECONDS + 20))
  while (($(receiver_count) < want && SECONDS < deadline)); do sleep 0.05; done
done
# Late or duplicate posts: give watchers a moment to do anything more.
sleep 2
bench_note "all $N runs started and ended in $((SECONDS - t0)) s; start-run failures: $startfail"

"$IT_PYTHON" - "$RUNWARDEN_STATE_DIR/runs" "$IT_DIR/receiver.jsonl" "$IT_DIR/stamps.jsonl" "$PREFIX" "${names[@]}" >"$IT_DIR/latency.txt" <<'PY'
import json, re, sys
runs, log, stamps, prefix, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
ev = {}
for line in open(stamps, encoding="utf-8"):
    r = json.loads(line)
    if "build" in r:
        ev.setdefault(r["build"], []).append((r["t"], r["file"]))
pat = re.compile(r"(?<![A-Za-z0-9._-])(%s-\d{4})(?![A-Za-z0-9._-])" % re.escape(prefix))
posts = {}
for line in open(log, encoding="utf-8"):
    rec = json.loads(line)
    for n in set(pat.findall(json.dumps(rec["body"]))):
        posts.setdefault(n, []).append(rec["received_at"])
for n in names:
    try:
        st = json.load(open("%s/%s/state.json" % (runs, n)))
    except Exception as e:
        print("MISSING-STATE", n, e); continue
    got = posts.get(n, [])
    if not got:
        print("NOPOST", n, st.get("status")); continue
    recv = min(got) * 1000.0
    print("LAT", n, st.get("status"), "%.3f" % (recv - st["ended_at_ms"]), len(got))
    # Breakdown: ended_at -> terminal state.json renamed (runner's persist)
    # -> notification.json "pending" renamed (watcher wakes, reads, renders,
    # fsyncs) -> received (HTTP).
    e = sorted(ev.get(n, []))
    notif = [t for t, f in e if f == "notification.json"]
    if notif:
        states = [t for t, f in e if f == "state.json" and t <= notif[0]]
        if states:
            print("SEG", n, "%.3f %.3f %.3f" % (states[-1] * 1000 - st["ended_at_ms"],
                  (notif[0] - states[-1]) * 1000, recv - notif[0] * 1000))
PY

grep '^LAT' "$IT_DIR/latency.txt" | awk '{print $4}' | bench_stats "notify latency" ms
if grep -q '^SEG' "$IT_DIR/latency.txt"; then
  echo "breakdown (inotify times of the renames; the monitor shares the CPUs):"
  grep '^SEG' "$IT_DIR/latency.txt" | awk '{print $3}' | bench_stats "  runner persist (ended_at->state.json)" ms
  grep '^SEG' "$IT_DIR/latency.txt" | awk '{print $4}' | bench_stats "  watcher (state.json->notification.json)" ms
  grep '^SEG' "$IT_DIR/latency.txt" | awk '{print $5}' | bench_stats "  http (notification.json->received: dir fsync, curl)" ms
fi
echo "slowest 5:"; grep '^LAT' "$IT_DIR/latency.txt" | sort -k4 -g -r | sed -n 1,5p | sed 's/^/  /'
statuses=$(grep '^LAT' "$IT_DIR/latency.txt" | awk '{print $3}' | sort | uniq -c | tr -s ' ' | tr '\n' ',')
echo "terminal states of posted runs: ${statuses%,}"
nopost=$(grep -c '^NOPOST' "$IT_DIR/latency.txt" || true)
missing=$(grep -c '^MISSING-STATE' "$IT_DIR/latency.txt" || true)
bench_post_counts "$PREFIX" >"$IT_DIR/post_counts.txt"
exact1=$(awk '$2 == 1' "$IT_DIR/post_counts.txt" | wc -l)
dups=$(awk '$2 > 1' "$IT_DIR/post_counts.txt" | wc -l)
total=$(receiver_count)
echo "sanity: builds=$N posts_total=$total builds_with_exactly_1_post=$exact1 builds_with_duplicates=$dups builds_without_post=$nopost missing_state=$missing start_run_failures=$startfail"
if ((dups > 0 || nopost > 0)); then
  echo "posts per build (anomalies):"; awk '$2 != 1' "$IT_DIR/post_counts.txt" | sed 's/^/  /'
  grep '^NOPOST' "$IT_DIR/latency.txt" | sed 's/^/  /'
fi

bench_keep_journal
