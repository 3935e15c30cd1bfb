-- Auto-replies (RFC 3834: out-of-office, vacation and other automatic
-- answers) are their own event kind, auto_replied, instead of
-- 'delivered' (docs/OUTREACH.md, "Replies"): the campaign figures and the
-- evidence then tell a person's answer, a delivery report and a machine's
-- answer apart. An auto_replied event gives the message the outcome
-- delivered (it arrived), never replied. SQLite cannot change a CHECK
-- constraint in place, so the table is copied into one with the new list;
-- nothing references outreach_events. The AUTOINCREMENT counter is
-- carried over, so no event id is ever handed out twice.
CREATE TABLE outreach_events_new (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES outreach_messages (id),
    kind       TEXT NOT NULL
               CHECK (kind IN ('delivered', 'bounced_hard', 'bounced_soft', 'failed',
                               'replied', 'unsubscribed', 'auto_replied')),
    at_ms      INTEGER NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''               -- the transport's words, bounded
) STRICT;
INSERT INTO outreach_events_new (id, message_id, kind, at_ms, detail)
    SELECT id, message_id, kind, at_ms, detail FROM outreach_events;
-- Auto-replies recorded before as 'delivered' by `outpost outreach reply`
-- (their detail starts "auto-reply ") become what they were.
UPDATE outreach_events_new SET kind = 'auto_replied'
    WHERE kind = 'delivered' AND detail LIKE 'auto-reply %';
DELETE FROM sqlite_sequence WHERE name = 'outreach_events_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'outreach_events_new', seq FROM sqlite_sequence WHERE name = 'outreach_events';
DROP TABLE outreach_events;
ALTER TABLE outreach_events_new RENAME TO outreach_events;
CREATE INDEX outreach_events_message ON outreach_events (message_id);
