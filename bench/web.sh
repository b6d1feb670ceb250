#!/bin/bash
# bench/web.sh [RUNS=1000] [REQUESTS=2000] [CONC=8]: the web server's speed
# and idle memory over RUNS synthetic runs (each a finished 3-stage,
# 10-task run; 1 in 10 running, with history), no service manager needed.
#
#   bench/web.sh 1000
#   RW_WEB=/path/to/runwarden-web bench/web.sh
#
# Prints: idle RSS/PSS of runwarden-web after start and after the load;
# requests/s and latency p50/p99 of GET /api/v1/runs (the first page of
# 100, as the runs page asks for 1000) with CONC concurrent clients (python
# threads, keep-alive connections); time to first byte of the runs page
# and of /api/v1/runs?limit=1000 (median of 20); and the same load against
# python3's http.server serving the /api/v1/runs answer as a static file
# (a floor for "serve this many bytes over HTTP here"), as a ratio.
# Not a test: figures only.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-1000}
REQUESTS=${2:-2000}
CONC=${CONC:-8}
WEB=${RW_WEB:-$("$SRC/scripts/build-dir.sh")/runwarden-web}
work=$(mktemp -d /var/lib/runwarden-bench/web-XXXXXX 2>/dev/null || { mkdir -p /var/lib/runwarden-bench; mktemp -d /var/lib/runwarden-bench/web-XXXXXX; })
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work/state" "$RUNS" <<'PY'
import json, os, sys
root, n = sys.argv[1], int(sys.argv[2])
def state(b, i, status):
    stages = [{"name": "s%d" % s, "status": "COMPLETED" if status != "RUNNING" or s == 0 else "RUNNING",
               "attempts": 1, "started_at_ms": 1700000000000, "ended_at_ms": 1700000060000,
               "tasks": [{"name": "t%d" % t, "target": "controller", "status": "COMPLETED", "attempts": 1,
                          "reason": "", "started_at_ms": 1700000000000, "ended_at_ms": 1700000001000,
                          "retry_at_ms": 0, "log": "tasks/s/t.log", "exit_code": 0, "signal": None}
                         for t in range(10)]} for s in range(3)]
    return {"schema": 1, "build": b, "status": status, "decided_by": "runner", "reason": "",
            "created_at_ms": 1700000000000, "started_at_ms": 1700000000000,
            "ended_at_ms": 0 if status == "RUNNING" else 1700000000000 + 60000 * (i % 120 + 1),
            "progress": "stage 3/3", "stages": stages}
for i in range(n):
    b = "bench-%05d" % i
    d = os.path.join(root, "runs", b)
    os.makedirs(d)
    status = "RUNNING" if i % 10 == 0 else ("FAILED" if i % 7 == 0 else "COMPLETED")
    json.dump(state(b, i, status), open(os.path.join(d, "state.json"), "w"))
    open(os.path.join(d, "runner.log"), "w").write("line\n" * 50)
    if status != "RUNNING": open(os.path.join(d, "posted.marker"), "w").close()
    if i % 10 == 0:
        h = os.path.join(root, "history", b, "2026-01-01T00-00-00")
        os.makedirs(h)
        json.dump(state(b, i, "COMPLETED"), open(os.path.join(h, "state.json"), "w"))
PY

RUNWARDEN_STATE_DIR=$work/state "$WEB" --listen 127.0.0.1:0 >"$work/web.out" 2>&1 &
pids+=($!)
web_pid=$!
for _ in $(seq 50); do grep -q listening "$work/web.out" && break; sleep 0.1; done
port=$(sed -n 's/listening on 127.0.0.1://p' "$work/web.out")
mem() { awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {printf "RSS %.2f MiB, PSS %.2f MiB", r/1024, p/1024}' "/proc/$1/smaps_rollup"; }
echo "# runwarden-web $(stat -c %s "$WEB") bytes; $RUNS runs; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "idle after start: $(mem "$web_pid")"

curl -s "http://127.0.0.1:$port/api/v1/runs" >"$work/static.json"
mkdir -p "$work/static/api/v1"; cp "$work/static.json" "$work/static/api/v1/runs"
(cd "$work/static" && exec python3 -m http.server --bind 127.0.0.1 0 >"$work/static.out" 2>&1) &
pids+=($!)
for _ in $(seq 50); do grep -q "port" "$work/static.out" && break; sleep 0.1; done
sport=$(grep -o 'port [0-9]*' "$work/static.out" | head -1 | cut -d' ' -f2)

load() {  # load PORT PATH -> "rps p50 p99" (ms)
  python3 - "$1" "$2" "$REQUESTS" "$CONC" <<'PY'
import http.client, sys, threading, time
port, path, n, conc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lat, lock = [], threading.Lock()
def worker(k):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    mine = []
    for _ in range(k):
        t = time.perf_counter()
        try:
            c.request("GET", path); r = c.getresponse(); r.read()
            if r.status != 200: raise SystemExit("HTTP %d" % r.status)
        except (http.client.HTTPException, OSError):
            c.close(); c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", path); r = c.getresponse(); r.read()
        mine.append((time.perf_counter() - t) * 1000)
    with lock: lat.extend(mine)
t0 = time.perf_counter()
ts = [threading.Thread(target=worker, args=(n // conc,)) for _ in range(conc)]
for t in ts: t.start()
for t in ts: t.join()
wall = time.perf_counter() - t0
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))]
print("%.0f %.2f %.2f" % (len(lat) / wall, q(50), q(99)))
PY
}
read -r rps p50 p99 < <(load "$port" /api/v1/runs)
read -r srps sp50 sp99 < <(load "$sport" /api/v1/runs)
echo "GET /api/v1/runs (100 of $RUNS, $(stat -c %s "$work/static.json") bytes), $REQUESTS requests, $CONC clients:"
echo "  runwarden-web:        $rps req/s, p50 $p50 ms, p99 $p99 ms"
echo "  python http.server:   $srps req/s, p50 $sp50 ms, p99 $sp99 ms (the same bytes from a static file)"
awk -v a="$rps" -v b="$srps" 'BEGIN {printf "  ratio (runwarden-web / static file): %.2fx the requests per second\n", a / b}'
ttfb() {
  for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_starttransfer}\n' "http://127.0.0.1:$port$1"; done |
    sort -n | awk '{a[NR]=$1} END {printf "%.1f ms", a[int((NR+1)/2)] * 1000}'
}
echo "time to first byte (median of 20): runs page $(ttfb /), /api/v1/runs?limit=1000 $(ttfb '/api/v1/runs?limit=1000'), /metrics $(ttfb /metrics)"
echo "after the load: $(mem "$web_pid")"
