-- Field-level deltas (docs/SYNC.md, "Nothing new, nothing sent"): what
-- HQ holds of each record, as the projection hash and field digests of
-- sync/core/projection_hash.h, so the segmenter sends nothing when a
-- change left the projection as it was, and only the changed fields (a
-- patch against the version HQ holds) when it did not. No values are
-- kept: a hash of the projection and a 64-bit digest per field.
--
-- egress_held: what an applied receipt acknowledged (the newest version
-- wins). state is enum projection_state: 0 live, 1 deleted, 2 gone (a
-- tombstone); fields is the JSON object of field digests of a live or
-- deleted projection, NULL for gone.
CREATE TABLE egress_held (
    entity    TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version   INTEGER NOT NULL,
    state     INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    fields    TEXT,
    PRIMARY KEY (entity, record_id)
) STRICT, WITHOUT ROWID;

-- egress_flight: what a cut segment that HQ has not acknowledged carries,
-- written in the segment's own transaction. An applied receipt moves the
-- segment's rows to egress_held; rows of a segment that no longer exists
-- (voided, rejected) count for nothing and are removed before the next
-- cut, so the record is judged against what HQ holds and sent again.
CREATE TABLE egress_flight (
    segment_no INTEGER NOT NULL,
    entity     TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    state      INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
    hash       BLOB NOT NULL CHECK (length(hash) = 32),
    fields     TEXT,
    PRIMARY KEY (entity, record_id, segment_no)
) STRICT, WITHOUT ROWID;
CREATE INDEX egress_flight_segment ON egress_flight (segment_no);

-- Whether HQ applies patches: set from every receipt (an HQ whose store
-- is at schema 4 or later says "patch": true). 0 until one says so, and
-- again when an older HQ answers: then only whole records are sent.
ALTER TABLE sync_state ADD COLUMN hq_patches INTEGER NOT NULL DEFAULT 0;
