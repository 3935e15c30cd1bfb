-- Sync outbox (docs/OUTBOX.md): change capture for delta sync to HQ.
-- Every write to a record table that syncs adds an outbox row from a
-- trigger, so the row commits or rolls back with the change whoever wrote
-- it (CLI, outpostd, import, retention, erasure) and no connection setup
-- can forget it. A row names the record and the version that changed; the
-- segmenter loads the record itself (through egress_project) when it builds
-- a segment, so the outbox never holds field values.
--   priority 0: purge and erasure (HQ's copy must go first and fastest)
--   priority 1: reserved for policy acknowledgements
--   priority 2: ordinary upserts and deletes
-- Rows are deleted only when HQ has acknowledged them (outbox_ack).
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    entity     TEXT NOT NULL,         -- singular entity name, as in audit_log
    record_id  TEXT NOT NULL,
    version    INTEGER NOT NULL,      -- the record's version after the change
    hlc        INTEGER NOT NULL,      -- the change's HLC stamp
    op         TEXT NOT NULL CHECK (op IN ('upsert', 'delete', 'purge', 'erase')),
    priority   INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),
    created_ms INTEGER NOT NULL       -- Unix milliseconds when queued
) STRICT;
-- next_batch reads each lane in seq order; urgent rows are few.
CREATE INDEX outbox_lane ON outbox (priority, seq);
CREATE INDEX outbox_record ON outbox (entity, record_id);

CREATE TRIGGER outbox_organizations_insert AFTER INSERT ON organizations BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('organization', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_organizations_update AFTER UPDATE ON organizations
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('organization', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_contacts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('contact', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_contacts_update AFTER UPDATE ON contacts
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('contact', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_contact_organizations_insert AFTER INSERT ON contact_organizations BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('contact_organization', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_contact_organizations_update AFTER UPDATE ON contact_organizations
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('contact_organization', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_deals_insert AFTER INSERT ON deals BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('deal', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_deals_update AFTER UPDATE ON deals
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('deal', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_activities_insert AFTER INSERT ON activities BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('activity', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_activities_update AFTER UPDATE ON activities
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('activity', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_tasks_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('task', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_tasks_update AFTER UPDATE ON tasks
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('task', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_notes_insert AFTER INSERT ON notes BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('note', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_notes_update AFTER UPDATE ON notes
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('note', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER outbox_consents_insert AFTER INSERT ON consents BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('consent', new.id, new.version, new.updated_hlc,
            CASE new.deleted WHEN 1 THEN 'delete' ELSE 'upsert' END, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- Only writes that bump the version are changes HQ must see.
CREATE TRIGGER outbox_consents_update AFTER UPDATE ON consents
WHEN new.version IS NOT old.version BEGIN
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES ('consent', new.id, new.version, new.updated_hlc,
            CASE WHEN old.deleted = 0 AND new.deleted = 1 THEN 'delete' ELSE 'upsert' END, 2,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
-- store_purge (retention "purge", subject erasure "erase") updates the
-- record, which queues an ordinary row above, then writes its audit row in
-- the same transaction. The audit row is the only marker of a purge, so
-- this trigger turns the ordinary row of that version into an urgent one.
CREATE TRIGGER outbox_purge AFTER INSERT ON audit_log
WHEN new.action IN ('purge', 'erase') AND new.entity IN ('organization', 'contact', 'contact_organization', 'deal', 'activity', 'task', 'note', 'consent')
     AND new.record_id IS NOT NULL BEGIN
    DELETE FROM outbox WHERE priority = 2 AND entity = new.entity
        AND record_id = new.record_id AND version = new.version_after;
    INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
    VALUES (new.entity, new.record_id, coalesce(new.version_after, 0), new.hlc, new.action, 0,
            CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;

-- Backfill: a node created before sync must still send what it holds, so
-- every existing record is queued once (parents before children, then by
-- last change), and erasures not yet sent are queued as urgent.
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT entity, id, version, updated_hlc, op, 2, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) FROM (    SELECT 0 AS k, 'organization' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM organizations
    UNION ALL
    SELECT 1 AS k, 'contact' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM contacts
    UNION ALL
    SELECT 2 AS k, 'contact_organization' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM contact_organizations
    UNION ALL
    SELECT 3 AS k, 'deal' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM deals
    UNION ALL
    SELECT 4 AS k, 'activity' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM activities
    UNION ALL
    SELECT 5 AS k, 'task' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM tasks
    UNION ALL
    SELECT 6 AS k, 'note' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM notes
    UNION ALL
    SELECT 7 AS k, 'consent' AS entity, id, version, updated_hlc,
           CASE deleted WHEN 1 THEN 'delete' ELSE 'upsert' END AS op FROM consents
) ORDER BY k, updated_hlc, id;
INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms)
SELECT e.entity, e.record_id, coalesce(a.version_after, 0), coalesce(a.hlc, 0), 'erase', 0, CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
FROM erasures AS e
LEFT JOIN audit_log AS a ON a.seq = (SELECT max(seq) FROM audit_log
                                     WHERE entity = e.entity AND record_id = e.record_id
                                       AND action = 'erase')
WHERE e.sent_at_ms IS NULL
ORDER BY e.erased_at_ms, e.id;
