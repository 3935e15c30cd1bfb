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

-- A refusal that left in segment ?6, in the egress ledger
-- (docs/AGGREGATES.md): ?1 now, ?2 the request, ?3 the aggregate asked
-- for, ?4 its parameters as HQ gave them, ?5 the policy hash, ?7 the
-- refusal exactly as sent.
-- name: aggregate_refusal_egress
INSERT INTO aggregate_egress (sent_ms, via, requester, name, params, policy_hash, segment_no, body)
VALUES (?1, 'segment', ?2, ?3, ?4, ?5, ?6, ?7);

-- Requests whose latest answer (or refusal) went into a segment that is
-- gone before HQ acknowledged it (voided when the policy changed: its row
-- dropped) are pending again, to be answered under the policy in force.
-- Acknowledged and rejected segments keep their rows, so their requests
-- stay answered.
-- name: aggregate_requeue_voided
UPDATE mailbox SET status = 'pending',
       reason = 'answered again: the segment that carried the answer was voided'
WHERE kind = 'aggregate_request' AND status != 'pending'
  AND seq IN (SELECT CAST(substr(last.requester, 9) AS INTEGER)
              FROM (SELECT requester, segment_no, max(seq) FROM aggregate_egress
                    WHERE via = 'segment' AND requester LIKE 'mailbox:%'
                    GROUP BY requester) AS last -- segment_no: the newest row's
              WHERE NOT EXISTS (SELECT 1 FROM sync_segments s WHERE s.no = last.segment_no));

-- What pacing decides on (ledger_pace): the waiting segments not yet taken
-- by the link (no upload URL), the newest waiting segment's bytes, the
-- unsegmented rows per lane past ?1 (urgent) and ?2 (ordinary), and when
-- the oldest and the newest unsegmented ordinary rows were queued (seq
-- order is queue order; 0 for none).
-- name: pace
SELECT (SELECT count(*) FROM sync_segments WHERE state IN (0, 1) AND upload_url = ''),
       coalesce((SELECT bytes FROM sync_segments WHERE state IN (0, 1) ORDER BY no DESC LIMIT 1),
                0),
       (SELECT count(*) FROM outbox WHERE priority < 2 AND seq > ?1),
       (SELECT count(*) FROM outbox WHERE priority = 2 AND seq > ?2),
       coalesce((SELECT created_ms FROM outbox WHERE priority = 2 AND seq > ?2
                 ORDER BY priority, seq LIMIT 1), 0),
       coalesce((SELECT created_ms FROM outbox WHERE priority = 2 AND seq > ?2
                 ORDER BY priority DESC, seq DESC LIMIT 1), 0);
