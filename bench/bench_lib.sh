# shellcheck shell=bash
# bench/bench_lib.sh: sourced by the bench/*.sh scripts.
#
# Benchmarks are not tests: they print figures, they are run by hand and the
# figures are quoted in notes (see /work/shared/TESTING.md). They reuse the
# integration harness (tests/integration/lib.sh): it_setup boots a throwaway
# systemd with runner@/watcher@ pointed at a private state dir, starts the
# webhook receiver (tests/receiver.py) and exports RW_BIN, RUNWARDEN_*,
# RECEIVER_PORT, IT_DIR, IT_SANDBOX. Teardown (EXIT trap) kills the sandbox
# and the receiver.
#
# Scratch goes under /var/lib/runwarden-bench (not /tmp: the sandbox mounts
# its own /tmp). RW_KEEP=1 keeps the directory (receiver log, state dirs,
# journal.txt).
#
# Other people rebuild build/ while a benchmark runs (a relinked binary gives
# "Permission denied" or a changed program mid-run), so bench_setup copies
# runwarden and the units into a snapshot dir first and points RW_BUILD there
# (BENCH_SNAPSHOT=0 to use $RW_BUILD as it is).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export RW_IT_ROOT=${RW_IT_ROOT:-/var/lib/runwarden-bench}
export IT_NAME=${IT_NAME:-bench-$(basename "$0" .sh)}
# shellcheck source=../tests/integration/lib.sh
source "$BENCH_DIR/../tests/integration/lib.sh"
# shellcheck source=../tests/integration/runwarden.sh
source "$BENCH_DIR/../tests/integration/runwarden.sh"

# Benchmarks end without `pass`; keep lib.sh's teardown from warning about it.
IT_PASSED=1

bench_note() { printf '# %s\n' "$*"; }

BENCH_SNAP=""
# bench_setup [it_setup args]: snapshot the binary, then it_setup.
bench_setup() {
  if [[ "${BENCH_SNAPSHOT:-1}" == 1 ]]; then
    local src=${RW_BUILD:-$("$BENCH_DIR/../scripts/build-dir.sh")}
    mkdir -p "$RW_IT_ROOT"; chmod 0755 "$RW_IT_ROOT"
    BENCH_SNAP=$(mktemp -d "$RW_IT_ROOT/bin-XXXXXX")
    chmod 0755 "$BENCH_SNAP"
    # Copy a finished link only: non-empty, unchanged for 3 s, and it runs.
    local tries=0
    until [[ -s "$src/runwarden" ]] && (($(date +%s) - $(stat -c %Y "$src/runwarden") >= 3)) &&
      "$src/runwarden" --version >/dev/null 2>&1 &&
      cp "$src/runwarden" "$BENCH_SNAP/runwarden" && "$BENCH_SNAP/runwarden" --version >/dev/null 2>&1; do
      tries=$((tries + 1))
      ((tries < 120)) || fail "no usable $src/runwarden (being rebuilt?) after 2 minutes"
      sleep 1
    done
    if [[ -x "$src/runwarden-watcher" ]]; then cp "$src/runwarden-watcher" "$BENCH_SNAP/runwarden-watcher"; fi
    # start-run: an executable of its own (cancel-run links to it), or in
    # older builds a symlink to runwarden.
    if [[ -f "$src/start-run" && ! -L "$src/start-run" ]]; then
      cp "$src/start-run" "$BENCH_SNAP/start-run"
      ln -s start-run "$BENCH_SNAP/cancel-run"
    else
      ln -s runwarden "$BENCH_SNAP/start-run"
      ln -s runwarden "$BENCH_SNAP/cancel-run"
    fi
    cp -r "$src/units" "$BENCH_SNAP/units"
    RW_BUILD=$BENCH_SNAP
    bench_note "binary snapshot of $src/runwarden ($(stat -c '%y' "$src/runwarden" | cut -d. -f1), sha1 $(sha1sum "$BENCH_SNAP/runwarden" | cut -c1-12))"
  fi
  it_setup "$@"
}

