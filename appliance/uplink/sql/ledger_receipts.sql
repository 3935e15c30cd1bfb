-- Receipts (ledger_receipts.c): HQ's word on one segment. An applied
-- receipt acknowledges the range, the segment and the last sync in one
-- transaction (with outbox_ack); a rejected one marks the segment and
-- blocks sync (ledger_state.sql, set_blocked).

-- name: forget_voided
DELETE FROM spool_voided WHERE no = ?1;

-- name: mark_acked
UPDATE sync_segments SET state = 2, acked_ms = ?2 WHERE no = ?1;

-- name: advance_acked
UPDATE sync_state SET acked_urgent = max(acked_urgent, ?1),
    acked_ordinary = max(acked_ordinary, ?2), last_sync_ms = ?3
WHERE id = 1;

-- name: mark_rejected
UPDATE sync_segments SET state = 3, reason = ?2, acked_ms = ?3 WHERE no = ?1;
