#!/bin/bash
# The daily byte budget is a cap, within one chunk: outpostd syncs 4,000
# contacts as one segment of about 440 KB with sync_daily_bytes 100KB and
# no bandwidth cap. The upload must pause once it has sent the budget
# (log line, `outpost status` waiting), with today's bytes between the
# budget and the budget plus one chunk. A new day (here: a restart
# without a budget) resumes the same upload where HQ stopped, and HQ ends
# with exactly the permitted projection of every record. That nothing
# more is sent that day, and that the next UTC day resumes by itself, is
# shown on an injected clock by tests/unit/test_uplink.c, not here by
# sleeping and counting PATCHes.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
BUDGET=100000
CHUNK_MAX=524288 # the uplink's largest chunk (appliance/uplink/uplink.c)

init_node KE
import_contacts 4000 29
hq_enrol budget-1 KE
start_hq "$HQDB" --log_requests true
# one full segment from the first (no small first segment, docs/OUTBOX.md
# "When a segment is cut"): the pause must come inside it. With the default
# pacing the budget runs out in the second segment, about 100 KB, not
# twice the budget, and the check below that the pause came mid-segment
# cannot be made.
start_node "http://127.0.0.1:$HQ_PORT" --sync_daily_bytes "$BUDGET" --segment_bytes 2MB \
    --sync_interval_ms 200 --sync_first_segment_ms 0

paused=""
for _ in $(seq 1 300); do
    paused=$(sed -n 's/.*daily budget of [0-9]* bytes spent: segment \([0-9]*\) paused at \([0-9]*\) of \([0-9]*\) bytes.*/\1 \2 \3/p' \
        "$NODE_LOG")
    [ -n "$paused" ] && break
    kill -0 "$NODE_PID" 2>/dev/null || die "outpostd exited: $(tail -n 15 "$NODE_LOG")"
    sleep 0.1
done
[ -n "$paused" ] || die "no budget pause logged: $(tail -n 15 "$NODE_LOG")"
read -r SEG AT LEN <<<"$paused"
echo "paused segment $SEG at $AT of $LEN bytes"
[ "$LEN" -gt $((2 * BUDGET)) ] || die "segment $SEG is only $LEN bytes"
[ "$AT" -lt "$LEN" ] || die "the whole segment went out"

# what went out is the budget, within a chunk
# (the upload the node named and recorded before its first byte; the POST
# that created it carried the first bytes)
UPLOAD=$(sqlite3 "$OUTPOST_DB" "SELECT upload_url FROM sync_segments WHERE no = $SEG" |
    sed 's|^https*://[^/]*||')
[ -n "$UPLOAD" ] || die "segment $SEG has no upload URL recorded"
grep -q " POST 201 " "$HQ_LOG" || die "HQ logged no creation: $(tail -n 5 "$HQ_LOG")"
# the bytes of the paused upload are counted once its link report is
# recorded, which the `waiting:` line follows
for _ in $(seq 1 100); do
    "$OUTPOST" status >"$T/status.txt" 2>&1 || die "outpost status failed"
    grep -q "^waiting: the daily budget of $BUDGET bytes is spent" "$T/status.txt" && break
    sleep 0.1
done
today=$(status_field bytes_today)
echo "sent today: $today bytes for a budget of $BUDGET"
[ "$today" -ge "$BUDGET" ] && [ "$today" -le $((BUDGET + CHUNK_MAX)) ] ||
    die "sent $today bytes today for a budget of $BUDGET"
"$OUTPOST" status >"$T/status.txt" 2>&1 || die "outpost status failed"
expect_contains "$T/status.txt" "waiting: the daily budget of $BUDGET bytes is spent"
expect_not_contains "$T/status.txt" "blocked:"
[ "$(status_field outbox_depth)" -gt 0 ] || die "the outbox is empty while paused"

# the next day: the same upload resumes
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
lines=$(wc -l <"$HQ_LOG")
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200
wait_drained 120
tail -n +"$((lines + 1))" "$HQ_LOG" >"$T/hq.after"
grep -q " HEAD 200 .*$UPLOAD\$" "$T/hq.after" ||
    die "the paused upload $UPLOAD was not resumed with a HEAD: $(head -n 5 "$T/hq.after")"
[ "$(grep -c "segment $SEG applied" "$HQ_LOG")" = 1 ] || die "segment $SEG not applied exactly once"
[ "$(status_field waiting)" = "" ] || die "still waiting after the drain"

sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> ''" >"$T/forbidden"
hq_compare budget-1
pass
