/*
 * The CRM store: create, get, update, tombstone-delete, list and search for
 * every entity in entity.h, over one SQLite connection. Records go in and
 * come out as JSON objects (jansson) keyed by field name.
 *
 * Invariants: every write runs in a transaction that bumps the record's
 * version, stamps it with the node's hybrid logical clock and appends an
 * audit row; update and delete succeed only when the caller's expected
 * version is the current one; nothing is hard-deleted.
 *
 * Ownership: functions that return JSON through an out parameter hand the
 * caller a new reference (json_decref it). Input JSON is borrowed.
 *
 * Errors: 0 on success or a negative code: -ENOENT (no such record),
 * -EINVAL (bad input; err->field names the field), STORE_EVERSION (stale
 * expected version), STORE_EDUP (probable duplicate contact; err->ref is the
 * existing id, or "" when the viewer may not see it), -EPERM (a field
 * user's rule, store_set_viewer; err->field names the field), -EEXIST
 * (the id is taken, a user name is taken, or the contact is already linked
 * to that organization; err->field names "id", "name" or
 * "organization_id"), -ENOSPC,
 * -EROFS, -EBUSY and other negative errnos from the database. `err` may be
 * NULL.
 */
#ifndef OUTPOST_STORE_H
#define OUTPOST_STORE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#include "entity.h"
#include "hlc.h"
#include "op_error.h"
#include "phone.h"
#include "sql.h"

#define STORE_EVERSION (-3001)
#define STORE_EDUP (-3002)
/* store_stage_create: not staged; write the staged rows, then this one
 * with store_create_prepared. */
#define STORE_ESTAGE (-3003)

#define STORE_LIST_MAX 1000
#define STORE_LIST_DEFAULT 50
#define STORE_SEARCH_MAX 200
#define STORE_CURSOR_MAX 96

enum store_flags {
    STORE_SKIP_DUP_CHECK = 1u << 0,  /* create/update: accept a probable duplicate */
    STORE_INCLUDE_DELETED = 1u << 1, /* get: return a tombstone instead of -ENOENT */
    STORE_ALLOW_INTERNAL = 1u << 2,  /* create/update: accept FIELD_INTERNAL fields (auth.c
                                        only; input from outside never carries this) */
    STORE_IGNORE_VIEWER = 1u << 3,   /* get: read whoever the viewer is (the residency rules
                                        judge a record by parents its viewer may not see) */
};

struct store;

/* The warning the last contact create or update left (docs/DATA_MODEL.md,
 * "Duplicate detection": the same name in the same locality is a warning,
 * not a refusal), or NULL; *ref (optional) gets the other contact's id, or
 * NULL when the viewer may not see it. Valid until the next write. */
const char *store_warning(const struct store *s, const char **ref);

/* Opens (creating with DB_OPEN_CREATE) and migrates the database at path.
 * db_flags are enum db_open_flags. The node must have been initialized with
 * store_init_node before records are written. */
int store_open(const char *path, unsigned db_flags, struct store **out, struct op_error *err);

/* Closes the store and its connection; NULL is allowed. */
void store_close(struct store *s);

/* Records this node's identity: a new UUIDv7 node id and the region code.
 * Fails with -EEXIST if the node was already initialized, -EINVAL for an
 * unknown region. */
int store_init_node(struct store *s, const char *region, struct op_error *err);

/* The node's pseudonymization secret (sync/core/egress.h): 32 random bytes made
 * by store_init_node, kept in node_meta, never exported. A node
 * initialized before the secret existed gets one here, on first use, in a
 * write transaction (so a read-only store fails with the database's
 * error). -ENOENT before store_init_node; -EPROTO if the stored key is
 * damaged. */
int store_pseudonym_key(struct store *s, unsigned char out[32], struct op_error *err);

/* The node id and region, or NULL before store_init_node. Borrowed. */
const char *store_node_id(const struct store *s);
const char *store_region(const struct store *s);

/* The underlying connection, for the store room's own modules and for
 * tests that look into the database. Everything else reaches the database
 * through the store's functions or store_queries_bind; the layout lint
 * refuses store_db elsewhere. Borrowed. */
sqlite3 *store_db(struct store *s);

/* 1 while a transaction is open on the store's connection, as SQLite sees
 * it: 0 again once SQLite has rolled one back by itself (a full disk),
 * even before store_rollback. */
int store_in_transaction(struct store *s);

/* Binds another module's named queries (sync/toolkit/sql.h) to the
 * store's connection, so that they run in the store's transactions
 * (store_begin ... store_commit). The cache is the caller's: close it with
 * sql_cache_close before store_close. This, not store_db, is how a module
 * outside the store reaches the node's database. */
