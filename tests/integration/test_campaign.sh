#!/bin/bash
# Campaigns end to end (docs/OUTREACH.md "Campaigns") through outpostd and
# a real SMTP server on 127.0.0.1 (tests/tools/smtp_sink.py): 240 contacts
# in three languages with mixed consent (confirmed, never asked, withdrawn,
# no address); bad campaigns refused with the member named and nothing
# written; the dry run; kill -9 of outpostd while the campaign sends; the
# sink's log then holds exactly the permitted contacts, each once, in
# their language (a template's, else the fallback), with the RFC 8058
# headers; the figures in the API and the CLI match.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
. "$TESTS_DIR/integration/outreach_lib.sh"
unset OUTPOST_POLICY
init_node EU-DE
add_user mgr manager
add_user field field

# ---- 240 contacts: de, pt-BR and fr; every 10th without an e-mail address
N=240
{
    echo "given_name,family_name,email,language,country"
    for i in $(seq 1 $N); do
        case $((i % 3)) in 0) lang=de ;; 1) lang=pt-BR ;; 2) lang=fr ;; esac
        mail="p$i@example.org"
        [ $((i % 10)) = 0 ] && mail=""
        echo "P$i,Person,$mail,$lang,DE"
    done
} >"$T/people.csv"
expect_exit 0 "$OUTPOST" import "$T/people.csv" --skip-duplicate-check
q "SELECT id, given_name, coalesce(email, ''), language FROM contacts ORDER BY given_name" >"$T/ids"
# Consent: i % 4 = 0 never asked; i % 4 = 1 asked, never confirmed; the
# rest confirmed, and i % 8 = 7 of them withdrew afterwards.
declare -A WANT LANG_OF
while IFS='|' read -r id name mail lang; do
    i=${name#P}
    if [ -n "$mail" ] && [ $((i % 4)) != 0 ]; then
        tok=$("$OUTPOST" consent add "$id" --channel email --purpose newsletter \
            --method double_opt_in --source "web form" 2>/dev/null | head -n1)
        [ -n "$tok" ] || die "no token for $id"
        if [ $((i % 4)) != 1 ]; then
            "$OUTPOST" consent confirm "$tok" >/dev/null || die "confirm $id"
            if [ $((i % 8)) = 7 ]; then
                "$OUTPOST" consent withdraw "$id" --channel email --purpose newsletter \
                    >/dev/null || die "withdraw $id"
            else
                WANT[$mail]=1
                case $lang in de) LANG_OF[$mail]=de ;; pt-BR) LANG_OF[$mail]=pt ;; *) LANG_OF[$mail]=en ;; esac
            fi
        fi
    fi
done <"$T/ids"
PERMITTED=${#WANT[@]}
NOADDR=$((N / 10))
[ "$PERMITTED" -gt 60 ] || die "the fixture permits only $PERMITTED"
# the confirmation e-mails the consent requests queued are not the campaign's
CONFIRMATIONS=$(q "SELECT count(*) FROM outreach_messages")

start_sink
write_conf </dev/null
start_outpostd --config "$T/outpostd.conf"
M=$(login mgr)
F=$(login field)
wait_sunk "$CONFIRMATIONS"

# ---- bad campaigns: 400 naming the member, nothing written
GOOD='{"name":"Winter","channel":"email","purpose":"newsletter","segment":{"country":["DE"]},
 "templates":{"de":{"subject":"Neues für {{given_name}}","body":"Hallo {{given_name}},\nder Winter ist da.\n"},
              "pt":{"subject":"Novidades para {{given_name}}","body":"Olá {{given_name}},\no inverno chegou.\n"},
              "en":{"subject":"News for {{given_name}}","body":"Hello {{name}},\nwinter is here.\n"}},
 "fallback_language":"en"}'
