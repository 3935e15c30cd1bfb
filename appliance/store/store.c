/*
 * The CRM store; see store.h for the contract. Its SQL is in
 * sql/store.sql, prepared once per connection in the store's sql_cache:
 * the queries for one entity are written once per table and picked by the
 * entity's place in entity_all, and records are matched to the
 * descriptors (entity.c) by column and parameter name. Every value is
 * bound as a parameter. Each write is a transaction (or part of the
 * caller's) holding: the record change, the version bump, the HLC stamp,
 * the audit row, the persisted clock and the residency rules' steps
 * (residency.h), which the store runs on every write so that no caller
 * can skip them.
 */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h"
#include "codec.h"
#include "db.h"
#include "dedup.h"
#include "fold.h"
#include "keyset.h"
#include "phone.h"
#include "policy.h"
#include "region.h"
#include "residency.h"
#include "store_queries.h"
#include "timefmt.h"
#include "uuid7.h"

#define SEARCH_TEXT_MAX 256
#define SEARCH_TERMS_MAX 16
#define FIELDS_MAX 32
/* Contacts whose duplicate keys a bulk transaction keeps in memory, about
 * 600 bytes each (keyset.h); past it, lookups go to SQLite. */
#define BULK_KEYS_MAX 100000
#define DEDUP_NKEYS 5 /* email_norm, phone_e164, name_key, street_key, phone_tail */

/* How this build makes phone keys (node_meta "phone_keys"). A node whose
 * records were keyed another way is re-keyed when the store opens. */
#define PHONE_KEYS "libphonenumber-1"
/* How this build makes the other duplicate keys (node_meta "dedup_keys"). */
#define DEDUP_KEYS "2"

struct search_cols;

struct store {
    sqlite3 *db;
    unsigned busy_ms;        /* how long a write waits for another writer's lock */
    struct sql_cache q;      /* the store room's queries on db */
    struct residency_db res; /* what the residency rules use of the store */
    struct hlc clock;
    struct uuid7_gen ids;
    struct folder *folder;
    char node_id[UUID_TEXT_LEN];
    char region_code[16];
    const struct region_info *region;
    char actor[128];
    char address[64];
    char viewer[UUID_TEXT_LEN];  /* "" = sees everything */
    const struct policy *policy; /* borrowed; NULL = no region rules */
    int txn_depth;
    int write_dirty;  /* the current write has changed a row */
    int txn_poisoned; /* a nested write failed after changing a row */
    int void_pending; /* a write of this transaction withheld a record: void the spool */
    char void_why[200];
    unsigned each_busy; /* a bit per entity_all index: a store_each walk is running */
    char warning[200];  /* the last create or update's warning (store_warning), "" none */
    char warning_ref[UUID_TEXT_LEN];
    /* the keys of the contacts created by a bulk transaction that began
     * with no live contact (store_begin_bulk); NULL: lookups ask SQLite */
    struct keyset *bulk;
    /* Contacts staged by store_stage_create and not yet moved into the
     * table (store_flush_staged). `pending` holds their keys when `bulk`
     * does not (a node that already held contacts: the lookups ask SQLite,
     * which does not see staged rows). */
    unsigned nstaged;
    struct keyset *pending;
    int stage_ready;   /* the temp table exists in this transaction */
    int stage_nokeys;  /* a staged row's keys could not be kept: flush first */
    int phone_keys_ok; /* node_meta "phone_keys" was seen to be PHONE_KEYS */
    /* bind_record's parameter numbers, per query, looked up on first use
     * (a lookup by name per field and row was a tenth of an import's
     * own work) */
    struct bind_map {
        unsigned char ready;
        unsigned char field[FIELDS_MAX];
        unsigned char key[DEDUP_NKEYS];
    } binds[STORE_Q_COUNT];
    /* the search statements' column maps, made on the first search */
    struct search_cols *search_cols;
};

/* ---- statements ---------------------------------------------------- */

/* The error of a failed sql_get (it fills err; without err, -EIO). */
static int get_failed(struct op_error *err)
{
    return err && err->code ? err->code : -EIO;
}

int store_entity_query(const struct store_entity_query *t, const struct entity_def *e)
{
    for (; t->e; t++)
        if (t->e == e)
            return (int)t->id;
    return -1;
}

static int entity_index(const struct entity_def *e)
{
    for (int i = 0; entity_all[i]; i++)
        if (entity_all[i] == e)
            return i;
    return -1;
}

/* The statement for e from a set of per-table queries that starts at
 * `first` (the users query) and follows entity_all. The query's name must
 * be the set's name for e's table, so a set out of order fails loudly. */
static sqlite3_stmt *table_stmt(struct store *s, unsigned first, const struct entity_def *e,
                                unsigned *id, struct op_error *err)
{
    const char *const *names = store_queries.names;
    int i = entity_index(e);
    size_t stem = strlen(names[first]), users = strlen(entity_all[0]->table);
    if (i < 0 || first + (unsigned)i >= STORE_Q_COUNT || stem < users ||
        strncmp(names[first + (unsigned)i], names[first], stem - users) != 0 ||
        strcmp(names[first + (unsigned)i] + stem - users, e->table) != 0) {
        op_error_set(err, -EINVAL, NULL, "no query %.*s%s", (int)(stem - users), names[first],
                     e->table);
        return NULL;
    }
    *id = first + (unsigned)i;
    return sql_get(&s->q, *id, err);
}

/* The query named `name` ("store_list_by_id_deals_stage"), or NULL. */
static sqlite3_stmt *named_stmt(struct store *s, const char *name, unsigned *id,
                                struct op_error *err)
{
    for (unsigned i = 0; i < store_queries.count; i++) {
        if (!strcmp(store_queries.names[i], name)) {
            *id = i;
            return sql_get(&s->q, i, err);
        }
    }
    op_error_set(err, -EINVAL, NULL, "no query %s", name);
    return NULL;
}

/* Where each column of a record is in a statement's row: records are read
 * with SELECT *, and matched to the descriptor by column name. */
#define COMMON_COLS 5
static const char *const common_cols[COMMON_COLS] = {"id", "version", "created_hlc", "updated_hlc",
                                                     "deleted"};
enum { COL_ID, COL_VERSION, COL_CREATED, COL_UPDATED, COL_DELETED };

struct cols {
    int common[COMMON_COLS];
    int field[FIELDS_MAX];
};

static int col_of(sqlite3_stmt *st, const char *name)
{
    int n = sqlite3_column_count(st);
    for (int c = 0; c < n; c++) {
        const char *have = sqlite3_column_name(st, c);
        if (have && !strcmp(have, name))
            return c;
    }
    return -1;
}

/* The columns of st, a statement just asked for: NULL when asking failed
 * (err filled by sql_get), and that error comes back. */
static int cols_map(sqlite3_stmt *st, const struct entity_def *e, struct cols *m,
                    struct op_error *err)
{
    if (!st)
        return get_failed(err);
    if (e->nfields > FIELDS_MAX)
        return op_error_set(err, -E2BIG, NULL, "a %s has more than %d fields", e->name, FIELDS_MAX);
    for (int i = 0; i < COMMON_COLS; i++)
        if ((m->common[i] = col_of(st, common_cols[i])) < 0)
            return op_error_set(err, -EINVAL, NULL, "table %s has no column %s", e->table,
                                common_cols[i]);
    for (size_t i = 0; i < e->nfields; i++)
        if ((m->field[i] = col_of(st, e->fields[i].name)) < 0)
            return op_error_set(err, -EINVAL, NULL, "table %s has no column %s", e->table,
                                e->fields[i].name);
    return 0;
}

/* ---- clock and transactions ---------------------------------------- */

static int meta_get(struct store *s, const char *key, char *buf, size_t cap, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&s->q, STORE_Q_STORE_META_GET, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sql_step(&s->q, STORE_Q_STORE_META_GET, st, err);
    if (rc == 1) {
        snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        return 1;
    }
    buf[0] = '\0';
    return rc;
}

static int meta_set(struct store *s, const char *key, const char *value, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&s->q, STORE_Q_STORE_META_SET, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    rc = sql_run(&s->q, STORE_Q_STORE_META_SET, st, err);
    return rc < 0 ? rc : 0;
}

/* Another process (the CLI beside the daemon) may have issued stamps: the
 * persisted clock is read under the write lock and taken as a floor. */
static int clock_sync(struct store *s, struct op_error *err)
{
    char buf[32];
    int rc = meta_get(s, "hlc", buf, sizeof buf, err);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        hlc_stamp v = strtoull(buf, NULL, 10);
        if (v > s->clock.last)
            s->clock.last = v;
    }
    return 0;
}

static int clock_persist(struct store *s, struct op_error *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, s->clock.last);
    return meta_set(s, "hlc", buf, err);
}

static int exec_simple(struct store *s, unsigned id, struct op_error *err)
{
    int rc = sql_exec(&s->q, id, err);
    return rc < 0 ? rc : 0;
}

/* Forgets the staged contacts (their rows are gone with the statement
 * or transaction that undid them, or moved into the table). */
static void stage_reset(struct store *s)
{
    s->nstaged = 0;
    keyset_free(s->pending);
    s->pending = NULL;
    s->stage_ready = 0;
    s->stage_nokeys = 0;
}

static int write_begin(struct store *s, struct op_error *err)
{
    if (s->nstaged)
        return op_error_set(err, -EBUSY, NULL,
                            "%u staged contacts must be written first (store_flush_staged)",
                            s->nstaged);
    s->write_dirty = 0;
    if (s->txn_depth > 0) {
        /* Inside the caller's transaction no savepoint is taken: FTS5
         * flushes its pending index data at every savepoint, which made
         * imports a third slower. A write that fails before changing a row
         * leaves nothing behind (each statement is atomic); one that fails
         * after poisons the transaction, which can then only roll back. */
        s->txn_depth++;
        return 0;
    }
    s->txn_poisoned = 0;
    s->void_pending = 0;
    int rc = exec_simple(s, STORE_Q_STORE_BEGIN_IMMEDIATE, err);
    if (rc < 0)
        return rc;
    s->txn_depth = 1;
    rc = clock_sync(s, err);
    if (rc < 0) {
        (void)exec_simple(s, STORE_Q_STORE_ROLLBACK, NULL);
        s->txn_depth = 0;
    }
    return rc;
}

/* Ends what write_begin started: commits when ok, else undoes it; inside
 * the caller's transaction, returns to it (a failed write that changed a
 * row poisons it). Returns 0 or the commit's error. */
static int write_end(struct store *s, int ok, struct op_error *err)
{
    if (s->txn_depth > 1) {
        s->txn_depth--;
        if (!ok && s->write_dirty)
            s->txn_poisoned = 1;
        return 0;
    }
    s->txn_depth = 0;
    keyset_free(s->bulk);
    s->bulk = NULL;
    stage_reset(s);
    int voiding = s->void_pending;
    s->void_pending = 0;
    if (ok) {
        int rc = clock_persist(s, err);
        /* A record this transaction withholds may sit in the spool with its
         * old values: void the spool in the same transaction, and empty the
         * files before the write returns (docs/EGRESS.md). */
        if (rc == 0 && voiding)
            rc = residency_void_spool_tx(&s->res, s->void_why, NULL, err);
        if (rc == 0)
            rc = exec_simple(s, STORE_Q_STORE_COMMIT, err);
        if (rc == 0) {
            /* Best effort: the files were checked to be ours to truncate;
             * what fails here stays listed and outpostd sweeps it again. */
            if (voiding)
                (void)residency_sweep(&s->res, NULL);
            return 0;
        }
        (void)exec_simple(s, STORE_Q_STORE_ROLLBACK, NULL);
        return rc;
    }
    (void)exec_simple(s, STORE_Q_STORE_ROLLBACK, NULL);
    return 0;
}

int store_begin(struct store *s, struct op_error *err)
{
    if (s->txn_depth > 0)
        return op_error_set(err, -EBUSY, NULL, "a transaction is already open");
    return write_begin(s, err);
}

int store_begin_bulk(struct store *s, struct op_error *err)
{
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    rc = sql_get_st(&s->q, STORE_Q_STORE_ANY_LIVE_CONTACT, &st, err);
    if (rc == 0)
        rc = sql_step(&s->q, STORE_Q_STORE_ANY_LIVE_CONTACT, st, err);
    if (rc == 1)
        sqlite3_reset(st);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    /* without memory the lookups simply stay with SQLite */
    if (rc == 0)
        s->bulk = keyset_new();
    return 0;
}

/* A contact's keys change other than by a create: the set no longer
 * mirrors the table, so lookups go back to SQLite, which holds every
 * row of the transaction. */
static void bulk_off(struct store *s)
{
    keyset_free(s->bulk);
    s->bulk = NULL;
}

int store_commit(struct store *s, struct op_error *err)
{
    if (s->txn_depth != 1)
        return op_error_set(err, -EINVAL, NULL, "no transaction is open");
    if (s->nstaged) {
        (void)write_end(s, 0, NULL);
        return op_error_set(err, -EIO, NULL,
                            "contacts were staged and never written; the whole transaction was "
                            "rolled back");
    }
    if (s->txn_poisoned) {
        (void)write_end(s, 0, NULL);
        return op_error_set(err, -EIO, NULL,
                            "a write failed after it had started; the whole transaction was "
                            "rolled back");
    }
    return write_end(s, 1, err);
}

void store_rollback(struct store *s)
{
    if (s->txn_depth == 1)
        (void)write_end(s, 0, NULL);
}

/* ---- open / close ---------------------------------------------------- */

/* The residency rules read a parent record whoever the viewer is. */
static int parent_get(void *ctx, const struct entity_def *e, const char *id, json_t **out,
                      struct op_error *err)
{
    return store_get(ctx, e, id, STORE_INCLUDE_DELETED | STORE_IGNORE_VIEWER, out, err);
}

static int phone_rekey(struct store *s, struct op_error *err);
static int dedup_rekey(struct store *s, struct op_error *err);

int store_open(const char *path, unsigned db_flags, struct store **out, struct op_error *err)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = db_open(path, db_flags, &s->db, err);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->busy_ms = db_busy_timeout_default();
    rc = sql_cache_init(&s->q, s->db, &store_queries, err);
    if (rc < 0)
        goto fail;
    s->res = (struct residency_db){&s->q, parent_get, s};
    hlc_init(&s->clock, 0, NULL, NULL);
    uuid7_init(&s->ids, NULL, NULL, NULL, NULL);
    snprintf(s->actor, sizeof s->actor, "system");
    rc = folder_new(s->db, &s->folder);
    if (rc < 0) {
        op_error_set(err, rc, NULL, "cannot create the text folder");
        goto fail;
    }
    int version = 0;
    rc = db_schema_version(s->db, &version);
    if (rc < 0)
        goto fail;
    if ((db_flags & DB_OPEN_READONLY) && version < db_latest_version()) {
        rc = op_error_set(err, -EPROTO, NULL,
                          "database %s has schema version %d, older than this build's %d; "
                          "open it once for writing (any write command, or outpostd) to "
                          "migrate it",
                          path, version, db_latest_version());
        goto fail;
    }
    if (version >= 1) {
        rc = meta_get(s, "node_id", s->node_id, sizeof s->node_id, err);
        if (rc >= 0)
            rc = meta_get(s, "region", s->region_code, sizeof s->region_code, err);
        if (rc >= 0)
            rc = clock_sync(s, err);
        if (rc < 0)
            goto fail;
        s->region = s->region_code[0] ? region_find(s->region_code) : NULL;
        if (s->node_id[0] && !(db_flags & DB_OPEN_READONLY))
            rc = phone_rekey(s, err);
        if (rc >= 0 && s->node_id[0] && !(db_flags & DB_OPEN_READONLY))
            rc = dedup_rekey(s, err);
        if (rc < 0)
            goto fail;
    }
    *out = s;
    return 0;
