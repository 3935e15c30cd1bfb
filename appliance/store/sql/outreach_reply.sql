-- E-mail replies matched to messages (outreach_reply.c, docs/OUTREACH.md "Replies").

-- The e-mail whose attempt had the token (by its SHA-256, as kept by
-- outreach_bounce_ref).
-- name: find
SELECT id, contact_id, purpose FROM outreach_messages
WHERE channel = 'email' AND gateway_ref = ?1;

-- The same reply recorded before (its id is in the detail).
-- name: seen
SELECT count(*) FROM outreach_events WHERE message_id = ?1 AND detail = ?2;

-- name: email_purposes
SELECT DISTINCT purpose FROM consents
WHERE contact_id = ?1 AND channel = 'email' AND deleted = 0 AND status IN ('pending', 'granted');
