#!/bin/bash
# Outreach end to end (docs/OUTREACH.md) with a real SMTP server on
# 127.0.0.1 (tests/tools/smtp_sink.py, python3-aiosmtpd): bad configuration
# refused with the key named; the double opt-in confirmation queued and
# sent in the contact's language with RFC 8058 headers; the confirm link
# and the one-click unsubscribe change the consent ledger, forged tokens
# change nothing; 4xx, 5xx and a relay down for a while; kill -9 during a
# send loop of 200 messages: none lost, none sent twice.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
. "$TESTS_DIR/integration/outreach_lib.sh"
unset OUTPOST_POLICY
init_node EU-DE

start_sink
expect_exit 0 "$OUTPOST" contact add --family-name Lima --email ana@example.org --language de-DE
A=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$A" ] || die "no contact id"
expect_exit 0 "$OUTPOST" contact add --family-name Noor --language fr
NOADDR=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
add_user mgr manager
add_user field field

# ---- bad configuration: outpostd exits 2 naming the key; nothing changes
SUM=$(db_checksum "$DB")
bad_conf() { # TEXT, config lines on stdin
    write_conf
    if outpostd_starts --config "$T/outpostd.conf"; then
        die "outpostd started with a bad outreach configuration ($1)"
    fi
    wait "$DPID"
    [ $? = 2 ] || die "expected exit 2 for $1"
    expect_contains "$DAEMON_LOG" "$1"
}
echo "outreach_relay = http://127.0.0.1:25" | bad_conf \
    "outreach_relay: 'http://127.0.0.1:25' is not smtp://HOST[:PORT] (STARTTLS) or smtps://HOST[:PORT]"
printf 'outreach_relay = smtp://relay.branch.example:587\noutreach_allow_plain = false\n' |
    bad_conf "outreach_relay_country: required for a relay that is not on this host"
printf 'outreach_relay = smtp://relay.branch.example:587\noutreach_relay_country = DE\n' |
    bad_conf "outreach_allow_plain: only a relay on loopback may be plain SMTP"
echo "outreach_from = news at branch" | bad_conf "outreach_from: a plain e-mail address is required"
echo "outreach_public_url = ftp://x" | bad_conf "outreach_public_url: an https:// URL"
echo "outreach_rate = 0" | bad_conf "outreach_rate"
echo "outreach_bogus = 1" | bad_conf "outreach_bogus"
[ "$(db_checksum "$DB")" = "$SUM" ] || die "a refused configuration changed the database"

# Residency: a region that keeps personal data in the country refuses a
# relay elsewhere; CAN-SPAM regions need the postal address.
OTHER="$T/ru"
mkdir -p "$OTHER"
OUTPOST_DB="$OTHER/node.db" "$OUTPOST" init --region RU >/dev/null || die "init RU"
printf 'outreach_relay = smtps://relay.branch.example\noutreach_allow_plain = false\noutreach_relay_country = DE\n' |
    write_conf
OUTPOST_DB="$OTHER/node.db" outpostd_starts --config "$T/outpostd.conf" --db "$OTHER/node.db" &&
    die "outpostd started in RU with a relay in DE"
wait "$DPID"
expect_contains "$DAEMON_LOG" "outreach_relay_country: the relay is in DE, but the region profile RU keeps personal data in RU (transfer.allowed: false); use a relay in RU"
# a relay in the country is allowed (the queue is empty: nothing connects)
printf 'outreach_relay = smtps://relay.branch.example\noutreach_allow_plain = false\noutreach_relay_country = RU\n' |
    write_conf
OUTPOST_DB="$OTHER/node.db" start_outpostd --config "$T/outpostd.conf" --db "$OTHER/node.db"
expect_contains "$DAEMON_LOG" "outreach: sending through smtps://relay.branch.example"
stop_outpostd
US="$T/us"
mkdir -p "$US"
OUTPOST_DB="$US/node.db" "$OUTPOST" init --region US-CA >/dev/null || die "init US-CA"
write_conf </dev/null
outpostd_starts --config "$T/outpostd.conf" --db "$US/node.db" &&
    die "outpostd started in US-CA without a postal address"
