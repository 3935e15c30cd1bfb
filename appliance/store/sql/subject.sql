-- Data-subject export and erasure (subject.c). Related records are found
-- through their contact_id column, tombstones included.

-- name: related_{table}
-- each table: contact_organizations activities tasks notes consents deals
SELECT id FROM {table} WHERE contact_id = ?1 ORDER BY id;

-- name: audit_rows
SELECT seq, hlc, actor, address, action, version_before, version_after, detail
FROM audit_log
WHERE entity = ?1 AND record_id = ?2
ORDER BY seq;

-- name: erasures
SELECT id, entity, record_id, erased_at_ms, reason FROM erasures
WHERE subject_id = ?1
ORDER BY id;

-- name: already_erased
SELECT 1 FROM audit_log
WHERE entity = 'contact' AND record_id = ?1 AND action = 'erase'
LIMIT 1;

-- name: erasure_insert
INSERT INTO erasures (id, subject_id, entity, record_id, erased_at_ms, reason)
VALUES (?1, ?2, ?3, ?4, ?5, ?6);

-- The person's outreach messages and their unsubscribe tokens: a relay's
-- rejection text, a message's slots and body can hold the address or name.
-- name: outreach_events_forget
DELETE FROM outreach_events
WHERE message_id IN (SELECT id FROM outreach_messages WHERE contact_id = ?1);

-- name: outreach_tokens_forget
DELETE FROM outreach_unsubscribe
WHERE message_id IN (SELECT id FROM outreach_messages WHERE contact_id = ?1);

-- name: outreach_forget
DELETE FROM outreach_messages WHERE contact_id = ?1;
