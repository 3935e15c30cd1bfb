#!/bin/bash
# outpost-hq end to end on 127.0.0.1 with a port it picks: enrolment and
# its refusals, a segment uploaded with curl over tus and applied, the
# receipt (fields and MAC), the applied upload still answering "complete"
# (a node that lost the final 204 sends nothing again), a replay, and bad
# peers (checksum mismatch,
# forged HMAC, wrong offset, truncated upload, unknown and revoked tokens,
# oversized upload, another node's metadata). Each bad peer asserts its
# status code and that `records --count` did not change. Then termination
# (DELETE) of the truncated upload, and HQ forgetting: canaries of an
# applied segment are in HQ's database or WAL, and after a segment that
# erases and purges them they are in neither, nor in the upload spool.
# Last, SIGHUP: a bad config file refused, then log_level taken at once.
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
need curl openssl
T=$(mktmp)
DB="$T/hq.db"
HQ() { "$OUTPOST_HQ" --db "$DB" "$@"; }

# ---- enrolment and bad CLI input (the store must not change) ----
expect_exit 0 HQ node add nairobi-1 --region KE --out "$T/n1.cred"
[ "$(stat -c %a "$T/n1.cred")" = 600 ] || die "credentials file is not 0600"
expect_contains "$T/n1.cred" '"format":"outpost-node-credentials-1"'
HQ nodes --json >"$T/nodes.before" || die "nodes failed"
expect_exit 3 HQ node add lagos-1 --region XX
expect_contains "$ERR" "region XX"
expect_exit 3 HQ node add 'bad name!' --region KE
expect_contains "$ERR" "node name 'bad name!' is not"
expect_exit 4 HQ node add nairobi-1 --region KE
expect_contains "$ERR" "nairobi-1 already exists"
expect_exit 2 HQ node add nairobi-2
expect_exit 2 HQ frobnicate
HQ nodes --json >"$T/nodes.after" || die "nodes failed"
cmp -s "$T/nodes.before" "$T/nodes.after" || die "a refused command changed the store"
expect_exit 0 HQ node add kisumu-1 --region KE
expect_contains "$OUT" '"node_id":"kisumu-1"'
K2_TOKEN=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$OUT")
expect_exit 0 HQ node revoke kisumu-1
expect_exit 5 HQ node revoke nobody

