-- Outreach events and call results (outreach_events.c, docs/OUTREACH.md).

-- name: message
SELECT contact_id, channel, purpose, state FROM outreach_messages WHERE id = ?1;

-- name: insert
INSERT INTO outreach_events (message_id, kind, at_ms, detail) VALUES (?1, ?2, ?3, ?4);

-- ?2 the outcome the event gives the message ('' keeps the one it has). A
-- reply wins over everything, a bounce over a delivery report, a delivery
-- only over nothing.
-- name: set_outcome
UPDATE outreach_messages SET outcome = ?2, outcome_ms = ?3
WHERE id = ?1 AND ?2 <> ''
  AND (outcome = '' OR ?2 = 'replied' OR (?2 = 'bounced' AND outcome = 'delivered'));

-- name: same_exists
SELECT count(*) FROM outreach_events WHERE message_id = ?1 AND kind = ?2 AND detail = ?3;

-- name: count_for_message
SELECT count(*) FROM outreach_events WHERE message_id = ?1;

-- Messages of a contact on a channel that bounced hard at least once.
-- name: hard_bounced_messages
SELECT count(DISTINCT e.message_id)
FROM outreach_events e JOIN outreach_messages m ON m.id = e.message_id
WHERE m.contact_id = ?1 AND m.channel = ?2 AND e.kind = 'bounced_hard';