SUM=$(db_checksum "$DB" audit_log)
bad() { # MEMBER WORDS JSON
    req POST /api/v1/campaigns "$M" "$3"
    expect_status 400
    expect_contains "$OUT" "\"pointer\":\"/$(echo "$1" | tr '.[' '//' | tr -d ']')\""
    expect_contains "$OUT" "\"detail\":\"$1: "
    expect_contains "$OUT" "$2"
}
bad "segment.country[0]" "ISO 3166-1" "${GOOD/\"DE\"/\"Deutschland\"}"
bad "segment.tags" "unknown filter" "${GOOD/\"country\"/\"tags\"}"
V='{{vorname}}'
bad "templates.de.body" "unknown slot {{vorname}}" "${GOOD/der Winter/$V}"
bad "fallback_language" "templates' languages" "${GOOD/\"fallback_language\":\"en\"/\"fallback_language\":\"fr\"}"
bad "channel" "no transport" "${GOOD/\"email\"/\"fax\"}"
bad "end_at" "after start_at" "${GOOD/\"name\"/\"start_at\":\"2026-12-02T00:00:00Z\",\"end_at\":\"2026-12-01T00:00:00Z\",\"name\"}"
req POST /api/v1/campaigns "$F" "$GOOD"
expect_status 403
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "a refused campaign changed the database"
[ "$(q "SELECT count(*) FROM campaigns")" = 0 ] || die "a refused campaign was stored"

req POST /api/v1/campaigns "$M" "$GOOD"
expect_status 201
expect_contains "$OUT" '"state":"draft"'
CID=$(sed -n 's/.*"id":\([0-9]*\).*/\1/p' "$OUT" | head -n1)
[ "$CID" = 1 ] || die "campaign id: $(cat "$OUT")"

# ---- the dry run: what would go, what not and why; nothing written
req POST "/api/v1/campaigns/$CID/dry-run" "$M"
expect_status 200
"$PY" - "$OUT" "$N" "$PERMITTED" "$NOADDR" <<'PYEOF' || die "dry run: $(cat "$OUT")"
import json, sys
d = json.load(open(sys.argv[1]))
n, permitted, noaddr = map(int, sys.argv[2:5])
assert d["segment"] == n, d
assert d["would_send"] == permitted, (d, permitted)
r = d["refused_by_reason"]
assert r["no_address"] == noaddr, r
assert d["refused"] == n - permitted == sum(r.values()), d
assert set(r) <= {"no_address", "none", "pending", "suppressed", "withdrawn"}, r
assert r["pending"] > 0 and r["none"] > 0 and r["suppressed"] > 0, r
PYEOF
cp "$OUT" "$T/dry.json"
[ "$(q "SELECT count(*) FROM outreach_messages WHERE campaign_id IS NOT NULL")" = 0 ] ||
    die "the dry run wrote messages"

# ---- start; kill -9 while it sends; restart: 0 lost, 0 twice
echo "slow 20" >"$SINK_CTL"
BEFORE=$(sunk)
req POST "/api/v1/campaigns/$CID/start" "$M"
expect_status 200
expect_contains "$OUT" '"state":"running"'
req POST "/api/v1/campaigns/$CID/start" "$M"
expect_status 409
for _ in $(seq 1 300); do
    [ $(($(sunk) - BEFORE)) -ge 40 ] && break
    sleep 0.05
done
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
DPID=""
echo ok >"$SINK_CTL"
start_outpostd --config "$T/outpostd.conf"
for _ in $(seq 1 600); do
    [ "$(q "SELECT state FROM campaigns WHERE id = $CID")" = done ] && break
    sleep 0.1
done
[ "$(q "SELECT state FROM campaigns WHERE id = $CID")" = done ] ||
    die "the campaign did not finish: $(q "SELECT state, count(*) FROM outreach_messages WHERE campaign_id = $CID GROUP BY state")"

