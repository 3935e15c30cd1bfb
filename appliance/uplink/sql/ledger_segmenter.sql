-- The segmenter (ledger_segmenter.c): the spool's state, and a cut
-- segment's row with the cursor past it, committed in one transaction.

-- name: set_spool_full
UPDATE sync_state SET spool_full = ?1 WHERE id = 1;

-- name: insert_segment
INSERT INTO sync_segments (no, from_urgent, from_ordinary, to_urgent, to_ordinary, bytes,
                           records, state, path, policy_hash, created_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, ?9, ?10);

-- name: advance_cursor
UPDATE sync_state SET segmented_urgent = ?1, segmented_ordinary = ?2, next_segment = ?3,
    bytes_per_record = ?4
WHERE id = 1;

-- Aggregate requests from HQ's mailbox not yet answered, oldest first,
-- at most ?1 (docs/AGGREGATES.md): answered in the next segment.
-- name: aggregate_requests
SELECT seq, body FROM mailbox
WHERE kind = 'aggregate_request' AND status = 'pending'
ORDER BY seq LIMIT ?1;

-- A request answered (status applied) or refused, in the segment's transaction.
-- name: aggregate_answered
UPDATE mailbox SET status = ?2, reason = ?3 WHERE seq = ?1 AND status = 'pending';
