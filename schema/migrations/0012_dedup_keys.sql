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
