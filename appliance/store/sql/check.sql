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

-- `outpost check --rebuild-search`: the search index built again from its
-- content tables, in one transaction (check_rebuild_search).
-- name: rebuild_begin
BEGIN IMMEDIATE;

-- name: rebuild_{table}
-- each table: contacts organizations
INSERT INTO {table}_fts ({table}_fts) VALUES ('rebuild');

-- name: rebuild_commit
COMMIT;

-- name: rebuild_rollback
ROLLBACK;
