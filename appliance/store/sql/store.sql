-- The record store (store.c): node settings, transactions, the audit log,
-- duplicate detection and the records of every entity.
--
-- A query written once for every table (-- each table:) lists the tables
-- in the order of entity_all (sync/core/entity.c), so store.c picks the
-- one for an entity by its place in that list; it checks the query's name
-- before using it. Records are read with SELECT *, and store.c matches the
-- columns to the entity's fields by name.

-- name: begin_immediate
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- name: meta_get
SELECT value FROM node_meta WHERE key = ?1;

-- name: meta_set
INSERT INTO node_meta (key, value) VALUES (?1, ?2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: audit
INSERT INTO audit_log (hlc, actor, address, action, entity, record_id, version_before,
                       version_after, detail)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9);

-- The phone re-key step (store.c, phone_rekey): live records with a
-- phone in id order, a page at a time (?1 the last id, '' first; ?2 the
-- page size), and the writes it makes. A record whose pseudonym changed
-- gets a new version and stamp, so the outbox trigger queues it for HQ
-- again; a contact whose key alone changed keeps its version.
-- name: rekey_page_contacts
SELECT id, phone, phone_e164, version FROM contacts
 WHERE phone IS NOT NULL AND deleted = 0 AND id > ?1 ORDER BY id LIMIT ?2;

-- name: rekey_page_organizations
SELECT id, phone, NULL, version FROM organizations
 WHERE phone IS NOT NULL AND deleted = 0 AND id > ?1 ORDER BY id LIMIT ?2;

-- ?1 the HLC stamp, ?2 the id, ?3 the new key or NULL, ?4 1 to re-send.
-- name: rekey_contact
UPDATE contacts SET phone_e164 = ?3, version = version + ?4,
       updated_hlc = CASE ?4 WHEN 0 THEN updated_hlc ELSE ?1 END
 WHERE id = ?2;

-- name: rekey_organization
UPDATE organizations SET version = version + 1, updated_hlc = ?1 WHERE id = ?2;

-- The duplicate keys step (store.c, dedup_rekey): live contacts a page at
-- a time (?1 the last id, ?2 the page size), and their keys rewritten.
-- The keys never leave the node, so the version stays.
-- name: dedup_page
SELECT id, given_name, family_name, street, locality, phone FROM contacts
 WHERE deleted = 0 AND id > ?1 ORDER BY id LIMIT ?2;

-- name: dedup_set
UPDATE contacts SET name_key = ?2, street_key = ?3, phone_tail = ?4 WHERE id = ?1;

-- Duplicate contacts (?1 the key, ?2 the contact itself or ''), in order
-- of confidence. Each names its key's index: without statistics SQLite
-- may pick contacts_region_live (deleted, ...) for `deleted = 0` instead,
-- which reads every live contact per lookup and made a 20,000-row import
-- run for minutes (docs/BENCHMARKS.md, "Import").

-- Whether the node holds a live contact (store_begin_bulk).
-- name: any_live_contact
SELECT 1 FROM contacts WHERE deleted = 0 LIMIT 1;

-- A bulk import's contacts staged in batches (store_stage_create,
-- store_flush_staged): each row goes first into a temporary table, then a
-- batch moves into contacts with one statement, so that the full-text
-- index writes its pending terms once a batch instead of once a row
-- (docs/IMPORT_EXPORT.md, "Performance"). The table lives in the
-- connection's temp database and is made on first use (stage_table, run
-- before the other stage_ queries are prepared); it is emptied after
-- every batch and by a rollback.
-- name: stage_table
CREATE TEMP TABLE IF NOT EXISTS import_stage AS
SELECT id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, given_name,
       family_name, email, phone, street, locality, region, postal_code, country, language,
       job_title, birth_date, email_norm, phone_e164, name_key, street_key, phone_tail
  FROM main.contacts WHERE 0;

-- The parameters are insert_contacts' (bind_record).
-- name: stage_insert
INSERT INTO temp.import_stage (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, given_name,
    family_name, email, phone, street, locality, region, postal_code, country, language,
    job_title, birth_date, email_norm, phone_e164, name_key, street_key, phone_tail
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :given_name, :family_name, :email,
    :phone, :street, :locality, :region, :postal_code, :country, :language, :job_title,
    :birth_date, :email_norm, :phone_e164, :name_key, :street_key, :phone_tail
);

-- The batch into contacts, in the order it was staged: the insert
-- triggers (search index, outbox) run for every row, as for a single one.
-- name: stage_move
INSERT INTO main.contacts (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, given_name,
    family_name, email, phone, street, locality, region, postal_code, country, language,
    job_title, birth_date, email_norm, phone_e164, name_key, street_key, phone_tail
)
SELECT id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, given_name,
       family_name, email, phone, street, locality, region, postal_code, country, language,
       job_title, birth_date, email_norm, phone_e164, name_key, street_key, phone_tail
  FROM temp.import_stage ORDER BY rowid;

