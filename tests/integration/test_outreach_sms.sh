#!/bin/bash
# SMS end to end (docs/OUTREACH.md "SMS") through Debian's Kannel on
# 127.0.0.1: bearerbox and smsbox as the gateway, kannel-extras' fakesmsc
# as the operator (its log is what reached phones). A queue of 30 SMS in
# Swahili, English and Russian (UCS-2) waits through the region's quiet
# hours, then reaches fakesmsc once each with the right coding; the
# delivery reports come back through Kannel's dlr-url and set the
# outcomes; forged or malformed reports and replies change nothing; a
# reply is logged and a STOP by SMS withdraws consent with nothing sent
# back; the gateway down for a while and back (queued, then sent, none
# twice); kill -9 of outpostd during a send loop: none lost, none twice in
# fakesmsc's log, unknown outcomes reported.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
need sqlite3 curl
BB=/usr/sbin/bearerbox
SB=/usr/sbin/smsbox
FAKESMSC=/usr/lib/kannel/test/fakesmsc
for x in "$BB" "$SB" "$FAKESMSC"; do
    [ -x "$x" ] || skip "$x is not installed (packages kannel, kannel-extras)"
done
unset OUTPOST_POLICY
init_node KE
q() { sqlite3 "$DB" "$1"; }

# ---- ports, secrets, Kannel's configuration
read -r ADMIN BOX FAKE FAKEMO SEND OPORT < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
K="$T/kannel"
mkdir -p "$K"
echo "kannel-pw" >"$T/kpw"
echo "mo-secret-$$-$RANDOM" >"$T/mo"
MOSECRET=$(cat "$T/mo")
cat >"$K/kannel.conf" <<CONF
group = core
admin-port = $ADMIN
admin-interface = 127.0.0.1
admin-password = adm
smsbox-port = $BOX
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "$K/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = OPERATOR
port = $FAKE
connect-allow-ip = 127.0.0.1

# the same operator's phones answering: only mobile-originated messages
group = smsc
smsc = fake
smsc-id = PHONES
allowed-smsc-id = PHONES
port = $FAKEMO
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $BOX
sendsms-port = $SEND
sendsms-interface = 127.0.0.1
log-file = "$K/smsbox.log"
log-level = 1

group = sendsms-user
username = outpost
password = kannel-pw
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
omit-empty = true
max-messages = 0
get-url = "http://127.0.0.1:$OPORT/o/sms/mo?k=$MOSECRET&from=%p&text=%a"
CONF
start_bearerbox() {
    "$BB" "$K/kannel.conf" >"$K/bb.out" 2>&1 &
    BBPID=$!
    track "$BBPID"
    for _ in $(seq 1 100); do
        grep -q "MAIN: Start-up done" "$K/bb.out" 2>/dev/null && return 0
        sleep 0.05
    done
    die "bearerbox did not start: $(tail -n 5 "$K/bb.out")"
}
start_smsbox() {
    "$SB" "$K/kannel.conf" >"$K/sb.out" 2>&1 &
    SBPID=$!
    track "$SBPID"
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$SEND/cgi-bin/sendsms" && return 0
        sleep 0.05
    done
    die "smsbox did not start: $(tail -n 5 "$K/sb.out")"
}
stop_smsbox() {
    kill "$SBPID"
    wait "$SBPID" 2>/dev/null
}
start_bearerbox
"$FAKESMSC" -H 127.0.0.1 -r "$FAKE" -i 0.01 -m 0 "0 0 text none" >"$K/phones.log" 2>&1 &
FSPID=$!
track "$FSPID"
start_smsbox
# what reached phones: "number text" (UCS-2 messages as fakesmsc prints them)
got() { sed -n 's/.*Got message [0-9]*: <Outpost \(+[0-9]*\) \(.*\)>$/\1 \2/p' "$K/phones.log"; }
wait_got() { # N: up to 20 s
    for _ in $(seq 1 200); do
        [ "$(got | wc -l)" -ge "$1" ] && return 0
        sleep 0.1
    done
    die "expected $1 messages at fakesmsc, got $(got | wc -l): $(tail -n 5 "$DAEMON_LOG")"
}

# ---- the region profile: KE, with quiet hours moved around now
POL="$T/KE.yaml"
policy_quiet() { # START END (HH:MM, Nairobi time)
    sed "s/^    sms: \"20:00-08:00\"$/    sms: \"$1-$2\"/" "$TESTS_DIR/../schema/regions/KE.yaml" >"$POL"
    grep -q "sms: \"$1-$2\"" "$POL" || die "cannot set the quiet hours in $POL"
}
nbo() { date -u -d "$(($1 + 3)) hours" +%H:%M; } # Nairobi is UTC+3 all year
cp "$TESTS_DIR/../schema/regions/KE.yaml" "$POL"
export OUTPOST_POLICY="$POL"

