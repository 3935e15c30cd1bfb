-- Retention purges (retention.c). A record is due when it is older than
-- the cutoff ?1 and has no 'purge' or 'erase' audit row yet (?2 is the
-- entity's name in the audit log). Age is updated_hlc (an HLC stamp, ?1
-- the cutoff in milliseconds shifted by the counter bits) for every
-- entity but activities, whose age is occurred_at (?1 an ISO 8601 time):
-- policy_retention_age_field says which. Users are never purged.

-- name: count_due_{table}
-- each table: contacts organizations contact_organizations deals tasks notes consents
SELECT count(*) FROM {table} AS r
WHERE r.updated_hlc < ?1
  AND NOT EXISTS (SELECT 1 FROM audit_log AS a
                  WHERE a.entity = ?2 AND a.record_id = r.id AND a.action IN ('purge', 'erase'));

-- name: count_due_activities
SELECT count(*) FROM activities AS r
WHERE r.occurred_at < ?1
  AND NOT EXISTS (SELECT 1 FROM audit_log AS a
                  WHERE a.entity = ?2 AND a.record_id = r.id AND a.action IN ('purge', 'erase'));

-- The first ?3 due ids.
-- name: select_due_{table}
-- each table: contacts organizations contact_organizations deals tasks notes consents
SELECT r.id FROM {table} AS r
WHERE r.updated_hlc < ?1
  AND NOT EXISTS (SELECT 1 FROM audit_log AS a
                  WHERE a.entity = ?2 AND a.record_id = r.id AND a.action IN ('purge', 'erase'))
ORDER BY r.id LIMIT ?3;

-- name: select_due_activities
SELECT r.id FROM activities AS r
WHERE r.occurred_at < ?1
  AND NOT EXISTS (SELECT 1 FROM audit_log AS a
                  WHERE a.entity = ?2 AND a.record_id = r.id AND a.action IN ('purge', 'erase'))
ORDER BY r.id LIMIT ?3;

-- Merges the full-text index's segments, which drops deleted tokens.
-- name: compact_{table}
-- each table: contacts organizations
INSERT INTO {table}_fts ({table}_fts) VALUES ('optimize');

-- SQLite applies (and reads) secure_delete when the PRAGMA is prepared,
-- not when it is stepped: these must be prepared afresh each time, from a
-- cache that lives for one call, never kept across calls.

-- name: secure_delete
PRAGMA secure_delete;

-- name: secure_delete_off
PRAGMA secure_delete = OFF;

-- name: secure_delete_on
PRAGMA secure_delete = ON;

-- "= 2" would mean ON: SQLite reads a number as a boolean here.
-- name: secure_delete_fast
PRAGMA secure_delete = FAST;
