#!/bin/bash
# The rules of one upload, with two in flight (docs/UPLINK.md, "Two
# uploads"), real daemons through flaky_proxy:
#  - voiding: a contact of the higher segment is restricted while both
#    segments upload; the store voids every unacknowledged segment
#    (docs/EGRESS.md, "In time"), so neither upload sends a PATCH after the
#    write returned, the restricted contact never reaches HQ, and every
#    other record arrives once;
#  - kill -9 while both upload: the restarted node resumes both stored
#    uploads with a HEAD (no new creation for them), each segment is
#    applied once and HQ holds every record once;
#  - budget: a daily budget that ends inside the second segment pauses
#    both uploads (nothing more reaches HQ), and the day's count equals
#    the bytes HQ holds of the node's uploads.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3

fresh() {
    [ -n "$NODE_PID" ] && { kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null; }
    [ -n "$HQ_PID" ] && { kill "$HQ_PID"; wait "$HQ_PID" 2>/dev/null; }
    [ -n "$PROXY_PID" ] && { kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null; }
    NODE_PID="" HQ_PID="" PROXY_PID=""
    node_dir
    HQDB="$T/hq.db"
    init_node KE
    import_contacts "$1" 5
    hq_enrol rules-1 KE
    start_hq "$HQDB" --log_requests true --log_timestamps true
}

# segments with an upload URL still waiting for their receipt
in_flight() {
    sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM sync_segments WHERE upload_url <> '' AND state IN (0, 1)"
}

# the PATCHes HQ logged to upload ID that started after Unix time T
patches_after() {
    python3 - "$HQ_LOG" "$1" "$2" <<'PY'
import datetime, re, sys
log, uid, t = sys.argv[1], sys.argv[2], float(sys.argv[3])
rx = re.compile(r"^(\S+Z) .* PATCH (\d+) \d+B ([\d.]+)ms (\S+)$")
n = 0
for line in open(log, errors="replace"):
    m = rx.search(line.strip())
    if m and m.group(4).rstrip("/").endswith("/" + uid):
        end = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
        end = end.replace(tzinfo=datetime.timezone.utc).timestamp()
        if end - float(m.group(3)) / 1000 > t:
            n += 1
print(n)
PY
}

# ---- voiding while both go -------------------------------------------------
fresh 1500
start_proxy "$HQ_PORT" --seed 5 --rate-kbit 64 --latency-ms 100
start_node "http://127.0.0.1:$PROXY_PORT" --sync_interval_ms 200 --segment_bytes 30KB \
    --sync_first_segment_ms 0
for _ in $(seq 1 300); do
    [ "$(in_flight)" -ge 2 ] && break
    sleep 0.1
done
[ "$(in_flight)" -ge 2 ] || die "two segments never uploaded at once: $(tail -n 5 "$NODE_LOG")"
read -r LO HI <<<"$(sqlite3 "$OUTPOST_DB" "SELECT min(no), max(no) FROM sync_segments
    WHERE upload_url <> '' AND state IN (0, 1)" | tr '|' ' ')"
LO_ID=$(sqlite3 "$OUTPOST_DB" "SELECT upload_url FROM sync_segments WHERE no = $LO" | sed 's|.*/||')
HI_ID=$(sqlite3 "$OUTPOST_DB" "SELECT upload_url FROM sync_segments WHERE no = $HI" | sed 's|.*/||')
read -r CID CV <<<"$(sqlite3 "$OUTPOST_DB" "SELECT c.id, c.version FROM contacts c JOIN egress_sent e
    ON e.entity = 'contact' AND e.record_id = c.id WHERE e.segment_no = $HI LIMIT 1" | tr '|' ' ')"
[ -n "$CID" ] || die "no contact of segment $HI found"
echo "segments $LO and $HI in flight; restricting $CID of segment $HI"
"$OUTPOST" contact update --version "$CV" "$CID" --restricted true >/dev/null || die "restrict failed"
t_void=$(date +%s.%N)
wait_drained 120
grep -q "segment $HI voided during its upload" "$NODE_LOG" ||
    die "segment $HI was not stopped: $(grep -i void "$NODE_LOG" | head -5)"
for id in "$HI_ID" "$LO_ID"; do
    n=$(patches_after "$id" "$t_void")
    [ "$n" = 0 ] || die "$n PATCHes to voided upload $id started after the restriction"
done
"$OUTPOST_HQ" --db "$HQDB" records --json >"$T/hq.jsonl" || die "outpost-hq records failed"
! grep -q "$CID" "$T/hq.jsonl" || die "HQ holds the restricted contact $CID"
: >"$T/forbidden"
hq_compare rules-1