fail:
    store_close(s);
    return rc;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->txn_depth > 0)
        (void)exec_simple(s, STORE_Q_STORE_ROLLBACK, NULL);
    keyset_free(s->bulk);
    keyset_free(s->pending);
    sql_cache_close(&s->q);
    folder_free(s->folder);
    free(s->search_cols);
    db_close(s->db);
    free(s);
}

/* A new pseudonymization secret for egress (sync/core/egress.h): 32 bytes from
 * getrandom, stored as hex in node_meta. It never leaves the node. */
static int pseudonym_key_new(struct store *s, char hex[65], struct op_error *err)
{
    unsigned char k[32];
    for (size_t n = 0; n < sizeof k;) {
        ssize_t got = getrandom(k + n, sizeof k - n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return op_error_set(err, -errno, NULL, "cannot make the pseudonym key: no randomness");
        n += (size_t)got;
    }
    (void)codec_hex_encode(k, sizeof k, hex, 65);
    return meta_set(s, "pseudonym_key", hex, err);
}

int store_pseudonym_key(struct store *s, unsigned char out[32], struct op_error *err)
{
    if (!s->node_id[0])
        return op_error_set(err, -ENOENT, NULL,
                            "the node is not initialized; run 'outpost init' first");
    char hex[80];
    int rc = meta_get(s, "pseudonym_key", hex, sizeof hex, err);
    if (rc == 0) {
        /* A node initialized before the key existed gets one on first use;
         * re-read under the write lock in case another process made it. */
        rc = write_begin(s, err);
        if (rc < 0)
            return rc;
        rc = meta_get(s, "pseudonym_key", hex, sizeof hex, err);
        if (rc == 0)
            rc = pseudonym_key_new(s, hex, err);
        int rc2 = write_end(s, rc >= 0, err);
        if (rc >= 0 && rc2 < 0)
            rc = rc2;
    }
    if (rc < 0)
        return rc;
    unsigned char k[32];
    if (strnlen(hex, sizeof hex) != 64 ||
        codec_hex_decode(hex, 64, CODEC_HEX_LOWER, k, sizeof k) != (ssize_t)sizeof k)
        return op_error_set(err, -EPROTO, NULL, "the node's pseudonym key in node_meta is damaged");
    memcpy(out, k, sizeof k);
    return 0;
}

int store_init_node(struct store *s, const char *region, struct op_error *err)
{
    const struct region_info *r = region_find(region);
    if (!r) {
        char list[256];
        region_list(list, sizeof list);
        return op_error_set(err, -EINVAL, "region", "unknown region '%s' (known: %s)", region,
                            list);
    }
    if (s->node_id[0])
        return op_error_set(err, -EEXIST, NULL,
                            "this database is already initialized as node %s (region %s)",
                            s->node_id, s->region_code);
    char id[UUID_TEXT_LEN];
    int rc = uuid7_next_text(&s->ids, id);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot make a node id: no randomness");
    rc = write_begin(s, err);
    if (rc < 0)
        return rc;
    char created[HLC_ISO_LEN];
    hlc_format_iso(hlc_next(&s->clock), created);
    rc = meta_set(s, "node_id", id, err);
    if (rc == 0)
        rc = meta_set(s, "region", r->code, err);
    if (rc == 0)
        rc = meta_set(s, "created_at", created, err);
    if (rc == 0)
        rc = meta_set(s, "phone_keys", PHONE_KEYS, err);
    if (rc == 0)
        rc = meta_set(s, "dedup_keys", DEDUP_KEYS, err);
    char key[65];
    if (rc == 0)
        rc = pseudonym_key_new(s, key, err);
    int rc2 = write_end(s, rc == 0, err);
    if (rc < 0 || rc2 < 0)
        return rc < 0 ? rc : rc2;
    snprintf(s->node_id, sizeof s->node_id, "%s", id);
    snprintf(s->region_code, sizeof s->region_code, "%s", r->code);
    s->region = r;
    return 0;
}

const char *store_node_id(const struct store *s)
{
    return s->node_id[0] ? s->node_id : NULL;
}

const char *store_region(const struct store *s)
{
    return s->region_code[0] ? s->region_code : NULL;
}

sqlite3 *store_db(struct store *s)
{
    return s->db;
}

int store_in_transaction(struct store *s)
{
    return !sqlite3_get_autocommit(s->db);
}

int store_queries_bind(struct store *s, struct sql_cache *c, const struct sql_queries *q,
                       struct op_error *err)
{
    return sql_cache_init(c, s->db, q, err);
}

const struct residency_db *store_residency(struct store *s)
{
    return &s->res;
}

int store_policy_changed(struct store *s, const char *new_hash, const char *why, int *changed,
                         struct op_error *err)
{
    if (changed)
        *changed = 0;
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    int voided = 0;
    rc = residency_policy_changed_tx(&s->res, new_hash, why, &voided, err);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    rc = store_commit(s, err);
    if (rc < 0)
        return rc;
    if (voided && changed)
        *changed = 1;
    return voided ? residency_sweep(&s->res, err) : 0;
}

void store_set_actor(struct store *s, const char *actor, const char *address)
{
    snprintf(s->actor, sizeof s->actor, "%s", actor ? actor : "system");
    snprintf(s->address, sizeof s->address, "%s", address ? address : "");
}

void store_set_viewer(struct store *s, const char *user_id)
{
    snprintf(s->viewer, sizeof s->viewer, "%s", user_id ? user_id : "");
}

void store_set_policy(struct store *s, const struct policy *p)
{
    s->policy = p;
}

const struct policy *store_policy(const struct store *s)
{
    return s->policy;
}

/* Records owned by someone other than the viewer do not exist for them. */
static int hidden_from_viewer(const struct store *s, json_t *rec)
{
    if (!s->viewer[0])
        return 0;
    const char *owner = json_string_value(json_object_get(rec, "owner_id"));
    return owner && strcmp(owner, s->viewer) != 0;
}

/* ---- a field user's rules ------------------------------------------------
 *
 * Under a viewer (a field user) the store also keeps who owns what and
 * what stays at the node: a field user creates records owned by
 * themselves (the default) or by nobody (shared), never by someone else;
 * cannot change who owns an existing record, since taking a shared one
 * would hide it from everyone else and giving one away would plant it on
 * a colleague; and may set the restricted flag but not clear it, since
 * clearing lets a record a manager kept at the node leave it. Tightening
 * is harmless, loosening is a manager's call. */

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int viewer_create_rules(struct store *s, const struct entity_def *e, json_t *rec,
                               struct op_error *err)
{
    if (!s->viewer[0] || !entity_field(e, "owner_id"))
        return 0;
    json_t *owner = json_object_get(rec, "owner_id");
    if (!owner)
        return json_object_set_new(rec, "owner_id", json_string(s->viewer)) < 0
                   ? op_error_set(err, -ENOMEM, NULL, "out of memory")
                   : 0;
    if (json_is_null(owner) ||
        (json_is_string(owner) && !strcmp(json_string_value(owner), s->viewer)))
        return 0;
    return op_error_set(err, -EPERM, "owner_id",
                        "owner_id: field users can only create records owned by themselves or "
                        "by nobody (shared)");
}

/* `owner` and `restricted` are the record's values before the update,
 * `rec` the record merged with the changes. */
static int viewer_update_rules(const struct store *s, const char *owner, int restricted,
                               json_t *rec, struct op_error *err)
{
    if (!s->viewer[0])
        return 0;
    json_t *now = json_object_get(rec, "owner_id");
    if (!same_str(owner, json_is_string(now) ? json_string_value(now) : NULL))
        return op_error_set(err, -EPERM, "owner_id",
                            "owner_id: only a manager can change who owns a record");
    if (restricted && !json_is_true(json_object_get(rec, "restricted")))
        return op_error_set(err, -EPERM, "restricted",
                            "restricted: only a manager can clear the restricted flag");
    return 0;
}

void store_set_busy_timeout(struct store *s, unsigned ms)
{
    (void)sqlite3_busy_timeout(s->db, ms > INT_MAX ? INT_MAX : (int)ms);
    s->busy_ms = ms;
}

unsigned store_busy_timeout(const struct store *s)
{
    return s->busy_ms;
}

void store_set_clock(struct store *s, hlc_clock_fn now_ms, void *ctx)
{
    s->clock.now_ms = now_ms ? now_ms : hlc_wall_ms;
    s->clock.clock_ctx = ctx;
    s->ids.now_ms = s->clock.now_ms;
    s->ids.clock_ctx = ctx;
}

/* ---- rows <-> JSON ---------------------------------------------------- */

static json_t *column_json(sqlite3_stmt *st, int col, const struct field_def *f)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return f->type == FIELD_OBJECT ? json_object() : json_null();
    switch (f->type) {
    case FIELD_BOOL:
        return json_boolean(sqlite3_column_int(st, col));
    case FIELD_MONEY:
        return json_integer(sqlite3_column_int64(st, col));
    case FIELD_OBJECT: {
        json_t *o = json_loadb((const char *)sqlite3_column_text(st, col),
                               (size_t)sqlite3_column_bytes(st, col), 0, NULL);
        return o ? o : json_object();
    }
    default:
        return json_stringn((const char *)sqlite3_column_text(st, col),
                            (size_t)sqlite3_column_bytes(st, col));
    }
}

/* Builds the record object from a row of e's table (columns as in m). */
static json_t *row_json(sqlite3_stmt *st, const struct entity_def *e, const struct cols *m,
                        int include_internal)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char when[HLC_ISO_LEN];
    json_object_set_new(o, "id",
                        json_string((const char *)sqlite3_column_text(st, m->common[COL_ID])));
    json_object_set_new(o, "version",
                        json_integer(sqlite3_column_int64(st, m->common[COL_VERSION])));
    hlc_format_iso((hlc_stamp)sqlite3_column_int64(st, m->common[COL_CREATED]), when);
    json_object_set_new(o, "created_at", json_string(when));
    hlc_format_iso((hlc_stamp)sqlite3_column_int64(st, m->common[COL_UPDATED]), when);
    json_object_set_new(o, "updated_at", json_string(when));
    json_object_set_new(o, "deleted", json_boolean(sqlite3_column_int(st, m->common[COL_DELETED])));
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        if ((f->flags & FIELD_INTERNAL) && !include_internal)
            continue;
        json_object_set_new(o, f->name, column_json(st, m->field[i], f));
    }
    return o;
}

/* 1 when the contacts' phone keys are made as this build makes them
 * (node_meta "phone_keys"), 0 when not (yet), or -errno. Only a yes is
 * kept: the store's upgrade step re-keys a node once and for good. */
static int phone_keys_current(struct store *s, struct op_error *err)
{
    if (s->phone_keys_ok)
        return 1;
    char have[64];
    int rc = meta_get(s, "phone_keys", have, sizeof have, err);
    if (rc < 0)
        return rc;
    s->phone_keys_ok = rc > 0 && !strcmp(have, PHONE_KEYS);
    return s->phone_keys_ok;
}

/* phone_key, when not NULL, gets the row's phone_e164 (see
 * store_get_keyed). */
