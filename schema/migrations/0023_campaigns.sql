-- Campaigns (docs/OUTREACH.md, "Campaigns"): a saved segment, a channel, a
-- purpose, templates per language, a schedule and a state. Planning turns
-- the segment into outreach_messages rows (campaign_id set) in batches;
-- plan_cursor is the last contact id planned, committed with its batch, so
-- a plan cut by a crash continues after it. The unique index below makes a
-- contact planned twice in one campaign impossible whatever happens.
-- A campaign names no person: its segment is a filter, its templates text
-- with slots; the messages (which erasure deletes) are the per-person part.
CREATE TABLE campaigns (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    segment           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(segment)),
    channel           TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    templates         TEXT NOT NULL CHECK (json_valid(templates)),
    fallback_language TEXT NOT NULL,
    start_ms          INTEGER NOT NULL,
    end_ms            INTEGER,
    state             TEXT NOT NULL DEFAULT 'draft'
                      CHECK (state IN ('draft', 'scheduled', 'running', 'paused', 'done',
                                       'cancelled')),
    plan_cursor       TEXT NOT NULL DEFAULT '',
    plan_done         INTEGER NOT NULL DEFAULT 0 CHECK (plan_done IN (0, 1)),
    created_by        TEXT NOT NULL DEFAULT '',
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL,
    CHECK (end_ms IS NULL OR end_ms > start_ms)
) STRICT;
CREATE INDEX campaigns_state ON campaigns (state, start_ms);

CREATE UNIQUE INDEX outreach_messages_campaign_contact
    ON outreach_messages (campaign_id, contact_id) WHERE campaign_id IS NOT NULL;
