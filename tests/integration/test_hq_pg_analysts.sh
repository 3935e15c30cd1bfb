#!/bin/bash
# Analysts in SQL (docs/HQ.md): on HQ's PostgreSQL store (a throwaway
# cluster, tests/support/pg_cluster.sh), `outpost-hq analyst grant-sql`
# makes a login role whose password it prints once. Connected as that
# role, an analyst reads the analytics views (records per region, contacts
# with their fields as columns, aggregates, receipts per node) and nothing
# else: the raw tables, the nodes' credentials and the analysts' token
# hashes are refused, and so is every write. Tombstones (an erased
# record) never show in the views. Bad names and a SQLite store are
# refused without a change.
set -u
# shellcheck source=tests/cli/lib.sh
. "$TESTS_DIR/cli/lib.sh"
need psql
[ -n "${OUTPOST_TEST_PG:-}" ] || skip "OUTPOST_TEST_PG is not set: run under tests/support/pg_cluster.sh"
T=$(mktmp)
HQ() { "$OUTPOST_HQ" --store "$OUTPOST_TEST_PG" "$@"; }
SU() { psql -X -q -v ON_ERROR_STOP=1 -tA -d outpost_test -c "$1"; }
roles() { SU "SELECT count(*) FROM pg_roles WHERE rolname NOT LIKE 'pg_%'"; }

# the store is created on first use; two nodes in two regions
expect_exit 0 HQ node add nairobi-1 --region KE --out "$T/n1.cred"
expect_exit 0 HQ node add berlin-1 --region EU-DE --out "$T/n2.cred"
expect_exit 0 HQ analyst add dashboard

# what the nodes sent (rows as applies write them)
SU "INSERT INTO records (node, entity, id, version, op, record, segment) VALUES
  ('nairobi-1', 'contact', 'c1', 1, 'upsert',
   '{\"id\":\"c1\",\"version\":1,\"given_name\":\"Wanjiru\",\"email\":\"hmac:ab12\",\"locality\":\"Nairobi\"}', 1),
  ('nairobi-1', 'contact', 'c2', 3, 'erase', NULL, 2),
  ('nairobi-1', 'deal', 'd1', 2, 'upsert',
   '{\"id\":\"d1\",\"title\":\"Pumps\",\"stage\":\"won\",\"amount_minor\":125000,\"currency\":\"KES\"}', 1),
  ('berlin-1', 'contact', 'c9', 1, 'upsert', '{\"id\":\"c9\",\"given_name\":\"Jonas\"}', 1),
  ('berlin-1', 'aggregate', 'contacts_by_channel', 4, 'upsert', '{\"cells\":[[\"email\",12]]}', 4)"
SU "INSERT INTO receipts VALUES ('nairobi-1', 1, 'applied', 2, 0, 3, 3, 0, '', 1700000000000, 1699999990000),
  ('nairobi-1', 2, 'applied', 2, 0, 1, 1, 0, '', 1700000060000, 1700000050000)"

# refusals change nothing
before=$(roles)
expect_exit 3 HQ analyst grant-sql 'Robert"; DROP TABLE records; --'
expect_contains "$ERR" "use 1 to 63 of a-z, 0-9 and _"
expect_exit 3 HQ analyst grant-sql pg_monitor_x1
expect_contains "$ERR" "that name is PostgreSQL's"
expect_exit 2 "$OUTPOST_HQ" --db "$T/hq.db" analyst grant-sql alice
expect_contains "$ERR" "needs the PostgreSQL store"
expect_exit 2 HQ analyst grant-sql
[ "$(roles)" = "$before" ] || die "a refused grant-sql changed the roles"
[ "$(SU 'SELECT count(*) FROM records')" = 5 ] || die "a refused grant-sql changed the records"

# the role, its password printed once
expect_exit 0 HQ analyst grant-sql alice
PW=$(cat "$OUT")
[ "${#PW}" = 48 ] || die "expected a 48-digit password, got '$PW'"
expect_contains "$ERR" "role alice may log in"
expect_exit 4 HQ analyst grant-sql alice
expect_contains "$ERR" "role alice already exists"
# only the SCRAM verifier is kept
[ "$(SU "SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = 'alice'")" = t ] ||
    die "alice's password is not kept as a SCRAM verifier"

