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

#include <sqlite3.h>

#include "db.h"
#include "egress.h"
#include "policy.h"
#include "store.h"
#include "sql.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *what,
                struct op_error *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return sql_fail(db, rc, what, err);
    }
    return 0;
}

/* Steps a statement that returns no rows and finalizes it. */
static int run(sqlite3 *db, sqlite3_stmt *st, const char *what, struct op_error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(db, rc, what, err);
}

/* *out = 1 when `sql` (a SELECT 1 ... with ?1 and, if b is not NULL, ?2)
 * finds a row. */
static int exists(struct store *s, const char *sql, const char *a, const char *b, int *out,
                  const char *what, struct op_error *err)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, what, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sql_fail(db, rc, what, err);
    *out = rc == SQLITE_ROW;
    return 0;
}

/* ---- relations ------------------------------------------------------------- */

static const char *ref_of(json_t *rec, const char *field)
{
    const char *v = json_string_value(json_object_get(rec, field));
    return v && *v ? v : NULL;
}

static int contact_erased(struct store *s, const char *id, int *out, struct op_error *err)
{
    return exists(s, "SELECT 1 FROM erasures WHERE subject_id = ?1 LIMIT 1", id, NULL, out,
                  "cannot read erasures", err);
}

/* Whether parent `id` of pe withholds what is about it. */
static int parent_withheld(struct store *s, const struct policy *p, const struct entity_def *pe,
                           const char *id, int *out, struct op_error *err)
{
    *out = 0;
    if (pe == &entity_contact) {
        int rc = contact_erased(s, id, out, err);
        if (rc < 0 || *out)
            return rc;
    }
    json_t *rec = NULL;
    int rc = store_get(s, pe, id, STORE_INCLUDE_DELETED | STORE_IGNORE_VIEWER, &rec, err);
    if (rc == -ENOENT)
        return 0; /* a dangling reference withholds nothing */
    if (rc < 0)
        return rc;
    if (pe == &entity_deal) {
        enum residency_verdict v;
        rc = residency_judge(s, p, pe, rec, &v, err);
        *out = rc == 0 && v == RESIDENCY_WITHHOLD;
    } else {
        *out = egress_withheld(p, pe, rec);
    }
    json_decref(rec);
    return rc;
}

