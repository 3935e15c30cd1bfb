-- Residency in time (docs/EGRESS.md, "The promise in time"): what a node
-- needs so that a restriction, pin, erasure or tightened policy stops the
-- old values at once, wherever they wait, and so that HQ hears nothing of
-- records it never received.
--
-- spool_epoch: bumped by every voiding (appliance/store/residency.c). The
-- segmenter reads it before it starts a segment and records the segment
-- only if it is unchanged, so a segment cut from values read before a
-- restriction never enters the spool.
ALTER TABLE sync_state ADD COLUMN spool_epoch INTEGER NOT NULL DEFAULT 0;
-- The hash of the policy the spool and HQ's copies were last cut under;
-- '' until the segmenter first runs. A different hash in force means the
-- policy changed: the spool is voided and HQ's copies are cut again.
ALTER TABLE sync_state ADD COLUMN policy_hash TEXT NOT NULL DEFAULT '';

-- Segments dropped from the spool because what they hold may no longer
-- leave. Their files are truncated and unlinked right after the voiding
-- commits (by whichever process voided); a row with an upload URL stays
-- until the uplink has terminated that upload at HQ.
CREATE TABLE spool_voided (
    no         INTEGER PRIMARY KEY,   -- the segment number (never reused)
    path       TEXT NOT NULL,
    upload_url TEXT NOT NULL,         -- '' when no byte of it was sent
    reason     TEXT NOT NULL,
    voided_ms  INTEGER NOT NULL
) STRICT;

-- Records HQ may hold: one row per record put into a segment that was
-- recorded (segment_no: the first such segment). A withdraw, erase, purge
-- or delete is sent only for a record found here, so HQ learns nothing of
-- records it never received. Rows of a voided segment that never sent a
-- byte are removed again.
CREATE TABLE egress_sent (
    entity     TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    segment_no INTEGER NOT NULL,
    PRIMARY KEY (entity, record_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX egress_sent_segment ON egress_sent (segment_no);

-- A node that has already had segments acknowledged does not know which
-- records reached HQ: count every record as possibly there (fail closed:
-- at worst a tombstone for a record HQ never had).
INSERT INTO egress_sent (entity, record_id, segment_no)
    SELECT 'contact', id, 0 FROM contacts
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'organization', id, 0 FROM organizations
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'contact_organization', id, 0 FROM contact_organizations
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'deal', id, 0 FROM deals
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'activity', id, 0 FROM activities
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'task', id, 0 FROM tasks
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'note', id, 0 FROM notes
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0
    UNION ALL SELECT 'consent', id, 0 FROM consents
    WHERE (SELECT acked_urgent + acked_ordinary FROM sync_state WHERE id = 1) > 0;

-- The relation rules look up children by their parent (contact_id,
-- organization_id, deal_id); some of these columns had no index.
CREATE INDEX IF NOT EXISTS contact_organizations_contact ON contact_organizations (contact_id);
CREATE INDEX IF NOT EXISTS deals_contact ON deals (contact_id);
CREATE INDEX IF NOT EXISTS activities_deal ON activities (deal_id);
CREATE INDEX IF NOT EXISTS tasks_contact ON tasks (contact_id);
CREATE INDEX IF NOT EXISTS tasks_org ON tasks (organization_id);
CREATE INDEX IF NOT EXISTS tasks_deal ON tasks (deal_id);
CREATE INDEX IF NOT EXISTS notes_org ON notes (organization_id);
CREATE INDEX IF NOT EXISTS notes_deal ON notes (deal_id);
