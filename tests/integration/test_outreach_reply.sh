#!/bin/bash
# E-mail replies (docs/OUTREACH.md, "Replies") after a real send to the
# SMTP server on 127.0.0.1 (tests/tools/smtp_sink.py): every message's
# Message-ID carries its attempt's token; a reply naming it in
# In-Reply-To, fed to `outpost outreach reply` as an MTA alias would,
# becomes an inbound e-mail activity and the outcome replied, once; an
# auto-reply is an event only; a reply whose Subject is only
# "unsubscribe" withdraws e-mail consent and suppresses the address.
# Input that is not a reply, answers no message of this node, or is too
# large is refused with the reason and changes nothing.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
. "$TESTS_DIR/integration/outreach_lib.sh"
unset OUTPOST_POLICY
init_node EU-DE

start_sink
expect_exit 0 "$OUTPOST" contact add --family-name Lima --email ana@example.org --language de
A=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
write_conf </dev/null
start_outpostd --config "$T/outpostd.conf"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
expect_exit 0 "$OUTPOST" outreach send-test "$A"
wait_sunk 2
stop_outpostd
message 1 >"$T/m1"
message 2 >"$T/m2"
MID1=$(sed -n 's/^Message-ID: \(<outreach-1\.[A-Za-z0-9_-]\{43\}@[^>]*>\)$/\1/p' "$T/m1")
MID2=$(sed -n 's/^Message-ID: \(<outreach-2\.[A-Za-z0-9_-]\{43\}@[^>]*>\)$/\1/p' "$T/m2")
[ -n "$MID1" ] && [ -n "$MID2" ] || die "no Message-ID with a token: $(grep -i '^message-id' "$T/m1" "$T/m2")"
TOK1=$(sed -n 's/^X-Outpost-Bounce: \([A-Za-z0-9_-]*\)$/\1/p' "$T/m1")
expect_contains "$T/m1" "Message-ID: <outreach-1.$TOK1@"

reply() { # IN-REPLY-TO SUBJECT [EXTRA-HEADER]: a Thunderbird-style reply
    printf 'Message-ID: <r-%s@example.org>\r\nFrom: Ana Lima <ana@example.org>\r\n' "$RANDOM$RANDOM"
    printf 'To: news@branch.example\r\nSubject: %s\r\nIn-Reply-To: %s\r\nReferences: %s\r\n' "$2" "$1" "$1"
    [ -n "${3:-}" ] && printf '%s\r\n' "$3"
    printf 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n'
    printf 'Content-Transfer-Encoding: quoted-printable\r\n\r\n'
    printf 'Vielen Dank, ich komme gern am Donnerstag vorbei.=0D=0AGr=FC=DFe, Ana\r\n\r\n'
    printf 'Am 07.12.26 um 09:00 schrieb news@branch.example:\r\n> Dies ist eine Testnachricht\r\n'
}

# ---- bad input: precise errors, nothing changed
SUM=$(db_checksum "$DB" audit_log)
reply "<CAx1@mail.gmail.com>" "Re: hallo" >"$T/bad"
expect_exit 5 "$OUTPOST" outreach reply <"$T/bad"
expect_contains "$ERR" "not a reply to a message of this node"
reply "<outreach-1.${TOK1%?????}AAAAA@branch.example>" "Re: hallo" >"$T/bad"
expect_exit 5 "$OUTPOST" outreach reply <"$T/bad"
expect_contains "$ERR" "no message of this node has the message id this reply answers"
reply "$MID1" "Re: hallo" | grep -v '^In-Reply-To\|^References' >"$T/bad"
expect_exit 3 "$OUTPOST" outreach reply <"$T/bad"
expect_contains "$ERR" "not a reply: the message has neither In-Reply-To nor References"
reply "$MID1" "Re: hallo" | sed 's/charset=ISO-8859-1/charset=koi8-r/' >"$T/bad"
expect_exit 3 "$OUTPOST" outreach reply <"$T/bad"
expect_contains "$ERR" "charset 'koi8-r' of the text part is not supported"
{ reply "$MID1" "Re: hallo"; head -c 1100000 /dev/zero | tr '\0' 'x'; } >"$T/bad"
expect_exit 3 "$OUTPOST" outreach reply <"$T/bad"
expect_contains "$ERR" "input: larger than 1048576 bytes"
expect_exit 3 "$OUTPOST" outreach reply </dev/null
expect_contains "$ERR" "input: empty"
expect_exit 2 "$OUTPOST" outreach reply extra <"$T/bad"
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "a refused reply changed the database"

