-- Erasures (subject rights, docs/SUBJECT_RIGHTS.md): one row per record
-- purged because its data subject asked to be erased. The records
-- themselves are tombstones with their personal fields blanked; this table
-- keeps only the fact of the erasure, so the sync outbox can send erasures
-- to HQ before any ordinary change (HQ's copy must go first and fastest)
-- and mark them sent. It holds no personal data: ids, times and the
-- operator's reason (which must not name the person).
CREATE TABLE erasures (
    id               TEXT PRIMARY KEY,      -- UUIDv7 of the erasure row
    subject_id       TEXT NOT NULL,         -- the erased contact
    entity           TEXT NOT NULL,         -- entity of the purged record
    record_id        TEXT NOT NULL,         -- the purged record (a tombstone now)
    erased_at_ms     INTEGER NOT NULL,      -- Unix milliseconds
    reason           TEXT,
    suppression_hash TEXT,                  -- keyed hash kept on the suppression list, if any
    sent_at_ms       INTEGER                -- when HQ acknowledged it; NULL = still to send
) STRICT;
-- The outbox reads what is still to send, oldest first.
CREATE INDEX erasures_pending ON erasures (erased_at_ms, id) WHERE sent_at_ms IS NULL;
CREATE INDEX erasures_subject ON erasures (subject_id);