wait "$DPID"
expect_contains "$DAEMON_LOG" "outreach_postal_address: required in US-CA (CAN-SPAM"

# ---- double opt-in: the confirmation is queued with the consent and sent
write_conf </dev/null
start_outpostd --config "$T/outpostd.conf"
M=$(login mgr)
F=$(login field)
req POST "/api/v1/contacts/$A/consents" "$F" \
    '{"channel":"email","purpose":"newsletter","method":"double_opt_in","evidence":{"source":"web form"}}'
expect_status 201
expect_contains "$OUT" '"confirmation_message":1'
expect_not_contains "$OUT" "confirmation_token"
wait_sunk 1
message 1 >"$T/m1"
expect_contains "$T/m1" "From: news@branch.example"
expect_contains "$T/m1" "To: ana@example.org"
expect_contains "$T/m1" "Content-Language: de"
expect_contains "$T/m1" "Subject: Bitte bestätigen Sie Ihre Anmeldung"
expect_contains "$T/m1" "List-Unsubscribe: <https://crm.branch.example/o/unsubscribe/"
expect_contains "$T/m1" ">, <mailto:news@branch.example?subject=unsubscribe%20"
expect_contains "$T/m1" "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
expect_contains "$T/m1" "bitte bestätigen Sie, dass Sie Nachrichten zum Zweck \"newsletter\""
expect_not_contains "$T/m1" "Example Street" # no postal address outside the US
CTOK=$(sed -n 's|^https://crm.branch.example/o/confirm?t=\([A-Za-z0-9_-]*\)&l=de$|\1|p' "$T/m1")
[ "${#CTOK}" = 43 ] || die "no confirmation link in: $(cat "$T/m1")"
UTOK=$(sed -n 's|^List-Unsubscribe: <https://crm.branch.example/o/unsubscribe/\([A-Za-z0-9_-]*\)?l=de>.*|\1|p' "$T/m1")
[ "${#UTOK}" = 43 ] || die "no unsubscribe token in: $(grep List-Unsubscribe "$T/m1")"
q "SELECT params FROM outreach_messages WHERE id = 1" | grep -q "$CTOK" &&
    die "the sent confirmation message still holds its token"
[ "$(q "SELECT state || ' ' || attempts || ' ' || kind FROM outreach_messages WHERE id = 1")" = "sent 1 transactional" ] ||
    die "message 1 is not recorded as sent: $(q 'SELECT * FROM outreach_messages')"

expect_exit 0 "$OUTPOST" outreach show 1
expect_contains "$OUT" '"state": "sent"'
expect_contains "$OUT" '"template": "confirm"'
expect_contains "$OUT" '"decision": "none"' # the evidence: transactional, nothing on file
expect_contains "$OUT" '"rule": "transactional messages are not marketing: sent without consent unless withdrawn'
expect_exit 5 "$OUTPOST" outreach show 99
expect_contains "$ERR" "no message 99"

# A GET shows a button and confirms nothing (mail scanners follow links).
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' "$BASE/o/confirm?t=$CTOK&l=de")
[ "$STATUS" = 200 ] || die "GET /o/confirm: $STATUS"
expect_contains "$OUT" '<form method="post" action="/o/confirm?l=de">'
expect_contains "$OUT" "Bestätigen"
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
# A forged token: 404, nothing changed.
SUM=$(db_checksum "$DB" audit_log)
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' -d "t=${CTOK%?}x" "$BASE/o/confirm?l=de")
[ "$STATUS" = 404 ] || die "forged confirm token: $STATUS"
expect_contains "$OUT" "Dieser Link ist ungültig"
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "a forged confirm token changed the database"
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' -d "t=$CTOK" "$BASE/o/confirm?l=de")
[ "$STATUS" = 200 ] || die "POST /o/confirm: $STATUS $(cat "$OUT")"
expect_contains "$OUT" "Danke: Ihre Einwilligung ist bestätigt."
expect_exit 0 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "confirmed"

