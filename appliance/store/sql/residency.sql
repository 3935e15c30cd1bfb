-- The residency rules' queries (residency.c): relations, voiding the spool,
-- the policy in force and what HQ may hold. Tables: spool_voided,
-- egress_sent, sync_state.spool_epoch / policy_hash
-- (schema/migrations/0009_residency.sql), erasures, outbox, sync_segments.

-- name: erased
SELECT 1 FROM erasures WHERE subject_id = ?1 LIMIT 1;

-- name: queued
SELECT 1 FROM outbox WHERE entity = ?1 AND record_id = ?2 LIMIT 1;

-- name: hq_may_have
SELECT 1 FROM egress_sent WHERE entity = ?1 AND record_id = ?2;

-- name: sent_record
INSERT OR IGNORE INTO egress_sent (entity, record_id, segment_no) VALUES (?1, ?2, ?3);

-- Voiding: the files of unacknowledged segments, then (?1 why, ?2 now)
-- listing them as voided, forgetting what went only into segments of
-- which no byte left, dropping them and rewinding the segmented cursors.

-- name: unacked_paths
SELECT path FROM sync_segments WHERE state IN (0, 1);

-- name: void_list
INSERT OR REPLACE INTO spool_voided (no, path, upload_url, reason, voided_ms)
SELECT no, path, upload_url, ?1, ?2 FROM sync_segments WHERE state IN (0, 1);

-- name: void_forget_unsent
DELETE FROM egress_sent WHERE segment_no IN (SELECT no FROM sync_segments
                                             WHERE state = 0 AND upload_url = '');

-- name: void_drop_segments
DELETE FROM sync_segments WHERE state IN (0, 1);

-- name: void_rewind
UPDATE sync_state SET segmented_urgent = acked_urgent, segmented_ordinary = acked_ordinary,
                      spool_epoch = spool_epoch + 1, spool_full = 0
 WHERE id = 1;

-- The sweep after the voiding committed.

-- name: voided_paths
SELECT path FROM spool_voided WHERE path != '';

-- name: sweep_drop
DELETE FROM spool_voided WHERE upload_url = '';

-- name: sweep_forget_paths
UPDATE spool_voided SET path = '' WHERE path != '';

-- name: policy_hash
SELECT policy_hash FROM sync_state WHERE id = 1;

-- name: policy_hash_set
UPDATE sync_state SET policy_hash = ?1 WHERE id = 1;

-- Queuing records again (ordinary lane) so the segmenter judges them anew:
-- ?1 the parent's id, ?2 now (Unix ms), ?3 the entity's name.

-- name: enqueue_{table}_of_contact
-- each table: contact_organizations deals activities tasks notes consents
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?3, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?2
  FROM {table} WHERE contact_id = ?1;

-- name: enqueue_{table}_of_organization
-- each table: contact_organizations deals activities tasks notes
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?3, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?2
  FROM {table} WHERE organization_id = ?1;

-- name: enqueue_{table}_of_deal
-- each table: activities tasks notes
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?3, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?2
  FROM {table} WHERE deal_id = ?1;

-- name: enqueue_{table}_of_contact_deals
-- each table: activities tasks notes
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?3, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?2
  FROM {table} WHERE deal_id IN (SELECT id FROM deals WHERE contact_id = ?1);

-- name: enqueue_{table}_of_organization_deals
-- each table: activities tasks notes
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?3, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?2
  FROM {table} WHERE deal_id IN (SELECT id FROM deals WHERE organization_id = ?1);

-- Every record of a table (?2 now, ?3 the entity's name; ?1 unused).
-- name: enqueue_all_{table}
-- each table: contacts organizations contact_organizations deals activities tasks notes consents
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?3, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?2
  FROM {table};
