-- Duplicate keys and search for unspaced scripts.
--
-- The second fields of the duplicate rule (docs/DATA_MODEL.md, "Duplicate
-- detection"): a contact is a probable duplicate of one with a similar
-- name and the same street (street_key: folded street and locality), or a
-- similar name and a phone ending in the same seven digits (phone_tail).
-- name_key changes meaning (the name's skeleton: evenly spelled, sorted
-- words, then the folded locality) and now only warns. The store fills the
-- new columns and rewrites name_key for existing contacts when it first
-- opens the database for writing (node_meta dedup_keys), since folding
-- needs the tokenizer in C.
ALTER TABLE contacts ADD COLUMN street_key TEXT;
ALTER TABLE contacts ADD COLUMN phone_tail TEXT;
CREATE INDEX contacts_street_key ON contacts (street_key) WHERE deleted = 0 AND street_key IS NOT NULL;
CREATE INDEX contacts_phone_tail ON contacts (phone_tail) WHERE deleted = 0 AND phone_tail IS NOT NULL;

-- Search: the outpost_fold tokenizer now cuts scripts written without
-- spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) into overlapping
-- pairs of characters, so any two or more characters of a name or place
-- match (docs/DATA_MODEL.md, "Search"). Rows indexed before are indexed
-- again the new way.
INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild');
INSERT INTO organizations_fts (organizations_fts) VALUES ('rebuild');
