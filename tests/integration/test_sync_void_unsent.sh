#!/bin/bash
# A segment voided before its creation ever reached HQ sends no
# withdrawals (docs/UPLINK.md, "Named uploads"). With data on the creation
# the node records the upload's URL before the POST; HQ is down, so the
# POST never connects. A contact in that segment is then restricted: the
# spool is voided with the URL. When HQ is back its answer to the
# termination is "no such upload" and it has no receipt, so the node
# forgets those records as sent: HQ never learns the restricted contact's
# id (not in a withdrawal, not in its database), and the other contact of
# the voided segment still arrives, once. A kill -9 between HQ's answer and
# the node's commit is covered by the ledger's unit test (the step is one
# transaction and harmless twice); here the node is also killed while the
# voided row waits, and the restarted node settles it the same way.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup sqlite3

init_node US-TX
hq_enrol tx US-TX
start_hq "$HQDB"
HQ_URL="http://127.0.0.1:$HQ_PORT"
NODE_ARGS=(--sync_interval_ms 200 --spool_dir "$T/spool" --sync_create_with_data true)
first=$("$OUTPOST" contact add --skip-duplicate-check --given-name First |
    sed -n 's/^created contact \([0-9a-f-]*\) .*/\1/p')
[ -n "$first" ] || die "contact add First"
start_node "$HQ_URL" "${NODE_ARGS[@]}"
wait_drained 30

# HQ goes down: connections are refused, the POST never leaves
kill "$NODE_PID" && wait "$NODE_PID" 2>/dev/null
kill "$HQ_PID" && wait "$HQ_PID" 2>/dev/null
ada=$("$OUTPOST" contact add --skip-duplicate-check --given-name Ada --family-name Hidden |
    sed -n 's/^created contact \([0-9a-f-]*\) .*/\1/p')
[ -n "$ada" ] || die "contact add Ada"
bea=$("$OUTPOST" contact add --skip-duplicate-check --given-name Bea --family-name Shown |
    sed -n 's/^created contact \([0-9a-f-]*\) .*/\1/p')
[ -n "$bea" ] || die "contact add Bea"
start_node "$HQ_URL" "${NODE_ARGS[@]}"
url=""
for _ in $(seq 1 100); do
    url=$(sqlite3 "$OUTPOST_DB" "SELECT upload_url FROM sync_segments WHERE state = 0
                                 AND upload_url != '' ORDER BY no DESC LIMIT 1")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || die "no segment with a recorded upload URL; log: $(tail -n 5 "$NODE_LOG")"
no=$(sqlite3 "$OUTPOST_DB" "SELECT no FROM sync_segments WHERE upload_url = '$url'")
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM egress_sent WHERE segment_no = $no")" = 2 ] ||
    die "segment $no does not count Ada and Bea as sent"

# restricted while its segment waits with a URL; the node is killed too
"$OUTPOST" contact update --version 1 "$ada" --restricted true >/dev/null || die "restrict Ada"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT upload_url FROM spool_voided WHERE no = $no")" = "$url" ] ||
    die "segment $no was not voided with its URL"
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null

HQ_SAME_PORT=1 start_hq "$HQDB" --log_requests true
start_node "$HQ_URL" "${NODE_ARGS[@]}"
wait_drained 60
for _ in $(seq 1 50); do
    [ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM spool_voided")" = 0 ] && break
    sleep 0.1
done
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM spool_voided")" = 0 ] ||
    die "the voided row stayed; log: $(tail -n 5 "$NODE_LOG")"
kill "$NODE_PID" && wait "$NODE_PID" 2>/dev/null
kill "$HQ_PID" && wait "$HQ_PID" 2>/dev/null

# HQ never learnt Ada's id; Bea and First are there once each
for f in "$HQDB" "$HQDB-wal"; do
    [ -e "$f" ] || continue
    ! grep -q "$ada" "$f" || die "HQ's $(basename "$f") holds the restricted contact's id"
done
expect_exit 0 "$OUTPOST_HQ" --db "$HQDB" records --node tx --json
! grep -q "$ada" "$OUT" || die "HQ lists the restricted contact: $(grep "$ada" "$OUT")"
[ "$(grep -c "\"$bea\"" "$OUT")" = 1 ] || die "Bea is not at HQ exactly once: $(cat "$OUT")"
[ "$(grep -c "\"$first\"" "$OUT")" = 1 ] || die "First is not at HQ exactly once"
! grep -q "$ada" "$T/hq-uploads"/* 2>/dev/null || die "HQ's upload directory holds Ada's id"
grep -q "voided segment $no never reached HQ (no upload, no receipt): 2 records" "$NODE_LOG" ||
    die "the node did not settle segment $no as never sent; log: $(grep voided "$NODE_LOG")"
# how: HQ was asked the termination (404), the receipt (404)
grep -q " DELETE 404 .* /files/" "$HQ_LOG" || die "no DELETE answered 404: $(cat "$HQ_LOG")"
grep -q " GET 404 .* /v1/receipts/$no\$" "$HQ_LOG" || die "no receipt asked for segment $no"
pass
