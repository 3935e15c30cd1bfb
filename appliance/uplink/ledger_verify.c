/*
 * Anti-entropy at the node (docs/SYNC_PROTOCOL.md, "Anti-entropy"): the
 * checks asked for and run (sync_verify), the node's range set of what HQ
 * should hold, and the repairs. The invariant: a repair is only an outbox
 * row, queued as a change of the record would queue it, so what leaves is
 * what the segmenter and egress give now (a record restricted since leaves
 * as a withdraw tombstone, never in clear); the row and the check's result
 * commit together.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h" /* DB_OPEN_READONLY */
#include "projection_hash.h"
#include "range_digest.h"
#include "residency.h"

/* Steps the request query (bound): its RETURNING id into *id. */
static int insert_request(struct sql_cache *c, sqlite3_stmt *st, int64_t *id, struct op_error *err)
{
    int rc = sql_step(c, UPLINK_Q_LEDGER_VERIFY_REQUEST, st, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return op_error_set(err, -EIO, "sync_verify", "the check was not recorded");
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

int sync_ledger_verify_due(struct sync_ledger *l, int64_t interval_ms, int64_t jitter_ms,
                           int64_t started_ms, int64_t *id, struct op_error *err)
{
    *id = 0;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_PENDING, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int rc = sql_step(&l->q, UPLINK_Q_LEDGER_VERIFY_PENDING, st, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
    }
    if (interval_ms <= 0)
        return 0;
    st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_LAST_FINISHED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    rc = sql_step(&l->q, UPLINK_Q_LEDGER_VERIFY_LAST_FINISHED, st, err);
    if (rc < 0)
        return rc;
    int64_t last = rc ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    int64_t now = ledger_now(l);
    if (last <= 0)
        last = started_ms;
    if (now - last < interval_ms + jitter_ms)
        return 0;
    st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_REQUEST, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, "schedule", -1, SQLITE_STATIC);
    return insert_request(&l->q, st, id, err);
}

/* How the node tombstoned (entity, id): "erase" or "purge" into out, or
 * "" when it did not. */
static int tombstoned(struct sync_ledger *l, const char *entity, const char *id, char out[8],
                      struct op_error *err)
{
    out[0] = '\0';
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_TOMBSTONED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sql_step(&l->q, UPLINK_Q_LEDGER_VERIFY_TOMBSTONED, st, err);
    if (rc == 1) {
        ledger_copy_col(out, 8, st, 0);
        sqlite3_reset(st);
    }
    return rc < 0 ? rc : 0;
}

struct collect {
    struct sync_ledger *l;
    const struct entity_def *e;
    struct range_set *set;
    struct residency_sent *seen; /* records put in with data */
    int64_t now;
    struct op_error *err;
};

/* One record: what the segmenter would send of it now (ledger_segmenter.c,
 * add_row), hashed; nothing when it would send no data. */
static int collect_one(void *ctx, json_t *record)
{
    struct collect *c = ctx;
    struct sync_ledger *l = c->l;
    const char *id = json_string_value(json_object_get(record, "id"));
    if (!id)
        return 0;
    if (egress_expired(l->p, c->e, record, c->now) != 0)
        return 0; /* past retention: HQ should hold a purge tombstone, no data */
    json_t *del = json_object_get(record, "deleted");
    int has = 0, rc;
    if (json_is_true(del) || (json_is_integer(del) && json_integer_value(del))) {
        char how[8];
        rc = tombstoned(l, c->e->name, id, how, c->err);
        if (rc < 0 || how[0])
            return rc; /* erased or purged: HQ should hold its tombstone, no data */
        rc = residency_hq_may_have(store_residency(l->s), c->e->name, id, &has, c->err);
        if (rc < 0 || !has)
            return rc; /* deleted before HQ had it: HQ hears nothing of it */
    }
    enum residency_verdict v = RESIDENCY_KEEP;
    rc = residency_judge(store_residency(l->s), l->p, c->e, record, &v, c->err);
    if (rc < 0 || v == RESIDENCY_WITHHOLD)
        return rc;
    json_t *rec = record;
    if (v == RESIDENCY_DROP_CONTACT) {
        if (!(rec = json_deep_copy(record)))
            return op_error_set(c->err, -ENOMEM, NULL, "out of memory");
        residency_apply(v, rec);
    }
    struct egress_record *er = NULL;
    rc = egress_project(l->p, l->pkey, c->e, rec, &er, NULL, c->err);
    if (rec != record)
        json_decref(rec);
    if (rc < 0 || !er)
        return rc; /* withheld whole: HQ should hold a withdraw tombstone, no data */
    json_t *proj = json_loadb(egress_record_json(er), egress_record_len(er), 0, NULL);
    enum projection_state state =
        egress_record_op(er) == EGRESS_OP_DELETE ? PROJECTION_DELETED : PROJECTION_LIVE;
    unsigned char h[PROJECTION_HASH_BYTES];
    rc = proj ? projection_hash(c->e->name, state, id, proj, h) : -ENOMEM;
    int64_t version = (int64_t)json_integer_value(json_object_get(proj, "version"));
    json_decref(proj);
    egress_record_free(er);
    if (rc == 0)
        rc = range_set_add(c->set, c->e->name, id, version, h);
    if (rc == -EINVAL)
        return 0; /* an id with a newline: HQ cannot hold it either */
    if (rc == 0)
        rc = residency_sent_add(c->seen, c->e->name, id);
    if (rc < 0)
        return op_error_set(c->err, rc, NULL, "cannot hash %s %s", c->e->name, id);
    return 0;
}

/* The tombstones HQ acknowledged (egress_held rows of state gone), as
 * gone, for records not put in with data above: a tombstone is what the
 * node says HQ holds of an erased, purged or withdrawn record. */
static int collect_gone(struct collect *c)
{
    struct sync_ledger *l = c->l;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_HELD_GONE, c->err);
    if (!st)
        return c->err && c->err->code ? c->err->code : -EIO;
    int rc;
    while ((rc = sql_step(&l->q, UPLINK_Q_LEDGER_VERIFY_HELD_GONE, st, c->err)) == 1) {
        const char *entity = (const char *)sqlite3_column_text(st, 0);
        const char *id = (const char *)sqlite3_column_text(st, 1);
        const struct entity_def *e = entity ? entity_by_name(entity) : NULL;
        const void *h = sqlite3_column_blob(st, 3);
        if (!e || (e->flags & ENTITY_NODE_LOCAL) || !id ||
            sqlite3_column_bytes(st, 3) != PROJECTION_HASH_BYTES ||
            residency_sent_has(c->seen, e->name, id))
            continue;
        int arc = range_set_add(c->set, e->name, id, sqlite3_column_int64(st, 2), h);
        if (arc < 0 && arc != -EINVAL) {
            sqlite3_reset(st);
            return op_error_set(c->err, arc, NULL, "out of memory");
        }
    }
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

int sync_ledger_verify_set(struct sync_ledger *l, struct range_set **out, uint64_t *in_flight,
                           struct op_error *err)
{
    *out = NULL;
    *in_flight = 0;
    int64_t depth = 0, oldest = 0;
    uint64_t bytes = 0, segments = 0;
    int rc = outbox_stats(l->s, &depth, &oldest, err);
    if (rc == 0)
        rc = ledger_spool_usage(&l->q, &bytes, &segments, err);
    if (rc < 0)
        return rc;
    if (depth > 0 || segments > 0) {
        *in_flight = (uint64_t)depth + segments;
        return 0;
    }
    struct collect c = {.l = l, .now = ledger_now(l), .err = err};
    if ((rc = range_set_new(&c.set)) < 0 || (rc = residency_sent_new(&c.seen)) < 0) {
        range_set_free(c.set);
        return op_error_set(err, rc, NULL, "out of memory");
    }
    for (size_t i = 0; rc == 0 && entity_all[i]; i++) {
        if (entity_all[i]->flags & ENTITY_NODE_LOCAL)
            continue;
        c.e = entity_all[i];
        rc = store_each(l->s, c.e, 1, collect_one, &c, err);
    }
    if (rc == 0)
        rc = collect_gone(&c);
    residency_sent_free(c.seen);
    if (rc < 0) {
        range_set_free(c.set);
        return rc;
    }
    range_set_seal(c.set);
    *out = c.set;
    return 0;
}

/* The outbox query that queues one record of e again. */
static const struct {
    const struct entity_def *e;
    unsigned q, tomb, urgent;
} enqueue_one[] = {
    {&entity_contact, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_CONTACTS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_CONTACTS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_CONTACTS},
    {&entity_organization, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_ORGANIZATIONS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_ORGANIZATIONS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_ORGANIZATIONS},
    {&entity_contact_organization, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_CONTACT_ORGANIZATIONS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_CONTACT_ORGANIZATIONS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_CONTACT_ORGANIZATIONS},
    {&entity_deal, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_DEALS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_DEALS, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_DEALS},
    {&entity_activity, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_ACTIVITIES,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_ACTIVITIES,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_ACTIVITIES},
    {&entity_task, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_TASKS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_TASKS, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_TASKS},
    {&entity_note, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_NOTES,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_NOTES, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_NOTES},
    {&entity_consent, UPLINK_Q_LEDGER_VERIFY_ENQUEUE_ONE_CONSENTS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_TOMBSTONE_CONSENTS,
     UPLINK_Q_LEDGER_VERIFY_ENQUEUE_URGENT_CONSENTS},
};

/* Queues record (entity, id) again: as a change of it (tomb NULL; on
 * the urgent lane when urgent, for a withdrawal HQ lost), or as its
 * erase/purge tombstone (tomb "erase" or "purge"). *queued 1, or 0 when
 * the node has no such record. */
static int requeue(struct sync_ledger *l, const char *entity, const char *id, const char *tomb,
                   int urgent, int *queued, struct op_error *err)
{
    *queued = 0;
    for (size_t i = 0; i < sizeof enqueue_one / sizeof *enqueue_one; i++) {
        if (strcmp(enqueue_one[i].e->name, entity) != 0)
            continue;
        /* HQ does not hold what the node believed: without forgetting
         * that belief the segmenter would find the projection unchanged
         * and send nothing (docs/SYNC.md, field-level deltas) */
        int frc = ledger_deltas_forget(l, entity, id, err);
        if (frc < 0)
            return frc;
        unsigned q = tomb ? enqueue_one[i].tomb : urgent ? enqueue_one[i].urgent : enqueue_one[i].q;
        sqlite3_stmt *st = sql_get(&l->q, q, err);
        if (!st)
            return err && err->code ? err->code : -EIO;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, entity, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, ledger_now(l));
        if (tomb)
            sqlite3_bind_text(st, 4, tomb, -1, SQLITE_STATIC);
        int rc = sql_run(&l->q, q, st, err);
        if (rc < 0)
            return rc;
        *queued = rc > 0;
        return 0;
    }
    return 0; /* an entity the node does not sync: nothing to queue */
}

