#!/bin/bash
# runwarden serve, socket-activated by runwarden-web.socket under a real
# systemd, over real run directories (completed with history, running,
# categorized with sub-runs): the JSON API with a real HTTP client (curl),
# the documented 4xx, no secret served, Prometheus metrics, and the pages in
# a real headless Chromium (a RUNNING run and its progress bar, the progress
# moving as a stage completes on a page left open on its event stream, the
# failing task's log tail; a screenshot is kept as an artefact).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/runwarden.sh"

port=$("$IT_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$RW_IT_ROOT"
web=$(mktemp -d "$RW_IT_ROOT/web-units-XXXXXX")
mkdir -p "$web/runwarden-web.socket.d" "$web/runwarden-web.service.d"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$port" >"$web/runwarden-web.socket.d/test.conf"
it_setup "$RW_BUILD/units/runwarden-web.socket" "$RW_BUILD/units/runwarden-web.service" \
  "$web/runwarden-web.socket.d"
IT_EXTRA_TEARDOWN+=("rm -rf '$web'")
printf '[Service]\nExecStart=\nExecStart=%s\nEnvironment=RUNWARDEN_STATE_DIR=%s\nReadOnlyPaths=%s\n' \
  "$RW_BUILD/runwarden-web" "$RUNWARDEN_STATE_DIR" "$RUNWARDEN_STATE_DIR" >"$web/runwarden-web.service.d/test.conf"
add_units "$web/runwarden-web.service.d"
ctl start runwarden-web.socket
base=http://127.0.0.1:$port

# Runs: one completed twice (history), one waiting for a go, one categorized.
start_run -q --build-name w-done --runner-command 'echo first'
wait_status w-done COMPLETED; wait_watcher_done w-done
start_run -q --build-name w-done --runner-command 'echo second'
wait_status w-done COMPLETED; wait_watcher_done w-done
cat >"$IT_DIR/work/two.yaml" <<EOF
version: 1
stages:
  - name: first
    tasks: [{name: wait, run: 'while [ ! -e "$IT_DIR/work/go" ]; do sleep 0.2; done'}]
  - name: second
    tasks: [{name: fail, run: 'echo "the disk is full" >&2; exit 3'}]
EOF
start_run -q --build-name w-run --plan "$IT_DIR/work/two.yaml"
cat >"$IT_DIR/work/cat.sh" <<SH
#!/bin/sh
"$RW_BIN" event subrun linux --status RUNNING
"$RW_BIN" event subrun linux --status COMPLETED
SH
chmod +x "$IT_DIR/work/cat.sh"
start_run -q --build-name w-cat --categorize --workdir "$IT_DIR/work" --runner-command ./cat.sh
wait_status w-cat COMPLETED; wait_watcher_done w-cat
wait_for -m "w-run RUNNING" status_is w-run RUNNING

browser=$(command -v chromium || true)
[[ -n $browser ]] || fail "chromium is not installed (scripts/install-deps.sh installs it)"
get() { curl -sS --max-time 10 -o "$IT_DIR/body" -w '%{http_code}' "$base$1"; }
field() { "$IT_PYTHON" -c "import json,sys; d=json.load(open('$IT_DIR/body')); print(eval(sys.argv[1]))" "$1"; }

assert_eq "$(get /api/v1/runs)" 200 "GET /api/v1/runs"
assert_eq "$(ctl show -p ActiveState --value runwarden-web.service)" active "the socket started the service"
assert_eq "$(field 'd["total"]')" 3 "three runs"
assert_eq "$(field '" ".join(r["build"] + ":" + r["status"] for r in d["runs"])')" \
  "w-cat:COMPLETED w-done:COMPLETED w-run:RUNNING" "each run's state"
assert_eq "$(field '[r for r in d["runs"] if r["build"]=="w-done"][0]["message"]')" posted "the message was delivered"
assert_eq "$(field '[r for r in d["runs"] if r["build"]=="w-cat"][0]["subruns"][0]["key"]')" linux "sub-runs listed"
assert_eq "$(get '/api/v1/runs?state=RUNNING')" 200 "state filter"
assert_eq "$(field '[r["build"] for r in d["runs"]]')" "['w-run']" "only the running run"
assert_eq "$(get '/api/v1/runs?prefix=w-d&limit=1&offset=0')" 200 "prefix and paging"
assert_eq "$(field '(d["total"], len(d["runs"]))')" "(1, 1)" "prefix w-d"
assert_eq "$(get '/api/v1/runs?limit=1&offset=1')" 200 "paging"
assert_eq "$(field '(d["total"], [r["build"] for r in d["runs"]])')" "(3, ['w-done'])" "the second page of one"
assert_eq "$(get /api/v1/runs/w-run)" 200 "one run"
assert_eq "$(field 'd["stages"][0]["tasks"][0]["status"]')" RUNNING "its task, with the journal applied"
assert_eq "$(get /api/v1/runs/w-done/history)" 200 "history"
assert_eq "$(field '[h["status"] for h in d["history"]]')" "['COMPLETED']" "the earlier run of w-done"
assert_eq "$(get '/api/v1/runs/w-done/log?tail=1')" 200 "log tail"
assert_contains "$(cat "$IT_DIR/body")" "second" "the current run's log"
assert_eq "$(wc -l <"$IT_DIR/body")" 1 "one line"

# The documented errors.
assert_eq "$(get '/api/v1/runs/..%2F..%2Fetc')" 400 "an encoded path is a bad name"
assert_eq "$(get "/api/v1/runs/$(printf 'a%.0s' $(seq 200))")" 400 "an overlong name"
assert_eq "$(get /api/v1/runs/no-such-run)" 404 "no such run"
assert_eq "$(get /etc/passwd)" 404 "no file by path"
assert_eq "$(get '/api/v1/runs?limit=x')" 400 "a bad limit"
assert_eq "$(get '/api/v1/runs?state=DONE')" 400 "an unknown state"
assert_eq "$(get "/api/v1/runs?prefix=$(printf 'p%.0s' $(seq 600))")" 400 "a huge query"
assert_eq "$(get "/api/v1/runs/$(printf 'x%.0s' $(seq 3000))")" 414 "a path too long"
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/api/v1/runs")" 405 "no writes"
assert_eq "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$base/api/v1/runs/w-run")" 405 "no deletes"

