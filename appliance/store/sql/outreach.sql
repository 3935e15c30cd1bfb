-- The outreach queue (outreach.c, docs/OUTREACH.md).

-- name: insert
INSERT INTO outreach_messages (contact_id, channel, purpose, kind, language, template, params,
                               subject, body, next_try_ms, created_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10);

-- The next message due, oldest first; a campaign's only while it runs.
-- Printed mail and calls are handed out as files (outreach_handout.c),
-- never sent by the sender.
-- name: next_due
SELECT id, contact_id, channel, purpose, kind, language, template, params, subject, body,
       attempts
FROM outreach_messages
WHERE state = 'queued' AND next_try_ms <= ?1 AND channel NOT IN ('print', 'call')
  AND (campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns k
                                      WHERE k.id = campaign_id AND k.state = 'running'))
ORDER BY next_try_ms, id LIMIT 1;

-- name: get
SELECT id, contact_id, channel, purpose, kind, language, template, subject, state, attempts,
       next_try_ms, last_try_ms, decision, rule, relay, created_ms, sent_ms, error,
       json_extract(params, '$.segments'), json_extract(params, '$.coding')
FROM outreach_messages WHERE id = ?1;

-- ?1 a state or NULL for all; newest first.
-- name: list
SELECT id, contact_id, channel, purpose, kind, language, template, subject, state, attempts,
       next_try_ms, last_try_ms, decision, rule, relay, created_ms, sent_ms, error,
       json_extract(params, '$.segments'), json_extract(params, '$.coding')
FROM outreach_messages WHERE ?1 IS NULL OR state = ?1
ORDER BY id DESC LIMIT ?2;

-- name: state_of
SELECT state FROM outreach_messages WHERE id = ?1;

-- name: refuse
UPDATE outreach_messages SET state = 'refused', decision = ?2, rule = ?3, error = ''
WHERE id = ?1 AND state = 'queued';

-- name: fail_now
UPDATE outreach_messages SET state = 'failed', error = ?2
WHERE id = ?1 AND state = 'queued';

-- name: attempt
UPDATE outreach_messages
SET state = 'sending', attempts = attempts + 1, last_try_ms = ?2, decision = ?3, rule = ?4,
    relay = ?5
WHERE id = ?1 AND state = 'queued';

-- name: unsub_insert
INSERT INTO outreach_unsubscribe (token_hash, message_id, created_ms) VALUES (?1, ?2, ?3);

-- Once sent, the confirmation token is the contact's alone: the row keeps
-- no copy (the ledger has only its hash).
-- name: outcome_sent
UPDATE outreach_messages
SET state = 'sent', sent_ms = ?2, error = '', params = json_remove(params, '$.token')
WHERE id = ?1 AND state = 'sending';

-- name: outcome_retry
UPDATE outreach_messages SET state = 'queued', next_try_ms = ?2, error = ?3
WHERE id = ?1 AND state = 'sending';

-- name: outcome_failed
UPDATE outreach_messages SET state = 'failed', error = ?2
WHERE id = ?1 AND state = 'sending';

-- name: attempts_of
SELECT attempts FROM outreach_messages WHERE id = ?1;

-- A crash during the SMTP transaction: the relay may have the message.
-- Printed mail and calls in `sending` belong to a print or call-list run
-- (outreach_handout.c), which recovers its own.
-- name: recover
UPDATE outreach_messages
SET state = 'unknown',
    error = 'outpostd stopped during the SMTP transaction: the relay may have it'
WHERE state = 'sending' AND channel NOT IN ('print', 'call');

-- name: requeue
UPDATE outreach_messages SET state = 'queued', next_try_ms = ?2, error = ''
WHERE id = ?1 AND state IN ('unknown', 'failed');

-- name: sent_since
SELECT count(*) FROM outreach_messages WHERE sent_ms >= ?1;

-- name: unsub_find
SELECT m.id, m.contact_id, m.channel, m.purpose, u.used_ms
FROM outreach_unsubscribe u JOIN outreach_messages m ON m.id = u.message_id
WHERE u.token_hash = ?1;

-- name: unsub_use
UPDATE outreach_unsubscribe SET used_ms = ?2 WHERE token_hash = ?1 AND used_ms IS NULL;

-- name: outcome_unknown
UPDATE outreach_messages SET state = 'unknown', error = ?2
WHERE id = ?1 AND state = 'sending';