struct repair {
    struct sync_ledger *l;
    struct sync_verify_row *r;
    struct op_error *err;
    int noted;
    uint64_t adopted; /* HQ's tombstones learnt (not drift) */
};

/* Whether h (a side's hash on the wire) is the gone hash of (entity, id). */
static int is_gone(const char *entity, const char *id, int has, const unsigned char *h)
{
    unsigned char g[PROJECTION_HASH_BYTES];
    return has && projection_hash(entity, PROJECTION_GONE, id, NULL, g) == 0 &&
           !memcmp(g, h, RANGE_HASH_BYTES);
}

/* HQ holds a tombstone the node has no entry for: a tombstone acknowledged
 * before the node kept them (a node upgraded from before migration 0018),
 * or of a record the node neither sends nor remembers. HQ holds no data of
 * it, which is all a tombstone says: the node learns it (egress_held, as
 * gone) so that the next check compares it, and it is not drift. */
static int adopt_gone(struct repair *p, const struct range_drift *d)
{
    unsigned char g[PROJECTION_HASH_BYTES];
    int rc = projection_hash(d->entity, PROJECTION_GONE, d->id, NULL, g);
    if (rc < 0)
        return op_error_set(p->err, rc, NULL, "cannot hash %s %s", d->entity, d->id);
    sqlite3_stmt *st = sql_get(&p->l->q, UPLINK_Q_LEDGER_VERIFY_ADOPT_GONE, p->err);
    if (!st)
        return p->err && p->err->code ? p->err->code : -EIO;
    sqlite3_bind_text(st, 1, d->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, d->hq_version);
    sqlite3_bind_blob(st, 4, g, PROJECTION_HASH_BYTES, SQLITE_STATIC);
    rc = sql_run(&p->l->q, UPLINK_Q_LEDGER_VERIFY_ADOPT_GONE, st, p->err);
    if (rc < 0)
        return rc;
    p->adopted++;
    return 0;
}

