#!/bin/bash
# The sync window is obeyed mid-upload: outpostd syncs 8,000 contacts as
# one segment of about 1 MB under a 64 kbit/s bandwidth cap, with a window
# that closes at the end of the current minute (15 to 60 s away, so at
# most 480 KB are sent by then): the segment is on the wire when it
# closes. The node must log the pause and say why it waits in `outpost
# status`. Restarted with no window, the node resumes the same upload (a
# HEAD on its URL, no new POST for it), drains, and HQ holds exactly the
# permitted projection of every record. The times are UTC (TZ=UTC), so
# the window means the same to the test and to the node. That nothing is
# sent while the window is closed is shown on an injected clock by
# tests/unit/test_uplink.c (the cycle after the pause sends nothing), not
# here by sleeping and counting PATCHes.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
export TZ=UTC

init_node KE
import_contacts 8000 23
hq_enrol window-1 KE
start_hq "$HQDB" --log_requests true

# The window opens at this minute and closes at the next.
now=$(date +%s)
if [ $((now % 60)) -gt 45 ]; then
    sleep $((61 - now % 60))
    now=$(date +%s)
fi
opens=$((now / 60 * 60))
closes=$((opens + 60))
WINDOW="$(date -u -d "@$opens" +%H:%M)-$(date -u -d "@$closes" +%H:%M)"
echo "sync window $WINDOW, closing in $((closes - now)) s"
# one full segment from the first (no small first segment, docs/OUTBOX.md
# "When a segment is cut"): the window must close inside it. With the
# default pacing the window closes in a segment of about 200 KB, too small
# for the check below that it paused mid-way.
start_node "http://127.0.0.1:$HQ_PORT" --sync_window "$WINDOW" --sync_bandwidth 64kbit \
    --sync_interval_ms 200 --segment_bytes 2MB --sync_first_segment_ms 0
FIRST_LOG=$NODE_LOG

paused=""
while [ -z "$paused" ]; do
    paused=$(sed -n 's/.*sync window closed: segment \([0-9]*\) paused at \([0-9]*\) of \([0-9]*\) bytes.*/\1 \2 \3/p' \
        "$FIRST_LOG")
    [ -n "$paused" ] && break
    [ "$(date +%s)" -lt $((closes + 30)) ] ||
        die "no pause logged 30 s after the window closed: $(tail -n 15 "$FIRST_LOG")"
    kill -0 "$NODE_PID" 2>/dev/null || die "outpostd exited: $(tail -n 15 "$FIRST_LOG")"
    sleep 0.5
done
read -r SEG AT LEN <<<"$paused"
echo "paused segment $SEG at $AT of $LEN bytes"
[ "$LEN" -gt 600000 ] || die "segment $SEG is $LEN bytes: too small to be paused mid-way"
[ "$AT" -lt "$LEN" ] || die "the pause came after the whole segment was sent"
expect_contains "$FIRST_LOG" "it resumes when the window opens at ${WINDOW%-*}"
grep -q "uploaded (.*applied at HQ" "$FIRST_LOG" && echo "(an earlier segment went whole)"

UPLOAD=$(sed -n 's/.* PATCH [0-9]* .* \(\/files\/[0-9a-f]*\)$/\1/p' "$HQ_LOG" | tail -n1)
[ -n "$UPLOAD" ] || die "HQ logged no PATCH: $(tail -n 5 "$HQ_LOG")"
[ "$(status_field outbox_depth)" -gt 0 ] || die "the outbox is empty while paused"
# outpost status says why nothing moves, and that nothing is wrong
for _ in $(seq 1 50); do
    "$OUTPOST" status >"$T/status.txt" 2>&1 || die "outpost status failed: $(cat "$T/status.txt")"
    grep -q "^waiting: outside the sync window $WINDOW" "$T/status.txt" && break
    sleep 0.1
done
expect_contains "$T/status.txt" "waiting: outside the sync window $WINDOW (local time); it opens at ${WINDOW%-*}"
expect_not_contains "$T/status.txt" "blocked:"
kill -0 "$NODE_PID" 2>/dev/null || die "outpostd exited while paused"

# The window opens again (here: a restart without one): the same upload
# resumes where HQ stopped.
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
lines=$(wc -l <"$HQ_LOG")
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200
wait_drained 300
[ "$(status_field waiting)" = "" ] || die "still waiting after the drain: $(status_field waiting)"
tail -n +"$((lines + 1))" "$HQ_LOG" >"$T/hq.after"
grep -q " HEAD 200 .*$UPLOAD\$" "$T/hq.after" ||
    die "the paused upload $UPLOAD was not resumed with a HEAD: $(head -n 5 "$T/hq.after")"
grep -q "segment $SEG applied" "$HQ_LOG" || die "segment $SEG was not applied"
[ "$(grep -c "segment $SEG applied" "$HQ_LOG")" = 1 ] || die "segment $SEG applied twice"

sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> ''" >"$T/forbidden"
hq_compare window-1
pass
