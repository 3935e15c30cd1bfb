/*
 * The node's residency rules that need its database; contract in
 * residency.h, the rules in docs/EGRESS.md. Tables: spool_voided,
 * egress_sent and sync_state.spool_epoch / policy_hash
 * (schema/migrations/0009_residency.sql).
 *
 * The invariant this file keeps with the store and the segmenter: a
 * segment is in sync_segments (so the uplink may send it) only if it was
 * cut entirely after the last voiding committed. Voiding bumps spool_epoch
 * in the same transaction as the write that withholds; the segmenter
 * records a segment only if the epoch it read before cutting is unchanged;
 * the files of voided segments are truncated before the withholding write
 * returns, and the uploader stops at a file that shrinks.
 */
#include "residency.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "egress.h"
#include "policy.h"
#include "store_queries.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* *out = 1 when query `id` (?1 = a and, if b is not NULL, ?2 = b) finds a
 * row. */
static int exists(const struct residency_db *r, unsigned id, const char *a, const char *b, int *out,
                  struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(r->q, id, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    rc = sql_step(r->q, id, st, err);
    if (rc < 0)
        return rc;
    sqlite3_reset(st);
    *out = rc;
    return 0;
}

/* ---- relations ------------------------------------------------------------- */

static const char *ref_of(json_t *rec, const char *field)
{
    const char *v = json_string_value(json_object_get(rec, field));
    return v && *v ? v : NULL;
}

/* Whether parent `id` of pe withholds what is about it. */
static int parent_withheld(const struct residency_db *r, const struct policy *p,
                           const struct entity_def *pe, const char *id, int *out,
                           struct op_error *err)
{
    *out = 0;
    if (pe == &entity_contact) {
        int rc = exists(r, STORE_Q_RESIDENCY_ERASED, id, NULL, out, err);
        if (rc < 0 || *out)
            return rc;
    }
    json_t *rec = NULL;
    int rc = r->get(r->ctx, pe, id, &rec, err);
    if (rc == -ENOENT)
        return 0; /* a dangling reference withholds nothing */
    if (rc < 0)
        return rc;
    if (pe == &entity_deal) {
        enum residency_verdict v;
        rc = residency_judge(r, p, pe, rec, &v, err);
        *out = rc == 0 && v == RESIDENCY_WITHHOLD;
    } else {
        *out = egress_withheld(p, pe, rec);
    }
    json_decref(rec);
    return rc;
}

int residency_judge(const struct residency_db *r, const struct policy *p,
                    const struct entity_def *e, json_t *rec, enum residency_verdict *out,
                    struct op_error *err)
{
    *out = RESIDENCY_KEEP;
    if (egress_withheld(p, e, rec)) {
        *out = RESIDENCY_WITHHOLD;
        return 0;
    }
    if (e == &entity_contact || e == &entity_organization || e == &entity_user)
        return 0;
    /* The parents a record can hang from, in the order they are judged. */
    static const struct {
        const char *field;
        const struct entity_def *e;
    } parents[] = {
        {"organization_id", &entity_organization},
        {"deal_id", &entity_deal},
        {"contact_id", &entity_contact},
    };
    const char *org = ref_of(rec, "organization_id");
    for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++) {
        const char *ref = ref_of(rec, parents[i].field);
        if (!ref || !entity_field(e, parents[i].field))
            continue;
        int w = 0;
        int rc = parent_withheld(r, p, parents[i].e, ref, &w, err);
        if (rc < 0)
            return rc;
        if (!w)
            continue;
        /* A deal is the organization's business record: it stays, without
         * the person. Everything else about the person is theirs alone. */
        if (parents[i].e == &entity_contact && e == &entity_deal && org)
            *out = RESIDENCY_DROP_CONTACT;
        else
            *out = RESIDENCY_WITHHOLD;
        return 0;
    }
    return 0;
}

void residency_apply(enum residency_verdict v, json_t *rec)
{
    if (v == RESIDENCY_DROP_CONTACT)
        (void)json_object_set_new(rec, "contact_id", json_null());
}

int residency_is_parent(const struct entity_def *e)
{
    return e == &entity_contact || e == &entity_organization || e == &entity_deal;
}

/* The records about each parent, as the queries that queue them: directly,
 * or (for a contact or an organization) through the parent's deals. */
struct related {
    const struct entity_def *e;
    unsigned q;
};

