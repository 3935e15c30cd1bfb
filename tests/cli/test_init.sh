#!/bin/bash
# outpost init: creates a node database once; refuses bad regions, a second
# init, and databases from a newer version.
set -u
. "$TESTS_DIR/cli/lib.sh"
T=$(mktmp)
DB="$T/node.db"

expect_exit 0 "$OUTPOST" init --db "$DB" --region EU-DE
expect_contains "$OUT" "for region EU-DE"
expect_contains "$OUT" "schema v"

# Safe to run twice: the second init is refused and changes nothing.
node_id=$(sqlite3 "$DB" "SELECT value FROM node_meta WHERE key = 'node_id'")
expect_exit 4 "$OUTPOST" init --db "$DB" --region BR
expect_contains "$ERR" "already initialized as node $node_id"
[ "$(sqlite3 "$DB" "SELECT value FROM node_meta WHERE key = 'region'")" = EU-DE ] ||
    die "region changed by a refused init"

expect_exit 2 "$OUTPOST" init --db "$T/other.db" --region XX
expect_contains "$ERR" "unknown region 'XX'"
expect_contains "$ERR" "EU-FR"
[ ! -e "$T/other.db" ] || die "a refused init left a file behind"
expect_exit 2 "$OUTPOST" init --db "$T/other.db"
expect_contains "$ERR" "--region is required"
expect_exit 2 "$OUTPOST" init --db "$T/other.db" --region BR extra
expect_contains "$ERR" "unexpected argument 'extra'"
expect_exit 0 "$OUTPOST" init --help
expect_contains "$OUT" "usage: outpost init"
expect_exit 2 "$OUTPOST" frobnicate
expect_contains "$ERR" "unknown command 'frobnicate'"
expect_exit 0 "$OUTPOST" --version
expect_contains "$OUT" "outpost "

# OUTPOST_DB is the default database.
OUTPOST_DB="$T/env.db" expect_exit 0 "$OUTPOST" init --region KE
[ -s "$T/env.db" ] || die "OUTPOST_DB was not used"

# A database written by a newer Outpost is refused, not touched.
sqlite3 "$DB" "PRAGMA user_version = 999"
before=$(sha256sum "$DB" | cut -d' ' -f1)
expect_exit 1 "$OUTPOST" contact list --db "$DB"
expect_contains "$ERR" "schema version 999, newer than this build"
expect_exit 1 "$OUTPOST" contact add --db "$DB" --given-name Ana
[ "$(sha256sum "$DB" | cut -d' ' -f1)" = "$before" ] || die "newer database was modified"

# Not an Outpost database at all.
echo "hello" > "$T/text.db"
expect_exit 1 "$OUTPOST" contact list --db "$T/text.db"
expect_contains "$ERR" "text.db"
sqlite3 "$T/foreign.db" "CREATE TABLE t (x); PRAGMA user_version = 1"
expect_exit 1 "$OUTPOST" contact list --db "$T/foreign.db"
expect_contains "$ERR" "not an Outpost one"
expect_exit 1 "$OUTPOST" contact list --db "$T/missing.db"
expect_contains "$ERR" "outpost init"
[ ! -e "$T/missing.db" ] || die "reading a missing database created it"
pass
