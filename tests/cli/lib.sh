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

LIB_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/outpost-test.XXXXXX") || {
    echo "FAIL: cannot create a temporary directory" >&2
    exit 1
}
trap 'rm -rf "$LIB_ROOT"' EXIT
OUT="$LIB_ROOT/stdout"
ERR="$LIB_ROOT/stderr"
: >"$OUT"
: >"$ERR"

die() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIP: $*" >&2
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