static int load_row(struct store *s, const struct entity_def *e, const char *id,
                    int include_internal, json_t **out, char *phone_key, struct op_error *err)
{
    unsigned q;
    sqlite3_stmt *st = table_stmt(s, STORE_Q_STORE_GET_USERS, e, &q, err);
    struct cols m;
    int rc = cols_map(st, e, &m, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sql_step(&s->q, q, st, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -ENOENT, "id", "no %s with id %s", e->name, id);
    json_t *o = row_json(st, e, &m, include_internal);
    if (phone_key) {
        int c = e == &entity_contact ? col_of(st, "phone_e164") : -1;
        const unsigned char *k = c >= 0 ? sqlite3_column_text(st, c) : NULL;
        snprintf(phone_key, PHONE_E164_MAX, "%s", k ? (const char *)k : "");
        if (k && (size_t)sqlite3_column_bytes(st, c) >= PHONE_E164_MAX)
            phone_key[0] = '\0'; /* not a key this build writes */
    }
    sqlite3_reset(st);
    if (!o)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (hidden_from_viewer(s, o)) {
        json_decref(o);
        return op_error_set(err, -ENOENT, "id", "no %s with id %s", e->name, id);
    }
    *out = o;
    return 0;
}

static int bind_value(sqlite3_stmt *st, int idx, const struct field_def *f, json_t *v)
{
    if (!v || json_is_null(v))
        return sqlite3_bind_null(st, idx);
    switch (f->type) {
    case FIELD_BOOL:
        return sqlite3_bind_int(st, idx, json_is_true(v));
    case FIELD_MONEY:
        return sqlite3_bind_int64(st, idx, json_integer_value(v));
    case FIELD_OBJECT: {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (!dump)
            return SQLITE_NOMEM;
        return sqlite3_bind_text(st, idx, dump, -1, free);
    }
    default:
        return sqlite3_bind_text(st, idx, json_string_value(v), (int)json_string_length(v),
                                 SQLITE_TRANSIENT);
    }
}

/* Binds the fields of `rec` to the parameters named after them (:name),
 * and for a contact the duplicate-detection keys (NULL when k is NULL).
 * `fixed` is the number of numbered parameters the query has besides; a
 * query whose parameters are not exactly those is refused, so the .sql
 * file and the descriptors cannot drift apart unnoticed. The parameter
 * numbers are looked up by name once per query and kept. */
struct dedup_keys;
static void bind_keys(sqlite3_stmt *st, const unsigned char idx[DEDUP_NKEYS],
                      const struct dedup_keys *k);
static const char *const key_params[DEDUP_NKEYS] = {":email_norm", ":phone_e164", ":name_key",
                                                    ":street_key", ":phone_tail"};

static int bind_map_fill(struct store *s, unsigned q, sqlite3_stmt *st, const struct entity_def *e,
                         int fixed, struct bind_map *m, struct op_error *err)
{
    char name[96];
    int want = fixed + (int)e->nfields + ((e->flags & ENTITY_DEDUP) ? DEDUP_NKEYS : 0);
    if (sqlite3_bind_parameter_count(st) != want)
        return op_error_set(err, -EINVAL, NULL, "%s has %d parameters, not %d",
                            sql_name(&s->q, q, name, sizeof name), sqlite3_bind_parameter_count(st),
                            want);
    if (e->nfields > FIELDS_MAX)
        return op_error_set(err, -E2BIG, NULL, "a %s has more than %d fields", e->name, FIELDS_MAX);
    for (size_t i = 0; i < e->nfields; i++) {
        char param[72];
        snprintf(param, sizeof param, ":%s", e->fields[i].name);
        int idx = sqlite3_bind_parameter_index(st, param);
        if (idx == 0)
            return op_error_set(err, -EINVAL, NULL, "%s has no parameter %s",
                                sql_name(&s->q, q, name, sizeof name), param);
        m->field[i] = (unsigned char)idx;
    }
    if (e->flags & ENTITY_DEDUP) {
        for (size_t i = 0; i < DEDUP_NKEYS; i++) {
            int idx = sqlite3_bind_parameter_index(st, key_params[i]);
            if (idx == 0)
                return op_error_set(err, -EINVAL, NULL,
                                    "%s has no parameter %s for the duplicate keys",
                                    sql_name(&s->q, q, name, sizeof name), key_params[i]);
            m->key[i] = (unsigned char)idx;
        }
    }
    m->ready = 1;
    return 0;
}

static int bind_record(struct store *s, unsigned q, sqlite3_stmt *st, const struct entity_def *e,
                       json_t *rec, const struct dedup_keys *k, int fixed, struct op_error *err)
{
    if (q >= STORE_Q_COUNT)
        return op_error_set(err, -EINVAL, NULL, "query %u is not the store's", q);
    struct bind_map *m = &s->binds[q];
    if (!m->ready) {
        int rc = bind_map_fill(s, q, st, e, fixed, m, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        int rc = bind_value(st, m->field[i], f, json_object_get(rec, f->name));
        if (rc != SQLITE_OK)
            return sql_fail(s->db, rc, "cannot bind value", err);
    }
    if (e->flags & ENTITY_DEDUP)
        bind_keys(st, m->key, k);
    return 0;
}

/* ---- validation --------------------------------------------------------- */

static int is_meta_key(const char *k)
{
    return !strcmp(k, "id") || !strcmp(k, "version") || !strcmp(k, "created_at") ||
           !strcmp(k, "updated_at") || !strcmp(k, "deleted");
}

static int unknown_field(const struct entity_def *e, const char *key, struct op_error *err)
{
    return op_error_set(err, -EINVAL, key, "%s: unknown field for a %s", key, e->name);
}

static const char *str_or_null(json_t *rec, const char *key)
{
    json_t *v = json_object_get(rec, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Rules across fields, checked on the merged record. */
static int check_record(struct store *s, const struct entity_def *e, json_t *rec,
                        struct op_error *err)
{
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        json_t *v = json_object_get(rec, f->name);
        if ((f->flags & FIELD_REQUIRED) && (!v || json_is_null(v)))
            return op_error_set(err, -EINVAL, f->name, "%s: required for a %s", f->name, e->name);
    }
    if (e == &entity_contact) {
        if (!str_or_null(rec, "given_name") && !str_or_null(rec, "family_name") &&
            !str_or_null(rec, "email") && !str_or_null(rec, "phone"))
            return op_error_set(err, -EINVAL, "family_name",
                                "a contact needs at least a name, an e-mail or a phone");
    }
    if (e == &entity_deal) {
        int has_amount = !json_is_null(json_object_get(rec, "amount_minor")) &&
                         json_object_get(rec, "amount_minor");
        int has_currency = str_or_null(rec, "currency") != NULL;
        if (has_amount && !has_currency)
            return op_error_set(err, -EINVAL, "currency",
                                "currency: required when amount_minor is set");
        if (!has_amount && has_currency)
            return op_error_set(err, -EINVAL, "amount_minor",
                                "amount_minor: required when currency is set");
    }
    (void)s;
    return 0;
}

static int check_refs(struct store *s, const struct entity_def *e, json_t *rec, json_t *only,
                      struct op_error *err)
{
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        if (f->type != FIELD_REF)
            continue;
        if (only && !json_object_get(only, f->name))
            continue;
        const char *id = str_or_null(rec, f->name);
        if (!id)
            continue;
        unsigned q;
        sqlite3_stmt *st = table_stmt(s, STORE_Q_STORE_LIVE_USERS, f->ref, &q, err);
        if (!st)
            return get_failed(err);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        int rc = sql_step(&s->q, q, st, err);
        if (rc < 0)
            return rc;
        sqlite3_reset(st);
        if (rc == 1 && s->viewer[0]) {
            /* a record the viewer cannot see is one that does not exist:
             * no answer may tell them apart */
            json_t *target = NULL;
            rc = load_row(s, f->ref, id, 0, &target, NULL, NULL);
            json_decref(target);
            if (rc < 0 && rc != -ENOENT)
                return op_error_set(err, rc, NULL, "cannot read %s %s", f->ref->name, id);
            rc = rc == 0;
        }
        if (rc == 0)
            return op_error_set(err, -EINVAL, f->name, "%s: no %s with id %s", f->name,
                                f->ref->name, id);
    }
    return 0;
}

/* Normalizes every field present in `in` into `rec`. Keys not in the
 * descriptor are refused; meta keys are refused unless allow_id. *custom
 * receives the normalized `custom` input before an update merges it (a new
 * reference; NULL when `in` has none or clears it): the object the caller
 * sent or the one its JSON text stands for, which is what check_policy
 * must see, since it is what gets stored. */
static int merge_fields(const struct entity_def *e, json_t *in, json_t *rec, int creating,
                        unsigned flags, json_t **custom, struct op_error *err)
{
    *custom = NULL;
    const char *key;
    json_t *value;
    json_object_foreach(in, key, value)
    {
        if (is_meta_key(key)) {
            if (creating && !strcmp(key, "id"))
                continue;
            return op_error_set(err, -EINVAL, key, "%s: set by the store, not by the caller", key);
        }
        const struct field_def *f = entity_field(e, key);
        if (!f || ((f->flags & FIELD_INTERNAL) && !(flags & STORE_ALLOW_INTERNAL)))
            return unknown_field(e, key, err);
        json_t *norm;
        int rc = entity_normalize_value(f, value, &norm, err);
        if (rc < 0)
            return rc;
        if (f->type == FIELD_OBJECT && !strcmp(key, "custom") && json_is_object(norm)) {
            json_decref(*custom);
            *custom = json_incref(norm);
        }
        if (f->type == FIELD_OBJECT && !strcmp(key, "custom") && !creating &&
            json_is_object(norm)) {
            /* RFC 7396 merge patch: null deletes a key. */
            json_t *cur = json_object_get(rec, key);
            json_t *merged = json_is_object(cur) ? json_deep_copy(cur) : json_object();
            const char *k2;
            json_t *v2;
            json_object_foreach(norm, k2, v2)
            {
                if (json_is_null(v2))
                    json_object_del(merged, k2);
                else
                    json_object_set(merged, k2, v2);
            }
            json_decref(norm);
            norm = merged;
        }
        if (json_is_null(norm) && f->type == FIELD_OBJECT) {
            json_decref(norm);
            norm = json_object();
        }
        if (json_is_null(norm) && f->type == FIELD_BOOL) {
            json_decref(norm);
            norm = json_false();
        }
        json_object_set_new(rec, key, norm);
    }
    return 0;
}

/* ---- region policy ------------------------------------------------------- */

static int forbidden_error(const struct store *s, const struct policy_forbidden *f,
                           const char *field, struct op_error *err)
{
    return op_error_set(err, -EINVAL, field, "%s: not collected in %s: %s (%s)", field,
                        s->policy->region, f->reason, f->basis);
}

/* What the region's policy says about the fields in `in` (the caller's
 * input) given the merged record `rec`: forbidden fields are refused when
 * given a value (clearing one is allowed, so old data can be removed), and
 * every custom key must be one the policy defines and pass its rule.
 * `custom` is the input's custom object as merge_fields normalized it, so
 * an object and its JSON text (a CSV `custom` column, an API client that
 * sends a string) are checked alike. Required custom fields must be
 * present on create and cannot be removed by an update (a null or empty
 * value, or clearing the whole object).
 *
 * This is the one place region rules meet input: store_create and
 * store_update, which every write path (API, CLI, CSV import, consent
 * ledger, accounts) goes through, call it before anything is written. */
static int check_policy(const struct store *s, const struct entity_def *e, json_t *in,
                        json_t *custom, json_t *rec, int creating, struct op_error *err)
{
    const struct policy *p = s->policy;
    if (!p)
        return 0;
    /* custom values are replaced by their normalized form below: work on
     * a copy, since the merged object may share the caller's input */
    json_t *merged = json_object_get(rec, "custom");
    if (json_is_object(merged)) {
        merged = json_deep_copy(merged);
        if (!merged)
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        json_object_set_new(rec, "custom", merged);
    }
    const char *key;
    json_t *value;
    json_object_foreach(in, key, value)
    {
        if (is_meta_key(key) || json_is_null(value) || !strcmp(key, "custom"))
            continue;
        const struct policy_forbidden *f = policy_forbidden_field(p, e, key);
        if (f && !(json_is_string(value) && !json_string_length(value)))
            return forbidden_error(s, f, key, err);
    }
    if (json_is_object(custom)) {
        json_object_foreach(custom, key, value)
        {
            char name[80];
            snprintf(name, sizeof name, "custom.%s", key);
            if (json_is_null(value)) {
                const struct policy_custom_field *cf = policy_custom_field(p, e, key);
                if (cf && cf->required)
                    return op_error_set(err, -EINVAL, name, "%s: required in %s (%s)", name,
                                        p->region, cf->basis);
                continue;
            }
            const struct policy_forbidden *f = policy_forbidden_field(p, e, name);
            if (f)
                return forbidden_error(s, f, name, err);
            const struct policy_custom_field *cf = policy_custom_field(p, e, key);
            if (!cf)
                return op_error_set(err, -EINVAL, name,
                                    "%s: not a custom field of a %s in %s (see the region "
                                    "policy %s)",
                                    name, e->name, p->region, p->path);
            json_t *norm = NULL;
            int rc = policy_custom_check(cf, value, &norm, err);
            if (rc < 0)
                return rc;
            if ((!norm || json_is_null(norm)) && cf->required) {
                /* an empty value is no value: it would remove the field */
                json_decref(norm);
                return op_error_set(err, -EINVAL, name, "%s: required in %s (%s)", name, p->region,
                                    cf->basis);
            }
            if (json_is_object(merged)) {
                if (!norm || json_is_null(norm))
                    json_object_del(merged, key);
                else
                    json_object_set(merged, key, norm);
            }
            json_decref(norm);
        }
    }
    /* an update that clears the whole object (null, "") removes them all */
    if (creating || (json_object_get(in, "custom") && !custom)) {
        json_t *have = json_object_get(rec, "custom");
        for (size_t i = 0; i < p->ncustom; i++) {
            const struct policy_custom_field *cf = &p->custom[i];
            if (cf->entity != e || !cf->required)
                continue;
            json_t *v = json_object_get(have, cf->name);
            if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v))) {
                char name[80];
                snprintf(name, sizeof name, "custom.%s", cf->name);
                return op_error_set(err, -EINVAL, name, "%s: required in %s (%s)", name, p->region,
                                    cf->basis);
            }
        }
    }
    return 0;
}

/* ---- duplicate detection ------------------------------------------------ */

struct dedup_keys {
    char email[256];
    char phone[PHONE_E164_MAX];
    char tail[8];          /* the phone's last 7 digits, "" for none */
    enum phone_verdict pv; /* the phone's verdict, when there is a phone */
    int has_phone;
    char *name;     /* malloc'd: the name's skeleton, '|', the folded locality */
    char *street;   /* malloc'd: the folded street, '|', the folded locality */
    size_t namelen; /* the skeleton's length in name */
};

/* The folded text of a field into *out (malloc'd; NULL when empty). */
static int fold_field(struct store *s, const char *text, char **out, struct op_error *err)
{
    *out = NULL;
    if (!text)
        return 0;
    const char *folded;
    int n = folder_fold(s->folder, text, strlen(text), &folded);
    if (n < 0)
        return op_error_set(err, n, NULL, "cannot fold text");
    if (n > 0 && !(*out = strdup(folded)))
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    return 0;
}

static char *join_key(const char *a, const char *b)
{
    size_t need = strlen(a) + strlen(b) + 2;
    char *k = malloc(need);
    if (k)
        snprintf(k, need, "%s|%s", a, b);
    return k;
}

static void free_keys(struct dedup_keys *k)
{
    free(k->name);
    free(k->street);
    k->name = k->street = NULL;
}

