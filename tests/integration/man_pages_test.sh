#!/bin/bash
# The manual pages and bash completion, as `cmake --install` puts them: the
# pages render without groff warnings, runwarden(1) has a section for every
# subcommand --help lists, start-run(1) every option of start-run --help,
# runwarden-plan(5) every key the plan parser accepts; completion offers
# subcommands, options and the build names of existing runs.
source "$(dirname "$0")/lib.sh"
: "${RW_BUILD:?}"
dest=$(mktemp -d /var/tmp/rw-man-XXXXXX)
trap 'rm -rf "$dest"' EXIT  # no manager here: nothing else to tear down
DESTDIR=$dest cmake --install "$RW_BUILD" >"$dest.log" 2>&1 || fail "cmake --install: $(tail -n 5 "$dest.log")"
rm -f "$dest.log"
man1=$(find "$dest" -type d -path '*/share/man/man1')
man5=$(find "$dest" -type d -path '*/share/man/man5')
man8=$(find "$dest" -type d -path '*/share/man/man8')
comp=$(find "$dest" -type d -path '*/bash-completion/completions')
[[ -n $man1 && -n $man5 && -n $man8 && -n $comp ]] || fail "no man1, man5, man8 or completions directory installed"

for page in "$man1"/runwarden.1 "$man1"/start-run.1 "$man1"/cancel-run.1 "$man5"/runwarden-plan.5 \
  "$man8"/runwarden-watcher.8 "$man8"/runwarden-web.8; do
  [[ -s $page ]] || fail "$page missing"
  warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
  assert_eq "$warnings" "" "groff warnings for $(basename "$page")"
done

rw=$RW_BUILD/runwarden
for sub in $("$rw" --help | awk '/^Subcommands:/{s=1; next} s && /^  [a-z]/{print $1}'); do
  grep -qx ".SS $sub" "$man1/runwarden.1" || fail "runwarden(1) has no section for '$sub'"
done
grep -qx ".SS testbed diff" "$man1/runwarden.1" || fail "runwarden(1) has no section for 'testbed diff'"
for opt in $("$RW_BUILD/start-run" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
  grep -q -- "${opt//-/\\\\-}\|$opt" "$man1/start-run.1" || fail "start-run(1) lacks $opt"
done
assert_contains "$(man -l "$man1/start-run.1" 2>/dev/null)" "Usage: start-run [OPTIONS]" "start-run(1) shows the usage"

# Every key the parser accepts, at the top, in a stage and in a task.
keys() { { "$rw" validate "$1" 2>&1 || true; } | sed -n 's/.*allowed keys: //p' | head -n 1 | tr -d ','; }
printf 'x: 1\n' >"$dest/top.yaml"
printf 'version: 1\nstages: [{name: s, x: 1, tasks: [{name: t, run: "true"}]}]\n' >"$dest/stage.yaml"
printf 'version: 1\nstages: [{name: s, tasks: [{name: t, run: "true", x: 1}]}]\n' >"$dest/task.yaml"
for f in top stage task; do
  list=$(keys "$dest/$f.yaml")
  [[ -n $list ]] || fail "no allowed keys from the parser for a bad $f key"
  for k in $list; do
    grep -q "^\.B .*\b$k\b\|^\.BR .*\b$k\b\|\.B $k" "$man5/runwarden-plan.5" || fail "runwarden-plan(5) does not describe the $f key '$k'"
  done
done

# Completion, from the installed file.
state=$dest/state
mkdir -p "$state/runs/nightly-1" "$state/runs/nightly-2" "$state/runs/e2e"
complete_words() {
  PATH=$RW_BUILD:$PATH RUNWARDEN_STATE_DIR=$state bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _runwarden; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$comp/runwarden" "$@"
}
assert_eq "$(complete_words runwarden st)" "start status " "subcommands"
assert_eq "$(complete_words cancel-run --build-name nig)" "nightly-1 nightly-2 " "build names for cancel-run"
assert_contains "$(complete_words runwarden status "")" "e2e nightly-1 nightly-2" "build names for status"
assert_eq "$(complete_words runwarden testbed d)" "diff down " "testbed subcommands"
assert_eq "$(complete_words start-run --pl)" "--plan " "start-run options"
[[ -L $comp/start-run && -L $comp/cancel-run ]] || fail "no completion under start-run and cancel-run"
# Every installed command answers --version (start-run and cancel-run too,
# without the options a start or cancel needs).
bindir=$(dirname "$(find "$dest" -name runwarden -type f -path '*/bin/*' | head -n 1)")
want=$("$bindir/runwarden" --version | awk '{print $NF}')
for cmd in start-run cancel-run; do
  assert_eq "$("$bindir/$cmd" --version 2>&1 | awk '{print $NF}')" "$want" "$cmd --version"
done
pass
