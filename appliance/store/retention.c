/*
 * Retention purges; see retention.h. Candidates are selected by id in
 * batches with their ids copied out before any write, so no statement is
 * open across a purge; a record already purged or erased (it has such an
 * audit row) is skipped, which lets a tombstone that still held text be
 * purged once and never again.
 */
#include "retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuid7.h"
#include "sql.h"
#include "store_queries.h"

/* The basis is policy_retention_age_field's: egress_expired applies the
 * same rule to a record before it leaves. */
static int by_occurred_at(const struct entity_def *e)
{
    return !strcmp(policy_retention_age_field(e), "occurred_at");
}

/* Each entity's queries in sql/retention.sql (SQLite cannot bind a table
 * name); users are never purged. */
static const struct due_queries {
    const struct entity_def *e;
    unsigned count, select;
} due_queries[] = {
    {&entity_contact, STORE_Q_RETENTION_COUNT_DUE_CONTACTS, STORE_Q_RETENTION_SELECT_DUE_CONTACTS},
    {&entity_organization, STORE_Q_RETENTION_COUNT_DUE_ORGANIZATIONS,
     STORE_Q_RETENTION_SELECT_DUE_ORGANIZATIONS},
    {&entity_contact_organization, STORE_Q_RETENTION_COUNT_DUE_CONTACT_ORGANIZATIONS,
     STORE_Q_RETENTION_SELECT_DUE_CONTACT_ORGANIZATIONS},
    {&entity_deal, STORE_Q_RETENTION_COUNT_DUE_DEALS, STORE_Q_RETENTION_SELECT_DUE_DEALS},
    {&entity_activity, STORE_Q_RETENTION_COUNT_DUE_ACTIVITIES,
     STORE_Q_RETENTION_SELECT_DUE_ACTIVITIES},
    {&entity_task, STORE_Q_RETENTION_COUNT_DUE_TASKS, STORE_Q_RETENTION_SELECT_DUE_TASKS},
    {&entity_note, STORE_Q_RETENTION_COUNT_DUE_NOTES, STORE_Q_RETENTION_SELECT_DUE_NOTES},
    {&entity_consent, STORE_Q_RETENTION_COUNT_DUE_CONSENTS, STORE_Q_RETENTION_SELECT_DUE_CONSENTS},
};

/* The entities with a search index (ENTITY_SEARCH). */
static const struct store_entity_query search_queries[] = {
    {&entity_contact, STORE_Q_RETENTION_COMPACT_CONTACTS},
    {&entity_organization, STORE_Q_RETENTION_COMPACT_ORGANIZATIONS},
    {NULL, 0},
};

static const struct due_queries *due_for(const struct entity_def *e, struct op_error *err)
{
    for (size_t i = 0; i < sizeof due_queries / sizeof due_queries[0]; i++)
        if (due_queries[i].e == e)
            return &due_queries[i];
    op_error_set(err, -EINVAL, NULL, "%s records cannot be purged", e->name);
    return NULL;
}

/* The count (select = 0) or select query of e's due records, with the
 * cutoff bound as ?1 and the entity's name as ?2. */
static int due_stmt(struct sql_cache *c, const struct entity_def *e, int select, uint64_t cutoff_ms,
                    const char *cutoff_iso, sqlite3_stmt **st, struct op_error *err)
{
    const struct due_queries *q = due_for(e, err);
    if (!q)
        return -EINVAL;
    int rc = sql_get_st(c, select ? q->select : q->count, st, err);
    if (rc < 0)
        return rc;
    if (by_occurred_at(e))
        sqlite3_bind_text(*st, 1, cutoff_iso, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(*st, 1, (sqlite3_int64)(cutoff_ms << HLC_COUNTER_BITS));
    sqlite3_bind_text(*st, 2, e->name, -1, SQLITE_STATIC);
    return 0;
}

static int count_due(struct sql_cache *c, const struct entity_def *e, uint64_t cutoff_ms,
                     const char *cutoff_iso, uint64_t *out, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = due_stmt(c, e, 0, cutoff_ms, cutoff_iso, &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    rc = rc == SQLITE_ROW ? 0 : sql_fail(c->db, rc, "cannot count records due for purging", err);
    sqlite3_reset(st);
    return rc;
}

/* Copies up to `limit` due ids into ids[]; returns how many. */
static int select_due(struct sql_cache *c, const struct entity_def *e, uint64_t cutoff_ms,
                      const char *cutoff_iso, char (*ids)[UUID_TEXT_LEN], unsigned limit,
                      struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = due_stmt(c, e, 1, cutoff_ms, cutoff_iso, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 3, limit);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (unsigned)n < limit)
        snprintf(ids[n++], UUID_TEXT_LEN, "%s", (const char *)sqlite3_column_text(st, 0));
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        n = sql_fail(c->db, rc, "cannot select records due for purging", err);
    sqlite3_reset(st);
    return n;
}

int retention_compact_search(struct store *s, const struct entity_def *e, struct op_error *err)
{
    if (!(e->flags & ENTITY_SEARCH))
        return 0;
    char what[96];
    snprintf(what, sizeof what, "cannot compact the %s search index", e->name);
    int id = store_entity_query(search_queries, e);
    if (id < 0)
        return op_error_set(err, -EINVAL, NULL, "%s: no such index", what);
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st;
    rc = sql_get_st(&c, id, &st, err);
    if (rc == 0)
        rc = sql_run_what(&c, st, what, err);
    sql_cache_close(&c);
    return rc;
}

int retention_secure_delete(struct store *s, int mode)
{
    /* A cache for this call alone: the PRAGMA takes effect when it is
     * prepared (see sql/retention.sql). */
    struct sql_cache c;
    if (store_queries_bind(s, &c, &store_queries, NULL) < 0)
        return -1;
    int old = -1;
    sqlite3_stmt *st = sql_get(&c, STORE_Q_RETENTION_SECURE_DELETE, NULL);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        old = sqlite3_column_int(st, 0);
    static const unsigned set[] = {STORE_Q_RETENTION_SECURE_DELETE_OFF,
                                   STORE_Q_RETENTION_SECURE_DELETE_ON,
                                   STORE_Q_RETENTION_SECURE_DELETE_FAST};
    if (mode >= 0 && mode <= 2)
        (void)sql_exec(&c, set[mode], NULL);
    sql_cache_close(&c);
    return old;
}

static int purge_batch(struct store *s, const struct entity_def *e, char (*ids)[UUID_TEXT_LEN],
                       int n, const char *detail, struct op_error *err)
{
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++)
        rc = store_purge(s, e, ids[i], "purge", detail, err);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    return store_commit(s, err);
}

