#!/bin/bash
# outpost retention run: records past the region policy's limit are purged
# (blanked, tombstoned, audited) and recent ones kept; --dry-run changes
# nothing; a node without retention rules purges nothing; a bad policy
# file stops the command with FILE:LINE and changes nothing.
set -u
. "$TESTS_DIR/cli/lib.sh"
need sqlite3
node_dir cd
mkdir -p "$T/p"
POLICY="$T/p/EU-DE.yaml"
# the opening every test policy shares (tests/cli/policy/EU-DE-head.yaml), then the rules
cat "$TESTS_DIR/cli/policy/EU-DE-head.yaml" - >"$POLICY" <<'YAML'
retention:
  activity: {days: 365, basis: "test rule A-365"}
  note: {days: 30, basis: "test rule N-30"}
YAML
export OUTPOST_POLICY="$POLICY"
init_node EU-DE

expect_exit 0 "$OUTPOST" retention --help
expect_contains "$OUT" "usage: outpost retention run"
expect_exit 2 "$OUTPOST" retention
expect_exit 2 "$OUTPOST" retention run --batch 0

expect_exit 0 "$OUTPOST" contact add --family-name Weber
cid=$(sed -n 's/^created contact \([0-9a-f-]*\) (version 1)$/\1/p' "$OUT")
[ -n "$cid" ] || die "no id in: $(cat "$OUT")"

# Activities are set up directly: the CLI has no activity command. Ages
# come from occurred_at, so these are old and new whatever the clock says.
sqlite3 "$DB" "
INSERT INTO activities (id, version, created_hlc, updated_hlc, channel, direction, body,
                        occurred_at, contact_id)
VALUES ('0190b5a0-0000-7000-8000-0000000000a1', 1, 1, 1, 'call', 'outbound',
        'CANARY-old-visit-3391', '2019-05-01T10:00:00Z', '$cid'),
       ('0190b5a0-0000-7000-8000-0000000000a2', 1, 1, 1, 'call', 'outbound',
        'a recent call', strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-2 days'), '$cid');" ||
    die "cannot set up activities"

state() { sqlite3 "$DB" "SELECT group_concat(id || ':' || version || ':' || deleted, ' ')
                         FROM activities; SELECT count(*) FROM audit_log" | tr '\n' ' '; }
before=$(state)
expect_exit 0 "$OUTPOST" retention run --dry-run
expect_contains "$OUT" "activities: 1 would be purged (older than 365 days by occurred_at"
expect_contains "$OUT" "test rule A-365"
expect_contains "$OUT" "notes: 0 would be purged"
[ "$(state)" = "$before" ] || die "a dry run changed the database"

expect_exit 0 "$OUTPOST" retention run
expect_contains "$OUT" "activities: 1 purged"
expect_contains "$OUT" "purged 1 records"
got=$(sqlite3 "$DB" "SELECT deleted, version, body IS NULL FROM activities
                     WHERE id = '0190b5a0-0000-7000-8000-0000000000a1'")
[ "$got" = "1|2|1" ] || die "old activity not purged: $got"
got=$(sqlite3 "$DB" "SELECT deleted, body FROM activities
                     WHERE id = '0190b5a0-0000-7000-8000-0000000000a2'")
[ "$got" = "0|a recent call" ] || die "recent activity changed: $got"
got=$(sqlite3 "$DB" "SELECT actor, action FROM audit_log WHERE action = 'purge'")
case "$got" in
cli:*"|purge") ;;
*) die "no audit row for the purge: $got" ;;
esac
expect_exit 0 "$OUTPOST" check
if grep -qa "CANARY-old-visit-3391" "$DB" "$DB-wal" 2>/dev/null; then
    die "the purged text is still in the database files"
fi

# nothing more to do
expect_exit 0 "$OUTPOST" retention run
expect_contains "$OUT" "activities: 0 purged"

# a policy without retention rules
sed -i '/^retention:/,$d' "$POLICY"
expect_exit 0 "$OUTPOST" retention run
expect_contains "$OUT" "has no retention rules: nothing to purge"

# a broken policy stops the command, naming file and line
printf 'retention:\n  activity: {days: 0, basis: "x"}\n' >>"$POLICY"
before=$(state)
expect_exit 1 "$OUTPOST" retention run
expect_contains "$ERR" "$POLICY:"
[ "$(state)" = "$before" ] || die "a refused run changed the database"
# and so does a missing one
expect_exit 1 env OUTPOST_POLICY="$T/p/none.yaml" "$OUTPOST" retention run
expect_contains "$ERR" "none.yaml"
pass
