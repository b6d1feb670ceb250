#!/bin/bash
# scripts/man.sh BUILD_DIR OUT_DIR: writes the manual pages runwarden.1,
# start-run.1 and cancel-run.1, made from the programs' own --help (so a page
# and --help never disagree), and copies runwarden-plan.5 (man/). Installed
# by `cmake --install`; tests/integration/man_pages_test.sh checks them.
set -euo pipefail
build=$1 out=$2
src=$(cd "$(dirname "$0")/.." && pwd)
rw=$build/runwarden
version=$("$rw" --version 2>/dev/null | awk '{print $NF}')
mkdir -p "$out"

# Help text as a no-fill block: every line guarded (a leading '.' or "'" is
# not a request), backslashes escaped.
verbatim() { printf '.nf\n'; sed -e 's/\\/\\e/g' -e 's/^/\\\&/'; printf '.fi\n'; }

head_of() {  # head_of NAME SECTION
  printf '.TH %s %s "" "runwarden %s" "runwarden"\n' "$(tr a-z A-Z <<<"$1")" "$2" "$version"
}

common_tail() {
  cat <<'ROFF'
.SH ENVIRONMENT
Settings are read from
.I /etc/runwarden/runwarden.conf
(KEY=VALUE lines; see the example shipped with runwarden): RUNWARDEN_STATE_DIR,
RUNWARDEN_HISTORY_KEEP, RUNWARDEN_NOTIFY_ATTEMPTS, RUNWARDEN_START_TIMEOUT,
RUNWARDEN_LIBVIRT_URI, RUNWARDEN_TESTBED_PARALLEL.
.SH FILES
.TP
.I /var/lib/runwarden/runs/BUILD/
a run: state.json, plan.yaml, runner.log, tasks/, events.jsonl, the posted markers
.TP
.I /etc/runwarden/watcher.env
the webhook URL (a secret: mode 0600)
.TP
.I runner@.service, watcher@.service
the run's units
.SH EXIT STATUS
0 success; 1 the operation failed; 2 bad input, nothing touched; 3 the build is
running or locked; 4 no such build; 5 the template command failed; 6 the
service manager refused or is unreachable.
ROFF
}

# runwarden(1): the top help, then each subcommand's.
{
  head_of runwarden 1
  printf '.SH NAME\nrunwarden \\- long test and provisioning runs as systemd services, one chat message when done\n'
  printf '.SH SYNOPSIS\n.B runwarden\n.I SUBCOMMAND\n[\\fIOPTIONS\\fR]\n'
  printf '.SH DESCRIPTION\n'
  "$rw" --help | verbatim
  printf '.SH SUBCOMMANDS\n'
  for sub in $("$rw" --help | awk '/^Subcommands:/{s=1; next} s && /^  [a-z]/{print $1}'); do
    printf '.SS %s\n' "$sub"
    "$rw" "$sub" --help | verbatim
    for subsub in $("$rw" "$sub" --help | awk '/^Subcommands:/{s=1; next} s && /^  [a-z]/{print $1}'); do
      printf '.SS %s %s\n' "$sub" "$subsub"
      "$rw" "$sub" "$subsub" --help | verbatim
    done
  done
  common_tail
  printf '.SH SEE ALSO\n.BR start-run (1),\n.BR cancel-run (1),\n.BR runwarden-plan (5),\n.BR systemctl (1)\n'
} >"$out/runwarden.1"

for cmd in start-run cancel-run; do
  {
    head_of "$cmd" 1
    what=$("$build/$cmd" --help | head -n 1 | sed "s/ (also: [^)]*)//")
    printf '.SH NAME\n%s \\- %s\n' "$cmd" "$what"
    printf '.SH SYNOPSIS\n.B %s\n[\\fIOPTIONS\\fR]\n' "$cmd"
    printf '.SH DESCRIPTION\n'
    "$build/$cmd" --help | verbatim
    common_tail
    printf '.SH SEE ALSO\n.BR runwarden (1),\n.BR runwarden-plan (5)\n'
  } >"$out/$cmd.1"
done

sed "s/@VERSION@/$version/" "$src/man/runwarden-plan.5.in" >"$out/runwarden-plan.5"
sed "s/@VERSION@/$version/" "$src/man/runwarden-watcher.8.in" >"$out/runwarden-watcher.8"
sed "s/@VERSION@/$version/" "$src/man/runwarden-web.8.in" >"$out/runwarden-web.8"
echo "$out: runwarden.1 start-run.1 cancel-run.1 runwarden-plan.5 runwarden-watcher.8 runwarden-web.8"
