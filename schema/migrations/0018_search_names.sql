-- Type-ahead search: an ordered index of the folded words of names
-- (docs/DATA_MODEL.md, "Search"). A query of one or two short words is
-- answered by a range scan here (`token >= 'mar' AND token < 'mas'`),
-- exact words first, then longer words in order, then by the folded name
-- (family name first), instead of ranking every full-text match with
-- bm25. Words come from the same tokenizer as the full-text index
-- (outpost_fold, outpost_name_words: appliance/store/fold.c), so every
-- hit here is a hit there too. Words of scripts written without spaces
-- are left to the full-text index, which holds their pairs of characters.
--
-- Only live records are indexed: a tombstone's, an erased or a purged
-- record's words are deleted in the same statement that blanks or
-- deletes the row (the triggers), under the connection's secure_delete.
-- kind 0: contacts (given_name, family_name); 1: organizations (name).
CREATE TABLE search_names (
    token TEXT NOT NULL,
    sort TEXT NOT NULL,
    kind INTEGER NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (token, sort, kind, rid)
) WITHOUT ROWID;

CREATE TRIGGER contacts_names_ai AFTER INSERT ON contacts WHEN new.deleted = 0 BEGIN
    INSERT OR IGNORE INTO search_names (token, sort, kind, rid)
    SELECT w.value,
           coalesce(outpost_fold(coalesce(new.family_name, '') || ' ' ||
                                 coalesce(new.given_name, '')), ''), 0, new.rowid
      FROM json_each(outpost_name_words(coalesce(new.given_name, '') || ' ' ||
                                        coalesce(new.family_name, ''))) AS w;
END;
CREATE TRIGGER contacts_names_ad AFTER DELETE ON contacts WHEN old.deleted = 0 BEGIN
    DELETE FROM search_names
     WHERE kind = 0 AND rid = old.rowid
       AND sort = coalesce(outpost_fold(coalesce(old.family_name, '') || ' ' ||
                                        coalesce(old.given_name, '')), '')
       AND token IN (SELECT value FROM json_each(outpost_name_words(
                         coalesce(old.given_name, '') || ' ' || coalesce(old.family_name, ''))));
END;
CREATE TRIGGER contacts_names_au AFTER UPDATE OF given_name, family_name, deleted ON contacts
    WHEN old.given_name IS NOT new.given_name OR old.family_name IS NOT new.family_name
      OR old.deleted IS NOT new.deleted BEGIN
    DELETE FROM search_names
     WHERE old.deleted = 0 AND kind = 0 AND rid = old.rowid
       AND sort = coalesce(outpost_fold(coalesce(old.family_name, '') || ' ' ||
                                        coalesce(old.given_name, '')), '')
       AND token IN (SELECT value FROM json_each(outpost_name_words(
                         coalesce(old.given_name, '') || ' ' || coalesce(old.family_name, ''))));
    INSERT OR IGNORE INTO search_names (token, sort, kind, rid)
    SELECT w.value,
           coalesce(outpost_fold(coalesce(new.family_name, '') || ' ' ||
                                 coalesce(new.given_name, '')), ''), 0, new.rowid
      FROM json_each(outpost_name_words(coalesce(new.given_name, '') || ' ' ||
                                        coalesce(new.family_name, ''))) AS w
     WHERE new.deleted = 0;
END;

CREATE TRIGGER organizations_names_ai AFTER INSERT ON organizations WHEN new.deleted = 0 BEGIN
    INSERT OR IGNORE INTO search_names (token, sort, kind, rid)
    SELECT w.value, coalesce(outpost_fold(new.name), ''), 1, new.rowid
      FROM json_each(outpost_name_words(new.name)) AS w;
END;
CREATE TRIGGER organizations_names_ad AFTER DELETE ON organizations WHEN old.deleted = 0 BEGIN
    DELETE FROM search_names
     WHERE kind = 1 AND rid = old.rowid AND sort = coalesce(outpost_fold(old.name), '')
       AND token IN (SELECT value FROM json_each(outpost_name_words(old.name)));
END;
CREATE TRIGGER organizations_names_au AFTER UPDATE OF name, deleted ON organizations
    WHEN old.name IS NOT new.name OR old.deleted IS NOT new.deleted BEGIN
    DELETE FROM search_names
     WHERE old.deleted = 0 AND kind = 1 AND rid = old.rowid
       AND sort = coalesce(outpost_fold(old.name), '')
       AND token IN (SELECT value FROM json_each(outpost_name_words(old.name)));
    INSERT OR IGNORE INTO search_names (token, sort, kind, rid)
    SELECT w.value, coalesce(outpost_fold(new.name), ''), 1, new.rowid
      FROM json_each(outpost_name_words(new.name)) AS w
     WHERE new.deleted = 0;
END;

-- Records written before this migration.
INSERT OR IGNORE INTO search_names (token, sort, kind, rid)
SELECT w.value,
       coalesce(outpost_fold(coalesce(c.family_name, '') || ' ' || coalesce(c.given_name, '')),
                ''), 0, c.rowid
  FROM contacts AS c, json_each(outpost_name_words(coalesce(c.given_name, '') || ' ' ||
                                                   coalesce(c.family_name, ''))) AS w
 WHERE c.deleted = 0;
INSERT OR IGNORE INTO search_names (token, sort, kind, rid)
SELECT w.value, coalesce(outpost_fold(o.name), ''), 1, o.rowid
  FROM organizations AS o, json_each(outpost_name_words(o.name)) AS w
 WHERE o.deleted = 0;