# ---- one-click unsubscribe (RFC 8058)
SUM=$(db_checksum "$DB" audit_log)
for bad in "${UTOK%?}x" "short" "$(printf 'x%.0s' $(seq 1 70))"; do
    STATUS=$(curl -s -o "$OUT" -w '%{http_code}' -d "List-Unsubscribe=One-Click" \
        "$BASE/o/unsubscribe/$bad")
    case "$STATUS" in 400 | 404) ;; *) die "forged unsubscribe token $bad: $STATUS" ;; esac
done
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "a forged unsubscribe token changed the database"
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' "$BASE/o/unsubscribe/$UTOK?l=de")
[ "$STATUS" = 200 ] || die "GET unsubscribe: $STATUS"
expect_exit 0 "$OUTPOST" consent check "$A" email newsletter # a GET changes nothing
STATUS=$(curl -s -o "$OUT" -w '%{http_code}' -H 'Content-Type: application/x-www-form-urlencoded' \
    -d "List-Unsubscribe=One-Click" "$BASE/o/unsubscribe/$UTOK?l=de")
[ "$STATUS" = 200 ] || die "POST unsubscribe: $STATUS $(cat "$OUT")"
expect_contains "$OUT" "Sie sind abgemeldet"
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "on the suppression list"
[ "$(q "SELECT count(*) FROM consents WHERE contact_id = '$A' AND status = 'withdrawn'")" = 1 ] ||
    die "the unsubscribe is not in the consent ledger"

# ---- the manager's list; other roles are refused
req GET "/api/v1/outreach/messages?state=sent" "$M"
expect_status 200
expect_contains "$OUT" '"state":"sent"'
expect_contains "$OUT" '"relay":"smtp://127.0.0.1:'
req GET "/api/v1/outreach/messages" "$F"
expect_status 403
req GET "/api/v1/outreach/messages?state=lost" "$M"
expect_status 400
expect_contains "$OUT" "state: 'lost' is not one of"

# ---- 4xx waits and goes; 5xx fails; requeue sends it
echo temp >"$SINK_CTL"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
wait_grep "$DAEMON_LOG" "message 2: the relay deferred the message: 451" 50
[ "$(q "SELECT state FROM outreach_messages WHERE id = 2")" = queued ] || die "a 451 did not leave the message queued"
echo ok >"$SINK_CTL"
wait_sunk 2
message 2 >"$T/m2"
expect_contains "$T/m2" "Subject: Testnachricht von Outpost"
echo perm >"$SINK_CTL"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
wait_grep "$DAEMON_LOG" "message 3: the relay refused the message: 554" 50
[ "$(q "SELECT state FROM outreach_messages WHERE id = 3")" = failed ] || die "a 554 did not fail the message"
echo ok >"$SINK_CTL"
expect_exit 0 "$OUTPOST" outreach requeue 3
wait_sunk 3
expect_exit 3 "$OUTPOST" outreach requeue 1 # sent: nothing to requeue
expect_contains "$ERR" "message 1 is sent: only unknown or failed messages are requeued"
expect_exit 5 "$OUTPOST" outreach requeue 999
expect_exit 2 "$OUTPOST" outreach requeue abc
expect_contains "$ERR" "'abc' is not a message id"
expect_exit 2 "$OUTPOST" outreach list --state lost
expect_exit 3 "$OUTPOST" outreach send-test "$NOADDR"
expect_contains "$ERR" "has no e-mail address"
expect_exit 2 "$OUTPOST" outreach frobnicate

