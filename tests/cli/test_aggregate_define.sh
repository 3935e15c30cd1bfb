#!/bin/bash
# outpost aggregate with an aggregate the region profile defines
# (aggregates.define): listed by `aggregate list`, answered like a shipped
# one with small rows folded and suppressed and no row-level value; a
# definition not listed in aggregates.queries is refused with the reason
# and nothing written; a profile whose definition counts by free text or
# by a local_only field does not load, the message naming file, line and
# key path.
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3
node_dir cd
mkdir -p "$T/regions"
cp "$TESTS_DIR/../schema/regions/"*.yaml "$T/regions/"
R="$T/regions/EU-DE.yaml"
sed -i 's/^  queries: \[\(.*\)$/  queries: [contacts_by_language_district, \1/' "$R"
cat >>"$R" <<'YAML'
  define:
    - name: contacts_by_language_district
      count: contact
      rows: language
      columns: region
    - name: contacts_by_country_x
      count: contact
      rows: country
YAML
export OUTPOST_REGIONS_DIR="$T/regions"
init_node EU-DE

add() { # N LANGUAGE REGION
    local i
    for i in $(seq 1 "$1"); do
        "$OUTPOST" contact add --skip-duplicate-check --given-name "CANARY-g-$2-$i" \
            --family-name CANARY-f --email "canary$i@example.org" --language "$2" \
            --region "$3" >/dev/null || die "contact add"
    done
}
add 20 de-DE Bayern
add 12 en-GB Bayern
add 15 pl-PL Bayern
add 11 de-DE Berlin
add 10 en-GB Berlin
add 13 pl-PL Berlin
add 3 fr-FR Berlin

expect_exit 0 "$OUTPOST" aggregate list
expect_contains "$OUT" "contacts_by_language_district      allowed (defined by the profile)"
expect_contains "$OUT" "contacts_by_country_x              refused: contacts_by_country_x is not allowed by the EU-DE policy (aggregates.queries)"

before=$(db_checksum "$DB")
expect_exit 1 "$OUTPOST" aggregate contacts_by_country_x
expect_contains "$ERR" "contacts_by_country_x is not allowed by the EU-DE policy (aggregates.queries)"
expect_exit 3 "$OUTPOST" aggregate contacts_by_language_district as_of=2001-01
expect_contains "$ERR" "as_of=2001-01 is off the grid"
[ "$(db_checksum "$DB")" = "$before" ] || die "a refused aggregate changed the database"

expect_exit 0 "$OUTPOST" aggregate contacts_by_language_district --json
expect_contains "$OUT" '"aggregate":"contacts_by_language_district"'
expect_contains "$OUT" '"cols":["Bayern","Berlin"]'
expect_contains "$OUT" '{"key":"de-DE","cells":[{"n":20},{"n":11}]'
expect_contains "$OUT" '{"key":"(other)","cells":[{"n":0},{"n":null,"s":"primary"}]'
expect_contains "$OUT" '"total":{"n":84}'
expect_not_contains "$OUT" "fr-FR"
expect_not_contains "$OUT" "CANARY"
expect_not_contains "$OUT" "canary"

# a definition by free text, or by a field local_only in the profile:
# the profile does not load, and says where and why
cp "$R" "$T/good.yaml"
sed -i 's/^      rows: language$/      rows: locality/' "$R"
expect_exit 1 "$OUTPOST" aggregate list
expect_contains "$ERR" "EU-DE.yaml:"
expect_contains "$ERR" "aggregates.define[0].rows: contact.locality cannot be counted by"
cp "$T/good.yaml" "$R"
sed -i 's/^      rows: country$/      rows: country\n      columns: language/' "$R"
sed -i 's/^  contact.language: {class: exportable/  contact.language: {class: local_only/' "$R"
expect_exit 1 "$OUTPOST" aggregate list
expect_contains "$ERR" "aggregates.define[0].rows: contact.language is local_only in this policy"
pass
