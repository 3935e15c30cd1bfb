-- Core CRM tables. Every record table shares the same bookkeeping columns:
--   id           UUIDv7 text, unique across nodes and time-ordered
--   version      optimistic-concurrency counter, 1 on create, +1 per write
--   created_hlc  hybrid logical clock stamp of the create (48 bits ms, 16 bits counter)
--   updated_hlc  stamp of the last write
--   deleted      tombstone flag; rows are never hard-deleted until HQ acknowledges
--   owner_id     the user who owns the record (NULL for imported or system rows)
--   restricted   a user-set flag that pins the whole record to this node
--   custom       JSON object of region-profile custom fields
-- Tables are STRICT so a wrong type is refused by SQLite itself.

-- 0x4f555450, "OUTP": marks the file as an Outpost database (db.h).
PRAGMA application_id = 1330992208;

CREATE TABLE node_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    version       INTEGER NOT NULL CHECK (version >= 1),
    created_hlc   INTEGER NOT NULL,
    updated_hlc   INTEGER NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id      TEXT,
    restricted    INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    name          TEXT NOT NULL,
    display_name  TEXT,
    role          TEXT NOT NULL CHECK (role IN ('field', 'manager', 'admin', 'hq')),
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;
CREATE UNIQUE INDEX users_name ON users (name) WHERE deleted = 0;

CREATE TABLE contacts (
    id           TEXT PRIMARY KEY,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_hlc  INTEGER NOT NULL,
    updated_hlc  INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id     TEXT REFERENCES users (id),
    restricted   INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    given_name   TEXT,
    family_name  TEXT,
    email        TEXT,
    phone        TEXT,
    street       TEXT,
    locality     TEXT,
    region       TEXT,
    postal_code  TEXT,
    country      TEXT,
    language     TEXT,
    job_title    TEXT,
    birth_date   TEXT,
    -- normalized keys for duplicate detection, written by the store
    email_norm   TEXT,
    phone_e164   TEXT,
    name_key     TEXT
) STRICT;
CREATE INDEX contacts_email_norm ON contacts (email_norm) WHERE deleted = 0 AND email_norm IS NOT NULL;
CREATE INDEX contacts_phone_e164 ON contacts (phone_e164) WHERE deleted = 0 AND phone_e164 IS NOT NULL;
CREATE INDEX contacts_name_key ON contacts (name_key) WHERE deleted = 0 AND name_key IS NOT NULL;
CREATE INDEX contacts_owner ON contacts (owner_id, id);
CREATE INDEX contacts_updated ON contacts (updated_hlc, id);

CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_hlc  INTEGER NOT NULL,
    updated_hlc  INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id     TEXT REFERENCES users (id),
    restricted   INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    name         TEXT NOT NULL,
    website      TEXT,
    email        TEXT,
    phone        TEXT,
    street       TEXT,
    locality     TEXT,
    region       TEXT,
    postal_code  TEXT,
    country      TEXT,
    industry     TEXT,
    tax_id       TEXT
) STRICT;
CREATE INDEX organizations_owner ON organizations (owner_id, id);
CREATE INDEX organizations_updated ON organizations (updated_hlc, id);

