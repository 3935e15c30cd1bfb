-- The search tokenizer's registration (fold.c): SQLite hands out the FTS5
-- API through a pointer bound to this query (see "Extending FTS5").

-- name: fts5_api
SELECT fts5(?1);
