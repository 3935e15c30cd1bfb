-- The HQ store's queries (hq_store_sqlite.c): connection settings,
-- transactions, nodes, receipts, records, set-aside records, mailbox and
-- totals. The schema they run on is migrations.sql.

-- name: application_id
PRAGMA application_id;

-- name: user_version
PRAGMA user_version;

-- name: schema_objects
SELECT count(*) FROM sqlite_schema;

-- name: journal_wal
PRAGMA journal_mode = WAL;

-- name: synchronous_full
PRAGMA synchronous = FULL;

-- name: foreign_keys_on
PRAGMA foreign_keys = ON;

-- secure_delete ON, not FAST: a dropped record's bytes are zeroed in its
-- page and in the pages going to the freelist (hq_store_sqlite.c).
-- name: secure_delete_on
PRAGMA secure_delete = ON;

-- name: begin
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: node_add
INSERT INTO nodes (name, region, token_sha256, hq_key, created_ms)
VALUES (?1, ?2, ?3, ?4, ?5);

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
FROM nodes n WHERE n.{key} = ?1;

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
UPDATE nodes SET revoked = 1, revoked_ms = coalesce(revoked_ms, ?2) WHERE name = ?1;

-- name: node_touch
UPDATE nodes SET last_contact_ms = ?2 WHERE name = ?1 AND last_contact_ms < ?2 - 5000;

-- name: node_refused
UPDATE nodes SET refused = refused + 1, last_refusal = ?2,
       last_contact_ms = max(last_contact_ms, ?3)
WHERE name = ?1;

-- The columns read_receipt reads.
-- name: receipt_get
SELECT node, segment, status, to_urgent, to_ordinary, records, applied, set_aside, reason,
       received_ms, segment_created_ms
FROM receipts WHERE node = ?1 AND segment = ?2;

-- name: receipt_put
INSERT INTO receipts (node, segment, status, to_urgent, to_ordinary, records, applied,
                      set_aside, reason, received_ms, segment_created_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11);

-- name: receipts_list
SELECT node, segment, status, to_urgent, to_ordinary, records, applied, set_aside, reason,
       received_ms, segment_created_ms
FROM receipts WHERE (?1 IS NULL OR node = ?1) ORDER BY node, segment;

-- name: record_put
INSERT INTO records (node, entity, id, version, op, record, segment)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (node, entity, id) DO UPDATE SET version = excluded.version, op = excluded.op,
       record = excluded.record, segment = excluded.segment;

-- name: set_aside_add
INSERT INTO set_aside (node, segment, line, entity, id, reason)
VALUES (?1, ?2, ?3, ?4, ?5, ?6);

-- A patch HQ could not apply: set aside, and listed in the receipt.
-- name: needs_whole_add
INSERT INTO set_aside (node, segment, line, entity, id, reason, needs_whole)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1);

-- name: needs_whole_list
SELECT node, segment, line, entity, id, reason FROM set_aside
WHERE node = ?1 AND segment = ?2 AND needs_whole = 1 ORDER BY line;

-- The stored record: what a patch applies to, and what an apply replaces
-- (a replacement that drops a value truncates the log).
-- name: record_full
SELECT version, op, record FROM records WHERE node = ?1 AND entity = ?2 AND id = ?3;

-- name: records_list
SELECT node, entity, id, version, op, record FROM records
WHERE op IN ('upsert', 'delete') AND (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR entity = ?2)
ORDER BY node, entity, id;

-- A node's tombstones (erase, purge, withdraw), for the digests of
-- anti-entropy format 2 (hq_verify.c): no record text. ?2 unused.
-- name: tombstones_list
SELECT node, entity, id, version, op, NULL FROM records
WHERE op IN ('erase', 'purge', 'withdraw') AND node = ?1 AND (?2 IS NULL OR entity = ?2)
ORDER BY node, entity, id;

-- name: records_count
SELECT entity, count(*) FROM records
WHERE op IN ('upsert', 'delete') AND (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR entity = ?2)
GROUP BY entity ORDER BY entity;

-- name: set_aside_list
SELECT node, segment, line, entity, id, reason FROM set_aside
WHERE (?1 IS NULL OR node = ?1) ORDER BY node, segment, line;

-- One row, in struct hq_totals' order.
-- name: totals
SELECT (SELECT count(*) FROM nodes),
       (SELECT count(*) FROM nodes WHERE revoked),
       (SELECT count(*) FROM records WHERE record IS NOT NULL),
       (SELECT count(*) FROM records WHERE record IS NULL),
       (SELECT count(*) FROM receipts WHERE status = 'applied'),
       (SELECT count(*) FROM receipts WHERE status = 'rejected'),
       (SELECT coalesce(sum(refused), 0) FROM nodes),
       (SELECT count(*) FROM set_aside),
       (SELECT count(*) FROM mailbox);

-- name: mailbox_next
UPDATE nodes SET mailbox_seq = mailbox_seq + 1 WHERE name = ?1 RETURNING mailbox_seq;

-- A policy message keeps the SHA-256 of its text (mailbox_policy).
-- name: mailbox_add
INSERT INTO mailbox (node, seq, kind, body, created_ms, policy_hash)
VALUES (?1, ?2, ?3, ?4, ?5, CASE ?3 WHEN 'policy' THEN outpost_sha256_hex(?4) END);

-- The columns mailbox_row reads.
-- name: mailbox_list
SELECT seq, kind, body, created_ms FROM mailbox WHERE node = ?1 AND seq > ?2
ORDER BY seq LIMIT ?3;

-- name: mailbox_policy
SELECT seq, kind, body, created_ms FROM mailbox WHERE node = ?1 AND policy_hash = ?2
ORDER BY seq LIMIT 1;

-- Analysts (hq_analyst_http.c): the columns read_analyst reads.

-- name: analyst_add
INSERT INTO analysts (name, token_sha256, created_ms) VALUES (?1, ?2, ?3);

-- name: analyst_by_token
SELECT name, revoked, created_ms, coalesce(revoked_ms, 0), last_used_ms
FROM analysts WHERE token_sha256 = ?1;

-- name: analyst_list
SELECT name, revoked, created_ms, coalesce(revoked_ms, 0), last_used_ms
FROM analysts ORDER BY name;

-- name: analyst_revoke
UPDATE analysts SET revoked = 1, revoked_ms = coalesce(revoked_ms, ?2) WHERE name = ?1;

-- name: analyst_touch
UPDATE analysts SET last_used_ms = ?2 WHERE name = ?1 AND last_used_ms < ?2 - 5000;

-- name: verify_put
INSERT INTO verify_last (node, at_ms, result, compared, hq_records, ranges, requests, bytes,
                         drift, resent, reported)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
ON CONFLICT (node) DO UPDATE SET at_ms = excluded.at_ms, result = excluded.result,
  compared = excluded.compared, hq_records = excluded.hq_records, ranges = excluded.ranges,
  requests = excluded.requests, bytes = excluded.bytes, drift = excluded.drift,
  resent = excluded.resent, reported = excluded.reported;

-- name: verify_get
SELECT node, at_ms, result, compared, hq_records, ranges, requests, bytes, drift, resent, reported
FROM verify_last WHERE node = ?1;
