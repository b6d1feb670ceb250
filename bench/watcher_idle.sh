#!/bin/bash
# bench/watcher_idle.sh [WINDOW=60]: what an idle watcher costs while its run
# goes on: memory and wakeups, next to a minimal polling Python watcher
# (bench/python_watcher.py, poll every 5 s) watching the same run.
#
#   bench/watcher_idle.sh          # 60 s windows
#   WINDOW=30 bench/watcher_idle.sh
#
# One run with command `sleep` (long enough for both windows), no --hung-after,
# so the watcher has no timer armed: every wakeup is an inotify event or a
# D-Bus message. Window 1: context switches (voluntary + nonvoluntary deltas of
# /proc/PID/status) and, with perf, syscalls (raw_syscalls:sys_enter), for
# both watchers at once. Window 2 (STRACE=1, the default; needs strace, which
# is installed from Debian if missing): `strace -c -f -p` of both, for the
# syscall breakdown (ptrace slows the traced process; counts stay exact).
# Targets: our RSS <= 4 MiB, ~0 wakeups per minute.
source "$(dirname "$0")/bench_lib.sh"

WINDOW=${1:-${WINDOW:-60}}
STRACE=${STRACE:-1}
if ((STRACE)) && ! command -v strace >/dev/null; then
  apt-get install -y strace >/dev/null 2>&1 || { bench_note "strace not installable; skipping window 2"; STRACE=0; }
fi
have_perf=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then have_perf=1; fi

bench_setup
B=wi-0000
"$RW_BUILD/start-run" -q --build-name "$B" --runner-command "sleep $((WINDOW * 2 + 90))"
wait_for unit_active "runner@$B.service"
wpid=$(unit_pid "watcher@$B.service")
[[ "$wpid" != 0 ]] || fail "no watcher pid"
"$IT_PYTHON" "$BENCH_DIR/python_watcher.py" "$RUNWARDEN_STATE_DIR/runs/$B" --env "$RUNWARDEN_WEBHOOK_ENV" \
  >"$IT_DIR/python_watcher.out" 2>&1 &
ppid_=$!
BENCH_PIDS+=("$ppid_")
sleep 3 # let both settle (startup allocations, first poll)
bench_note "watcher_idle: WINDOW=${WINDOW}s; runwarden watcher pid $wpid ($(tr '\0' ' ' </proc/"$wpid"/cmdline)), python watcher pid $ppid_"

mem_line() { # PID: RSS and its parts, PSS
  awk -v pss="$(bench_pss_kib "$1")" '
    /^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^RssShmem:/ {s=$2}
    END {printf "VmRSS=%d KiB (%.2f MiB) [anon %d, file %d, shmem %d] VmHWM=%d KiB PSS=%s KiB", r, r/1024, a, f, s, h, pss}' \
    "/proc/$1/status"
}

# shellcheck disable=SC2034 # rss0 (start RSS) is read but only kept for debugging
declare -A rss0 v0 n0
for p in "$wpid" "$ppid_"; do
  read -r rss0[$p] v0[$p] n0[$p] < <(bench_proc_status "$p")
done
perf_pids=()
if ((have_perf)); then
  for p in "$wpid" "$ppid_"; do
    perf stat -x, -e raw_syscalls:sys_enter -p "$p" -o "$IT_DIR/perf.$p" -- sleep "$WINDOW" 2>/dev/null &
    perf_pids+=($!)
  done
fi
sleep "$WINDOW"
for p in "${perf_pids[@]}"; do wait "$p" || true; done
declare -A wake sys rss1
for p in "$wpid" "$ppid_"; do
  kill -0 "$p" 2>/dev/null || fail "pid $p died during the window"
  read -r rss1[$p] v n < <(bench_proc_status "$p")
  wake[$p]=$(((v - v0[$p]) + (n - n0[$p])))
  sys[$p]="n/a"
  if ((have_perf)) && [[ -s "$IT_DIR/perf.$p" ]]; then
    sys[$p]=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$IT_DIR/perf.$p")
  fi
done