# ---- the reply to message 1: an activity and the outcome, once
reply "$MID1" "Re: Testnachricht von Outpost" >"$T/r1"
expect_exit 0 "$OUTPOST" outreach reply <"$T/r1"
expect_contains "$OUT" "message 1: replied (activity "
[ "$(q "SELECT outcome FROM outreach_messages WHERE id = 1")" = replied ] || die "outcome"
q "SELECT channel || '|' || direction || '|' || subject || '|' || body FROM activities
   WHERE contact_id = '$A'" >"$T/act"
expect_contains "$T/act" "email|inbound|Re: Testnachricht von Outpost|Vielen Dank, ich komme gern am Donnerstag vorbei."
expect_contains "$T/act" "Grüße, Ana"
expect_not_contains "$T/act" "schrieb"
SUM=$(db_checksum "$DB" audit_log)
expect_exit 0 "$OUTPOST" outreach reply <"$T/r1"
expect_contains "$OUT" "message 1: this reply was recorded before; nothing changed"
[ "$(db_checksum "$DB" audit_log)" = "$SUM" ] || die "the same reply twice changed the database"

# ---- an out-of-office answer to message 2: an event, not a reply
reply "$MID2" "Abwesend: Testnachricht" "Auto-Submitted: auto-replied" >"$T/a2"
expect_exit 0 "$OUTPOST" outreach reply <"$T/a2"
expect_contains "$OUT" "message 2: an automatic reply, recorded as an event only"
[ "$(q "SELECT outcome FROM outreach_messages WHERE id = 2")" = delivered ] || die "auto-reply outcome"
[ "$(q "SELECT kind FROM outreach_events WHERE message_id = 2")" = auto_replied ] ||
    die "the auto-reply's event: $(q 'SELECT kind FROM outreach_events WHERE message_id = 2')"
# an Exchange-style "Out of Office:" without Auto-Submitted: the same
reply "$MID2" "Out of Office: Testnachricht" >"$T/a3"
expect_exit 0 "$OUTPOST" outreach reply <"$T/a3"
expect_contains "$OUT" "message 2: an automatic reply, recorded as an event only"
[ "$(q "SELECT count(*) FROM outreach_events WHERE message_id = 2 AND kind = 'auto_replied'")" = 2 ] ||
    die "the Out of Office answer is not an auto_replied event"
[ "$(q "SELECT outcome FROM outreach_messages WHERE id = 2")" = delivered ] || die "Out of Office set the outcome"
[ "$(q "SELECT count(*) FROM activities WHERE contact_id = '$A'")" = 1 ] || die "an auto-reply became an activity"

# ---- "unsubscribe" as the Subject: withdrawn and suppressed
reply "$MID2" "unsubscribe" >"$T/u2"
expect_exit 0 "$OUTPOST" outreach reply <"$T/u2"
expect_contains "$OUT" "message 2: replied (activity "
expect_contains "$OUT" "the contact's e-mail marketing consent is withdrawn"
expect_exit 1 "$OUTPOST" consent check "$A" email newsletter
expect_contains "$OUT" "suppression list"
[ "$(q "SELECT group_concat(kind) FROM (SELECT kind FROM outreach_events WHERE message_id = 2 ORDER BY id)")" = \
    "auto_replied,auto_replied,replied,unsubscribed" ] || die "events of message 2: $(q 'SELECT kind FROM outreach_events WHERE message_id = 2')"
pass