int retention_run(struct store *s, const struct policy *p, uint64_t now_ms,
                  const struct retention_options *opt, struct retention_report *report,
                  struct op_error *err)
{
    struct retention_options dflt = {0};
    if (!opt)
        opt = &dflt;
    unsigned batch = opt->batch ? opt->batch : RETENTION_BATCH_DEFAULT;
    if (batch > RETENTION_BATCH_MAX)
        batch = RETENTION_BATCH_MAX;
    memset(report, 0, sizeof *report);
    if (!p)
        return 0;
    char(*ids)[UUID_TEXT_LEN] = calloc(batch, sizeof *ids);
    if (!ids)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0) {
        free(ids);
        return rc;
    }
    int saved = opt->dry_run ? -1 : retention_secure_delete(s, 1);
    for (size_t r = 0; r < p->nretention && rc == 0; r++) {
        const struct policy_retention *rule = &p->retention[r];
        if (rule->entity == &entity_user || report->nitems == RETENTION_MAX_RULES)
            continue;
        struct retention_item *it = &report->items[report->nitems++];
        it->entity = rule->entity;
        it->days = rule->days;
        it->age_by = policy_retention_age_field(rule->entity);
        snprintf(it->basis, sizeof it->basis, "%s", rule->basis);
        uint64_t cutoff_ms = policy_retention_cutoff_ms(rule, now_ms);
        hlc_format_iso((hlc_stamp)cutoff_ms << HLC_COUNTER_BITS, it->cutoff);
        if (opt->dry_run) {
            rc = count_due(&c, rule->entity, cutoff_ms, it->cutoff, &it->purged, err);
            report->total += it->purged;
            continue;
        }
        json_t *d = json_pack("{s:s, s:i, s:s}", "reason", "retention", "days",
                              (json_int_t)rule->days, "basis", rule->basis);
        char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
        json_decref(d);
        if (!detail) {
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
            break;
        }
        for (;;) {
            unsigned want = batch;
            if (opt->max_records) {
                if (report->total >= opt->max_records) {
                    /* maybe nothing is left; the caller's next run finds out */
                    report->more = 1;
                    break;
                }
                if (opt->max_records - report->total < want)
                    want = (unsigned)(opt->max_records - report->total);
            }
            int n = select_due(&c, rule->entity, cutoff_ms, it->cutoff, ids, want, err);
            if (n <= 0) {
                rc = n;
                break;
            }
            rc = purge_batch(s, rule->entity, ids, n, detail, err);
            if (rc < 0)
                break;
            it->purged += (uint64_t)n;
            report->total += (uint64_t)n;
            if (opt->on_progress)
                opt->on_progress(opt->ctx, report->total);
            if ((unsigned)n < want)
                break;
        }
        free(detail);
        if (rc == 0 && it->purged)
            rc = retention_compact_search(s, rule->entity, err);
    }
    if (saved >= 0)
        (void)retention_secure_delete(s, saved);
    /* The WAL still holds the frames that once wrote the purged text;
     * truncating it drops them. Best effort: readers (outpostd's workers)
     * may keep part of it until the next checkpoint. */
    if (rc == 0 && report->total && !opt->dry_run)
        (void)sqlite3_wal_checkpoint_v2(c.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    sql_cache_close(&c);
    free(ids);
    return rc;
}
