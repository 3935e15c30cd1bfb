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

#include "db.h"
#include "uuid7.h"
#include "sql.h"

/* The basis is policy_retention_age_field's: egress_expired applies the
 * same rule to a record before it leaves. */
static int by_occurred_at(const struct entity_def *e)
{
    return !strcmp(policy_retention_age_field(e), "occurred_at");
}

static int where_clause(const struct entity_def *e, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "FROM %s AS r WHERE r.%s < ?1 AND NOT EXISTS (SELECT 1 FROM audit_log AS a "
                     "WHERE a.entity = ?2 AND a.record_id = r.id AND a.action IN ('purge', "
                     "'erase'))",
                     e->table, by_occurred_at(e) ? "occurred_at" : "updated_hlc");
    return n < 0 || (size_t)n >= cap ? -E2BIG : 0;
}

static void bind_cutoff(sqlite3_stmt *st, const struct entity_def *e, uint64_t cutoff_ms,
                        const char *cutoff_iso)
{
    if (by_occurred_at(e))
        sqlite3_bind_text(st, 1, cutoff_iso, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(cutoff_ms << HLC_COUNTER_BITS));
    sqlite3_bind_text(st, 2, e->name, -1, SQLITE_STATIC);
}

static int count_due(struct store *s, const struct entity_def *e, uint64_t cutoff_ms,
                     const char *cutoff_iso, uint64_t *out, struct op_error *err)
{
    char where[512], sql[600];
    if (where_clause(e, where, sizeof where) < 0)
        return op_error_set(err, -E2BIG, NULL, "statement too long");
    snprintf(sql, sizeof sql, "SELECT count(*) %s", where);
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(db, rc, "cannot count records due for purging", err);
    bind_cutoff(st, e, cutoff_ms, cutoff_iso);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sql_fail(db, rc, "cannot count records due for purging", err);
}

/* Copies up to `limit` due ids into ids[]; returns how many. */
static int select_due(struct store *s, const struct entity_def *e, uint64_t cutoff_ms,
                      const char *cutoff_iso, char (*ids)[UUID_TEXT_LEN], unsigned limit,
                      struct op_error *err)
{
    char where[512], sql[640];
    if (where_clause(e, where, sizeof where) < 0)
        return op_error_set(err, -E2BIG, NULL, "statement too long");
    snprintf(sql, sizeof sql, "SELECT r.id %s ORDER BY r.id LIMIT ?3", where);
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sql_fail(db, rc, "cannot select records due for purging", err);
    bind_cutoff(st, e, cutoff_ms, cutoff_iso);
    sqlite3_bind_int64(st, 3, limit);
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (unsigned)n < limit)
        snprintf(ids[n++], UUID_TEXT_LEN, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sql_fail(db, rc, "cannot select records due for purging", err);
    return n;
}

int retention_compact_search(struct store *s, const struct entity_def *e, struct op_error *err)
{
    if (!(e->flags & ENTITY_SEARCH))
        return 0;
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO %s_fts (%s_fts) VALUES ('optimize')", e->table,
             e->table);
    char *msg = NULL;
    int rc = sqlite3_exec(store_db(s), sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        op_error_set(err, sql_errno(rc), NULL, "cannot compact the %s search index: %s", e->name,
                     msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return sql_errno(rc);
    }
    return 0;
}

int retention_secure_delete(struct store *s, int mode)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    char sql[40];
    int old = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA secure_delete", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            old = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    snprintf(sql, sizeof sql, "PRAGMA secure_delete = %d", mode);
    (void)sqlite3_exec(db, sql, NULL, NULL, NULL);
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
    int rc = 0;
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
            rc = count_due(s, rule->entity, cutoff_ms, it->cutoff, &it->purged, err);
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
            int n = select_due(s, rule->entity, cutoff_ms, it->cutoff, ids, want, err);
            if (n <= 0) {
                rc = n;
                break;
            }
            rc = purge_batch(s, rule->entity, ids, n, detail, err);
            if (rc < 0)
                break;
            it->purged += (uint64_t)n;
            report->total += (uint64_t)n;
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
        (void)sqlite3_wal_checkpoint_v2(store_db(s), NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    free(ids);
    return rc;
}
