-- Anti-entropy checks (docs/SYNC_PROTOCOL.md, "Anti-entropy"): each check
-- the node asked HQ for, and what it found. A row with finished_ms NULL
-- is a check asked for (`outpost sync verify` inserts one; the daemon's
-- schedule inserts one when the last check is older than verify_interval)
-- and not yet run; outpostd runs the oldest, then writes its result and
-- queues the repairs in the outbox in the same transaction. Node-local:
-- nothing here syncs. Kept: the last 100 rows.
CREATE TABLE sync_verify (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    requested_ms INTEGER NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('cli', 'schedule')),
    finished_ms  INTEGER,              -- NULL: not run yet
    result       TEXT CHECK (result IN ('agree', 'repaired', 'drift', 'deferred', 'failed')),
    compared     INTEGER NOT NULL DEFAULT 0, -- the node's records compared
    hq_records   INTEGER NOT NULL DEFAULT 0, -- HQ's records of this node
    ranges       INTEGER NOT NULL DEFAULT 0, -- ranges exchanged
    requests     INTEGER NOT NULL DEFAULT 0, -- digest requests
    bytes        INTEGER NOT NULL DEFAULT 0, -- request and answer bodies
    drift        INTEGER NOT NULL DEFAULT 0, -- records that differed
    resent       INTEGER NOT NULL DEFAULT 0, -- queued again in the outbox
    reported     INTEGER NOT NULL DEFAULT 0, -- differed, not sent (see detail)
    detail       TEXT NOT NULL DEFAULT ''    -- why deferred or failed; what was reported
) STRICT;
