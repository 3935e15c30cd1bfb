#!/bin/bash
# Outpost quick start for a fresh Debian 12 machine (README.md):
#
#   bash packaging/quickstart.sh demo   install what is missing, build, and run
#                                       the demo: a node database with a few
#                                       thousand generated contacts, searched,
#                                       then outpostd serving it on 127.0.0.1
#                                       and syncing it to a local outpost-hq,
#                                       until Ctrl-C
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

# The daemons refuse to run as root unless told (docs/OUTPOSTD.md); a demo
# started as root (a fresh container) lets them.
if [ "$(id -u)" = 0 ]; then
    export OUTPOST_ALLOW_ROOT=1
fi

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
    outpost="$BUILD_DIR/appliance/cli/outpost"
    # A demo daemon from an earlier run still serving this database?
    pkill -f "outpostd --db $db" 2>/dev/null || true
    pkill -f "outpost-hq serve --db $dir/hq.db" 2>/dev/null || true
    rm -rf "$db" "$db-wal" "$db-shm" "$dir/contacts.csv" "$dir/hq.db" "$dir/hq.db-wal" \
        "$dir/hq.db-shm" "$dir/hq-uploads" "$dir/spool" "$dir/branch-1.credentials" \
        "$dir/policy-override.yaml"

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

    say "creating the demo user 'demo' (role manager, password 'outpost demo')"
    printf 'outpost demo\n' | "$outpost" user add demo --role manager --password-stdin --db "$db"

    say "starting outpost-hq, a local HQ receiver, on a free loopback port"
    local hq="$BUILD_DIR/sync/hq/outpost-hq" hqdb="$dir/hq.db" hqlog="$dir/outpost-hq.log"
    "$hq" --db "$hqdb" node add branch-1 --region "$DEMO_REGION" --out "$dir/branch-1.credentials" >/dev/null
    "$hq" serve --db "$hqdb" --spool_dir "$dir/hq-uploads" --listen 127.0.0.1:0 --log_requests false \
        --log_timestamps true 2>"$hqlog" &
    local hqpid=$! hqport=""
    for _ in $(seq 1 100); do
        hqport=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$hqlog")
        [ -n "$hqport" ] && break
        kill -0 "$hqpid" 2>/dev/null || die "outpost-hq did not start: $(cat "$hqlog")"
        sleep 0.1
    done
    [ -n "$hqport" ] || die "outpost-hq did not start: $(cat "$hqlog")"

    say "starting outpostd on 127.0.0.1, syncing to HQ over a 64 kbit/s cap (Ctrl-C stops both)"
    local log="$dir/outpostd.log" port="" pid
    local sync=(--hq_credentials "$dir/branch-1.credentials" --hq_url "http://127.0.0.1:$hqport"
        --sync_bandwidth 64kbit --segment_bytes 64KB --sync_interval_ms 1000 --log_requests false
        --log_timestamps true)
    "$BUILD_DIR/appliance/daemon/outpostd" --db "$db" --listen "127.0.0.1:${DEMO_PORT:-8080}" "${sync[@]}" 2>"$log" &
    pid=$!
    for _ in $(seq 1 50); do
        port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$log")
        [ -n "$port" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            # The port is taken: let the kernel pick a free one.
            "$BUILD_DIR/appliance/daemon/outpostd" --db "$db" --listen 127.0.0.1:0 "${sync[@]}" 2>"$log" &
            pid=$!
        fi
        sleep 0.2
    done
    [ -n "$port" ] || die "outpostd did not start: $(cat "$log")"
    local base="http://127.0.0.1:$port" token
    token=$(curl -s -X POST -H 'Content-Type: application/json' \
        -d '{"name":"demo","password":"outpost demo"}' "$base/api/v1/session" |
        sed -n 's/.*"token":"\([^"]*\)".*/\1/p')

    cat <<EOF

==> The node and a local HQ are running. Where to look:

    web app:    $base/   open it in a browser; sign in as demo, password 'outpost demo'
    API:        $base/api/v1/   (log in: user demo, password 'outpost demo')
    health:     $base/healthz     metrics, sync included: $base/metrics (with the token below)
    database:   $db
    node log:   $log
    HQ:         http://127.0.0.1:$hqport/   store $hqdb, log $hqlog

    A session token for the demo user, valid 12 hours:
    export TOKEN=$token
    curl -s -H "Authorization: Bearer \$TOKEN" '$base/api/v1/search?q=lodz'
    curl -s -H "Authorization: Bearer \$TOKEN" $base/metrics | grep outpost_sync_
    curl -s -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
         -d '{"given_name":"Zoë","family_name":"Ørsted","email":"zoe@example.org"}' \\
         $base/api/v1/contacts

    The admin CLIs work beside the daemons:
    $BUILD_DIR/appliance/cli/outpost status --db $db
    $BUILD_DIR/appliance/cli/outpost egress-report --db $db
    $BUILD_DIR/sync/hq/outpost-hq --db $hqdb nodes
    $BUILD_DIR/sync/hq/outpost-hq --db $hqdb records --count

==> Sync to HQ, a line per segment with HQ's totals (the link is capped at 64 kbit/s):
EOF
    # One contact as the node has it and as HQ gets it: the region's
    # policy keeps the street on the node and sends names, e-mail and
    # phone as keyed hashes.
    local sample
    sample=$("$outpost" contact list --db "$db" --limit 1 --json | grep -o '"id": *"[^"]*"' |
        sed -n '1s/.*"\([^"]*\)"$/\1/p') || sample=""
    trap 'kill -TERM "$pid" "$hqpid" 2>/dev/null' INT TERM
    (
        # grep -q ends its pipe early: no pipefail or errexit in here
        set +e +o pipefail
        shown=0 seen=0 done_said=0
        while kill -0 "$pid" 2>/dev/null; do
            n=$(grep -c 'uploaded (' "$log" || true)
            if [ "$n" -gt "$seen" ]; then
                grep 'uploaded (' "$log" | sed -n "$((seen + 1)),${n}p" | sed 's/^\([0-9TZ:.-]* \)\{0,1\}\(<[0-7]>\)\{0,1\}outpostd: sync: /    /'
                seen=$n
                echo "    HQ totals: $("$hq" --db "$hqdb" records --count | tr -s ' \n' ' ')"
                if [ "$shown" = 0 ] && [ -n "$sample" ] &&
                    "$hq" --db "$hqdb" records --json | grep -q "$sample"; then
                    shown=1
                    echo "    one contact on the node (street and e-mail in clear):"
                    "$outpost" contact show --db "$db" --json "$sample" | sed 's/^/      /'
                    echo "    the same contact at HQ (street withheld; names, e-mail, phone as keyed hashes):"
                    "$hq" --db "$hqdb" records --json | grep "$sample" | sed 's/^/      /'
                fi
            fi
            if [ "$done_said" = 0 ] && [ "$seen" -gt 0 ] &&
                "$outpost" status --db "$db" --json 2>/dev/null | grep -q '"outbox_depth": *0[,}]'; then
                done_said=1
                echo "    every change is at HQ; new ones follow within seconds (Ctrl-C stops both daemons)"
            fi
            sleep 1
        done
    ) &
    local watcher=$!
    wait "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kill -TERM "$hqpid" 2>/dev/null || true
    wait "$hqpid" 2>/dev/null || true
    kill "$watcher" 2>/dev/null || true
    trap - INT TERM
    say "stopped; the logs are $log and $hqlog"
}

# The browser test's npm packages (tests/browser/package-lock.json), into
# tests/browser/node_modules only; skipped when that install is newer than
# the lock file, so a second run needs no network.
npm_deps() {
    local dir="$root/tests/browser"
    if [ -f "$dir/node_modules/.package-lock.json" ] &&
        [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
        say "browser test packages: installed"
        return 0
    fi
    # Debian's nodejs comes without npm; a nodejs that brings its own npm
    # conflicts with Debian's npm package, so it is installed only if missing.
    if ! command -v npm >/dev/null; then
        say "installing: npm"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
    fi
    command -v npm >/dev/null || die "npm is missing: install Debian's npm package"
    say "installing the browser test packages into tests/browser/node_modules"
    (cd "$dir" && npm ci --no-audit --no-fund)
}

test_all() {
    install_deps
    npm_deps
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
