#!/bin/bash
# The CLI waits for another process's write (docs/CLI.md, "Waiting for the
# database"): a write transaction held for 6 s by another connection (as
# outpostd cutting a segment under load does) delays `outpost contact
# update`, which then succeeds; past its own limit (OUTPOST_LOCK_WAIT) it
# fails with an error that names the lock and the wait, and changes
# nothing. A malformed OUTPOST_LOCK_WAIT is a usage error.
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3 python3
unset OUTPOST_POLICY
node_dir
init_node EU-DE

expect_exit 0 "$OUTPOST" contact add --given-name Ana --family-name Lima --locality Lisboa
id=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$id" ] || die "no id in: $(cat "$OUT")"

# hold SECONDS: another connection takes the write lock (BEGIN IMMEDIATE)
# and keeps it SECONDS; returns once the lock is held, the holder's PID in HPID
hold() {
    rm -f "$T/held"
    python3 - "$DB" "$T/held" "$1" <<'PY' &
import sqlite3, sys, time
db, flag, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute("BEGIN IMMEDIATE")
open(flag, "w").close()
time.sleep(secs)
c.execute("ROLLBACK")
PY
    HPID=$!
    track "$HPID"
    for _ in $(seq 1 100); do [ -e "$T/held" ] && return 0; sleep 0.1; done
    die "the other connection did not take the write lock"
}

# ---- held 6 s, longer than the daemon's own 5 s: the CLI waits and succeeds
hold 6
start=$(date +%s%N)
expect_exit 0 "$OUTPOST" contact update "$id" --version 1 --locality Porto
took=$((($(date +%s%N) - start) / 1000000))
[ "$took" -ge 4000 ] || die "the update did not wait for the lock (${took} ms)"
wait "$HPID"
[ "$(sqlite3 "$DB" "SELECT locality || ' ' || version FROM contacts WHERE id = '$id'")" = "Porto 2" ] ||
    die "the update after the wait is not in the database"

# ---- past its own limit: a precise error, nothing changed
SUM=$(db_checksum "$DB")
hold 6
start=$(date +%s%N)
OUTPOST_LOCK_WAIT=1 expect_exit 1 "$OUTPOST" contact update "$id" --version 2 --locality Faro
took=$((($(date +%s%N) - start) / 1000000))
expect_contains "$ERR" "database is locked"
expect_contains "$ERR" "another process held the database's write lock for more than 1 s"
expect_contains "$ERR" "OUTPOST_LOCK_WAIT"
[ "$took" -ge 800 ] && [ "$took" -lt 5000 ] || die "gave up after ${took} ms, not after about 1 s"
wait "$HPID"
[ "$(db_checksum "$DB")" = "$SUM" ] || die "a refused update changed the database"

# ---- a malformed limit: a usage error naming the variable, nothing opened
for bad in abc 0 -5 3601 1.5; do
    OUTPOST_LOCK_WAIT=$bad expect_exit 2 "$OUTPOST" contact update "$id" --version 2 --locality Faro
    expect_contains "$ERR" "OUTPOST_LOCK_WAIT: '$bad' is not a number of seconds from 1 to 3600"
done
[ "$(db_checksum "$DB")" = "$SUM" ] || die "a usage error changed the database"
pass
