# bash completion for runwarden, start-run and cancel-run. Subcommands and
# options come from the program's own --help, so they never fall behind it;
# build names (cancel-run, status, logs, notify, testbed ...) from the runs
# in $RUNWARDEN_STATE_DIR (default /var/lib/runwarden).

_runwarden_builds() {
  local d=${RUNWARDEN_STATE_DIR:-/var/lib/runwarden}/runs f
  [[ -d $d ]] || return 0
  for f in "$d"/*/; do [[ -d $f ]] && printf '%s\n' "$(basename "$f")"; done
}

# _runwarden_help WORDS...: the subcommands and options `WORDS --help` lists.
_runwarden_help() {
  "$@" --help 2>/dev/null | awk '
    /^Subcommands:/ { s = 1; next }
    /^[A-Za-z]/ { s = 0 }
    s && /^  [a-z]/ { print $1 }
    /^  *-/ { n = split($1, a, ","); for (i = 1; i <= n; i++) if (a[i] ~ /^--?[A-Za-z]/) print a[i] }'
}

_runwarden() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local prog=${COMP_WORDS[0]} i
  local -a path=("$prog")
  # The subcommand path typed so far (runwarden testbed down ...).
  for ((i = 1; i < COMP_CWORD; i++)); do
    [[ ${COMP_WORDS[i]} == -* ]] && continue
    if _runwarden_help "${path[@]}" | grep -qx -- "${COMP_WORDS[i]}"; then path+=("${COMP_WORDS[i]}"); fi
  done
  case $prev in
    --build-name | -b | --testbed | --build)
      mapfile -t COMPREPLY < <(compgen -W "$(_runwarden_builds)" -- "$cur")
      return 0 ;;
    --plan | --workdir)
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return 0 ;;
  esac
  local words
  words=$(_runwarden_help "${path[@]}")
  # A positional build name: runwarden status|logs|cancel|notify|testbed X.
  local last=${path[${#path[@]} - 1]}
  case $last in
    status | logs | cancel | notify | down | diff | snapshots) words+=$'\n'$(_runwarden_builds) ;;
  esac
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}

complete -F _runwarden runwarden start-run cancel-run
