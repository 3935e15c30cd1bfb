/*
 * Text folding for search and duplicate detection. The `outpost_fold` FTS5
 * tokenizer wraps unicode61 (remove_diacritics 2, which lower-cases and
 * strips combining marks) and additionally folds the Latin letters that
 * Unicode does not decompose: ł->l, ø->o, đ->d, ß->ss, æ->ae, œ->oe,
 * þ->th, ı->i and a few more. The invariant: a document and a query are
 * folded by the same code, so "lodz" matches "Łódź" and "muller" "Müller".
 */
#ifndef OUTPOST_FOLD_H
#define OUTPOST_FOLD_H

#include <sqlite3.h>
#include <stddef.h>

/* Registers the outpost_fold tokenizer on db. Must run before any use of
 * the *_fts tables (db_open does it). Returns 0 or a negative errno. */
int fold_register(sqlite3 *db);

struct folder;

/* A folder reuses one tokenizer instance for many strings (imports).
 * Requires fold_register(db) first. */
int folder_new(sqlite3 *db, struct folder **out);
void folder_free(struct folder *f);

/* Folds `text` to its tokens joined by single spaces ("José  Müller" ->
 * "jose muller"). *out is malloc'd by the folder and stays valid until the
 * next call or folder_free. Returns the length or a negative errno. */
int folder_fold(struct folder *f, const char *text, size_t len, const char **out);

#endif
