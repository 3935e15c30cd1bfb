-- The mailbox (ledger_mailbox.c): HQ's messages and the cursor past them,
-- committed in one transaction.

-- name: store_message
INSERT OR IGNORE INTO mailbox (seq, kind, created_at, body, status, reason, received_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7);

-- name: advance
UPDATE sync_state SET mailbox_after = ?1 WHERE id = 1;
