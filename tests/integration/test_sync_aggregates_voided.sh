#!/bin/bash
# An aggregate answer voided before it reached HQ is answered again by the
# node, under the new policy, without HQ asking again (docs/AGGREGATES.md,
# "When the policy changes before the answer is uploaded"). HQ asks the
# EU-DE node for an aggregate; the node answers in a segment that waits
# in its spool (its daily upload budget is spent); the region's policy
# then tightens (min_cell_size 10 -> 12) at the node and at HQ; the node
# restarts without the budget, and the answer HQ keeps is the new one:
# the new policy's hash and minimum cell size, in a later segment, while
# the first answer's segment is voided and its file gone from the spool.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup sqlite3 sha256sum
mkdir -p "$T/regions"
cp "$TESTS_DIR/../schema/regions/"*.yaml "$T/regions/"
export OUTPOST_REGIONS_DIR="$T/regions"
AGG=contacts_by_segment_district
OLD=$(sha256sum "$T/regions/EU-DE.yaml" | cut -c1-64)

init_node EU-DE
hq_enrol de EU-DE
for i in $(seq 1 30); do
    "$OUTPOST" contact add --skip-duplicate-check --given-name "Person $i" --region Bayern \
        >/dev/null || die "contact add"
done
start_hq "$HQDB"
"$OUTPOST_HQ" --db "$HQDB" aggregate-request de "$AGG" >/dev/null 2>&1 || die "aggregate-request"
# a budget of one byte a day: the node fetches its mailbox but its
# segments wait in the spool
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --spool_dir "$T/spool" \
    --sync_daily_bytes 1
for k in $(seq 1 150); do
    st=$(sqlite3 "$OUTPOST_DB" "SELECT status FROM mailbox WHERE kind = 'aggregate_request'")
    [ "$st" = applied ] && break
    sleep 0.1
done
[ "$st" = applied ] || die "the node did not answer (mailbox: '$st'); log: $(tail -n 5 "$NODE_LOG")"
first=$(sqlite3 "$OUTPOST_DB" "SELECT segment_no FROM aggregate_egress")
[ "$(sqlite3 "$OUTPOST_DB" "SELECT policy_hash FROM aggregate_egress")" = "$OLD" ] ||
    die "the first answer is not under the old policy"
path=$(sqlite3 "$OUTPOST_DB" "SELECT path FROM sync_segments WHERE no = $first AND state IN (0, 1)")
[ -n "$path" ] && [ -f "$path" ] || die "segment $first is not waiting in the spool"
[ "$(sqlite3 "$HQDB" "SELECT count(*) FROM receipts WHERE segment >= $first")" = 0 ] ||
    die "HQ took the answer's segment"
kill "$NODE_PID" && wait "$NODE_PID" 2>/dev/null

# the policy tightens before the answer is uploaded
sed -i 's/^  min_cell_size: 10$/  min_cell_size: 12/' "$T/regions/EU-DE.yaml"
NEW=$(sha256sum "$T/regions/EU-DE.yaml" | cut -c1-64)
[ "$NEW" != "$OLD" ] || die "the profile did not change"
kill "$HQ_PID" && wait "$HQ_PID" 2>/dev/null
HQ_SAME_PORT=1 start_hq "$HQDB" # it reads the tightened profile
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --spool_dir "$T/spool"
wait_drained 60
kill "$NODE_PID" && wait "$NODE_PID" 2>/dev/null

[ ! -e "$path" ] || die "the voided segment's file is still in the spool"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM sync_segments WHERE no = $first")" = 0 ] ||
    die "segment $first was not voided"
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" records --node de --json
python3 - "$OUT" "$NEW" "$first" <<'PY' || die "HQ does not hold the new answer: $(cat "$OUT")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r["entity"] == "aggregate"]
assert len(rows) == 1, rows
a = rows[0]["record"]
assert a["policy_hash"] == sys.argv[2], a["policy_hash"]
assert a["min_cell_size"] == 12, a["min_cell_size"]
assert a["request"] == "mailbox:1", a["request"]
assert rows[0]["version"] > int(sys.argv[3]), rows[0]  # a later segment
PY
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" aggregate "$AGG" --format json
expect_contains "$OUT" '"node":"de","region":"EU-DE","computed_at"'
expect_contains "$OUT" '"status":"answered"'
# HQ did not ask again: one request; the node's ledger holds both answers
[ "$(sqlite3 "$HQDB" "SELECT count(*) FROM mailbox WHERE kind = 'aggregate_request'")" = 1 ] ||
    die "HQ asked more than once"
sqlite3 "$OUTPOST_DB" "SELECT requester || ' ' || policy_hash || ' ' || (segment_no > $first)
    FROM aggregate_egress ORDER BY seq" >"$T/ledger"
[ "$(cat "$T/ledger")" = "mailbox:1 $OLD 0
mailbox:1 $NEW 1" ] || die "egress ledger: $(cat "$T/ledger")"
expect_exit 0 sqlite3 "$OUTPOST_DB" "SELECT reason FROM mailbox"
expect_contains "$OUT" "answered in segment"
pass
