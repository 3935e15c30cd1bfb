#!/bin/bash
# E-mail bounces (docs/OUTREACH.md, "Bounces") with a real SMTP server on
# 127.0.0.1 (tests/tools/smtp_sink.py): every message carries an
# X-Outpost-Bounce token; a Postfix report (5.1.1) returned for a message
# the sink took, fed to `outpost outreach bounce` as an MTA alias would,
# is a hard bounce of that message, the same report again changes nothing;
# an Exim delay report (4.0.0, the token folded) is a soft bounce; a 554
# at send time is a hard bounce too, and the second hard bounce suppresses
# the address for e-mail in the same step. Input that is not a report,
# names no message of this node, or is too large is refused with the
# reason and changes nothing.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
. "$TESTS_DIR/integration/outreach_lib.sh"
unset OUTPOST_POLICY
init_node EU-DE
DSN="$TESTS_DIR/data/dsn"

start_sink
expect_exit 0 "$OUTPOST" contact add --family-name Lima --email ana@example.org --language de
A=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
write_conf </dev/null
start_outpostd --config "$T/outpostd.conf"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
wait_sunk 2
message 1 >"$T/m1"
message 2 >"$T/m2"
TOK1=$(sed -n 's/^X-Outpost-Bounce: \([A-Za-z0-9_-]*\)$/\1/p' "$T/m1")
TOK2=$(sed -n 's/^X-Outpost-Bounce: \([A-Za-z0-9_-]*\)$/\1/p' "$T/m2")
[ "${#TOK1}" = 43 ] && [ "${#TOK2}" = 43 ] && [ "$TOK1" != "$TOK2" ] ||
    die "no per-message bounce token: $(grep -i outpost "$T/m1" "$T/m2")"
q "SELECT gateway_ref FROM outreach_messages" | grep -q "$TOK1" && die "the token is stored in clear"
report() { # FILE TOKEN: the sample with the recipient and the token filled in
    sed -e "s/@TOKEN@/$2/" -e "s/@RCPT@/ana@example.org/g" "$DSN/$1"
}

# ---- bad input: precise errors, nothing changed
SUM=$(db_checksum "$DB" audit_log)
report not_a_dsn.eml "$TOK1" >"$T/bad"
expect_exit 3 "$OUTPOST" outreach bounce <"$T/bad"
expect_contains "$ERR" "not a delivery status notification (RFC 3464): Content-Type is 'text/plain; charset=utf-8'"
report postfix_5xx.eml "${TOK1%?????}AAAAA" >"$T/bad"
expect_exit 5 "$OUTPOST" outreach bounce <"$T/bad"
expect_contains "$ERR" "no message of this node has this bounce token"
report postfix_5xx.eml "short" >"$T/bad"
expect_exit 3 "$OUTPOST" outreach bounce <"$T/bad"
expect_contains "$ERR" "X-Outpost-Bounce: malformed token"
report postfix_5xx.eml "$TOK1" | sed 's/^Status: 5.1.1$/Status: 5.1/' >"$T/bad"
expect_exit 3 "$OUTPOST" outreach bounce <"$T/bad"
expect_contains "$ERR" "delivery-status: Status '5.1' is not a status code"
report postfix_5xx.eml "$TOK1" | grep -v "^X-Outpost-Bounce" >"$T/bad"
expect_exit 3 "$OUTPOST" outreach bounce <"$T/bad"
expect_contains "$ERR" "no X-Outpost-Bounce header in the returned message"
{ report postfix_5xx.eml "$TOK1"; head -c 1100000 /dev/zero | tr '\0' 'x'; } >"$T/bad"
expect_exit 3 "$OUTPOST" outreach bounce <"$T/bad"
expect_contains "$ERR" "input: larger than 1048576 bytes"
expect_exit 3 "$OUTPOST" outreach bounce </dev/null
expect_contains "$ERR" "input: empty"
expect_exit 2 "$OUTPOST" outreach bounce --hard-bounce-limit 0 <"$T/bad"
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "a refused report changed the database"

# ---- the Postfix report: a hard bounce of message 1, once
report postfix_5xx.eml "$TOK1" >"$T/p1"
expect_exit 0 "$OUTPOST" outreach bounce <"$T/p1"
expect_contains "$OUT" "message 1: bounced_hard (5.1.1)"
expect_not_contains "$OUT" "suppressed"
[ "$(q "SELECT outcome FROM outreach_messages WHERE id = 1")" = bounced ] || die "outcome"
q "SELECT detail FROM outreach_events WHERE message_id = 1" >"$T/ev"
expect_contains "$T/ev" "5.1.1 failed; Final-Recipient: rfc822; ana@example.org; Diagnostic-Code: smtp; 550 5.1.1 <ana@example.org>: Recipient address rejected: User unknown"
SUM=$(db_checksum "$DB" audit_log)
expect_exit 0 "$OUTPOST" outreach bounce <"$T/p1"
expect_contains "$OUT" "message 1: this report was recorded before; nothing changed"
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "the same report twice changed the database"

# ---- the Exim delay report: a soft bounce of message 2 (the token folded)
report exim_delayed.eml "$TOK2" >"$T/e2"
expect_exit 0 "$OUTPOST" outreach bounce <"$T/e2"
expect_contains "$OUT" "message 2: bounced_soft (4.0.0)"
# one hard bounce: not suppressed (not allowed either: no consent on file)
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_not_contains "$OUT" "suppression list"

# ---- a 554 at send time: the second hard bounce suppresses the address
echo perm >"$SINK_CTL"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
wait_grep "$DAEMON_LOG" "message 3: the relay refused the message: 554" 50
wait_grep "$DAEMON_LOG" "message 3: the contact's address bounced hard 2 times and is suppressed" 50
[ "$(q "SELECT state || ' ' || outcome FROM outreach_messages WHERE id = 3")" = "failed bounced" ] ||
    die "message 3: $(q 'SELECT state, outcome FROM outreach_messages WHERE id = 3')"
[ "$(q "SELECT kind FROM outreach_events WHERE message_id = 3")" = bounced_hard ] || die "no event for the 554"
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "suppression list"
expect_contains "$OUT" "2 hard bounces"
stop_outpostd
pass
