#!/bin/bash
# Printed mail and call lists (docs/OUTREACH.md, "Printed mail and call
# lists") through the CLI: letters and labels as PDF, read back with
# pdftotext (the recipient's address in the region's format, the sender,
# the body; nothing else: no record ids); consent refusals and contacts
# without an address are settled, not printed; kill -9 between the file
# and the record leaves `unknown` and the next run prints nothing twice;
# a failed write leaves no file and the messages queued. Call lists as CSV
# with E.164 numbers and the consent decision; call results as events,
# activities and (refused) a withdrawal in the consent ledger; bad input
# changes nothing; the manager's API route for call results.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
need sqlite3 pdftotext
unset OUTPOST_POLICY
init_node EU-DE
q() { sqlite3 "$DB" "$1"; }
id_of() { sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT"; }
# queue CONTACT CHANNEL SUBJECT BODY: a due message, as a campaign queues it
queue() {
    q "INSERT INTO outreach_messages (contact_id, channel, purpose, subject, body, next_try_ms, created_ms)
       VALUES ('$1', '$2', 'offers', '$3', '$4', 0, 0); SELECT last_insert_rowid();"
}

expect_exit 0 "$OUTPOST" contact add --given-name Jürgen --family-name Weiß \
    --street "Hauptstraße 5" --postal-code 10115 --locality Berlin --country DE \
    --phone "030 901820" --language de
A=$(id_of)
expect_exit 0 "$OUTPOST" contact add --given-name Ana --family-name Lima \
    --street "Rua Augusta 10" --postal-code 1100-053 --locality Lisboa --country PT --language pt
B=$(id_of)
expect_exit 0 "$OUTPOST" contact add --given-name Otto --family-name Ohneadresse --language de
C=$(id_of)
expect_exit 0 "$OUTPOST" contact add --given-name Eva --family-name Einspruch \
    --street "Ring 1" --postal-code 50667 --locality Köln --phone "0221 123456" --language de
D=$(id_of)
# D objected to direct mail (opt-out in EU-DE): her letter is refused
expect_exit 0 "$OUTPOST" consent withdraw "$D" --channel direct_mail --purpose offers --reason "objected by letter"

M1=$(queue "$A" print "Unser Herbstangebot" "Sehr geehrter Herr Weiß,\nzwanzig Prozent auf alles.")
M2=$(queue "$B" print "A nossa oferta" "Olá Ana, vinte por cento.")
M3=$(queue "$C" print "Angebot" "ohne Adresse")
M4=$(queue "$D" print "Angebot" "widersprochen")
q "UPDATE outreach_messages SET body = replace(body, '\n', char(10))"

# ---- bad input: nothing changes
printf 'Outpost GmbH\nAm Markt 1\n10117 Berlin\n' >"$T/sender.txt"
SUM=$(db_checksum "$DB")
expect_exit 2 "$OUTPOST" outreach print
expect_contains "$ERR" "print needs --out FILE"
expect_exit 2 "$OUTPOST" outreach print --out "$T/l.pdf"
expect_contains "$ERR" "letters need the sender's postal address (--sender-file FILE)"
expect_exit 2 "$OUTPOST" outreach print --out "$T/l.pdf" --paper a5 --labels
expect_exit 2 "$OUTPOST" outreach calls --out "$T/c.csv" --labels
expect_contains "$ERR" "--labels, --paper and --sender-file are for print"
# a directory that does not exist: the file cannot be written; the messages stay queued
expect_exit 1 "$OUTPOST" outreach print --out "$T/nodir/l.pdf" --sender-file "$T/sender.txt"
expect_contains "$ERR" "cannot write $T/nodir/l.pdf.tmp"
# (consent and addresses were decided on the way: those are settled either way)
expect_contains "$ERR" "1 refused by consent, 1 failed (no postal address)"
[ ! -e "$T/nodir" ] || die "a failed print left a directory"
[ "$(q "SELECT group_concat(state) FROM outreach_messages WHERE id IN ($M1, $M2)")" = "queued,queued" ] ||
    die "a failed print did not put the letters back: $(q 'SELECT id, state, error FROM outreach_messages')"

# ---- letters: A4, the region's address format, the sender, the body
expect_exit 0 "$OUTPOST" outreach print --out "$T/letters.pdf" --sender-file "$T/sender.txt"
expect_contains "$OUT" "2 letters written to $T/letters.pdf"
[ ! -e "$T/letters.pdf.tmp" ] || die "the temporary file is left"
[ "$(stat -c %a "$T/letters.pdf")" = 600 ] || die "the letters are readable by others: $(stat -c %a "$T/letters.pdf")"
pdfinfo "$T/letters.pdf" >"$T/info" 2>/dev/null || die "not a PDF"
grep -Eq "^Pages: +2$" "$T/info" || die "expected 2 pages: $(cat "$T/info")"
expect_contains "$T/info" "595.276 x 841.89 pts (A4)"
pdftotext -layout "$T/letters.pdf" "$T/letters.txt"
expect_contains "$T/letters.txt" "Outpost GmbH"
expect_contains "$T/letters.txt" "Jürgen Weiß"
expect_contains "$T/letters.txt" "Hauptstraße 5"
expect_contains "$T/letters.txt" "10115 Berlin"
expect_contains "$T/letters.txt" "Unser Herbstangebot"
expect_contains "$T/letters.txt" "zwanzig Prozent auf alles."
expect_contains "$T/letters.txt" "1100-053 Lisboa"
expect_contains "$T/letters.txt" "PT" # abroad: the country line
grep -q "^ *DE *$" "$T/letters.txt" && die "a domestic letter has a country line"
expect_not_contains "$T/letters.txt" "$A"
expect_not_contains "$T/letters.txt" "widersprochen"
expect_not_contains "$T/letters.txt" "030" # the phone number is not on a letter
[ "$(q "SELECT state FROM outreach_messages WHERE id = $M1")" = sent ] || die "letter 1 not sent"
[ "$(q "SELECT state FROM outreach_messages WHERE id = $M4")" = refused ] || die "the objection was not honoured"
q "SELECT rule FROM outreach_messages WHERE id = $M4" | grep -q "suppression list\|withdrawn" ||
    die "the refusal's rule: $(q "SELECT rule FROM outreach_messages WHERE id = $M4")"
[ "$(q "SELECT state || ': ' || error FROM outreach_messages WHERE id = $M3")" = \
    "failed: the contact has no postal address (street and locality or postal code)" ] ||
    die "M3: $(q "SELECT state, error FROM outreach_messages WHERE id = $M3")"
# nothing due now: no second copy, no file
expect_exit 0 "$OUTPOST" outreach print --out "$T/again.pdf" --sender-file "$T/sender.txt"
expect_contains "$OUT" "nothing due"
[ ! -e "$T/again.pdf" ] || die "an empty run wrote a file"

# ---- labels on US Letter, 3 x 10: 31 labels are two sheets
for i in $(seq 1 31); do queue "$A" print "L$i" "b" >/dev/null; done
expect_exit 0 "$OUTPOST" outreach print --out "$T/labels.pdf" --labels --paper letter
expect_contains "$OUT" "31 labels written"
pdfinfo "$T/labels.pdf" >"$T/info"
grep -Eq "^Pages: +2$" "$T/info" || die "expected 2 sheets: $(cat "$T/info")"
expect_contains "$T/info" "612 x 792 pts (letter)"
pdftotext "$T/labels.pdf" - | grep -c "10115 Berlin" >"$T/n"
[ "$(cat "$T/n")" = 31 ] || die "expected 31 labels, got $(cat "$T/n")"
pdftotext "$T/labels.pdf" - | grep -q "L1" && die "a label carries the letter's subject"

# ---- the packaged CLI carries no test hook: OUTPOST_TEST_STOP_AFTER_FILE
# is an ordinary variable to it, so the run finishes and records its file
if [ "${OUTPOST_HAS_TEST_HOOKS:-false}" = true ]; then
    echo "note: outpost built with -Dtest_hooks=true: the packaged-build check is skipped"
else
    M4=$(queue "$A" print "Ohne Haken" "b")
    OUTPOST_TEST_STOP_AFTER_FILE=1 timeout 30 "$OUTPOST" outreach print --out "$T/nohook.pdf" \
        --sender-file "$T/sender.txt" >"$T/nohook.out" 2>&1 ||
        die "the packaged CLI stopped or failed with the hook's variable set: $(cat "$T/nohook.out")"
    expect_contains "$T/nohook.out" "1 letters written"
    [ "$(q "SELECT state FROM outreach_messages WHERE id = $M4")" = sent ] ||
        die "M4 not recorded as sent by the packaged CLI"
fi

# ---- kill -9 between the file and the record: unknown, never printed twice
# (outpost-test-hooks: the CLI with its test hooks, never installed)
M5=$(queue "$A" print "Nach dem Absturz" "b")
OUTPOST_TEST_STOP_AFTER_FILE=1 "${OUTPOST_TEST_HOOKS:?outpost-test-hooks}" outreach print --out "$T/crash.pdf" \
    --sender-file "$T/sender.txt" >"$T/crash.out" 2>&1 &
P=$!
track "$P"
for _ in $(seq 1 100); do [ -e "$T/crash.pdf" ] && break; sleep 0.1; done
[ -e "$T/crash.pdf" ] || die "the file was not written: $(cat "$T/crash.out")"
kill -9 "$P"
wait "$P" 2>/dev/null
[ "$(q "SELECT state FROM outreach_messages WHERE id = $M5")" = sending ] || die "M5 not sending"
expect_exit 0 "$OUTPOST" outreach print --out "$T/after.pdf" --sender-file "$T/sender.txt"
expect_contains "$ERR" "1 print message(s) were taken by a run that stopped before recording its file"
expect_contains "$OUT" "nothing due"
[ ! -e "$T/after.pdf" ] || die "the crashed letter was printed again"
[ "$(q "SELECT state FROM outreach_messages WHERE id = $M5")" = unknown ] || die "M5 not unknown"
expect_exit 0 "$OUTPOST" outreach list --state unknown
expect_contains "$OUT" "$M5"
expect_exit 0 "$OUTPOST" outreach requeue "$M5"
expect_exit 0 "$OUTPOST" outreach print --out "$T/after.pdf" --sender-file "$T/sender.txt"
pdftotext "$T/after.pdf" - | grep -q "Nach dem Absturz" || die "the requeued letter is not printed"

# ---- a right-to-left body: shaped with an Arabic font
queue "$A" print "عرض الخريف" "مرحبا، خصم عشرين بالمئة على كل شيء." >/dev/null
expect_exit 0 "$OUTPOST" outreach print --out "$T/ar.pdf" --sender-file "$T/sender.txt"
pdffonts "$T/ar.pdf" | grep -q "Arabic" || die "no Arabic font embedded: $(pdffonts "$T/ar.pdf")"

# ---- a Chinese node: CJK text and the CN address format (large to small)
CN="$T/cn"
mkdir -p "$CN"
(
    export OUTPOST_DB="$CN/node.db"
    DB="$CN/node.db"
    init_node CN
    expect_exit 0 "$OUTPOST" contact add --given-name 小明 --family-name 王 \
        --street "建国路88号" --postal-code 100022 --locality 北京市 --region 朝阳区 --country CN
    W=$(id_of)
    expect_exit 0 "$OUTPOST" consent add "$W" --channel direct_mail --purpose offers \
        --method written --source "signed form"
    queue "$W" print "秋季优惠" "王先生您好，所有商品八折。" >/dev/null
    printf '前哨公司\n上海市黄浦区南京东路1号\n' >"$T/sender-cn.txt"
    expect_exit 0 "$OUTPOST" outreach print --out "$T/cn.pdf" --sender-file "$T/sender-cn.txt"
    pdftotext "$T/cn.pdf" "$T/cn.txt"
    for want in 王小明 100022 朝阳区北京市 建国路88号 秋季优惠 所有商品八折 前哨公司; do
        expect_contains "$T/cn.txt" "$want"
    done
    pdffonts "$T/cn.pdf" | grep -q "CJK" || die "no CJK font embedded: $(pdffonts "$T/cn.pdf")"
) || exit 1

# ---- call lists: E.164, the script, the consent decision
expect_exit 0 "$OUTPOST" consent add "$A" --channel call --purpose offers --method verbal --source "phone"
expect_exit 0 "$OUTPOST" consent add "$C" --channel call --purpose offers --method verbal --source "phone"
K1=$(queue "$A" call "Herbst" "=1+1 Guten Tag, hier ist Outpost")
K2=$(queue "$D" call "Herbst" "no consent for calls") # single opt-in, nothing on file
K3=$(queue "$C" call "Herbst" "no phone")
expect_exit 0 "$OUTPOST" outreach calls --out "$T/calls.csv"
expect_contains "$OUT" "1 calls written to $T/calls.csv"
[ "$(stat -c %a "$T/calls.csv")" = 600 ] || die "the call list is readable by others"
expect_contains "$ERR" "1 refused by consent, 1 failed (no valid phone number)"
head -1 "$T/calls.csv" | grep -q '^message,name,phone,language,script,consent,rule,call_window' ||
    die "header: $(head -1 "$T/calls.csv")"
expect_contains "$T/calls.csv" "$K1,Jürgen Weiß,\"+4930901820\",de,"
expect_contains "$T/calls.csv" ",granted,"
# EU-DE keeps calls quiet 20:00-09:00 in Europe/Berlin
expect_contains "$T/calls.csv" ",09:00-20:00 Europe/Berlin"
expect_not_contains "$T/calls.csv" "no consent for calls"
expect_contains "$T/calls.csv" ",\"'=1+1 Guten Tag, hier ist Outpost\"," # text, not a formula
expect_not_contains "$T/calls.csv" ",=1+1"
[ "$(q "SELECT state FROM outreach_messages WHERE id = $K2")" = refused ] || die "K2 not refused"
[ "$(q "SELECT state FROM outreach_messages WHERE id = $K3")" = failed ] || die "K3 not failed"

# ---- call results
SUM=$(db_checksum "$DB")
expect_exit 2 "$OUTPOST" outreach call-result "$K1" maybe
expect_contains "$ERR" "'maybe' is not a call result (answered, no-answer, refused, wrong-number)"
expect_exit 3 "$OUTPOST" outreach call-result "$K2" answered
expect_contains "$ERR" "message $K2 (channel call, state refused): only a call handed out in a call list (sent) takes a result"
expect_exit 3 "$OUTPOST" outreach call-result "$M1" answered
expect_contains "$ERR" "message $M1 (channel print, state sent)"
expect_exit 5 "$OUTPOST" outreach call-result 9999 answered
expect_exit 3 "$OUTPOST" outreach call-result "$K1" refused --note "$(printf 'bad\001note')"
[ "$(db_checksum "$DB")" = "$SUM" ] || die "a refused call result changed the database"
expect_exit 0 "$OUTPOST" outreach call-result "$K1" refused --note "keine Anrufe mehr"
expect_contains "$OUT" "message $K1: refused recorded (activity "
[ "$(q "SELECT kind || '|' || detail FROM outreach_events WHERE message_id = $K1")" = "unsubscribed|call: refused: keine Anrufe mehr" ] ||
    die "event: $(q 'SELECT * FROM outreach_events')"
[ "$(q "SELECT channel || '|' || direction || '|' || outcome || '|' || body FROM activities WHERE contact_id = '$A'")" = \
    "call|outbound|refused|keine Anrufe mehr" ] || die "activity: $(q 'SELECT * FROM activities')"
expect_exit 1 "$OUTPOST" consent check "$A" call offers
expect_contains "$OUT" "not allowed"
expect_exit 3 "$OUTPOST" outreach call-result "$K1" answered
expect_contains "$ERR" "message $K1 has a call result already"

# ---- the API route for call results (managers)
add_user mgr manager
add_user fld field
expect_exit 0 "$OUTPOST" contact add --given-name Fritz --family-name Fink --phone "089 1234567"
F=$(id_of)
expect_exit 0 "$OUTPOST" consent add "$F" --channel call --purpose offers --method verbal --source "phone"
K5=$(queue "$F" call "Winter" "Guten Tag")
expect_exit 0 "$OUTPOST" outreach calls --out "$T/calls2.csv"
expect_contains "$T/calls2.csv" "$K5,"
start_outpostd
MG=$(login mgr)
FT=$(login fld)
SUM=$(db_checksum "$DB" audit_log sessions)
expect_req 403 "call results are for the manager role, not field" \
    POST "/api/v1/outreach/messages/$K5/call-result" "$FT" '{"result":"answered"}'
expect_req 400 "result: expected answered, no-answer, refused or wrong-number" \
    POST "/api/v1/outreach/messages/$K5/call-result" "$MG" '{"result":"maybe"}'
expect_req 400 "note: a string" \
    POST "/api/v1/outreach/messages/$K5/call-result" "$MG" '{"result":"answered","note":5}'
expect_req 404 "no message 9999" \
    POST "/api/v1/outreach/messages/9999/call-result" "$MG" '{"result":"answered"}'
expect_req 405 "" GET "/api/v1/outreach/messages/$K5/call-result" "$MG"
[ "$(db_checksum "$DB" audit_log sessions)" = "$SUM" ] || die "a refused call result changed the database"
expect_req 201 '"result":"no-answer"' \
    POST "/api/v1/outreach/messages/$K5/call-result" "$MG" '{"result":"no-answer","note":"Mailbox"}'
expect_contains "$OUT" "\"message\":$K5"
[ "$(q "SELECT kind FROM outreach_events WHERE message_id = $K5")" = bounced_soft ] || die "no-answer event"
expect_req 422 "has a call result already" \
    POST "/api/v1/outreach/messages/$K5/call-result" "$MG" '{"result":"answered"}'
stop_outpostd
pass
