-- Anti-entropy at the node (ledger_verify.c; docs/SYNC_PROTOCOL.md,
-- "Anti-entropy"): the checks asked for and their results (sync_verify,
-- migration 0020), and the repairs: a record queued again in the outbox
-- exactly as a change of it would queue it.

-- The oldest check asked for and not yet run.
-- name: pending
SELECT id FROM sync_verify WHERE finished_ms IS NULL ORDER BY id LIMIT 1;

-- When the last check ended (0: never).
-- name: last_finished
SELECT coalesce(max(finished_ms), 0) FROM sync_verify WHERE finished_ms IS NOT NULL;

-- ?1 now, ?2 origin ('cli' or 'schedule').
-- name: request
INSERT INTO sync_verify (requested_ms, origin) VALUES (?1, ?2) RETURNING id;

-- name: finish
UPDATE sync_verify SET finished_ms = ?2, result = ?3, compared = ?4, hq_records = ?5,
    ranges = ?6, requests = ?7, bytes = ?8, drift = ?9, resent = ?10, reported = ?11,
    detail = ?12
WHERE id = ?1 AND finished_ms IS NULL;

-- Keeps the last 100 checks.
-- name: trim
DELETE FROM sync_verify WHERE id <= (SELECT max(id) FROM sync_verify) - 100;

-- The check `id`, or the last finished one when ?1 is NULL.
-- name: get
SELECT id, requested_ms, origin, coalesce(finished_ms, 0), coalesce(result, ''), compared,
       hq_records, ranges, requests, bytes, drift, resent, reported, detail
FROM sync_verify
WHERE (?1 IS NOT NULL AND id = ?1) OR (?1 IS NULL AND finished_ms IS NOT NULL)
ORDER BY id DESC LIMIT 1;

-- One record queued again (?1 id, ?2 entity name, ?3 now): as the
-- triggers of migration 0006 queue a change, ordinary lane.
-- name: enqueue_one_{table}
-- each table: contacts organizations contact_organizations deals activities tasks notes consents
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?2, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?3
  FROM {table} WHERE id = ?1;

-- How a record was tombstoned: 'erase' or 'purge' (no row: it was not).
-- ?1 entity, ?2 id.
-- name: tombstoned
SELECT action FROM audit_log
WHERE entity = ?1 AND record_id = ?2 AND action IN ('erase', 'purge')
ORDER BY seq DESC LIMIT 1;

-- An erased or purged record's tombstone queued again (?1 id, ?2 entity
-- name, ?3 now, ?4 'erase' or 'purge'): urgent lane, as the erasure was.
-- name: enqueue_tombstone_{table}
-- each table: contacts organizations contact_organizations deals activities tasks notes consents
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?2, id, version, updated_hlc, ?4, 0, ?3 FROM {table} WHERE id = ?1;

-- The tombstones HQ acknowledged (egress_held rows of state 2, gone): in
-- the node's set as gone, so a tombstone HQ lost is found (format 2).
-- name: held_gone
SELECT entity, record_id, version, hash FROM egress_held WHERE state = 2;

-- What the node believes HQ holds of (?1 entity, ?2 id): its state
-- (0 live, 1 deleted, 2 gone), no row when nothing.
-- name: held_state
SELECT state FROM egress_held WHERE entity = ?1 AND record_id = ?2;

-- HQ holds a tombstone (?1 entity, ?2 id, ?3 HQ's version, ?4 the gone
-- hash) the node kept no row for (a tombstone acknowledged before the
-- node kept them): learnt, so the next check compares it.
-- name: adopt_gone
INSERT INTO egress_held (entity, record_id, version, state, hash, fields)
VALUES (?1, ?2, ?3, 2, ?4, NULL)
ON CONFLICT (entity, record_id) DO UPDATE SET version = excluded.version, state = 2,
    hash = excluded.hash, fields = NULL;

-- A withdrawal HQ lost, queued again on the urgent lane (?1 id, ?2
-- entity name, ?3 now): a change of the record, which the segmenter
-- withdraws since it is withheld.
-- name: enqueue_urgent_{table}
-- each table: contacts organizations contact_organizations deals activities tasks notes consents
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?2, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 0, ?3
  FROM {table} WHERE id = ?1;