static const struct related contact_children[] = {
    {&entity_contact_organization, STORE_Q_RESIDENCY_ENQUEUE_CONTACT_ORGANIZATIONS_OF_CONTACT},
    {&entity_deal, STORE_Q_RESIDENCY_ENQUEUE_DEALS_OF_CONTACT},
    {&entity_activity, STORE_Q_RESIDENCY_ENQUEUE_ACTIVITIES_OF_CONTACT},
    {&entity_task, STORE_Q_RESIDENCY_ENQUEUE_TASKS_OF_CONTACT},
    {&entity_note, STORE_Q_RESIDENCY_ENQUEUE_NOTES_OF_CONTACT},
    {&entity_consent, STORE_Q_RESIDENCY_ENQUEUE_CONSENTS_OF_CONTACT},
    {&entity_activity, STORE_Q_RESIDENCY_ENQUEUE_ACTIVITIES_OF_CONTACT_DEALS},
    {&entity_task, STORE_Q_RESIDENCY_ENQUEUE_TASKS_OF_CONTACT_DEALS},
    {&entity_note, STORE_Q_RESIDENCY_ENQUEUE_NOTES_OF_CONTACT_DEALS},
    {NULL, 0},
};
static const struct related organization_children[] = {
    {&entity_contact_organization, STORE_Q_RESIDENCY_ENQUEUE_CONTACT_ORGANIZATIONS_OF_ORGANIZATION},
    {&entity_deal, STORE_Q_RESIDENCY_ENQUEUE_DEALS_OF_ORGANIZATION},
    {&entity_activity, STORE_Q_RESIDENCY_ENQUEUE_ACTIVITIES_OF_ORGANIZATION},
    {&entity_task, STORE_Q_RESIDENCY_ENQUEUE_TASKS_OF_ORGANIZATION},
    {&entity_note, STORE_Q_RESIDENCY_ENQUEUE_NOTES_OF_ORGANIZATION},
    {&entity_activity, STORE_Q_RESIDENCY_ENQUEUE_ACTIVITIES_OF_ORGANIZATION_DEALS},
    {&entity_task, STORE_Q_RESIDENCY_ENQUEUE_TASKS_OF_ORGANIZATION_DEALS},
    {&entity_note, STORE_Q_RESIDENCY_ENQUEUE_NOTES_OF_ORGANIZATION_DEALS},
    {NULL, 0},
};
static const struct related deal_children[] = {
    {&entity_activity, STORE_Q_RESIDENCY_ENQUEUE_ACTIVITIES_OF_DEAL},
    {&entity_task, STORE_Q_RESIDENCY_ENQUEUE_TASKS_OF_DEAL},
    {&entity_note, STORE_Q_RESIDENCY_ENQUEUE_NOTES_OF_DEAL},
    {NULL, 0},
};
/* An erased contact's other records are purged with it; only its deals
 * stay, and lose their link to the person. */
static const struct related erased_contact_children[] = {
    {&entity_deal, STORE_Q_RESIDENCY_ENQUEUE_DEALS_OF_CONTACT},
    {NULL, 0},
};
/* Every entity that syncs, for a changed policy. */
static const struct related all_records[] = {
    {&entity_contact, STORE_Q_RESIDENCY_ENQUEUE_ALL_CONTACTS},
    {&entity_organization, STORE_Q_RESIDENCY_ENQUEUE_ALL_ORGANIZATIONS},
    {&entity_contact_organization, STORE_Q_RESIDENCY_ENQUEUE_ALL_CONTACT_ORGANIZATIONS},
    {&entity_deal, STORE_Q_RESIDENCY_ENQUEUE_ALL_DEALS},
    {&entity_activity, STORE_Q_RESIDENCY_ENQUEUE_ALL_ACTIVITIES},
    {&entity_task, STORE_Q_RESIDENCY_ENQUEUE_ALL_TASKS},
    {&entity_note, STORE_Q_RESIDENCY_ENQUEUE_ALL_NOTES},
    {&entity_consent, STORE_Q_RESIDENCY_ENQUEUE_ALL_CONSENTS},
    {NULL, 0},
};

/* Queues (outbox, ordinary lane) what each query of `list` selects; ?1 is
 * the parent's id (NULL for all_records). */
