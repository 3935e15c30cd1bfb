#!/bin/bash
# End to end over a bad link: 5,000 changes on a KE node (2,000 imported
# contacts, 1,250 of them updated twice, 499 deleted, one subject erasure;
# all but the import made while the sync runs) reach outpost-hq through the
# flaky proxy at 64 kbit/s with the connection cut every 24-64 KB (every
# 3-8 s at that rate). Then HQ must hold
# exactly the permitted projection of every live record (as
# `outpost egress-report` computes it), each once; tombstones only for
# deleted records (none for one HQ never received); nothing of the erased
# person; no street (local_only in KE)
# and no raw e-mail (pseudonymized) anywhere; and the bytes sent again
# because of cuts must stay under one chunk per cut.
# SYNC_SEED replays a failure (the proxy's cuts), SYNC_RATE_KBIT changes
# the link. (It drained 10,000 changes, 4,000 imported, until 2026-12-06:
# the largest test in CI. Half the load takes the same paths: cuts while
# segments go, updates and deletes written while earlier versions are on
# the way, an erasure that voids the spool; docs/BENCHMARKS.md has the
# times.)
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
SEED=${SYNC_SEED:-$(date +%s)}
RATE=${SYNC_RATE_KBIT:-64}
echo "seed $SEED (SYNC_SEED=$SEED replays the cuts), link $RATE kbit/s"

init_node KE
import_contacts 2000 7
hq_enrol nairobi-1 KE
# /metrics is for managers: a token to read the link counters with
add_user ops manager 'metrics reader pw'
TOKEN=$(api_token ops)
[ -n "$TOKEN" ] || die "no API token"

start_hq "$HQDB"
start_proxy "$HQ_PORT" --seed "$SEED" --rate-kbit "$RATE" --cut-after-bytes 24000:64000
start_node "http://127.0.0.1:$PROXY_PORT" --sync_interval_ms 500 --segment_bytes 48KB
t0=$(date +%s)

# Changes while the first segments crawl over the link.
sqlite3 "$OUTPOST_DB" "SELECT id, version FROM contacts ORDER BY id LIMIT 1750" >"$T/ids" ||
    die "cannot list contacts"
[ "$(wc -l <"$T/ids")" = 1750 ] || die "expected 1750 ids"
for pass in 1 2; do
    head -n 1250 "$T/ids" | tr '|' ' ' | while read -r id v; do echo "$id $((v + pass - 1))"; done |
        xargs -P 4 -n 2 sh -c \
            '"$0" contact update --version "$2" "$1" --job_title "Agent $2 $1" >/dev/null ||
             echo "update $1 failed" >&2' "$OUTPOST" 2>"$T/upd.err"
    [ ! -s "$T/upd.err" ] || die "updates (pass $pass) failed: $(head "$T/upd.err")"
done
sed -n '1251,1749p' "$T/ids" | tr '|' ' ' | xargs -P 4 -n 2 sh -c \
    '"$0" contact delete --version "$2" "$1" >/dev/null || echo "delete $1 failed" >&2' \
    "$OUTPOST" 2>"$T/del.err"
[ ! -s "$T/del.err" ] || die "deletes failed: $(head "$T/del.err")"
erased=$(sed -n '1750p' "$T/ids" | cut -d'|' -f1)
erased_name=$(sqlite3 "$OUTPOST_DB" "SELECT family_name FROM contacts WHERE id='$erased'")
"$OUTPOST" subject erase "$erased" --yes --reason "test" >/dev/null || die "erase failed"
changes=$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM audit_log WHERE entity='contact' AND action <> 'erase'")
changes=$((changes + 1))
echo "changes made on the node: $changes"
[ "$changes" -ge 5000 ] || die "only $changes changes were made"

wait_drained 900
t1=$(date +%s)
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null
cuts=$(sed -n 's/.*cuts=\([0-9]*\).*/\1/p' "$T/proxy.log" | tail -n1)
echo "drained in $((t1 - t0)) s; proxy: $(tail -n1 "$T/proxy.log")"

# What HQ holds against what may leave.
sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> '' UNION ALL
    SELECT email FROM contacts WHERE email <> ''" >"$T/forbidden"
echo "$erased" >>"$T/forbidden"
[ -n "$erased_name" ] && grep -c -F "$erased_name" "$T/contacts.csv" | grep -qx 1 &&
    echo "$erased_name" >>"$T/forbidden"
