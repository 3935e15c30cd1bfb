-- Outreach outcomes and campaigns' link (docs/OUTREACH.md). A message's
-- state says what the node did (queued ... sent); its outcome says what the
-- transport reported afterwards (a delivery report, a bounce, a reply), and
-- each such report is kept as an event, the evidence behind the outcome and
-- behind the per-campaign figures. gateway_ref is the transport's own id for
-- the message (an SMS gateway's message id, a relay's queue id), which its
-- reports name.
ALTER TABLE outreach_messages ADD COLUMN campaign_id INTEGER;
ALTER TABLE outreach_messages ADD COLUMN outcome TEXT NOT NULL DEFAULT ''
    CHECK (outcome IN ('', 'delivered', 'bounced', 'replied'));
ALTER TABLE outreach_messages ADD COLUMN outcome_ms INTEGER;
ALTER TABLE outreach_messages ADD COLUMN gateway_ref TEXT NOT NULL DEFAULT '';
CREATE INDEX outreach_messages_campaign ON outreach_messages (campaign_id, state)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX outreach_messages_gateway_ref ON outreach_messages (channel, gateway_ref)
    WHERE gateway_ref <> '';

CREATE TABLE outreach_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES outreach_messages (id),
    kind       TEXT NOT NULL
               CHECK (kind IN ('delivered', 'bounced_hard', 'bounced_soft', 'failed',
                               'replied', 'unsubscribed')),
    at_ms      INTEGER NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''               -- the transport's words, bounded
) STRICT;
CREATE INDEX outreach_events_message ON outreach_events (message_id);
