#!/bin/bash
# Crash-only: kill -9 outpostd while clients are writing, several times.
# Every create that was acknowledged (201 with an id) must be in the
# database after the restart, nothing half-written may remain, and the
# database must pass `outpost check`.
set -u
. "$TESTS_DIR/cli/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
T=$(mktmp)
export OUTPOST_DB="$T/node.db"
"$OUTPOST" init --region KE >/dev/null || die "init failed"
printf 'correct horse writer\n' | "$OUTPOST" user add writer --role manager --password-stdin \
    >/dev/null || die "user add"
TOKEN=$("$OUTPOST" token create --user writer 2>/dev/null | grep -o 'opk_[A-Za-z0-9_-]*')
DPID=""
trap '[ -n "$DPID" ] && kill -9 $DPID 2>/dev/null; rm -rf "$LIB_ROOT"' EXIT

start() {
    : >"$T/daemon.log"
    "$OUTPOSTD" --db "$OUTPOST_DB" --listen 127.0.0.1:0 --workers 4 2>"$T/daemon.log" &
    DPID=$!
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/daemon.log")
        [ -n "$PORT" ] && return 0
        sleep 0.05
    done
    die "outpostd did not start: $(cat "$T/daemon.log")"
}

# writer N: creates contacts until the daemon dies; logs acknowledged ids.
writer() {
    local n=$1 i=0 body status id
    while :; do
        i=$((i + 1))
        body="{\"given_name\":\"W$n\",\"family_name\":\"Crash$i\",\"locality\":\"Nairobi\"}"
        status=$(curl -s -o "$T/w$n.out" -w '%{http_code}' -m 5 \
            -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
            -d "$body" "http://127.0.0.1:$PORT/api/v1/contacts?skip_duplicate_check=true") || break
        [ "$status" = 201 ] || break
        id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/w$n.out")
        [ -n "$id" ] && echo "$id" >>"$T/acked"
    done
}

: >"$T/acked"
for round in 1 2 3 4 5; do
    start
    for n in 1 2 3 4; do writer "$n$round" & done
    sleep 0.$((3 + round))
    kill -9 $DPID
    wait $DPID 2>/dev/null
    DPID=""
    wait # the writers stop on the first failed request
done
acked=$(wc -l <"$T/acked")
[ "$acked" -gt 20 ] || die "too few acknowledged writes to mean anything: $acked"

# Restart clean, then check every acknowledged id is there, once.
start
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" | grep -q 200 ||
    die "no health after restart"
kill $DPID
wait $DPID || die "outpostd did not stop cleanly after the crashes"
DPID=""
missing=0
while read -r id; do
    [ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts WHERE id = '$id'")" = 1 ] ||
        missing=$((missing + 1))
done <"$T/acked"
[ $missing = 0 ] || die "$missing of $acked acknowledged writes are missing after kill -9"
# Every stored contact has its audit row: no write was half done.
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts c WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.record_id = c.id AND a.action = 'create')")" = 0 ] ||
    die "a contact without its audit row"
expect_exit 0 "$OUTPOST" check
echo "ok: $acked acknowledged writes survived 5 kill -9 rounds" >&2
pass