-- One audit row a contact, as store_create writes it (?1 actor, ?2 address).
-- name: stage_audit
INSERT INTO audit_log (hlc, actor, address, action, entity, record_id, version_before,
                       version_after, detail)
SELECT created_hlc, ?1, ?2, 'create', 'contact', id, NULL, 1, NULL
  FROM temp.import_stage ORDER BY rowid;

-- name: stage_clear
DELETE FROM temp.import_stage;

-- name: dup_email
SELECT id FROM contacts INDEXED BY contacts_email_norm WHERE email_norm = ?1 AND deleted = 0 AND id <> ?2 LIMIT 1;

-- name: dup_phone
SELECT id FROM contacts INDEXED BY contacts_phone_e164 WHERE phone_e164 = ?1 AND deleted = 0 AND id <> ?2 LIMIT 1;

-- Contacts at the same street, or with a phone ending alike, with their
-- name keys: store.c keeps those whose names are similar (dedup.h).
-- name: dup_street
SELECT id, name_key FROM contacts INDEXED BY contacts_street_key WHERE street_key = ?1 AND deleted = 0 AND id <> ?2 LIMIT 200;

-- name: dup_tail
SELECT id, name_key FROM contacts INDEXED BY contacts_phone_tail WHERE phone_tail = ?1 AND deleted = 0 AND id <> ?2 LIMIT 200;

-- The same name in the same locality: a warning only.
-- name: dup_name
SELECT id FROM contacts INDEXED BY contacts_name_key WHERE name_key = ?1 AND deleted = 0 AND id <> ?2 LIMIT 1;

-- name: get_{table}
-- each table: users contacts organizations contact_organizations deals activities tasks notes consents
SELECT * FROM {table} WHERE id = ?1;

-- A reference must name a live record.
-- name: live_{table}
-- each table: users contacts organizations contact_organizations deals activities tasks notes consents
SELECT 1 FROM {table} WHERE id = ?1 AND deleted = 0;

-- ?1 the HLC stamp, ?2 the id, ?3 the expected version.
-- name: delete_{table}
-- each table: users contacts organizations contact_organizations deals activities tasks notes consents
UPDATE {table} SET deleted = 1, version = version + 1, updated_hlc = ?1
WHERE id = ?2 AND version = ?3;

-- ?1 1 to include tombstones.
-- name: each_{table}
-- each table: users contacts organizations contact_organizations deals activities tasks notes consents
SELECT * FROM {table} WHERE ?1 OR deleted = 0 ORDER BY id;

