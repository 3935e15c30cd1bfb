#!/bin/bash
# A field a shipped region profile forbids (IN: Aadhaar numbers, which
# private businesses may not collect) is refused by `contact add` and by
# the CSV import, naming the rule and its legal basis, and nothing changes.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir
init_node IN

expect_exit 3 "$OUTPOST" contact add --given-name Priya --family-name Sharma --custom aadhaar=123412341234
expect_contains "$ERR" "custom.aadhaar: not collected in IN"
expect_contains "$ERR" "Puttaswamy"

printf 'given_name,family_name,email,custom.aadhaar\r\nRavi,Kumar,ravi@example.in,\r\nPriya,Sharma,priya@example.in,123412341234\r\n' >"$T/in.csv"
expect_exit 3 "$OUTPOST" import "$T/in.csv"
expect_contains "$ERR" "in.csv:3:4 (custom.aadhaar)"
expect_contains "$ERR" "not collected in IN"
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts")" = 0 ] || die "the refused import wrote rows"

# The same file without the column imports.
printf 'given_name,family_name,email\r\nRavi,Kumar,ravi@example.in\r\n' >"$T/ok.csv"
expect_exit 0 "$OUTPOST" import "$T/ok.csv"
expect_contains "$OUT" "imported 1 contacts"
pass
