#!/bin/bash
# The SMTP transport of outreach (docs/OUTREACH.md) against a real SMTP
# server on 127.0.0.1 (tests/tools/smtp_sink.py): STARTTLS with the relay's
# certificate checked and AUTH (a refused login leaves messages waiting); a relay without STARTTLS or with a certificate that
# does not verify gets nothing (the message waits, no plain fallback); a
# connection lost after the message was handed over leaves it `unknown`,
# never sent again by itself; the daily cap and the rate limit hold.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
. "$TESTS_DIR/integration/outreach_lib.sh"
need openssl
unset OUTPOST_POLICY
init_node EU-DE
expect_exit 0 "$OUTPOST" contact add --family-name Ivanova --email olga@example.org --language ru
A=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$A" ] || die "no contact id"
state() { q "SELECT state FROM outreach_messages WHERE id = $1"; }
wait_state() { # ID STATE
    for _ in $(seq 1 100); do
        [ "$(state "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    die "message $1 is $(state "$1"), not $2: $(q "SELECT error FROM outreach_messages WHERE id = $1")"
}
send_test() {
    expect_exit 0 "$OUTPOST" outreach send-test "$A"
    sed -n 's/^queued test message \([0-9]*\)$/\1/p' "$OUT"
}

# ---- STARTTLS with the relay's certificate verified, and SMTP AUTH
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/relay.key" -out "$T/relay.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null ||
    die "cannot make the relay's certificate"
start_sink 0 --tls-cert "$T/relay.pem" --tls-key "$T/relay.key" --auth "branch:s3cret pass"
echo "wrong" >"$T/password"
printf 'outreach_allow_plain = false\noutreach_ca_file = %s\noutreach_user = branch\noutreach_password_file = %s\n' \
    "$T/relay.pem" "$T/password" | write_conf
start_outpostd --config "$T/outpostd.conf"
ID=$(send_test)
# a refused login: the configuration's fault, so the message waits
wait_grep "$DAEMON_LOG" "message $ID: the relay refused the login (535): check outreach_user" 50
case $(state "$ID") in queued | sending) ;; *) die "a refused login settled message $ID" ;; esac
stop_outpostd
echo "s3cret pass" >"$T/password"
start_outpostd --config "$T/outpostd.conf"
wait_state "$ID" sent
wait_sunk 1
expect_contains "$SINK_LOG" '"tls": true, "auth": true'
message 1 >"$T/m1"
expect_contains "$T/m1" "Subject: Тестовое сообщение от Outpost"
expect_contains "$T/m1" "Content-Language: ru"
expect_contains "$T/m1" "Это тестовое сообщение узла Outpost."
expect_contains "$T/m1" "Чтобы больше не получать сообщения: https://crm.branch.example/o/unsubscribe/"
stop_outpostd

# ---- a certificate that does not verify: nothing is sent, the message waits
echo "outreach_allow_plain = false" | write_conf # the system's CAs do not know the relay
start_outpostd --config "$T/outpostd.conf"
ID=$(send_test)
wait_grep "$DAEMON_LOG" "message $ID: cannot reach the relay" 50
case $(state "$ID") in queued | sending) ;; *) die "a relay that does not verify took message $ID" ;; esac
[ "$(sunk)" = 1 ] || die "a relay that does not verify got a message"
stop_outpostd
q "UPDATE outreach_messages SET state = 'failed' WHERE id = $ID"

# ---- a relay without STARTTLS: required unless allowed plain on loopback
stop_sink
start_sink
echo "outreach_allow_plain = false" | write_conf
start_outpostd --config "$T/outpostd.conf"
ID=$(send_test)
wait_grep "$DAEMON_LOG" "message $ID: the relay does not offer STARTTLS, which is required" 50
case $(state "$ID") in queued | sending) ;; *) die "message $ID went to a relay without STARTTLS" ;; esac
[ "$(sunk)" = 1 ] || die "a relay without STARTTLS got a message in clear"
stop_outpostd
q "UPDATE outreach_messages SET state = 'failed' WHERE id = $ID"

# ---- lost after the hand-over: unknown, reported, not sent again
write_conf </dev/null
echo drop >"$SINK_CTL"
start_outpostd --config "$T/outpostd.conf"
ID=$(send_test)
wait_state "$ID" unknown
expect_contains "$DAEMON_LOG" "outreach: message $ID: outcome unknown: the connection was lost after the message was handed over"
echo ok >"$SINK_CTL"
sleep 1.5 # well past outreach_retry_s
[ "$(q "SELECT state || ' ' || attempts FROM outreach_messages WHERE id = $ID")" = "unknown 1" ] ||
    die "an unknown message was tried again"
expect_exit 0 "$OUTPOST" outreach list --state unknown
expect_contains "$OUT" "$ID	unknown	1	email	test	$A	the connection was lost"
expect_contains "$ERR" "1 message(s) with an unknown outcome: the relay may have them"
expect_exit 0 "$OUTPOST" outreach requeue "$ID"
wait_state "$ID" sent
stop_outpostd

# ---- the daily cap: sent today counts; the rest waits for tomorrow
TODAY=$(q "SELECT count(*) FROM outreach_messages WHERE state = 'sent'")
printf 'outreach_daily_cap = %d\n' $((TODAY + 2)) | write_conf
for _ in 1 2 3 4; do send_test >/dev/null; done
start_outpostd --config "$T/outpostd.conf"
for _ in $(seq 1 50); do
    [ "$(q "SELECT count(*) FROM outreach_messages WHERE state = 'sent'")" = $((TODAY + 2)) ] && break
    sleep 0.1
done
sleep 1
[ "$(q "SELECT count(*) FROM outreach_messages WHERE state = 'sent'")" = $((TODAY + 2)) ] ||
    die "the daily cap of $((TODAY + 2)) was not kept: $(q "SELECT count(*) FROM outreach_messages WHERE state = 'sent'") sent"
[ "$(q "SELECT count(*) FROM outreach_messages WHERE state = 'queued'")" = 2 ] ||
    die "two messages should wait for tomorrow"
stop_outpostd

# ---- the rate limit: 120 a minute is one every 500 ms
echo "outreach_rate = 120" | write_conf
for _ in 1 2; do send_test >/dev/null; done
start_outpostd --config "$T/outpostd.conf"
for _ in $(seq 1 60); do
    [ "$(q "SELECT count(*) FROM outreach_messages WHERE state = 'queued'")" = 0 ] && break
    sleep 0.1
done
stop_outpostd
span=$(q "SELECT max(last_try_ms) - min(last_try_ms) FROM (SELECT last_try_ms FROM outreach_messages WHERE state = 'sent' ORDER BY last_try_ms DESC LIMIT 4)")
[ "$span" -ge 1450 ] || die "4 attempts at 120 a minute took only $span ms"
echo "ok: STARTTLS verified, no plain fallback, unknown kept, cap and rate held (4 in $span ms)" >&2
pass