write_conf() {
    cat >"$T/outpostd.conf" <<CONF
outreach_sms_gateway = kannel:http://127.0.0.1:$SEND/cgi-bin/sendsms
outreach_sms_user = outpost
outreach_sms_password_file = $T/kpw
outreach_sms_from = Outpost
outreach_sms_callback_url = http://127.0.0.1:$OPORT
outreach_sms_mo_secret_file = $T/mo
outreach_retry_s = 1
outreach_rate = 100000
outreach_timeout_ms = 5000
CONF
}
write_conf
run_outpostd() { start_outpostd --config "$T/outpostd.conf" --listen "127.0.0.1:$OPORT"; }

# ---- 30 contacts with SMS consent, one message each in their language
declare -A CID
TEXT_sw="Habari! Tawi letu linafunguliwa Jumamosi saa tatu asubuhi."
TEXT_en="Hello! Our branch opens on Saturday at 9am, see you there."
TEXT_ru="Здравствуйте! Наш филиал открыт в субботу с 9 утра."
for i in $(seq 1 30); do
    lang=$( [ "$i" -le 10 ] && echo sw || { [ "$i" -le 20 ] && echo en || echo ru; })
    num=$(printf '+2547120000%02d' "$i")
    expect_exit 0 "$OUTPOST" contact add --family-name "Wanjiru$i" --phone "$num" --language "$lang"
    id=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
    [ -n "$id" ] || die "no contact id"
    CID[$i]=$id
    expect_exit 0 "$OUTPOST" consent add "$id" --channel sms --purpose offers \
        --method single_opt_in --source "paper form at the branch"
    var="TEXT_$lang"
    echo "INSERT INTO outreach_messages (contact_id, channel, purpose, kind, language, body, next_try_ms, created_ms) VALUES ('$id', 'sms', 'offers', 'marketing', '$lang', '${!var}', 0, 0);" >>"$T/queue.sql"
done
sqlite3 "$DB" <"$T/queue.sql" || die "cannot queue the messages"
[ "$(q "SELECT count(*) FROM outreach_messages WHERE channel = 'sms' AND state = 'queued'")" = 30 ] ||
    die "30 SMS should be queued"

# ---- quiet hours: nothing is sent, each message waits for their end
policy_quiet "$(nbo -1)" "$(nbo +1)"
NOW=$(($(date +%s) * 1000))
run_outpostd
wait_grep "$DAEMON_LOG" "quiet hours for SMS" 100
grep -q "quiet hours for SMS" "$DAEMON_LOG" ||
    die "no message waited for the quiet hours: $(tail -n 5 "$DAEMON_LOG")"
sleep 1
stop_outpostd
[ "$(got | wc -l)" = 0 ] || die "an SMS was sent inside the quiet hours: $(got | head -3)"
waiting=$(q "SELECT count(*) FROM outreach_messages WHERE state = 'queued' AND attempts = 0 AND next_try_ms BETWEEN $((NOW + 3000000)) AND $((NOW + 3700000))")
[ "$waiting" = 30 ] || die "expected 30 messages due at the end of the quiet hours (about an hour from now): $(q 'SELECT state, attempts, next_try_ms FROM outreach_messages LIMIT 3')"

# ---- after the quiet hours: every message once, in its coding, delivered
policy_quiet "$(nbo +2)" "$(nbo +3)"
q "UPDATE outreach_messages SET next_try_ms = 0 WHERE state = 'queued'"
run_outpostd
wait_got 30
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM outreach_messages WHERE outcome = 'delivered'")" = 30 ] && break
    sleep 0.1
done
[ "$(q "SELECT count(*) FROM outreach_messages WHERE state = 'sent'")" = 30 ] ||
    die "not all sent: $(q 'SELECT state, error FROM outreach_messages WHERE state <> '"'sent'"' LIMIT 3')"
