-- Sync ledger (docs/SYNC.md, "The sync ledger"): what the node has cut into
-- segments, uploaded and had acknowledged by HQ, and the HQ mailbox. Written
-- only by appliance/uplink/sync_ledger.c, each change in one transaction; read by
-- `outpost status` beside a running daemon.
--
-- A segment covers the outbox changes in (from_x, to_x] of each lane
-- (docs/OUTBOX.md). Its spool file is renamed into place before its row
-- commits, and the row is acknowledged before the file is unlinked, so a
-- restart can reconcile the two (sync_ledger_open).
CREATE TABLE sync_segments (
    no            INTEGER PRIMARY KEY,   -- the segment number, never reused
    from_urgent   INTEGER NOT NULL,
    from_ordinary INTEGER NOT NULL,
    to_urgent     INTEGER NOT NULL CHECK (to_urgent >= from_urgent),
    to_ordinary   INTEGER NOT NULL CHECK (to_ordinary >= from_ordinary),
    bytes         INTEGER NOT NULL,      -- file size
    records       INTEGER NOT NULL,
    state         INTEGER NOT NULL CHECK (state IN (0, 1, 2, 3)), -- spooled, uploaded, acked, rejected
    path          TEXT NOT NULL,
    upload_url    TEXT NOT NULL DEFAULT '',
    policy_hash   TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '', -- why HQ rejected it
    created_ms    INTEGER NOT NULL,
    uploaded_ms   INTEGER NOT NULL DEFAULT 0,
    acked_ms      INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX sync_segments_state ON sync_segments (state, no);

-- One row: the cursors and the figures `outpost status` shows.
CREATE TABLE sync_state (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    node_id            TEXT NOT NULL DEFAULT '',  -- '' until a daemon with credentials opened it
    region             TEXT NOT NULL DEFAULT '',
    segmented_urgent   INTEGER NOT NULL DEFAULT 0, -- outbox cursor after the last segment written
    segmented_ordinary INTEGER NOT NULL DEFAULT 0,
    acked_urgent       INTEGER NOT NULL DEFAULT 0, -- outbox cursor HQ acknowledged
    acked_ordinary     INTEGER NOT NULL DEFAULT 0,
    next_segment       INTEGER NOT NULL DEFAULT 1,
    blocked            TEXT NOT NULL DEFAULT '',  -- '' or why sync stopped
    blocked_kind       TEXT NOT NULL DEFAULT '' CHECK (blocked_kind IN ('', 'rejected', 'region')),
    blocked_policy     TEXT NOT NULL DEFAULT '',  -- policy hash when a segment was rejected
    spool_cap          INTEGER NOT NULL DEFAULT 0,
    spool_full         INTEGER NOT NULL DEFAULT 0,
    bytes_per_record   REAL NOT NULL DEFAULT 0,   -- recent compressed bytes per record (ETA)
    goodput_bps        REAL NOT NULL DEFAULT 0,   -- smoothed bytes/s confirmed by HQ
    last_sync_ms       INTEGER NOT NULL DEFAULT 0,
    bytes_day          INTEGER NOT NULL DEFAULT 0, -- UTC day number bytes_today counts
    bytes_today        INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT NOT NULL DEFAULT '',
    mailbox_after      INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO sync_state (id) VALUES (1);

CREATE TABLE sync_errors (
    kind    TEXT PRIMARY KEY,  -- "network", "tls", "auth", "http", "receipt", ...
    n       INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    last    TEXT NOT NULL
) STRICT;

-- Messages from HQ whose MAC verified (docs/SYNC_PROTOCOL.md, Mailbox).
CREATE TABLE mailbox (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('applied', 'refused', 'pending')),
    reason      TEXT NOT NULL DEFAULT '',
    received_ms INTEGER NOT NULL
) STRICT;
