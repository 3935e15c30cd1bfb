#!/bin/bash
# outpost policy show|diff|accept: the policy in force and where it comes
# from; diff of a FILE against it (TIGHTEN/LOOSEN per line, exit 6 when
# anything loosens, 3 with FILE:LINE for a bad file); a policy from HQ
# that waits (stored as the daemon stores it) is shown by `policy show`
# and `outpost status`, and takes effect only by `policy accept HASH`:
# written as policy-override.yaml and recorded in the policy ledger; a
# wrong hash, nothing pending or $OUTPOST_POLICY in the way change nothing.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir cd
unset OUTPOST_POLICY
RU="$TESTS_DIR/../schema/regions/RU.yaml"

expect_exit 0 "$OUTPOST" policy --help
expect_contains "$OUT" "usage: outpost policy show"
expect_contains "$OUT" "outpost policy accept [--db PATH] HASH"
expect_exit 0 "$OUTPOST" --help
expect_contains "$OUT" "policy"
expect_exit 2 "$OUTPOST" policy
expect_exit 2 "$OUTPOST" policy frob
expect_exit 2 "$OUTPOST" policy show extra
expect_exit 2 "$OUTPOST" policy diff a b
expect_exit 2 "$OUTPOST" policy accept
expect_exit 2 "$OUTPOST" policy accept 1234
expect_contains "$ERR" "'1234' is not a policy hash"
expect_exit 2 "$OUTPOST" policy show --bogus
expect_exit 1 "$OUTPOST" policy show --db "$T/missing.db"

init_node RU
profile_hash=$(sha256sum "$RU" | cut -c1-64)
expect_exit 0 "$OUTPOST" policy show
expect_contains "$OUT" "policy in force: "
expect_contains "$OUT" "RU.yaml (the region's profile)"
expect_contains "$OUT" "region RU, sha256 $profile_hash"
expect_contains "$OUT" "pending from HQ: none"
expect_contains "$OUT" "no policy from HQ has taken effect"

