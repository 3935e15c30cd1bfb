#!/bin/bash
# A policy from HQ may tighten, only a person at the node may loosen. An RU
# node syncs to HQ. HQ posts its profile with a comment and one field
# closed: the node takes it up by itself (recorded in the policy ledger),
# and HQ applies the node's next segments, cut under that policy's hash.
# HQ then posts a policy that makes contact names exportable: the node
# keeps its policy, `outpost status` shows the policy waiting, and names
# keep staying on the node (HQ's records hold none). Only `outpost policy
# accept HASH` at the node puts it in force; outpostd takes it up at once
# and the next contact's name reaches HQ.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/sync_lib.sh"
sync_setup
unset OUTPOST_POLICY
RU="$TESTS_DIR/../schema/regions/RU.yaml"
init_node RU
hq_enrol branch-ru RU

add_contact() { # $1 given name, $2 family name
    "$OUTPOST" contact add --given-name "$1" --family-name "$2" >/dev/null 2>"$T/add.err" ||
        { lib_show "$T/add.err"; die "contact add $1 failed"; }
}
hq_records() { # what HQ holds for the node, one JSON line per record
    "$OUTPOST_HQ" --db "$HQDB" records --node branch-ru --json >"$T/records.json" 2>&1 ||
        { lib_show "$T/records.json"; die "outpost-hq records failed"; }
}
post() { # $1 file
    "$OUTPOST_HQ" --db "$HQDB" mailbox post branch-ru --kind policy "$1" >"$T/post.out" 2>&1 ||
        { lib_show "$T/post.out"; die "mailbox post $1 failed"; }
}
wait_log() { # $1 text: until the node's log has it
    for _ in $(seq 1 100); do
        grep -qF -- "$1" "$NODE_LOG" && return 0
        sleep 0.1
    done
    die "the node did not log '$1': $(tail -n 15 "$NODE_LOG")"
}
rejected_at_hq() {
    "$OUTPOST_HQ" --db "$HQDB" receipts branch-ru >"$T/receipts" 2>&1 ||
        { lib_show "$T/receipts"; die "outpost-hq receipts failed"; }
    grep -c rejected "$T/receipts"
}

start_hq "$HQDB"
start_node "http://127.0.0.1:$HQ_PORT" --sync_interval_ms 200 --segment_bytes 4096
add_contact Ivan CanaryFamilyA
wait_drained 30
hq_records
[ "$(grep -c '"entity":"contact"' "$T/records.json")" = 1 ] || die "HQ did not get the contact"
expect_not_contains "$T/records.json" "CanaryFamilyA"
expect_contains "$T/records.json" '"restricted":false'

# 1. A tightening with a comment: taken up by itself, and HQ accepts the
# segments cut under its hash.
{
    echo "# revised at HQ: contact.restricted stays on the node"
    sed 's/contact.restricted: {class: exportable/contact.restricted: {class: local_only/' "$RU"
} >"$T/tight.yaml"
tight_hash=$(sha256sum "$T/tight.yaml" | cut -c1-64)
post "$T/tight.yaml"
wait_log "outpostd: region policy from HQ in force (sha256 $tight_hash)"
cmp -s "$T/tight.yaml" "$T/policy-override.yaml" || die "the tightening is not in force"
expect_exit 0 "$OUTPOST" policy show
expect_contains "$OUT" "policy in force: $T/policy-override.yaml (from HQ)"
expect_contains "$OUT" "auto-tightened by hq (policy message 1)"
expect_contains "$OUT" "contact.restricted: exportable -> local_only (tightens)"
add_contact Olga CanaryFamilyB
wait_drained 30
[ "$(rejected_at_hq)" = 0 ] || { lib_show "$T/receipts"; die "HQ rejected a segment cut under its own tightening"; }
[ "$(status_field segments_rejected)" = 0 ] || die "the node saw a rejection"
hq_records
[ "$(grep -c '"entity":"contact"' "$T/records.json")" = 2 ] || die "HQ did not apply the new contact"
# every record is cut again under the policy in force, so HQ's copy of
# the contact sent before the tightening lost the field too
[ "$(grep -c '"restricted"' "$T/records.json")" = 0 ] ||
    { lib_show "$T/records.json"; die "HQ still holds a field the tightened policy keeps"; }

# 2. A loosening: names exportable. It waits; the policy in force stays.
sed 's/contact.given_name: {class: local_primary/contact.given_name: {class: exportable/;
     s/contact.family_name: {class: local_primary/contact.family_name: {class: exportable/' \
    "$T/tight.yaml" >"$T/loose.yaml"
loose_hash=$(sha256sum "$T/loose.yaml" | cut -c1-64)
post "$T/loose.yaml"
wait_log "policy message 2 from HQ (sha256 $loose_hash) loosens the policy in force"
expect_exit 0 "$OUTPOST" status
expect_contains "$OUT" "policy: a policy from HQ waits for acceptance at the node (policy message 2,"
expect_contains "$OUT" "sha256 $loose_hash): 2 loosen"
[ "$(status_field policy_pending | grep -c "$loose_hash")" = 1 ] ||
    die "status --json has no pending policy with the hash"
cmp -s "$T/tight.yaml" "$T/policy-override.yaml" || die "the loosening took effect by itself"
expect_not_contains "$NODE_LOG" "in force (sha256 $loose_hash)"
add_contact Pyotr CanaryFamilyC
wait_drained 30
hq_records
[ "$(grep -c '"entity":"contact"' "$T/records.json")" = 3 ] || die "sync stopped while a policy waits"
for c in CanaryFamilyA CanaryFamilyB CanaryFamilyC Ivan Olga Pyotr; do
    expect_not_contains "$T/records.json" "$c"
done
[ "$(rejected_at_hq)" = 0 ] || die "HQ rejected a segment while a policy waited"

# 3. A person at the node accepts it by its hash: in force at once.
expect_exit 5 "$OUTPOST" policy accept "$tight_hash"
expect_exit 0 "$OUTPOST" policy accept "$loose_hash"
expect_contains "$OUT" "accepted policy message 2 from HQ (sha256 $loose_hash): 2 loosen, 0 tighten"
wait_log "outpostd: policy-override.yaml changed: region policy in force (sha256 $loose_hash)"
expect_exit 0 "$OUTPOST" status --json
expect_contains "$OUT" '"policy_pending":null'
add_contact Svetlana CanaryFamilyD
wait_drained 30
hq_records
expect_contains "$T/records.json" '"family_name":"CanaryFamilyD"'
expect_contains "$T/records.json" '"given_name":"Svetlana"'
# every record is cut again under the accepted policy: HQ's copies are
# the current projection, Pyotr's (cut while the loosening waited) included
expect_contains "$T/records.json" '"family_name":"CanaryFamilyC"'
[ "$(rejected_at_hq)" = 0 ] || { lib_show "$T/receipts"; die "HQ rejected the accepted policy's segments"; }
expect_exit 0 "$OUTPOST" policy show
expect_contains "$OUT" "accepted by cli:$(id -un) (policy message 2): $tight_hash -> $loose_hash"

kill -TERM "$NODE_PID"
wait "$NODE_PID"
rc=$?
[ "$rc" = 0 ] || { lib_show "$NODE_LOG"; die "outpostd exited $rc on SIGTERM"; }
kill -TERM "$HQ_PID"
wait "$HQ_PID" 2>/dev/null
pass
