#!/bin/bash
# outpost status: without credentials it says "sync: not configured" and
# still shows the outbox backlog; --json carries the same figures; what a
# daemon recorded (node, spool, errors, a block) is shown from the
# database alone (a policy from HQ waiting for acceptance: test_policy.sh);
# usage errors exit 2, a missing database 1.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir cd
unset OUTPOST_POLICY

expect_exit 0 "$OUTPOST" status --help
expect_contains "$OUT" "usage: outpost status"
expect_exit 2 "$OUTPOST" status extra
expect_exit 2 "$OUTPOST" status --bogus
expect_exit 1 "$OUTPOST" status --db "$T/missing.db"

init_node EU-DE
expect_exit 0 "$OUTPOST" status
expect_contains "$OUT" "sync: not configured"
expect_contains "$OUT" "outbox: empty"

expect_exit 0 "$OUTPOST" contact add --given_name Ada --country DE
expect_exit 0 "$OUTPOST" contact add --given_name Bea --country DE
expect_exit 0 "$OUTPOST" status
expect_contains "$OUT" "outbox: 2 changes queued, oldest"
expect_exit 0 "$OUTPOST" status --json
expect_contains "$OUT" '"enabled":false'
expect_contains "$OUT" '"outbox_depth":2'
expect_contains "$OUT" '"policy_pending":null'

# What a daemon records (sync_ledger): shown without credentials.
if command -v sqlite3 >/dev/null; then
    sqlite3 "$DB" "UPDATE sync_state SET node_id = 'nairobi-1', region = 'EU-DE',
        spool_cap = 1000, spool_full = 1, blocked = 'segment 3 rejected by HQ: policy hash mismatch',
        blocked_kind = 'rejected', last_error = 'network: connection refused';
        INSERT INTO sync_errors VALUES ('network', 4, 0, 'connection refused');" ||
        die "sqlite3 failed"
    expect_exit 0 "$OUTPOST" status
    expect_contains "$OUT" "sync: node nairobi-1, region EU-DE"
    expect_contains "$OUT" "ALARM: sync spool full"
    expect_contains "$OUT" "blocked: segment 3 rejected by HQ: policy hash mismatch"
    expect_contains "$OUT" "errors: network 4"
    expect_contains "$OUT" "last sync: never"
    expect_exit 0 "$OUTPOST" status --json
    expect_contains "$OUT" '"enabled":true'
    expect_contains "$OUT" '"spool_full":true'
    expect_contains "$OUT" '"errors":{"network":4}'
    # Today's bytes: what HQ acknowledged (the budget's charge) beside the
    # wire; and the round trips saved.
    day=$(( $(date -u +%s) / 86400 ))
    sqlite3 "$DB" "UPDATE sync_state SET bytes_day = $day, bytes_today = 1000,
        sent_today = 2100, resent_today = 1100, receipts_inline = 3, mailbox_skipped = 5;" ||
        die "sqlite3 failed"
    expect_exit 0 "$OUTPOST" status
    expect_contains "$OUT" "sent today: 1000 bytes acknowledged by HQ (2100 on the wire, 1100 of them sent again after cuts)"
    expect_contains "$OUT" "round trips saved: 3 receipts came with the last PATCH, 5 mailbox checks skipped"
    expect_exit 0 "$OUTPOST" status --json
    expect_contains "$OUT" '"bytes_today":1000'
    expect_contains "$OUT" '"bytes_sent_today":2100'
    expect_contains "$OUT" '"receipts_inline":3'
    expect_contains "$OUT" '"mailbox_skipped":5'
else
    echo "sqlite3 not installed: skipping the recorded-state part"
fi
pass
