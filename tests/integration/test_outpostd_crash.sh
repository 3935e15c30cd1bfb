#!/bin/bash
# Crash-only: kill -9 outpostd while clients are writing, several times.
# Every create that was acknowledged (201 with an id) must be in the
# database after the restart, nothing half-written may remain, and the
# database must pass `outpost check`.
set -u
. "$TESTS_DIR/cli/lib.sh"
need curl
node_dir
init_node KE
add_user writer manager
TOKEN=$(api_token writer)

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
    start_outpostd --workers 4
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
start_outpostd --workers 4
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
