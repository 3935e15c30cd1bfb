-- Bulk create (api_bulk.c): one request's records inside the writer's
-- batch transaction, undone together when an item is bad or the request
-- is a dry run.

-- name: savepoint
SAVEPOINT bulk_create;

-- name: release
RELEASE bulk_create;

-- name: rollback_to
ROLLBACK TO bulk_create;
