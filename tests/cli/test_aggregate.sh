#!/bin/bash
# outpost aggregate: the admin sees what would leave, after disclosure
# control: small districts are not named and small cells are suppressed
# (with their complements), canary values planted in row-level fields
# never appear; a region whose policy leaves an aggregate out refuses it
# with the reason, a parameter off the grid is refused naming the grid,
# and a refusal writes nothing; asking again after one more contact gives
# the same answer (no difference to isolate them by).
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3
node_dir cd
init_node EU-DE

expect_exit 0 "$OUTPOST" aggregate --help
expect_contains "$OUT" "usage: outpost aggregate list"
expect_exit 2 "$OUTPOST" aggregate

# 24 contacts in Bayern, 11 in Berlin, 2 in Bremen; canaries in the
# fields that never leave as values
add() { # N REGION
    local i
    for i in $(seq 1 "$1"); do
        "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-g-$2-$i" \
            --family-name CANARY-f --email "canary$i@example.org" --locality CANARY-loc \
            --postal-code CANARY-99 --region "$2" >/dev/null || die "contact add"
    done
}
add 24 Bayern
add 11 Berlin
add 2 Bremen

expect_exit 0 "$OUTPOST" aggregate list
expect_contains "$OUT" "contacts_by_segment_district       allowed"

before=$(db_checksum "$DB")
expect_exit 3 "$OUTPOST" aggregate contacts_by_segment_district as_of=2001-01
expect_contains "$ERR" "as_of=2001-01 is off the grid: a snapshot is answered only for the current month"
expect_exit 3 "$OUTPOST" aggregate activities_by_channel_week since=2026-01-01
expect_contains "$ERR" "unknown parameter 'since'; it takes only quarter=YYYY-Qn"
expect_exit 5 "$OUTPOST" aggregate contacts_by_postcode
expect_contains "$ERR" "contacts_by_postcode is not a shipped aggregate"
[ "$(db_checksum "$DB")" = "$before" ] || die "a refused aggregate changed the database"

expect_exit 0 "$OUTPOST" aggregate contacts_by_segment_district --json
first=$(cat "$OUT")
expect_not_contains "$OUT" "Bremen"
expect_not_contains "$OUT" "CANARY"
expect_not_contains "$OUT" "canary"
expect_contains "$OUT" '"cols":["(other)","Bayern","Berlin"]'
expect_contains "$OUT" '"cells":[{"n":null,"s":"primary"},{"n":24},{"n":null,"s":"secondary"}]'
expect_contains "$OUT" '"total":{"n":37}'
expect_exit 0 "$OUTPOST" aggregate contacts_by_segment_district
expect_contains "$OUT" "(none)                                *             24              +             37"

# differencing: one more person in Berlin, then the same question
add 1 Berlin
expect_exit 0 "$OUTPOST" aggregate contacts_by_segment_district --json
[ "$(cat "$OUT")" = "$first" ] || die "the second answer differs from the first: $(cat "$OUT")"

expect_exit 0 "$OUTPOST" aggregate completeness_by_field --json
expect_not_contains "$OUT" "CANARY"
expect_not_contains "$OUT" '"key":"postal_code"' # local_only in EU-DE: not even counted
expect_contains "$OUT" '"key":"locality"'

# calibrated noise (aggregates.noise): not in the shipped EU-DE profile
expect_exit 0 "$OUTPOST" aggregate --budget
expect_contains "$OUT" "the EU-DE policy adds no noise to aggregates"
# a copy that asks for it, with a budget of two answers a month
node_dir noise
init_node EU-DE
mkdir -p noisy && NOISY="$PWD/noisy/EU-DE.yaml"
sed '/^  queries:/a\  noise: {mechanism: geometric, epsilon: 0.5, budget: 1, period: month}' \
    "$TESTS_DIR/../schema/regions/EU-DE.yaml" >"$NOISY" || die "sed"
export OUTPOST_POLICY="$NOISY"
add 24 Bayern
add 11 Berlin
month=$(date -u +%Y-%m)
expect_exit 0 "$OUTPOST" aggregate --budget
expect_contains "$OUT" "epsilon 0.5 per answer, 1 per month"
expect_contains "$OUT" "$month: spent 0, left 1 (2 more answers)"
expect_exit 0 "$OUTPOST" aggregate contacts_by_segment_district --json
expect_contains "$OUT" "\"noise\":{\"mechanism\":\"geometric\",\"epsilon\":0.5,\"period\":\"$month\"}"
expect_not_contains "$OUT" "CANARY"
noisy=$(cat "$OUT")
expect_exit 0 "$OUTPOST" aggregate --budget
expect_contains "$OUT" "$month: spent 0.5, left 0.5 (1 more answers)"
# the kept answer again: the same bytes, nothing spent
expect_exit 0 "$OUTPOST" aggregate contacts_by_segment_district --json
[ "$(cat "$OUT")" = "$noisy" ] || die "the kept noisy answer changed: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" aggregate completeness_by_field --json
expect_exit 0 "$OUTPOST" aggregate --budget
expect_contains "$OUT" "$month: spent 1, left 0 (0 more answers)"
before=$(db_checksum "$DB")
expect_exit 1 "$OUTPOST" aggregate consent_rates_by_channel_purpose
expect_contains "$ERR" "the EU-DE privacy budget for $month is spent: 1.000000 of 1.000000 used, and an answer costs 0.500000; it renews with the next month (aggregates.noise)"
[ "$(db_checksum "$DB")" = "$before" ] || die "a refusal for the budget changed the database"
unset OUTPOST_POLICY

# CN leaves the district counts out of its aggregates
node_dir cd
init_node CN
expect_exit 1 "$OUTPOST" aggregate contacts_by_segment_district
expect_contains "$ERR" "contacts_by_segment_district is not allowed by the CN policy (aggregates.queries)"
expect_exit 0 "$OUTPOST" aggregate list
expect_contains "$OUT" "consent_rates_by_channel_purpose   refused: consent_rates_by_channel_purpose is not allowed by the CN policy"
pass
