-- Aggregates (docs/AGGREGATES.md): the answers the node has computed,
-- kept so that the same name, parameters and policy give the same bytes
-- again (differencing protection), and the indexes that keep each shipped
-- aggregate under a second over a million contacts.

CREATE TABLE aggregate_answers (
    name        TEXT NOT NULL,
    params      TEXT NOT NULL,  -- canonical "key=value", the grid point
    policy_hash TEXT NOT NULL,
    computed_ms INTEGER NOT NULL,
    body        TEXT NOT NULL CHECK (json_valid(body)),
    PRIMARY KEY (name, params, policy_hash)
) STRICT, WITHOUT ROWID;

-- activities_by_channel_week reads a quarter of activities by time.
CREATE INDEX IF NOT EXISTS activities_occurred
    ON activities (occurred_at, channel, deleted, restricted);
-- conversion_by_channel finds each deal's first activity.
CREATE INDEX IF NOT EXISTS activities_deal_occurred
    ON activities (deal_id, occurred_at) WHERE deal_id IS NOT NULL;
-- pipeline_by_stage_month and conversion_by_channel read a year of deals.
CREATE INDEX IF NOT EXISTS deals_expected_close
    ON deals (expected_close, stage, currency, amount_minor, deleted, restricted);
-- contacts_by_segment_district reads region from a narrow index, not the
-- wide rows, and each contact's first link without a sort.
CREATE INDEX IF NOT EXISTS contacts_region_live ON contacts (deleted, restricted, region, id);
CREATE INDEX IF NOT EXISTS contact_organizations_first
    ON contact_organizations (contact_id, deleted, id, organization_id);
-- consent_rates_by_channel_purpose groups by channel, purpose and
-- contact in index order, reading no table row.
CREATE INDEX IF NOT EXISTS consents_latest
    ON consents (channel, purpose, contact_id, status, withdrawn_at, confirmed_at, requested_at,
                 deleted, restricted);

-- The egress ledger of aggregates: every answer that left the node (or
-- was put in a segment to leave), with who asked, how, under which
-- policy, and the cells exactly as sent. `outpost egress-report` lists it.
CREATE TABLE aggregate_egress (
    seq         INTEGER PRIMARY KEY,
    sent_ms     INTEGER NOT NULL,
    via         TEXT NOT NULL CHECK (via IN ('api', 'segment')),
    requester   TEXT NOT NULL,  -- the hq user, or the mailbox message id
    name        TEXT NOT NULL,
    params      TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    segment_no  INTEGER,        -- via segment: the segment that carries it
    body        TEXT NOT NULL CHECK (json_valid(body))
) STRICT;