static void note_reported(struct repair *p, const struct range_drift *d, const char *why)
{
    p->r->reported++;
    if (p->noted >= 3)
        return;
    size_t len = strlen(p->r->detail);
    snprintf(p->r->detail + len, sizeof p->r->detail - len, "%s%s %s %s", p->noted ? "; " : "",
             d->entity, d->id, why);
    p->noted++;
}

static int repair_one(void *ctx, const struct range_drift *d)
{
    struct repair *p = ctx;
    int queued = 0, has = 0, rc = 0, urgent = 0;
    char how[8] = "";
    switch (d->kind) {
    case RANGE_DRIFT_HQ_NEWER:
        note_reported(p, d, "is newer at HQ (was this node restored from an old backup?)");
        return 0;
    case RANGE_DRIFT_HQ_ONLY:
        if (is_gone(d->entity, d->id, d->has_hq_hash, d->hq_hash))
            return adopt_gone(p, d);
        /* an erasure or purge HQ never got (or lost): its tombstone again */
        if ((rc = tombstoned(p->l, d->entity, d->id, how, p->err)) < 0)
            return rc;
        if (how[0])
            break;
        rc = residency_hq_may_have(store_residency(p->l->s), d->entity, d->id, &has, p->err);
        if (rc < 0)
            return rc;
        if (!has) {
            note_reported(p, d, "is held by HQ but this node never sent it");
            return 0;
        }
        break;
    case RANGE_DRIFT_MISSING:
    case RANGE_DRIFT_DIFFERS:
        /* the node's entry is a tombstone HQ lost or replaced: the
         * erasure or purge again, or the withdrawal (a change of the
         * record, which the segmenter withdraws), urgent either way */
        if (is_gone(d->entity, d->id, d->has_node_hash, d->node_hash)) {
            if ((rc = tombstoned(p->l, d->entity, d->id, how, p->err)) < 0)
                return rc;
            urgent = 1;
        }
        break;
    }
    if ((rc = requeue(p->l, d->entity, d->id, how[0] ? how : NULL, urgent, &queued, p->err)) < 0)
        return rc;
    if (queued)
        p->r->resent++;
    else
        note_reported(p, d, "is held by HQ but not known at this node");
    return 0;
}

