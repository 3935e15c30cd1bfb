#!/bin/bash
# The HTTP API refuses the shared table of hostile custom values
# (tests/cli/policy/hostile_custom.tsv) under each region's shipped profile
# with the same rule as the CLI and the import: on create (POST) and on
# update (PATCH), with `custom` as an object and as JSON text, each answered
# 422 with the pointer /custom/KEY and the store's message, and the
# database unchanged (sessions aside, which every request touches).
set -u
. "$TESTS_DIR/cli/lib.sh"
need curl sqlite3
. "$TESTS_DIR/cli/policy/hostile_lib.sh"
T=$(mktmp)
export OUTPOST_DB

# req METHOD PATH BODY [HEADER]: the status in STATUS, the body in $OUT.
req() {
    local method=$1 path=$2 body=$3 header=${4:-}
    local args=(-s -o "$OUT" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json'
        --data-binary "$body")
    [ -n "${TOKEN:-}" ] && args+=(-H "Authorization: Bearer $TOKEN")
    [ -n "$header" ] && args+=(-H "$header")
    STATUS=$(curl "${args[@]}" "$BASE$path") || die "curl $method $path failed"
}

# Text as the inside of a JSON string.
json_str() {
    local v=${1//\\/\\\\}
    printf '%s' "${v//\"/\\\"}"
}

regions=$(hostile_regions)
n=0
for region in $regions; do
    OUTPOST_DB="$T/$region.db"
    TOKEN=""
    expect_exit 0 "$OUTPOST" init --region "$region"
    printf 'correct horse maria\n' >"$T/pw"
    expect_exit 0 "$OUTPOST" user add maria --role manager --password-stdin <"$T/pw"
    start_outpostd --workers 2
    req POST /api/v1/session '{"name":"maria","password":"correct horse maria"}'
    [ "$STATUS" = 201 ] || die "login: HTTP $STATUS: $(cat "$OUT")"
    TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$OUT")
    [ -n "$TOKEN" ] || die "no token"
    req POST /api/v1/contacts '{"family_name":"Valid","email":"valid@example.org"}'
    [ "$STATUS" = 201 ] || die "valid contact: HTTP $STATUS: $(cat "$OUT")"
    ID=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$OUT")
    before=$(db_checksum "$OUTPOST_DB" sessions api_tokens)

    while IFS=$'\t' read -r -u 3 r name key json _text json_msg _text_msg; do
        [ "$r" = "$region" ] || continue
        obj="{\"$key\":$json}"
        want="\"pointer\":\"/custom/$key\",\"detail\":\"$(json_str "custom.$key: $json_msg")"
        for custom in "$obj" "\"$(json_str "$obj")\""; do
            body="{\"family_name\":\"Hostile\",\"custom\":$custom}"
            req POST /api/v1/contacts "$body"
            [ "$STATUS" = 422 ] || die "$region $name: POST $body: HTTP $STATUS: $(cat "$OUT")"
            expect_contains "$OUT" "$want"
            req PATCH "/api/v1/contacts/$ID" "$body" 'If-Match: "1"'
            [ "$STATUS" = 422 ] || die "$region $name: PATCH $body: HTTP $STATUS: $(cat "$OUT")"
            expect_contains "$OUT" "$want"
        done
        n=$((n + 1))
    done 3< <(hostile_cases)

    [ "$(db_checksum "$OUTPOST_DB" sessions api_tokens)" = "$before" ] ||
        die "$region: a refused request changed the database"
    stop_outpostd
done
[ "$n" -ge 10 ] || die "only $n cases in $HOSTILE_TABLE"
pass
