-- The HQ store's schema on PostgreSQL (hq_store_pg.c). The same tables as
-- migrations.sql (SQLite) in PostgreSQL's own types: text, bigint, bytea;
-- times stay bigint milliseconds since the epoch as in SQLite (the
-- analysts' views add timestamptz columns); a record stays the text the
-- node sent (the views break it out as jsonb). The version lives in
-- outpost_hq_schema (one row): migration N takes it from N-1 to N, all of
-- it in one transaction that first takes pg_advisory_xact_lock, so two
-- receivers starting at once migrate once.

-- name: lock
SELECT pg_advisory_xact_lock(1330992200);

-- name: schema_exists
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname = 'outpost_hq_schema';

-- The version (only asked when the table exists; no row: not ours).
-- name: version
SELECT version FROM outpost_hq_schema WHERE app = 'outpost-hq';

-- Tables and views of the current schema: 0 for an empty database.
-- name: objects
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'v', 'p');

-- name: v1_schema
CREATE TABLE outpost_hq_schema (
  app text PRIMARY KEY CHECK (app = 'outpost-hq'),
  version integer NOT NULL
);

-- name: v1_schema_row
INSERT INTO outpost_hq_schema (app, version) VALUES ('outpost-hq', 0);

-- name: v1_nodes
CREATE TABLE nodes (
  name text PRIMARY KEY,
  region text NOT NULL,
  token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  hq_key bytea NOT NULL CHECK (length(hq_key) = 32),
  revoked integer NOT NULL DEFAULT 0,
  revoked_ms bigint,
  created_ms bigint NOT NULL,
  last_contact_ms bigint NOT NULL DEFAULT 0,
  refused bigint NOT NULL DEFAULT 0,
  last_refusal text NOT NULL DEFAULT '',
  mailbox_seq bigint NOT NULL DEFAULT 0
);

-- name: v1_receipts
CREATE TABLE receipts (
  node text NOT NULL REFERENCES nodes(name),
  segment bigint NOT NULL,
  status text NOT NULL CHECK (status IN ('applied', 'rejected')),
  to_urgent bigint NOT NULL,
  to_ordinary bigint NOT NULL,
  records bigint NOT NULL,
  applied bigint NOT NULL,
  set_aside bigint NOT NULL,
  reason text NOT NULL,
  received_ms bigint NOT NULL,
  segment_created_ms bigint NOT NULL,
  PRIMARY KEY (node, segment)
);

-- name: v1_records
CREATE TABLE records (
  node text NOT NULL REFERENCES nodes(name),
  entity text NOT NULL,
  id text NOT NULL,
  version bigint NOT NULL,
  op text NOT NULL CHECK (op IN ('upsert', 'delete', 'erase', 'purge', 'withdraw')),
  record text,
  segment bigint NOT NULL,
  CHECK ((op IN ('upsert', 'delete')) = (record IS NOT NULL)),
  PRIMARY KEY (node, entity, id)
);

-- name: v1_set_aside
CREATE TABLE set_aside (
  node text NOT NULL REFERENCES nodes(name),
  segment bigint NOT NULL,
  line bigint NOT NULL,
  entity text NOT NULL,
  id text NOT NULL,
  reason text NOT NULL,
  needs_whole integer NOT NULL DEFAULT 0,
  PRIMARY KEY (node, segment, line)
);

-- name: v1_mailbox
CREATE TABLE mailbox (
  node text NOT NULL REFERENCES nodes(name),
  seq bigint NOT NULL,
  kind text NOT NULL CHECK (kind IN ('policy', 'reference', 'aggregate_request')),
  body bytea NOT NULL,
  created_ms bigint NOT NULL,
  policy_hash text,
  PRIMARY KEY (node, seq)
);

-- name: v1_policy_index
CREATE INDEX mailbox_policy ON mailbox (node, policy_hash) WHERE policy_hash IS NOT NULL;

-- name: v1_analysts
CREATE TABLE analysts (
  name text PRIMARY KEY,
  token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  created_ms bigint NOT NULL,
  revoked integer NOT NULL DEFAULT 0,
  revoked_ms bigint,
  last_used_ms bigint NOT NULL DEFAULT 0
);

-- name: v1_verify_last
CREATE TABLE verify_last (
  node text PRIMARY KEY REFERENCES nodes(name),
  at_ms bigint NOT NULL,
  result text NOT NULL CHECK (result IN ('agree', 'repaired', 'drift', 'failed')),
  compared bigint NOT NULL,
  hq_records bigint NOT NULL,
  ranges bigint NOT NULL,
  requests bigint NOT NULL,
  bytes bigint NOT NULL,
  drift bigint NOT NULL,
  resent bigint NOT NULL,
  reported bigint NOT NULL
);

