# shellcheck shell=bash
# Shared helpers for the CLI tests (tests/cli/test_*.sh), sourced after
# `set -u`. A test exits 0 when it passes, 1 when it fails (die) and 77 when
# it cannot run here (skip). Everything a test writes goes under one
# temporary root that is removed when the test's shell exits, however it
# exits; `T=$(mktmp)` works because the cleanup trap belongs to the test's
# shell, not to the command substitution's subshell.
#
#   die MESSAGE...           print "FAIL: MESSAGE" to stderr and exit 1
#   skip MESSAGE...          print "SKIP: MESSAGE" to stderr and exit 77
#   pass                     exit 0
#   mktmp                    print the path of a new empty directory
#   expect_exit CODE CMD...  run CMD with stdout in $OUT and stderr in $ERR
#                            (files); die unless it exits with CODE
#   expect_contains FILE TEXT      die unless FILE contains TEXT (literally)
#   expect_not_contains FILE TEXT  die if FILE contains TEXT
#   db_checksum DB [TABLE...]      print a SHA-256 of the rows of every table
#                            of DB but the TABLEs named (virtual tables are
#                            read through their shadow tables); the same
#                            before and after means nothing was written
#   need CMD...              skip unless every CMD is installed
#   node_dir [cd]            a new directory in $T (entered with `cd`), its
#                            node database's path in $DB and OUTPOST_DB
#   init_node REGION         outpost init of $OUTPOST_DB for REGION
#   add_user NAME ROLE [PW]  outpost user add (PW: "correct horse NAME")
#   api_token USER [ARG...]  print a new API token of USER
#   track PID                kill -9 PID, if it still runs, when the test exits
#   wait_line FILE SED-EXPR PID WHAT  print the first match of SED-EXPR in
#                            FILE, waiting up to 10 s while PID lives
#   wait_grep FILE RE [N]    wait up to N tenths of a second (50) for a
#                            line of FILE to match RE (grep's basic regex)
#   start_outpostd [ARG...]  outpostd on 127.0.0.1 with a port it picks
#                            for $OUTPOST_DB, with ARGs, its log in
#                            $DAEMON_LOG ($T/daemon.log); sets DPID, PORT,
#                            BASE; dies if it exits before listening
#   outpostd_starts [ARG...] the same, but returns 1 if it exits
#   stop_outpostd            SIGTERM; die unless outpostd exits 0

# The daemons refuse to run as root unless told (docs/OUTPOSTD.md); the
# tests run as root in CI and containers. meson test sets this too.
export OUTPOST_ALLOW_ROOT=1

LIB_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/outpost-test.XXXXXX") || {
    echo "FAIL: cannot create a temporary directory" >&2
    exit 1
}
# Background processes a test started (track): killed when it exits,
# those that are still this shell's children (a PID reused since is not).
LIB_PIDS=""
lib_kill_tracked() {
    local p ppid
    for p in $LIB_PIDS; do
        ppid=$(sed -n 's/^.*) . \([0-9]*\) .*/\1/p' "/proc/$p/stat" 2>/dev/null)
        [ "$ppid" = "$BASHPID" ] && kill -9 "$p" 2>/dev/null
    done
}
lib_cleanup() {
    lib_kill_tracked
    rm -rf "$LIB_ROOT"
}
trap lib_cleanup EXIT
OUT="$LIB_ROOT/stdout"
ERR="$LIB_ROOT/stderr"
: >"$OUT"
: >"$ERR"

die() {
    echo "FAIL: $*" >&2
    exit 1
}

# skip REASON: the test cannot run because something is missing that
# packaging/build-deps.txt should provide; CI (.ci/run) counts it as a
# failure.
skip() {
    echo "SKIP: $*" >&2
    exit 77
}

# skip_never REASON: the test can never run in this environment whatever
# is installed (a container that forbids what it needs); CI counts it as
# skipped, not failed, because REASON says why.
skip_never() {
    echo "SKIP (cannot run here): $*" >&2
    exit 77
}

pass() {
    exit 0
}

mktmp() {
    mktemp -d "$LIB_ROOT/t.XXXXXX" || die "cannot create a temporary directory"
}

# Prints a captured file for a failure message, indented and capped.
lib_show() {
    if [ -s "$1" ]; then
        head -c 4000 "$1" | sed 's/^/    /'
    else
        echo "    (empty)"
    fi
}