TOKEN=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$T/n1.cred")
KEY=$(sed -n 's/.*"hq_key":"\([0-9a-f]*\)".*/\1/p' "$T/n1.cred")
[ ${#TOKEN} = 64 ] && [ ${#KEY} = 64 ] || die "no token or key in the credentials"

# ---- serve ----
# start_hq LOG ARGS...: outpost-hq ARGS in the background, its stderr in
# LOG; its pid in $HPID, the port it picked in $PORT and $BASE.
start_hq() {
    local log=$1
    shift
    "$OUTPOST_HQ" "$@" 2>"$log" &
    HPID=$!
    track $HPID
    PORT=$(wait_line "$log" \
        's|^\(<[0-7]>\)\{0,1\}outpost-hq: listening on http://127.0.0.1:\([0-9]*\)$|\2|p' "$HPID" outpost-hq) || exit 1
    BASE="http://127.0.0.1:$PORT"
}
start_hq "$T/hq.log" --db "$DB" serve --listen 127.0.0.1:0 --spool-dir "$T/spool" \
    --max-upload-bytes 1048576

# req METHOD PATH TOKEN [curl args...]: status in $STATUS, body in $OUT,
# headers in $T/headers.
req() {
    local method=$1 path=$2 token=$3
    shift 3
    local args=(-s -o "$OUT" -D "$T/headers" -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    STATUS=$(curl "${args[@]}" "$@" "$BASE$path") || die "curl $method $path failed"
}
expect_status() { [ "$STATUS" = "$1" ] || die "expected HTTP $1, got $STATUS: $(cat "$OUT")"; }
header() { sed -n "s/^$1: *\\(.*\\)\\r$/\\1/Ip" "$T/headers" | head -1; }
b64() { printf %s "$1" | base64 -w0; }
count() { HQ records --count | sed -n 's/^total //p'; }
# create SIZE NODE SEGMENT [TOKEN]: POSTs a tus upload; its path in $LOC.
create() {
    req POST /files/ "${4:-$TOKEN}" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $1" \
        -H "Upload-Metadata: node $(b64 "$2"),segment $(b64 "$3")"
    LOC=$(header Location)
}
# patch FILE OFFSET [CHECKSUM-B64]: PATCHes FILE's bytes at OFFSET.
patch() {
    local sum=${3:-$(openssl dgst -sha1 -binary "$1" | base64 -w0)}
    req PATCH "$LOC" "$TOKEN" -H 'Tus-Resumable: 1.0.0' \
        -H 'Content-Type: application/offset+octet-stream' -H "Upload-Offset: $2" \
        -H "Upload-Checksum: sha1 $sum" --data-binary "@$1"
}
# upload FILE NODE SEGMENT: the whole file in one PATCH. The 204 may reach
# curl before HQ has applied the upload (the receipt is the real answer);
# HQ serves one request at a time on its loop, so a second request returns
# only after the apply and its log line.
upload() {
    create "$(stat -c %s "$1")" "$2" "$3"
    expect_status 201
    patch "$1" 0
    expect_status 204
    req GET /healthz ""
    expect_status 200
}
# upload_refused FILE NODE SEGMENT: a complete upload that is not a valid
# segment of the node: the completing PATCH is answered 460 with a problem
# detail, and the upload is gone (HEAD 404), so the node starts again.
upload_refused() {
    create "$(stat -c %s "$1")" "$2" "$3"
    expect_status 201
    patch "$1" 0
    expect_status 460
    expect_contains "$OUT" "create a new upload and send the data again"
    req HEAD "$LOC" "$TOKEN" -I -H 'Tus-Resumable: 1.0.0'
    expect_status 404
}
mkseg() { "$MAKE_SEGMENT" --credentials "$T/n1.cred" --spool "$T/seg" "$@"; }
mkdir -p "$T/seg"

req GET /healthz ""
expect_status 200
expect_contains "$OUT" '"status":"ok"'

# ---- a segment applied ----
cat >"$T/records.jsonl" <<'EOF'
{"entity":"contact","op":"upsert","record":{"id":"c1","version":1,"given_name":"Wanjiru","email":"w@example.org","street":"Moi Ave 1","country":"KE"}}
{"entity":"contact","op":"upsert","record":{"id":"c2","version":2,"given_name":"Otieno","country":"KE"}}
{"entity":"organization","op":"upsert","record":{"id":"o1","version":1,"name":"Acme Ltd","country":"KE"}}
{"entity":"contact","op":"upsert","record":{"id":"c3","given_name":"no version"}}
EOF
SEG1=$(mkseg --segment 1 --from 0,0 --to 2,40 <"$T/records.jsonl") || die "make_segment failed"
[ "$(count)" = 0 ] || die "records before any upload"
req GET /v1/receipts/1 "$TOKEN"
expect_status 404
expect_contains "$OUT" "not been received"
upload "$SEG1" nairobi-1 1
req GET /v1/receipts/1 "$TOKEN"
expect_status 200
cp "$OUT" "$T/receipt1"
for want in '"node":"nairobi-1"' '"segment":1' '"status":"applied"' \
    '"to":{"urgent":2,"ordinary":40}' '"records":4' '"applied":3' '"set_aside":1' '"reason":""'; do
    expect_contains "$T/receipt1" "$want"
done
MAC=$(sed -n 's/.*"mac":"\([0-9a-f]*\)".*/\1/p' "$T/receipt1")
WANT=$(printf 'outpost-receipt-v1\nnairobi-1\n1\napplied\n2\n40' |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" | sed 's/.*= //')
[ "$MAC" = "$WANT" ] || die "receipt MAC $MAC, expected $WANT"
[ "$(count)" = 3 ] || die "expected 3 records, got $(count)"
HQ records --json >"$T/records.json" || die "records --json failed"
expect_contains "$T/records.json" '{"node":"nairobi-1","entity":"contact","id":"c1","version":1,"op":"upsert","record":{'
expect_contains "$T/records.json" '"email":"h:'
expect_not_contains "$T/records.json" 'w@example.org'
expect_not_contains "$T/records.json" 'Moi Ave'
expect_exit 0 HQ set-aside --node nairobi-1
expect_contains "$OUT" "no integer version"
expect_exit 0 HQ receipts nairobi-1
expect_contains "$OUT" "applied"

# ---- the applied upload is settled: its URL still answers "complete" ----
# A node whose final 204 was lost HEADs its upload URL: it must learn that
# the upload is whole (offset = length), not 404 (which would make it send
# the whole segment again).
SIZE1=$(stat -c %s "$SEG1")
LOC1=$LOC
req HEAD "$LOC1" "$TOKEN" -I -H 'Tus-Resumable: 1.0.0'
expect_status 200
[ "$(header Upload-Offset)" = "$SIZE1" ] || die "HEAD after apply: offset $(header Upload-Offset), expected $SIZE1"
[ "$(header Upload-Length)" = "$SIZE1" ] || die "HEAD after apply: length $(header Upload-Length)"
# it takes no more bytes: an empty PATCH at the end is 204, any byte 409
printf x >"$T/one"
patch "$T/one" "$SIZE1"
expect_status 409
[ "$(header Upload-Offset)" = "$SIZE1" ] || die "409 after apply: offset $(header Upload-Offset)"
: >"$T/empty"
patch "$T/empty" "$SIZE1"
expect_status 204
[ "$(header Upload-Offset)" = "$SIZE1" ] || die "empty PATCH after apply: $(header Upload-Offset)"
req GET /v1/receipts/1 "$TOKEN"
expect_status 200
cmp -s "$OUT" "$T/receipt1" || die "the settled upload changed the receipt: $(cat "$OUT")"
[ "$(count)" = 3 ] || die "PATCHes to the settled upload changed the records"

# ---- replay: the same segment again changes nothing ----
upload "$SEG1" nairobi-1 1
req GET /v1/receipts/1 "$TOKEN"
expect_status 200
cmp -s "$OUT" "$T/receipt1" || die "replay changed the receipt: $(cat "$OUT")"
[ "$(count)" = 3 ] || die "replay changed the records"
expect_contains "$T/hq.log" "segment 1 replayed"
[ "$(grep -c 'segment 1 replayed' "$T/hq.log")" = 1 ] || die "segment 1 was offered more than once"

# ---- bad peers ----
SEG2=$(mkseg --segment 2 --from 2,40 <"$T/records.jsonl") || die "make_segment failed"
SIZE2=$(stat -c %s "$SEG2")
# 460: the checksum does not match the body; nothing stored
create "$SIZE2" nairobi-1 2
expect_status 201
patch "$SEG2" 0 "$(printf 'not the bytes' | openssl dgst -sha1 -binary | base64 -w0)"
expect_status 460
req HEAD "$LOC" "$TOKEN" -H 'Tus-Resumable: 1.0.0'
[ "$(header Upload-Offset)" = 0 ] || die "offset after a 460: $(header Upload-Offset)"
LOC2=$LOC
# 409: a wrong offset
patch "$SEG2" 7
expect_status 409
[ "$(count)" = 3 ] || die "records changed after 460/409"
# truncated: half the bytes, never completed, nothing applied
head -c $((SIZE2 / 2)) "$SEG2" >"$T/half"
patch "$T/half" 0
expect_status 204
[ "$(header Upload-Offset)" = $((SIZE2 / 2)) ] || die "offset after half: $(header Upload-Offset)"
req GET /v1/receipts/2 "$TOKEN"
expect_status 404
[ "$(count)" = 3 ] || die "a truncated upload changed the records"

# forged HMAC: a complete upload that is not this node's segment
FORGED=$(mkseg --segment 3 --from 2,40 --forge-key <"$T/records.jsonl") || die "make_segment"
upload_refused "$FORGED" nairobi-1 3
req GET /v1/receipts/3 "$TOKEN"
expect_status 404
expect_contains "$T/hq.log" "<4>outpost-hq: node nairobi-1 segment 3 refused, upload discarded:"
# a header naming another node
OTHER=$(mkseg --segment 4 --node-id kisumu-1 <"$T/records.jsonl") || die "make_segment"
upload_refused "$OTHER" nairobi-1 4
expect_contains "$T/hq.log" "<4>outpost-hq: node nairobi-1 segment 4 refused, upload discarded:"
HQ nodes --json >"$T/nodes" || die "nodes failed"
expect_contains "$T/nodes" '"name":"nairobi-1","region":"KE","status":"active"'
expect_contains "$T/nodes" '"refused":2'
expect_contains "$T/nodes" '"segments_applied":1'
expect_contains "$T/nodes" '"name":"kisumu-1","region":"KE","status":"revoked"'
[ "$(count)" = 3 ] || die "a forged segment changed the records"

# 401: unknown token, revoked node; 403: another node's metadata; 413
create 100 nairobi-1 5 "0000000000000000000000000000000000000000000000000000000000000000"
expect_status 401
[ -n "$(header WWW-Authenticate)" ] || die "401 without WWW-Authenticate"
create 100 kisumu-1 5 "$K2_TOKEN"
expect_status 401
req GET /v1/receipts/1 "$K2_TOKEN"
expect_status 401
create 100 kisumu-1 5
expect_status 403
create 2000000 nairobi-1 5
expect_status 413
[ "$(count)" = 3 ] || die "refused requests changed the records"

# ---- mailbox ----
printf 'reference data v1\n' >"$T/ref.txt"
expect_exit 0 HQ mailbox post nairobi-1 --kind reference "$T/ref.txt"
[ "$(cat "$OUT")" = 1 ] || die "first mailbox seq: $(cat "$OUT")"
expect_exit 3 HQ mailbox post nairobi-1 --kind policy "$TESTS_DIR/../schema/regions/EU-DE.yaml"
expect_contains "$ERR" "not a valid policy for node nairobi-1 (region KE)"
expect_contains "$ERR" "region: \"EU-DE\" is not KE"
# any file name will do; the hash is what the node's admin accepts
cp "$TESTS_DIR/../schema/regions/KE.yaml" "$T/ke-revised.txt"
expect_exit 0 HQ mailbox post nairobi-1 --kind policy "$T/ke-revised.txt"
expect_contains "$ERR" "policy sha256 $(sha256sum "$T/ke-revised.txt" | cut -c1-64)"
req GET '/v1/mailbox?after=0' "$TOKEN"
expect_status 200
expect_contains "$OUT" '"seq":1,"kind":"reference"'
expect_contains "$OUT" '"last":2'
MMAC=$(sed -n 's/.*"seq":1,[^}]*"mac":"\([0-9a-f]*\)".*/\1/p' "$OUT")
WANT=$(printf 'outpost-mailbox-v1\nnairobi-1\n1\nreference\nreference data v1\n' |
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" | sed 's/.*= //')
[ "$MMAC" = "$WANT" ] || die "mailbox MAC $MMAC, expected $WANT"
req GET '/v1/mailbox?after=2' "$TOKEN"
expect_status 200
expect_contains "$OUT" '{"messages":[],"last":2}'

req GET /metrics ""
expect_status 200
expect_contains "$OUT" "outpost_hq_segments_applied_total 1"
expect_contains "$OUT" "outpost_hq_segments_refused_total 2"
# settled: segment 1 and its replay (the two refused uploads are gone); held: the half
expect_contains "$OUT" "outpost_hq_uploads_settled 2"
expect_contains "$OUT" "outpost_hq_uploads 1"
expect_contains "$OUT" "outpost_hq_spool_bytes $SIZE2"

# ---- termination: the node takes back the truncated upload ----
req OPTIONS /files "$TOKEN"
expect_status 204
[ "$(header Tus-Extension)" = "creation,creation-with-upload,checksum,termination" ] ||
    die "Tus-Extension: $(header Tus-Extension)"
ID2=${LOC2##*/}
[ "$(stat -c %s "$T/spool/$ID2.data")" = $((SIZE2 / 2)) ] || die "the half upload is not in the spool"
expect_exit 0 HQ node add mombasa-1 --region KE --out "$T/n3.cred"
TOKEN3=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$T/n3.cred")
req DELETE "$LOC2" "$TOKEN3" -H 'Tus-Resumable: 1.0.0'
expect_status 404 # another node's upload does not exist for it
req DELETE "$LOC2" "$K2_TOKEN" -H 'Tus-Resumable: 1.0.0'
expect_status 401
req DELETE "$LOC2" "$TOKEN"
expect_status 412
[ -f "$T/spool/$ID2.data" ] && [ -f "$T/spool/$ID2.state" ] || die "a refused DELETE removed files"
req DELETE "$LOC2" "$TOKEN" -H 'Tus-Resumable: 1.0.0'
expect_status 204
[ ! -e "$T/spool/$ID2.data" ] && [ ! -e "$T/spool/$ID2.state" ] || die "terminated upload left files"
req HEAD "$LOC2" "$TOKEN" -I -H 'Tus-Resumable: 1.0.0'
expect_status 404
req DELETE "$LOC2" "$TOKEN" -H 'Tus-Resumable: 1.0.0'
expect_status 404
# the applied segment 1 cannot be taken back: 409, and it still answers complete
req DELETE "$LOC1" "$TOKEN" -H 'Tus-Resumable: 1.0.0'
expect_status 409
expect_contains "$OUT" "cannot be terminated"
[ "$(header Upload-Offset)" = "$SIZE1" ] || die "409 on DELETE: offset $(header Upload-Offset)"
req HEAD "$LOC1" "$TOKEN" -I -H 'Tus-Resumable: 1.0.0'
expect_status 200
[ "$(header Upload-Offset)" = "$SIZE1" ] || die "HEAD after DELETE: $(header Upload-Offset)"
req GET /metrics ""
expect_contains "$OUT" "outpost_hq_uploads 0"
expect_contains "$OUT" "outpost_hq_spool_bytes 0"

# ---- HQ forgets: an erasure leaves no byte of the record in its files ----
# in_files NEEDLE FILE...: true if any FILE holds the text NEEDLE.
in_files() {
    local n=$1 f
    shift
    for f in "$@"; do
        [ -f "$f" ] && grep -qaF -e "$n" -- "$f" && return 0
    done
    return 1
}
# in_spool HEX: true if any file of the upload spool holds the bytes HEX
# (the segment is compressed, so its canaries are looked for as its bytes).
in_spool() {
    local f
    for f in "$T/spool"/*; do
        [ -f "$f" ] && od -An -v -tx1 "$f" | tr -d ' \n' | grep -qF -e "$1" && return 0
    done
    return 1
}
{
    printf '{"entity":"contact","op":"upsert","record":{"id":"c50","version":1,"given_name":"Achieng","region":"CANARY-hq-it-region-7781","country":"KE"}}\n'
    printf '{"entity":"organization","op":"upsert","record":{"id":"o50","version":1,"name":"CANARY-hq-it-org-2290","street":"%s"}}\n' \
        "$(head -c 3000 /dev/zero | tr '\0' 'y')CANARY-hq-it-street-5106"
} >"$T/canary.jsonl"
SEG5=$(mkseg --segment 5 --from 2,40 --to 2,42 <"$T/canary.jsonl") || die "make_segment failed"
SIZE5=$(stat -c %s "$SEG5")
# 32 bytes from the middle of the segment: its compressed records
SLICE5=$(od -An -v -tx1 -j $((SIZE5 / 2)) -N 32 "$SEG5" | tr -d ' \n')
create "$SIZE5" nairobi-1 5
expect_status 201
head -c $((SIZE5 / 2 + 100)) "$SEG5" >"$T/seg5.part"
patch "$T/seg5.part" 0
expect_status 204
in_spool "$SLICE5" || die "the received half of segment 5 is not in the spool (the scan cannot see it)"
tail -c +$((SIZE5 / 2 + 101)) "$SEG5" >"$T/seg5.rest"
patch "$T/seg5.rest" $((SIZE5 / 2 + 100))
expect_status 204
req GET /v1/receipts/5 "$TOKEN"
expect_status 200
expect_contains "$OUT" '"applied":2'
for c in CANARY-hq-it-region-7781 CANARY-hq-it-org-2290 CANARY-hq-it-street-5106; do
    in_files "$c" "$DB" "$DB-wal" || die "canary $c is not in HQ's database or WAL after its segment"
done
! in_spool "$SLICE5" || die "segment 5's bytes are still in the spool after it was applied"
cat >"$T/erase.jsonl" <<'EOF'
{"entity":"contact","op":"erase","record":{"id":"c50","version":2}}
{"entity":"organization","op":"purge","record":{"id":"o50","version":2}}
EOF
SEG6=$(mkseg --segment 6 --from 2,42 --to 2,44 <"$T/erase.jsonl") || die "make_segment failed"
upload "$SEG6" nairobi-1 6
req GET /v1/receipts/6 "$TOKEN"
expect_status 200
expect_contains "$OUT" '"applied":2'
for c in CANARY-hq-it-region-7781 CANARY-hq-it-org-2290 CANARY-hq-it-street-5106; do
    ! in_files "$c" "$DB" "$DB-wal" "$T/spool"/* || die "canary $c is still in HQ's files after the erasure"
done
! in_spool "$SLICE5" || die "segment 5's bytes are in the spool after the erasure"
[ ! -s "$DB-wal" ] || die "HQ's WAL was not truncated after the erasure ($(stat -c %s "$DB-wal") bytes)"
HQ records --json >"$T/records.json" || die "records --json failed"
expect_not_contains "$T/records.json" '"id":"c50"'
expect_not_contains "$T/records.json" '"id":"o50"'

# ---- graceful stop ----
kill -TERM $HPID
rc=0
wait $HPID || rc=$?
[ "$rc" = 0 ] || die "outpost-hq exited $rc on SIGTERM: $(tail -5 "$T/hq.log")"
expect_contains "$T/hq.log" "<5>outpost-hq: stopped"
# every line of the daemon carries its priority for the journal
grep -q "^<5>outpost-hq: listening on http://127.0.0.1:$PORT$" "$T/hq.log" ||
    die "no start line at notice"
if grep -qv '^<[3-7]>outpost-hq: ' "$T/hq.log"; then
    die "lines without a priority: $(grep -v '^<[3-7]>outpost-hq: ' "$T/hq.log" | head -n 3)"
fi
expect_exit 2 "$OUTPOST_HQ" --db "$DB" serve --log-level loud
expect_contains "$ERR" "<3>outpost-hq: serve: --log-level: log_level: expected err, warning"

# ---- SIGHUP: a bad config is refused; log_level is taken at once ----
printf 'db = %s\nspool_dir = %s\nlisten = 127.0.0.1:0\n' "$DB" "$T/spool" >"$T/hq.conf"
start_hq "$T/hq2.log" --config "$T/hq.conf" serve
printf 'db = %s\nmax_uploads = none\n' "$DB" >"$T/hq.conf"
kill -HUP $HPID
for _ in $(seq 1 50); do grep -q "reload refused" "$T/hq2.log" && break; sleep 0.1; done
expect_contains "$T/hq2.log" "<3>outpost-hq: reload refused, keeping the running config: $T/hq.conf:2: max_uploads"
req GET /healthz ""
expect_status 200
# log_level = warning: the reload says so at notice, then what is less
# severe is left out (requests, the stop), a warning is not.
printf 'db = %s\nspool_dir = %s\nlisten = 127.0.0.1:0\nlog_level = warning\n' "$DB" \
    "$T/spool" >"$T/hq.conf"
kill -HUP $HPID
for _ in $(seq 1 50); do grep -q "SIGHUP: log_level warning" "$T/hq2.log" && break; sleep 0.1; done
expect_contains "$T/hq2.log" "<5>outpost-hq: SIGHUP: log_level warning; region profiles will be read again"
lines=$(wc -l <"$T/hq2.log")
req GET /healthz ""
expect_status 200
req GET /v1/receipts/1 "not-a-token"
expect_status 401
kill -TERM $HPID
rc=0
wait $HPID || rc=$?
[ "$rc" = 0 ] || die "second outpost-hq exited $rc on SIGTERM: $(tail -5 "$T/hq2.log")"
[ "$(wc -l <"$T/hq2.log")" = "$lines" ] ||
    die "lines below warning after log_level = warning: $(tail -n +"$((lines + 1))" "$T/hq2.log")"
pass