[ "$(got | cut -d' ' -f1 | sort | uniq -d | wc -l)" = 0 ] || die "a number got two messages"
[ "$(got | cut -d' ' -f1 | sort -u | wc -l)" = 30 ] || die "not every number got its message"
got | grep -qxF "+254712000001 text $TEXT_sw" || die "the Swahili text did not arrive as GSM text: $(got | head -1)"
got | grep -qxF "+254712000011 text $TEXT_en" || die "the English text did not arrive"
# Russian goes as UCS-2: fakesmsc prints it as UTF-16BE, url-encoded
RU=$(got | sed -n 's/^+254712000021 ucs-2 //p' | /usr/bin/python3 -c '
import sys, urllib.parse
print(urllib.parse.unquote_to_bytes(sys.stdin.read().strip().replace("+", "%20")).decode("utf-16-be"))')
[ "$RU" = "$TEXT_ru" ] || die "the Russian text did not arrive as UCS-2: $(got | grep '^+254712000021')"
[ "$(q "SELECT count(*) FROM outreach_messages WHERE outcome = 'delivered'")" = 30 ] ||
    die "delivery reports did not set the outcomes: $(q 'SELECT outcome, count(*) FROM outreach_messages GROUP BY outcome') $(grep -i "dlr\|report\|fetch" "$K/smsbox.log" "$K/bearerbox.log" | tail -6) $(grep -i dlr "$DAEMON_LOG" | tail -3)"
[ "$(q "SELECT count(*) FROM outreach_events WHERE kind = 'delivered' AND detail LIKE 'DLR 1:%'")" = 30 ] ||
    die "expected 30 delivered events"
# the DLR token is in no row: only its hash
q "SELECT gateway_ref FROM outreach_messages" | grep -qv '^dlr:[0-9a-f]\{64\}$' &&
    die "a gateway_ref is not the hash of its token"

# ---- forged or malformed reports and replies: refused, nothing changed
SUM=$(db_checksum "$DB")
check_status() { # STATUS URL [TEXT]
    local st
    st=$(curl -s -o "$OUT" -w '%{http_code}' "$2")
    [ "$st" = "$1" ] || die "expected $1 for $2, got $st: $(cat "$OUT")"
    [ -z "${3:-}" ] || expect_contains "$OUT" "$3"
}
check_status 400 "$BASE/o/sms/dlr?type=1" "t: missing"
check_status 400 "$BASE/o/sms/dlr?t=abcdefghijklmnopqrstuvwxyz&type=one" "type: missing or not a number"
check_status 404 "$BASE/o/sms/dlr?t=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG&type=2" \
    "unknown delivery report token"
check_status 400 "$BASE/o/sms/dlr?t=%zz&type=1" "malformed"
check_status 400 "$BASE/o/sms/dlr?t=$(head -c 600 /dev/zero | tr '\0' a)&type=1" "too long"
check_status 403 "$BASE/o/sms/mo?from=%2B254712000001&text=STOP" "k: not the shared secret"
check_status 403 "$BASE/o/sms/mo?k=wrong&from=%2B254712000001&text=STOP" "k: not the shared secret"
check_status 400 "$BASE/o/sms/mo?k=$MOSECRET&from=hello&text=STOP" "from: 'hello' is not a phone number"
check_status 400 "$BASE/o/sms/mo?k=$MOSECRET&text=STOP" "from: missing"
check_status 400 "$BASE/o/sms/mo?k=$MOSECRET&from=%2B254712000001&text=a%07b" "text: UTF-8"
[ "$(db_checksum "$DB")" = "$SUM" ] || die "a refused report changed the database"

# ---- replies through Kannel: logged; STOP withdraws consent, nothing sent back
ACTS=$(q "SELECT count(*) FROM activities")
"$FAKESMSC" -H 127.0.0.1 -r "$FAKEMO" -i 0.5 -m 1 "+254712000002 12345 text Asante sana" >"$K/mo1.log" 2>&1 &
MOPID=$!
track "$MOPID"
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM activities")" -gt "$ACTS" ] && break
    sleep 0.1
done
kill "$MOPID"
wait "$MOPID" 2>/dev/null
[ "$(q "SELECT count(*) FROM activities WHERE contact_id = '${CID[2]}' AND channel = 'sms' AND direction = 'inbound' AND subject = 'sms-in' AND body = 'Asante sana'")" = 1 ] ||
    die "the reply was not logged: $(q "SELECT channel, direction, subject, body FROM activities") $(grep "sms/mo" "$DAEMON_LOG" | tail -n 3)"
[ "$(q "SELECT outcome FROM outreach_messages WHERE contact_id = '${CID[2]}'")" = replied ] ||
    die "the reply did not set the outcome"
expect_exit 0 "$OUTPOST" consent check "${CID[2]}" sms offers
expect_contains "$OUT" "allowed"
"$FAKESMSC" -H 127.0.0.1 -r "$FAKEMO" -i 0.5 -m 1 "0712000001 12345 text STOP" >"$K/mo2.log" 2>&1 &
MOPID=$!
track "$MOPID"
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM consents WHERE contact_id = '${CID[1]}' AND channel = 'sms' AND status = 'withdrawn'")" -ge 1 ] && break
    sleep 0.1
done
kill "$MOPID"
wait "$MOPID" 2>/dev/null
expect_exit 1 "$OUTPOST" consent check "${CID[1]}" sms offers
[ "$(q "SELECT count(*) FROM outreach_events WHERE kind = 'unsubscribed' AND message_id = (SELECT id FROM outreach_messages WHERE contact_id = '${CID[1]}')")" = 1 ] ||
    die "the STOP was not recorded against the message"
