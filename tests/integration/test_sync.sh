#!/bin/bash
# End to end: a node syncs to HQ. outpost-hq serves on a port it picks; the
# node is enrolled (node add), outpostd runs with its credentials, contacts
# are created with the CLI while it runs, and the test waits until the
# node's outbox is empty (`outpost status --json`), then compares what HQ
# holds (`outpost-hq records --count`) and checks the log lines, the
# receipts and the /metrics sync gauges. A second phase stops HQ, writes
# more, and shows the node catching up once HQ is back.
set -u
. "$TESTS_DIR/cli/lib.sh"
[ -n "${OUTPOST_HQ:-}" ] && [ -x "$OUTPOST_HQ" ] ||
    skip "outpost-hq is not built yet (OUTPOST_HQ unset); the lead enables this test"
command -v curl >/dev/null || skip "curl is not installed"
T=$(mktmp)
export OUTPOST_DB="$T/node.db"
HQDB="$T/hq.db"
"$OUTPOST" init --region EU-DE >/dev/null || die "init failed"
printf 'correct horse maria\n' |
    "$OUTPOST" user add maria --role manager --password-stdin >/dev/null || die "user add"
"$OUTPOST_HQ" --db "$HQDB" node add branch-1 --region EU-DE --out "$T/cred.json" \
    >"$T/add.out" 2>&1 || { lib_show "$T/add.out"; die "outpost-hq node add failed"; }
[ "$(stat -c %a "$T/cred.json")" = 600 ] || die "credentials file is not mode 0600"

HPID=""
DPID=""
trap '[ -n "$DPID" ] && kill -9 $DPID 2>/dev/null; [ -n "$HPID" ] && kill -9 $HPID 2>/dev/null; rm -rf "$LIB_ROOT"' EXIT

start_hq() { # $1: listen address
    "$OUTPOST_HQ" --db "$HQDB" serve --listen "$1" --spool-dir "$T/hq-uploads" \
        2>>"$T/hq.log" &
    HPID=$!
    HQ_ADDR=""
    for _ in $(seq 1 100); do
        HQ_ADDR=$(sed -n 's|.*outpost-hq: listening on http://\([0-9.]*:[0-9]*\).*|\1|p' "$T/hq.log" |
            tail -1)
        [ -n "$HQ_ADDR" ] && break
        kill -0 $HPID 2>/dev/null || { lib_show "$T/hq.log"; die "outpost-hq did not start"; }
        sleep 0.1
    done
    [ -n "$HQ_ADDR" ] || die "outpost-hq did not report its address"
}

start_node() {
    "$OUTPOSTD" --db "$OUTPOST_DB" --listen 127.0.0.1:0 --workers 2 --log-requests false \
        --hq-credentials "$T/cred.json" --hq-url "http://$HQ_ADDR" --sync-interval-ms 200 \
        --segment-bytes 4096 2>>"$T/node.log" &
    DPID=$!
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/node.log" | tail -1)
        [ -n "$PORT" ] && break
        kill -0 $DPID 2>/dev/null || { lib_show "$T/node.log"; die "outpostd did not start"; }
        sleep 0.1
    done
    [ -n "$PORT" ] || die "outpostd did not report its port"
}

add_contacts() { # $1: first number, $2: count
    local i
    for i in $(seq "$1" $(($1 + $2 - 1))); do
        "$OUTPOST" contact add --given-name "Person$i" --family-name "Sync" \
            --email "p$i@example.org" >/dev/null 2>"$T/add.err" ||
            { lib_show "$T/add.err"; die "contact add $i failed"; }
    done
}

status_field() { # $1: key of `outpost status --json`
    "$OUTPOST" status --json >"$T/status.json" 2>"$T/status.err" ||
        die "outpost status failed ($1): $(cat "$T/status.err")"
    python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])" <"$T/status.json" \
        2>"$T/status.err" ||
        die "outpost status --json: no $1: $(cat "$T/status.json" "$T/status.err")"
}

wait_drained() { # $1: what for the message
    local depth=""
    for _ in $(seq 1 300); do
        depth=$(status_field outbox_depth)
        [ "$depth" = 0 ] && return 0
        kill -0 $DPID 2>/dev/null || { lib_show "$T/node.log"; die "outpostd died"; }
        sleep 0.1
    done
    lib_show "$T/node.log"
    lib_show "$T/hq.log"
    "$OUTPOST" status >&2
    die "the outbox did not drain ($1): depth $depth"
}