CREATE TABLE contact_organizations (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_hlc     INTEGER NOT NULL,
    updated_hlc     INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id        TEXT REFERENCES users (id),
    restricted      INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    contact_id      TEXT NOT NULL REFERENCES contacts (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    role            TEXT
) STRICT;
CREATE UNIQUE INDEX contact_organizations_pair
    ON contact_organizations (contact_id, organization_id) WHERE deleted = 0;
CREATE INDEX contact_organizations_org ON contact_organizations (organization_id);

CREATE TABLE deals (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_hlc     INTEGER NOT NULL,
    updated_hlc     INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id        TEXT REFERENCES users (id),
    restricted      INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    title           TEXT NOT NULL,
    stage           TEXT NOT NULL,
    -- money: integer minor units plus ISO 4217 code, never floating point
    amount_minor    INTEGER,
    currency        TEXT CHECK (currency IS NULL OR length(currency) = 3),
    organization_id TEXT REFERENCES organizations (id),
    contact_id      TEXT REFERENCES contacts (id),
    expected_close  TEXT,
    CHECK ((amount_minor IS NULL) = (currency IS NULL))
) STRICT;
CREATE INDEX deals_stage ON deals (stage, id);
CREATE INDEX deals_org ON deals (organization_id);
CREATE INDEX deals_owner ON deals (owner_id, id);
CREATE INDEX deals_updated ON deals (updated_hlc, id);

CREATE TABLE activities (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_hlc     INTEGER NOT NULL,
    updated_hlc     INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id        TEXT REFERENCES users (id),
    restricted      INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    channel         TEXT NOT NULL,
    direction       TEXT NOT NULL,
    outcome         TEXT,
    subject         TEXT,
    body            TEXT,
    occurred_at     TEXT NOT NULL,
    contact_id      TEXT REFERENCES contacts (id),
    organization_id TEXT REFERENCES organizations (id),
    deal_id         TEXT REFERENCES deals (id)
) STRICT;
CREATE INDEX activities_channel ON activities (channel, id);
CREATE INDEX activities_contact ON activities (contact_id);
CREATE INDEX activities_org ON activities (organization_id);
CREATE INDEX activities_owner ON activities (owner_id, id);
CREATE INDEX activities_updated ON activities (updated_hlc, id);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_hlc  INTEGER NOT NULL,
    updated_hlc  INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id     TEXT REFERENCES users (id),
    restricted   INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    title        TEXT NOT NULL,
    status       TEXT NOT NULL,
    due_at       TEXT,
    assignee_id  TEXT REFERENCES users (id),
    contact_id   TEXT REFERENCES contacts (id),
    organization_id TEXT REFERENCES organizations (id),
    deal_id      TEXT REFERENCES deals (id)
) STRICT;
CREATE INDEX tasks_owner ON tasks (owner_id, id);
CREATE INDEX tasks_updated ON tasks (updated_hlc, id);

CREATE TABLE notes (
    id              TEXT PRIMARY KEY,
    version         INTEGER NOT NULL CHECK (version >= 1),
    created_hlc     INTEGER NOT NULL,
    updated_hlc     INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id        TEXT REFERENCES users (id),
    restricted      INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    body            TEXT NOT NULL,
    contact_id      TEXT REFERENCES contacts (id),
    organization_id TEXT REFERENCES organizations (id),
    deal_id         TEXT REFERENCES deals (id)
) STRICT;
CREATE INDEX notes_contact ON notes (contact_id);
CREATE INDEX notes_owner ON notes (owner_id, id);
CREATE INDEX notes_updated ON notes (updated_hlc, id);

CREATE TABLE consents (
    id           TEXT PRIMARY KEY,
    version      INTEGER NOT NULL CHECK (version >= 1),
    created_hlc  INTEGER NOT NULL,
    updated_hlc  INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    owner_id     TEXT REFERENCES users (id),
    restricted   INTEGER NOT NULL DEFAULT 0 CHECK (restricted IN (0, 1)),
    custom       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(custom)),
    contact_id   TEXT NOT NULL REFERENCES contacts (id),
    channel      TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    method       TEXT NOT NULL,
    evidence     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(evidence)),
    requested_at TEXT NOT NULL,
    confirmed_at TEXT,
    withdrawn_at TEXT,
    expires_at   TEXT
) STRICT;
CREATE INDEX consents_contact ON consents (contact_id, channel, purpose);
CREATE INDEX consents_updated ON consents (updated_hlc, id);

-- Append-only record of every write: who, what, when, from where, versions.
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    hlc            INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    address        TEXT,
    action         TEXT NOT NULL,
    entity         TEXT NOT NULL,
    record_id      TEXT,
    version_before INTEGER,
    version_after  INTEGER,
    detail         TEXT
) STRICT;
CREATE INDEX audit_log_record ON audit_log (entity, record_id);