-- One page of a list in keyset order. ?1 1 to include tombstones, ?2 the
-- viewer (NULL: everyone's records), ?3 the least updated_hlc (0: any),
-- ?4 and ?5 the cursor (the last row's updated_hlc and id; -1 and '' for
-- the first page), ?6 the rows to return. No condition is left out when
-- unused: the ranges always hold, so the index serves every page.
-- name: list_by_id_{table}
-- each table: users contacts organizations contact_organizations deals activities tasks notes consents
SELECT * FROM {table}
 WHERE (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_{table}
-- each table: users contacts organizations contact_organizations deals activities tasks notes consents
SELECT * FROM {table}
 WHERE (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- Full-text search (?1 the FTS5 query, ?2 the limit, ?3 the viewer or
-- NULL): the rowids of the best matches and their bm25 rank. store.c
-- reads each hit's record with search_hit_{table}.
-- name: search_{table}
-- each table: contacts organizations
SELECT f.rowid, f.rank FROM {table}_fts f JOIN {table} t ON t.rowid = f.rowid
 WHERE {table}_fts MATCH ?1 AND t.deleted = 0
   AND (?3 IS NULL OR t.owner_id IS NULL OR t.owner_id = ?3)
 ORDER BY f.rank LIMIT ?2;

-- Type-ahead: the live records, visible to the viewer (?3 or NULL),
-- with a name word from ?1 (included) to ?2 (excluded), in the key's
-- order (the word, then the folded sort text; migration 0019), with the
-- key and rowid first. store.c merges the two by key and reads rows only
-- until it has its hits. Only the key is ordered on: a sort on (kind,
-- rid) too made SQLite add a sorter; equal keys (namesakes) come in the
-- primary key's order, which is rowid order.
-- name: search_names_contacts
SELECT n.key, n.rid, t.* FROM search_names n JOIN contacts t ON t.rowid = n.rid
 WHERE n.key >= ?1 AND n.key < ?2 AND n.kind = 0 AND t.deleted = 0
   AND (?3 IS NULL OR t.owner_id IS NULL OR t.owner_id = ?3)
 ORDER BY n.key;

-- name: search_names_organizations
SELECT n.key, n.rid, t.* FROM search_names n JOIN organizations t ON t.rowid = n.rid
 WHERE n.key >= ?1 AND n.key < ?2 AND n.kind = 1 AND t.deleted = 0
   AND (?3 IS NULL OR t.owner_id IS NULL OR t.owner_id = ?3)
 ORDER BY n.key;

-- One hit's record (?1 the rowid, ?2 the viewer or NULL): live and
-- visible to the viewer, as the full-text query filters them.
-- name: search_hit_{table}
-- each table: contacts organizations
SELECT * FROM {table} WHERE rowid = ?1 AND deleted = 0
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2);

-- Inserts and updates, one per table in the order of entity_all (as
-- above). A record's fields are bound by name (:field, the descriptor's
-- field name), so the columns here and the descriptors in entity.c meet by
-- name: store.c refuses a query that lacks a field's parameter, and
-- tests/unit/appliance/store/test_store.c checks both ways for every entity.
-- contacts also keep the duplicate-detection keys (email_norm, phone_e164,
-- name_key). ?1 is the HLC stamp; an insert's ?2 the id, an update's ?2 and
-- ?3 the id and expected version, ?4 the tombstone flag (0 for an update,
-- 1 for a purge, which writes the blanked record through the same query).

-- name: insert_users
INSERT INTO users (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, name,
    display_name, role, password_hash, disabled
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :name, :display_name, :role,
    :password_hash, :disabled
);

-- name: insert_contacts
INSERT INTO contacts (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, given_name,
    family_name, email, phone, street, locality, region, postal_code, country, language,
    job_title, birth_date, email_norm, phone_e164, name_key, street_key, phone_tail
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :given_name, :family_name, :email,
    :phone, :street, :locality, :region, :postal_code, :country, :language, :job_title,
    :birth_date, :email_norm, :phone_e164, :name_key, :street_key, :phone_tail
);

-- name: insert_organizations
INSERT INTO organizations (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, name,
    website, email, phone, street, locality, region, postal_code, country, industry, tax_id
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :name, :website, :email, :phone,
    :street, :locality, :region, :postal_code, :country, :industry, :tax_id
);

-- name: insert_contact_organizations
INSERT INTO contact_organizations (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, contact_id,
    organization_id, role
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :contact_id, :organization_id, :role
);

-- name: insert_deals
INSERT INTO deals (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, title, stage,
    amount_minor, currency, organization_id, contact_id, expected_close
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :title, :stage, :amount_minor,
    :currency, :organization_id, :contact_id, :expected_close
);

-- name: insert_activities
INSERT INTO activities (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, channel,
    direction, outcome, subject, body, occurred_at, contact_id, organization_id, deal_id
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :channel, :direction, :outcome,
    :subject, :body, :occurred_at, :contact_id, :organization_id, :deal_id
);

-- name: insert_tasks
INSERT INTO tasks (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, title,
    status, due_at, assignee_id, contact_id, organization_id, deal_id
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :title, :status, :due_at, :assignee_id,
    :contact_id, :organization_id, :deal_id
);

-- name: insert_notes
INSERT INTO notes (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, body,
    contact_id, organization_id, deal_id
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :body, :contact_id, :organization_id,
    :deal_id
);

-- name: insert_consents
INSERT INTO consents (
    id, version, created_hlc, updated_hlc, deleted, owner_id, restricted, custom, contact_id,
    channel, purpose, kind, status, method, evidence, requested_at, confirmed_at, withdrawn_at,
    expires_at
) VALUES (
    ?2, 1, ?1, ?1, 0, :owner_id, :restricted, :custom, :contact_id, :channel, :purpose, :kind,
    :status, :method, :evidence, :requested_at, :confirmed_at, :withdrawn_at, :expires_at
);

-- name: update_users
UPDATE users SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, name = :name, display_name = :display_name,
    role = :role, password_hash = :password_hash, disabled = :disabled
WHERE id = ?2 AND version = ?3;

-- name: update_contacts
UPDATE contacts SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, given_name = :given_name,
    family_name = :family_name, email = :email, phone = :phone, street = :street,
    locality = :locality, region = :region, postal_code = :postal_code, country = :country,
    language = :language, job_title = :job_title, birth_date = :birth_date,
    email_norm = :email_norm, phone_e164 = :phone_e164, name_key = :name_key,
    street_key = :street_key, phone_tail = :phone_tail
WHERE id = ?2 AND version = ?3;

-- name: update_organizations
UPDATE organizations SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, name = :name, website = :website,
    email = :email, phone = :phone, street = :street, locality = :locality, region = :region,
    postal_code = :postal_code, country = :country, industry = :industry, tax_id = :tax_id
WHERE id = ?2 AND version = ?3;

-- name: update_contact_organizations
UPDATE contact_organizations SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, contact_id = :contact_id,
    organization_id = :organization_id, role = :role
WHERE id = ?2 AND version = ?3;

-- name: update_deals
UPDATE deals SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, title = :title, stage = :stage,
    amount_minor = :amount_minor, currency = :currency, organization_id = :organization_id,
    contact_id = :contact_id, expected_close = :expected_close
WHERE id = ?2 AND version = ?3;

-- name: update_activities
UPDATE activities SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, channel = :channel, direction = :direction,
    outcome = :outcome, subject = :subject, body = :body, occurred_at = :occurred_at,
    contact_id = :contact_id, organization_id = :organization_id, deal_id = :deal_id
WHERE id = ?2 AND version = ?3;

-- name: update_tasks
UPDATE tasks SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, title = :title, status = :status,
    due_at = :due_at, assignee_id = :assignee_id, contact_id = :contact_id,
    organization_id = :organization_id, deal_id = :deal_id
WHERE id = ?2 AND version = ?3;

-- name: update_notes
UPDATE notes SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, body = :body, contact_id = :contact_id,
    organization_id = :organization_id, deal_id = :deal_id
WHERE id = ?2 AND version = ?3;

-- name: update_consents
UPDATE consents SET
    version = version + 1, updated_hlc = ?1, deleted = ?4, owner_id = :owner_id,
    restricted = :restricted, custom = :custom, contact_id = :contact_id, channel = :channel,
    purpose = :purpose, kind = :kind, status = :status, method = :method, evidence = :evidence,
    requested_at = :requested_at, confirmed_at = :confirmed_at, withdrawn_at = :withdrawn_at,
    expires_at = :expires_at
WHERE id = ?2 AND version = ?3;

-- Lists filtered by one field, for each table and field a list may filter
-- on: that filter uses the table's index; further filters are applied by
-- store.c to the rows these return. Parameters as for list_by_id_{table}
-- and list_by_updated_{table}, and ?7 the filter's value. store.c finds
-- them by name: list_by_id_<table>_<field>, list_by_updated_<table>_<field>.

-- name: list_by_id_users_{field}
-- each field: owner_id name role
SELECT * FROM users
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_users_{field}
-- each field: owner_id name role
SELECT * FROM users
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_contacts_{field}
-- each field: owner_id
SELECT * FROM contacts
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_contacts_{field}
-- each field: owner_id
SELECT * FROM contacts
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_organizations_{field}
-- each field: owner_id
SELECT * FROM organizations
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_organizations_{field}
-- each field: owner_id
SELECT * FROM organizations
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_contact_organizations_{field}
-- each field: owner_id contact_id organization_id
SELECT * FROM contact_organizations
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_contact_organizations_{field}
-- each field: owner_id contact_id organization_id
SELECT * FROM contact_organizations
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_deals_{field}
-- each field: owner_id stage organization_id contact_id
SELECT * FROM deals
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_deals_{field}
-- each field: owner_id stage organization_id contact_id
SELECT * FROM deals
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_activities_{field}
-- each field: owner_id channel contact_id organization_id deal_id
SELECT * FROM activities
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_activities_{field}
-- each field: owner_id channel contact_id organization_id deal_id
SELECT * FROM activities
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_tasks_{field}
-- each field: owner_id status assignee_id contact_id organization_id deal_id
SELECT * FROM tasks
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_tasks_{field}
-- each field: owner_id status assignee_id contact_id organization_id deal_id
SELECT * FROM tasks
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_notes_{field}
-- each field: owner_id contact_id organization_id deal_id
SELECT * FROM notes
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_notes_{field}
-- each field: owner_id contact_id organization_id deal_id
SELECT * FROM notes
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

-- name: list_by_id_consents_{field}
-- each field: owner_id contact_id channel purpose status
SELECT * FROM consents
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND id > ?5
 ORDER BY id LIMIT ?6;

-- name: list_by_updated_consents_{field}
-- each field: owner_id contact_id channel purpose status
SELECT * FROM consents
 WHERE {field} = ?7 AND (?1 OR deleted = 0)
   AND (?2 IS NULL OR owner_id IS NULL OR owner_id = ?2)
   AND updated_hlc >= ?3 AND (updated_hlc, id) > (?4, ?5)
 ORDER BY updated_hlc, id LIMIT ?6;