# Never a secret: the webhook URL's token is nowhere in what is served.
all=""
for p in /api/v1/runs /api/v1/runs/w-done /api/v1/runs/w-cat /api/v1/runs/w-done/history /metrics / /runs/w-done; do
  get "$p" >/dev/null; all+=$(cat "$IT_DIR/body")
done
assert_not_contains "$all" "testsecret" "the webhook URL is never served"

assert_eq "$(get /metrics)" 200 "metrics"
m=$(cat "$IT_DIR/body")
assert_contains "$m" 'runwarden_runs{state="RUNNING"} 1' "runs by state"
assert_contains "$m" 'runwarden_runs{state="COMPLETED"} 2' "runs by state"
assert_contains "$m" "runwarden_active_runs 1" "active runs"
assert_contains "$m" "# TYPE runwarden_run_duration_seconds histogram" "a duration histogram"
assert_contains "$m" "runwarden_run_duration_seconds_count 3" "three ended runs (one in history)"
assert_contains "$m" "runwarden_messages_delivered_total 3" "w-done twice and w-cat's sub-run"

# The pages, in a real browser.
# --dump-dom dumps once the page has loaded and virtual time has run out;
# an open event stream keeps virtual time from running, so these one-shot
# reads use the polling mode (?poll); the live page is checked above over
# the DevTools protocol, the streams themselves with curl.
dom() {
  timeout 60 "$browser" --headless=new --no-sandbox --disable-gpu --user-data-dir="$IT_DIR/chromium" \
    --virtual-time-budget=4000 --dump-dom "$base$1?poll" 2>/dev/null
}
d=$(dom /)
assert_contains "$d" '<tr data-build="w-run">' "the runs page lists the running run"
assert_contains "$(grep -o '<tr data-build="w-run">.*</tr>' <<<"$d" | sed 's#</tr>.*##')" 'class="RUNNING"' "as RUNNING"
bar() { grep -o '<tr data-build="w-run">.*' <<<"$1" | grep -o 'class="fill" style="width:[0-9]*%' | head -1 | grep -o '[0-9]*%'; }
assert_eq "$(bar "$d")" "0%" "no stage done yet"
# Live updates: one Server-Sent Events stream of the run, one of the list.
curl -sN --max-time 60 "$base/api/v1/runs/w-run/events" >"$IT_DIR/sse-run.txt" 2>/dev/null &
sse_run=$!
curl -sN --max-time 60 "$base/api/v1/events" >"$IT_DIR/sse-all.txt" 2>/dev/null &
sse_all=$!
IT_EXTRA_TEARDOWN+=("kill $sse_run $sse_all 2>/dev/null || true")
wait_for -m "the first event of the run" grep -q '^data: {"log"' "$IT_DIR/sse-run.txt"
wait_for -m "the first event of the list" grep -q '^data: {"limit"' "$IT_DIR/sse-all.txt"
assert_contains "$(head -1 "$IT_DIR/sse-run.txt")" '"status":"RUNNING"' "the stream starts with the run as it is"
# The runs page as a user keeps it open, on its event stream (not polling):
# a browser driven over the DevTools protocol sees the row RUNNING at 0%,
# the test lets the first stage end, and the same page, not reloaded, moves
# to FAILED at 100%.
row='(()=>{const r=document.querySelector("tr[data-build=\"w-run\"]");return r?r.children[1].textContent+" "+r.querySelector(".fill").style.width+" "+document.body.dataset.live:"no row"})()'
live=$("$IT_PYTHON" "$RW_SRC/tests/integration/cdp.py" "$browser" "$base/" \
  --wait 30 "$row" '^RUNNING 0% events$' --run "touch '$IT_DIR/work/go'" --wait 60 "$row" '^FAILED 100% events$') ||
  fail "the open runs page did not follow the run live: $live"
