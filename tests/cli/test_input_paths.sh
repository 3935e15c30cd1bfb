#!/bin/bash
# Every CLI input path refuses the same hostile custom values with the same
# rule and changes nothing: `outpost contact add`, `outpost contact update`,
# and `outpost import` (real and --dry-run) with custom.NAME columns and
# with a JSON `custom` column. The values are the shared table
# tests/cli/policy/hostile_custom.tsv, each under its region's shipped
# profile; the database's checksum is the same before and after each one.
# A value a rule accepts is stored in its normalized form, whatever the path.
set -u
. "$TESTS_DIR/cli/lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
. "$TESTS_DIR/cli/policy/hostile_lib.sh"
T=$(mktmp)

# Points OUTPOST_DB at the node of a region: made on first use, with one
# valid contact (the target of the updates) whose id is in DB.id.
export OUTPOST_DB
node() {
    OUTPOST_DB="$T/$1.db"
    if [ ! -f "$OUTPOST_DB" ]; then
        expect_exit 0 "$OUTPOST" init --region "$1"
        expect_exit 0 "$OUTPOST" contact add --given-name Valid --family-name Person \
            --email "valid@example.org"
        sed -n 's/^created contact \([0-9a-f-]*\).*/\1/p' "$OUT" >"$OUTPOST_DB.id"
        [ -s "$OUTPOST_DB.id" ] || die "no id from contact add: $(cat "$OUT")"
    fi
}

# A CSV cell: quoted, quotes doubled.
cell() {
    local v=${1//\"/\"\"}
    printf '"%s"' "$v"
}

# The import of FILE is refused, real and dry run, with WANT and one problem.
import_refused() {
    local file=$1 want=$2
    expect_exit 3 "$OUTPOST" import "$file"
    expect_contains "$ERR" "outpost import: $T/$want"
    expect_contains "$ERR" "nothing imported from"
    expect_exit 3 "$OUTPOST" import --dry-run "$file"
    expect_contains "$ERR" "outpost import: $T/$want"
    expect_contains "$ERR" "dry run: 1 problem found, nothing changed"
}

n=0
while IFS=$'\t' read -r -u 3 region name key json text json_msg text_msg; do
    node "$region"
    id=$(cat "$OUTPOST_DB.id")
    before=$(db_checksum "$OUTPOST_DB")

    expect_exit 3 "$OUTPOST" contact add --family-name Hostile --custom "$key=$text"
    expect_contains "$ERR" "outpost contact: custom.$key: $text_msg"
    expect_exit 3 "$OUTPOST" contact update "$id" --version 1 --custom "$key=$text"
    expect_contains "$ERR" "outpost contact: custom.$key: $text_msg"

    # A valid row first: all or nothing means it goes too.
    printf 'family_name,email,custom.%s\r\nGood,good@example.org,\r\nHostile,hostile@example.org,%s\r\n' \
        "$key" "$(cell "$text")" >"$T/names.csv"
    import_refused "$T/names.csv" "names.csv:3:3 (custom.$key): $text_msg"

    printf 'family_name,email,custom\r\nGood,good@example.org,\r\nHostile,hostile@example.org,%s\r\n' \
        "$(cell "{\"$key\":$json}")" >"$T/json.csv"
    import_refused "$T/json.csv" "json.csv:3:3 (custom): custom.$key: $json_msg"

    [ "$(db_checksum "$OUTPOST_DB")" = "$before" ] ||
        die "$region $name: a refused write changed the database"
    n=$((n + 1))
done 3< <(hostile_cases)
[ "$n" -ge 10 ] || die "only $n cases in $HOSTILE_TABLE"

# Accepted values are stored as the rule normalizes them, so a pin
# compares like with like: " prescribed " in a JSON column is "prescribed".
node KE
printf 'family_name,custom\r\nPinned,%s\r\n' "$(cell '{"processing_category":" prescribed "}')" \
    >"$T/pin.csv"
expect_exit 0 "$OUTPOST" import "$T/pin.csv"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT custom FROM contacts WHERE family_name = 'Pinned'")" = \
    '{"processing_category":"prescribed"}' ] || die "the pin value was not normalized"
pass
