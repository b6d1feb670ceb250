#!/bin/bash
# Prints the build directory: $RW_BUILD, else build/ in the source tree,
# unless the tree is where services cannot see it (/tmp and /var/tmp are
# private to the test manager and to PrivateTmp= units, home directories are
# hidden by ProtectHome=): then /var/lib/runwarden-build/<tree name>.
src=$(cd "$(dirname "$0")/.." && pwd)
if [[ -n "${RW_BUILD:-}" ]]; then echo "$RW_BUILD"; exit 0; fi
case "$src/" in
  /tmp/*|/var/tmp/*|/root/*|/home/*|/run/user/*) echo "/var/lib/runwarden-build/$(basename "$src")" ;;
  *) echo "$src/build" ;;
esac