static int make_keys(struct store *s, json_t *rec, struct dedup_keys *k, struct op_error *err)
{
    memset(k, 0, sizeof *k);
    const char *email = str_or_null(rec, "email");
    if (email) {
        snprintf(k->email, sizeof k->email, "%s", email);
        for (char *p = k->email; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    const char *phone = str_or_null(rec, "phone");
    k->has_phone = phone != NULL;
    if (phone && (k->pv = phone_parse(phone, s->region, k->phone)) != PHONE_VALID)
        k->phone[0] = '\0';
    if (phone)
        dedup_phone_tail(phone, k->tail);
    const char *given = str_or_null(rec, "given_name");
    const char *family = str_or_null(rec, "family_name");
    char *loc = NULL, *name = NULL, *street = NULL;
    int rc = fold_field(s, str_or_null(rec, "locality"), &loc, err);
    if (rc == 0 && (given || family)) {
        char full[512];
        snprintf(full, sizeof full, "%s %s", given ? given : "", family ? family : "");
        rc = fold_field(s, full, &name, err);
    }
    if (rc == 0)
        rc = fold_field(s, str_or_null(rec, "street"), &street, err);
    if (rc == 0 && name) {
        char skel[DEDUP_SKELETON_MAX];
        k->namelen = dedup_skeleton(name, skel, sizeof skel);
        if (k->namelen && !(k->name = join_key(skel, loc ? loc : "")))
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    if (rc == 0 && street) {
        char even[DEDUP_SKELETON_MAX];
        if (dedup_street(street, even, sizeof even) &&
            !(k->street = join_key(even, loc ? loc : "")))
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    free(loc);
    free(name);
    free(street);
    if (rc < 0)
        free_keys(k);
    return rc;
}

static int find_dup(struct store *s, unsigned q, const char *key, const char *self,
                    char found[UUID_TEXT_LEN], struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&s->q, q, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, self ? self : "", -1, SQLITE_STATIC);
    rc = sql_step(&s->q, q, st, err);
    if (rc == 1) {
        snprintf(found, UUID_TEXT_LEN, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
    }
    return rc;
}

/* The first contact sharing `key` (a street or a phone tail) whose name
 * is probably the same as the skeleton `name` (namelen bytes of it). */
static int find_similar(struct store *s, unsigned q, const char *key, const char *name,
                        size_t namelen, const char *self, char found[UUID_TEXT_LEN],
                        struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&s->q, q, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, self ? self : "", -1, SQLITE_STATIC);
    char mine[DEDUP_SKELETON_MAX], theirs[DEDUP_SKELETON_MAX];
    snprintf(mine, sizeof mine, "%.*s", (int)namelen, name);
    while ((rc = sql_step(&s->q, q, st, err)) == 1) {
        const char *nk = (const char *)sqlite3_column_text(st, 1);
        const char *bar = nk ? strchr(nk, '|') : NULL;
        if (!bar || (size_t)(bar - nk) >= sizeof theirs)
            continue;
        snprintf(theirs, sizeof theirs, "%.*s", (int)(bar - nk), nk);
        if (dedup_names_match(mine, theirs)) {
            snprintf(found, UUID_TEXT_LEN, "%s", (const char *)sqlite3_column_text(st, 0));
            sqlite3_reset(st);
            return 1;
        }
    }
    return rc;
}

/* find_dup and find_similar in the bulk transaction's key set: the same
 * answers, since the set holds every live contact, in the order of the
 * indexes (creation order within a key; LIMIT 200 for similar names). */
static int mem_dup_in(const struct keyset *ks, enum keyset_kind kind, const char *key,
                      const char *name, size_t namelen, int similar, char found[UUID_TEXT_LEN])
{
    const struct keyset_entry *x = keyset_find(ks, kind, key);
    if (!similar) {
        if (x)
            snprintf(found, UUID_TEXT_LEN, "%s", x->id);
        return x != NULL;
    }
    char mine[DEDUP_SKELETON_MAX], theirs[DEDUP_SKELETON_MAX];
    snprintf(mine, sizeof mine, "%.*s", (int)namelen, name);
    for (int n = 0; x && n < 200; x = x->next[kind], n++) {
        const char *bar = x->name_key ? strchr(x->name_key, '|') : NULL;
        if (!bar || (size_t)(bar - x->name_key) >= sizeof theirs)
            continue;
        snprintf(theirs, sizeof theirs, "%.*s", (int)(bar - x->name_key), x->name_key);
        if (dedup_names_match(mine, theirs)) {
            snprintf(found, UUID_TEXT_LEN, "%s", x->id);
            return 1;
        }
    }
    return 0;
}

static int mem_dup(struct store *s, enum keyset_kind kind, const char *key, const char *name,
                   size_t namelen, int similar, char found[UUID_TEXT_LEN])
{
    return mem_dup_in(s->bulk, kind, key, name, namelen, similar, found);
}

static int dup_error(const char *found, const char *field, const char *why, struct op_error *err)
{
    op_error_set(err, STORE_EDUP, field,
                 "probable duplicate of contact %s (%s); pass the skip-duplicate-check option "
                 "to create it anyway",
                 found, why);
    if (err)
        snprintf(err->ref, sizeof err->ref, "%s", found);
    return STORE_EDUP;
}

/* The duplicate belongs to someone else and the viewer may not see it:
 * say that it exists (creating it again would split the person in two)
 * but not which record it is. */
static int dup_hidden_error(const char *field, const char *what, struct op_error *err)
{
    return op_error_set(err, STORE_EDUP, field,
                        "a contact with %s exists and is not yours; ask a manager, or pass the "
                        "skip-duplicate-check option to create it anyway",
                        what);
}

/* Whether the viewer may see contact `id`: 1, 0, or a negative errno. */
static int viewer_sees(struct store *s, const char *id, struct op_error *err)
{
    if (!s->viewer[0])
        return 1;
    json_t *other = NULL;
    int rc = load_row(s, &entity_contact, id, 0, &other, NULL, NULL);
    json_decref(other);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot read contact %s", id);
    return 1;
}

/* The duplicate rule (docs/DATA_MODEL.md, "Duplicate detection"): a live
 * contact other than `self` with the same e-mail, the same phone key, or
 * a similar name and the same street or a phone ending alike is a
 * probable duplicate (STORE_EDUP). The same name in the same locality
 * alone is not: it leaves a warning (store_warning). `staging`: for
 * store_stage_create, which looks at the staged contacts too and answers
 * STORE_ESTAGE as soon as a contact matches (the create is then written
 * the ordinary way, with every row in the table, so that the duplicate
 * choice, the viewer check and the messages are the ordinary ones); the
 * same name in the same locality gives its warning there too, unless a
 * viewer is set (whether they see the other contact is read from it). */
static int check_dup(struct store *s, const struct dedup_keys *k, const char *self, int staging,
                     struct op_error *err)
{
    const struct {
        unsigned q;
        enum keyset_kind kind;
        const char *key;
        int similar; /* the name must be similar too */
        const char *field;
        const char *why;
        const char *what;
    } checks[] = {
        {STORE_Q_STORE_DUP_EMAIL, KEYSET_EMAIL, k->email, 0, "email", "same e-mail address",
         "this e-mail address"},
        {STORE_Q_STORE_DUP_PHONE, KEYSET_PHONE, k->phone, 0, "phone", "same phone number",
         "this phone number"},
        {STORE_Q_STORE_DUP_STREET, KEYSET_STREET, k->street, 1, "street",
         "similar name at the same street", "a similar name at this street"},
        {STORE_Q_STORE_DUP_TAIL, KEYSET_TAIL, k->tail, 1, "phone",
         "similar name and a phone number ending in the same seven digits",
         "a similar name and this phone number"},
    };
    s->warning[0] = s->warning_ref[0] = '\0';
    char found[UUID_TEXT_LEN];
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!checks[i].key || !*checks[i].key || (checks[i].similar && !k->name))
            continue;
        int rc;
        if (s->bulk && !self)
            rc = mem_dup(s, checks[i].kind, checks[i].key, k->name, k->namelen, checks[i].similar,
                         found);
        else if (checks[i].similar)
            rc = find_similar(s, checks[i].q, checks[i].key, k->name, k->namelen, self, found, err);
        else
            rc = find_dup(s, checks[i].q, checks[i].key, self, found, err);
        if (rc == 0 && staging && s->pending)
            rc = mem_dup_in(s->pending, checks[i].kind, checks[i].key, k->name, k->namelen,
                            checks[i].similar, found);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        if (staging)
            return STORE_ESTAGE;
        rc = viewer_sees(s, found, err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return dup_hidden_error(checks[i].field, checks[i].what, err);
        return dup_error(found, checks[i].field, checks[i].why, err);
    }
    if (k->name) {
        int rc = s->bulk && !self ? mem_dup(s, KEYSET_NAME, k->name, NULL, 0, 0, found)
                                  : find_dup(s, STORE_Q_STORE_DUP_NAME, k->name, self, found, err);
        if (rc == 0 && staging && s->pending)
            rc = mem_dup_in(s->pending, KEYSET_NAME, k->name, NULL, 0, 0, found);
        if (rc < 0)
            return rc;
        /* the warning names the other contact, staged or not; only a
         * viewer's check must read it from the table */
        if (rc > 0 && staging && s->viewer[0])
            return STORE_ESTAGE;
        int seen = rc > 0 ? viewer_sees(s, found, err) : 0;
        if (seen < 0)
            return seen;
        if (rc > 0 && seen) {
            snprintf(s->warning, sizeof s->warning,
                     "contact %s has the same name in the same locality: check it is not the "
                     "same person",
                     found);
            snprintf(s->warning_ref, sizeof s->warning_ref, "%s", found);
        } else if (rc > 0) {
            snprintf(s->warning, sizeof s->warning,
                     "a contact with the same name in the same locality exists and is not "
                     "yours");
        }
    }
    if (!s->warning[0] && k->has_phone && k->pv != PHONE_VALID) {
        char why[120];
        snprintf(s->warning, sizeof s->warning,
                 "phone: %s; kept as typed, not used to find duplicates",
                 phone_reason(k->pv, s->region, why, sizeof why));
    }
    return 0;
}

const char *store_warning(const struct store *s, const char **ref)
{
    if (ref)
        *ref = s->warning_ref[0] ? s->warning_ref : NULL;
    return s->warning[0] ? s->warning : NULL;
}

/* Binds the keys (NULL: none) to their parameters, numbered in idx. */
static void bind_keys(sqlite3_stmt *st, const unsigned char idx[DEDUP_NKEYS],
                      const struct dedup_keys *k)
{
    const char *values[DEDUP_NKEYS] = {k && k->email[0] ? k->email : NULL,
                                       k && k->phone[0] ? k->phone : NULL, k ? k->name : NULL,
                                       k ? k->street : NULL, k && k->tail[0] ? k->tail : NULL};
    for (size_t i = 0; i < DEDUP_NKEYS; i++) {
        if (values[i])
            sqlite3_bind_text(st, idx[i], values[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, idx[i]);
    }
}

/* ---- audit ------------------------------------------------------------- */

static int audit(struct store *s, hlc_stamp at, const char *action, const struct entity_def *e,
                 const char *id, int64_t before, int64_t after, const char *detail,
                 struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(&s->q, STORE_Q_STORE_AUDIT, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)at);
    sqlite3_bind_text(st, 2, s->actor, -1, SQLITE_STATIC);
    if (s->address[0])
        sqlite3_bind_text(st, 3, s->address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, id, -1, SQLITE_STATIC);
    if (before > 0)
        sqlite3_bind_int64(st, 7, before);
    if (after > 0)
        sqlite3_bind_int64(st, 8, after);
    if (detail)
        sqlite3_bind_text(st, 9, detail, -1, SQLITE_STATIC);
    rc = sql_run(&s->q, STORE_Q_STORE_AUDIT, st, err);
    return rc < 0 ? rc : 0;
}

/* ---- phone keys ------------------------------------------------------ */

#define REKEY_PAGE 256

struct rekey_row {
    char id[UUID_TEXT_LEN];
    char key[PHONE_E164_MAX]; /* "" when the phone is no valid number */
    int resend;
    int64_t version;
};

/* What egress hashes for this phone now (see egress.c normalize): its
 * key, or the trimmed text as typed. */
static void pseudonym_text(const char *phone, const char *key, char *buf, size_t cap)
{
    if (*key) {
        snprintf(buf, cap, "%s", key);
        return;
    }
    while (*phone && strchr(" \t\n\r\v\f", *phone))
        phone++;
    size_t n = strlen(phone);
    while (n && strchr(" \t\n\r\v\f", phone[n - 1]))
        n--;
    snprintf(buf, cap, "%.*s", (int)n, phone);
}

/* Re-keys the live records of one entity a page at a time: the page is
 * read whole, then written, so no write disturbs the read. */
static int rekey_entity(struct store *s, const struct entity_def *e, unsigned qpage, unsigned qset,
                        struct rekey_row *rows, struct op_error *err)
{
    char last[UUID_TEXT_LEN] = "";
    for (;;) {
        sqlite3_stmt *st;
        int rc = sql_get_st(&s->q, qpage, &st, err);
        if (rc < 0)
            return rc;
        sqlite3_bind_text(st, 1, last, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, REKEY_PAGE);
        size_t n = 0, seen = 0;
        while ((rc = sql_step(&s->q, qpage, st, err)) == 1) {
            const char *id = (const char *)sqlite3_column_text(st, 0);
            const char *phone = (const char *)sqlite3_column_text(st, 1);
            const char *old_key = (const char *)sqlite3_column_text(st, 2);
            struct rekey_row *r = &rows[n];
            seen++;
            snprintf(last, sizeof last, "%s", id);
            snprintf(r->id, sizeof r->id, "%s", id);
            r->version = sqlite3_column_int64(st, 3);
            if (phone_to_e164(phone, s->region, r->key) < 0)
                r->key[0] = '\0';
            char was[PHONE_E164_MAX + 256], now[PHONE_E164_MAX + 256];
            phone_legacy_key(phone, s->region, was, sizeof was);
            pseudonym_text(phone, r->key, now, sizeof now);
            r->resend = strcmp(was, now) != 0;
            int key_changed = e == &entity_contact && strcmp(old_key ? old_key : "", r->key);
            if (r->resend || key_changed)
                n++;
        }
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            rc = sql_get_st(&s->q, qset, &st, err);
            if (rc < 0)
                return rc;
            hlc_stamp now = hlc_next(&s->clock);
            sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
            sqlite3_bind_text(st, 2, rows[i].id, -1, SQLITE_STATIC);
            if (e == &entity_contact) {
                if (rows[i].key[0])
                    sqlite3_bind_text(st, 3, rows[i].key, -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(st, 3);
                sqlite3_bind_int(st, 4, rows[i].resend);
            } else if (!rows[i].resend) {
                sqlite3_reset(st);
                continue;
            }
            rc = sql_run(&s->q, qset, st, err);
            if (rc < 0)
                return rc;
            s->write_dirty = 1;
            if (rows[i].resend) {
                rc = audit(s, now, "rekey", e, rows[i].id, rows[i].version, rows[i].version + 1,
                           "phone pseudonym changed with the phone keys; sent to HQ again", err);
                if (rc < 0)
                    return rc;
            }
        }
        if (seen < REKEY_PAGE)
            return 0;
    }
}

/* The upgrade step for phone keys (docs/DATA_MODEL.md, "Phone numbers"):
 * a node whose records were keyed before libphonenumber gets its contacts'
 * duplicate keys recomputed, and every contact and organization whose
 * phone pseudonym changed a new version, which queues it for HQ, all in
 * one transaction with the marker that says it is done. */
static int phone_rekey(struct store *s, struct op_error *err)
{
    char have[64];
    int rc = meta_get(s, "phone_keys", have, sizeof have, err);
    if (rc < 0 || (rc > 0 && !strcmp(have, PHONE_KEYS)))
        return rc < 0 ? rc : 0;
    struct rekey_row *rows = malloc(REKEY_PAGE * sizeof *rows);
    if (!rows)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    rc = write_begin(s, err);
    if (rc < 0) {
        free(rows);
        return rc;
    }
    /* another process may have done it while we waited for the lock */
    rc = meta_get(s, "phone_keys", have, sizeof have, err);
    if (rc == 0 || (rc > 0 && strcmp(have, PHONE_KEYS))) {
        rc = rekey_entity(s, &entity_contact, STORE_Q_STORE_REKEY_PAGE_CONTACTS,
                          STORE_Q_STORE_REKEY_CONTACT, rows, err);
        if (rc >= 0)
            rc = rekey_entity(s, &entity_organization, STORE_Q_STORE_REKEY_PAGE_ORGANIZATIONS,
                              STORE_Q_STORE_REKEY_ORGANIZATION, rows, err);
        if (rc >= 0)
            rc = meta_set(s, "phone_keys", PHONE_KEYS, err);
    }
    free(rows);
    int rc2 = write_end(s, rc >= 0, err);
    if (rc < 0)
        return rc;
    return rc2 < 0 ? rc2 : 0;
}

/* Rewrites the duplicate keys of the live contacts of a node whose keys
 * were made another way (node_meta dedup_keys), a page at a time, in one
 * transaction with the marker. */
static int dedup_rekey(struct store *s, struct op_error *err)
{
    char have[64];
    int rc = meta_get(s, "dedup_keys", have, sizeof have, err);
    if (rc < 0 || (rc > 0 && !strcmp(have, DEDUP_KEYS)))
        return rc < 0 ? rc : 0;
    struct page_row {
        char id[UUID_TEXT_LEN];
        struct dedup_keys k;
    } *rows = calloc(REKEY_PAGE, sizeof *rows);
    if (!rows)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    rc = write_begin(s, err);
    if (rc < 0) {
        free(rows);
        return rc;
    }
    rc = meta_get(s, "dedup_keys", have, sizeof have, err);
    int todo = rc == 0 || (rc > 0 && strcmp(have, DEDUP_KEYS));
    char last[UUID_TEXT_LEN] = "";
    static const char *const cols[] = {"given_name", "family_name", "street", "locality", "phone"};
    while (rc >= 0 && todo) {
        sqlite3_stmt *st;
        rc = sql_get_st(&s->q, STORE_Q_STORE_DEDUP_PAGE, &st, err);
        if (rc < 0)
            break;
        sqlite3_bind_text(st, 1, last, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, REKEY_PAGE);
        size_t n = 0;
        while (n < REKEY_PAGE && (rc = sql_step(&s->q, STORE_Q_STORE_DEDUP_PAGE, st, err)) == 1) {
            snprintf(rows[n].id, sizeof rows[n].id, "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(last, sizeof last, "%s", rows[n].id);
            json_t *rec = json_object();
            for (int c = 0; rec && c < 5; c++) {
                const char *v = (const char *)sqlite3_column_text(st, c + 1);
                if (v)
                    json_object_set_new(rec, cols[c], json_string(v));
            }
            rc = rec ? make_keys(s, rec, &rows[n].k, err)
                     : op_error_set(err, -ENOMEM, NULL, "out of memory");
            json_decref(rec);
            if (rc < 0)
                break;
            n++;
        }
        if (rc > 0)
            sqlite3_reset(st);
        for (size_t i = 0; i < n; i++) {
            if (rc >= 0)
                rc = sql_get_st(&s->q, STORE_Q_STORE_DEDUP_SET, &st, err);
            if (rc >= 0) {
                const struct dedup_keys *k = &rows[i].k;
                sqlite3_bind_text(st, 1, rows[i].id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, k->name, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, k->street, -1, SQLITE_STATIC);
                if (k->tail[0])
                    sqlite3_bind_text(st, 4, k->tail, -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(st, 4);
                rc = sql_run(&s->q, STORE_Q_STORE_DEDUP_SET, st, err);
                s->write_dirty = 1;
            }
            free_keys(&rows[i].k);
        }
        if (rc >= 0 && n < REKEY_PAGE)
            break;
    }
    if (rc >= 0 && todo)
        rc = meta_set(s, "dedup_keys", DEDUP_KEYS, err);
    free(rows);
    int rc2 = write_end(s, rc >= 0, err);
    if (rc < 0)
        return rc;
    return rc2 < 0 ? rc2 : 0;
}

/* ---- writes -------------------------------------------------------------- */

static int constraint_error(struct store *s, const struct entity_def *e, int rc, const char *id,
                            struct op_error *err)
{
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return op_error_set(err, -EEXIST, "id", "id: a %s with id %s already exists", e->name, id);
    if (rc == SQLITE_CONSTRAINT_UNIQUE && e == &entity_user)
        return op_error_set(err, -EEXIST, "name", "name: a user with this name already exists");
    if (rc == SQLITE_CONSTRAINT_UNIQUE && e == &entity_contact_organization)
        return op_error_set(err, -EEXIST, "organization_id",
                            "organization_id: the contact is already linked to this organization");
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return op_error_set(err, -EINVAL, NULL, "%s refused by the database: %s", e->name,
                            sqlite3_errmsg(s->db));
    return sql_fail(s->db, rc, "cannot write record", err);
}

/* Ends a write begun with write_begin: on success reads the stored record
 * back for the caller (if asked) inside the same transaction, then commits;
 * on failure rolls back. Returns the first error. */
static int finish_write(struct store *s, const struct entity_def *e, const char *id, int rc,
                        json_t **out, struct op_error *err)
{
    json_t *result = NULL;
    if (rc == 0 && out)
        rc = load_row(s, e, id, 0, &result, NULL, err);
    int rc2 = write_end(s, rc == 0, err);
    if (rc == 0 && rc2 < 0)
        rc = rc2;
    if (rc == 0 && out)
        *out = result;
    else
        json_decref(result);
    return rc;
}

/* `pre`: the record's duplicate keys made beforehand (store_prepare_create),
 * or NULL to make them here. */
static int do_create(struct store *s, const struct entity_def *e, json_t *rec, const char *id,
                     unsigned flags, const struct dedup_keys *pre, struct op_error *err)
{
    int rc = check_refs(s, e, rec, NULL, err);
    if (rc < 0)
        return rc;
    struct dedup_keys own = {0};
    const struct dedup_keys *kp = pre ? pre : &own;
    s->warning[0] = s->warning_ref[0] = '\0';
    if (e->flags & ENTITY_DEDUP) {
        rc = pre ? 0 : make_keys(s, rec, &own, err);
        if (rc == 0 && !(flags & STORE_SKIP_DUP_CHECK))
            rc = check_dup(s, kp, NULL, 0, err);
        if (rc < 0)
            goto out;
    }

    unsigned q;
    sqlite3_stmt *st = table_stmt(s, STORE_Q_STORE_INSERT_USERS, e, &q, err);
    if (!st) {
        rc = get_failed(err);
        goto out;
    }
    hlc_stamp now = hlc_next(&s->clock);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = bind_record(s, q, st, e, rec, kp, 2, err);
    if (rc < 0)
        goto out;
    rc = sql_run(&s->q, q, st, err);
    if (rc < 0) {
        /* the connection still holds the step's error after the reset */
        rc = constraint_error(s, e, sqlite3_extended_errcode(s->db), id, err);
        goto out;
    }
    s->write_dirty = 1;
    rc = audit(s, now, "create", e, id, 0, 1, NULL, err);
    if (rc == 0 && s->bulk && (e->flags & ENTITY_DEDUP)) {
        const char *kv[KEYSET_NKINDS] = {kp->email, kp->phone, kp->street, kp->tail, kp->name};
        /* out of memory, or past the bound: SQLite has every key too */
        if (keyset_count(s->bulk) >= BULK_KEYS_MAX || keyset_add(s->bulk, id, kv) < 0)
            bulk_off(s);
    }
out:
    free_keys(&own);
    return rc;
}

/* A create checked and keyed before it meets the database: see
 * store_prepare_create. `keyed`: keys holds the duplicate keys. */
struct store_prepared {
    const struct entity_def *e;
    json_t *rec;            /* the merged record with its defaults */
    char id[UUID_TEXT_LEN]; /* the caller's id, lower-cased; "" for one made at the write */
    int keyed;
    struct dedup_keys keys;
};

/* What a create does before it touches the database: merges and
 * normalizes the fields, applies the viewer and region rules and the
 * rules across fields, checks a given id and, when `with_keys`, makes the
 * duplicate keys. Reads only s's settings (viewer, policy, region) and
 * uses s->folder: no SQLite connection. */
static int prepare_create(struct store *s, const struct entity_def *e, json_t *fields,
                          unsigned flags, int with_keys, struct store_prepared *p,
                          struct op_error *err)
{
    memset(p, 0, sizeof *p);
    p->e = e;
    if (!json_is_object(fields))
        return op_error_set(err, -EINVAL, NULL, "a %s must be a JSON object", e->name);
    json_t *rec = json_object();
    if (!rec)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    p->rec = rec;
    json_t *custom = NULL;
    int rc = merge_fields(e, fields, rec, 1, flags, &custom, err);
    if (rc == 0)
        rc = viewer_create_rules(s, e, rec, err);
    if (rc == 0)
        rc = check_policy(s, e, fields, custom, rec, 1, err);
    json_decref(custom);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        json_t *v = json_object_get(rec, f->name);
        if ((!v || json_is_null(v)) && f->dflt)
            json_object_set_new(rec, f->name, json_string(f->dflt));
        else if (!v && f->type == FIELD_OBJECT)
            json_object_set_new(rec, f->name, json_object());
        else if (!v && f->type == FIELD_BOOL)
            json_object_set_new(rec, f->name, json_false());
    }
    rc = check_record(s, e, rec, err);
    if (rc < 0)
        return rc;

    json_t *given = json_object_get(fields, "id");
    if (given && !json_is_null(given)) {
        if (!json_is_string(given) || !uuid_is_v7_text(json_string_value(given)))
            return op_error_set(err, -EINVAL, "id", "id: not a UUIDv7");
        snprintf(p->id, sizeof p->id, "%s", json_string_value(given));
        for (char *c = p->id; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    if (with_keys && (e->flags & ENTITY_DEDUP)) {
        rc = make_keys(s, rec, &p->keys, err);
        if (rc < 0)
            return rc;
        p->keyed = 1;
    }
    return 0;
}

static void prepared_done(struct store_prepared *p)
{
    json_decref(p->rec);
    p->rec = NULL;
    if (p->keyed)
        free_keys(&p->keys);
    p->keyed = 0;
}

/* The database half of a create: the id (when the caller gave none), the
 * reference and duplicate checks, the row and its audit entry. */
static int write_prepared(struct store *s, const struct store_prepared *p, unsigned flags,
                          json_t **out, struct op_error *err)
{
    char id[UUID_TEXT_LEN];
    if (p->id[0]) {
        memcpy(id, p->id, sizeof id);
    } else {
        int rc = uuid7_next_text(&s->ids, id);
        if (rc < 0)
            return op_error_set(err, rc, NULL, "cannot make an id: no randomness");
    }
    int rc = write_begin(s, err);
    if (rc < 0)
        return rc;
    rc = do_create(s, p->e, p->rec, id, flags, p->keyed ? &p->keys : NULL, err);
    return finish_write(s, p->e, id, rc, out, err);
}

int store_create(struct store *s, const struct entity_def *e, json_t *fields, unsigned flags,
                 json_t **out, struct op_error *err)
{
    struct store_prepared p;
    int rc = prepare_create(s, e, fields, flags, 0, &p, err);
    if (rc == 0)
        rc = write_prepared(s, &p, flags, out, err);
    prepared_done(&p);
    return rc;
}

struct store_preparer {
    struct store view; /* the settings a create reads; no connection */
};

int store_preparer_new(struct store *s, struct store_preparer **out)
{
    struct store_preparer *pr = calloc(1, sizeof *pr);
    if (!pr)
        return -ENOMEM;
    pr->view.region = s->region;
    memcpy(pr->view.region_code, s->region_code, sizeof pr->view.region_code);
    memcpy(pr->view.viewer, s->viewer, sizeof pr->view.viewer);
    pr->view.policy = s->policy;
    int rc = folder_new(s->db, &pr->view.folder);
    if (rc < 0) {
        free(pr);
        return rc;
    }
    *out = pr;
    return 0;
}

void store_preparer_free(struct store_preparer *pr)
{
    if (!pr)
        return;
    folder_free(pr->view.folder);
    free(pr);
}

int store_prepare_create(struct store_preparer *pr, const struct entity_def *e, json_t *fields,
                         unsigned flags, struct store_prepared **out, struct op_error *err)
{
    *out = NULL;
    struct store_prepared *p = malloc(sizeof *p);
    if (!p)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = prepare_create(&pr->view, e, fields, flags, 1, p, err);
    if (rc < 0) {
        prepared_done(p);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int store_create_prepared(struct store *s, const struct store_prepared *p, unsigned flags,
                          struct op_error *err)
{
    return write_prepared(s, p, flags, NULL, err);
}

/* ---- staged creates (bulk import) ---------------------------------- */

int store_stage_create(struct store *s, const struct store_prepared *p, unsigned flags,
                       struct op_error *err)
{
    const struct entity_def *e = p->e;
    /* only contacts (the table with the search index) in a bulk
     * transaction; anything unusual is written the ordinary way */
    if (s->txn_depth != 1 || s->txn_poisoned || e != &entity_contact || !p->keyed ||
        s->stage_nokeys || (s->bulk && keyset_count(s->bulk) >= BULK_KEYS_MAX))
        return STORE_ESTAGE;
    if (!s->bulk && !s->pending && !(s->pending = keyset_new()))
        return STORE_ESTAGE;
    if (!s->stage_ready) {
        int rc = exec_simple(s, STORE_Q_STORE_STAGE_TABLE, err);
        if (rc < 0)
            return rc;
        s->stage_ready = 1;
    }
    /* a failed check is answered again, with its message, by the
     * ordinary write */
    if (check_refs(s, e, p->rec, NULL, NULL) < 0)
        return STORE_ESTAGE;
    s->warning[0] = s->warning_ref[0] = '\0';
    if (!(flags & STORE_SKIP_DUP_CHECK)) {
        int rc = check_dup(s, &p->keys, NULL, 1, NULL);
        if (rc < 0) {
            s->warning[0] = s->warning_ref[0] = '\0';
            return STORE_ESTAGE;
        }
    }
    char id[UUID_TEXT_LEN];
    if (p->id[0]) {
        memcpy(id, p->id, sizeof id);
    } else {
        int rc = uuid7_next_text(&s->ids, id);
        if (rc < 0)
            return op_error_set(err, rc, NULL, "cannot make an id: no randomness");
    }
    sqlite3_stmt *st;
    int rc = sql_get_st(&s->q, STORE_Q_STORE_STAGE_INSERT, &st, err);
    if (rc < 0)
        return rc;
    hlc_stamp now = hlc_next(&s->clock);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = bind_record(s, STORE_Q_STORE_STAGE_INSERT, st, e, p->rec, &p->keys, 2, err);
    if (rc < 0) {
        sqlite3_reset(st);
        return rc;
    }
    rc = sql_run(&s->q, STORE_Q_STORE_STAGE_INSERT, st, err);
    if (rc < 0)
        return rc;
    s->nstaged++;
    const struct dedup_keys *kp = &p->keys;
    const char *kv[KEYSET_NKINDS] = {kp->email, kp->phone, kp->street, kp->tail, kp->name};
    /* without the keys in memory the next create cannot be checked
     * against this one: it waits for the batch to be written */
    if (keyset_add(s->bulk ? s->bulk : s->pending, id, kv) < 0)
        s->stage_nokeys = 1;
    return 0;
}

unsigned store_staged(const struct store *s)
{
    return s->nstaged;
}

int store_flush_staged(struct store *s, int *replay, struct op_error *err)
{
    *replay = 0;
    if (!s->nstaged)
        return 0;
    int nokeys = s->stage_nokeys;
    int rc = sql_exec(&s->q, STORE_Q_STORE_STAGE_MOVE, err);
    if (rc < 0) {
        /* The statement was undone as a whole (a constraint: every row
         * of the batch is gone from contacts, the search index and the
         * outbox). The staged keys are in the key set: it no longer
         * mirrors the table, so lookups go back to SQLite. The caller
         * writes the rows again one by one, so that the one at fault is
         * named as a single create names it. */
        int alive = store_in_transaction(s);
        (void)exec_simple(s, STORE_Q_STORE_STAGE_CLEAR, NULL);
        bulk_off(s);
        stage_reset(s);
        s->stage_ready = alive;
        *replay = alive;
        return rc;
    }
    s->write_dirty = 1;
    sqlite3_stmt *st;
    rc = sql_get_st(&s->q, STORE_Q_STORE_STAGE_AUDIT, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, s->actor, -1, SQLITE_STATIC);
        if (s->address[0])
            sqlite3_bind_text(st, 2, s->address, -1, SQLITE_STATIC);
        rc = sql_run(&s->q, STORE_Q_STORE_STAGE_AUDIT, st, err);
    }
    if (rc >= 0) /* sql_run counts the rows changed */
        rc = exec_simple(s, STORE_Q_STORE_STAGE_CLEAR, err);
    int ready = s->stage_ready;
    keyset_free(s->pending);
    s->pending = NULL;
    s->nstaged = 0;
    s->stage_nokeys = 0;
    s->stage_ready = ready;
    if (rc < 0) {
        /* rows are in the table without their audit: only a rollback */
        s->txn_poisoned = 1;
        return rc;
    }
    if (nokeys)
        bulk_off(s);
    return 0;
}

void store_prepared_free(struct store_prepared *p)
{
    if (!p)
        return;
    prepared_done(p);
    free(p);
}

static int get_row(struct store *s, const struct entity_def *e, const char *id, unsigned flags,
                   json_t **out, char *phone_key, struct op_error *err)
{
    json_t *rec;
    char viewer[sizeof s->viewer];
    if (flags & STORE_IGNORE_VIEWER) {
        memcpy(viewer, s->viewer, sizeof viewer);
        s->viewer[0] = '\0';
    }
    int rc = load_row(s, e, id, 0, &rec, phone_key, err);
    if (flags & STORE_IGNORE_VIEWER)
        memcpy(s->viewer, viewer, sizeof viewer);
    if (rc < 0)
        return rc;
    if (json_is_true(json_object_get(rec, "deleted")) && !(flags & STORE_INCLUDE_DELETED)) {
        json_decref(rec);
        return op_error_set(err, -ENOENT, "id", "%s %s was deleted", e->name, id);
    }
    *out = rec;
    return 0;
}

int store_get(struct store *s, const struct entity_def *e, const char *id, unsigned flags,
              json_t **out, struct op_error *err)
{
    return get_row(s, e, id, flags, out, NULL, err);
}

int store_get_keyed(struct store *s, const struct entity_def *e, const char *id, unsigned flags,
                    json_t **out, char phone_key[PHONE_E164_MAX], struct op_error *err)
{
    phone_key[0] = '\0';
    int cur = e == &entity_contact ? phone_keys_current(s, err) : 0;
    if (cur < 0)
        return cur;
    int rc = get_row(s, e, id, flags, out, phone_key, err);
    if (rc == 0 && !cur)
        phone_key[0] = '\0';
    return rc;
}

static int version_check(const struct entity_def *e, const char *id, json_t *cur, int64_t expected,
                         struct op_error *err)
{
    if (json_is_true(json_object_get(cur, "deleted")))
        return op_error_set(err, -ENOENT, "id", "%s %s was deleted", e->name, id);
    int64_t v = json_integer_value(json_object_get(cur, "version"));
    if (v != expected)
        return op_error_set(err, STORE_EVERSION, "version",
                            "%s %s is at version %" PRId64 ", not %" PRId64
                            " (changed since you read it; reload and retry)",
                            e->name, id, v, expected);
    return 0;
}

static int dedup_fields_changed(json_t *changes)
{
    static const char *const keys[] = {"email", "phone", "given_name", "family_name", "locality"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (json_object_get(changes, keys[i]))
            return 1;
    return 0;
}

/* The residency consequences of a write (appliance/store/residency.h): a record
 * that becomes withheld voids the spool at commit if an older version of
 * it may be there (it had a change queued) or it is a parent (what is about
 * it may be), and a parent whose verdict changed queues what is about it.
 * `was` and `queued` are from before the write, `after` the record as
 * written. */
static int residency_after(struct store *s, const struct entity_def *e, const char *id,
                           enum residency_verdict was, int queued, json_t *after,
                           struct op_error *err)
{
    enum residency_verdict now;
    int rc = residency_judge(&s->res, s->policy, e, after, &now, err);
    if (rc < 0)
        return rc;
    if (now == RESIDENCY_WITHHOLD && was != RESIDENCY_WITHHOLD && !s->void_pending &&
        (queued || residency_is_parent(e))) {
        s->void_pending = 1;
        snprintf(s->void_why, sizeof s->void_why, "%s %s withheld", e->name, id);
    }
    if ((now == RESIDENCY_WITHHOLD) != (was == RESIDENCY_WITHHOLD) && residency_is_parent(e))
        rc = residency_enqueue_related(&s->res, e, id, 0, err);
    return rc;
}

/* Writes the whole record `rec` over version `version` of e's `id` with
 * a new version and stamp `now`, as a tombstone when `tombstone` (a
 * purge). Returns the rows changed (1, or 0 when the version moved). */
static int write_row(struct store *s, const struct entity_def *e, const char *id, int64_t version,
                     json_t *rec, const struct dedup_keys *k, int tombstone, hlc_stamp now,
                     struct op_error *err)
{
    unsigned q;
    sqlite3_stmt *st = table_stmt(s, STORE_Q_STORE_UPDATE_USERS, e, &q, err);
    if (!st)
        return get_failed(err);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, version);
    sqlite3_bind_int(st, 4, tombstone);
    int rc = bind_record(s, q, st, e, rec, k, 4, err);
    if (rc < 0)
        return rc;
    rc = sql_run(&s->q, q, st, err);
    if (rc < 0)
        /* the connection still holds the step's error after the reset */
        return constraint_error(s, e, sqlite3_extended_errcode(s->db), id, err);
    return rc;
}

int store_update(struct store *s, const struct entity_def *e, const char *id,
                 int64_t expected_version, json_t *changes, unsigned flags, json_t **out,
                 struct op_error *err)
{
    if (e->flags & ENTITY_DEDUP)
        bulk_off(s);
    if (!json_is_object(changes))
        return op_error_set(err, -EINVAL, NULL, "changes to a %s must be a JSON object", e->name);
    int rc = write_begin(s, err);
    if (rc < 0)
        return rc;
    json_t *rec = NULL;
    struct dedup_keys keys = {0};
    s->warning[0] = s->warning_ref[0] = '\0';
    enum residency_verdict was = RESIDENCY_KEEP;
    int queued = 0;
    rc = load_row(s, e, id, 1, &rec, NULL, err);
    if (rc == 0)
        rc = version_check(e, id, rec, expected_version, err);
    if (rc == 0 && !(e->flags & ENTITY_NODE_LOCAL))
        rc = residency_judge(&s->res, s->policy, e, rec, &was, err);
    if (rc == 0 && !(e->flags & ENTITY_NODE_LOCAL))
        rc = residency_queued(&s->res, e->name, id, &queued, err);
    json_t *custom = NULL;
    char owner[UUID_TEXT_LEN];
    const char *was_owner = rc == 0 ? str_or_null(rec, "owner_id") : NULL;
    if (was_owner)
        snprintf(owner, sizeof owner, "%s", was_owner);
    int was_restricted = rc == 0 && json_is_true(json_object_get(rec, "restricted"));
    if (rc == 0)
        rc = merge_fields(e, changes, rec, 0, flags, &custom, err);
    if (rc == 0)
        rc = viewer_update_rules(s, was_owner ? owner : NULL, was_restricted, rec, err);
    if (rc == 0)
        rc = check_policy(s, e, changes, custom, rec, 0, err);
    json_decref(custom);
    if (rc == 0)
        rc = check_record(s, e, rec, err);
    if (rc == 0)
        rc = check_refs(s, e, rec, changes, err);
    if (rc == 0 && (e->flags & ENTITY_DEDUP)) {
        rc = make_keys(s, rec, &keys, err);
        if (rc == 0 && !(flags & STORE_SKIP_DUP_CHECK) && dedup_fields_changed(changes))
            rc = check_dup(s, &keys, id, 0, err);
    }
    hlc_stamp now = 0;
    if (rc == 0) {
        now = hlc_next(&s->clock);
        rc = write_row(s, e, id, expected_version, rec, &keys, 0, now, err);
        if (rc == 0)
            rc = op_error_set(err, STORE_EVERSION, "version",
                              "%s %s changed while it was being updated", e->name, id);
        else if (rc > 0)
            rc = 0;
        if (rc == 0)
            s->write_dirty = 1;
    }
    if (rc == 0) {
        /* The audit detail names the fields changed, never their values. */
        json_t *names = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(changes, k, v) json_array_append_new(names, json_string(k));
        char *detail = json_dumps(names, JSON_COMPACT);
        json_decref(names);
        rc = audit(s, now, "update", e, id, expected_version, expected_version + 1, detail, err);
        free(detail);
    }
    if (rc == 0 && !(e->flags & ENTITY_NODE_LOCAL))
        rc = residency_after(s, e, id, was, queued, rec, err);
    rc = finish_write(s, e, id, rc, out, err);
    free_keys(&keys);
    json_decref(rec);
    return rc;
}

int store_delete(struct store *s, const struct entity_def *e, const char *id,
                 int64_t expected_version, json_t **out, struct op_error *err)
{
    if (e->flags & ENTITY_DEDUP)
        bulk_off(s);
    int rc = write_begin(s, err);
    if (rc < 0)
        return rc;
    json_t *rec = NULL;
    rc = load_row(s, e, id, 0, &rec, NULL, err);
    if (rc == 0)
        rc = version_check(e, id, rec, expected_version, err);
    hlc_stamp now = 0;
    if (rc == 0) {
        unsigned q;
        sqlite3_stmt *st = table_stmt(s, STORE_Q_STORE_DELETE_USERS, e, &q, err);
        rc = st ? 0 : get_failed(err);
        if (rc == 0) {
            now = hlc_next(&s->clock);
            sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
            sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 3, expected_version);
            rc = sql_run(&s->q, q, st, err);
            if (rc < 0) {
                rc = constraint_error(s, e, sqlite3_extended_errcode(s->db), id, err);
            } else {
                rc = 0;
                s->write_dirty = 1;
            }
        }
    }
    if (rc == 0)
        rc = audit(s, now, "delete", e, id, expected_version, expected_version + 1, NULL, err);
    rc = finish_write(s, e, id, rc, out, err);
    json_decref(rec);
    return rc;
}

/* What a purge keeps of a field: structure (references, enumerations,
 * flags, money) and the required time stamps stay so the tombstone still
 * says what it was; text, contact details, dates and free-form objects go:
 * a required text becomes '', an object {}, the rest NULL. Blanks `rec`
 * so. */
static int purge_blank(const struct entity_def *e, json_t *rec)
{
    for (size_t i = 0; i < e->nfields; i++) {
        const struct field_def *f = &e->fields[i];
        json_t *v;
        switch (f->type) {
        case FIELD_REF:
        case FIELD_ENUM:
        case FIELD_BOOL:
        case FIELD_MONEY:
        case FIELD_CURRENCY:
            continue;
        case FIELD_TIME:
            if (f->flags & FIELD_REQUIRED)
                continue;
            v = json_null();
            break;
        case FIELD_OBJECT:
            v = json_object();
            break;
        case FIELD_TEXT:
            v = (f->flags & FIELD_REQUIRED) ? json_string("") : json_null();
            break;
        default:
            v = json_null();
            break;
        }
        if (json_object_set_new(rec, f->name, v) < 0)
            return -ENOMEM;
    }
    return 0;
}

int store_purge(struct store *s, const struct entity_def *e, const char *id, const char *action,
                const char *reason, struct op_error *err)
{
    if (e->flags & ENTITY_DEDUP)
        bulk_off(s);
    if (e == &entity_user)
        return op_error_set(err, -EINVAL, NULL, "users are disabled, not purged");
    if (!action || !*action)
        action = "purge";
    int rc = write_begin(s, err);
    if (rc < 0)
        return rc;
    json_t *rec = NULL;
    int queued = 0;
    rc = load_row(s, e, id, 1, &rec, NULL, err);
    int64_t before = rc == 0 ? json_integer_value(json_object_get(rec, "version")) : 0;
    if (rc == 0)
        rc = residency_queued(&s->res, e->name, id, &queued, err);
    if (rc == 0 && purge_blank(e, rec) < 0)
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    hlc_stamp now = 0;
    if (rc == 0) {
        /* the blanked record, as a tombstone, without duplicate keys */
        now = hlc_next(&s->clock);
        rc = write_row(s, e, id, before, rec, NULL, 1, now, err);
        if (rc >= 0) {
            rc = 0;
            s->write_dirty = 1;
        }
    }
    if (rc == 0)
        rc = audit(s, now, action, e, id, before, before + 1, reason, err);
    if (rc == 0) {
        /* What was purged may wait in the spool (a change of it was still
         * queued): void it at commit. An erased person's links go from what
         * is about them. */
        if (queued && !s->void_pending) {
            s->void_pending = 1;
            snprintf(s->void_why, sizeof s->void_why, "%s %s %sd", e->name, id, action);
        }
        if (!strcmp(action, "erase") && e == &entity_contact)
            rc = residency_enqueue_related(&s->res, e, id, 1, err);
    }
    rc = finish_write(s, e, id, rc, NULL, err);
    json_decref(rec);
    return rc;
}

/* ---- reads ------------------------------------------------------------- */

/* One page being read: rows that pass the filters the query left to us,
 * up to limit, then one more to know there is a next page. */
struct page {
    const struct entity_def *e;
    const struct cols *m;
    const struct store_filter *rest; /* filters not in the query */
    size_t nrest;
    int limit;
    json_t *items;
    int more;
};

static int page_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct page *pg = ctx;
    json_t *o = row_json(st, pg->e, pg->m, 0);
    if (!o)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    for (size_t i = 0; i < pg->nrest; i++) {
        const char *v = json_string_value(json_object_get(o, pg->rest[i].field));
        if (!v || !pg->rest[i].value || strcmp(v, pg->rest[i].value) != 0) {
            json_decref(o);
            return 0;
        }
    }
    if (json_array_size(pg->items) == (size_t)pg->limit) {
        json_decref(o);
        pg->more = 1;
        return 1;
    }
    json_object_set_new(o, "_hlc",
                        json_integer(sqlite3_column_int64(st, pg->m->common[COL_UPDATED])));
    if (json_array_append_new(pg->items, o) < 0)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    return 0;
}

/* What a page of a list needs once the query is chosen and bound. */
struct list_plan {
    sqlite3_stmt *st;
    unsigned id;
    struct cols m;
    int limit;
    int by_id;
    const struct store_filter *rest; /* filters not in the query */
    size_t nrest;
};

/* Checks q, picks e's list query and binds it. */
static int list_prepare(struct store *s, const struct entity_def *e, const struct store_query *q,
                        struct list_plan *p, struct op_error *err)
{
    int limit = q->limit ? q->limit : STORE_LIST_DEFAULT;
    if (limit < 1 || limit > STORE_LIST_MAX)
        return op_error_set(err, -EINVAL, "limit", "limit: must be between 1 and %d",
                            STORE_LIST_MAX);
    /* Cursor: "i.<id>" for id order, "u.<hlc>.<id>" for update order. */
    char cursor_id[UUID_TEXT_LEN] = "";
    uint64_t cursor_hlc = 0;
    if (q->cursor && *q->cursor) {
        const char *c = q->cursor;
        int ok = 0;
        if (q->sort == STORE_SORT_ID && !strncmp(c, "i.", 2)) {
            ok = uuid_is_v7_text(c + 2);
            if (ok)
                snprintf(cursor_id, sizeof cursor_id, "%s", c + 2);
        } else if (q->sort == STORE_SORT_UPDATED && !strncmp(c, "u.", 2)) {
            char *end;
            errno = 0;
            cursor_hlc = strtoull(c + 2, &end, 10);
            ok = !errno && *end == '.' && uuid_is_v7_text(end + 1);
            if (ok)
                snprintf(cursor_id, sizeof cursor_id, "%s", end + 1);
        }
        if (!ok)
            return op_error_set(err, -EINVAL, "cursor",
                                "cursor: not a cursor from this list (or the sort changed)");
    }
    uint64_t since = 0;
    if (q->updated_since && *q->updated_since) {
        int64_t ms;
        if (timefmt_parse_iso(q->updated_since, &ms) < 0)
            return op_error_set(err, -EINVAL, "updated_since",
                                "updated_since: not a UTC time such as 2026-01-31T12:00:00Z");
        since = (uint64_t)ms << HLC_COUNTER_BITS;
    }

    for (size_t i = 0; i < q->nfilters; i++) {
        const struct field_def *f = entity_field(e, q->filters[i].field);
        if (!f || !(f->flags & FIELD_FILTER))
            return op_error_set(err, -EINVAL, q->filters[i].field,
                                "%s: %ss cannot be filtered by this field", q->filters[i].field,
                                e->name);
    }

    /* The first filter goes to the query, which has the index for it; the
     * rest are checked on the rows it returns. */
    const int by_id = q->sort == STORE_SORT_ID;
    sqlite3_stmt *st;
    if (q->nfilters) {
        char name[128];
        snprintf(name, sizeof name, "store_list_by_%s_%s_%s", by_id ? "id" : "updated", e->table,
                 q->filters[0].field);
        st = named_stmt(s, name, &p->id, err);
    } else {
        st = table_stmt(
            s, by_id ? STORE_Q_STORE_LIST_BY_ID_USERS : STORE_Q_STORE_LIST_BY_UPDATED_USERS, e,
            &p->id, err);
    }
    int rc = cols_map(st, e, &p->m, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int(st, 1, q->include_deleted ? 1 : 0);
    if (s->viewer[0])
        sqlite3_bind_text(st, 2, s->viewer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)since);
    sqlite3_bind_int64(st, 4, cursor_id[0] ? (sqlite3_int64)cursor_hlc : -1);
    sqlite3_bind_text(st, 5, cursor_id, -1, SQLITE_TRANSIENT);
    /* with filters left to us, the query cannot know how many rows make a page */
    sqlite3_bind_int(st, 6, q->nfilters > 1 ? -1 : limit + 1);
    if (q->nfilters)
        sqlite3_bind_text(st, 7, q->filters[0].value, -1, SQLITE_TRANSIENT);
    p->st = st;
    p->limit = limit;
    p->by_id = by_id;
    p->rest = q->filters + (q->nfilters ? 1 : 0);
    p->nrest = q->nfilters ? q->nfilters - 1 : 0;
    return 0;
}

static void list_cursor(int by_id, const char *lid, uint64_t hlc, char next[STORE_CURSOR_MAX])
{
    if (by_id)
        snprintf(next, STORE_CURSOR_MAX, "i.%s", lid);
    else
        snprintf(next, STORE_CURSOR_MAX, "u.%" PRIu64 ".%s", hlc, lid);
}

int store_list(struct store *s, const struct entity_def *e, const struct store_query *q,
               json_t **items, char next_cursor[STORE_CURSOR_MAX], struct op_error *err)
{
    struct list_plan p;
    int rc = list_prepare(s, e, q, &p, err);
    if (rc < 0)
        return rc;
    struct page pg = {e, &p.m, p.rest, p.nrest, p.limit, json_array(), 0};
    if (!pg.items) {
        sqlite3_reset(p.st);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    rc = sql_each(&s->q, p.id, p.st, page_row, &pg, err);
    if (rc < 0) {
        json_decref(pg.items);
        return rc;
    }
    next_cursor[0] = '\0';
    size_t n = json_array_size(pg.items);
    if (pg.more) {
        json_t *last = json_array_get(pg.items, n - 1);
        list_cursor(p.by_id, json_string_value(json_object_get(last, "id")),
                    (uint64_t)json_integer_value(json_object_get(last, "_hlc")), next_cursor);
    }
    size_t i;
    json_t *o;
    json_array_foreach(pg.items, i, o) json_object_del(o, "_hlc");
    *items = pg.items;
    return 0;
}

/* ---- records as JSON text ------------------------------------------------
 *
 * A page of a list is written straight from the rows into JSON text,
 * without a jansson object per record and a string per field: the same
 * bytes json_dumps(JSON_COMPACT) makes of row_json's objects (members in
 * the same order, strings escaped as jansson escapes them), at a fraction
 * of the allocations. tests/unit/appliance/store/test_store.c compares the
 * two byte for byte. */

/* Appends s[0..n) as a JSON string: '"', '\\' and control characters
 * escaped (\b \f \n \r \t, else \u00XX), everything else as it is, as
 * jansson's dump does without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH. */
static int text_string(struct buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n + 2) < 0)
        return -ENOMEM;
    b->data[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (buf_append(b, s + run, i - run) < 0)
            return -ENOMEM;
        char esc[8];
        const char *e = esc;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned)c);
        }
        if (buf_puts(b, e) < 0)
            return -ENOMEM;
        run = i + 1;
    }
    if (buf_append(b, s + run, n - run) < 0 || buf_append(b, "\"", 1) < 0)
        return -ENOMEM;
    return 0;
}

