-- Outreach (docs/OUTREACH.md): the queue of messages to contacts and the
-- unsubscribe tokens of the messages sent. A message is recorded before it
-- is sent (state sending, committed) and its outcome after, so a crash in
-- between leaves `sending`, which the sender turns into `unknown` at start
-- and never sends again by itself.
CREATE TABLE outreach_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id  TEXT NOT NULL,
    channel     TEXT NOT NULL,                        -- email (sms, print, call: later)
    purpose     TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'marketing'
                CHECK (kind IN ('marketing', 'transactional')),
    language    TEXT NOT NULL DEFAULT '',             -- BCP 47; '' = the region's
    template    TEXT NOT NULL DEFAULT '',             -- confirm, test, or '' (subject/body as given)
    params      TEXT NOT NULL DEFAULT '{}',           -- the template's slots, JSON
    subject     TEXT NOT NULL DEFAULT '',
    body        TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'unknown', 'refused')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_ms INTEGER NOT NULL,
    last_try_ms INTEGER,
    decision    TEXT NOT NULL DEFAULT '',             -- consent state at the last check
    rule        TEXT NOT NULL DEFAULT '',             -- and the rule that decided
    relay       TEXT NOT NULL DEFAULT '',             -- where the last attempt went
    created_ms  INTEGER NOT NULL,
    sent_ms     INTEGER,
    error       TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX outreach_messages_due ON outreach_messages (state, next_try_ms, id);
CREATE INDEX outreach_messages_sent ON outreach_messages (sent_ms) WHERE sent_ms IS NOT NULL;

-- One row per attempt's List-Unsubscribe token; only its SHA-256 is kept.
CREATE TABLE outreach_unsubscribe (
    token_hash TEXT PRIMARY KEY,                      -- SHA-256, lower-case hex
    message_id INTEGER NOT NULL REFERENCES outreach_messages (id),
    created_ms INTEGER NOT NULL,
    used_ms    INTEGER
) STRICT;
