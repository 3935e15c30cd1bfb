#!/bin/bash
# End to end: a node syncs to HQ. outpost-hq serves on a port it picks; the
# node is enrolled (node add), outpostd runs with its credentials, contacts
# are created with the CLI while it runs, and the test waits until the
# node's outbox is empty (`outpost status --json`), then compares what HQ
# holds (`outpost-hq records --count`) and checks the log lines (with the
# priority journald reads: nothing at warning while all is well, a warning
# while HQ is away), the receipts and the /metrics sync gauges. A second
# phase stops HQ, writes more, and shows the node catching up once HQ is
# back. Test it_sync_pg runs it all again with HQ's store on PostgreSQL
# (tests/support/pg_cluster.sh).
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup curl
init_node EU-DE
add_user maria manager
hq_enrol branch-1 EU-DE
[ "$(stat -c %a "$T/cred.json")" = 600 ] || die "credentials file is not mode 0600"

add_contacts() { # $1: first number, $2: count
    local i
    for i in $(seq "$1" $(($1 + $2 - 1))); do
        "$OUTPOST" contact add --given-name "Person$i" --family-name "Sync" \
            --email "p$i@example.org" >/dev/null 2>"$T/add.err" ||
            { lib_show "$T/add.err"; die "contact add $i failed"; }
    done
}

hq_count() { # total records HQ holds for the node
    "$OUTPOST_HQ" "${HQ_STORE[@]}" records --node branch-1 --count 2>/dev/null |
        awk '$1 == "contact" { print $2 }'
}

start_hq "$HQDB"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --segment_bytes 4096
add_contacts 1 40
wait_drained 30
[ "$(hq_count)" = 40 ] || die "HQ holds $(hq_count) contacts, want 40"
if [ -n "${OUTPOST_TEST_PG:-}" ]; then # the records are in PostgreSQL, no file
    expect_contains "$HQ_LOG" "store on PostgreSQL (store)"
    [ ! -e "$HQDB" ] || die "an SQLite store was created beside the PostgreSQL one"
    [ "$(psql -X -tA -d outpost_test -c "SELECT count(*) FROM records WHERE entity = 'contact'")" = 40 ] ||
        die "PostgreSQL's records table does not hold the 40 contacts"
fi
expect_contains "$NODE_LOG" "<6>outpostd: sync: segment 1 uploaded ("
! grep -E '^<[34]>' "$NODE_LOG" || die "err or warning lines while sync was healthy"
expect_contains "$NODE_LOG" "applied at HQ ("
expect_contains "$NODE_LOG" "0 set aside)"
[ "$(status_field segments_rejected)" = 0 ] || die "a segment was rejected"
[ "$(status_field last_sync_ms)" != 0 ] || die "last_sync_ms not set"
acked=$(status_field segments_acked)
[ "$acked" -ge 2 ] || die "4096-byte segments: expected several, got $acked"
# the spool is empty once everything is acknowledged
[ -z "$(ls -A "$T/spool" 2>/dev/null | grep -v '^\.')" ] ||
    { ls -la "$T/spool" >&2; die "spool files left after acknowledgement"; }

# /metrics shows the sync gauges (manager login)
TOKEN=$(curl -s -X POST "http://127.0.0.1:$NODE_PORT/api/v1/session" -H 'Content-Type: application/json' \
    -d '{"name":"maria","password":"correct horse maria"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
[ -n "$TOKEN" ] || die "cannot log in as maria"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NODE_PORT/metrics" >"$T/metrics"
expect_contains "$T/metrics" "outpost_sync_outbox_depth 0"
expect_contains "$T/metrics" "outpost_sync_spool_full 0"
expect_contains "$T/metrics" "# TYPE outpost_sync_errors_total counter"
grep -q '^outpost_sync_last_success_timestamp_seconds [1-9]' "$T/metrics" ||
    die "last success timestamp missing from /metrics"

# HQ goes away: the node keeps serving and queues; HQ comes back on the
# same port and the node catches up without a restart.
kill -TERM "$HQ_PID"
wait "$HQ_PID" 2>/dev/null
add_contacts 41 15
network_errors() {
    "$OUTPOST" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"].get("network", 0))'
}
# the node tries while HQ is down and records why it failed
for _ in $(seq 1 100); do
    [ "$(network_errors)" -ge 1 ] && break
    sleep 0.1
done
grep -q '^<4>outpostd: sync: ' "$NODE_LOG" || die "HQ away is not a warning: $(tail -n 5 "$NODE_LOG")"
depth=$(status_field outbox_depth)
[ "$depth" -gt 0 ] 2>/dev/null || die "outbox should hold the changes while HQ is down, got '$depth'"
curl -sf "http://127.0.0.1:$NODE_PORT/healthz" >/dev/null || die "outpostd stopped answering with HQ down"
HQ_SAME_PORT=1 start_hq "$HQDB"
wait_drained 60
[ "$(hq_count)" = 55 ] || die "HQ holds $(hq_count) contacts, want 55"
[ "$(network_errors)" -ge 1 ] || die "the outage was not counted as a network error"

# a policy from HQ's mailbox reaches the node: stored beside the database
# and put in force without a restart (a comment changes the hash)
mkdir -p "$T/mb"
{ cat "$TESTS_DIR/../schema/regions/EU-DE.yaml"; echo "# revised at HQ"; } >"$T/mb/EU-DE.yaml"
"$OUTPOST_HQ" "${HQ_STORE[@]}" mailbox post branch-1 --kind policy "$T/mb/EU-DE.yaml" >"$T/post.out" 2>&1 ||
    { lib_show "$T/post.out"; die "mailbox post failed"; }
for _ in $(seq 1 100); do
    grep -q "region policy from HQ in force" "$NODE_LOG" && break
    sleep 0.1
done
expect_contains "$NODE_LOG" "outpostd: sync: a new region policy arrived from HQ"
expect_contains "$NODE_LOG" "outpostd: region policy from HQ in force"
cmp -s "$T/mb/EU-DE.yaml" "$T/policy-override.yaml" || die "policy-override.yaml is not the posted policy"
[ "$(status_field mailbox_after)" -ge 1 ] || die "the mailbox cursor did not advance"

# a clean stop
kill -TERM "$NODE_PID"
wait "$NODE_PID"
rc=$?
[ "$rc" = 0 ] || { lib_show "$NODE_LOG"; die "outpostd exited $rc on SIGTERM"; }
expect_contains "$NODE_LOG" "outpostd: stopped"
kill -TERM "$HQ_PID"
wait "$HQ_PID" 2>/dev/null
for f in "$NODE_LOG" "$T"/hq.*.log; do
    if grep -qvE '^<[3-7]>(outpostd|outpost-hq): ' "$f"; then
        die "lines without a priority in $f: $(grep -vE '^<[3-7]>(outpostd|outpost-hq): ' "$f" | head -n 3)"
    fi
done
pass
