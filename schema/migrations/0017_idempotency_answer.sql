-- The first answer of a keyed bulk create (POST /api/v1/contacts/bulk,
-- docs/API.md "Bulk create"): a replay of the same request answers it
-- again, since one request made many records and no single record is its
-- answer. NULL for the keys of single creates, whose replay answers the
-- record as it is now. Node-local, like the rest of the table.
ALTER TABLE idempotency_keys ADD COLUMN answer TEXT;
