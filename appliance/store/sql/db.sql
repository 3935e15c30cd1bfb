-- Connection set-up and migrations (db.c). Run on each connection db_open
-- makes, before the rest of the store's queries are prepared.

-- name: application_id
PRAGMA application_id;

-- name: user_version
PRAGMA user_version;

-- name: foreign_keys_on
PRAGMA foreign_keys = ON;

-- name: synchronous_full
PRAGMA synchronous = FULL;

-- name: secure_delete_fast
PRAGMA secure_delete = FAST;

-- name: temp_store_memory
PRAGMA temp_store = MEMORY;

-- name: journal_wal
PRAGMA journal_mode = WAL;

-- name: begin_immediate
BEGIN IMMEDIATE;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;
