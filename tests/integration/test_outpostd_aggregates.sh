#!/bin/bash
# GET /api/v1/aggregates/NAME on outpostd: the hq role gets the answer
# after disclosure control, and every answer that left is in the egress
# ledger with the caller, the policy hash and the cells as sent (and
# `outpost egress-report` lists it); other roles are refused, so are
# names not shipped, parameters off the grid and, on a CN node,
# aggregates its policy leaves out, each with the reason and nothing
# recorded. Canaries in row-level fields never appear in an answer.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
init_node EU-DE
add_user hq1 hq
add_user maria manager
for i in $(seq 1 23); do
    "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-$i" --family-name CANARY \
        --locality CANARY-town --region Hessen >/dev/null || die "contact add"
done
for i in $(seq 1 12); do
    "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-b$i" --region Bayern \
        >/dev/null || die "contact add"
done
for i in $(seq 1 4); do
    "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-x$i" --region Saarland \
        >/dev/null || die "contact add"
done
HQ=$(api_token hq1) || die "no token"
MGR=$(api_token maria) || die "no token"
start_outpostd

expect_req 403 "aggregates are for the hq role, not manager" GET \
    /api/v1/aggregates/contacts_by_segment_district "$MGR"
expect_req 403 "the hq role has no access to CRM records" GET /api/v1/contacts "$HQ"
expect_req 404 "is not a shipped aggregate" GET /api/v1/aggregates/contacts_by_postcode "$HQ"
expect_req 400 "quarter=2030-Q1 has not ended" GET \
    "/api/v1/aggregates/activities_by_channel_week?quarter=2030-Q1" "$HQ"
expect_req 405 "" POST /api/v1/aggregates/contacts_by_segment_district "$HQ" '{}'
n=$(sqlite3 "$DB" "SELECT count(*) FROM aggregate_egress") || die "sqlite3"
[ "$n" = 0 ] || die "a refusal was recorded as egress ($n rows)"

expect_req 200 '"aggregate":"contacts_by_segment_district"' GET \
    /api/v1/aggregates/contacts_by_segment_district "$HQ"
expect_not_contains "$OUT" CANARY
expect_not_contains "$OUT" Saarland # 4 people: folded into (other), then suppressed
# (other) is 4: primary; Bayern (12) hides with it, or the row total
# 39 would give (other) away
expect_contains "$OUT" '"cells":[{"n":null,"s":"primary"},{"n":null,"s":"secondary"},{"n":23}]'
expect_contains "$OUT" '"total":{"n":39}'
sent=$(cat "$OUT")
row=$(sqlite3 "$DB" "SELECT via || ' ' || requester || ' ' || name || ' ' || params || ' ' ||
                            (policy_hash = json_extract(body, '\$.policy_hash')) FROM aggregate_egress")
case "$row" in "api hq1 contacts_by_segment_district as_of="*" 1") ;; *) die "ledger row: $row" ;; esac
[ "$(sqlite3 "$DB" "SELECT body FROM aggregate_egress")" = "$sent" ] ||
    die "the ledger does not hold the cells as sent"
stop_outpostd

expect_exit 0 "$OUTPOST" egress-report
expect_contains "$OUT" "aggregates sent: 1"
expect_contains "$OUT" "contacts_by_segment_district as_of="
expect_contains "$OUT" "via api to hq1"

# calibrated noise over the API: a profile with aggregates.noise and a
# budget of two answers a month. Each answer says it is noisy and passes
# the egress check; the third is refused (429) with the reason; after a
# restart the spend is still there; a kept answer asked again is free.
node_dir noise
init_node EU-DE
mkdir -p noisy && NOISY="$PWD/noisy/EU-DE.yaml"
sed '/^  queries:/a\  noise: {mechanism: geometric, epsilon: 0.5, budget: 1, period: month}' \
    "$TESTS_DIR/../schema/regions/EU-DE.yaml" >"$NOISY" || die "sed"
export OUTPOST_POLICY="$NOISY"
add_user hq3 hq
for i in $(seq 1 30); do
    "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-n$i" --region Hessen \
        >/dev/null || die "contact add"
done
HQ=$(api_token hq3) || die "no token"
month=$(date -u +%Y-%m)
start_outpostd
expect_req 200 "\"noise\":{\"mechanism\":\"geometric\",\"epsilon\":0.5,\"period\":\"$month\"}" \
    GET /api/v1/aggregates/contacts_by_segment_district "$HQ"
expect_not_contains "$OUT" CANARY
first=$(cat "$OUT")
expect_req 200 '"noise":{' GET /api/v1/aggregates/completeness_by_field "$HQ"
expect_req 429 "the EU-DE privacy budget for $month is spent: 1.000000 of 1.000000 used" \
    GET /api/v1/aggregates/consent_rates_by_channel_purpose "$HQ"
stop_outpostd
start_outpostd
expect_req 429 "privacy budget for $month is spent" \
    GET /api/v1/aggregates/consent_rates_by_channel_purpose "$HQ"
expect_req 200 '"noise":{' GET /api/v1/aggregates/contacts_by_segment_district "$HQ"
[ "$(cat "$OUT")" = "$first" ] || die "the kept noisy answer changed after a restart"
stop_outpostd
[ "$(sqlite3 "$DB" "SELECT spent_micro FROM aggregate_budget WHERE period = '$month'")" = 1000000 ] ||
    die "budget spent: $(sqlite3 "$DB" "SELECT * FROM aggregate_budget")"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM aggregate_answers WHERE name = 'consent_rates_by_channel_purpose'")" = 0 ] ||
    die "a refused answer was kept"
expect_exit 0 "$OUTPOST" egress-report
expect_contains "$OUT" "aggregates sent: 3"
expect_contains "$OUT" "noisy: epsilon 0.5 of the $month privacy budget"
expect_exit 0 "$OUTPOST" aggregate --budget
expect_contains "$OUT" "$month: spent 1, left 0 (0 more answers)"
unset OUTPOST_POLICY

# CN's policy leaves the district counts out
node_dir cd
init_node CN
add_user hq2 hq
HQ=$(api_token hq2) || die "no token"
start_outpostd
expect_req 403 "contacts_by_segment_district is not allowed by the CN policy (aggregates.queries)" \
    GET /api/v1/aggregates/contacts_by_segment_district "$HQ"
expect_req 200 '"aggregate":"completeness_by_field"' GET \
    "/api/v1/aggregates/completeness_by_field" "$HQ"
stop_outpostd
pass
