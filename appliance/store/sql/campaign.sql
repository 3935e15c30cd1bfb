-- Campaigns (campaign.c, docs/OUTREACH.md "Campaigns").

-- name: insert
INSERT INTO campaigns (name, segment, channel, purpose, templates, fallback_language, start_ms,
                       end_ms, created_by, created_ms, updated_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10);

-- name: get
SELECT id, name, segment, channel, purpose, templates, fallback_language, start_ms, end_ms,
       state, plan_cursor, plan_done, created_by, created_ms, updated_ms
FROM campaigns WHERE id = ?1;

-- Newest first; ?1 a state or NULL for all.
-- name: list
SELECT id, name, segment, channel, purpose, templates, fallback_language, start_ms, end_ms,
       state, plan_cursor, plan_done, created_by, created_ms, updated_ms
FROM campaigns WHERE ?1 IS NULL OR state = ?1
ORDER BY id DESC LIMIT ?2;

-- ?3 the state it must still be in (the caller read it in this transaction).
-- name: set_state
UPDATE campaigns SET state = ?2, updated_ms = ?4 WHERE id = ?1 AND state = ?3;

-- One page of the segment after the cursor, in id order. Each filter is a
-- JSON array (or NULL: not filtered); ?8 an activity channel with ?9 the
-- earliest occurred_at (UTC, YYYY-MM-DDTHH:MM:SSZ).
-- name: segment_page
SELECT c.id, coalesce(c.language, ''), coalesce(c.given_name, ''), coalesce(c.family_name, ''),
       coalesce(c.locality, ''), coalesce(c.email, ''), coalesce(c.phone_e164, ''),
       coalesce(c.street, ''), coalesce(c.postal_code, '')
FROM contacts c
WHERE c.deleted = 0 AND c.id > ?1
  AND (?2 IS NULL OR c.country IN (SELECT value FROM json_each(?2)))
  AND (?3 IS NULL OR c.region IN (SELECT value FROM json_each(?3)))
  AND (?4 IS NULL OR c.locality IN (SELECT value FROM json_each(?4)))
  AND (?5 IS NULL OR lower(substr(coalesce(c.language, ''), 1,
                                  instr(coalesce(c.language, '') || '-', '-') - 1))
                     IN (SELECT value FROM json_each(?5)))
  AND (?6 IS NULL OR EXISTS (SELECT 1 FROM contact_organizations co
                             WHERE co.contact_id = c.id AND co.deleted = 0
                               AND co.organization_id IN (SELECT value FROM json_each(?6))))
  AND (?7 IS NULL OR c.owner_id = ?7)
  AND (?8 IS NULL OR EXISTS (SELECT 1 FROM activities a
                             WHERE a.contact_id = c.id AND a.deleted = 0 AND a.channel = ?8
                               AND a.occurred_at >= ?9))
ORDER BY c.id LIMIT ?10;

-- A contact's message of the campaign; OR IGNORE: the unique
-- (campaign_id, contact_id) index keeps a contact to one message.
-- name: plan_insert
INSERT OR IGNORE INTO outreach_messages
    (campaign_id, contact_id, channel, purpose, kind, language, template, params, subject, body,
     state, decision, rule, next_try_ms, created_ms)
VALUES (?1, ?2, ?3, ?4, 'marketing', ?5, '', '{}', ?6, ?7, ?8, ?9, ?10, ?11, ?11);

-- name: plan_advance
UPDATE campaigns SET plan_cursor = ?2, plan_done = ?3, updated_ms = ?4 WHERE id = ?1;

-- Scheduled campaigns whose start has come begin running.
-- name: start_due
UPDATE campaigns SET state = 'running', updated_ms = ?1
WHERE state = 'scheduled' AND start_ms <= ?1 AND (end_ms IS NULL OR end_ms > ?1);

-- A running campaign with contacts still to plan, oldest first.
-- name: next_to_plan
SELECT id FROM campaigns WHERE state = 'running' AND plan_done = 0 ORDER BY id LIMIT 1;

-- Campaigns past their end stop: their waiting messages fail, they are done.
-- name: end_messages
UPDATE outreach_messages SET state = 'failed', error = 'the campaign''s end passed'
WHERE state = 'queued' AND campaign_id IN
    (SELECT id FROM campaigns WHERE state IN ('scheduled', 'running', 'paused')
                                AND end_ms IS NOT NULL AND end_ms <= ?1);

-- name: end_campaigns
UPDATE campaigns SET state = 'done', updated_ms = ?1
WHERE state IN ('scheduled', 'running', 'paused') AND end_ms IS NOT NULL AND end_ms <= ?1;

-- Running, fully planned and nothing left to send: done.
-- name: finish
UPDATE campaigns SET state = 'done', updated_ms = ?1
WHERE state = 'running' AND plan_done = 1
  AND NOT EXISTS (SELECT 1 FROM outreach_messages m
                  WHERE m.campaign_id = campaigns.id AND m.state IN ('queued', 'sending'));

-- name: cancel_messages
UPDATE outreach_messages SET state = 'failed', error = 'the campaign was cancelled'
WHERE campaign_id = ?1 AND state = 'queued';

-- name: figures
SELECT count(*),
       coalesce(sum(state = 'queued'), 0), coalesce(sum(state = 'sending'), 0),
       coalesce(sum(state = 'sent'), 0), coalesce(sum(state = 'failed'), 0),
       coalesce(sum(state = 'unknown'), 0), coalesce(sum(state = 'refused'), 0),
       coalesce(sum(outcome = 'delivered'), 0), coalesce(sum(outcome = 'bounced'), 0),
       coalesce(sum(outcome = 'replied'), 0)
FROM outreach_messages WHERE campaign_id = ?1;

-- name: refused_by_reason
SELECT decision, count(*) FROM outreach_messages
WHERE campaign_id = ?1 AND state = 'refused' GROUP BY decision ORDER BY decision;

-- name: unsubscribed
SELECT count(DISTINCT e.message_id)
FROM outreach_events e JOIN outreach_messages m ON m.id = e.message_id
WHERE m.campaign_id = ?1 AND e.kind = 'unsubscribed';