per_min() { awk -v x="$1" -v w="$WINDOW" 'BEGIN { if (x ~ /^[0-9]+$/) printf "%.1f", x * 60 / w; else print "n/a" }'; }
echo "== window 1: ${WINDOW}s, no tracing"
echo "runwarden watcher: $(mem_line "$wpid")"
echo "  wakeups (ctx switches) ${wake[$wpid]} in ${WINDOW}s = $(per_min "${wake[$wpid]}")/min; syscalls (perf) ${sys[$wpid]} = $(per_min "${sys[$wpid]}")/min"
echo "python watcher:    $(mem_line "$ppid_")"
echo "  wakeups (ctx switches) ${wake[$ppid_]} in ${WINDOW}s = $(per_min "${wake[$ppid_]}")/min; syscalls (perf) ${sys[$ppid_]} = $(per_min "${sys[$ppid_]}")/min"
echo "runwarden watcher's resident memory by mapped file (top 8, KiB, from smaps):"
awk '/^[0-9a-f]+-[0-9a-f]+ / {f = (NF >= 6 ? $6 : "[anon]")} /^Rss:/ {r[f] += $2}
     END {for (k in r) if (r[k] > 0) printf "%8d  %s\n", r[k], k}' "/proc/$wpid/smaps" | sort -rn | sed -n 1,8p | sed 's/^/  /'
awk -v a="${rss1[$wpid]}" -v b="${rss1[$ppid_]}" 'BEGIN {printf "RSS ratio runwarden/python = %.2f (%d KiB / %d KiB)\n", a / b, a, b}'
awk -v a="$(bench_pss_kib "$wpid")" -v b="$(bench_pss_kib "$ppid_")" 'BEGIN {if (b > 0) printf "PSS ratio runwarden/python = %.2f\n", a / b}'
awk -v a="${wake[$wpid]}" -v b="${wake[$ppid_]}" 'BEGIN {printf "wakeup ratio runwarden/python = %s\n", (b > 0) ? sprintf("%.2f", a / b) : "n/a"}'
printf 'targets: RSS <= 4096 KiB: %s; wakeups ~0/min (no --hung-after): %s/min\n' \
  "$( ((rss1[$wpid] <= 4096)) && echo met || echo "NOT met (${rss1[$wpid]} KiB)")" "$(per_min "${wake[$wpid]}")"

if ((STRACE)); then
  echo "== window 2: ${WINDOW}s, strace -c -f -p (syscall breakdown)"
  spids=()
  for p in "$wpid" "$ppid_"; do
    timeout -s INT "$WINDOW" strace -c -f -p "$p" -o "$IT_DIR/strace.$p" 2>/dev/null &
    spids+=($!)
  done
  for p in "${spids[@]}"; do wait "$p" || true; done
  for p in "$wpid" "$ppid_"; do
    [[ $p == "$wpid" ]] && echo "runwarden watcher:" || echo "python watcher:"
    if [[ -s "$IT_DIR/strace.$p" ]]; then
      # The summary sorted by number of calls, the total line last.
      head -1 "$IT_DIR/strace.$p" | sed 's/^/  /'
      awk 'NR > 2 && $0 !~ /^-/ && $NF != "total"' "$IT_DIR/strace.$p" | sort -k4,4nr | sed 's/^/  /'
      grep ' total$' "$IT_DIR/strace.$p" | sed 's/^/  /' 
    else
      echo "  (no strace output)"
    fi
  done
fi

# What wakes ours: the inotify events and bus messages it reads in 25 s
# (two of the runner's 10 s heartbeats).
if ((STRACE)); then
  echo "== what woke the runwarden watcher in 25 s (strace -e read,recvmsg; inotify names / bus members):"
  timeout -s INT 25 strace -tt -e trace=read,recvmsg -s 64 -p "$wpid" -o "$IT_DIR/why.txt" 2>/dev/null || true
  woke=$(grep -v EAGAIN "$IT_DIR/why.txt" | grep -E 'read\(3,|recvmsg' | sed -E 's/\\0+/ /g; s/^[0-9]+ //' | cut -c1-150 || true)
  if [[ -n $woke ]]; then sed 's/^/  /' <<<"$woke"; else echo "  nothing"; fi
  echo "  run directory (mtime):"
  ls -l --time-style=+%H:%M:%S "$RUNWARDEN_STATE_DIR/runs/$B" | sed 's/^/    /'
fi

bench_keep_journal
