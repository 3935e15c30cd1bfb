-- Users, sessions and API tokens (auth.c). Tokens are looked up by their
-- SHA-256 (token_hash); the token itself is never stored.

-- name: user_by_name
SELECT id, version, role, disabled, password_hash FROM users
WHERE name = ?1 AND deleted = 0;

-- name: session_insert
INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms, last_used_ms, remote_addr)
VALUES (?1, ?2, ?3, ?4, ?3, ?5);

-- Keeps the user's ?2 newest sessions.
-- name: session_trim
DELETE FROM sessions WHERE user_id = ?1 AND id NOT IN (
    SELECT id FROM sessions WHERE user_id = ?1 ORDER BY created_ms DESC, id DESC LIMIT ?2);

-- name: session_prune
DELETE FROM sessions WHERE expires_ms <= ?1;

-- name: session_lookup
SELECT s.id, s.expires_ms, s.last_used_ms, u.id, u.name, u.role, u.disabled, u.deleted
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = ?1;

-- name: session_touch
UPDATE sessions SET last_used_ms = ?2 WHERE id = ?1;

-- name: session_delete
DELETE FROM sessions WHERE token_hash = ?1 AND expires_ms > ?2;

-- name: session_delete_user
DELETE FROM sessions WHERE user_id = ?1;

-- name: token_count_live
SELECT count(*) FROM api_tokens
WHERE user_id = ?1 AND revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?2);

-- name: token_insert
INSERT INTO api_tokens (user_id, label, token_hash, created_ms, expires_ms, scope)
VALUES (?1, ?2, ?3, ?4, ?5, ?6);

-- name: token_lookup
SELECT t.id, t.expires_ms, t.revoked_ms, t.last_used_ms, u.id, u.name, u.role, u.disabled,
       u.deleted, t.scope
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = ?1;

-- name: token_touch
UPDATE api_tokens SET last_used_ms = ?2 WHERE id = ?1;

-- name: token_revoke
UPDATE api_tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL;

-- name: token_exists
SELECT 1 FROM api_tokens WHERE id = ?1;

-- ?1 NULL: every user's tokens.
-- name: token_list
SELECT t.id, u.name, t.label, t.created_ms, t.expires_ms, t.revoked_ms, t.last_used_ms,
       t.scope
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE ?1 IS NULL OR t.user_id = ?1
ORDER BY t.id;

-- auth's own short transaction: BEGIN IMMEDIATE takes the write lock up
-- front (so the busy timeout applies); inside the caller's transaction it
-- is a savepoint instead.

-- name: begin_immediate
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: savepoint
SAVEPOINT auth;

-- name: release
RELEASE auth;

-- name: rollback_to
ROLLBACK TO auth;
