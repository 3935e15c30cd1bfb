#!/bin/bash
# outpost egress-report: a dry run of egress over the whole database. Per
# field counts match the policy (EU-DE: e-mail pseudonymized, locality
# aggregate_only, country exportable), restricted contacts are withheld
# whole, the output file holds the projections and no clear e-mail or
# name, pseudonyms are HMAC-SHA-256 under the node key, the header names
# the policy's hash; a bad --policy file is refused with FILE:LINE (exit
# 3), a policy of another region or a region without a profile with a
# clear message (exit 1); the database is not changed.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir cd
unset OUTPOST_POLICY
have_sqlite=0
command -v sqlite3 >/dev/null && have_sqlite=1
have_python=0
command -v python3 >/dev/null && have_python=1

expect_exit 0 "$OUTPOST" egress-report --help
expect_contains "$OUT" "usage: outpost egress-report"
expect_exit 2 "$OUTPOST" egress-report extra
expect_exit 2 "$OUTPOST" egress-report --bogus
expect_exit 1 "$OUTPOST" egress-report --db "$T/missing.db"

init_node EU-DE

expect_exit 0 "$OUTPOST" contact add --given_name Canarina --family_name Vogel \
    --email canary@example.org --phone "+49 30 1234567" --locality Berlin \
    --country DE --job_title Einkauf
expect_exit 0 "$OUTPOST" contact add --given_name Heimlich --email hidden@example.org \
    --country DE --restricted true
expect_exit 0 "$OUTPOST" contact add --given_name Cy --country FR --language fr
# a deleted contact is not part of the report
expect_exit 0 "$OUTPOST" contact add --given_name Gone --email gone@example.org
gone=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$gone" ] || die "no id in: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" contact delete --version 1 "$gone"
# staff accounts never leave, whatever the policy
printf 'staff password canary\n' |
    "$OUTPOST" user add canary-clerk --role field --password-stdin >/dev/null || die "user add"

before=""
[ $have_sqlite = 1 ] && before=$(sqlite3 "$DB" "SELECT * FROM contacts ORDER BY id" | sha256sum)

expect_exit 0 "$OUTPOST" egress-report --output "$T/out.jsonl"
report="$T/report1"
cp "$OUT" "$report"
expect_contains "$report" "region EU-DE"
hash=$(sha256sum "$TESTS_DIR/../schema/regions/EU-DE.yaml" | cut -d' ' -f1)
expect_contains "$report" "hash:   $hash"
expect_contains "$report" "tombstones are not included"
expect_contains "$report" "users: node-local, never leave the node whatever the policy"

# "field class as-is pseudonymized withheld" for contacts, spaces squeezed
row() {
    awk -v f="$1" '/^contacts:/ {on = 1; next} /^$/ {on = 0} on && $1 == f {print $1, $2, $3, $4, $5}' "$report"
}
check_row() {
    local got
    got=$(row "$1")
    [ "$got" = "$2" ] || die "contacts row for $1: expected '$2', got '$got'"
}
check_row email "email pseudonymize 0 1 1"
check_row given_name "given_name pseudonymize 0 2 1"
check_row phone "phone pseudonymize 0 1 0"
check_row locality "locality aggregate_only 0 0 1"
check_row job_title "job_title aggregate_only 0 0 1"
check_row country "country exportable 2 0 1"
check_row street "street local_only 0 0 0"
expect_contains "$report" "contacts: 3 records, 2 would leave, 1 withheld whole (1 restricted, 0 pinned)"

# the output: two projections, nothing in clear, private to its owner
out="$T/out.jsonl"
[ "$(wc -l <"$out")" = 2 ] || die "expected 2 lines in the output, got: $(cat "$out")"
[ "$(stat -c %a "$out")" = 600 ] || die "output mode is $(stat -c %a "$out"), not 600"
for secret in canary@example.org canary Canarina Vogel Berlin Einkauf 1234567 Heimlich \
    hidden@example.org Gone; do
    expect_not_contains "$out" "$secret"
done
expect_contains "$out" '{"entity":"contact","record":{"id":"'
expect_not_contains "$out" '"entity":"user"'
expect_contains "$out" '"country":"FR","language":"fr"'
expect_contains "$out" '"email":"h:'
ls "$T" | grep -q 'tmp-' && die "a temporary file was left behind: $(ls "$T")"

