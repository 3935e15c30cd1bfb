-- The HQ store's schema (hq_store_sqlite.c). Migration N takes
-- user_version N-1 to N in one transaction: its statements, in the order
-- hq_store_sqlite.c lists them, end with set_user_version_N. This schema
-- belongs to HQ's own database, never to a node's (schema/migrations),
-- and the file is marked with HQ's application_id so neither is mistaken
-- for the other.

-- name: mark_hq
-- 0x4f555448, "OUTH" (HQ_APPLICATION_ID)
PRAGMA application_id = 1330992200;

-- name: v1_nodes
CREATE TABLE nodes (
  name TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  hq_key BLOB NOT NULL CHECK (length(hq_key) = 32),
  revoked INTEGER NOT NULL DEFAULT 0,
  revoked_ms INTEGER,
  created_ms INTEGER NOT NULL,
  last_contact_ms INTEGER NOT NULL DEFAULT 0,
  refused INTEGER NOT NULL DEFAULT 0,
  last_refusal TEXT NOT NULL DEFAULT '',
  mailbox_seq INTEGER NOT NULL DEFAULT 0
) STRICT;

-- name: v1_receipts
CREATE TABLE receipts (
  node TEXT NOT NULL REFERENCES nodes(name),
  segment INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('applied', 'rejected')),
  to_urgent INTEGER NOT NULL,
  to_ordinary INTEGER NOT NULL,
  records INTEGER NOT NULL,
  applied INTEGER NOT NULL,
  set_aside INTEGER NOT NULL,
  reason TEXT NOT NULL,
  received_ms INTEGER NOT NULL,
  segment_created_ms INTEGER NOT NULL,
  PRIMARY KEY (node, segment)
) STRICT, WITHOUT ROWID;

-- name: v1_records
CREATE TABLE records (
  node TEXT NOT NULL REFERENCES nodes(name),
  entity TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  op TEXT NOT NULL CHECK (op IN ('upsert', 'delete', 'erase', 'purge', 'withdraw')),
  record TEXT,
  segment INTEGER NOT NULL,
  CHECK ((op IN ('upsert', 'delete')) = (record IS NOT NULL)),
  PRIMARY KEY (node, entity, id)
) STRICT, WITHOUT ROWID;

-- name: v1_set_aside
CREATE TABLE set_aside (
  node TEXT NOT NULL REFERENCES nodes(name),
  segment INTEGER NOT NULL,
  line INTEGER NOT NULL,
  entity TEXT NOT NULL,
  id TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (node, segment, line)
) STRICT, WITHOUT ROWID;

-- name: v1_mailbox
CREATE TABLE mailbox (
  node TEXT NOT NULL REFERENCES nodes(name),
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('policy', 'reference', 'aggregate_request')),
  body BLOB NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (node, seq)
) STRICT, WITHOUT ROWID;

-- name: set_user_version_1
PRAGMA user_version = 1;

-- 2: every policy HQ posted to a node, found by the SHA-256 of its text,
-- so a segment cut under one of them is checked under it.

-- name: v2_policy_hash
ALTER TABLE mailbox ADD COLUMN policy_hash TEXT;

-- name: v2_policy_hash_fill
UPDATE mailbox SET policy_hash = outpost_sha256_hex(body) WHERE kind = 'policy';

-- name: v2_policy_index
CREATE INDEX mailbox_policy ON mailbox (node, policy_hash) WHERE policy_hash IS NOT NULL;

-- name: set_user_version_2
PRAGMA user_version = 2;

-- 3: HQ analysts, who read the combined aggregates over HTTP
-- (hq_analyst_http.c). An analyst is not a node: its token is looked up
-- here, never in nodes, and is kept only as its SHA-256.

-- name: v3_analysts
CREATE TABLE analysts (
  name TEXT PRIMARY KEY,
  token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  created_ms INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  revoked_ms INTEGER,
  last_used_ms INTEGER NOT NULL DEFAULT 0
) STRICT;

-- name: set_user_version_3
PRAGMA user_version = 3;

-- 4: field-level deltas (docs/HQ.md, "Patches"). A patch whose base HQ
-- lacks is set aside as needing the whole record: the receipt lists
-- those records (needs_whole) and the node sends them whole. An HQ whose
-- store has this version says "patch": true in its receipts; a node sends
-- patches only to an HQ that said so.

-- name: v4_needs_whole
ALTER TABLE set_aside ADD COLUMN needs_whole INTEGER NOT NULL DEFAULT 0;

-- name: set_user_version_4
PRAGMA user_version = 4;

-- 5: the last anti-entropy check of each node (docs/SYNC_PROTOCOL.md,
-- "Anti-entropy"): what the node reported at the end of its check, with
-- HQ's own count of the digest requests and bytes it answered. One row per
-- node, replaced by each check.

-- name: v5_verify_last
CREATE TABLE verify_last (
  node TEXT PRIMARY KEY REFERENCES nodes(name),
  at_ms INTEGER NOT NULL,          -- HQ's time when the report arrived
  result TEXT NOT NULL CHECK (result IN ('agree', 'repaired', 'drift', 'failed')),
  compared INTEGER NOT NULL,       -- the node's records compared
  hq_records INTEGER NOT NULL,     -- HQ's records of the node compared
  ranges INTEGER NOT NULL,         -- ranges exchanged
  requests INTEGER NOT NULL,       -- digest requests
  bytes INTEGER NOT NULL,          -- request and answer bodies, bytes
  drift INTEGER NOT NULL,          -- records that differed
  resent INTEGER NOT NULL,         -- records queued again at the node
  reported INTEGER NOT NULL        -- drift the node reported but did not send
) STRICT, WITHOUT ROWID;

-- name: set_user_version_5
PRAGMA user_version = 5;
