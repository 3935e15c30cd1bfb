-- Field-level deltas (ledger_deltas.c, docs/SYNC.md "Nothing new,
-- nothing sent"): what HQ holds of a record and what is on its way there.
-- Tables: egress_held, egress_flight, sync_state.hq_patches
-- (schema/migrations/0018_projection_hashes.sql), sync_segments, spool_voided.

-- Rows of segments that no longer exist (voided and settled, rejected)
-- count for nothing. A voided segment whose upload HQ may still settle
-- (its spool_voided row) keeps its rows until then.
-- name: flight_clean
DELETE FROM egress_flight
WHERE segment_no NOT IN (SELECT no FROM sync_segments WHERE state IN (0, 1))
  AND segment_no NOT IN (SELECT no FROM spool_voided);

-- What HQ will hold of (?1 entity, ?2 id) when it has applied every
-- segment in the spool: the newest in-flight row, else the held one.
-- name: base
SELECT version, state, hash, fields FROM (
    SELECT version, state, hash, fields, segment_no FROM egress_flight
    WHERE entity = ?1 AND record_id = ?2
      AND segment_no IN (SELECT no FROM sync_segments WHERE state IN (0, 1))
    UNION ALL
    SELECT version, state, hash, fields, -1 FROM egress_held
    WHERE entity = ?1 AND record_id = ?2)
ORDER BY segment_no DESC LIMIT 1;

-- Whether a voided segment HQ may still apply carried the record: then
-- what HQ holds is not known, and the whole record goes.
-- name: uncertain
SELECT 1 FROM egress_flight
WHERE entity = ?1 AND record_id = ?2 AND segment_no IN (SELECT no FROM spool_voided)
LIMIT 1;

-- In the segment's transaction: ?1 segment, ?2 entity, ?3 id, ?4 version,
-- ?5 state, ?6 hash, ?7 field digests (NULL for gone).
-- name: flight_put
INSERT OR REPLACE INTO egress_flight (segment_no, entity, record_id, version, state, hash, fields)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7);

-- An applied receipt for segment ?1: HQ holds what it carried (unless it
-- holds a newer version already: the newest wins, as at HQ).
-- name: promote
INSERT INTO egress_held (entity, record_id, version, state, hash, fields)
SELECT entity, record_id, version, state, hash, fields FROM egress_flight
WHERE segment_no = ?1 AND 1
ON CONFLICT (entity, record_id) DO UPDATE SET version = excluded.version, state = excluded.state,
    hash = excluded.hash, fields = excluded.fields
WHERE excluded.version >= egress_held.version;

-- name: flight_drop
DELETE FROM egress_flight WHERE segment_no = ?1;

-- HQ said it lacks the base of a patch for (?1 entity, ?2 id): what it
-- holds is not known, so nothing is assumed.
-- name: held_forget
DELETE FROM egress_held WHERE entity = ?1 AND record_id = ?2;

-- name: flight_forget
DELETE FROM egress_flight WHERE entity = ?1 AND record_id = ?2;

-- name: patches_get
SELECT hq_patches FROM sync_state WHERE id = 1;

-- name: patches_set
UPDATE sync_state SET hq_patches = ?1 WHERE id = 1;

-- The record (?1 entity's name, ?2 id, ?3 now) queued again (ordinary
-- lane) so the segmenter sends it whole.
-- name: requeue_{table}
-- each table: contacts organizations contact_organizations deals activities tasks notes consents
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT ?1, id, version, updated_hlc, CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, ?3
  FROM {table} WHERE id = ?2;

-- A cut that sent nothing while no segment waits: its outbox rows are
-- consumed at once, both cursors past them (?1 urgent, ?2 ordinary).
-- name: advance_both
UPDATE sync_state SET segmented_urgent = ?1, segmented_ordinary = ?2,
    acked_urgent = max(acked_urgent, ?1), acked_ordinary = max(acked_ordinary, ?2)
WHERE id = 1;
