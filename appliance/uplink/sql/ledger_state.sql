-- The ledger's state (ledger_state.c): the one sync_state row and the rows
-- of the segment table. Each query is one statement; the transactions are
-- the callers'.

-- Read in the order ledger_load_state expects.
-- name: load
SELECT segmented_urgent, segmented_ordinary, acked_urgent, acked_ordinary, next_segment,
       blocked, blocked_kind, blocked_policy, spool_full, bytes_per_record, goodput_bps,
       last_sync_ms, bytes_day, bytes_today, last_error, mailbox_after, spool_cap, spool_epoch,
       policy_hash
FROM sync_state WHERE id = 1;

-- Read in the order ledger_row_to_segment expects.
-- name: get_segment
SELECT no, from_urgent, from_ordinary, to_urgent, to_ordinary, bytes, records, state, path,
       upload_url, created_ms
FROM sync_segments WHERE no = ?1;

-- name: set_blocked
UPDATE sync_state SET blocked = ?1, blocked_kind = ?2, blocked_policy = ?3 WHERE id = 1;

-- Bytes and count of the segments not yet acknowledged or rejected.
-- name: spool_usage
SELECT coalesce(sum(bytes), 0), count(*) FROM sync_segments WHERE state IN (0, 1);

-- Outbox rows past the segmented cursor (?1 urgent, ?2 ordinary).
-- name: unsegmented
SELECT (SELECT count(*) FROM outbox WHERE priority < 2 AND seq > ?1)
     + (SELECT count(*) FROM outbox WHERE priority = 2 AND seq > ?2);
