-- The SMS side of the outreach queue (outreach_sms.c, docs/OUTREACH.md "SMS").

-- A live contact's number as the data-quality work keyed it (E.164).
-- name: contact_number
SELECT coalesce(phone_e164, '') FROM contacts WHERE id = ?1 AND deleted = 0;

-- name: set_ref
UPDATE outreach_messages SET gateway_ref = ?2 WHERE id = ?1 AND state = 'queued';

-- name: set_ref_sent
UPDATE outreach_messages SET gateway_ref = ?2 WHERE id = ?1 AND state = 'sent';

-- name: defer
UPDATE outreach_messages SET next_try_ms = ?2 WHERE id = ?1 AND state = 'queued';

-- name: by_ref
SELECT id FROM outreach_messages WHERE channel = 'sms' AND gateway_ref = ?1;

-- The live contact a mobile-originated message comes from: the one last
-- changed when several share the number.
-- name: contact_by_number
SELECT id FROM contacts WHERE phone_e164 = ?1 AND deleted = 0
ORDER BY updated_hlc DESC LIMIT 1;

-- name: last_sent
SELECT id FROM outreach_messages
WHERE contact_id = ?1 AND channel = 'sms' AND state = 'sent'
ORDER BY sent_ms DESC, id DESC LIMIT 1;

-- name: sms_purposes
SELECT DISTINCT purpose FROM consents
WHERE contact_id = ?1 AND channel = 'sms' AND deleted = 0 AND status IN ('pending', 'granted');