# what the sink took of the campaign: one line per message
"$PY" - "$SINK_LOG" >"$T/campaign_sunk" <<'PYEOF'
import email, json, sys
from email import policy
for line in open(sys.argv[1]):
    m = email.message_from_string(json.loads(line)["data"], policy=policy.default)
    if m["Subject"].startswith(("Neues", "Novidades", "News")):
        print(m["X-Outpost-Message"], m["To"], m["Content-Language"],
              "unsub" if m["List-Unsubscribe"] and m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" else "NO-UNSUB",
              m["Subject"].replace(" ", "_"))
PYEOF
dups=$(cut -d' ' -f1 "$T/campaign_sunk" | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || die "sent twice: $(cut -d' ' -f1 "$T/campaign_sunk" | sort | uniq -d | tr '\n' ' ')"
sent=$(q "SELECT count(*) FROM outreach_messages WHERE campaign_id = $CID AND state = 'sent'")
unknown=$(q "SELECT count(*) FROM outreach_messages WHERE campaign_id = $CID AND state = 'unknown'")
[ $((sent + unknown)) = "$PERMITTED" ] ||
    die "lost: $sent sent + $unknown unknown of $PERMITTED permitted"
took=$(wc -l <"$T/campaign_sunk")
[ "$took" -ge "$sent" ] && [ "$took" -le $((sent + unknown)) ] ||
    die "the relay took $took, the node says $sent sent and $unknown unknown"
for id in $(q "SELECT id FROM outreach_messages WHERE campaign_id = $CID AND state = 'sent'"); do
    grep -q "^$id " "$T/campaign_sunk" || die "message $id is recorded as sent but the relay never had it"
done
# exactly the permitted contacts, in their languages, with the headers
while read -r _ to lang unsub subject; do
    [ "${WANT[$to]:-}" = 1 ] || die "a message went to $to, who did not consent"
    [ "$lang" = "${LANG_OF[$to]}" ] || die "$to got $lang, expected ${LANG_OF[$to]}"
    [ "$unsub" = unsub ] || die "$to: no RFC 8058 headers"
    case "$lang:$subject" in de:Neues_für_P* | pt:Novidades_para_P* | en:News_for_P*) ;;
    *) die "$to: subject $subject in $lang" ;; esac
done <"$T/campaign_sunk"
[ $((took + unknown)) -ge "$PERMITTED" ] || die "only $took of $PERMITTED reached the relay"

# ---- the figures: API and CLI
req GET "/api/v1/campaigns/$CID" "$M"
expect_status 200
"$PY" - "$OUT" "$T/dry.json" "$N" "$sent" "$unknown" <<'PYEOF' || die "figures: $(cat "$OUT")"
import json, sys
c = json.load(open(sys.argv[1]))
dry = json.load(open(sys.argv[2]))
n, sent, unknown = map(int, sys.argv[3:6])
f = c["figures"]
assert c["state"] == "done", c["state"]
assert f["planned"] == n, f
assert f["sent"] == sent and f["unknown"] == unknown, f
assert f["refused"] == dry["refused"], (f, dry)
assert f["refused_by_reason"] == dry["refused_by_reason"], (f, dry)
assert f["queued"] == 0 and f["sending"] == 0, f
PYEOF
req GET /api/v1/campaigns "$M"
expect_status 200
expect_contains "$OUT" '"campaigns":[{"id":1'
req GET /api/v1/campaigns "$F"
expect_status 403
req GET /api/v1/campaigns/99 "$M"
expect_status 404
req POST "/api/v1/campaigns/$CID/pause" "$M"
expect_status 409
expect_contains "$OUT" "is done"
expect_exit 0 "$OUTPOST" campaign show "$CID"
expect_contains "$OUT" "\"sent\": $sent"
expect_exit 0 "$OUTPOST" campaign list
expect_contains "$OUT" "1	done	Winter	email	$N	$sent	"
expect_exit 4 "$OUTPOST" campaign start "$CID"
expect_exit 5 "$OUTPOST" campaign show 42
expect_exit 2 "$OUTPOST" campaign show abc
stop_outpostd
echo "ok: campaign over $N contacts: $PERMITTED permitted, $sent sent, $unknown unknown after kill -9, 0 twice" >&2
pass
