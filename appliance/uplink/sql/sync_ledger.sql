-- The sync ledger's opening, policy reload and the reconciling of spool
-- and segment table after a restart (sync_ledger.c). Tables:
-- schema/migrations/0007_sync.sql. A segment's columns are read in the
-- order ledger_row_to_segment (ledger_state.c) expects.

-- name: schema_version
PRAGMA user_version;

-- Who the node is, for `outpost status`; a region block is over.
-- name: open_record
UPDATE sync_state SET node_id = ?1, region = ?2, spool_cap = ?3,
    blocked = CASE blocked_kind WHEN 'region' THEN '' ELSE blocked END,
    blocked_kind = CASE blocked_kind WHEN 'region' THEN '' ELSE blocked_kind END
WHERE id = 1;

-- The segments not yet acknowledged or rejected, in order.
-- name: unsettled_segments
SELECT no, from_urgent, from_ordinary, to_urgent, to_ordinary, bytes, records, state, path,
       upload_url, created_ms
FROM sync_segments WHERE state IN (0, 1) ORDER BY no;

-- A row whose file is gone: it and every later unsettled segment go, and
-- the segmented cursor rewinds to where it began.
-- name: drop_from
DELETE FROM sync_segments WHERE no >= ?1 AND state IN (0, 1);

-- name: rewind_cursor
UPDATE sync_state SET segmented_urgent = ?1, segmented_ordinary = ?2 WHERE id = 1;

-- A new policy after a rejection: segment again from the acknowledged
-- cursor; spooled segments were cut under the old one.
-- name: drop_unsettled
DELETE FROM sync_segments WHERE state IN (0, 1);

-- name: unblock
UPDATE sync_state SET segmented_urgent = acked_urgent, segmented_ordinary = acked_ordinary,
    blocked = '', blocked_kind = '', blocked_policy = ''
WHERE id = 1;