if [ $have_sqlite = 1 ] && [ $have_python = 1 ]; then
    # the pseudonym is HMAC-SHA-256 of the normalized value under the node key
    key=$(sqlite3 "$DB" "SELECT value FROM node_meta WHERE key = 'pseudonym_key'")
    [ ${#key} = 64 ] || die "node key is not 64 hex digits: '$key'"
    want=$(python3 -c 'import hmac,hashlib,sys; print("h:" + hmac.new(bytes.fromhex(sys.argv[1]), b"canary@example.org", hashlib.sha256).hexdigest()[:32])' "$key")
    expect_contains "$out" "\"email\":\"$want\""
    python3 -c 'import json,sys
for line in open(sys.argv[1]):
    json.loads(line)' "$out" || die "the output is not JSON lines"
fi

# the same database gives the same bytes
expect_exit 0 "$OUTPOST" egress-report --output "$T/out2.jsonl"
cmp -s "$out" "$T/out2.jsonl" || die "a second run wrote different projections"

# a bad policy file: the loader's FILE:LINE message, exit 3, no output
mkdir -p "$T/p"
cat >"$T/p/EU-DE.yaml" <<'YAML'
format: outpost-region-policy/1
region: EU-DE
country: DE
name: Test
default_clas: local_only
default_basis: "test"
YAML
expect_exit 3 "$OUTPOST" egress-report --policy "$T/p/EU-DE.yaml" --output "$T/bad.jsonl"
expect_contains "$ERR" "$T/p/EU-DE.yaml:5:"
[ -e "$T/bad.jsonl" ] && die "an output was written for a bad policy"
expect_exit 1 "$OUTPOST" egress-report --policy "$T/p/none.yaml"

# a policy that keeps everything: only meta fields leave
cat >"$T/p/EU-DE.yaml" <<'YAML'
format: outpost-region-policy/1
region: EU-DE
country: DE
name: Test
default_class: local_only
default_basis: "test: nothing leaves"
YAML
expect_exit 0 "$OUTPOST" egress-report --policy "$T/p/EU-DE.yaml" --output "$T/min.jsonl"
expect_contains "$OUT" "$T/p/EU-DE.yaml"
expect_contains "$OUT" "hash:   $(sha256sum "$T/p/EU-DE.yaml" | cut -d' ' -f1)"
expect_not_contains "$T/min.jsonl" '"country"'
expect_not_contains "$T/min.jsonl" '"email"'
expect_contains "$T/min.jsonl" '"deleted":false}}'

# a policy HQ sent through the mailbox (policy-override.yaml beside the
# database) is what sync projects under, so the report uses it too
cp "$T/p/EU-DE.yaml" "$(dirname "$DB")/policy-override.yaml"
expect_exit 0 "$OUTPOST" egress-report
expect_contains "$OUT" "hash:   $(sha256sum "$T/p/EU-DE.yaml" | cut -d' ' -f1)"
rm "$(dirname "$DB")/policy-override.yaml"

# the policy of another region is refused
expect_exit 1 "$OUTPOST" egress-report --policy "$TESTS_DIR/../schema/regions/BR.yaml"
expect_contains "$ERR" "is the policy of BR, but this node is in EU-DE"

if [ $have_sqlite = 1 ]; then
    after=$(sqlite3 "$DB" "SELECT * FROM contacts ORDER BY id" | sha256sum)
    [ "$before" = "$after" ] || die "egress-report changed the contacts"

    # a node initialized before keys existed gets one on first use
    sqlite3 "$DB" "DELETE FROM node_meta WHERE key = 'pseudonym_key'"
    expect_exit 0 "$OUTPOST" egress-report
    n=$(sqlite3 "$DB" "SELECT count(*) FROM node_meta WHERE key = 'pseudonym_key'")
    [ "$n" = 1 ] || die "no key was made on first use"

    # a region without a profile: a clear message naming what was looked for
    sqlite3 "$DB" "UPDATE node_meta SET value = 'XX-YY' WHERE key = 'region'"
    expect_exit 1 "$OUTPOST" egress-report
    expect_contains "$ERR" "no region policy for XX-YY"
    expect_contains "$ERR" "XX-YY.yaml"
fi

pass