static int write_result(struct sync_ledger *l, int64_t id, const struct sync_verify_row *r,
                        struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_FINISH, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, ledger_now(l));
    sqlite3_bind_text(st, 3, r->result, -1, SQLITE_STATIC);
    const uint64_t n[] = {r->compared, r->hq_records, r->ranges, r->requests,
                          r->bytes,    r->drift,      r->resent, r->reported};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_int64(st, 4 + i, (sqlite3_int64)n[i]);
    sqlite3_bind_text(st, 12, r->detail, -1, SQLITE_STATIC);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_VERIFY_FINISH, st, err);
    if (rc == 0)
        return op_error_set(err, -ENOENT, "id", "check %" PRId64 " is not waiting to run", id);
    if (rc < 0)
        return rc;
    st = sql_get(&l->q, UPLINK_Q_LEDGER_VERIFY_TRIM, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    rc = sql_run(&l->q, UPLINK_Q_LEDGER_VERIFY_TRIM, st, err);
    return rc < 0 ? rc : 0;
}

int sync_ledger_verify_finish(struct sync_ledger *l, int64_t id, const struct range_walk *w,
                              struct sync_verify_row *r, struct op_error *err)
{
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    if (w) {
        struct range_walk_stats s;
        range_walk_stats(w, &s);
        r->compared = s.compared;
        r->hq_records = s.hq_records;
        r->ranges = s.ranges;
        r->requests = s.requests;
        r->bytes = s.bytes_out + s.bytes_in;
        r->drift = s.drift;
        r->resent = r->reported = 0;
        r->detail[0] = '\0';
        struct repair p = {.l = l, .r = r, .err = err};
        rc = range_walk_each_drift(w, repair_one, &p);
        /* HQ's tombstones learnt are not drift (adopt_gone) */
        r->drift -= p.adopted < r->drift ? p.adopted : r->drift;
        if (p.adopted && rc == 0) {
            size_t len = strlen(r->detail);
            snprintf(r->detail + len, sizeof r->detail - len, "%s%llu tombstones HQ holds learnt",
                     len ? "; " : "", (unsigned long long)p.adopted);
        }
        snprintf(r->result, sizeof r->result, "%s",
                 !r->drift     ? "agree"
                 : r->reported ? "drift"
                               : "repaired");
    }
    if (rc == 0)
        rc = write_result(l, id, r, err);
    return ledger_end_tx(l, rc, err);
}

