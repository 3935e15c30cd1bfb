#!/bin/bash
# outpost contact add|show|list|update|delete as a user drives them.
set -u
. "$TESTS_DIR/cli/lib.sh"
# These tests drive custom fields (tier, note) that no shipped profile
# declares; the fixture policy declares them (tests/cli/policy/EU-DE.yaml).
export OUTPOST_POLICY="$TESTS_DIR/cli/policy/EU-DE.yaml"
node_dir
init_node EU-DE
rows() { sqlite3 "$DB" "SELECT count(*) FROM contacts; SELECT count(*) FROM audit_log" | tr '\n' ' '; }

expect_exit 0 "$OUTPOST" contact add --given-name José --family-name Müller \
    --email jose@example.org --phone "030 1234567" --locality Łódź --custom tier=gold
id=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$id" ] || die "no id in: $(cat "$OUT")"

expect_exit 0 "$OUTPOST" contact show "$id"
expect_contains "$OUT" "given_name   José"
expect_contains "$OUT" "version      1"
expect_exit 0 "$OUTPOST" contact show --json "$id"
expect_contains "$OUT" '"tier": "gold"'

# Probable duplicates are refused with the existing id, unless overridden.
before=$(rows)
expect_exit 4 "$OUTPOST" contact add --given-name J --email JOSE@example.org
expect_contains "$ERR" "probable duplicate of contact $id (same e-mail address)"
expect_exit 4 "$OUTPOST" contact add --given-name J --phone "+49 30 1234567"
expect_contains "$ERR" "same phone number"
expect_exit 4 "$OUTPOST" contact add --given-name J --phone "+49 (0)30 123 4567"
expect_contains "$ERR" "probable duplicate of contact $id (same phone number)"
[ "$(rows)" = "$before" ] || die "a refused duplicate changed the database"
# The same name in the same town is another person: created, with a warning.
expect_exit 0 "$OUTPOST" contact add --given-name jose --family-name muller --locality lodz
expect_contains "$ERR" "warning: contact $id has the same name in the same locality"
expect_exit 0 "$OUTPOST" contact add --skip-duplicate-check --given-name J --email JOSE@example.org

# Bad values: exit 3, field named, nothing changed.
before=$(rows)
expect_exit 3 "$OUTPOST" contact add --given-name Ana --email "ana@"
expect_contains "$ERR" 'email: not an e-mail address: "ana@"'
expect_exit 3 "$OUTPOST" contact add --given-name Ana --country Germany
expect_contains "$ERR" "country: not an ISO 3166-1 alpha-2 country code"
expect_exit 3 "$OUTPOST" contact add --given-name Ana --birth-date 1990-02-30
expect_contains "$ERR" "birth_date: not a date"
expect_exit 3 "$OUTPOST" contact add --given-name "$(head -c 300 /dev/zero | tr '\0' a)"
expect_contains "$ERR" "given_name: longer than 200 bytes"
expect_exit 3 "$OUTPOST" contact add --job-title Engineer
expect_contains "$ERR" "needs at least a name, an e-mail or a phone"
expect_exit 2 "$OUTPOST" contact add --shoe-size 42
expect_contains "$ERR" "unknown option or field '--shoe-size'"
# Without a value too: unknown is unknown, not a missing value.
expect_exit 2 "$OUTPOST" contact add --bogus-flag
expect_contains "$ERR" "unknown option or field '--bogus-flag'"
expect_not_contains "$ERR" "needs a value"
expect_exit 2 "$OUTPOST" contact add --given-name Ana --bogus-flag
expect_contains "$ERR" "unknown option or field '--bogus-flag'"
expect_exit 2 "$OUTPOST" contact list --limit
expect_contains "$ERR" "--limit needs a value"
expect_exit 2 "$OUTPOST" contact add --given-name
expect_contains "$ERR" "--given-name needs a value"
expect_exit 2 "$OUTPOST" contact add --given-name "$(printf 'Jo\xc3\x28')"
expect_contains "$ERR" "not valid UTF-8"
[ "$(rows)" = "$before" ] || die "a refused add changed the database"

# Update needs the current version; a stale one is refused.
expect_exit 2 "$OUTPOST" contact update "$id" --job-title Buyer
expect_contains "$ERR" "--version N is required"
expect_exit 0 "$OUTPOST" contact update "$id" --version 1 --job-title Buyer --custom tier=
expect_contains "$OUT" "updated contact $id (version 2)"
expect_exit 4 "$OUTPOST" contact update "$id" --version 1 --job-title Seller
expect_contains "$ERR" "is at version 2, not 1"
expect_exit 0 "$OUTPOST" contact show --json "$id"
expect_contains "$OUT" '"job_title": "Buyer"'
grep -q '"tier"' "$OUT" && die "custom field not removed by --custom tier="

# List pages through everything with a cursor.
for i in $(seq 1 7); do
    "$OUTPOST" contact add --given-name "P$i" --email "p$i@example.org" >/dev/null || die "add $i"
done
expect_exit 0 "$OUTPOST" contact list --limit 4
[ "$(wc -l < "$OUT")" = 4 ] || die "first page should have 4 rows"
cursor=$(sed -n 's/^more: outpost contact list --after //p' "$ERR")
[ -n "$cursor" ] || die "no cursor for the next page"
expect_exit 0 "$OUTPOST" contact list --limit 4 --after "$cursor"
[ "$(wc -l < "$OUT")" = 4 ] || die "second page should have 4 rows"
expect_exit 2 "$OUTPOST" contact list --limit 0
expect_exit 3 "$OUTPOST" contact list --after nonsense
expect_contains "$ERR" "cursor"
expect_exit 0 "$OUTPOST" contact list --json --limit 1000
[ "$(grep -c '"id":' "$OUT")" = 10 ] || die "json list should hold 10 contacts"

# Delete leaves a tombstone: gone from show and list, kept in the table.
expect_exit 4 "$OUTPOST" contact delete "$id" --version 1
expect_exit 0 "$OUTPOST" contact delete "$id" --version 2
expect_contains "$OUT" "tombstone version 3"
expect_exit 5 "$OUTPOST" contact show "$id"
expect_contains "$ERR" "was deleted"
expect_exit 0 "$OUTPOST" contact show --include-deleted "$id"
[ "$(sqlite3 "$DB" "SELECT deleted FROM contacts WHERE id = '$id'")" = 1 ] || die "no tombstone"
expect_exit 5 "$OUTPOST" contact show 0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b
expect_exit 2 "$OUTPOST" contact show
expect_contains "$ERR" "id is missing"

# The audit log names the CLI user for each write.
[ "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log WHERE record_id = '$id'")" = 3 ] ||
    die "expected 3 audit rows for the contact"
sqlite3 "$DB" "SELECT actor FROM audit_log LIMIT 1" | grep -q '^cli:' || die "actor not cli:USER"
pass
