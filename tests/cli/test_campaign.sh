#!/bin/bash
# outpost campaign create|list|show|dry-run|start|pause|cancel on an EU-DE
# node: a campaign from key=value lines and from JSON, bad files refused
# naming the line or member with nothing stored, the dry run counting the
# consent ledger's refusals by reason, and the state changes with their
# exit codes (docs/CLI.md). Campaigns on print and sms: their templates,
# the address each needs and the consent channel that decides it.
set -u
. "$TESTS_DIR/cli/lib.sh"
node_dir
unset OUTPOST_POLICY
init_node EU-DE
q() { sqlite3 "$DB" "$1"; }
need sqlite3

expect_exit 0 "$OUTPOST" campaign --help
expect_contains "$OUT" "usage: outpost campaign create FILE"
for who in "Lima ana@example.org de" "Noor noor@example.org fr" "Kein - de"; do
    set -- $who
    if [ "$2" = - ]; then
        expect_exit 0 "$OUTPOST" contact add --family-name "$1" --language "$3" --country DE
    else
        expect_exit 0 "$OUTPOST" contact add --family-name "$1" --email "$2" --language "$3" --country DE
    fi
done
A=$(q "SELECT id FROM contacts WHERE family_name = 'Lima'")
TOK=$("$OUTPOST" consent add "$A" --channel email --purpose newsletter --method double_opt_in \
    --source "web form" 2>/dev/null | head -n1)
expect_exit 0 "$OUTPOST" consent confirm "$TOK"

cat >"$T/c.txt" <<'KV'
# the winter letter
name=Winter
channel=email
purpose=newsletter
fallback_language=en
segment.country=DE,AT
segment.language=de,fr
template.de.subject=Neues für {{given_name}}
template.de.body=Hallo {{name}},\nder Winter ist da.
template.en.subject=News
template.en.body=Hello {{name}}
KV
# bad files: exit 3 naming the line or the member, nothing stored
printf 'name=Winter\nnot a pair\n' >"$T/bad1.txt"
expect_exit 3 "$OUTPOST" campaign create "$T/bad1.txt"
expect_contains "$ERR" "line 2: expected key=value"
sed 's/segment.country=DE,AT/segment.country=DE,Austria/' "$T/c.txt" >"$T/bad2.txt"
expect_exit 3 "$OUTPOST" campaign create "$T/bad2.txt"
expect_contains "$ERR" 'segment.country[1]: "Austria" is not an ISO 3166-1 code'
sed 's/fallback_language=en/fallback_language=pt/' "$T/c.txt" >"$T/bad3.txt"
expect_exit 3 "$OUTPOST" campaign create "$T/bad3.txt"
expect_contains "$ERR" "fallback_language: expected one of the templates' languages"
echo '{"name": "x", "channel": ' >"$T/bad4.json"
expect_exit 3 "$OUTPOST" campaign create "$T/bad4.json"
expect_contains "$ERR" "bad4.json:"
[ "$(q "SELECT count(*) FROM campaigns")" = 0 ] || die "a refused file stored a campaign"

expect_exit 0 "$OUTPOST" campaign create "$T/c.txt"
expect_contains "$OUT" "campaign 1 created (draft)"
expect_exit 0 "$OUTPOST" campaign show 1
expect_contains "$OUT" '"body": "Hallo {{name}},\nder Winter ist da."'
expect_contains "$OUT" '"state": "draft"'
# the dry run: Lima consented; Noor never asked; Kein has no address
expect_exit 0 "$OUTPOST" campaign dry-run 1
expect_contains "$OUT" '"would_send": 1'
expect_contains "$OUT" '"no_address": 1'
expect_contains "$OUT" '"none": 1'
expect_contains "$OUT" '"de": 1'
[ "$(q "SELECT count(*) FROM outreach_messages WHERE campaign_id IS NOT NULL")" = 0 ] || die "the dry run wrote messages"

