-- Export (exporter.c): every row read in one snapshot.

-- name: begin
BEGIN;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;
