-- Online backup (backup.c). `src` queries run on the caller's connection
-- to the node's database, `copy` queries on the temporary copy. Some
-- PRAGMAs act (or read) when they are prepared, not when stepped: backup
-- prepares these on a cache that lives for one backup.

-- The read transaction that holds one snapshot for the whole copy: BEGIN
-- alone takes no lock; the read does.
-- name: src_begin
BEGIN;

-- name: src_read
SELECT count(*) FROM sqlite_schema;

-- name: src_end
COMMIT;

-- The copy is written with its journal off: if anything fails it is
-- deleted, so a journal would protect nothing.
-- name: copy_journal_off
PRAGMA journal_mode = OFF;

-- name: copy_synchronous_off
PRAGMA synchronous = OFF;

-- Rollback mode makes the copy one self-contained file.
-- name: copy_journal_delete
PRAGMA journal_mode = DELETE;

-- name: copy_page_size
PRAGMA page_size;

-- On a fresh read-only connection to the written file.
-- name: copy_quick_check
PRAGMA quick_check;
