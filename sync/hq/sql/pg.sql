-- The HQ store's queries on PostgreSQL (hq_store_pg.c): the same
-- operations as hq.sql, in PostgreSQL's dialect ($1 parameters, bytea,
-- GREATEST). Each is prepared once per connection under its name. The
-- schema they run on is pg_migrations.sql.

-- name: begin
BEGIN;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- The applies of one node wait for each other (a per-node lock held to
-- the end of the transaction): two receivers applying segments of the
-- same node never interleave their version checks.
-- name: lock_node
SELECT pg_advisory_xact_lock(1330992201, hashtext($1::text));

-- After a commit that dropped record data: dead row versions of records
-- (and its TOAST table) are removed, so no later scan or page reuse keeps
-- them reachable (docs/HQ.md, "Erasure on PostgreSQL").
-- name: vacuum_records
VACUUM (INDEX_CLEANUP ON) records;

-- name: node_add
INSERT INTO nodes (name, region, token_sha256, hq_key, created_ms)
VALUES ($1, $2, $3, $4, $5);

-- A node with its sync state; the columns read_node reads.
-- name: node_by_{key}
-- each key: name token_sha256
SELECT n.name, n.region, n.hq_key, n.revoked, n.created_ms, n.last_contact_ms, n.refused,
       n.last_refusal,
       (SELECT count(*) FROM receipts r WHERE r.node = n.name AND r.status = 'applied'),
       (SELECT count(*) FROM receipts r WHERE r.node = n.name AND r.status = 'rejected'),
       (SELECT count(*) FROM set_aside s WHERE s.node = n.name),
       (SELECT max(segment) FROM receipts r WHERE r.node = n.name AND r.status = 'applied'),
       (SELECT segment_created_ms FROM receipts r WHERE r.node = n.name AND r.status = 'applied'
        ORDER BY segment DESC LIMIT 1),
       n.mailbox_seq
FROM nodes n WHERE n.{key} = $1;

-- name: node_list
SELECT n.name, n.region, n.hq_key, n.revoked, n.created_ms, n.last_contact_ms, n.refused,
       n.last_refusal,
       (SELECT count(*) FROM receipts r WHERE r.node = n.name AND r.status = 'applied'),
       (SELECT count(*) FROM receipts r WHERE r.node = n.name AND r.status = 'rejected'),
       (SELECT count(*) FROM set_aside s WHERE s.node = n.name),
       (SELECT max(segment) FROM receipts r WHERE r.node = n.name AND r.status = 'applied'),
       (SELECT segment_created_ms FROM receipts r WHERE r.node = n.name AND r.status = 'applied'
        ORDER BY segment DESC LIMIT 1),
       n.mailbox_seq
FROM nodes n ORDER BY n.name;

-- name: node_revoke
UPDATE nodes SET revoked = 1, revoked_ms = coalesce(revoked_ms, $2) WHERE name = $1;

-- name: node_touch
UPDATE nodes SET last_contact_ms = $2 WHERE name = $1 AND last_contact_ms < $2::bigint - 5000;

-- name: node_refused
UPDATE nodes SET refused = refused + 1, last_refusal = $2,
       last_contact_ms = GREATEST(last_contact_ms, $3)
WHERE name = $1;

-- The columns read_receipt reads.
-- name: receipt_get
SELECT node, segment, status, to_urgent, to_ordinary, records, applied, set_aside, reason,
       received_ms, segment_created_ms
FROM receipts WHERE node = $1 AND segment = $2;

