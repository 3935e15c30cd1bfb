#!/bin/bash
# outpost subject export|erase: the export holds the contact with its
# consents and activities (JSON and CSV); erasure asks first, then leaves a
# tombstone that no search finds, passes `outpost check`, leaves no trace of
# the old values in the database files, queues the erasure for HQ, and
# keeps the address suppressed when it is imported again.
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3
node_dir cd
init_node EU-DE

expect_exit 0 "$OUTPOST" subject --help
expect_contains "$OUT" "usage: outpost subject export CONTACT_ID"
expect_exit 2 "$OUTPOST" subject
expect_exit 2 "$OUTPOST" subject delete x
expect_exit 2 "$OUTPOST" subject export x --format xml
expect_exit 2 "$OUTPOST" subject erase x --format csv
expect_exit 5 "$OUTPOST" subject export 0190b5a0-0000-7000-8000-000000000000

expect_exit 0 "$OUTPOST" contact add --given-name Zofia --family-name Canarywska \
    --email zofia.canarywska@example.org --phone "030 5550123" --street "Canarystraße 17"
cid=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$cid" ] || die "no id in: $(cat "$OUT")"
expect_exit 0 "$OUTPOST" contact add --family-name Keller --email keller@example.org

# An activity and a consent with evidence, set up directly (the CLI has no
# command for activities).
sqlite3 "$DB" "
INSERT INTO activities (id, version, created_hlc, updated_hlc, channel, direction, body,
                        occurred_at, contact_id)
VALUES ('0190b5a0-0000-7000-8000-0000000000a1', 1, 1, 1, 'call', 'outbound',
        'CANARY-call-7310', '2026-10-01T10:00:00Z', '$cid');
INSERT INTO consents (id, version, created_hlc, updated_hlc, contact_id, channel, purpose, kind,
                      status, method, evidence, requested_at)
VALUES ('0190b5a0-0000-7000-8000-0000000000c1', 1, 1, 1, '$cid', 'email', 'newsletter',
        'marketing', 'granted', 'single_opt_in',
        '{\"ip\":\"203.0.113.77\",\"source\":\"CANARY-form-5521\"}', '2026-09-01T08:00:00Z');" ||
    die "cannot set up records"

expect_exit 0 "$OUTPOST" subject export "$cid"
expect_contains "$OUT" '"format": "outpost-subject-export/1"'
expect_contains "$OUT" '"email": "zofia.canarywska@example.org"'
expect_contains "$OUT" '"body": "CANARY-call-7310"'
expect_contains "$OUT" '"ip": "203.0.113.77"'
expect_contains "$OUT" '"action": "create"'
expect_not_contains "$OUT" "keller@example.org"
expect_exit 0 "$OUTPOST" subject export "$cid" --format csv --output "$T/zofia.csv"
expect_contains "$OUT" "exported contact $cid to $T/zofia.csv"
expect_contains "$T/zofia.csv" "entity,id,field,value"
expect_contains "$T/zofia.csv" "consent,0190b5a0-0000-7000-8000-0000000000c1,evidence,"
expect_contains "$T/zofia.csv" "activity,0190b5a0-0000-7000-8000-0000000000a1,body,CANARY-call-7310"
[ "$(stat -c %a "$T/zofia.csv")" = 600 ] || die "the export file is not mode 0600"

# not confirmed: nothing changes
before=$(sqlite3 "$DB" "SELECT count(*) FROM audit_log")
expect_exit 1 "$OUTPOST" subject erase "$cid" </dev/null
expect_contains "$ERR" "not confirmed; nothing was changed"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM audit_log")" = "$before" ] || die "unconfirmed erase wrote"
echo no | "$OUTPOST" subject erase "$cid" >/dev/null 2>&1 && die "erase went on after 'no'"

echo erase | "$OUTPOST" subject erase "$cid" --reason "ticket 4711" >"$OUT" 2>"$ERR" ||
    die "erase failed: $(cat "$ERR")"
expect_contains "$OUT" "erased contact $cid: 3 records, 1 activity, 1 consent"
expect_contains "$OUT" "queued for HQ"

expect_exit 0 "$OUTPOST" search Canarywska
expect_not_contains "$OUT" "$cid"
expect_exit 0 "$OUTPOST" search zofia
expect_not_contains "$OUT" "$cid"
expect_exit 0 "$OUTPOST" check
got=$(sqlite3 "$DB" "SELECT count(*) FROM erasures WHERE subject_id = '$cid' AND sent_at_ms IS NULL")
[ "$got" = 3 ] || die "expected 3 erasures queued, got $got"
for canary in Canarywska canarywska@example CANARY-call-7310 CANARY-form-5521 203.0.113.77 \
    Canarystra 5550123; do
    if grep -qa -- "$canary" "$DB" "$DB-wal" 2>/dev/null; then
        die "'$canary' is still in the database files after the erasure"
    fi
done
grep -qa "keller@example.org" "$DB" || die "the scan cannot see what is there"

# again: nothing left to do
expect_exit 0 "$OUTPOST" subject erase "$cid" --yes
expect_contains "$OUT" "was already erased; nothing to do"

# the same address comes back through an import: it stays suppressed
printf 'given_name,family_name,email\r\nZofia,Canarywska,Zofia.Canarywska@example.org\r\n' >"$T/again.csv"
expect_exit 0 "$OUTPOST" import "$T/again.csv"
nid=$(sqlite3 "$DB" "SELECT id FROM contacts WHERE deleted = 0 AND email = 'Zofia.Canarywska@example.org'")
[ -n "$nid" ] || die "re-imported contact not found"
if "$OUTPOST" consent --help >/dev/null 2>&1; then
    expect_exit 1 "$OUTPOST" consent check "$nid" email newsletter
    expect_contains "$OUT" "suppress"
fi
got=$(sqlite3 "$DB" "SELECT count(*) FROM suppressions WHERE channel = 'email'")
[ "$got" = 1 ] || die "expected the e-mail address on the suppression list, got $got rows"
pass
