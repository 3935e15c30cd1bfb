-- Idempotency keys of creates through the API (docs/WEB_APP.md, "Exactly
-- once"): a client that captured a record away from the office sends its
-- create with Idempotency-Key, and may send it again when it never saw
-- the answer. The key's row is written in the transaction that creates
-- the record, so a replay finds either both or neither. Per user: one
-- user's key says nothing about another's. Rows older than seven days are
-- pruned by the next create that carries a key. Node-local bookkeeping:
-- no outbox capture, nothing of it leaves the node.
CREATE TABLE idempotency_keys (
    user_name TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    status INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (user_name, idem_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms);