AN() { PGUSER=alice PGPASSWORD=$PW psql -X -q -tA -d outpost_test -c "$1"; }
refused() { # SQL: the analyst is refused with a permission error
    if PGUSER=alice PGPASSWORD=$PW psql -X -q -tA -d outpost_test -c "$1" >"$T/an.out" 2>&1; then
        die "alice was allowed: $1 -> $(cat "$T/an.out")"
    fi
    grep -qE "permission denied|must be owner|cannot" "$T/an.out" ||
        die "alice refused for another reason: $1 -> $(cat "$T/an.out")"
}

# a wrong password does not log in
if PGUSER=alice PGPASSWORD=wrong psql -X -tA -d outpost_test -c 'SELECT 1' >"$T/w.out" 2>&1; then
    die "alice logged in with a wrong password"
fi
expect_contains "$T/w.out" "password authentication failed"

# the views
[ "$(AN "SELECT region || ':' || entity || ':' || records FROM analytics.record_counts ORDER BY 1")" = \
    "$(printf 'EU-DE:contact:1\nKE:contact:1\nKE:deal:1')" ] || die "record_counts: $(AN 'TABLE analytics.record_counts')"
[ "$(AN "SELECT given_name || '/' || email || '/' || locality || '/' || region FROM analytics.contacts WHERE id = 'c1'")" = \
    "Wanjiru/hmac:ab12/Nairobi/KE" ] || die "analytics.contacts does not break the record out"
[ "$(AN "SELECT count(*) FROM analytics.contacts WHERE id = 'c2'")" = 0 ] || die "an erased contact shows"
[ "$(AN "SELECT count(*) FROM analytics.records WHERE record IS NULL")" = 0 ] || die "a tombstone shows"
[ "$(AN "SELECT amount_minor || ' ' || currency FROM analytics.deals")" = "125000 KES" ] || die "analytics.deals"
[ "$(AN "SELECT region || ' ' || (answer -> 'cells' -> 0 ->> 1) FROM analytics.aggregates WHERE aggregate = 'contacts_by_channel'")" = \
    "EU-DE 12" ] || die "analytics.aggregates"
[ "$(AN "SELECT node || ' ' || count(*) || ' ' || sum(records) FROM analytics.receipts GROUP BY node")" = \
    "nairobi-1 2 4" ] || die "analytics.receipts"
[ "$(AN "SELECT string_agg(node || '/' || region, ',' ORDER BY node) FROM analytics.nodes")" = \
    "berlin-1/EU-DE,nairobi-1/KE" ] || die "analytics.nodes"

# nothing else: raw tables, credentials, token hashes, writes
refused "SELECT count(*) FROM records"
refused "SELECT token_sha256 FROM nodes"
refused "SELECT hq_key FROM nodes"
refused "SELECT token_sha256 FROM analysts"
refused "SELECT count(*) FROM mailbox"
refused "SELECT count(*) FROM forget_pending"
refused "INSERT INTO analytics.nodes (node, region) VALUES ('x', 'KE')"
refused "UPDATE analytics.contacts SET given_name = 'x'"
refused "DELETE FROM analytics.records"
refused "DELETE FROM records"
refused "CREATE TABLE public.mine (x int)"
refused "CREATE VIEW analytics.mine AS SELECT 1"
refused "DROP VIEW analytics.contacts"
[ "$(SU 'SELECT count(*) FROM records')" = 5 ] || die "the records changed"
[ "$(SU 'SELECT count(*) FROM nodes')" = 2 ] || die "the nodes changed"

# a store outpost-hq opens again (a restart) keeps the grant
expect_exit 0 HQ nodes
[ "$(AN 'SELECT count(*) FROM analytics.contacts')" = 2 ] || die "the grant did not survive a reopen"
pass
