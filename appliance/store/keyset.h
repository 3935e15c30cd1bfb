/*
 * The duplicate keys of the contacts one bulk transaction has created, in
 * memory (docs/IMPORT_EXPORT.md, "Duplicates within the file"). When a
 * bulk write starts on a node with no live contact, every contact the
 * duplicate rule can find is one the transaction itself created, so the
 * store looks its keys up here instead of asking SQLite five times a row.
 * Entries of one key keep their creation order, which is the order the
 * indexed lookups return. A hash table of strings; no database, no state
 * besides the set itself.
 */
#ifndef OUTPOST_KEYSET_H
#define OUTPOST_KEYSET_H

#include <stddef.h>

/* The kinds of key, in the order of the duplicate rule. */
enum keyset_kind {
    KEYSET_EMAIL,  /* email_norm */
    KEYSET_PHONE,  /* phone_e164 */
    KEYSET_STREET, /* street_key */
    KEYSET_TAIL,   /* phone_tail */
    KEYSET_NAME,   /* name_key */
    KEYSET_NKINDS
};

struct keyset;

/* One contact in the set. next[kind] is the next contact, in creation
 * order, with the same key of that kind. */
struct keyset_entry {
    const char *id;
    const char *name_key; /* NULL when the contact has none */
    struct keyset_entry *next[KEYSET_NKINDS];
};

/* A new empty set, or NULL when out of memory. */
struct keyset *keyset_new(void);
void keyset_free(struct keyset *ks);

/* Adds contact `id` with its keys (keys[kind] NULL or "" for none; the
 * name key is keys[KEYSET_NAME]). Returns 0 or -ENOMEM (the set is then
 * unchanged). */
int keyset_add(struct keyset *ks, const char *id, const char *const keys[KEYSET_NKINDS]);

/* The first contact created with `key` of `kind`, or NULL. */
const struct keyset_entry *keyset_find(const struct keyset *ks, enum keyset_kind kind,
                                       const char *key);

/* The number of contacts in the set. */
size_t keyset_count(const struct keyset *ks);

#endif
