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