assert_eq "$live" $'RUNNING 0% events\nFAILED 100% events' "the open page followed the run over its event stream"
wait_status w-run FAILED
wait_for -m "an event saying FAILED" grep -q '"build":"w-run".*"status":"FAILED"' "$IT_DIR/sse-run.txt"
wait_for -m "the list's event saying FAILED" grep -q '"build":"w-run"[^}]*"status":"FAILED"' "$IT_DIR/sse-all.txt"
assert_contains "$(grep '"status":"FAILED"' "$IT_DIR/sse-run.txt" | tail -1)" "the disk is full" "the event carries the log tail"
kill "$sse_run" "$sse_all" 2>/dev/null || true
d=$(dom /)
assert_eq "$(bar "$d")" "100%" "the progress bar moved as the stages ended"
d=$(dom /runs/w-run)
assert_contains "$d" "the disk is full" "the run page shows the failing task's log tail"
assert_contains "$d" '<td class="FAILED">FAILED</td>' "and the failed task"
mkdir -p "$RW_IT_ROOT/artefacts"
timeout 60 "$browser" --headless=new --no-sandbox --disable-gpu --user-data-dir="$IT_DIR/chromium" \
  --virtual-time-budget=4000 --window-size=1200,700 --screenshot="$RW_IT_ROOT/artefacts/web-runs.png" "$base/?poll" >/dev/null 2>&1
[[ -s $RW_IT_ROOT/artefacts/web-runs.png ]] || fail "no screenshot"
echo "screenshot: $RW_IT_ROOT/artefacts/web-runs.png"
pass
