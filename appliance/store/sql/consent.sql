-- The consent ledger's side tables (consent.c): double opt-in tokens, kept
-- by their SHA-256, and the suppression list, kept by a keyed hash of the
-- address. The consents themselves change only through the store.

-- name: suppression_add
INSERT OR IGNORE INTO suppressions (hash, channel, purpose, created_ms, reason)
VALUES (?1, ?2, ?3, ?4, ?5);

-- The earliest entry for hash + channel covering purpose ?3 (NULL: any).
-- name: suppression_find
SELECT created_ms, reason FROM suppressions
WHERE hash = ?1 AND channel = ?2 AND (?3 IS NULL OR purpose IN (?3, '*'))
ORDER BY created_ms LIMIT 1;

-- name: suppression_lift
DELETE FROM suppressions WHERE hash = ?1 AND channel = ?2 AND purpose IN (?3, '*');

-- name: token_insert
INSERT INTO consent_tokens (token_hash, consent_id, created_ms, expires_ms)
VALUES (?1, ?2, ?3, ?4);

-- name: token_find
SELECT consent_id, expires_ms, used_ms FROM consent_tokens WHERE token_hash = ?1;

-- name: token_use
UPDATE consent_tokens SET used_ms = ?2 WHERE token_hash = ?1;

-- The records a withdrawal ends.
-- name: open_records
SELECT id, version FROM consents
WHERE contact_id = ?1 AND channel = ?2 AND purpose = ?3 AND kind = ?4 AND deleted = 0
  AND status IN ('pending', 'granted')
ORDER BY id;

-- Every live record for contact + channel + purpose + kind, oldest
-- decision first: at is the time of the event that decided it.
-- name: ledger
SELECT id, status,
       CASE status
           WHEN 'granted' THEN coalesce(confirmed_at, requested_at)
           WHEN 'withdrawn' THEN coalesce(withdrawn_at, requested_at)
           ELSE requested_at
       END AS at,
       coalesce(expires_at, ''),
       coalesce(json_extract(evidence, '$.source'), ''),
       coalesce(json_extract(evidence, '$.confirmed_via'), '') = 'token'
FROM consents
WHERE contact_id = ?1 AND channel = ?2 AND purpose = ?3 AND kind = ?4 AND deleted = 0
ORDER BY at, id;