int store_queries_bind(struct store *s, struct sql_cache *c, const struct sql_queries *q,
                       struct op_error *err);

/* What the residency rules (residency.h) use of the store: its queries on
 * the connection and a reader of parents. For the segmenter and the
 * egress report, which judge records as the store's writes do. Borrowed;
 * valid until store_close. */
struct residency_db;
const struct residency_db *store_residency(struct store *s);

/* The policy in force is now `new_hash`: in one transaction, records the
 * hash and, if it differs from the one recorded before (and one was),
 * voids the spool and queues every record again
 * (residency_policy_changed_tx); then sweeps the voided files. *changed
 * (may be NULL) is 1 when anything was done beyond recording. */
int store_policy_changed(struct store *s, const char *new_hash, const char *why, int *changed,
                         struct op_error *err);

/* Who the following writes are attributed to in the audit log, and from
 * which address (NULL for none). Copied. Default actor: "system". */
void store_set_actor(struct store *s, const char *actor, const char *address);

/* Restricts what the following reads and writes see to records owned by
 * user_id or by nobody (the shared pool): a `field` user's view. Records
 * owned by others behave as if they did not exist (-ENOENT, absent from
 * lists and search). NULL or "" lifts the restriction. Copied.
 *
 * Writes under a viewer also keep a field user's rules, whatever the input
 * path: store_create gives a record without owner_id to the viewer and
 * refuses any owner other than the viewer or null (-EPERM); store_update
 * refuses a change of owner_id (-EPERM: only managers move records in or
 * out of someone's hands) and clearing `restricted` (-EPERM: setting it is
 * allowed); a reference (contact_id, deal_id, ...) to a record the viewer
 * cannot see fails as one to a missing record (-EINVAL, "no contact with
 * id ..."); and a probable duplicate the viewer cannot see is reported
 * (STORE_EDUP) without its id. */
void store_set_viewer(struct store *s, const char *user_id);

/* The region policy the following writes obey (borrowed: it must outlive
 * its use; NULL = no region rules). With a policy, store_create and
 * store_update refuse a value for a field the policy forbids (-EINVAL,
 * err->field the field, "FIELD: not collected in REGION: REASON (BASIS)"),
 * refuse custom keys the policy does not define, check custom values
 * against their rule (whether `custom` is an object or its JSON text), and
 * require the policy's required custom fields on create and keep them on
 * update. Every write path goes through these two calls, so none can skip
 * the rules; a store without a policy enforces none of them. */
struct policy;
void store_set_policy(struct store *s, const struct policy *p);

/* The policy set with store_set_policy, or NULL. Borrowed. */
const struct policy *store_policy(const struct store *s);

/* How long a statement of this store waits for another connection's
 * write lock (the daemon cutting a segment, an import) before it fails
 * with -EBUSY ("database is locked"). store_open sets db_busy_timeout_default();
 * the CLI waits longer (docs/CLI.md, "Waiting for the database"). */
void store_set_busy_timeout(struct store *s, unsigned ms);
unsigned store_busy_timeout(const struct store *s);

/* Replaces the wall clock used for HLC stamps and ids (tests). */
void store_set_clock(struct store *s, hlc_clock_fn now_ms, void *ctx);

/* Groups many writes into one transaction (imports). Writes made between
 * store_begin and store_commit are all kept or, after store_rollback, all
 * gone. Without store_begin each write is its own transaction. A write
 * refused inside the transaction leaves it intact when it was refused
 * before changing anything (validation, duplicates, stale versions: the
 * usual case); if it failed halfway (disk full), store_commit refuses with
 * -EIO and rolls everything back. */
int store_begin(struct store *s, struct op_error *err);
/* store_begin for many creates in a row (imports, bulk creates): the same
 * transaction and the same duplicate rule, but when the node holds no
 * live contact at the start, the duplicate keys of the contacts this
 * transaction creates are looked up in memory instead of in the database
 * (docs/IMPORT_EXPORT.md). An update, delete or purge of a contact inside
 * the transaction sends the lookups back to the database. */
int store_begin_bulk(struct store *s, struct op_error *err);
int store_commit(struct store *s, struct op_error *err);
void store_rollback(struct store *s);

/* Creates a record from `fields` (an object of field names; "id" may carry
 * a caller-chosen UUIDv7). On success *out (if not NULL) is the stored
 * record with id, version 1, created_at and updated_at. */
int store_create(struct store *s, const struct entity_def *e, json_t *fields, unsigned flags,
                 json_t **out, struct op_error *err);