static int text_int(struct buf *b, long long v)
{
    char d[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        d[sizeof d - 1 - n++] = (char)('0' + u % 10);
    while ((u /= 10) && n < sizeof d - 1);
    if (v < 0)
        d[sizeof d - 1 - n++] = '-';
    return buf_append(b, d + sizeof d - n, n) < 0 ? -ENOMEM : 0;
}

/* A stamp as hlc_format_iso writes it ("2026-12-06T19:06:36.011Z"), the
 * date made once per day and kept, the time of day patched in: the rows
 * of a page, and the hits of a search, are mostly stamped within a day
 * of each other. */
struct iso_memo {
    int64_t day; /* -1: nothing kept */
    char text[HLC_ISO_LEN];
};

static int text_stamp(struct buf *b, struct iso_memo *memo, hlc_stamp stamp)
{
    int64_t ms = (int64_t)hlc_ms(stamp);
    if (ms < 0 || ms / 86400000 != memo->day) {
        hlc_format_iso(stamp, memo->text);
        /* kept only in the form whose time can be patched */
        memo->day = ms >= 0 && strlen(memo->text) == 24 ? ms / 86400000 : -1;
    } else {
        int t = (int)(ms % 86400000);
        int h = t / 3600000, mi = t / 60000 % 60, sec = t / 1000 % 60, f = t % 1000;
        char *x = memo->text;
        x[11] = (char)('0' + h / 10);
        x[12] = (char)('0' + h % 10);
        x[14] = (char)('0' + mi / 10);
        x[15] = (char)('0' + mi % 10);
        x[17] = (char)('0' + sec / 10);
        x[18] = (char)('0' + sec % 10);
        x[20] = (char)('0' + f / 100);
        x[21] = (char)('0' + f / 10 % 10);
        x[22] = (char)('0' + f % 10);
    }
    return text_string(b, memo->text, memo->day >= 0 ? 24 : strlen(memo->text));
}

/* "name": (the names are the descriptors' plain identifiers) */
static int text_key(struct buf *b, const char *name, int first)
{
    size_t n = strlen(name);
    if (buf_reserve(b, n + 4) < 0)
        return -ENOMEM;
    char *p = b->data + b->len;
    if (!first)
        *p++ = ',';
    *p++ = '"';
    memcpy(p, name, n);
    p += n;
    *p++ = '"';
    *p++ = ':';
    b->len = (size_t)(p - b->data);
    b->data[b->len] = '\0';
    return 0;
}

static int text_column(struct buf *b, sqlite3_stmt *st, int col, const struct field_def *f)
{
    if (f->type != FIELD_BOOL && f->type != FIELD_MONEY && f->type != FIELD_OBJECT) {
        /* text: two calls into SQLite instead of three (column_text is
         * NULL for a NULL column; its type tells that from no memory) */
        const char *t = (const char *)sqlite3_column_text(st, col);
        if (t)
            return text_string(b, t, (size_t)sqlite3_column_bytes(st, col));
        if (sqlite3_column_type(st, col) != SQLITE_NULL)
            return -ENOMEM;
        return buf_append(b, "null", 4) < 0 ? -ENOMEM : 0;
    }
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return buf_puts(b, f->type == FIELD_OBJECT ? "{}" : "null") < 0 ? -ENOMEM : 0;
    switch (f->type) {
    case FIELD_BOOL:
        return buf_puts(b, sqlite3_column_int(st, col) ? "true" : "false") < 0 ? -ENOMEM : 0;
    case FIELD_MONEY:
        return text_int(b, (long long)sqlite3_column_int64(st, col));
    case FIELD_OBJECT: {
        const char *t = (const char *)sqlite3_column_text(st, col);
        size_t n = (size_t)sqlite3_column_bytes(st, col);
        if (n == 2 && !memcmp(t, "{}", 2))
            return buf_append(b, "{}", 2) < 0 ? -ENOMEM : 0;
        /* a stored object is written as jansson writes it back */
        json_t *o = column_json(st, col, f);
        char *d = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        int rc = d && buf_puts(b, d) == 0 ? 0 : -ENOMEM;
        free(d);
        return rc;
    }
    default:
        return text_string(b, (const char *)sqlite3_column_text(st, col),
                           (size_t)sqlite3_column_bytes(st, col));
    }
}

/* A record of e's table (columns as in m) as JSON text, as
 * json_dumps(row_json(st, e, m, 0), JSON_COMPACT) writes it. */
static int row_text(struct buf *b, sqlite3_stmt *st, const struct entity_def *e,
                    const struct cols *m, struct iso_memo *memo)
{
    static const struct field_def id_text = {.type = FIELD_TEXT};
    int rc = buf_puts(b, "{\"id\":") < 0 ? -ENOMEM : 0;
    if (rc == 0)
        rc = text_column(b, st, m->common[COL_ID], &id_text);
    if (rc == 0 && buf_puts(b, ",\"version\":") < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = text_int(b, (long long)sqlite3_column_int64(st, m->common[COL_VERSION]));
    if (rc == 0 && buf_puts(b, ",\"created_at\":") < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = text_stamp(b, memo, (hlc_stamp)sqlite3_column_int64(st, m->common[COL_CREATED]));
    if (rc == 0 && buf_puts(b, ",\"updated_at\":") < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = text_stamp(b, memo, (hlc_stamp)sqlite3_column_int64(st, m->common[COL_UPDATED]));
    if (rc == 0 &&
        buf_puts(b, sqlite3_column_int(st, m->common[COL_DELETED]) ? ",\"deleted\":true"
                                                                   : ",\"deleted\":false") < 0)
        rc = -ENOMEM;
    for (size_t i = 0; i < e->nfields && rc == 0; i++) {
        const struct field_def *f = &e->fields[i];
        if (f->flags & FIELD_INTERNAL)
            continue;
        rc = text_key(b, f->name, 0);
        if (rc == 0)
            rc = text_column(b, st, m->field[i], f);
    }
    if (rc == 0 && buf_append(b, "}", 1) < 0)
        rc = -ENOMEM;
    return rc;
}

/* Whether the row passes the filters the query left to us, as page_row
 * judges them on the record: the field's value is a string equal to the
 * filter's. */
static int row_passes(sqlite3_stmt *st, const struct entity_def *e, const struct cols *m,
                      const struct store_filter *rest, size_t nrest)
{
    for (size_t k = 0; k < nrest; k++) {
        const struct field_def *f = NULL;
        size_t i;
        for (i = 0; i < e->nfields; i++)
            if (!strcmp(e->fields[i].name, rest[k].field)) {
                f = &e->fields[i];
                break;
            }
        if (!f || (f->flags & FIELD_INTERNAL) || f->type == FIELD_BOOL || f->type == FIELD_MONEY ||
            f->type == FIELD_OBJECT || !rest[k].value ||
            sqlite3_column_type(st, m->field[i]) == SQLITE_NULL ||
            strcmp((const char *)sqlite3_column_text(st, m->field[i]), rest[k].value) != 0)
            return 0;
    }
    return 1;
}

struct page_text {
    const struct entity_def *e;
    const struct list_plan *p;
    struct buf *out;
    struct iso_memo memo;
    int n;
    int more;
    char last_id[UUID_TEXT_LEN];
    uint64_t last_hlc;
};

static int page_text_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct page_text *pg = ctx;
    const struct cols *m = &pg->p->m;
    if (!row_passes(st, pg->e, m, pg->p->rest, pg->p->nrest))
        return 0;
    if (pg->n == pg->p->limit) {
        pg->more = 1;
        return 1;
    }
    if ((pg->n && buf_append(pg->out, ",", 1) < 0) ||
        row_text(pg->out, st, pg->e, m, &pg->memo) < 0)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    const char *id = (const char *)sqlite3_column_text(st, m->common[COL_ID]);
    size_t idlen = id ? (size_t)sqlite3_column_bytes(st, m->common[COL_ID]) : 0;
    if (idlen >= sizeof pg->last_id)
        idlen = sizeof pg->last_id - 1;
    memcpy(pg->last_id, id ? id : "", idlen);
    pg->last_id[idlen] = '\0';
    pg->last_hlc = (uint64_t)sqlite3_column_int64(st, m->common[COL_UPDATED]);
    pg->n++;
    return 0;
}

int store_list_text(struct store *s, const struct entity_def *e, const struct store_query *q,
                    struct buf *out, struct op_error *err)
{
    struct list_plan p;
    int rc = list_prepare(s, e, q, &p, err);
    if (rc < 0)
        return rc;
    struct page_text pg = {.e = e, .p = &p, .out = out, .memo = {.day = -1}};
    /* room for a page of typical records at once, not grown step by step */
    (void)buf_reserve(out, (size_t)p.limit * 1024 < out->max / 2 ? (size_t)p.limit * 1024 : 0);
    if (buf_puts(out, "{\"items\":[") < 0) {
        sqlite3_reset(p.st);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    rc = sql_each(&s->q, p.id, p.st, page_text_row, &pg, err);
    if (rc < 0)
        return rc;
    char next[STORE_CURSOR_MAX];
    if (pg.more) {
        list_cursor(p.by_id, pg.last_id, pg.last_hlc, next);
        rc = buf_puts(out, "],\"next_cursor\":") < 0 || text_string(out, next, strlen(next)) < 0 ||
                     buf_puts(out, "}") < 0
                 ? -ENOMEM
                 : 0;
    } else {
        rc = buf_puts(out, "],\"next_cursor\":null}") < 0 ? -ENOMEM : 0;
    }
    return rc < 0 ? op_error_set(err, rc, NULL, "out of memory") : 0;
}

/* A walk of store_each: the callback may call back into the store. */
struct walk {
    const struct entity_def *e;
    const struct cols *m;
    int (*cb)(void *ctx, json_t *record);
    void *ctx;
};

static int walk_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    struct walk *w = ctx;
    json_t *o = row_json(st, w->e, w->m, 0);
    if (!o)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int ret = w->cb(w->ctx, o);
    json_decref(o);
    return ret;
}

int store_each(struct store *s, const struct entity_def *e, int include_deleted,
               int (*cb)(void *ctx, json_t *record), void *ctx, struct op_error *err)
{
    /* The walk's statement is the cache's: the callback may use the store,
     * but not walk the same entity again inside the walk. */
    int i = entity_index(e);
    if (i < 0)
        return op_error_set(err, -EINVAL, NULL, "unknown entity");
    if (s->each_busy & (1u << i))
        return op_error_set(err, -EBUSY, NULL, "the %ss are already being walked", e->name);
    unsigned id;
    sqlite3_stmt *st = table_stmt(s, STORE_Q_STORE_EACH_USERS, e, &id, err);
    struct cols m;
    int rc = cols_map(st, e, &m, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int(st, 1, include_deleted ? 1 : 0);
    struct walk w = {e, &m, cb, ctx};
    s->each_busy |= 1u << i;
    rc = sql_each(&s->q, id, st, walk_row, &w, err);
    s->each_busy &= ~(1u << i);
    return rc;
}

/* Turns free text into an FTS5 query: each word a quoted prefix term. */
static int build_match(const char *text, char *out, size_t cap, struct op_error *err)
{
    size_t len = strlen(text);
    if (len > SEARCH_TEXT_MAX)
        return op_error_set(err, -EINVAL, "q", "search text longer than %d bytes", SEARCH_TEXT_MAX);
    if (entity_utf8_bad_offset(text, len) >= 0)
        return op_error_set(err, -EINVAL, "q", "search text is not valid UTF-8");
    size_t o = 0;
    int terms = 0;
    const char *p = text;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (++terms > SEARCH_TERMS_MAX)
            return op_error_set(err, -EINVAL, "q", "search text has more than %d words",
                                SEARCH_TERMS_MAX);
        if (o + 2 >= cap)
            return op_error_set(err, -EINVAL, "q", "search text too long");
        if (o)
            out[o++] = ' ';
        out[o++] = '"';
        for (; *p && !isspace((unsigned char)*p); p++) {
            if (o + 4 >= cap)
                return op_error_set(err, -EINVAL, "q", "search text too long");
            if (*p == '"')
                out[o++] = '"';
            out[o++] = *p;
        }
        out[o++] = '"';
        out[o++] = '*';
    }
    out[o] = '\0';
    if (!terms)
        return op_error_set(err, -EINVAL, "q", "search text is empty");
    return 0;
}

/* ---- search ----------------------------------------------------------------
 *
 * Two paths (docs/DATA_MODEL.md, "Search"). A query of at most
 * SEARCH_SHORT_WORDS words, each folding to one word of at most
 * SEARCH_SHORT_CHARS characters, is type-ahead: its hits come from the
 * ordered index of name words (search_names), read in order and stopped
 * at the limit, and only if there are fewer than the limit the full-text
 * index adds its best matches after them. Longer queries are ranked by
 * the full-text index's bm25 alone: ranking every match of a short
 * prefix was most of a search's cost. The hits are written as JSON text
 * straight from the rows, as lists are. */

#define SEARCH_SHORT_WORDS 2
#define SEARCH_SHORT_CHARS 4

/* The searchable entities, in the order of search_names' kind. */
static const struct store_entity_query search_ents[] = {
    {&entity_contact, STORE_Q_STORE_SEARCH_CONTACTS},
    {&entity_organization, STORE_Q_STORE_SEARCH_ORGANIZATIONS},
};
static const unsigned search_hit_q[] = {STORE_Q_STORE_SEARCH_HIT_CONTACTS,
                                        STORE_Q_STORE_SEARCH_HIT_ORGANIZATIONS};
#define SEARCH_KINDS 2

struct search_hit {
    int kind;
    sqlite3_int64 rid;
    double rank;
};

/* A statement's columns for writing hits: the record's, and the label's. */
struct hit_cols {
    struct cols m;
    int label[4]; /* given, family, email, phone; an organization's name in [0] */
};

struct search_run {
    struct store *s;
    struct buf *out;
    struct iso_memo memo;
    struct search_hit *hits; /* written so far */
    int n, limit;
    /* the type-ahead words, folded */
    char word[SEARCH_SHORT_WORDS][SEARCH_SHORT_CHARS * 8 + 1];
    int nwords;
};

static int col_named(const struct entity_def *e, const struct cols *m, const char *name)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (!strcmp(e->fields[i].name, name))
            return m->field[i];
    return -1;
}

/* The column maps of the type-ahead statements ([0] contacts, [1]
 * organizations) and of the full-text hits' ([2], [3]): the statements
 * are prepared once, so their columns are mapped once per store. */
struct search_cols {
    struct hit_cols h[2 * SEARCH_KINDS];
    unsigned char ready[2 * SEARCH_KINDS];
};

static int hit_cols_map(sqlite3_stmt *st, int kind, struct hit_cols *h, struct op_error *err);

/* st's column map (slot as above); NULL when st is NULL or on failure. */
static const struct hit_cols *search_cols_of(struct store *s, int slot, sqlite3_stmt *st,
                                             struct op_error *err)
{
    if (!st) {
        (void)get_failed(err);
        return NULL;
    }
    if (!s->search_cols && !(s->search_cols = calloc(1, sizeof *s->search_cols))) {
        op_error_set(err, -ENOMEM, NULL, "out of memory");
        return NULL;
    }
    struct search_cols *c = s->search_cols;
    if (!c->ready[slot]) {
        if (hit_cols_map(st, slot % SEARCH_KINDS, &c->h[slot], err) < 0)
            return NULL;
        c->ready[slot] = 1;
    }
    return &c->h[slot];
}

static int hit_cols_map(sqlite3_stmt *st, int kind, struct hit_cols *h, struct op_error *err)
{
    const struct entity_def *e = search_ents[kind].e;
    int rc = cols_map(st, e, &h->m, err);
    if (rc < 0)
        return rc;
    static const char *const names[2][4] = {{"given_name", "family_name", "email", "phone"},
                                            {"name", NULL, NULL, NULL}};
    for (int i = 0; i < 4; i++)
        h->label[i] = names[kind][i] ? col_named(e, &h->m, names[kind][i]) : -1;
    return 0;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    return col < 0 ? NULL : (const char *)sqlite3_column_text(st, col);
}

/* Appends s as the inside of a JSON string (text_string without quotes). */
static int text_inner(struct buf *b, const char *s)
{
    size_t before = b->len;
    int rc = text_string(b, s, strlen(s));
    if (rc < 0)
        return rc;
    /* drop the quotes text_string put around it */
    memmove(b->data + before, b->data + before + 1, b->len - before - 2);
    b->len -= 2;
    b->data[b->len] = '\0';
    return 0;
}

/* The hit's label, as the record shows it: an organization's name, a
 * contact's given and family name (at most 511 bytes, as before), else
 * its e-mail or phone. */
static int label_text(struct buf *b, sqlite3_stmt *st, int kind, const struct hit_cols *h)
{
    if (kind == 1) {
        const char *n = col_text(st, h->label[0]);
        if (!n)
            return buf_puts(b, "null") < 0 ? -ENOMEM : 0;
        return text_string(b, n, strlen(n));
    }
    const char *g = col_text(st, h->label[0]);
    const char *f = col_text(st, h->label[1]);
    if (g || f) {
        if (strlen(g ? g : "") + strlen(f ? f : "") + 1 >= 512) {
            char l[512];
            snprintf(l, sizeof l, "%s%s%s", g ? g : "", g && f ? " " : "", f ? f : "");
            return text_string(b, l, strlen(l));
        }
        int rc = buf_append(b, "\"", 1) < 0 ? -ENOMEM : 0;
        if (rc == 0 && g)
            rc = text_inner(b, g);
        if (rc == 0 && g && f && buf_append(b, " ", 1) < 0)
            rc = -ENOMEM;
        if (rc == 0 && f)
            rc = text_inner(b, f);
        if (rc == 0 && buf_append(b, "\"", 1) < 0)
            rc = -ENOMEM;
        return rc;
    }
    const char *em = col_text(st, h->label[2]);
    const char *ph = col_text(st, h->label[3]);
    const char *l = em ? em : ph ? ph : "";
    return text_string(b, l, strlen(l));
}

/* Whether the record's name has a word starting with each type-ahead
 * word but the first (the one the index was read for). */
static int names_match(struct search_run *r, sqlite3_stmt *st, int kind, const struct hit_cols *h)
{
    if (r->nwords < 2)
        return 1;
    char name[1024];
    if (kind == 1) {
        const char *n = col_text(st, h->label[0]);
        snprintf(name, sizeof name, "%s", n ? n : "");
    } else {
        const char *g = col_text(st, h->label[0]);
        const char *f = col_text(st, h->label[1]);
        snprintf(name, sizeof name, "%s %s", g ? g : "", f ? f : "");
    }
    const char *folded;
    int n = folder_fold(r->s->folder, name, strlen(name), &folded);
    if (n <= 0)
        return 0;
    for (int w = 1; w < r->nwords; w++) {
        size_t wl = strlen(r->word[w]);
        int found = 0;
        for (const char *p = folded; p && *p && !found; p = strchr(p, ' '), p = p ? p + 1 : p)
            found = !strncmp(p, r->word[w], wl);
        if (!found)
            return 0;
    }
    return 1;
}

static int hit_seen(const struct search_run *r, int kind, sqlite3_int64 rid)
{
    for (int i = 0; i < r->n; i++)
        if (r->hits[i].kind == kind && r->hits[i].rid == rid)
            return 1;
    return 0;
}

/* Writes the hit in st's current row (columns as in h). */
static int write_hit(struct search_run *r, int kind, sqlite3_int64 rid, sqlite3_stmt *st,
                     const struct hit_cols *h, struct op_error *err)
{
    const struct entity_def *e = search_ents[kind].e;
    const struct cols *m = &h->m;
    struct buf *b = r->out;
    int rc = (r->n && buf_append(b, ",", 1) < 0) || buf_puts(b, "{\"entity\":") < 0 ||
                     text_string(b, e->name, strlen(e->name)) < 0 || buf_puts(b, ",\"id\":") < 0
                 ? -ENOMEM
                 : 0;
    if (rc == 0) {
        const char *id = col_text(st, m->common[COL_ID]);
        rc = id ? text_string(b, id, (size_t)sqlite3_column_bytes(st, m->common[COL_ID]))
                : (buf_puts(b, "null") < 0 ? -ENOMEM : 0);
    }
    if (rc == 0 && buf_puts(b, ",\"label\":") < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = label_text(b, st, kind, h);
    if (rc == 0 && buf_puts(b, ",\"record\":") < 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = row_text(b, st, e, m, &r->memo);
    if (rc == 0 && buf_append(b, "}", 1) < 0)
        rc = -ENOMEM;
    if (rc < 0)
        return op_error_set(err, rc, NULL, "out of memory");
    r->hits[r->n++] = (struct search_hit){kind, rid, 0};
    return 1;
}

/* Writes the hit (kind, rid) of the full-text path unless it was written
 * already, is gone or is hidden from the viewer. Returns 1 when written,
 * 0 when not, or a negative errno. */
static int search_emit(struct search_run *r, int kind, sqlite3_int64 rid, struct op_error *err)
{
    if (hit_seen(r, kind, rid))
        return 0;
    unsigned q = search_hit_q[kind];
    sqlite3_stmt *st = sql_get(&r->s->q, q, err);
    const struct hit_cols *h = search_cols_of(r->s, SEARCH_KINDS + kind, st, err);
    if (!h)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, rid);
    if (r->s->viewer[0])
        sqlite3_bind_text(st, 2, r->s->viewer, -1, SQLITE_STATIC);
    int rc = sql_step(&r->s->q, q, st, err);
    if (rc <= 0)
        return rc;
    rc = write_hit(r, kind, rid, st, h, err);
    sqlite3_reset(st);
    return rc;
}

/* Folds the query's words for the type-ahead path: 1 when it applies
 * (at most SEARCH_SHORT_WORDS words, each one folded word of at most
 * SEARCH_SHORT_CHARS characters), 0 when the full-text path answers. */
static int short_words(struct search_run *r, const char *text)
{
    r->nwords = 0;
    for (const char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *w = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (r->nwords == SEARCH_SHORT_WORDS)
            return 0;
        const char *folded;
        int n = folder_fold(r->s->folder, w, (size_t)(p - w), &folded);
        if (n <= 0 || (size_t)n >= sizeof r->word[0] || memchr(folded, ' ', (size_t)n))
            return 0;
        int chars = 0;
        for (int i = 0; i < n; i++)
            chars += ((unsigned char)folded[i] & 0xc0) != 0x80;
        if (chars > SEARCH_SHORT_CHARS)
            return 0;
        memcpy(r->word[r->nwords], folded, (size_t)n);
        r->word[r->nwords][n] = '\0';
        r->nwords++;
    }
    if (!r->nwords)
        return 0;
    /* the index is read for the longest word, the most selective */
    if (r->nwords == 2 && strlen(r->word[1]) > strlen(r->word[0])) {
        char t[sizeof r->word[0]];
        memcpy(t, r->word[0], sizeof t);
        memcpy(r->word[0], r->word[1], sizeof t);
        memcpy(r->word[1], t, sizeof t);
    }
    return 1;
}

/* The type-ahead hits: names with a word starting with word[0], live and
 * visible to the viewer, in key order until the limit. Contacts and
 * organizations come from one statement each (the record joined to its
 * keys), merged by key. */
static int search_short(struct search_run *r, struct op_error *err)
{
    char hi[sizeof r->word[0]];
    size_t n = strlen(r->word[0]);
    memcpy(hi, r->word[0], n + 1);
    hi[n - 1]++; /* the first text after every key with this prefix (UTF-8 has no 0xff) */
    static const unsigned qs[SEARCH_KINDS] = {STORE_Q_STORE_SEARCH_NAMES_CONTACTS,
                                              STORE_Q_STORE_SEARCH_NAMES_ORGANIZATIONS};
    sqlite3_stmt *st[SEARCH_KINDS] = {NULL};
    const struct hit_cols *h[SEARCH_KINDS];
    int has[SEARCH_KINDS] = {0};
    int rc = 0;
    for (int k = 0; k < SEARCH_KINDS && rc >= 0; k++) {
        st[k] = sql_get(&r->s->q, qs[k], err);
        if (!(h[k] = search_cols_of(r->s, k, st[k], err))) {
            rc = err && err->code ? err->code : -EIO;
            break;
        }
        sqlite3_bind_text(st[k], 1, r->word[0], (int)n, SQLITE_STATIC);
        sqlite3_bind_text(st[k], 2, hi, (int)n, SQLITE_STATIC);
        if (r->s->viewer[0])
            sqlite3_bind_text(st[k], 3, r->s->viewer, -1, SQLITE_STATIC);
        rc = has[k] = sql_step(&r->s->q, qs[k], st[k], err);
    }
    while (rc >= 0 && r->n < r->limit && (has[0] > 0 || has[1] > 0)) {
        /* the smaller key; contacts first on a tie */
        int k = has[0] > 0 ? 0 : 1;
        if (k == 0 && has[1] > 0 &&
            strcmp((const char *)sqlite3_column_text(st[1], 0),
                   (const char *)sqlite3_column_text(st[0], 0)) < 0)
            k = 1;
        sqlite3_int64 rid = sqlite3_column_int64(st[k], 1);
        if (!hit_seen(r, k, rid) && names_match(r, st[k], k, h[k]))
            rc = write_hit(r, k, rid, st[k], h[k], err);
        if (rc >= 0)
            rc = has[k] = sql_step(&r->s->q, qs[k], st[k], err);
    }
    for (int k = 0; k < SEARCH_KINDS; k++)
        if (st[k])
            sqlite3_reset(st[k]);
    return rc < 0 ? rc : 0;
}

static int by_rank(const void *a, const void *b)
{
    const struct search_hit *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    /* ties: contacts first, then in the order the index gave them */
    return x->kind != y->kind ? x->kind - y->kind : 0;
}

/* The full-text hits after those written: the best of each entity by
 * bm25 (lower is better; the ranks of the two indexes are comparable),
 * merged. */
static int search_fts(struct search_run *r, const char *match, struct op_error *err)
{
    int want = r->limit;
    struct search_hit *cand = malloc(sizeof *cand * (size_t)want * SEARCH_KINDS);
    if (!cand)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int nc = 0, rc = 0;
    for (int k = 0; k < SEARCH_KINDS && rc >= 0; k++) {
        unsigned q = search_ents[k].id;
        sqlite3_stmt *st;
        rc = sql_get_st(&r->s->q, q, &st, err);
        if (rc < 0)
            break;
        sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, want);
        if (r->s->viewer[0])
            sqlite3_bind_text(st, 3, r->s->viewer, -1, SQLITE_STATIC);
        /* at most want rows (LIMIT), in the rank's order */
        while ((rc = sql_step(&r->s->q, q, st, err)) == 1) {
            cand[nc++] =
                (struct search_hit){k, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1)};
        }
        sqlite3_reset(st);
    }
    if (rc >= 0) {
        /* a stable merge: insertion sort keeps each entity's order */
        for (int i = 1; i < nc; i++)
            for (int j = i; j > 0 && by_rank(&cand[j - 1], &cand[j]) > 0; j--) {
                struct search_hit t = cand[j];
                cand[j] = cand[j - 1];
                cand[j - 1] = t;
            }
        for (int i = 0; i < nc && r->n < r->limit && rc >= 0; i++)
            rc = search_emit(r, cand[i].kind, cand[i].rid, err);
    }
    free(cand);
    return rc < 0 ? rc : 0;
}

int store_search_text(struct store *s, const char *text, int limit, struct buf *out,
                      struct op_error *err)
{
    if (limit <= 0)
        limit = 20;
    if (limit > STORE_SEARCH_MAX)
        return op_error_set(err, -EINVAL, "limit", "limit: at most %d", STORE_SEARCH_MAX);
    char match[SEARCH_TEXT_MAX * 2 + SEARCH_TERMS_MAX * 4 + 8];
    int rc = build_match(text, match, sizeof match, err);
    if (rc < 0)
        return rc;
    struct search_hit hits[STORE_SEARCH_MAX];
    struct search_run r = {.s = s, .out = out, .memo = {.day = -1}, .hits = hits, .limit = limit};
    (void)buf_reserve(out, (size_t)limit * 1024 < out->max / 2 ? (size_t)limit * 1024 : 0);
    if (buf_puts(out, "{\"items\":[") < 0)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (short_words(&r, text))
        rc = search_short(&r, err);
    if (rc >= 0 && r.n < limit)
        rc = search_fts(&r, match, err);
    if (rc < 0)
        return rc;
    if (buf_puts(out, "]}") < 0)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    return 0;
}

int store_search(struct store *s, const char *text, int limit, json_t **results,
                 struct op_error *err)
{
    struct buf b = BUF_INIT(64u << 20);
    int rc = store_search_text(s, text, limit, &b, err);
    if (rc < 0) {
        buf_done(&b);
        return rc;
    }
    json_t *doc = json_loadb(b.data, b.len, 0, NULL);
    buf_done(&b);
    json_t *items = json_incref(json_object_get(doc, "items"));
    json_decref(doc);
    if (!items)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    *results = items;
    return 0;
}
