-- Uploads (ledger_uploads.c): the segment that goes next, its upload, and
-- the voided segments whose uploads HQ may still hold part of. Only a
-- segment still waiting to be uploaded (state 0 or 1) changes here.

-- Read in the order ledger_row_to_segment expects. ?1: a segment another
-- upload slot holds (0: none).
-- name: next
SELECT no, from_urgent, from_ordinary, to_urgent, to_ordinary, bytes, records, state, path,
       upload_url, created_ms
FROM sync_segments WHERE state IN (0, 1) AND no != ?1 ORDER BY no LIMIT 1;

-- A new upload at HQ holds nothing yet: nothing of it is charged.
-- name: set_url
UPDATE sync_segments SET upload_url = ?2,
    charged = CASE WHEN upload_url = ?2 THEN charged ELSE 0 END
WHERE no = ?1 AND state IN (0, 1);

-- name: mark_uploaded
UPDATE sync_segments SET state = 1, uploaded_ms = ?2 WHERE no = ?1 AND state IN (0, 1);

-- name: next_voided
SELECT no, upload_url FROM spool_voided WHERE upload_url != '' ORDER BY no LIMIT 1;

-- A voided segment HQ never had (its upload unknown at HQ, no receipt;
-- ledger_uploads.c, sync_ledger_forget_unsent_voided): the records that
-- first went into it are forgotten as sent, so no withdrawal names them,
-- unless a segment was cut after it (that one may carry them again and
-- its rows are these). One transaction with the row's removal.
-- name: cut_after
SELECT count(*) FROM sync_segments WHERE no > ?1;

-- name: forget_unsent_records
DELETE FROM egress_sent WHERE segment_no = ?1;

-- name: forget_unsent_voided
DELETE FROM spool_voided WHERE no = ?1;