# ---- the relay down for a while, then back: the messages wait, then go
stop_sink
for _ in 1 2 3; do expect_exit 0 "$OUTPOST" outreach send-test "$A"; done
wait_grep "$DAEMON_LOG" "cannot reach the relay" 50
sleep 1
# (a retry may be under way: queued or sending, never sent)
[ "$(q "SELECT count(*) FROM outreach_messages WHERE id > 3 AND state IN ('queued', 'sending') AND attempts >= 1")" = 3 ] ||
    die "with the relay down the messages should wait: $(q 'SELECT id, state, attempts, error FROM outreach_messages WHERE id > 3')"
start_sink "$SPORT"
wait_sunk 6
stop_outpostd

# ---- kill -9 during a loop of 200 sends: 0 lost, 0 sent twice
FIRST=$(($(q "SELECT max(id) FROM outreach_messages") + 1))
for _ in $(seq 1 200); do echo "INSERT INTO outreach_messages (contact_id, channel, purpose, kind, template, next_try_ms, created_ms) VALUES ('$A', 'email', 'test', 'transactional', 'test', 0, 0);"; done |
    sqlite3 "$DB" || die "cannot queue 200 messages"
LAST=$((FIRST + 199))
echo "slow 20" >"$SINK_CTL"
BEFORE=$(sunk)
start_outpostd --config "$T/outpostd.conf"
for _ in $(seq 1 200); do
    [ $(($(sunk) - BEFORE)) -ge 40 ] && break
    sleep 0.05
done
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
DPID=""
inflight=$(q "SELECT count(*) FROM outreach_messages WHERE state = 'sending'")
echo ok >"$SINK_CTL"
start_outpostd --config "$T/outpostd.conf"
if [ "$inflight" -gt 0 ]; then
    expect_contains "$DAEMON_LOG" "outreach: $inflight message(s) were being sent when outpostd stopped"
fi
left=200
for _ in $(seq 1 450); do
    left=$(q "SELECT count(*) FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state IN ('queued', 'sending')")
    [ "$left" = 0 ] && break
    sleep 0.1
done
stop_outpostd
[ "$left" = 0 ] || die "the queue did not drain in 45 s after the restart: $left of 200 left"
ids() { # the X-Outpost-Message of every message the sink took
    "$PY" -c '
import email, json, sys
for line in open(sys.argv[1]):
    print(email.message_from_string(json.loads(line)["data"])["X-Outpost-Message"])' "$SINK_LOG"
}
ids | sort -n >"$T/ids"
dups=$(uniq -d "$T/ids" | wc -l)
[ "$dups" = 0 ] || die "sent twice: $(uniq -d "$T/ids" | tr '\n' ' ')"
sent=$(q "SELECT count(*) FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state = 'sent'")
unknown=$(q "SELECT count(*) FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state = 'unknown'")
[ $((sent + unknown)) = 200 ] || die "lost: $sent sent + $unknown unknown of 200: $(q "SELECT state, count(*) FROM outreach_messages WHERE id >= $FIRST GROUP BY state")"
[ "$unknown" = "$inflight" ] || die "$inflight were in flight, $unknown are unknown"
# every message recorded as sent is at the sink, and nothing else of the 200 is
for id in $(q "SELECT id FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state = 'sent'"); do
    grep -qx "$id" "$T/ids" || die "message $id is recorded as sent but the relay never had it"
done
took=$(awk -v a="$FIRST" -v b="$LAST" '$1 >= a && $1 <= b' "$T/ids" | wc -l)
[ "$took" -ge "$sent" ] && [ "$took" -le $((sent + unknown)) ] ||
    die "the relay took $took of the 200, the node says $sent sent and $unknown unknown"
expect_exit 0 "$OUTPOST" outreach list --state unknown
[ "$(wc -l <"$OUT")" = "$unknown" ] || die "outreach list --state unknown does not list the $unknown"
echo "ok: kill -9 during 200 sends: $sent sent, $unknown unknown (reported), 0 lost, 0 twice" >&2
pass