sleep 1
[ "$(got | wc -l)" = 30 ] || die "something was sent back after the reply or the STOP: $(got | tail -2)"
# a new message to the contact who said STOP is refused before sending
q "INSERT INTO outreach_messages (contact_id, channel, purpose, kind, body, next_try_ms, created_ms) VALUES ('${CID[1]}', 'sms', 'offers', 'marketing', 'One more offer', 0, 0)"
for _ in $(seq 1 50); do
    [ "$(q "SELECT state FROM outreach_messages ORDER BY id DESC LIMIT 1")" = refused ] && break
    sleep 0.1
done
[ "$(q "SELECT state FROM outreach_messages ORDER BY id DESC LIMIT 1")" = refused ] ||
    die "an SMS after STOP was not refused"

# ---- the gateway down for a while and back: queued, then sent, none twice
stop_smsbox
FIRST=$(($(q "SELECT max(id) FROM outreach_messages") + 1))
for i in 3 4 5 6 7; do
    echo "INSERT INTO outreach_messages (contact_id, channel, purpose, kind, body, next_try_ms, created_ms) VALUES ('${CID[$i]}', 'sms', 'offers', 'marketing', 'Down and back $i', 0, 0);"
done | sqlite3 "$DB"
for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM outreach_messages WHERE id >= $FIRST AND state = 'queued' AND attempts >= 1")" = 5 ] && break
    sleep 0.1
done
[ "$(q "SELECT count(*) FROM outreach_messages WHERE id >= $FIRST AND state = 'queued' AND attempts >= 1 AND error LIKE 'cannot reach the gateway%'")" = 5 ] ||
    die "with the gateway down the messages should wait: $(q "SELECT state, attempts, error FROM outreach_messages WHERE id >= $FIRST")"
start_smsbox
wait_got 35
sleep 1
[ "$(got | grep -c 'Down and back')" = 5 ] || die "after the gateway came back: $(got | grep -c 'Down and back') of 5"
stop_outpostd

# ---- kill -9 during a send loop: 0 lost, 0 twice in fakesmsc's log
FIRST=$(($(q "SELECT max(id) FROM outreach_messages") + 1))
for n in $(seq 1 60); do
    i=$(( (n % 28) + 3 ))
    echo "INSERT INTO outreach_messages (contact_id, channel, purpose, kind, body, next_try_ms, created_ms) VALUES ('${CID[$i]}', 'sms', 'offers', 'transactional', 'Loop', 0, 0);"
done | sqlite3 "$DB"
LAST=$((FIRST + 59))
q "UPDATE outreach_messages SET body = 'Loop #' || id WHERE id BETWEEN $FIRST AND $LAST"
BEFORE=$(got | wc -l)
run_outpostd
for _ in $(seq 1 400); do
    [ $(($(got | wc -l) - BEFORE)) -ge 15 ] && break
    sleep 0.01
done
kill -9 "$DPID"
wait "$DPID" 2>/dev/null
DPID=""
inflight=$(q "SELECT count(*) FROM outreach_messages WHERE state = 'sending'")
run_outpostd
if [ "$inflight" -gt 0 ]; then
    expect_contains "$DAEMON_LOG" "outreach: $inflight message(s) were being sent when outpostd stopped"
fi
left=60
for _ in $(seq 1 300); do
    left=$(q "SELECT count(*) FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state IN ('queued', 'sending')")
    [ "$left" = 0 ] && break
    sleep 0.1
done
sleep 1
stop_outpostd
[ "$left" = 0 ] || die "the queue did not drain after the restart: $left of 60 left"
got | sed -n 's/.* text Loop #\([0-9]*\)$/\1/p' | sort -n >"$T/loop_ids"
dups=$(uniq -d "$T/loop_ids" | wc -l)
[ "$dups" = 0 ] || die "sent twice: $(uniq -d "$T/loop_ids" | tr '\n' ' ')"
sent=$(q "SELECT count(*) FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state = 'sent'")
unknown=$(q "SELECT count(*) FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state = 'unknown'")
[ $((sent + unknown)) = 60 ] || die "lost: $sent sent + $unknown unknown of 60"
for id in $(q "SELECT id FROM outreach_messages WHERE id BETWEEN $FIRST AND $LAST AND state = 'sent'"); do
    grep -qx "$id" "$T/loop_ids" || die "message $id is sent but never reached fakesmsc"
done
[ "$unknown" = "$inflight" ] || die "unknown $unknown, but $inflight were in flight"
for pid in "$SBPID" "$FSPID" "$BBPID"; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
done
pass "SMS through Kannel: quiet hours, 30 in three languages, DLRs, replies and STOP, gateway down and back, kill -9 ($sent sent, $unknown unknown)"
