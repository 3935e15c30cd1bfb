-- The sync outbox (outbox.c): batches for the segmenter, the
-- acknowledgement that prunes them, and the figures for status. The rows
-- are written only by the triggers of migration 0006.

-- A batch reads both lanes in one snapshot: a transaction of its own, or
-- a savepoint inside the caller's.
-- name: read_begin
SAVEPOINT outbox_read;

-- name: read_end
RELEASE outbox_read;

-- One lane's window: at most ?2 rows past seq ?1, collapsed to each
-- record's latest row in it. The window's seq range is fixed first;
-- ordering by priority puts erasures before policy acknowledgements in the
-- urgent lane. The two lanes differ only in their priority test, and
-- lane_urgent must come right before lane_ordinary.
-- name: lane_urgent
WITH w AS (SELECT seq, entity, record_id FROM outbox
           WHERE priority < 2 AND seq > ?1 ORDER BY seq LIMIT ?2)
SELECT o.seq, o.entity, o.record_id, o.version, o.hlc, o.op, o.priority, o.created_ms,
       (SELECT max(seq) FROM w), (SELECT count(*) FROM w)
FROM outbox AS o
WHERE o.seq IN (SELECT max(seq) FROM w GROUP BY entity, record_id)
ORDER BY o.priority, o.seq;

-- name: lane_ordinary
WITH w AS (SELECT seq, entity, record_id FROM outbox
           WHERE priority = 2 AND seq > ?1 ORDER BY seq LIMIT ?2)
SELECT o.seq, o.entity, o.record_id, o.version, o.hlc, o.op, o.priority, o.created_ms,
       (SELECT max(seq) FROM w), (SELECT count(*) FROM w)
FROM outbox AS o
WHERE o.seq IN (SELECT max(seq) FROM w GROUP BY entity, record_id)
ORDER BY o.priority, o.seq;

-- An acknowledgement is one savepoint inside the caller's transaction.
-- name: ack_begin
SAVEPOINT outbox_ack;

-- name: ack_rollback
ROLLBACK TO outbox_ack;

-- name: ack_release
RELEASE outbox_ack;

-- AUTOINCREMENT never reuses a seq, so sqlite_sequence holds the largest
-- ever issued (no row: none issued yet).
-- name: ack_issued
SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0);

-- Erasures whose 'erase' rows the acknowledgement up to (?1, ?2) deletes
-- are sent as of ?3.
-- name: ack_erasures_sent
UPDATE erasures SET sent_at_ms = ?3
WHERE sent_at_ms IS NULL
  AND EXISTS (SELECT 1 FROM outbox AS o
              WHERE o.priority < 2 AND o.seq <= ?1 AND o.op = 'erase'
                AND o.entity = erasures.entity AND o.record_id = erasures.record_id);

-- name: ack_delete
DELETE FROM outbox WHERE (priority < 2 AND seq <= ?1) OR (priority = 2 AND seq <= ?2);

-- name: stats
SELECT count(*), coalesce(min(created_ms), 0) FROM outbox;