# Background helpers a benchmark started (killed by pid at teardown).
BENCH_PIDS=()
bench__cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do
    { kill "$p" && wait "$p"; } 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [[ -n "$BENCH_SNAP" && -d "$BENCH_SNAP" ]]; then rm -rf -- "$BENCH_SNAP"; fi
  return 0
}
# lib.sh's teardown runs from its EXIT trap (also when it_setup itself
# fails); ours rides along: through IT_EXTRA_TEARDOWN where lib.sh has it,
# else by wrapping it_teardown.
if declare -p IT_EXTRA_TEARDOWN >/dev/null 2>&1; then
  IT_EXTRA_TEARDOWN+=(bench__cleanup)
else
  eval "bench__lib_teardown() $(declare -f it_teardown | tail -n +2)"
  it_teardown() {
    local rc=$?
    set +e # errexit still applies inside an EXIT trap
    (exit "$rc")
    bench__lib_teardown
    bench__cleanup
    return "$rc"
  }
fi

# bench_keep_journal: with RW_KEEP=1, the sandbox's whole journal goes to
# $IT_DIR/journal.txt (call at the end, while the sandbox still runs).
bench_keep_journal() {
  if [[ "${RW_KEEP:-0}" == 1 && -n "$IT_SANDBOX" && -f "$IT_SANDBOX/mode" ]]; then
    journal --no-hostname -o short-precise >"$IT_DIR/journal.txt" 2>&1 || true
  fi
  return 0
}

# bench_stats LABEL UNIT < numbers (one per line): count p50 p90 p99 max.
bench_stats() {
  "$IT_PYTHON" -c "$BENCH_STATS_PY" "$1" "${2:-ms}"
}
BENCH_STATS_PY=$(cat <<'PY'
import sys
label, unit = sys.argv[1], sys.argv[2]
xs = sorted(float(l) for l in sys.stdin if l.strip())
def pct(p):
    if not xs:
        return float("nan")
    # nearest-rank percentile
    import math
    k = max(1, math.ceil(p / 100.0 * len(xs)))
    return xs[k - 1]
if not xs:
    print("%-52s count=0" % label)
else:
    print("%-52s count=%d min=%.1f p50=%.1f p90=%.1f p99=%.1f max=%.1f mean=%.1f (%s)" % (
        label, len(xs), xs[0], pct(50), pct(90), pct(99), xs[-1], sum(xs) / len(xs), unit))
PY
)

# bench_post_counts PREFIX: for every build name PREFIX-NNNN seen in the
# receiver's log, how many posts named it. Prints "build count" lines.
bench_post_counts() {
  "$IT_PYTHON" - "$IT_DIR/receiver.jsonl" "$1" <<'PY'
import collections, json, re, sys
log, prefix = sys.argv[1], sys.argv[2]
pat = re.compile(r"(?<![A-Za-z0-9._-])(%s-\d{4})(?![A-Za-z0-9._-])" % re.escape(prefix))
counts = collections.Counter()
for line in open(log, encoding="utf-8"):
    rec = json.loads(line)
    body = rec["body"]
    names = set(pat.findall(json.dumps(body) if not isinstance(body, str) else body))
    for n in names:
        counts[n] += 1
    if not names:
        counts["<unattributed>"] += 1
for k in sorted(counts):
    print(k, counts[k])
PY
}

# bench_proc_status PID: "rss_kib vol nonvol" from /proc/PID/status.
bench_proc_status() {
  awk '/^VmRSS:/ {r=$2} /^voluntary_ctxt_switches:/ {v=$2} /^nonvoluntary_ctxt_switches:/ {n=$2}
       END {print r, v, n}' "/proc/$1/status"
}

# bench_pss_kib PID: proportional set size (shared library pages split among
# their users), from smaps_rollup; "?" if unreadable.
bench_pss_kib() {
  awk '/^Pss:/ {print $2; f=1} END {if (!f) print "?"}' "/proc/$1/smaps_rollup" 2>/dev/null || echo "?"
}
