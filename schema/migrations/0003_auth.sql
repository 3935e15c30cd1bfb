-- Login sessions and API tokens (appliance/store/auth.c). Neither table holds a
-- secret: a token is given to its holder once and only its SHA-256 is kept,
-- so a copy of the database (a backup, a stolen disk) lets nobody in.
-- Both tables are local to the node: they are not CRM records, have no
-- version or HLC stamps, and never sync. Times are Unix milliseconds (UTC).
-- Rows point at users, which are tombstoned rather than deleted.

-- One row per browser login. Expiry is fixed at login (default 12 h), not
-- extended by use, so a stolen session token ends on schedule.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      TEXT NOT NULL REFERENCES users (id),
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL CHECK (expires_ms > created_ms),
    last_used_ms INTEGER NOT NULL,
    remote_addr  TEXT CHECK (remote_addr IS NULL OR length(remote_addr) <= 63)
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id, created_ms);
CREATE INDEX sessions_expires ON sessions (expires_ms);

-- Long-lived tokens for scripts, made with `outpost token create`. Revoked
-- tokens are kept (revoked_ms set) so that a listing shows what existed;
-- AUTOINCREMENT so that an id, once revoked, never names a newer token.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      TEXT NOT NULL REFERENCES users (id),
    label        TEXT CHECK (label IS NULL OR length(CAST(label AS BLOB)) <= 200),
    token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER CHECK (expires_ms IS NULL OR expires_ms > created_ms),
    revoked_ms   INTEGER,
    last_used_ms INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id, id);