int residency_judge(struct store *s, const struct policy *p, const struct entity_def *e,
                    json_t *rec, enum residency_verdict *out, struct op_error *err)
{
    *out = RESIDENCY_KEEP;
    if (egress_withheld(p, e, rec)) {
        *out = RESIDENCY_WITHHOLD;
        return 0;
    }
    if (e == &entity_contact || e == &entity_organization || e == &entity_user)
        return 0;
    int w = 0, rc;
    const char *org = ref_of(rec, "organization_id");
    if (org && entity_field(e, "organization_id")) {
        rc = parent_withheld(s, p, &entity_organization, org, &w, err);
        if (rc < 0)
            return rc;
        if (w) {
            *out = RESIDENCY_WITHHOLD;
            return 0;
        }
    }
    const char *deal = ref_of(rec, "deal_id");
    if (deal && entity_field(e, "deal_id")) {
        rc = parent_withheld(s, p, &entity_deal, deal, &w, err);
        if (rc < 0)
            return rc;
        if (w) {
            *out = RESIDENCY_WITHHOLD;
            return 0;
        }
    }
    const char *contact = ref_of(rec, "contact_id");
    if (contact && entity_field(e, "contact_id")) {
        rc = parent_withheld(s, p, &entity_contact, contact, &w, err);
        if (rc < 0)
            return rc;
        if (w)
            /* A deal is the organization's business record: it stays, without
             * the person. Everything else about the person is theirs alone. */
            *out = (e == &entity_deal && org) ? RESIDENCY_DROP_CONTACT : RESIDENCY_WITHHOLD;
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

/* The children of each parent: "entity|table|column". */
static const char *const contact_children[] = {
    "contact_organization|contact_organizations|contact_id",
    "deal|deals|contact_id",
    "activity|activities|contact_id",
    "task|tasks|contact_id",
    "note|notes|contact_id",
    "consent|consents|contact_id",
    NULL,
};
static const char *const organization_children[] = {
    "contact_organization|contact_organizations|organization_id",
    "deal|deals|organization_id",
    "activity|activities|organization_id",
    "task|tasks|organization_id",
    "note|notes|organization_id",
    NULL,
};
static const char *const deal_children[] = {
    "activity|activities|deal_id",
    "task|tasks|deal_id",
    "note|notes|deal_id",
    NULL,
};

/* Queues the children named in `list` whose `column` matches: directly
 * (?1 = the parent id), or through the parent's deals (via_deals: the
 * column is deal_id and ?1 is the contact or organization id, `dcol` the
 * deals' column for it). */
static int enqueue(struct store *s, const char *spec, const char *dcol, const char *id,
                   struct op_error *err)
{
    char entity[32], table[32], column[32];
    if (sscanf(spec, "%31[^|]|%31[^|]|%31s", entity, table, column) != 3)
        return op_error_set(err, -EINVAL, NULL, "bad relation spec %s", spec);
    char sql[640];
    /* Names come from the constant tables above, never from input. */
    int n;
    if (dcol)
        n = snprintf(sql, sizeof sql,
                     "INSERT INTO outbox (entity, record_id, version, hlc, op, priority, "
                     "created_ms) SELECT '%s', id, version, updated_hlc, CASE deleted WHEN 1 "
                     "THEN 'delete' ELSE 'upsert' END, 2, ?2 FROM %s WHERE %s IN "
                     "(SELECT id FROM deals WHERE %s = ?1)",
                     entity, table, column, dcol);
    else
        n = snprintf(sql, sizeof sql,
                     "INSERT INTO outbox (entity, record_id, version, hlc, op, priority, "
                     "created_ms) SELECT '%s', id, version, updated_hlc, CASE deleted WHEN 1 "
                     "THEN 'delete' ELSE 'upsert' END, 2, ?2 FROM %s WHERE %s = ?1",
                     entity, table, column);
    if (n < 0 || (size_t)n >= sizeof sql)
        return op_error_set(err, -E2BIG, NULL, "statement too long");
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = prep(db, sql, &st, "cannot queue related records", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms());
    return run(db, st, "cannot queue related records", err);
}

int residency_enqueue_related(struct store *s, const struct entity_def *e, const char *id,
                              int deals_only, struct op_error *err)
{
    const char *const *list = NULL;
    const char *dcol = NULL;
    if (deals_only) {
        static const char *const deals[] = {"deal|deals|contact_id", NULL};
        if (e != &entity_contact)
            return 0;
        list = deals;
    } else if (e == &entity_contact) {
        list = contact_children;
        dcol = "contact_id";
    } else if (e == &entity_organization) {
        list = organization_children;
        dcol = "organization_id";
    } else if (e == &entity_deal) {
        list = deal_children;
    } else {
        return 0;
    }
    for (size_t i = 0; list[i]; i++) {
        int rc = enqueue(s, list[i], NULL, id, err);
        if (rc < 0)
            return rc;
    }
    if (dcol && !deals_only)
        for (size_t i = 0; deal_children[i]; i++) {
            int rc = enqueue(s, deal_children[i], dcol, id, err);
            if (rc < 0)
                return rc;
        }
    return 0;
}

/* ---- voiding the spool ----------------------------------------------------- */

/* Refuses when a spool file of an unacknowledged segment exists and this
 * process could not truncate it. */
static int check_truncatable(struct store *s, struct op_error *err)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT path FROM sync_segments WHERE state IN (0, 1)", &st,
                  "cannot read the segment table", err);
    if (rc < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(st, 0);
        if (!path || access(path, F_OK) < 0)
            continue;
        if (access(path, W_OK) < 0) {
            int e = errno;
            rc = op_error_set(err, -EACCES, "spool",
                              "%s holds values this change withholds and this user cannot "
                              "void it (%s); nothing was changed: run the command as the user "
                              "outpostd runs as",
                              path, strerror(e));
            sqlite3_finalize(st);
            return rc;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the segment table", err);
    return 0;
}

int residency_void_spool_tx(struct store *s, const char *why, int *n, struct op_error *err)
{
    int rc = check_truncatable(s, err);
    if (rc < 0)
        return rc;
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    rc = prep(db,
              "INSERT OR REPLACE INTO spool_voided (no, path, upload_url, reason, voided_ms) "
              "SELECT no, path, upload_url, ?1, ?2 FROM sync_segments WHERE state IN (0, 1)",
              &st, "cannot void the spool", err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, why ? why : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms());
    rc = run(db, st, "cannot void the spool", err);
    if (rc < 0)
        return rc;
    int voided = sqlite3_changes(db);
    /* HQ cannot hold what went only into segments of which no byte left. */
    rc = prep(db,
              "DELETE FROM egress_sent WHERE segment_no IN (SELECT no FROM sync_segments "
              "WHERE state = 0 AND upload_url = '')",
              &st, "cannot void the spool", err);
    if (rc == 0)
        rc = run(db, st, "cannot void the spool", err);
    if (rc == 0)
        rc = prep(db, "DELETE FROM sync_segments WHERE state IN (0, 1)", &st,
                  "cannot void the spool", err);
    if (rc == 0)
        rc = run(db, st, "cannot void the spool", err);
    if (rc == 0)
        rc = prep(db,
                  "UPDATE sync_state SET segmented_urgent = acked_urgent, segmented_ordinary = "
                  "acked_ordinary, spool_epoch = spool_epoch + 1, spool_full = 0 WHERE id = 1",
                  &st, "cannot void the spool", err);
    if (rc == 0)
        rc = run(db, st, "cannot void the spool", err);
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

int residency_sweep(struct store *s, struct op_error *err)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = prep(db, "SELECT path FROM spool_voided WHERE path != ''", &st,
                  "cannot read the voided segments", err);
    if (rc < 0)
        return rc;
    int first = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(st, 0);
        int r = path ? void_file(path, err) : 0;
        if (r < 0 && first == 0)
            first = r;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sql_fail(db, rc, "cannot read the voided segments", err);
    if (first < 0)
        return first;
    /* The files are gone: keep only what the uplink must terminate at HQ. */
    rc = prep(db, "DELETE FROM spool_voided WHERE upload_url = ''", &st,
              "cannot drop voided segments", err);
    if (rc == 0)
        rc = run(db, st, "cannot drop voided segments", err);
    if (rc == 0)
        rc = prep(db, "UPDATE spool_voided SET path = '' WHERE path != ''", &st,
                  "cannot drop voided segments", err);
    if (rc == 0)
        rc = run(db, st, "cannot drop voided segments", err);
    return rc;
}

/* Queues every record of every entity that syncs again (ordinary lane). */
static int enqueue_all(struct store *s, struct op_error *err)
{
    sqlite3 *db = store_db(s);
    for (size_t i = 0; entity_all[i]; i++) {
        const struct entity_def *e = entity_all[i];
        if (e->flags & ENTITY_NODE_LOCAL)
            continue;
        char sql[512];
        /* e->name and e->table are the descriptors' constants. */
        int n = snprintf(sql, sizeof sql,
                         "INSERT INTO outbox (entity, record_id, version, hlc, op, priority, "
                         "created_ms) SELECT '%s', id, version, updated_hlc, CASE deleted WHEN 1 "
                         "THEN 'delete' ELSE 'upsert' END, 2, ?1 FROM %s",
                         e->name, e->table);
        if (n < 0 || (size_t)n >= sizeof sql)
            return op_error_set(err, -E2BIG, NULL, "statement too long");
        sqlite3_stmt *st;
        int rc = prep(db, sql, &st, "cannot queue records again", err);
        if (rc < 0)
            return rc;
        sqlite3_bind_int64(st, 1, now_ms());
        rc = run(db, st, "cannot queue records again", err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int residency_policy_changed(struct store *s, const char *new_hash, const char *why, int *changed,
                             struct op_error *err)
{
    if (changed)
        *changed = 0;
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    char old[128] = "";
    rc = prep(db, "SELECT policy_hash FROM sync_state WHERE id = 1", &st,
              "cannot read the sync state", err);
    if (rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(old, sizeof old, "%s", (const char *)sqlite3_column_text(st, 0));
        else if (r != SQLITE_ROW)
            rc = sql_fail(db, r, "cannot read the sync state", err);
        sqlite3_finalize(st);
    }
    int act = rc == 0 && old[0] && strcmp(old, new_hash) != 0;
    if (act) {
        rc = residency_void_spool_tx(s, why, NULL, err);
        if (rc == 0)
            rc = enqueue_all(s, err);
    }
    if (rc == 0 && strcmp(old, new_hash) != 0) {
        rc = prep(db, "UPDATE sync_state SET policy_hash = ?1 WHERE id = 1", &st,
                  "cannot record the policy hash", err);
        if (rc == 0) {
            sqlite3_bind_text(st, 1, new_hash, -1, SQLITE_STATIC);
            rc = run(db, st, "cannot record the policy hash", err);
        }
    }
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    rc = store_commit(s, err);
    if (rc < 0)
        return rc;
    if (act && changed)
        *changed = 1;
    return act ? residency_sweep(s, err) : 0;
}

/* ---- what HQ may hold ------------------------------------------------------ */

int residency_queued(struct store *s, const char *entity, const char *id, int *out,
                     struct op_error *err)
{
    return exists(s, "SELECT 1 FROM outbox WHERE entity = ?1 AND record_id = ?2 LIMIT 1", entity,
                  id, out, "cannot read the outbox", err);
}

int residency_hq_may_have(struct store *s, const char *entity, const char *id, int *out,
                          struct op_error *err)
{
    return exists(s, "SELECT 1 FROM egress_sent WHERE entity = ?1 AND record_id = ?2", entity, id,
                  out, "cannot read egress_sent", err);
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

int residency_sent_record(struct store *s, const struct residency_sent *rs, uint64_t no,
                          struct op_error *err)
{
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st;
    int rc = prep(db,
                  "INSERT OR IGNORE INTO egress_sent (entity, record_id, segment_no) "
                  "VALUES (?1, ?2, ?3)",
                  &st, "cannot record what HQ may hold", err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < rs->cap && rc == 0; i++) {
        const char *k = rs->keys[i];
        if (!k)
            continue;
        sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, k + strlen(k) + 1, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)no);
        int r = sqlite3_step(st);
        if (r != SQLITE_DONE)
            rc = sql_fail(db, r, "cannot record what HQ may hold", err);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc;
}
