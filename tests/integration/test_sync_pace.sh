#!/bin/bash
# When segments are cut (docs/OUTBOX.md, docs/UPLINK.md "When segments are
# cut"), with real daemons over a 256 kbit/s link and a sync interval of a
# minute, so that nothing here can be the timer's doing:
#  - a backlog of 3,000 contacts leaves in a small first segment (about
#    1.5 s of the link), then larger ones cut while the one before goes,
#    each once and in order;
#  - a contact written through the API reaches HQ within seconds (the
#    write wakes the uplink);
#  - HQ then holds exactly the permitted projection of every record, once.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3 curl

init_node KE
import_contacts 3000 11
hq_enrol pace-1 KE
add_user ana field
TOKEN=$(api_token ana)
[ -n "$TOKEN" ] || die "no API token"

start_hq "$HQDB"
start_proxy "$HQ_PORT" --seed 1 --rate-kbit 256 --latency-ms 50
start_node "http://127.0.0.1:$PROXY_PORT" --sync_interval_ms 60000
wait_drained 120

# segment sizes in order, from the node's log
sed -n 's/.*segment \([0-9]*\) uploaded (\([0-9]*\) bytes, \([0-9]*\) records.*/\1 \2 \3/p' \
    "$NODE_LOG" >"$T/segs"
nsegs=$(wc -l <"$T/segs")
first=$(awk 'NR == 1 {print $2}' "$T/segs")
largest=$(awk '$2 > m {m = $2} END {print m + 0}' "$T/segs")
records=$(awk '{s += $3} END {print s + 0}' "$T/segs")
echo "backlog: $nsegs segments, first $first bytes, largest $largest, $records records"
[ "$records" = 3000 ] || die "3000 records expected in the segments, got $records: $(cat "$T/segs")"
[ "$nsegs" -ge 3 ] || die "a small first segment and larger ones expected: $(cat "$T/segs")"
[ "$first" -lt 80000 ] || die "the first segment is $first bytes, not about 1.5 s of the link"
[ "$largest" -ge $((3 * first)) ] ||
    die "segments did not grow behind the first: $(cat "$T/segs")"
# numbered without gaps, each uploaded once
awk 'NR > 1 && $1 != prev + 1 {exit 1} {prev = $1}' "$T/segs" ||
    die "segments not uploaded in order: $(cat "$T/segs")"

# A write through the API wakes the uplink: HQ has it long before the
# minute's timer.
BASE="http://127.0.0.1:$NODE_PORT"
OUT="$T/out.json"
before=$("$OUTPOST_HQ" --db "$HQDB" records --count | tail -n1 | grep -o '[0-9]*' | head -n1)
t0=$(date +%s.%N)
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary '{"given_name":"Wanjiru","family_name":"Pace"}' \
    "$BASE/api/v1/contacts") || die "curl failed"
[ "$STATUS" = 201 ] || die "POST /api/v1/contacts: $STATUS $(cat "$OUT")"
arrived=""
for _ in $(seq 1 100); do
    now=$("$OUTPOST_HQ" --db "$HQDB" records --count | tail -n1 | grep -o '[0-9]*' | head -n1)
    [ "$now" -gt "$before" ] && { arrived=$(date +%s.%N); break; }
    sleep 0.1
done
[ -n "$arrived" ] || die "the contact written through the API did not reach HQ within 10 s" \
    "(sync_interval_ms is 60000): $(tail -n 5 "$NODE_LOG")"
echo "a write through the API reached HQ after $(awk "BEGIN {printf \"%.1f\", $arrived - $t0}") s"

# HQ holds exactly what may leave, once.
wait_drained 60
: >"$T/forbidden"
hq_compare pace-1
pass
