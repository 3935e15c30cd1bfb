-- Bounces matched to messages (outreach_bounce.c, docs/OUTREACH.md).

-- The attempt's bounce token, by its SHA-256; set in the attempt's
-- transaction, before the message goes to the relay.
-- name: set_ref
UPDATE outreach_messages SET gateway_ref = ?2
WHERE id = ?1 AND channel = 'email' AND state = 'queued';

-- name: find
SELECT id FROM outreach_messages WHERE channel = 'email' AND gateway_ref = ?1;
