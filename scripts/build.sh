#!/bin/bash
# Configures and builds runwarden into build/ (or $RW_BUILD).
# Extra arguments go to cmake's configure step, e.g. -DRUNWARDEN_SANITIZE=ON.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$("$src/scripts/build-dir.sh")
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRUNWARDEN_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
