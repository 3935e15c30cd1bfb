#!/bin/bash
# Builds the Outpost Debian packages from this source tree:
#
#   bash packaging/build-deb.sh [OUTDIR]
#
# Copies the tree (without build directories and .git) to a temporary
# directory, puts packaging/debian at its top as debian/, runs
# `dpkg-buildpackage -us -uc -b` there and moves everything it made to
# OUTDIR (default: the current directory): the three packages outpost
# (the node), outpost-hq (the HQ receiver) and outpost-common, the -dbgsym
# packages of the two with programs, the .changes and the .buildinfo.
# Prints the three packages' paths on standard output, one a line (node,
# HQ, common); the build log goes to standard error.
#
# Needs dpkg-dev, debhelper and the Build-Depends of packaging/debian/control
# (`dpkg-checkbuilddeps` says which are missing). DEB_BUILD_OPTIONS=nocheck
# skips the unit and CLI tests in the build. The working tree is never
# written to: a package can be built from a checkout someone is building in.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
outdir=${1:-.}

die() {
    printf 'build-deb: %s\n' "$*" >&2
    exit 1
}

for tool in dpkg-buildpackage dh dpkg-parsechangelog; do
    command -v "$tool" >/dev/null ||
        die "$tool not found: apt-get install dpkg-dev debhelper"
done
[ -d "$outdir" ] || die "output directory $outdir does not exist"
outdir=$(cd "$outdir" && pwd)

# The package version comes from debian/changelog and the program's from
# meson.build; a package that says one version and contains another is
# worse than no package. A change to the packaging alone is VERSION+N (the
# program is still VERSION).
deb_version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$root/meson.build" | head -n1)
case "$deb_version" in
"$meson_version" | "$meson_version"+[0-9] | "$meson_version"+[0-9][0-9]) ;;
*)
    die "packaging/debian/changelog says $deb_version but meson.build says $meson_version;" \
        "add a changelog entry (dch -v $meson_version)"
    ;;
esac
arch=$(dpkg --print-architecture)

work=$(mktemp -d "${TMPDIR:-/tmp}/outpost-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/outpost-$deb_version
mkdir "$src"

# The source: what git tracks plus untracked files not ignored, when this is
# a git checkout; otherwise everything but build output.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # ls-files also lists tracked files deleted in the working tree: skip them.
    git -C "$root" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [ ! -e "$root/$f" ] || printf '%s\0' "$f"
        done | (cd "$root" && xargs -0 -r cp -P --parents -t "$src") ||
        die "copying the source tree to $src failed"
else
    tar -C "$root" --exclude='./build*' --exclude=./.git --exclude=./debian -cf - . |
        tar -C "$src" -xf -
fi
# Build directories inside the tree are never source.
find "$src" -maxdepth 1 -name 'build*' -type d -exec rm -rf {} +
rm -rf "$src/debian"
cp -r "$here/debian" "$src/debian"

start=$(date +%s)
printf 'build-deb: building outpost %s in %s\n' "$deb_version" "$src" >&2
(cd "$src" && dpkg-buildpackage -us -uc -b) >&2 || die "dpkg-buildpackage failed (log above)"
debs="outpost_${deb_version}_$arch.deb outpost-hq_${deb_version}_$arch.deb
outpost-common_${deb_version}_all.deb"
for d in $debs; do
    [ -f "$work/$d" ] || die "dpkg-buildpackage did not produce $d: $(ls "$work")"
done
# Everything the build made, not only the packages: the .changes and
# .buildinfo (what was built from what, for an upload or a reproducibility
# check) and the debug symbols packages (outpost-dbgsym, outpost-hq-dbgsym,
# for a core dump).
for f in "$work"/*.deb "$work"/*.ddeb "$work"/*.changes "$work"/*.buildinfo; do
    [ -e "$f" ] || continue
    mv -f "$f" "$outdir/"
    printf 'build-deb: kept %s\n' "$outdir/${f##*/}" >&2
done
# Anything else it left beside the source would be lost with $work.
left=$(find "$work" -mindepth 1 -maxdepth 1 ! -name "outpost-$deb_version")
[ -z "$left" ] || die "dpkg-buildpackage made files this script does not keep: $left"
printf 'build-deb: done in %ss\n' "$(($(date +%s) - start))" >&2
for d in $debs; do
    printf '%s\n' "$outdir/$d"
done
