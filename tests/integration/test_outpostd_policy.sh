#!/bin/bash
# outpostd and the region policy: forbidden and undefined custom fields are
# refused with 422 and a JSON pointer; on SIGHUP a broken policy is refused
# with a log line naming file and line and the running one is kept, a good
# one takes effect; a node whose policy is broken does not start.
set -u
. "$TESTS_DIR/cli/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
T=$(mktmp)
export OUTPOST_DB="$T/node.db"
mkdir -p "$T/p"
POLICY="$T/p/EU-DE.yaml"
write_policy() { # $1: extra YAML appended
    cat >"$POLICY" <<YAML
format: outpost-region-policy/1
region: EU-DE
country: DE
name: Test
default_class: local_only
default_basis: "test"
custom_fields:
  - entity: contact
    name: segment
    type: enum
    values: [retail, wholesale]
    basis: "test"
$1
YAML
}
write_policy 'forbidden:
  - field: contact.birth_date
    reason: "not needed here"
    basis: "rule BD-1"'
export OUTPOST_POLICY="$POLICY"
"$OUTPOST" init --region EU-DE >/dev/null || die "init failed"
printf 'correct horse maria\n' |
    "$OUTPOST" user add maria --role manager --password-stdin >/dev/null || die "user add"

start() {
    "$OUTPOSTD" --db "$OUTPOST_DB" --listen 127.0.0.1:0 --workers 2 2>"$T/daemon.log" &
    DPID=$!
    PORT=""
    for _ in $(seq 1 100); do
        PORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$T/daemon.log")
        [ -n "$PORT" ] && break
        kill -0 $DPID 2>/dev/null || return 1
        sleep 0.1
    done
    [ -n "$PORT" ] || die "outpostd did not report its port"
    BASE="http://127.0.0.1:$PORT"
}
DPID=""
trap '[ -n "$DPID" ] && kill -9 $DPID 2>/dev/null; rm -rf "$LIB_ROOT"' EXIT

# A broken policy: the daemon does not start, and says where.
printf 'retention:\n  activity: {days: 0, basis: "x"}\n' >>"$POLICY"
if start; then die "outpostd started with a broken policy"; fi
wait $DPID 2>/dev/null
expect_contains "$T/daemon.log" "$POLICY:"
write_policy 'forbidden:
  - field: contact.birth_date
    reason: "not needed here"
    basis: "rule BD-1"'
start || die "outpostd exited: $(cat "$T/daemon.log")"

req() {
    local method=$1 path=$2 token=${3:-} body=${4:-}
    local args=(-s -o "$OUT" -w '%{http_code}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    STATUS=$(curl "${args[@]}" "$BASE$path") || die "curl $method $path failed"
}
expect_status() { [ "$STATUS" = "$1" ] || die "expected HTTP $1, got $STATUS: $(cat "$OUT")"; }
req POST /api/v1/session "" '{"name":"maria","password":"correct horse maria"}'
expect_status 201
TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$OUT")
[ -n "$TOKEN" ] || die "no token"

req POST /api/v1/contacts "$TOKEN" '{"family_name":"Weber","birth_date":"1980-01-02"}'
expect_status 422
expect_contains "$OUT" '"pointer":"/birth_date"'
expect_contains "$OUT" "birth_date: not collected in EU-DE: not needed here (rule BD-1)"
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Weber","custom":{"shoe":"44"}}'
expect_status 422
expect_contains "$OUT" '"pointer":"/custom/shoe"'
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Weber","custom":{"segment":"pirate"}}'
expect_status 422
expect_contains "$OUT" '"pointer":"/custom/segment"'
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Weber","custom":{"segment":"retail"}}'
expect_status 201
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts")" = 1 ] || die "refused writes wrote"

# SIGHUP with a broken policy: refused, logged with file and line, old kept.
printf 'retention:\n  activity: {days: 0, basis: "x"}\n' >>"$POLICY"
kill -HUP $DPID
for _ in $(seq 1 50); do
    grep -q "policy reload refused" "$T/daemon.log" && break
    sleep 0.1
done
expect_contains "$T/daemon.log" "policy reload refused, keeping the running policy: invalid region policy: $POLICY:18: retention.activity.days"
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Roth","birth_date":"1980-01-02"}'
expect_status 422

# SIGHUP with a good policy that no longer forbids birth_date.
write_policy ''
kill -HUP $DPID
for _ in $(seq 1 50); do
    grep -q "region policy reloaded" "$T/daemon.log" && break
    sleep 0.1
done
expect_contains "$T/daemon.log" "region policy reloaded (sha256 "
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Roth","birth_date":"1980-01-02"}'
expect_status 201

kill -TERM $DPID
wait $DPID || die "outpostd exited with $? on SIGTERM: $(cat "$T/daemon.log")"
DPID=""
pass
