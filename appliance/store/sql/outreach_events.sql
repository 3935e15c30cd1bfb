-- What transports reported about sent messages (outreach_events.c).

-- name: message_exists
SELECT outcome FROM outreach_messages WHERE id = ?1;

-- name: insert
INSERT INTO outreach_events (message_id, kind, at_ms, detail) VALUES (?1, ?2, ?3, ?4);

-- A reply is the strongest outcome: a later delivery report does not undo it.
-- name: set_outcome
UPDATE outreach_messages SET outcome = ?2, outcome_ms = ?3
WHERE id = ?1 AND (outcome <> 'replied' OR ?2 = 'replied');