-- name: receipt_put
INSERT INTO receipts (node, segment, status, to_urgent, to_ordinary, records, applied,
                      set_aside, reason, received_ms, segment_created_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- name: receipts_list
SELECT node, segment, status, to_urgent, to_ordinary, records, applied, set_aside, reason,
       received_ms, segment_created_ms
FROM receipts WHERE ($1::text IS NULL OR node = $1::text) ORDER BY node, segment;

-- One round trip per record: the version rules of hq_store.h (as
-- hq_store_sqlite.c applies them) in the statement's WHERE. A row comes
-- back when the record changed, none when it was stale.
-- An upsert or delete: stored unless its version is below the stored one,
-- or equal to an erased or purged one (the same version again is the
-- node's re-projection, which replaces what HQ holds, a withdrawal too).
-- name: record_put_data
INSERT INTO records (node, entity, id, version, op, record, segment)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (node, entity, id) DO UPDATE SET version = excluded.version, op = excluded.op,
       record = excluded.record, segment = excluded.segment
WHERE excluded.version > records.version
   OR (excluded.version = records.version AND records.op NOT IN ('erase', 'purge'))
RETURNING 1;

-- An erase, purge or withdraw: the data goes whatever the version says
-- and the higher version is kept; over a tombstone at least as new it is
-- stale.
-- name: record_put_tombstone
INSERT INTO records (node, entity, id, version, op, record, segment)
VALUES ($1, $2, $3, $4, $5, NULL, $6)
ON CONFLICT (node, entity, id) DO UPDATE
   SET version = GREATEST(records.version, excluded.version), op = excluded.op, record = NULL,
       segment = excluded.segment
WHERE NOT (records.op IN ('erase', 'purge', 'withdraw') AND records.version >= excluded.version)
RETURNING 1;

-- name: set_aside_add
INSERT INTO set_aside (node, segment, line, entity, id, reason)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: needs_whole_add
INSERT INTO set_aside (node, segment, line, entity, id, reason, needs_whole)
VALUES ($1, $2, $3, $4, $5, $6, 1);

-- name: needs_whole_list
SELECT node, segment, line, entity, id, reason FROM set_aside
WHERE node = $1 AND segment = $2 AND needs_whole = 1 ORDER BY line;

-- name: record_full
SELECT version, op, record FROM records WHERE node = $1 AND entity = $2 AND id = $3;

-- COLLATE "C": the byte order SQLite sorts text in, whatever the
-- database's collation.
-- name: records_list
SELECT node, entity, id, version, op, record FROM records
WHERE op IN ('upsert', 'delete') AND ($1::text IS NULL OR node = $1::text)
  AND ($2::text IS NULL OR entity = $2::text)
ORDER BY node COLLATE "C", entity COLLATE "C", id COLLATE "C";

-- A node's tombstones (erase, purge, withdraw), for the digests of
-- anti-entropy format 2 (hq_verify.c): no record text. $2 unused.
-- name: tombstones_list
SELECT node, entity, id, version, op, NULL FROM records
WHERE op IN ('erase', 'purge', 'withdraw') AND node = $1::text
  AND ($2::text IS NULL OR entity = $2::text)
ORDER BY node COLLATE "C", entity COLLATE "C", id COLLATE "C";

-- name: records_count
SELECT entity, count(*) FROM records
WHERE op IN ('upsert', 'delete') AND ($1::text IS NULL OR node = $1::text)
  AND ($2::text IS NULL OR entity = $2::text)
GROUP BY entity ORDER BY entity COLLATE "C";

-- name: set_aside_list
SELECT node, segment, line, entity, id, reason FROM set_aside
WHERE ($1::text IS NULL OR node = $1::text) ORDER BY node COLLATE "C", segment, line;

-- One row, in struct hq_totals' order.
-- name: totals
SELECT (SELECT count(*) FROM nodes),
       (SELECT count(*) FROM nodes WHERE revoked <> 0),
       (SELECT count(*) FROM records WHERE record IS NOT NULL),
       (SELECT count(*) FROM records WHERE record IS NULL),
       (SELECT count(*) FROM receipts WHERE status = 'applied'),
       (SELECT count(*) FROM receipts WHERE status = 'rejected'),
       (SELECT coalesce(sum(refused), 0) FROM nodes),
       (SELECT count(*) FROM set_aside),
       (SELECT count(*) FROM mailbox);

-- The row lock on the node orders concurrent posts: each gets the next
-- seq, none the same.
-- name: mailbox_next
UPDATE nodes SET mailbox_seq = mailbox_seq + 1 WHERE name = $1 RETURNING mailbox_seq;

-- name: mailbox_add
INSERT INTO mailbox (node, seq, kind, body, created_ms, policy_hash)
VALUES ($1, $2, $3, $4, $5, CASE WHEN $3::text = 'policy' THEN encode(sha256($4), 'hex') END);

-- name: mailbox_list
SELECT seq, kind, body, created_ms FROM mailbox WHERE node = $1 AND seq > $2
ORDER BY seq LIMIT $3;

-- name: mailbox_policy
SELECT seq, kind, body, created_ms FROM mailbox WHERE node = $1 AND policy_hash = $2
ORDER BY seq LIMIT 1;

-- name: analyst_add
INSERT INTO analysts (name, token_sha256, created_ms) VALUES ($1, $2, $3);

-- name: analyst_by_token
SELECT name, revoked, created_ms, coalesce(revoked_ms, 0), last_used_ms
FROM analysts WHERE token_sha256 = $1;

-- name: analyst_list
SELECT name, revoked, created_ms, coalesce(revoked_ms, 0), last_used_ms
FROM analysts ORDER BY name COLLATE "C";

-- name: analyst_revoke
UPDATE analysts SET revoked = 1, revoked_ms = coalesce(revoked_ms, $2) WHERE name = $1;

-- name: analyst_touch
UPDATE analysts SET last_used_ms = $2 WHERE name = $1 AND last_used_ms < $2::bigint - 5000;

-- name: verify_put
INSERT INTO verify_last (node, at_ms, result, compared, hq_records, ranges, requests, bytes,
                         drift, resent, reported)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (node) DO UPDATE SET at_ms = excluded.at_ms, result = excluded.result,
  compared = excluded.compared, hq_records = excluded.hq_records, ranges = excluded.ranges,
  requests = excluded.requests, bytes = excluded.bytes, drift = excluded.drift,
  resent = excluded.resent, reported = excluded.reported;

-- name: verify_get
SELECT node, at_ms, result, compared, hq_records, ranges, requests, bytes, drift, resent, reported
FROM verify_last WHERE node = $1;

-- Analysts in SQL (docs/HQ.md): the read-only group role the login roles
-- of analysts join, and what it may read: the analytics schema's views.
-- name: analyst_role_exists
SELECT count(*) FROM pg_roles WHERE rolname = 'outpost_analyst';

-- name: analyst_role_create
CREATE ROLE outpost_analyst NOLOGIN;

-- name: analyst_role_usage
GRANT USAGE ON SCHEMA analytics TO outpost_analyst;

-- name: analyst_role_select
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO outpost_analyst;

-- Views a later migration adds are readable too.
-- name: analyst_role_default
ALTER DEFAULT PRIVILEGES IN SCHEMA analytics GRANT SELECT ON TABLES TO outpost_analyst;

-- name: analyst_login_exists
SELECT count(*) FROM pg_roles WHERE rolname = $1;

-- The statement that makes an analyst's login role, quoted by the server
-- (%I, %L), since a role's name cannot be a parameter; $2 is the SCRAM
-- verifier of the password, never the password.
-- name: analyst_login_text
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE outpost_analyst', $1::text, $2::text);

-- Per connection: a commit returns only once it is durable, whatever the
-- server's default.
-- name: synchronous_commit_on
SET synchronous_commit = on;

-- Notes, inside the transaction dropping record data, that it did.
-- name: forget_note
INSERT INTO forget_pending (xid) VALUES (pg_current_xact_id()::text::bigint)
ON CONFLICT (xid) DO NOTHING;

-- The newest such transaction (its 32-bit xid), or NULL when none waits.
-- name: forget_newest
SELECT max(xid), (max(xid) % 4294967296)::text FROM forget_pending;

-- name: forget_done
DELETE FROM forget_pending WHERE xid <= $1;

-- Client sessions whose snapshot is older than transaction $1: while one
-- is open, VACUUM must keep the row versions it may still see.
-- name: older_snapshots
SELECT count(*) FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND backend_xmin IS NOT NULL AND age(backend_xmin) >= age($1::text::xid);
