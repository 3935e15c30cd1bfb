-- Status (ledger_status.c): the link statistics the uplink records and the
-- figures `outpost status` reads, from the daemon's ledger or read-only
-- from a database beside it (which may lack the ledger's tables, or the
-- newest columns).

-- name: note_link
UPDATE sync_state SET goodput_bps = ?1, bytes_day = ?2, bytes_today = ?3,
    last_error = coalesce(?4, last_error)
WHERE id = 1;

-- The wire counters of the day and the round trips saved (?1: 1 when the
-- day did not change, else the wire counters start again).
-- name: note_counters
UPDATE sync_state SET sent_today = ?2 + CASE WHEN ?1 THEN sent_today ELSE 0 END,
    resent_today = ?3 + CASE WHEN ?1 THEN resent_today ELSE 0 END,
    receipts_inline = receipts_inline + ?4, mailbox_skipped = mailbox_skipped + ?5
WHERE id = 1;

-- name: count_error
INSERT INTO sync_errors (kind, n, last_ms, last) VALUES (?1, 1, ?2, ?3)
ON CONFLICT (kind) DO UPDATE SET n = n + 1, last_ms = ?2, last = ?3;

-- name: has_table
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1;

-- name: identity
SELECT node_id, region FROM sync_state WHERE id = 1;

-- A database outpostd has not migrated yet has no such column.
-- name: waiting
SELECT waiting FROM sync_state WHERE id = 1;

-- A database outpostd has not migrated yet has no such columns.
-- name: counters
SELECT sent_today, resent_today, receipts_inline, mailbox_skipped FROM sync_state WHERE id = 1;

-- name: settled
SELECT coalesce(sum(state = 2), 0), coalesce(sum(state = 3), 0) FROM sync_segments;

-- The uploads HQ holds and has not settled: in flight, or paused with
-- their URL (docs/UPLINK.md, "Two uploads"); charged = HQ's last offset.
-- name: uploads
SELECT no, charged, bytes FROM sync_segments
WHERE upload_url <> '' AND state IN (0, 1) ORDER BY no LIMIT 4;

-- name: errors
SELECT kind, n FROM sync_errors ORDER BY n DESC, kind LIMIT 16;

-- name: set_waiting
UPDATE sync_state SET waiting = ?1 WHERE id = 1 AND waiting <> ?1;

-- The daily budget (sync_ledger_charge_upload): what of segment ?1's
-- upload is charged already, and the new value with the day's count.
-- name: charged
SELECT charged FROM sync_segments WHERE no = ?1;

-- name: set_charged
UPDATE sync_segments SET charged = ?2 WHERE no = ?1;

-- name: charge_day
UPDATE sync_state SET bytes_day = ?1, bytes_today = ?2 WHERE id = 1;
