-- Idempotency keys of creates (api_idempotency.c, migrations 0013 and 0016;
-- answer is the first answer of a bulk create, NULL for a single one).

-- name: savepoint
SAVEPOINT idempotent_create;

-- name: release
RELEASE idempotent_create;

-- name: rollback_to
ROLLBACK TO idempotent_create;

-- name: find
SELECT method, path, body_sha256, status, entity, record_id, answer
  FROM idempotency_keys WHERE user_name = ?1 AND idem_key = ?2;

-- name: insert
INSERT INTO idempotency_keys
    (user_name, idem_key, method, path, body_sha256, status, entity, record_id, created_ms,
     answer)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);

-- name: prune
DELETE FROM idempotency_keys WHERE created_ms < ?1;
