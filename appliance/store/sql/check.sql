-- `outpost check` (check.c): reads only, except the FTS5 integrity check,
-- which SQLite runs as an INSERT and check.c runs on a private snapshot.

-- name: application_id
PRAGMA application_id;

-- Stops after 100 problems: CHECK_REPORT_MAX in check.h (a PRAGMA takes
-- no parameters; test_check.c holds the two together).
-- name: integrity
PRAGMA integrity_check(100);

-- name: foreign_keys
PRAGMA foreign_key_check;

-- The column of foreign key ?2 of table ?1.
-- name: foreign_key_column
SELECT "from" FROM pragma_foreign_key_list(?1) WHERE id = ?2;

-- name: table_exists
SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1;

-- rank 1: also compares the index with its content table (external
-- content), not only the index's internal consistency.
-- name: search_index_{table}
-- each table: contacts organizations
INSERT INTO {table}_fts ({table}_fts, rank) VALUES ('integrity-check', 1);

-- The type-ahead name index (migration 0019) against the names it should
-- hold: the keys it has that no live record's name gives, and the keys
-- missing from it. Read on the connection db_open made (the keys come
-- from outpost_name_keys).
-- name: names_drift
WITH want (kind, key, rid) AS (
    SELECT 0, w.value, c.rowid
      FROM contacts AS c, json_each(outpost_name_keys(c.family_name, c.given_name)) AS w
     WHERE c.deleted = 0
    UNION
    SELECT 1, w.value, o.rowid
      FROM organizations AS o, json_each(outpost_name_keys(o.name)) AS w
     WHERE o.deleted = 0
)
SELECT (SELECT count(*) FROM (SELECT kind, key, rid FROM search_names EXCEPT
                              SELECT kind, key, rid FROM want)),
       (SELECT count(*) FROM (SELECT kind, key, rid FROM want EXCEPT
                              SELECT kind, key, rid FROM search_names));

-- `outpost check --rebuild-search`: the search indexes built again from
-- their content tables, in one transaction (check_rebuild_search).
-- name: rebuild_begin
BEGIN IMMEDIATE;

-- name: rebuild_{table}
-- each table: contacts organizations
INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild');

-- name: rebuild_names_clear
DELETE FROM search_names;

-- name: rebuild_names_contacts
INSERT OR IGNORE INTO search_names (kind, key, rid)
SELECT 0, w.value, c.rowid
  FROM contacts AS c, json_each(outpost_name_keys(c.family_name, c.given_name)) AS w
 WHERE c.deleted = 0;

-- name: rebuild_names_organizations
INSERT OR IGNORE INTO search_names (kind, key, rid)
SELECT 1, w.value, o.rowid
  FROM organizations AS o, json_each(outpost_name_keys(o.name)) AS w
 WHERE o.deleted = 0;

-- name: rebuild_commit
COMMIT;

-- name: rebuild_rollback
ROLLBACK;