-- Transactions that dropped record data and whose old row versions a
-- VACUUM has not yet been able to remove (hq_store_pg.c, forget): kept
-- in the database, so any receiver's sweep finishes what a killed one
-- left.
-- name: v1_forget_pending
CREATE TABLE forget_pending (
  xid bigint PRIMARY KEY
);

-- 2: the analysts' views (docs/HQ.md, "Analysts in SQL"), in a schema of
-- their own so one GRANT covers them and nothing else: the raw tables,
-- node credentials, analysts' token hashes and tombstones stay out.

-- name: v2_schema
CREATE SCHEMA analytics;

-- name: v2_regions
CREATE VIEW analytics.nodes AS
SELECT name AS node, region, revoked <> 0 AS revoked,
       to_timestamp(created_ms / 1000.0) AS created_at,
       CASE WHEN last_contact_ms > 0 THEN to_timestamp(last_contact_ms / 1000.0) END
         AS last_contact_at
FROM nodes;

-- name: v2_records
CREATE VIEW analytics.records AS
SELECT r.node, n.region, r.entity, r.id, r.version, r.op = 'delete' AS deleted,
       r.record::jsonb AS record, r.segment
FROM records r JOIN nodes n ON n.name = r.node
WHERE r.op IN ('upsert', 'delete') AND r.entity <> 'aggregate';

-- name: v2_record_counts
CREATE VIEW analytics.record_counts AS
SELECT n.region, r.entity, count(*) AS records,
       count(*) FILTER (WHERE r.op = 'delete') AS deleted
FROM records r JOIN nodes n ON n.name = r.node
WHERE r.op IN ('upsert', 'delete') AND r.entity <> 'aggregate'
GROUP BY n.region, r.entity;

-- name: v2_contacts
CREATE VIEW analytics.contacts AS
SELECT node, region, id, version, deleted,
       record ->> 'given_name' AS given_name, record ->> 'family_name' AS family_name,
       record ->> 'email' AS email, record ->> 'phone' AS phone,
       record ->> 'locality' AS locality, record ->> 'owner_id' AS owner_id, record
FROM analytics.records WHERE entity = 'contact';

-- name: v2_organizations
CREATE VIEW analytics.organizations AS
SELECT node, region, id, version, deleted,
       record ->> 'name' AS name, record ->> 'website' AS website,
       record ->> 'email' AS email, record ->> 'locality' AS locality, record
FROM analytics.records WHERE entity = 'organization';

-- name: v2_deals
CREATE VIEW analytics.deals AS
SELECT node, region, id, version, deleted,
       record ->> 'title' AS title, record ->> 'stage' AS stage,
       CASE WHEN jsonb_typeof(record -> 'amount_minor') = 'number'
            THEN (record ->> 'amount_minor')::numeric::bigint END AS amount_minor,
       record ->> 'currency' AS currency,
       record ->> 'organization_id' AS organization_id, record ->> 'contact_id' AS contact_id,
       record
FROM analytics.records WHERE entity = 'deal';

-- name: v2_activities
CREATE VIEW analytics.activities AS
SELECT node, region, id, version, deleted,
       record ->> 'channel' AS channel, record ->> 'direction' AS direction,
       record ->> 'outcome' AS outcome, record ->> 'contact_id' AS contact_id,
       record ->> 'occurred_at' AS occurred_at, record
FROM analytics.records WHERE entity = 'activity';

-- name: v2_aggregates
CREATE VIEW analytics.aggregates AS
SELECT r.node, n.region, r.id AS aggregate, r.version, r.record::jsonb AS answer
FROM records r JOIN nodes n ON n.name = r.node
WHERE r.entity = 'aggregate' AND r.op = 'upsert';

-- name: v2_receipts
CREATE VIEW analytics.receipts AS
SELECT r.node, n.region, r.segment, r.status, r.records, r.applied, r.set_aside, r.reason,
       to_timestamp(r.received_ms / 1000.0) AS received_at,
       to_timestamp(r.segment_created_ms / 1000.0) AS segment_created_at
FROM receipts r JOIN nodes n ON n.name = r.node;

-- name: set_version
UPDATE outpost_hq_schema SET version = $1 WHERE app = 'outpost-hq';
