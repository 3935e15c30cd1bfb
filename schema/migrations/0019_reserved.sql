-- This number changes nothing in this build: it keeps the numbering
-- contiguous up to 0020 (the merge of the changes numbered here replaces
-- this file with theirs).
SELECT 1;