# the same campaign as JSON from stdin
"$OUTPOST" campaign show 1 | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(json.dumps({k: c[k] for k in ("name", "segment", "channel", "purpose", "templates", "fallback_language")}))' \
    >"$T/c.json" || die "cannot write the campaign as JSON"
expect_exit 0 "$OUTPOST" campaign create - <"$T/c.json"
expect_contains "$OUT" "campaign 2 created (draft)"

expect_exit 0 "$OUTPOST" campaign start 1
expect_contains "$OUT" "campaign 1 is running"
expect_exit 4 "$OUTPOST" campaign start 1
expect_contains "$ERR" "campaign 1 is running: it cannot start"
expect_exit 0 "$OUTPOST" campaign pause 1
expect_contains "$OUT" "campaign 1 is paused"
expect_exit 0 "$OUTPOST" campaign cancel 2
expect_exit 4 "$OUTPOST" campaign pause 2
expect_exit 0 "$OUTPOST" campaign list
expect_contains "$OUT" "1	paused	Winter	email	0	0	0"
expect_contains "$OUT" "2	cancelled	Winter	email"
expect_exit 0 "$OUTPOST" campaign list --state cancelled
[ "$(wc -l <"$OUT")" = 1 ] || die "list --state cancelled: $(cat "$OUT")"
expect_exit 2 "$OUTPOST" campaign list --state lost
expect_exit 5 "$OUTPOST" campaign show 9
expect_contains "$ERR" "no campaign 9"
expect_exit 2 "$OUTPOST" campaign start abc
expect_exit 2 "$OUTPOST" campaign frobnicate
expect_exit 2 "$OUTPOST" campaign show 1 --state draft

# ---- print and sms: Weiß has a postal address and a phone, the others neither
expect_exit 0 "$OUTPOST" contact add --family-name Weiß --language de --country DE \
    --street "Hauptstraße 5" --postal-code 10115 --locality Berlin --phone "030 901820"
cat >"$T/p.txt" <<'KV'
name=Winter letters
channel=print
purpose=offers
fallback_language=de
segment.country=DE
template.de.subject=Unser Winterangebot
template.de.body=Guten Tag {{name}},\nzwanzig Prozent.
KV
grep -v subject "$T/p.txt" >"$T/bad5.txt"
SUM=$(db_checksum "$DB")
expect_exit 3 "$OUTPOST" campaign create "$T/bad5.txt"
expect_contains "$ERR" "templates.de.subject: expected one line"
sed 's/channel=print/channel=fax/' "$T/p.txt" >"$T/bad6.txt"
expect_exit 3 "$OUTPOST" campaign create "$T/bad6.txt"
expect_contains "$ERR" 'channel: "fax" has no transport on this node (email, sms, print, call)'
[ "$(db_checksum "$DB")" = "$SUM" ] || die "a refused campaign changed the database"
expect_exit 0 "$OUTPOST" campaign create "$T/p.txt"
expect_contains "$OUT" "campaign 3 created (draft)"
# EU-DE: direct mail is opt-out, so Weiß's letter would go; three have no address
expect_exit 0 "$OUTPOST" campaign dry-run 3
expect_contains "$OUT" '"segment": 4'
expect_contains "$OUT" '"would_send": 1'
expect_contains "$OUT" '"no_address": 3'
# an SMS has no subject; EU-DE asks double opt-in for SMS, which Weiß never gave
sed -e 's/channel=print/channel=sms/' -e '/subject/d' "$T/p.txt" >"$T/s.txt"
expect_exit 0 "$OUTPOST" campaign create "$T/s.txt"
expect_contains "$OUT" "campaign 4 created (draft)"
expect_exit 0 "$OUTPOST" campaign dry-run 4
expect_contains "$OUT" '"would_send": 0'
expect_contains "$OUT" '"no_address": 3'
expect_contains "$OUT" '"none": 1'
[ "$(q "SELECT count(*) FROM outreach_messages WHERE campaign_id IS NOT NULL")" = 0 ] || die "a dry run wrote messages"
pass