/* A create in two halves, for imports that check and key records on one
 * thread while another writes (docs/IMPORT_EXPORT.md, "Performance").
 * A preparer is made on the store's thread from the store's settings
 * (viewer, region policy, region) as they are then, with its own text
 * folder; after that it touches neither the store nor its SQLite
 * connection, so one other thread may use it while the store is in use.
 * store_prepare_create does everything store_create does before the
 * database (field checks and normalization, viewer and region rules, a
 * given id, the duplicate keys, the phone's included) with the same
 * messages; store_create_prepared (on the store's thread) does the rest:
 * the id when none was given, references, the duplicate check, the row
 * and its audit entry. The result is what store_create(fields) gives. A
 * prepared create may be written again (after STORE_EDUP, with
 * STORE_SKIP_DUP_CHECK); store_prepared_free releases it. */
struct store_preparer;
struct store_prepared;
int store_preparer_new(struct store *s, struct store_preparer **out);
void store_preparer_free(struct store_preparer *pr);
int store_prepare_create(struct store_preparer *pr, const struct entity_def *e, json_t *fields,
                         unsigned flags, struct store_prepared **out, struct op_error *err);
int store_create_prepared(struct store *s, const struct store_prepared *p, unsigned flags,
                          struct op_error *err);
void store_prepared_free(struct store_prepared *p);

/* Staged creates, for a bulk import of contacts (docs/IMPORT_EXPORT.md,
 * "Performance"): inside store_begin_bulk, store_stage_create does what
 * store_create_prepared does up to the row (id, clock stamp, references,
 * the duplicate rule, counting the contacts staged before it) but puts
 * the row into a temporary table; store_flush_staged moves every staged
 * row into contacts with one statement, so that the search index writes
 * its terms once a batch, then writes their audit rows. The records, the
 * audit and the outbox are those of as many store_create_prepared calls.
 * store_stage_create returns 0 (staged; store_warning holds the row's
 * warning and its contact, as a create gives them), STORE_ESTAGE when
 * the create needs the ordinary path (a probable duplicate, a same-name
 * match while a viewer is set, another entity, no bulk transaction):
 * flush, then store_create_prepared, which
 * answers as it always did; or another negative code (the database).
 * store_flush_staged returns 0, or a negative code with *replay 1 when
 * the batch was undone and the transaction is intact: the caller then
 * writes the same rows again with store_create_prepared, one by one, to
 * have the one at fault named. No other write may run while rows are
 * staged (-EBUSY); store_commit refuses them (-EIO, rolled back). */
int store_stage_create(struct store *s, const struct store_prepared *p, unsigned flags,
                       struct op_error *err);
int store_flush_staged(struct store *s, int *replay, struct op_error *err);
unsigned store_staged(const struct store *s);

/* Reads one record by id. */
int store_get(struct store *s, const struct entity_def *e, const char *id, unsigned flags,
              json_t **out, struct op_error *err);

/* store_get, and in phone_key the key the store made of the record's
 * phone when it wrote it (a contact's phone_e164: phone_parse under the
 * node's region, store_region), for egress_project_known: "" when there
 * is none (no phone, not a valid number, an entity that keeps no key,
 * or a node whose keys were made another way and not yet re-keyed, as
 * a read-only store opened before the upgrade step ran). */
int store_get_keyed(struct store *s, const struct entity_def *e, const char *id, unsigned flags,
                    json_t **out, char phone_key[PHONE_E164_MAX], struct op_error *err);

/* Applies `changes` (field -> new value; null clears; "custom" is merged
 * as an RFC 7396 merge patch) if the current version is expected_version. */
int store_update(struct store *s, const struct entity_def *e, const char *id,
                 int64_t expected_version, json_t *changes, unsigned flags, json_t **out,
                 struct op_error *err);

/* Turns the record into a tombstone if the current version is
 * expected_version. *out (if not NULL) is the tombstone. */
int store_delete(struct store *s, const struct entity_def *e, const char *id,
                 int64_t expected_version, json_t **out, struct op_error *err);

/* Purges a record (retention, erasure): blanks its personal fields (text,
 * contact details, dates and objects become NULL, '' or {}; references,
 * enumerations, flags, money and required time stamps stay), turns it into
 * a tombstone whatever its version, bumps the version and writes an audit
 * row with `action` ("purge", "erase"; NULL = "purge") and `reason` as its
 * detail, all in one transaction (or inside the caller's). Already deleted
 * records are purged too. Users cannot be purged (-EINVAL). Callers run
 * it with PRAGMA secure_delete = ON (retention_secure_delete) and then
 * truncate the WAL, or the old text stays in freed pages of the file. */
int store_purge(struct store *s, const struct entity_def *e, const char *id, const char *action,
                const char *reason, struct op_error *err);

enum store_sort {
    STORE_SORT_ID = 0,      /* creation order (ids are time-ordered) */
    STORE_SORT_UPDATED = 1, /* last change first-to-last */
};

