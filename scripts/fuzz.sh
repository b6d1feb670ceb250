#!/usr/bin/env bash
# Builds the fuzzers (clang, libFuzzer + ASan) and runs them: the plan parser
# for SECONDS on the seed corpus in tests/fuzz/corpus, then shell quoting
# (10 s) and the webhook client's reply and URL parsing (15 s, seeds in
# tests/fuzz/http-corpus).
#
#   scripts/fuzz.sh [SECONDS]        default 60; CI uses ~30
#
# Environment: BUILD_DIR (default build-fuzz in the repository), JOBS (build
# parallelism), FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2").
# Exit status: 0 when nothing was found; non-zero when the build failed or the
# fuzzer found a crash, an uncaught exception, a timeout or an out-of-memory.
# The input that did it is kept in $BUILD_DIR/fuzz-artifacts/; reproduce with
#   $BUILD_DIR/plan_parser_fuzz $BUILD_DIR/fuzz-artifacts/crash-...
# and add it to tests/fuzz/corpus/ once fixed.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build-fuzz}"
jobs="${JOBS:-$(nproc)}"

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DRUNWARDEN_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target plan_parser_fuzz shell_quote_fuzz http_reply_fuzz -j "$jobs"

# New inputs go to a scratch directory; the checked-in seeds stay as they are.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"

echo "fuzz.sh: running plan_parser_fuzz for ${seconds}s"
# -timeout: one input may take 10 s at most (a hang is a finding);
# -rss_limit_mb: a plan must not need 2 GiB; -max_len: plans are small files.
# shellcheck disable=SC2086
"$build/plan_parser_fuzz" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
  -dict="$root/tests/fuzz/plan_parser.dict" \
  -artifact_prefix="$artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} \
  "$scratch" "$root/tests/fuzz/corpus"

echo "fuzz.sh: running shell_quote_fuzz for 10s"
mkdir -p "$scratch/shell"
"$build/shell_quote_fuzz" -max_total_time=10 -timeout=10 -max_len=4096 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$scratch/shell"

echo "fuzz.sh: running http_reply_fuzz for 15s"
mkdir -p "$scratch/http"
"$build/http_reply_fuzz" -max_total_time=15 -timeout=10 -max_len=8192 \
  -dict="$root/tests/fuzz/http_reply.dict" \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$scratch/http" "$root/tests/fuzz/http-corpus"