hq_count() { # total records HQ holds for the node
    "$OUTPOST_HQ" --db "$HQDB" records --node branch-1 --count 2>/dev/null |
        awk '$1 == "contact" { print $2 }'
}

start_hq 127.0.0.1:0
HQ_PORT=${HQ_ADDR##*:}
start_node
add_contacts 1 40
wait_drained "first batch"
[ "$(hq_count)" = 40 ] || die "HQ holds $(hq_count) contacts, want 40"
expect_contains "$T/node.log" "outpostd: sync: segment 1 uploaded ("
expect_contains "$T/node.log" "applied at HQ ("
expect_contains "$T/node.log" "0 set aside)"
[ "$(status_field segments_rejected)" = 0 ] || die "a segment was rejected"
[ "$(status_field last_sync_ms)" != 0 ] || die "last_sync_ms not set"
acked=$(status_field segments_acked)
[ "$acked" -ge 2 ] || die "4096-byte segments: expected several, got $acked"
# the spool is empty once everything is acknowledged
[ -z "$(ls -A "$T/spool" 2>/dev/null | grep -v '^\.')" ] ||
    { ls -la "$T/spool" >&2; die "spool files left after acknowledgement"; }

# /metrics shows the sync gauges (manager login)
TOKEN=$(curl -s -X POST "http://127.0.0.1:$PORT/api/v1/session" -H 'Content-Type: application/json' \
    -d '{"name":"maria","password":"correct horse maria"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' 2>/dev/null)
[ -n "$TOKEN" ] || die "cannot log in as maria"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/metrics" >"$T/metrics"
expect_contains "$T/metrics" "outpost_sync_outbox_depth 0"
expect_contains "$T/metrics" "outpost_sync_spool_full 0"
expect_contains "$T/metrics" "# TYPE outpost_sync_errors_total counter"
grep -q '^outpost_sync_last_success_timestamp_seconds [1-9]' "$T/metrics" ||
    die "last success timestamp missing from /metrics"

# HQ goes away: the node keeps serving and queues; HQ comes back on the
# same port and the node catches up without a restart.
kill -TERM $HPID
wait $HPID 2>/dev/null
HPID=""
add_contacts 41 15
sleep 1
depth=$(status_field outbox_depth)
[ "$depth" -gt 0 ] 2>/dev/null || die "outbox should hold the changes while HQ is down, got '$depth'"
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || die "outpostd stopped answering with HQ down"
start_hq "127.0.0.1:$HQ_PORT"
wait_drained "after HQ came back"
[ "$(hq_count)" = 55 ] || die "HQ holds $(hq_count) contacts, want 55"
errs=$("$OUTPOST" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["errors"].get("network", 0))')
[ "$errs" -ge 1 ] || die "the outage was not counted as a network error"

# a policy from HQ's mailbox reaches the node: stored beside the database
# and put in force without a restart (a comment changes the hash)
mkdir -p "$T/mb"
{ cat "$TESTS_DIR/../schema/regions/EU-DE.yaml"; echo "# revised at HQ"; } >"$T/mb/EU-DE.yaml"
"$OUTPOST_HQ" --db "$HQDB" mailbox post branch-1 --kind policy "$T/mb/EU-DE.yaml" >"$T/post.out" 2>&1 ||
    { lib_show "$T/post.out"; die "mailbox post failed"; }
for _ in $(seq 1 100); do
    grep -q "region policy from HQ in force" "$T/node.log" && break
    sleep 0.1
done
expect_contains "$T/node.log" "outpostd: sync: a new region policy arrived from HQ"
expect_contains "$T/node.log" "outpostd: region policy from HQ in force"
cmp -s "$T/mb/EU-DE.yaml" "$T/policy-override.yaml" || die "policy-override.yaml is not the posted policy"
[ "$(status_field mailbox_after)" -ge 1 ] || die "the mailbox cursor did not advance"

# a clean stop
kill -TERM $DPID
wait $DPID
rc=$?
DPID=""
[ "$rc" = 0 ] || { lib_show "$T/node.log"; die "outpostd exited $rc on SIGTERM"; }
expect_contains "$T/node.log" "outpostd: stopped"
kill -TERM $HPID
wait $HPID 2>/dev/null
HPID=""
pass
