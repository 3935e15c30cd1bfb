-- Policies from HQ (policy_change.c): the policy ledger and the mailbox's
-- policy messages. Acceptance runs these inside the store's write
-- transaction, from reading the pending row to its commit.

-- name: record
INSERT INTO policy_ledger (at_ms, actor, kind, old_hash, new_hash, mailbox_seq, summary)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7);

-- name: supersede
UPDATE mailbox SET status = 'refused',
    reason = 'superseded by policy message ' || ?1 || ' from HQ'
WHERE kind = 'policy' AND status = 'pending' AND seq < ?1;

-- name: pending
SELECT seq, created_at, received_ms, reason, body FROM mailbox
WHERE kind = 'policy' AND status = 'pending' ORDER BY seq DESC LIMIT 1;

-- name: ledger_count
SELECT count(*) FROM policy_ledger;

-- The newest ?1 entries, oldest first: those after the row just before
-- them (none, so every row, when ?1 is past the start).
-- name: ledger_rows
SELECT at_ms, actor, kind, old_hash, new_hash, mailbox_seq, summary FROM policy_ledger
WHERE id > coalesce((SELECT id FROM policy_ledger ORDER BY id DESC LIMIT 1 OFFSET ?1), 0)
ORDER BY id;

-- name: accept
UPDATE mailbox SET status = 'applied', reason = 'accepted at the node by ' || ?2
WHERE seq = ?1 AND status = 'pending';
