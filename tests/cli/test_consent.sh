#!/bin/bash
# outpost consent add|confirm|withdraw|check|list as staff drive them on an
# EU-DE node (e-mail is double opt-in, calls single opt-in, direct mail
# opt-out in the shipped policy).
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir
unset OUTPOST_POLICY
init_node EU-DE
q() { sqlite3 "$DB" "$1"; }

expect_exit 0 "$OUTPOST" consent --help
expect_contains "$OUT" "usage: outpost consent add CONTACT"

expect_exit 0 "$OUTPOST" contact add --family-name Lima --email Ana@Example.org
A=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$A" ] || die "no contact id in: $(cat "$OUT")"

# Usage errors: exit 2, nothing opened.
expect_exit 2 "$OUTPOST" consent check "$A" email
expect_contains "$ERR" "CONTACT CHANNEL PURPOSE are missing"
expect_exit 2 "$OUTPOST" consent check "$A" email newsletter extra
expect_contains "$ERR" "unexpected argument 'extra'"
expect_exit 2 "$OUTPOST" consent check "$A" email newsletter --bogus
expect_exit 2 "$OUTPOST" consent add "$A" --channel email --purpose newsletter
expect_contains "$ERR" "--method is required"
expect_exit 2 "$OUTPOST" consent frobnicate
expect_contains "$ERR" "unknown subcommand 'frobnicate'"

# Nothing on file: not allowed, exit 1, with the rule and its basis.
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "not allowed"
expect_contains "$OUT" "EU-DE email is double opt-in (UWG §7(2) Nr. 2"
expect_contains "$OUT" "no consent on file for 'newsletter'"

# Double opt-in: the token is printed once, alone on stdout; pending until confirmed.
expect_exit 0 "$OUTPOST" consent add "$A" --channel email --purpose newsletter \
    --method double_opt_in --source "web form" --text-version v3
TOKEN=$(cat "$OUT")
[ "${#TOKEN}" = 43 ] || die "expected a 43-character token, got '$TOKEN'"
expect_contains "$ERR" "pending"
[ "$(q "SELECT count(*) FROM consent_tokens WHERE token_hash = '$TOKEN'")" = 0 ] ||
    die "the token is stored in clear"
[ "$(q "SELECT json_extract(evidence, '$.text_version') FROM consents")" = v3 ] ||
    die "evidence.text_version not recorded"
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "not allowed"
expect_contains "$OUT" "is pending confirmation"

expect_exit 5 "$OUTPOST" consent confirm "not-a-token"
expect_contains "$ERR" "unknown confirmation token"
expect_exit 0 "$OUTPOST" consent confirm "$TOKEN"
expect_contains "$OUT" "confirmed consent "
expect_exit 4 "$OUTPOST" consent confirm "$TOKEN"
expect_contains "$ERR" "already used"

expect_exit 0 "$OUTPOST" consent check "$A" email newsletter
[ "$(head -1 "$OUT")" = allowed ] || die "expected 'allowed' first, got: $(cat "$OUT")"
expect_contains "$OUT" "consent for 'newsletter' confirmed"
expect_exit 0 "$OUTPOST" consent list "$A"
expect_contains "$OUT" "granted"
expect_contains "$OUT" "double_opt_in"

# Transactional: allowed without consent.
expect_exit 0 "$OUTPOST" consent check "$A" email orders --kind transactional
expect_contains "$OUT" "transactional messages are not marketing"

# Withdraw: effective at once, and the address is suppressed.
expect_exit 0 "$OUTPOST" consent withdraw "$A" --channel email --purpose newsletter
expect_contains "$OUT" "effective now"
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "suppression list"
[ "$(q "SELECT count(*) FROM suppressions WHERE length(hash) = 64 AND hash NOT GLOB '*[^0-9a-f]*'")" = 1 ] ||
    die "expected one suppression, a 64-digit hex hash: $(q "SELECT * FROM suppressions")"

# Single opt-in (calls in EU-DE) needs the source.
before=$(q "SELECT count(*) FROM consents")
expect_exit 3 "$OUTPOST" consent add "$A" --channel call --purpose offers --method verbal
expect_contains "$ERR" "evidence.source"
[ "$(q "SELECT count(*) FROM consents")" = "$before" ] || die "a refused add changed the ledger"
expect_exit 0 "$OUTPOST" consent add "$A" --channel call --purpose offers --method verbal \
    --source "phone call 2026-11-24"
expect_contains "$OUT" "(granted)"
expect_exit 0 "$OUTPOST" consent check "$A" call offers
expect_contains "$OUT" "single opt-in"

# Opt-out: allowed until an objection.
expect_exit 0 "$OUTPOST" consent check "$A" direct_mail catalogue
expect_contains "$OUT" "no objection on file"
expect_exit 0 "$OUTPOST" consent withdraw "$A" --channel direct_mail --purpose catalogue
expect_exit 1 "$OUTPOST" consent check "$A" direct_mail catalogue
expect_contains "$OUT" "withdrawn"

# Bad input and unknown records.
expect_exit 3 "$OUTPOST" consent check "$A" fax newsletter
expect_contains "$ERR" "channel: unknown value 'fax'"
expect_exit 5 "$OUTPOST" consent check 0190aaaa-0000-7000-8000-000000000000 email newsletter
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter --policy "$T/missing.yaml"
expect_contains "$ERR" "cannot open"

# --policy: another region's file is refused for this node.
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter \
    --policy "$TESTS_DIR/../schema/regions/BR.yaml"
expect_contains "$ERR" "is the policy of BR, but this node is in EU-DE"
pass
