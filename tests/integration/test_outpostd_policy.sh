#!/bin/bash
# outpostd and the region policy: forbidden and undefined custom fields are
# refused with 422 and a JSON pointer; on SIGHUP a broken policy is refused
# with a log line naming file and line and the running one is kept, a good
# one takes effect; a node whose policy is broken does not start.
set -u
. "$TESTS_DIR/cli/lib.sh"
. "$TESTS_DIR/integration/api_lib.sh"
mkdir -p "$T/p"
POLICY="$T/p/EU-DE.yaml"
write_policy() { # $1: extra YAML appended to the shared opening and a custom field
    cat "$TESTS_DIR/cli/policy/EU-DE-head.yaml" - >"$POLICY" <<YAML
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
init_node EU-DE
add_user maria manager

# A broken policy: the daemon does not start, and says where.
printf 'retention:\n  activity: {days: 0, basis: "x"}\n' >>"$POLICY"
if outpostd_starts --workers 2; then die "outpostd started with a broken policy"; fi
wait $DPID 2>/dev/null
expect_contains "$T/daemon.log" "$POLICY:"
write_policy 'forbidden:
  - field: contact.birth_date
    reason: "not needed here"
    basis: "rule BD-1"'
start_outpostd --workers 2

req POST /api/v1/session "" '{"name":"maria","password":"correct horse maria"}'
expect_status 201
TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$OUT")
[ -n "$TOKEN" ] || die "no token"

expect_req 422 '"pointer":"/birth_date"' POST /api/v1/contacts "$TOKEN" \
    '{"family_name":"Weber","birth_date":"1980-01-02"}'
expect_contains "$OUT" "birth_date: not collected in EU-DE: not needed here (rule BD-1)"
expect_req 422 '"pointer":"/custom/shoe"' POST /api/v1/contacts "$TOKEN" \
    '{"family_name":"Weber","custom":{"shoe":"44"}}'
expect_req 422 '"pointer":"/custom/segment"' POST /api/v1/contacts "$TOKEN" \
    '{"family_name":"Weber","custom":{"segment":"pirate"}}'
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Weber","custom":{"segment":"retail"}}'
expect_status 201
[ "$(sqlite3 "$OUTPOST_DB" "SELECT count(*) FROM contacts")" = 1 ] || die "refused writes wrote"

# SIGHUP with a broken policy: refused, logged with file and line, old kept.
printf 'retention:\n  activity: {days: 0, basis: "x"}\n' >>"$POLICY"
kill -HUP $DPID
wait_grep "$T/daemon.log" "policy reload refused"
expect_contains "$T/daemon.log" "policy reload refused, keeping the running policy: invalid region policy: $POLICY:18: retention.activity.days"
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Roth","birth_date":"1980-01-02"}'
expect_status 422

# SIGHUP with a good policy that no longer forbids birth_date.
write_policy ''
kill -HUP $DPID
wait_grep "$T/daemon.log" "region policy reloaded"
expect_contains "$T/daemon.log" "region policy reloaded (sha256 "
req POST /api/v1/contacts "$TOKEN" '{"family_name":"Roth","birth_date":"1980-01-02"}'
expect_status 201

stop_outpostd
pass