# diff of files against the policy in force
expect_exit 5 "$OUTPOST" policy diff
expect_contains "$ERR" "no policy from HQ waits for acceptance"
cp "$RU" same.yaml
expect_exit 0 "$OUTPOST" policy diff same.yaml
expect_contains "$OUT" "identical to the policy in force"
{ echo "# a comment from HQ"; cat "$RU"; } >commented.yaml
expect_exit 0 "$OUTPOST" policy diff commented.yaml
expect_contains "$OUT" "no differences (only comments or layout differ)"
expect_contains "$OUT" "0 loosen, 0 tighten, 0 neutral"
sed 's/contact.given_name: {class: local_primary/contact.given_name: {class: exportable/;
     s/contact.family_name: {class: local_primary/contact.family_name: {class: exportable/' \
    "$RU" >looser.yaml
expect_exit 6 "$OUTPOST" policy diff looser.yaml
expect_contains "$OUT" "LOOSEN   contact.given_name: local_primary (transfer not allowed) -> exportable (loosens)"
expect_contains "$OUT" "2 loosen, 0 tighten"
sed 's/  note: {days: 1095/  note: {days: 30/' "$RU" >tighter.yaml
expect_exit 0 "$OUTPOST" policy diff tighter.yaml
expect_contains "$OUT" "TIGHTEN  retention.note: 1095 -> 30 days (tightens)"
sed 's/^default_class: local_only/default_class: nowhere/' "$RU" >bad.yaml
expect_exit 3 "$OUTPOST" policy diff bad.yaml
line=$(grep -n '^default_class:' bad.yaml | cut -d: -f1)
expect_contains "$ERR" "bad.yaml:$line: default_class:"
expect_exit 3 "$OUTPOST" policy diff "$TESTS_DIR/../schema/regions/KE.yaml"
expect_contains "$ERR" "region: \"KE\" is not RU"
expect_exit 1 "$OUTPOST" policy diff "$T/none.yaml"
expect_contains "$ERR" "cannot open $T/none.yaml"

command -v sqlite3 >/dev/null || { echo "sqlite3 not installed: skipping the pending part"; pass; }

# A policy from HQ that loosens, stored as the sync ledger stores it.
store_pending() { # $1 seq, $2 file
    sqlite3 "$OUTPOST_DB" "INSERT INTO mailbox (seq, kind, created_at, body, status, reason,
        received_ms) VALUES ($1, 'policy', '2026-11-24T18:00:00.000Z',
        CAST(readfile('$2') AS TEXT), 'pending', '2 loosen, 0 tighten, 0 neutral: ...',
        CAST(strftime('%s', 'now') AS INTEGER) * 1000)" || die "sqlite3 failed"
}
store_pending 4 looser.yaml
loose_hash=$(sha256sum looser.yaml | cut -c1-64)
expect_exit 0 "$OUTPOST" policy show
expect_contains "$OUT" "pending from HQ: policy message 4, received "
expect_contains "$OUT" "sha256 $loose_hash"
expect_contains "$OUT" "against the policy in force: 2 loosen, 0 tighten, 0 neutral"
expect_contains "$OUT" "  LOOSEN   contact.family_name: local_primary (transfer not allowed) -> exportable (loosens)"
expect_contains "$OUT" "to put it in force: outpost policy accept $loose_hash"
expect_exit 6 "$OUTPOST" policy diff
expect_contains "$OUT" "policy message 4 from HQ (sha256 $loose_hash)"
expect_exit 0 "$OUTPOST" status
expect_contains "$OUT" "policy: a policy from HQ waits for acceptance at the node (policy message 4,"
expect_contains "$OUT" "sha256 $loose_hash): 2 loosen"
expect_exit 0 "$OUTPOST" status --json
expect_contains "$OUT" "\"policy_pending\":{\"seq\":4,\"hash\":\"$loose_hash\""

# wrong hash, $OUTPOST_POLICY in the way: nothing changes
expect_exit 5 "$OUTPOST" policy accept "$profile_hash"
expect_contains "$ERR" "no pending policy from HQ has hash $profile_hash; the one waiting (policy message 4) is $loose_hash"
expect_exit 4 env OUTPOST_POLICY="$RU" "$OUTPOST" policy accept "$loose_hash"
expect_contains "$ERR" "OUTPOST_POLICY names $RU, which outranks policy-override.yaml"
[ -e "$T/policy-override.yaml" ] && die "a refused acceptance wrote the override"

# accepted: in force, recorded, no longer pending
expect_exit 0 "$OUTPOST" policy accept "$(echo "$loose_hash" | tr a-f A-F)"
expect_contains "$OUT" "accepted policy message 4 from HQ (sha256 $loose_hash): 2 loosen, 0 tighten"
expect_contains "$OUT" "in force now: $T/policy-override.yaml (was sha256 $profile_hash)"
cmp -s looser.yaml "$T/policy-override.yaml" || die "policy-override.yaml is not the accepted policy"
[ "$(stat -c %a "$T/policy-override.yaml")" = 640 ] || die "policy-override.yaml is not mode 0640"
expect_exit 0 "$OUTPOST" policy show
expect_contains "$OUT" "policy in force: $T/policy-override.yaml (from HQ)"
expect_contains "$OUT" "region RU, sha256 $loose_hash"
expect_contains "$OUT" "pending from HQ: none"
expect_contains "$OUT" "accepted by cli:$(id -un) (policy message 4): $profile_hash -> $loose_hash"
expect_contains "$OUT" "2 loosen, 0 tighten, 0 neutral: contact.given_name: local_primary"
expect_exit 0 "$OUTPOST" status --json
expect_contains "$OUT" '"policy_pending":null'
expect_exit 0 "$OUTPOST" status
expect_not_contains "$OUT" "waits for acceptance"
expect_exit 5 "$OUTPOST" policy accept "$loose_hash"
expect_contains "$ERR" "no policy from HQ waits for acceptance"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT status FROM mailbox WHERE seq = 4")" = applied ] ||
    die "the accepted message is not marked applied"
# the record cannot be rewritten
sqlite3 "$OUTPOST_DB" "DELETE FROM policy_ledger" 2>/dev/null && die "the policy ledger let a row go"

# a waiting text that is no longer a valid policy: a precise error
printf 'format: outpost-region-policy/1\nregion: RU\ncountry: ZZ\ndefault_class: local_only\ndefault_basis: x\n' >broken.yaml
store_pending 5 broken.yaml
expect_exit 0 "$OUTPOST" policy show
expect_contains "$OUT" "not a valid policy for this node:"
expect_contains "$OUT" "policy message 5 from HQ:3: country:"
expect_exit 3 "$OUTPOST" policy accept "$(sha256sum broken.yaml | cut -c1-64)"
expect_contains "$ERR" "policy message 5 from HQ:3: country:"
expect_exit 3 "$OUTPOST" policy diff
pass
