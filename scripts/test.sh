#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine (as root):
# installs dependencies, builds with warnings as errors, runs the unit tests,
# every integration test against a real systemd, sshd hosts and a real HTTP
# receiver, and a short fuzzing run of the plan parser.
#
#   scripts/test.sh                 everything
#   scripts/test.sh unit            unit tests only
#   scripts/test.sh integration [GLOB]   integration tests (e.g. 'cancel*')
# Environment: RW_BUILD (build dir), FUZZ_SECONDS (default 30, 0 skips).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
export RW_SRC=$src
export RW_BUILD; RW_BUILD=$("$src/scripts/build-dir.sh")
what=${1:-all}
glob=${2:-*}

"$src/scripts/install-deps.sh"
"$src/scripts/build.sh"

passed=0
failed=0
failures=()
record() {  # record NAME RC
  if [[ $2 -eq 0 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

if [[ $what == all || $what == unit ]]; then
  echo "== unit tests"
  set +e
  (cd "$RW_BUILD" && ctest --output-on-failure -j2 2>&1 | tail -n 25)
  rc=${PIPESTATUS[0]}
  set -e
  record unit-tests "$rc"
fi

if [[ $what == all || $what == integration ]]; then
  echo "== integration tests"
  for t in "$src"/tests/integration/${glob}_test.sh; do
    [[ -e $t ]] || continue
    name=$(basename "$t" .sh)
    start=$SECONDS
    set +e
    timeout --kill-after=10 600 bash "$t" >"$RW_BUILD/$name.log" 2>&1
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
      echo "PASS $name ($((SECONDS - start))s)"
    else
      echo "FAIL $name ($((SECONDS - start))s), log:"
      tail -n 40 "$RW_BUILD/$name.log" | sed 's/^/    /'
    fi
    record "$name" "$rc"
  done
fi

if [[ $what == all && ${FUZZ_SECONDS:-30} -gt 0 && -x "$src/scripts/fuzz.sh" ]]; then
  echo "== fuzzing the plan parser for ${FUZZ_SECONDS:-30}s"
  set +e
  "$src/scripts/fuzz.sh" "${FUZZ_SECONDS:-30}" >"$RW_BUILD/fuzz.log" 2>&1
  rc=$?
  set -e
  ((rc == 0)) && echo "PASS fuzz" || { echo "FAIL fuzz:"; tail -n 30 "$RW_BUILD/fuzz.log"; }
  record fuzz "$rc"
fi

echo
if ((failed)); then echo "failed: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
((failed == 0))