# ---- kill -9 while both upload ------------------------------------------------
fresh 1000
add_user maria manager
TOKEN=$(api_token maria)
[ -n "$TOKEN" ] || die "no API token"
start_proxy "$HQ_PORT" --seed 7 --rate-kbit 64 --latency-ms 100
NODE_ARGS=(--sync_interval_ms 200 --segment_bytes 30KB --sync_first_segment_ms 0)
start_node "http://127.0.0.1:$PROXY_PORT" "${NODE_ARGS[@]}"
for _ in $(seq 1 300); do
    [ "$(in_flight)" -ge 2 ] && break
    sleep 0.1
done
[ "$(in_flight)" -ge 2 ] || die "two segments never uploaded at once: $(tail -n 5 "$NODE_LOG")"
# `outpost status` and /metrics show both uploads
"$OUTPOST" status >"$T/status.txt" 2>&1 || die "outpost status failed"
grep -Eq "^uploads: segment [0-9]+ \([0-9]+ of [0-9]+ bytes at HQ\), segment [0-9]+ " "$T/status.txt" ||
    die "status does not show both uploads: $(cat "$T/status.txt")"
[ "$(status_field uploads | python3 -c 'import ast,sys; print(len(ast.literal_eval(sys.stdin.read())))')" -ge 2 ] ||
    die "status --json does not list both uploads: $(cat "$T/status.json")"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NODE_PORT/metrics" >"$T/metrics.txt" ||
    die "GET /metrics failed"
grep -Eq "^outpost_sync_uploads [2-4]$" "$T/metrics.txt" ||
    die "/metrics does not count both uploads: $(grep outpost_sync_ "$T/metrics.txt" | head -5)"
sleep 0.5
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
sqlite3 "$OUTPOST_DB" "SELECT no, upload_url FROM sync_segments WHERE upload_url <> ''
    AND state IN (0, 1)" | sed 's#^\([0-9]*\)|.*/#\1 #' >"$T/killed"
[ "$(wc -l <"$T/killed")" -ge 2 ] || die "fewer than two stored uploads at the kill: $(cat "$T/killed";
    sqlite3 "$OUTPOST_DB" "SELECT no, state, bytes, upload_url FROM sync_segments"; tail -n 8 "$NODE_LOG")"
lines=$(wc -l <"$HQ_LOG")
start_node "http://127.0.0.1:$PROXY_PORT" "${NODE_ARGS[@]}"
wait_drained 120
tail -n +"$((lines + 1))" "$HQ_LOG" >"$T/hq.after"
while read -r no id; do
    grep -q " HEAD 200 .*/$id\$" "$T/hq.after" ||
        die "upload $id of segment $no was not resumed with a HEAD: $(head -n 5 "$T/hq.after")"
done <"$T/killed"
for no in $(sed -n 's/.*segment \([0-9]*\) applied.*/\1/p' "$HQ_LOG" | sort -u); do
    [ "$(grep -c "segment $no applied" "$HQ_LOG")" = 1 ] || die "segment $no applied twice"
done
: >"$T/forbidden"
hq_compare rules-1

# ---- a budget that ends inside the second segment ----------------------------
BUDGET=70000
fresh 2500
start_proxy "$HQ_PORT" --seed 6 --rate-kbit 256 --latency-ms 200
start_node "http://127.0.0.1:$PROXY_PORT" --sync_interval_ms 200 --segment_bytes 40KB \
    --sync_first_segment_ms 0 --sync_daily_bytes "$BUDGET"
for _ in $(seq 1 300); do
    grep -q "daily budget of $BUDGET bytes spent" "$NODE_LOG" && break
    sleep 0.1
done
grep -q "daily budget of $BUDGET bytes spent" "$NODE_LOG" ||
    die "no budget pause: $(tail -n 10 "$NODE_LOG")"
for _ in $(seq 1 100); do
    [ "$(status_field waiting)" != "" ] && break
    sleep 0.1
done
# HQ's offsets of every upload of the node
hq_bytes() { sed -n 's/^offset //p' "$T"/hq-uploads/*.state 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
sleep 2
held=$(hq_bytes)
sleep 2
[ "$(hq_bytes)" = "$held" ] || die "uploads went on after the pause: HQ held $held, now $(hq_bytes)"
today=$(status_field bytes_today)
uploads=$(ls "$T"/hq-uploads/*.state | wc -l)
echo "budget $BUDGET: $uploads uploads at HQ hold $held bytes; the day counts $today"
[ "$uploads" -ge 2 ] || die "the budget did not end inside the second upload ($uploads uploads)"
[ "$today" = "$held" ] || die "the day counts $today bytes, HQ holds $held"
[ "$today" -ge $((BUDGET / 2)) ] && [ "$today" -le $((BUDGET + 65536)) ] ||
    die "the day counts $today bytes for a budget of $BUDGET"
pass