struct store_filter {
    const char *field; /* a FIELD_FILTER field of the entity */
    const char *value;
};

struct store_query {
    const char *cursor; /* from a previous page's next_cursor, or NULL */
    int limit;          /* 1..STORE_LIST_MAX; 0 means STORE_LIST_DEFAULT */
    enum store_sort sort;
    const struct store_filter *filters;
    size_t nfilters;
    const char *updated_since; /* ISO 8601 UTC; only records changed at or after it */
    int include_deleted;
};

/* One page of records in keyset order. *items is a new JSON array;
 * next_cursor receives the cursor of the following page, or "" when this
 * was the last one. */
int store_list(struct store *s, const struct entity_def *e, const struct store_query *q,
               json_t **items, char next_cursor[STORE_CURSOR_MAX], struct op_error *err);

/* The same page as JSON text, appended to out: {"items":[...],
 * "next_cursor":"..."|null}, byte for byte what json_dumps(JSON_COMPACT)
 * makes of store_list's answer in that shape, written from the rows
 * without a JSON object per record (the API's lists). On failure out may
 * hold part of the page. */
struct buf;
int store_list_text(struct store *s, const struct entity_def *e, const struct store_query *q,
                    struct buf *out, struct op_error *err);

/* Calls cb for every record of the entity in id order (tombstones too when
 * include_deleted). A non-zero return from cb stops the walk and is
 * returned. The record passed to cb is borrowed for the call. */
int store_each(struct store *s, const struct entity_def *e, int include_deleted,
               int (*cb)(void *ctx, json_t *record), void *ctx, struct op_error *err);

/* Search over contacts and organizations, diacritics folded and each
 * word matched as a prefix. *results is an array of objects {"entity",
 * "id", "label", "record"}, at most limit (0: 20). A query of one or two
 * words of at most four characters each is type-ahead: names with a
 * word starting so come first (the exact word, then longer words in
 * order, then by folded family and given name), then the full-text
 * index's best matches fill up to the limit; longer queries are ranked
 * by the full-text index (bm25) alone. docs/DATA_MODEL.md, "Search". */
int store_search(struct store *s, const char *text, int limit, json_t **results,
                 struct op_error *err);

/* The same hits as JSON text {"items":[...]} appended to out, written
 * straight from the rows (what the API answers). */
int store_search_text(struct store *s, const char *text, int limit, struct buf *out,
                      struct op_error *err);

/* Per-entity names for the same calls, so code reads as what it does. */
#define STORE_ENTITY_API(NAME)                                                                     \
    static inline int store_##NAME##_create(struct store *s, json_t *f, unsigned fl, json_t **o,   \
                                            struct op_error *er)                                   \
    {                                                                                              \
        return store_create(s, &entity_##NAME, f, fl, o, er);                                      \
    }                                                                                              \
    static inline int store_##NAME##_get(struct store *s, const char *id, json_t **o,              \
                                         struct op_error *er)                                      \
    {                                                                                              \
        return store_get(s, &entity_##NAME, id, 0, o, er);                                         \
    }                                                                                              \
    static inline int store_##NAME##_update(struct store *s, const char *id, int64_t v, json_t *c, \
                                            json_t **o, struct op_error *er)                       \
    {                                                                                              \
        return store_update(s, &entity_##NAME, id, v, c, 0, o, er);                                \
    }                                                                                              \
    static inline int store_##NAME##_delete(struct store *s, const char *id, int64_t v,            \
                                            struct op_error *er)                                   \
    {                                                                                              \
        return store_delete(s, &entity_##NAME, id, v, NULL, er);                                   \
    }                                                                                              \
    static inline int store_##NAME##_list(struct store *s, const struct store_query *q,            \
                                          json_t **i, char c[STORE_CURSOR_MAX],                    \
                                          struct op_error *er)                                     \
    {                                                                                              \
        return store_list(s, &entity_##NAME, q, i, c, er);                                         \
    }

/* One entity's query among those one `-- each table:` template makes
 * (SQLite cannot bind a table name). A module keeps a table of them for
 * the entities its template covers, ended by {NULL, 0}. */
struct store_entity_query {
    const struct entity_def *e;
    unsigned id;
};

/* The id of e's query in table t, or -1 when the table has none for e. */
int store_entity_query(const struct store_entity_query *t, const struct entity_def *e);

STORE_ENTITY_API(user)
STORE_ENTITY_API(contact)
STORE_ENTITY_API(organization)
STORE_ENTITY_API(contact_organization)
STORE_ENTITY_API(deal)
STORE_ENTITY_API(activity)
STORE_ENTITY_API(task)
STORE_ENTITY_API(note)
STORE_ENTITY_API(consent)

#endif