expect_exit() {
    local want=$1 got=0
    shift
    "$@" >"$OUT" 2>"$ERR" || got=$?
    if [ "$got" != "$want" ]; then
        {
            echo "FAIL: expected exit $want, got $got from: $*"
            echo "  stdout:"
            lib_show "$OUT"
            echo "  stderr:"
            lib_show "$ERR"
        } >&2
        exit 1
    fi
}

expect_contains() {
    [ -f "$1" ] || die "expect_contains: no file $1"
    grep -qF -e "$2" -- "$1" && return 0
    {
        echo "FAIL: expected $1 to contain: $2"
        echo "  it contains:"
        lib_show "$1"
    } >&2
    exit 1
}

expect_not_contains() {
    [ -f "$1" ] || die "expect_not_contains: no file $1"
    grep -qF -e "$2" -- "$1" || return 0
    {
        echo "FAIL: expected $1 not to contain: $2"
        echo "  it contains:"
        lib_show "$1"
    } >&2
    exit 1
}

db_checksum() {
    local db=$1 t q="" names rows
    shift
    local skip=" $* "
    names=$(sqlite3 -readonly "$db" \
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name") ||
        die "db_checksum: cannot read $db"
    for t in $names; do
        case "$skip" in *" $t "*) continue ;; esac
        q+="SELECT '$t'; SELECT * FROM \"$t\";"
    done
    [ -n "$q" ] || die "db_checksum: no tables in $db"
    rows=$(sqlite3 -readonly -cmd '.mode quote' "$db" "$q") || die "db_checksum: cannot read $db"
    printf '%s' "$rows" | sha256sum | cut -d' ' -f1
}

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || skip "$c is not installed"
    done
}

node_dir() {
    T=$(mktmp)
    DB="$T/node.db"
    export OUTPOST_DB="$DB"
    [ "${1:-}" != cd ] || cd "$T" || die "cannot enter $T"
}

init_node() {
    "$OUTPOST" init --region "$1" >/dev/null || die "init failed"
}

add_user() {
    printf '%s\n' "${3:-correct horse $1}" |
        "$OUTPOST" user add "$1" --role "$2" --password-stdin >/dev/null || die "user add $1"
}

api_token() {
    local user=$1
    shift
    "$OUTPOST" token create --user "$user" "$@" 2>/dev/null | grep -o 'opk_[A-Za-z0-9_-]*'
}

track() {
    LIB_PIDS="$LIB_PIDS $1"
}

wait_line() {
    local v=""
    for _ in $(seq 1 200); do
        v=$(sed -n "$2" "$1" 2>/dev/null | head -n1)
        [ -n "$v" ] && { echo "$v"; return 0; }
        kill -0 "$3" 2>/dev/null || die "$4 exited: $(tail -n 20 "$1")"
        sleep 0.05
    done
    die "$4 did not start: $(tail -n 20 "$1")"
}

wait_grep() {
    for _ in $(seq 1 "${3:-50}"); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
}

outpostd_starts() {
    DAEMON_LOG="$T/daemon.log"
    : >"$DAEMON_LOG"
    "$OUTPOSTD" --db "$OUTPOST_DB" --listen 127.0.0.1:0 "$@" 2>"$DAEMON_LOG" &
    DPID=$!
    track "$DPID"
    PORT=""
    for _ in $(seq 1 200); do
        PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$DAEMON_LOG" | head -n1)
        [ -n "$PORT" ] && break
        kill -0 "$DPID" 2>/dev/null || return 1
        sleep 0.05
    done
    [ -n "$PORT" ] || die "outpostd did not report its port: $(tail -n 20 "$DAEMON_LOG")"
    # shellcheck disable=SC2034 # for the test that sources this
    BASE="http://127.0.0.1:$PORT"
}

start_outpostd() {
    outpostd_starts "$@" || die "outpostd exited: $(tail -n 20 "$DAEMON_LOG")"
}

stop_outpostd() {
    local rc=0
    kill -TERM "$DPID"
    wait "$DPID" || rc=$?
    [ "$rc" = 0 ] || die "outpostd exited with $rc on SIGTERM: $(tail -n 20 "$DAEMON_LOG")"
    DPID=""
}
