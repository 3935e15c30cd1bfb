-- Printed mail and call lists handed out as files (outreach_handout.c,
-- docs/OUTREACH.md "Printed mail and call lists").

-- name: next_due
SELECT id, contact_id, purpose, kind, language, subject, body
FROM outreach_messages
WHERE state = 'queued' AND channel = ?2 AND next_try_ms <= ?1
  AND (campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns k
                                      WHERE k.id = campaign_id AND k.state = 'running'))
ORDER BY next_try_ms, id LIMIT 1;

-- name: recover
UPDATE outreach_messages
SET state = 'unknown',
    error = 'the run that wrote its file stopped before recording it: the file may hold it'
WHERE state = 'sending' AND channel = ?1;

-- name: done
UPDATE outreach_messages SET state = 'sent', sent_ms = ?2, error = ''
WHERE id = ?1 AND state = 'sending';

-- name: release
UPDATE outreach_messages SET state = 'queued', error = ?2, attempts = max(attempts - 1, 0)
WHERE id = ?1 AND state = 'sending';
