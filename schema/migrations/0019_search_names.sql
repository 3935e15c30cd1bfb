-- Type-ahead search: an ordered index of the folded words of names
-- (docs/DATA_MODEL.md, "Search"). A query of one or two short words is
-- answered by a range scan here (`key >= 'mar' AND key < 'mas'`) that
-- stops at the limit, instead of ranking every full-text match with bm25.
-- A key is a folded word of the name, a space, and the name's folded
-- sort text (a contact's family name, then given name; an
-- organization's name), made by outpost_name_keys (appliance/store/fold.c)
-- with the full-text index's own tokenizer. A space sorts before letters
-- and digits, so keys come exact word first, then longer words in order,
-- then by the sort text. Words of scripts written without spaces are
-- left to the full-text index, which holds their pairs of characters.
--
-- Only live records are indexed: a tombstone's, an erased or a purged
-- record's keys are deleted by the statement that blanks or deletes the
-- row (the triggers), under the connection's secure_delete.
-- kind 0: contacts (given_name, family_name); 1: organizations (name).
-- kind leads the primary key, so each kind's range is read on its own
-- (with the key first, a search read every contact key of its range to
-- find the organizations among them).
CREATE TABLE search_names (
    kind INTEGER NOT NULL,
    key TEXT NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (kind, key, rid)
) WITHOUT ROWID;

CREATE TRIGGER contacts_names_ai AFTER INSERT ON contacts WHEN new.deleted = 0 BEGIN
    INSERT OR IGNORE INTO search_names (key, kind, rid)
    SELECT value, 0, new.rowid
      FROM json_each(outpost_name_keys(new.family_name, new.given_name));
END;
CREATE TRIGGER contacts_names_ad AFTER DELETE ON contacts WHEN old.deleted = 0 BEGIN
    DELETE FROM search_names
     WHERE kind = 0 AND rid = old.rowid
       AND key IN (SELECT value FROM json_each(outpost_name_keys(old.family_name,
                                                                 old.given_name)));
END;
CREATE TRIGGER contacts_names_au AFTER UPDATE OF given_name, family_name, deleted ON contacts
    WHEN old.given_name IS NOT new.given_name OR old.family_name IS NOT new.family_name
      OR old.deleted IS NOT new.deleted BEGIN
    DELETE FROM search_names
     WHERE old.deleted = 0 AND kind = 0 AND rid = old.rowid
       AND key IN (SELECT value FROM json_each(outpost_name_keys(old.family_name,
                                                                 old.given_name)));
    INSERT OR IGNORE INTO search_names (key, kind, rid)
    SELECT value, 0, new.rowid
      FROM json_each(outpost_name_keys(new.family_name, new.given_name))
     WHERE new.deleted = 0;
END;

CREATE TRIGGER organizations_names_ai AFTER INSERT ON organizations WHEN new.deleted = 0 BEGIN
    INSERT OR IGNORE INTO search_names (key, kind, rid)
    SELECT value, 1, new.rowid FROM json_each(outpost_name_keys(new.name));
END;
CREATE TRIGGER organizations_names_ad AFTER DELETE ON organizations WHEN old.deleted = 0 BEGIN
    DELETE FROM search_names
     WHERE kind = 1 AND rid = old.rowid
       AND key IN (SELECT value FROM json_each(outpost_name_keys(old.name)));
END;
CREATE TRIGGER organizations_names_au AFTER UPDATE OF name, deleted ON organizations
    WHEN old.name IS NOT new.name OR old.deleted IS NOT new.deleted BEGIN
    DELETE FROM search_names
     WHERE old.deleted = 0 AND kind = 1 AND rid = old.rowid
       AND key IN (SELECT value FROM json_each(outpost_name_keys(old.name)));
    INSERT OR IGNORE INTO search_names (key, kind, rid)
    SELECT value, 1, new.rowid FROM json_each(outpost_name_keys(new.name))
     WHERE new.deleted = 0;
END;

-- Records written before this migration.
INSERT OR IGNORE INTO search_names (key, kind, rid)
SELECT w.value, 0, c.rowid
  FROM contacts AS c, json_each(outpost_name_keys(c.family_name, c.given_name)) AS w
 WHERE c.deleted = 0;
INSERT OR IGNORE INTO search_names (key, kind, rid)
SELECT w.value, 1, o.rowid
  FROM organizations AS o, json_each(outpost_name_keys(o.name)) AS w
 WHERE o.deleted = 0;
