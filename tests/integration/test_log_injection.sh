#!/bin/bash
# Text a client chose cannot forge a log line (docs/OUTPOSTD.md, docs/HQ.md,
# "Logs"): a request path with %0a, %0d and %5c (a backslash) followed by a
# fake line, sent without logging in to outpostd and to outpost-hq, and a
# tus upload whose Upload-Metadata decodes to a newline and a fake
# "segment applied" line, each leave exactly one log line, with the bytes
# escaped (\n, \r, \\) and no line starting with the forged prefix.
set -u
. "$TESTS_DIR/cli/lib.sh"
[ -n "${OUTPOST_HQ:-}" ] && [ -x "$OUTPOST_HQ" ] || skip "outpost-hq is not built"
need curl base64
node_dir
init_node EU-DE

# one_line LOG NEEDLE WANT: exactly one line of LOG contains NEEDLE, and
# it contains WANT (both literal).
one_line() {
    local n
    n=$(grep -cF -- "$2" "$1")
    [ "$n" = 1 ] || die "$n lines of $1 contain '$2', want 1: $(cat "$1")"
    grep -F -- "$2" "$1" | grep -qF -- "$3" || die "the line of '$2' lacks '$3': $(grep -F -- "$2" "$1")"
}
# no_forged LOG PREFIX: no line starts with PREFIX (the forged line).
no_forged() {
    ! grep -q "^$2" "$1" || die "a forged line in $1: $(grep "^$2" "$1")"
}

# ---- outpostd: the access log line of a request without a session -----
start_outpostd --log_requests true
curl -s -o /dev/null --path-as-is \
    "$BASE/api/v1/x%5Cn%0d%0a%3C5%3Eoutpostd:%20user%20admin%20logged%20in%20from%2010.0.0.1" ||
    die "curl failed"
wait_grep "$DAEMON_LOG" 'logged in from' || die "no log line for the request: $(cat "$DAEMON_LOG")"
stop_outpostd
one_line "$DAEMON_LOG" 'logged in from' '/api/v1/x\\n\r\n<5>outpostd: user admin logged in from 10.0.0.1 404'
no_forged "$DAEMON_LOG" '<5>outpostd: user admin'

# ---- outpost-hq: a path, then tus metadata -----------------------------
"$OUTPOST_HQ" --db "$T/hq.db" node add n1 --region EU-DE --out "$T/cred.json" >/dev/null 2>&1 ||
    die "node add failed"
TOKEN=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' "$T/cred.json")
[ -n "$TOKEN" ] || die "no token in $T/cred.json"
"$OUTPOST_HQ" serve --db "$T/hq.db" --spool_dir "$T/hq-uploads" --listen 127.0.0.1:0 \
    --log_requests true 2>"$T/hq.log" &
HQ_PID=$!
track "$HQ_PID"
HQ_PORT=$(wait_line "$T/hq.log" 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$HQ_PID" outpost-hq) || exit 1
HQ="http://127.0.0.1:$HQ_PORT"

curl -s -o /dev/null --path-as-is \
    "$HQ/v1/receipts/1%0a%3C6%3Eoutpost-hq:%20node%20n9%20segment%2042%20applied%5C" ||
    die "curl failed"
wait_grep "$T/hq.log" 'segment 42' || die "no log line for the request: $(cat "$T/hq.log")"
one_line "$T/hq.log" 'segment 42' '/v1/receipts/1\n<6>outpost-hq: node n9 segment 42 applied\\'
no_forged "$T/hq.log" '<6>outpost-hq: node n9'

# A complete upload whose segment name carries a forged line: HQ cannot
# apply the bytes ("abcd" is no segment) and says so, naming the segment.
b64() { printf '%s' "$1" | base64 -w0; }
meta="node $(b64 n1),segment $(b64 $'7\n<6>outpost-hq: node n1 segment 7 applied: 1 records, 1 changed')"
loc=$(curl -s -o /dev/null -D - -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 4' -H "Upload-Metadata: $meta" \
    "$HQ/files" | tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
[ -n "$loc" ] || die "the upload was not created: $(tail -n 5 "$T/hq.log")"
case $loc in http*) ;; *) loc="$HQ$loc" ;; esac
status=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $TOKEN" \
    -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' --data-binary abcd "$loc")
# 460: HQ checked the completed upload, found no segment in it and
# discarded it (docs/SYNC_PROTOCOL.md), logging one line that names it.
[ "$status" = 460 ] || die "PATCH answered $status: $(tail -n 5 "$T/hq.log")"
wait_grep "$T/hq.log" 'node n1 segment 7' || die "no line about the upload: $(cat "$T/hq.log")"
kill -TERM "$HQ_PID"
wait "$HQ_PID" || die "outpost-hq did not stop cleanly: $(cat "$T/hq.log")"
one_line "$T/hq.log" 'segment 7 applied' 'segment 7\n<6>outpost-hq: node n1 segment 7 applied: 1 records, 1 changed'
no_forged "$T/hq.log" '<6>outpost-hq: node n1 segment 7 applied'
pass
