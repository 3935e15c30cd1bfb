#!/bin/bash
# Outpost quick start for a fresh Debian 12 machine (README.md):
#
#   bash packaging/quickstart.sh demo   install what is missing, build, and run
#                                       the demo: a node database with a few
#                                       thousand generated contacts, searched
#   bash packaging/quickstart.sh test   install what is missing, build with
#                                       warnings as errors, run the whole suite
#                                       (extra arguments go to `meson test`)
#
# Safe to run again: packages already installed are not touched (checked
# with dpkg-query first, so a second run needs no network), a configured
# build directory is reconfigured rather than set up anew, and the demo
# database is recreated. Uses sudo for apt-get when not run as root.
# BUILD_DIR (default: build) picks the build directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root"
BUILD_DIR=${BUILD_DIR:-build}
DEMO_COUNT=5000
DEMO_REGION=EU-DE

say() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'quickstart: %s\n' "$*" >&2
    exit 1
}

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $* (install sudo or run as root)"
    fi
}

# The package names in packaging/build-deps.txt, comments stripped.
build_deps() {
    sed -e 's/#.*//' "$here/build-deps.txt" | tr -s ' \t' '\n' | sed '/^$/d'
}

install_deps() {
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        say "not a Debian system: install the equivalents of packaging/build-deps.txt yourself"
        return 0
    fi
    local missing=() p
    for p in $(build_deps); do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "build dependencies: all installed"
        return 0
    fi
    say "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"
}

# configure [MESON OPTIONS...]: set up BUILD_DIR, or reconfigure it with the
# given options if it is already set up (options not given keep their value).
configure() {
    if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
        say "reconfiguring $BUILD_DIR $*"
        meson setup --reconfigure "$BUILD_DIR" "$@" >/dev/null
    else
        say "configuring $BUILD_DIR $*"
        meson setup "$BUILD_DIR" "$@" >/dev/null
    fi
}

build() {
    say "building in $BUILD_DIR"
    meson compile -C "$BUILD_DIR"
}

demo() {
    install_deps
    configure
    build
    local dir db outpost
    mkdir -p "$BUILD_DIR/demo"
    dir=$(cd "$BUILD_DIR/demo" && pwd)
    db="$dir/node.db"
    outpost="$BUILD_DIR/appliance/outpost"
    rm -f "$db" "$db-wal" "$db-shm" "$dir/contacts.csv"

    say "creating a node database for region $DEMO_REGION"
    "$outpost" init --db "$db" --region "$DEMO_REGION"
    say "generating $DEMO_COUNT contacts from thirteen countries and importing them"
    "$BUILD_DIR/tests/tools/gen_contacts" --count "$DEMO_COUNT" --seed 1 --out "$dir/contacts.csv"
    "$outpost" import --db "$db" "$dir/contacts.csv"

    say "searching: case and diacritics are folded, words match as prefixes"
    local q why
    while IFS='|' read -r q why; do
        printf '\n$ outpost search %s      # %s\n' "$q" "$why"
        "$outpost" search --db "$db" --limit 4 "$q"
    done <<'QUERIES'
jose|finds José
lodz|finds the contacts living in Łódź
muller berl|finds the Müllers in Berlin
иван|works in Cyrillic too
QUERIES

    cat <<EOF

==> done. The demo database is $db
    (the imported CSV file is $dir/contacts.csv). Try:

    export OUTPOST_DB=$db
    $BUILD_DIR/appliance/outpost search gonzalez
    $BUILD_DIR/appliance/outpost search --json lodz
    $BUILD_DIR/appliance/outpost contact list --limit 5
    $BUILD_DIR/appliance/outpost contact add --given-name Zoë --family-name Ørsted --email zoe@example.org
    $BUILD_DIR/appliance/outpost export --format vcard --output /tmp/contacts.vcf
    $BUILD_DIR/appliance/outpost backup /tmp/node-backup.db
    $BUILD_DIR/appliance/outpost check
    $BUILD_DIR/appliance/outpost --help

Run \`bash packaging/quickstart.sh demo\` again to start over.
EOF
}

test_all() {
    install_deps
    configure -Dwerror=true
    build
    say "running the test suite"
    meson test -C "$BUILD_DIR" --print-errorlogs "$@"
}

case ${1:-} in
demo)
    shift
    [ $# -eq 0 ] || die "demo takes no arguments"
    demo
    ;;
test)
    shift
    test_all "$@"
    ;;
*)
    echo "usage: bash packaging/quickstart.sh demo|test [MESON TEST ARGS...]" >&2
    exit 2
    ;;
esac
