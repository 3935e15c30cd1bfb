#!/bin/bash
# A token of scope metrics (docs/OUTPOSTD.md "Metrics", docs/CLI.md):
# `outpost token create --scope metrics` makes a token that reads GET
# /metrics (200) and is refused (403) on every record, search, layout,
# consent and aggregate route, reads and writes alike, with nothing
# written; the same user's unscoped token still reads contacts, so the
# refusal is the scope's. A scope that does not exist, or one for a user
# whose role may not read /metrics, is refused with a precise error and no
# token is stored.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
init_node EU-DE
add_user maria manager
add_user ana field
MARIA=$(api_token maria)
[ -n "$MARIA" ] || die "no token for maria"

# ---- refused scopes: precise errors, nothing stored ----
"$OUTPOST" token list >"$T/tokens.before" 2>&1 || die "token list failed"
expect_exit 2 "$OUTPOST" token create --user maria --scope contacts
expect_contains "$ERR" "--scope: unknown scope 'contacts' (expected: metrics)"
[ ! -s "$OUT" ] || die "a refused scope printed a token: $(cat "$OUT")"
expect_exit 2 "$OUTPOST" token create --user maria --scope ''
expect_contains "$ERR" "--scope: unknown scope '' (expected: metrics)"
expect_exit 2 "$OUTPOST" token create --user maria --scope METRICS
expect_contains "$ERR" "unknown scope 'METRICS'"
expect_exit 2 "$OUTPOST" token list --scope metrics
expect_contains "$ERR" "--scope are for create"
# a field user may not read /metrics: a metrics token for one is refused
expect_exit 3 "$OUTPOST" token create --user ana --scope metrics
expect_contains "$ERR" "scope metrics: user 'ana' has the field role"
[ ! -s "$OUT" ] || die "a refused token was printed: $(cat "$OUT")"
"$OUTPOST" token list >"$T/tokens.after" 2>&1 || die "token list failed"
cmp -s "$T/tokens.before" "$T/tokens.after" ||
    die "a refused token create changed the tokens: $(diff "$T/tokens.before" "$T/tokens.after")"

# ---- the metrics token ----
METRICS=$(api_token maria --scope metrics --label prometheus)
[ -n "$METRICS" ] || die "no metrics token for maria"
"$OUTPOST" token list --user maria >"$T/list" 2>&1 || die "token list failed"
grep -E ' metrics +prometheus$' "$T/list" >/dev/null || die "token list shows no metrics scope: $(cat "$T/list")"
grep -E ' all +$' "$T/list" >/dev/null || die "token list shows no unscoped token: $(cat "$T/list")"

start_outpostd
req POST /api/v1/contacts "$MARIA" '{"given_name":"Ada","family_name":"Lovelace"}'
expect_status 201
ID=$(json_field id)
[ -n "$ID" ] || die "no contact id: $(cat "$OUT")"

req GET /metrics "$METRICS"
expect_status 200
expect_contains "$OUT" "outpost_build_info"

# every other route: 403 naming the scope, reads and writes alike
refused() {
    req "$@"
    [ "$STATUS" = 403 ] || die "$1 $2 with the metrics token: expected 403, got $STATUS: $(cat "$OUT")"
    expect_contains "$OUT" "scope metrics: it may read GET /metrics only"
}
for coll in contacts organizations contact_organizations deals activities tasks notes; do
    refused GET "/api/v1/$coll" "$METRICS"
done
refused GET "/api/v1/contacts/$ID" "$METRICS"
refused GET "/api/v1/search?q=ada" "$METRICS"
refused GET /api/v1/layout "$METRICS"
refused GET "/api/v1/contacts/$ID/consents" "$METRICS"
refused GET "/api/v1/contacts/$ID/consents/status" "$METRICS"
refused GET /api/v1/aggregates/contacts_by_channel "$METRICS"
refused POST /api/v1/contacts "$METRICS" '{"given_name":"Eve"}'
refused POST /api/v1/organizations "$METRICS" '{"name":"Evil Corp"}'
refused PATCH "/api/v1/contacts/$ID" "$METRICS" '{"given_name":"Eve"}' 'If-Match: "1"'
refused DELETE "/api/v1/contacts/$ID" "$METRICS" '' 'If-Match: "1"'
refused POST "/api/v1/contacts/$ID/consents" "$METRICS" \
    '{"channel":"email","purpose":"marketing","status":"granted","method":"form"}'

# nothing the refused writes carried reached the store; the full token
# of the same user still reads the contact
req GET /api/v1/contacts "$MARIA"
expect_status 200
expect_contains "$OUT" '"given_name":"Ada"'
grep -q 'Eve' "$OUT" && die "a refused write reached the store: $(cat "$OUT")"
req GET "/api/v1/contacts/$ID" "$MARIA"
expect_status 200
expect_contains "$OUT" '"version":1'
req GET /api/v1/organizations "$MARIA"
expect_status 200
grep -q 'Evil Corp' "$OUT" && die "a refused organization was stored: $(cat "$OUT")"

# revoked, the metrics token reads nothing
TID=$("$OUTPOST" token list --user maria | awk '/ prometheus$/ {print $1; exit}')
"$OUTPOST" token revoke "$TID" >/dev/null || die "token revoke failed"
req GET /metrics "$METRICS"
expect_status 401
stop_outpostd
pass