static void read_row(sqlite3_stmt *st, struct sync_verify_row *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(st, 0);
    o->requested_ms = sqlite3_column_int64(st, 1);
    ledger_copy_col(o->origin, sizeof o->origin, st, 2);
    o->finished_ms = sqlite3_column_int64(st, 3);
    ledger_copy_col(o->result, sizeof o->result, st, 4);
    uint64_t *n[] = {&o->compared, &o->hq_records, &o->ranges, &o->requests,
                     &o->bytes,    &o->drift,      &o->resent, &o->reported};
    for (int i = 0; i < 8; i++)
        *n[i] = (uint64_t)sqlite3_column_int64(st, 5 + i);
    ledger_copy_col(o->detail, sizeof o->detail, st, 13);
}

/* Opens db_path (read-only or not) with the uplink's queries bound. */
static int open_db(const char *db_path, unsigned flags, struct store **s, struct sql_cache *c,
                   struct op_error *err)
{
    int rc = store_open(db_path, flags, s, err);
    if (rc < 0)
        return rc;
    if ((rc = store_queries_bind(*s, c, &uplink_queries, err)) < 0) {
        store_close(*s);
        *s = NULL;
    }
    return rc;
}

int sync_ledger_verify_request_db(const char *db_path, int64_t *id, struct op_error *err)
{
    struct store *s = NULL;
    struct sql_cache c;
    int rc = open_db(db_path, 0, &s, &c, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&c, UPLINK_Q_LEDGER_VERIFY_REQUEST, err);
    if (!st)
        rc = err && err->code ? err->code : -EIO;
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, ledger_real_clock(NULL));
        sqlite3_bind_text(st, 2, "cli", -1, SQLITE_STATIC);
        rc = insert_request(&c, st, id, err);
    }
    sql_cache_close(&c);
    store_close(s);
    return rc;
}

int sync_ledger_verify_get_db(const char *db_path, int64_t id, struct sync_verify_row *out,
                              struct op_error *err)
{
    struct store *s = NULL;
    struct sql_cache c;
    int rc = open_db(db_path, DB_OPEN_READONLY, &s, &c, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&c, UPLINK_Q_LEDGER_VERIFY_GET, err);
    if (!st)
        rc = err && err->code ? err->code : -EIO;
    if (rc == 0) {
        if (id > 0)
            sqlite3_bind_int64(st, 1, id);
        else
            sqlite3_bind_null(st, 1);
        rc = sql_step(&c, UPLINK_Q_LEDGER_VERIFY_GET, st, err);
        if (rc == 1) {
            read_row(st, out);
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "sync_verify", "no such check");
        }
    }
    sql_cache_close(&c);
    store_close(s);
    return rc;
}