static int enqueue(const struct residency_db *r, const struct related *list, const char *id,
                   struct op_error *err)
{
    int64_t now = now_ms();
    for (size_t i = 0; list[i].e; i++) {
        sqlite3_stmt *st;
        int rc = sql_get_st(r->q, list[i].q, &st, err);
        if (rc < 0)
            return rc;
        if (id)
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, list[i].e->name, -1, SQLITE_STATIC);
        rc = sql_run(r->q, list[i].q, st, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int residency_enqueue_related(const struct residency_db *r, const struct entity_def *e,
                              const char *id, int deals_only, struct op_error *err)
{
    if (deals_only)
        return e == &entity_contact ? enqueue(r, erased_contact_children, id, err) : 0;
    if (e == &entity_contact)
        return enqueue(r, contact_children, id, err);
    if (e == &entity_organization)
        return enqueue(r, organization_children, id, err);
    if (e == &entity_deal)
        return enqueue(r, deal_children, id, err);
    return 0;
}

/* ---- voiding the spool ----------------------------------------------------- */

/* Refuses when a spool file of an unacknowledged segment exists and this
 * process could not truncate it. */
static int truncatable(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)ctx;
    const char *path = (const char *)sqlite3_column_text(st, 0);
    if (!path || access(path, F_OK) < 0 || access(path, W_OK) == 0)
        return 0;
    int e = errno;
    return op_error_set(err, -EACCES, "spool",
                        "%s holds values this change withholds and this user cannot "
                        "void it (%s); nothing was changed: run the command as the user "
                        "outpostd runs as",
                        path, strerror(e));
}

static int exec_all(const struct residency_db *r, const unsigned *ids, size_t n,
                    struct op_error *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = sql_exec(r->q, ids[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int residency_void_spool_tx(const struct residency_db *r, const char *why, int *n,
                            struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(r->q, STORE_Q_RESIDENCY_UNACKED_PATHS, &st, err);
    if (rc < 0)
        return rc;
    rc = sql_each(r->q, STORE_Q_RESIDENCY_UNACKED_PATHS, st, truncatable, NULL, err);
    if (rc < 0)
        return rc;
    rc = sql_get_st(r->q, STORE_Q_RESIDENCY_VOID_LIST, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, why ? why : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms());
    int voided = sql_run(r->q, STORE_Q_RESIDENCY_VOID_LIST, st, err);
    if (voided < 0)
        return voided;
    /* HQ cannot hold what went only into segments of which no byte left. */
    static const unsigned rest[] = {STORE_Q_RESIDENCY_VOID_FORGET_UNSENT,
                                    STORE_Q_RESIDENCY_VOID_DROP_SEGMENTS,
                                    STORE_Q_RESIDENCY_VOID_REWIND};
    rc = exec_all(r, rest, sizeof rest / sizeof rest[0], err);
    if (rc == 0 && n)
        *n = voided;
    return rc;
}

/* Empties, then removes, one voided file. Truncating first matters: an
 * uploader that has the file open keeps reading an unlinked file, but sees
 * a truncated one shrink and stops. */
static int void_file(const char *path, struct op_error *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return op_error_set(err, -errno, "spool", "cannot void %s: %s", path, strerror(errno));
    }
    int rc = 0;
    if (ftruncate(fd, 0) < 0 || fsync(fd) < 0)
        rc = op_error_set(err, -errno, "spool", "cannot truncate %s: %s", path, strerror(errno));
    close(fd);
    if (unlink(path) < 0 && errno != ENOENT && rc == 0)
        rc = op_error_set(err, -errno, "spool", "cannot delete %s: %s", path, strerror(errno));
    return rc;
}

/* Voids each listed file, going on past failures; *first keeps the first. */
static int void_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    int *first = ctx;
    const char *path = (const char *)sqlite3_column_text(st, 0);
    int r = path ? void_file(path, err) : 0;
    if (r < 0 && *first == 0)
        *first = r;
    return 0;
}

int residency_sweep(const struct residency_db *r, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(r->q, STORE_Q_RESIDENCY_VOIDED_PATHS, &st, err);
    if (rc < 0)
        return rc;
    int first = 0;
    rc = sql_each(r->q, STORE_Q_RESIDENCY_VOIDED_PATHS, st, void_row, &first, err);
    if (rc < 0)
        return rc;
    if (first < 0)
        return first;
    /* The files are gone: keep only what the uplink must terminate at HQ. */
    static const unsigned drop[] = {STORE_Q_RESIDENCY_SWEEP_DROP,
                                    STORE_Q_RESIDENCY_SWEEP_FORGET_PATHS};
    return exec_all(r, drop, sizeof drop / sizeof drop[0], err);
}

int residency_policy_changed_tx(const struct residency_db *r, const char *new_hash, const char *why,
                                int *voided, struct op_error *err)
{
    *voided = 0;
    char old[128] = "";
    sqlite3_stmt *st;
    int rc = sql_get_st(r->q, STORE_Q_RESIDENCY_POLICY_HASH, &st, err);
    if (rc < 0)
        return rc;
    rc = sql_step(r->q, STORE_Q_RESIDENCY_POLICY_HASH, st, err);
    if (rc == 0)
        rc = op_error_set(err, -EIO, NULL, "cannot read the sync state: no row");
    if (rc < 0)
        return rc;
    if (sqlite3_column_text(st, 0))
        snprintf(old, sizeof old, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (!strcmp(old, new_hash))
        return 0;
    if (old[0]) {
        rc = residency_void_spool_tx(r, why, NULL, err);
        if (rc == 0)
            rc = enqueue(r, all_records, NULL, err);
        if (rc < 0)
            return rc;
        *voided = 1;
    }
    rc = sql_get_st(r->q, STORE_Q_RESIDENCY_POLICY_HASH_SET, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, new_hash, -1, SQLITE_STATIC);
    rc = sql_run(r->q, STORE_Q_RESIDENCY_POLICY_HASH_SET, st, err);
    return rc < 0 ? rc : 0;
}

/* ---- what HQ may hold ------------------------------------------------------ */

int residency_queued(const struct residency_db *r, const char *entity, const char *id, int *out,
                     struct op_error *err)
{
    return exists(r, STORE_Q_RESIDENCY_QUEUED, entity, id, out, err);
}

int residency_hq_may_have(const struct residency_db *r, const char *entity, const char *id,
                          int *out, struct op_error *err)
{
    return exists(r, STORE_Q_RESIDENCY_HQ_MAY_HAVE, entity, id, out, err);
}

/* An open-addressing set of "entity\0id" keys. */
struct residency_sent {
    char **keys;
    size_t cap, n;
};

static uint64_t key_hash(const char *entity, const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = entity; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static int key_eq(const char *k, const char *entity, const char *id)
{
    size_t el = strlen(entity);
    return !strncmp(k, entity, el) && k[el] == '\0' && !strcmp(k + el + 1, id);
}

int residency_sent_new(struct residency_sent **out)
{
    struct residency_sent *rs = calloc(1, sizeof *rs);
    if (!rs)
        return -ENOMEM;
    rs->cap = 256;
    rs->keys = calloc(rs->cap, sizeof *rs->keys);
    if (!rs->keys) {
        free(rs);
        return -ENOMEM;
    }
    *out = rs;
    return 0;
}

void residency_sent_free(struct residency_sent *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->cap; i++)
        free(rs->keys[i]);
    free(rs->keys);
    free(rs);
}

static size_t slot_of(const struct residency_sent *rs, const char *entity, const char *id)
{
    size_t i = (size_t)(key_hash(entity, id) & (rs->cap - 1));
    while (rs->keys[i] && !key_eq(rs->keys[i], entity, id))
        i = (i + 1) & (rs->cap - 1);
    return i;
}

int residency_sent_has(const struct residency_sent *rs, const char *entity, const char *id)
{
    return rs->keys[slot_of(rs, entity, id)] != NULL;
}

int residency_sent_add(struct residency_sent *rs, const char *entity, const char *id)
{
    if ((rs->n + 1) * 2 > rs->cap) {
        struct residency_sent bigger = {calloc(rs->cap * 2, sizeof(char *)), rs->cap * 2, 0};
        if (!bigger.keys)
            return -ENOMEM;
        for (size_t i = 0; i < rs->cap; i++) {
            char *k = rs->keys[i];
            if (!k)
                continue;
            bigger.keys[slot_of(&bigger, k, k + strlen(k) + 1)] = k;
            bigger.n++;
        }
        free(rs->keys);
        *rs = bigger;
    }
    size_t i = slot_of(rs, entity, id);
    if (rs->keys[i])
        return 0;
    size_t el = strlen(entity), il = strlen(id);
    char *k = malloc(el + il + 2);
    if (!k)
        return -ENOMEM;
    memcpy(k, entity, el + 1);
    memcpy(k + el + 1, id, il + 1);
    rs->keys[i] = k;
    rs->n++;
    return 0;
}

int residency_sent_record(const struct residency_db *r, const struct residency_sent *rs,
                          uint64_t no, struct op_error *err)
{
    for (size_t i = 0; i < rs->cap; i++) {
        const char *k = rs->keys[i];
        if (!k)
            continue;
        sqlite3_stmt *st;
        int rc = sql_get_st(r->q, STORE_Q_RESIDENCY_SENT_RECORD, &st, err);
        if (rc < 0)
            return rc;
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k + strlen(k) + 1, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)no);
        rc = sql_run(r->q, STORE_Q_RESIDENCY_SENT_RECORD, st, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
