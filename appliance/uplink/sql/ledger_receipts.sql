-- Receipts (ledger_receipts.c): HQ's word on one segment. An applied
-- receipt acknowledges the range, the segment and the last sync in one
-- transaction (with outbox_ack); a rejected one marks the segment and
-- blocks sync (ledger_state.sql, set_blocked).

-- name: forget_voided
DELETE FROM spool_voided WHERE no = ?1;

-- name: mark_acked
UPDATE sync_segments SET state = 2, acked_ms = ?2 WHERE no = ?1;

-- Two uploads may be in flight (docs/UPLINK.md, "Two uploads"), so a
-- receipt can come for segment N+1 before N's. The outbox is acknowledged
-- only up to the end of the settled prefix: the acknowledged segments
-- below the lowest one still waiting (state 0 or 1). ?1: segment no.
-- name: lower_waiting
SELECT count(*) FROM sync_segments WHERE no < ?1 AND state IN (0, 1);

-- name: acked_prefix
SELECT coalesce(max(to_urgent), 0), coalesce(max(to_ordinary), 0) FROM sync_segments
WHERE state = 2
  AND no < coalesce((SELECT min(no) FROM sync_segments WHERE state IN (0, 1)), 9223372036854775807);

-- name: advance_acked
UPDATE sync_state SET acked_urgent = max(acked_urgent, ?1),
    acked_ordinary = max(acked_ordinary, ?2), last_sync_ms = ?3
WHERE id = 1;

-- name: mark_rejected
UPDATE sync_segments SET state = 3, reason = ?2, acked_ms = ?3 WHERE no = ?1;
