#!/bin/bash
# The day's count across kill -9 (docs/UPLINK.md, "Daily budget"):
# outpostd syncs 4,000 contacts in segments of about 150 KB over a
# 40 KB/s cap and is killed with SIGKILL three times while an upload runs,
# then restarted without a cap until everything is acknowledged. Each
# segment's upload then reached HQ exactly once, so what HQ acknowledged
# today is the sum of the acknowledged segments' sizes, and `outpost
# status` must count exactly that: bytes HQ took just before a kill are
# charged by the restarted node's HEAD, none twice. (Charged every 2 s
# from memory, the count fell short by what the last 2 s before each kill
# had delivered.) A run that straddles 00:00 UTC cannot compare one day's
# count with the whole and skips.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
day0=$(($(date -u +%s) / 86400))

init_node KE
import_contacts 4000 31
hq_enrol kill-1 KE
start_hq "$HQDB"
start_node "http://127.0.0.1:$HQ_PORT" --segment_bytes 150KB --sync_bandwidth 40000 \
    --sync_interval_ms 200

# held: the bytes HQ holds of its uploads in progress
held() { find "$T/hq-uploads" -name '*.data' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
for round in 1 2 3; do
    # mid-upload: HQ holds part of an upload, more than a moment's worth
    ok=""
    for _ in $(seq 1 200); do
        h=$(held)
        [ "$h" -gt 30000 ] && { ok=1; break; }
        kill -0 "$NODE_PID" 2>/dev/null || die "outpostd exited: $(tail -n 15 "$NODE_LOG")"
        sleep 0.05
    done
    [ -n "$ok" ] || die "round $round: no upload in progress at HQ: $(tail -n 15 "$NODE_LOG")"
    sleep 0.$((RANDOM % 9 + 1))
    kill -9 "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null
    sleep 0.3
    echo "round $round: killed with $(held) bytes of an upload at HQ;" \
        "the database counts $(status_field bytes_today) today"
    start_node "http://127.0.0.1:$HQ_PORT" --segment_bytes 150KB --sync_bandwidth 40000 \
        --sync_interval_ms 200
done
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
start_node "http://127.0.0.1:$HQ_PORT" --segment_bytes 150KB --sync_interval_ms 200
wait_drained 180
kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null

[ "$(($(date -u +%s) / 86400))" = "$day0" ] || skip "the run crossed 00:00 UTC"
acked=$(sqlite3 "$OUTPOST_DB" "SELECT count(*) || ' ' || sum(bytes) FROM sync_segments WHERE state = 2")
read -r nseg total <<<"$acked"
[ "$nseg" -ge 3 ] || die "only $nseg segments: the kills did not land mid-sync"
today=$(status_field bytes_today)
echo "$nseg segments, $total bytes acknowledged by HQ; outpost status counts $today today"
[ "$today" = "$total" ] || die "the day's count is $today, HQ acknowledged $total bytes"
sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> ''" >"$T/forbidden"
hq_compare kill-1
pass
