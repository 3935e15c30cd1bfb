#!/bin/bash
# outpost sync verify without a daemon: usage errors exit 2; a node
# without credentials is told there is no HQ and nothing is queued (exit
# 1); a configured node whose outpostd does not answer gets exit 1 after
# the timeout with the check left queued; a check a daemon ended is shown
# with its exit status (0 agree, 7 drift, 1 failed) and in `outpost
# status` (text and --json). The end-to-end check is it_sync_verify.
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3
node_dir cd

expect_exit 0 "$OUTPOST" sync --help
expect_contains "$OUT" "usage: outpost sync verify"
expect_exit 2 "$OUTPOST" sync
expect_exit 2 "$OUTPOST" sync check
expect_exit 2 "$OUTPOST" sync verify extra
expect_exit 2 "$OUTPOST" sync verify --timeout 0
expect_contains "$ERR" "--timeout: expected 1 to 86400"

init_node KE
expect_exit 1 "$OUTPOST" sync verify --timeout 1
expect_contains "$ERR" "sync is not configured"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM sync_verify")" = 0 ] || die "a check was queued"

# As if outpostd had run with credentials; no daemon runs now.
sqlite3 "$DB" "UPDATE sync_state SET node_id = 'nairobi-1', region = 'KE'" || die "sqlite3"
expect_exit 1 "$OUTPOST" sync verify --timeout 1
expect_contains "$ERR" "no result within 1 s: check 1 stays queued"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM sync_verify WHERE finished_ms IS NULL")" = 1 ] ||
    die "the check is not left queued"
expect_exit 0 "$OUTPOST" status
expect_contains "$OUT" "verify: no check with HQ yet"

# A daemon ends the queued check while the CLI waits.
finish() {
    sleep 0.5
    sqlite3 "$DB" "UPDATE sync_verify SET finished_ms = $(date +%s)000, result = '$1',
        compared = 100, hq_records = 99, ranges = 33, requests = 3, bytes = 2048, drift = $2,
        resent = $3, reported = $4, detail = '$5' WHERE finished_ms IS NULL"
}
finish drift 2 1 1 "contact x is newer at HQ" &
track $!
expect_exit 7 "$OUTPOST" sync verify --timeout 10
expect_contains "$OUT" "drift found that this node cannot repair"
expect_contains "$OUT" "drift: 2 records differed; 1 queued again; 1 reported"
expect_contains "$OUT" "reported: contact x is newer at HQ"
finish agree 0 0 0 "" &
track $!
expect_exit 0 "$OUTPOST" sync verify --timeout 10 --json
expect_contains "$OUT" '"result":"agree"'
expect_contains "$OUT" '"bytes":2048'
finish failed 0 0 0 "HQ answered 404" &
track $!
expect_exit 1 "$OUTPOST" sync verify --timeout 10
expect_contains "$OUT" "failed: HQ answered 404"
# status shows the last check that ended
expect_exit 0 "$OUTPOST" status
expect_contains "$OUT" "verify: the last check"
expect_contains "$OUT" "failed: HQ answered 404"
expect_exit 0 "$OUTPOST" status --json
expect_contains "$OUT" '"verify":{'
expect_contains "$OUT" '"result":"failed"'
pass