hq_compare nairobi-1
# A delete reaches HQ only for a record HQ may hold (docs/EGRESS.md): of a
# contact deleted before any version of it reached HQ (the erasure voided
# the spool, and its segments were cut again), HQ hears nothing. So every
# tombstone at HQ is a contact deleted at the node, and no contact deleted
# at the node is live at HQ (sync_compare checked the live set above).
sqlite3 "$OUTPOST_DB" "SELECT id FROM contacts WHERE deleted = 1 AND id <> '$erased'" |
    sort >"$T/deleted.node"
grep '"op":"delete"' "$T/hq.jsonl" | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort -u >"$T/deleted.hq"
deleted_node=$(wc -l <"$T/deleted.node")
deleted_hq=$(wc -l <"$T/deleted.hq")
[ "$deleted_node" -gt 0 ] || die "the test deleted no contact"
extra=$(comm -13 "$T/deleted.node" "$T/deleted.hq" | head -n 3)
[ -z "$extra" ] || die "HQ holds tombstones for contacts not deleted at the node: $extra"
echo "deleted: $deleted_node at the node, $deleted_hq of them as tombstones at HQ"
grep -q "$erased" "$T/hq.jsonl" && die "HQ still lists the erased contact $erased"
# Withheld values must not be in HQ's database file either.
if grep -a -q -F -f <(grep -E '^.{8,}$' "$T/forbidden" | head -n 2000) "$HQDB" "$HQDB-wal" 2>/dev/null; then
    die "a withheld value is in HQ's database file"
fi

# Re-sent bytes: under one chunk per cut.
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$NODE_PORT/metrics" >"$T/metrics"
resent=$(sed -n 's/^outpost_sync_bytes_resent_total \([0-9]*\).*/\1/p' "$T/metrics")
sent=$(sed -n 's/^outpost_sync_bytes_sent_total \([0-9]*\).*/\1/p' "$T/metrics")
chunk=$(sed -n 's/^outpost_sync_chunk_bytes \([0-9]*\).*/\1/p' "$T/metrics")
[ -n "$resent" ] && [ -n "$sent" ] && [ -n "$cuts" ] ||
    die "no link counters (metrics: $(head -c 300 "$T/metrics"); proxy: $(tail -n1 "$T/proxy.log"))"
echo "sent $sent bytes, re-sent $resent over $cuts cuts (chunk now $chunk bytes)"
# Measured on the wire too, independently of the client's own counters:
# what went up the link beyond the segments themselves is the HTTP and tus
# headers (allow 2 KiB per connection, generous) plus what cuts lost. A
# cut loses at most the chunk in flight, and chunks never exceed 64 KiB on
# this link (they grow only when one takes under 5 s: 40 KB at 64 kbit/s).
up=$(sed -n 's/.*up_bytes=\([0-9]*\).*/\1/p' "$T/proxy.log" | tail -n1)
conns=$(sed -n 's/.*conns=\([0-9]*\).*/\1/p' "$T/proxy.log" | tail -n1)
segs=$(sed -n 's/.*segment [0-9]* uploaded (\([0-9]*\) bytes.*/\1/p' "$NODE_LOG" |
    awk '{s += $1} END {print s + 0}')
[ "$segs" -gt 0 ] && [ -n "$up" ] || die "no segment sizes in the node log or no proxy summary"
extra=$((up - segs))
nseg=$(grep -c 'segment [0-9]* uploaded (' "$NODE_LOG")
echo "segments: $nseg, $segs bytes for $changes changes ($((segs / changes)) bytes per change)"
echo "wire: $up bytes up for $segs bytes of segments: $extra extra over $conns connections" \
    "and $cuts cuts ($((extra / (cuts > 0 ? cuts : 1))) per cut, headers included)"
[ "$resent" -le $((cuts * 65536)) ] || die "the client re-sent $resent bytes for $cuts cuts"
# A cut loses what was on the way; a client that counts nothing re-sent
# after cuts misreports the link to outpost status and /metrics.
[ "$cuts" = 0 ] || [ "$resent" -gt 0 ] || die "$cuts cuts, yet the client counted nothing re-sent"
[ "$extra" -le $((cuts * 65536 + conns * 2048)) ] ||
    die "$extra bytes beyond the segments for $cuts cuts over $conns connections"
expect_exit 0 "$OUTPOST" check
pass
