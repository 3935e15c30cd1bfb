#!/bin/bash
# Field-level deltas through real daemons (docs/SYNC.md, "Nothing new,
# nothing sent"): a KE node with 200 contacts synced to outpost-hq. Edits
# of the job title (kept at the node in KE) send no segment at all; edits
# of the region (leaves as is) arrive at HQ as patches, in fewer bytes per
# record than the first upload; a node killed with -9 between cutting a
# segment of patches and its receipt (HQ stopped meanwhile) loses and
# duplicates nothing, and HQ ends with every record right. After each
# phase HQ must hold exactly the permitted projection of every live record
# (sync_compare.py), and no street (local_only) nor job title anywhere.
# Last, HQ tightens the policy (the language stays at the node): HQ's
# copies lose the language, sent as patches that unset it.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup python3 sqlite3
unset OUTPOST_POLICY # a policy from HQ must be able to take over

init_node KE
import_contacts 200 5
hq_enrol deltas-1 KE
start_hq "$HQDB"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200
wait_drained 120

# sum of bytes and count of the segments uploaded, per the node's logs
seg_sum() {
    cat "$T"/node.*.log | sed -n 's/.*segment [0-9]* uploaded (\([0-9]*\) bytes, \([0-9]*\) records.*/\1 \2/p' |
        awk '{b += $1; r += $2; n++} END {printf "%d %d %d\n", n, b, r}'
}
compare() {
    sqlite3 "$OUTPOST_DB" "SELECT street FROM contacts WHERE street <> '' UNION ALL
        SELECT job_title FROM contacts WHERE job_title <> ''" >"$T/forbidden"
    hq_compare deltas-1
}
read -r n0 b0 r0 < <(seg_sum)
[ "$r0" = 200 ] || die "the first upload carried $r0 records, not 200"
echo "first upload: $b0 bytes in $n0 segments for $r0 records"
compare

sqlite3 "$OUTPOST_DB" "SELECT id, version FROM contacts ORDER BY id" | tr '|' ' ' >"$T/ids"
edit() { # FIRST LAST FLAG VALUE: one update of each listed contact
    # (made with the node stopped, so one segment carries them, as after a
    # day of edits while the link was down)
    kill -TERM "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null
    sed -n "$1,$2p" "$T/ids" | while read -r id v; do
        "$OUTPOST" contact update --version "$v" "$id" "$3" "$4 ${id:30}" >/dev/null ||
            echo "update $id failed" >>"$T/upd.err"
    done
    [ ! -s "$T/upd.err" ] || die "updates failed: $(head -n 3 "$T/upd.err")"
    sqlite3 "$OUTPOST_DB" "SELECT id, version FROM contacts ORDER BY id" | tr '|' ' ' >"$T/ids"
    start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200
}

# 1. A field that stays at the node: nothing leaves.
edit 1 100 --job_title "Field agent"
wait_drained 60
sleep 1 # a segment would be logged after its receipt
read -r n1 b1 r1 < <(seg_sum)
[ "$n1" = "$n0" ] || die "edits of a withheld field sent $((n1 - n0)) segments ($((b1 - b0)) bytes)"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM outbox")" = 0 ] || die "the outbox kept the edits"
echo "100 edits of the job title: 0 segments, 0 bytes"
compare

# 2. An exportable field: patches, applied at HQ.
edit 1 100 --region "County"
wait_drained 60
sleep 1
read -r n2 b2 r2 < <(seg_sum)
[ $((r2 - r1)) = 100 ] || die "the region edits sent $((r2 - r1)) records, not 100"
per_first=$((b0 / r0)) per_patch=$(((b2 - b1) / 100))
echo "100 edits of the region: $((b2 - b1)) bytes in $((n2 - n1)) segments" \
    "($per_patch per record; the first upload $per_first)"
[ $((per_patch * 2)) -lt "$per_first" ] ||
    die "a patch of one field took $per_patch bytes a record, the whole record $per_first"
compare
# hq_compare left HQ's records in $T/hq.jsonl
[ "$(grep -c '"region":"County ' "$T/hq.jsonl")" = 100 ] || die "HQ does not hold the 100 new regions"
"$OUTPOST_HQ" --db "$HQDB" set-aside >"$T/aside.out" 2>&1 || true
grep -q 'needs whole' "$T/aside.out" && die "HQ lacked a base: $(head -n 3 "$T/aside.out")"

# 3. kill -9 between the cut and the receipt: HQ stopped, the node cuts
# the patches, is killed, and comes back to a running HQ.
kill -STOP "$HQ_PID"
edit 101 130 --region "Coast"
for _ in $(seq 1 100); do
    [ "$(status_field spool_segments)" -ge 1 ] && break
    sleep 0.1
done
[ "$(status_field spool_segments)" -ge 1 ] || die "no segment was cut while HQ was stopped"
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null
kill -CONT "$HQ_PID"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200
wait_drained 120
compare
# hq_compare left HQ's records in $T/hq.jsonl
[ "$(grep -c '"region":"Coast ' "$T/hq.jsonl")" = 30 ] ||
    die "HQ does not hold the 30 regions edited across the kill"
read -r n3 b3 r3 < <(seg_sum)

# 4. HQ tightens the policy: the language stays at the node from now on.
# The node takes it up by itself; every record whose projection had a
# language goes again, as a patch that unsets it, and HQ drops it.
with_lang=$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts WHERE language <> ''")
[ "$with_lang" -gt 0 ] || die "no contact has a language"
sed 's/contact.language: {class: exportable/contact.language: {class: local_only/' \
    "$TESTS_DIR/../schema/regions/KE.yaml" >"$T/tight.yaml"
cmp -s "$T/tight.yaml" "$TESTS_DIR/../schema/regions/KE.yaml" && die "the KE profile did not change"
"$OUTPOST_HQ" --db "$HQDB" mailbox post deltas-1 --kind policy "$T/tight.yaml" >"$T/post.out" 2>&1 ||
    { lib_show "$T/post.out"; die "mailbox post failed"; }
for _ in $(seq 1 100); do
    cmp -s "$T/tight.yaml" "$T/policy-override.yaml" && break
    sleep 0.1
done
cmp -s "$T/tight.yaml" "$T/policy-override.yaml" || die "the tightening is not in force"
sleep 1
wait_drained 60
sleep 1
read -r n4 b4 r4 < <(seg_sum)
echo "the tightening: $((r4 - r3)) records in $((n4 - n3)) segments after the region edits" \
    "($with_lang contacts had a language)"
[ $((r4 - r3)) = "$with_lang" ] ||
    die "the tightening sent $((r4 - r3)) records; $with_lang projections had a language"
[ $(((b4 - b3) / (r4 - r3))) -lt $((b0 / r0)) ] ||
    die "the tightening took $(((b4 - b3) / (r4 - r3))) bytes a record, a whole one $((b0 / r0))"
compare
[ "$(grep -c '"language"' "$T/hq.jsonl")" = 0 ] || die "HQ still holds languages"
expect_exit 0 "$OUTPOST" check
pass
