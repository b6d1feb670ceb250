#!/bin/bash
# scripts/package.sh [OUTDIR]: builds runwarden_<version>_<arch>.deb from this
# tree into OUTDIR (default: dist/), and runs lintian on it.
#
# A debian/ directory built with dpkg-buildpackage (debhelper), not CPack:
# debhelper marks every file under /etc a conffile, fills Depends from the
# shared-library scan (dh_shlibdeps), writes the maintainer-script snippets
# and the changelog and copyright where Debian wants them, and the result is
# what lintian checks. The build runs on a copy of the tree (git's tracked
# files, plus uncommitted changes), so the working tree gets no debian/
# build artefacts.
#
# Exit codes: 0 built (lintian clean, or only its overridden tags), 1 build
# failed, 2 lintian reported errors or warnings.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

"$src/scripts/install-deps.sh" >&2

version=$(sed -n 's/^project(runwarden VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
changelog_version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [[ "$version" != "$changelog_version" ]]; then
  echo "package: CMakeLists.txt says $version, debian/changelog says $changelog_version: add a changelog entry" >&2
  exit 1
fi

work=$(mktemp -d /var/tmp/runwarden-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/runwarden-$version"
# The tracked files as they are now in the working tree.
(cd "$src" && git ls-files -z --cached --others --exclude-standard | grep -zv '^dist/' |
  xargs -0 cp --parents -t "$work/runwarden-$version" 2>/dev/null) ||
  (cd "$src" && tar --exclude=./build\* --exclude=./dist --exclude=./.git -cf - . | tar -C "$work/runwarden-$version" -xf -)

echo "package: building runwarden $version" >&2
(cd "$work/runwarden-$version" && dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$work/build.log" 2>&1) || {
  tail -40 "$work/build.log" >&2
  echo "package: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
deb=$(ls "$work"/runwarden_"$version"_*.deb)
cp "$deb" "$out/"
deb=$out/$(basename "$deb")
echo "$deb"

echo "package: lintian" >&2
if ! lintian --fail-on error,warning "$deb" >&2; then
  echo "package: lintian reported errors or warnings" >&2
  exit 2
fi
