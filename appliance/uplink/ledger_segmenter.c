/*
 * The segmenter (docs/SYNC.md, "The sync ledger", Segmenting): cuts the
 * outbox past the segmented cursor into one segment under the policy in
 * force. Each record is judged (residency_judge), projected
 * (egress_project) or told as a tombstone only to an HQ that may hold it,
 * and streamed into the segment writer until the target size; the segment
 * stops only where each lane's sent part stays a prefix. The invariants:
 * the file is renamed into place before its row and the new cursor commit
 * in one transaction, and that transaction commits only if no voiding
 * happened while the segment was cut (spool_epoch unchanged;
 * docs/EGRESS.md, "In time"). Each record goes through the cut
 * (ledger_deltas.c): nothing when HQ holds the same projection, a patch,
 * or whole; the hashes of what the segment carries commit in its
 * transaction, and a cut that carries nothing while no segment waits
 * consumes its outbox rows without a segment. Memory is bounded by one
 * batch of outbox rows and the hashes of one segment's records, whatever
 * the backlog. Aggregate requests from HQ's mailbox are
 * answered in the segment (after disclosure control, as egress records of
 * their own) and marked answered, with their egress ledger rows, in the
 * same transaction (docs/AGGREGATES.md); a refusal is an egress ledger row
 * too (no cells, the reason). A request whose answer went into a segment
 * that was voided before it was acknowledged (the policy changed) is
 * pending again before the next cut, so it is answered anew under the
 * policy in force without HQ asking again.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aggregate.h"
#include "entity.h"
#include "node_policy.h"
#include "residency.h"
#include "segment.h"
#include "timefmt.h"

static int set_spool_full(struct sync_ledger *l, int full, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_SET_SPOOL_FULL, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int(st, 1, full);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_SEGMENTER_SET_SPOOL_FULL, st, err);
    return rc < 0 ? rc : 0;
}

/* Whether HQ may hold the record: put in a recorded segment, or in the
 * one being cut (which HQ applies in order). */
static int hq_may_have(struct sync_ledger *l, const struct residency_sent *sent, const char *entity,
                       const char *id, int *out, struct op_error *err)
{
    if (residency_sent_has(sent, entity, id)) {
        *out = 1;
        return 0;
    }
    return residency_hq_may_have(store_residency(l->s), entity, id, out, err);
}

/* Puts er into the segment through the cut (nothing, a patch or whole),
 * and counts the projection's values; `one` is what egress_project did for
 * this record (zero for a tombstone). A record that sent nothing did not
 * leave: it counts in records, not in records_out. */
static int put(struct sync_ledger *l, struct ledger_cut *cut, struct segment_writer *w,
               struct egress_record *er, struct egress_counts *one, struct egress_counts *counts,
               struct op_error *err)
{
    int sent = 0;
    int rc = ledger_cut_add(l, cut, w, er, &sent, err);
    egress_record_free(er);
    if (rc < 0)
        return rc;
    if (!sent && one->records_out)
        one->records_out = 0;
    egress_counts_add(counts, one);
    return 0;
}

/* Adds one outbox row's record (or tombstone) to the segment. A tombstone
 * (erase, purge, withdraw, and the delete of a record) goes only for a
 * record HQ may hold: of a record it never received, HQ hears nothing.
 * Whatever goes, goes through the cut: nothing when HQ holds the same
 * projection, else a patch or the whole record (ledger_deltas.c). */
static int add_row(struct sync_ledger *l, struct segment_writer *w, struct ledger_cut *cut,
                   const struct outbox_row *r, struct residency_sent *sent,
                   struct egress_counts *counts, struct op_error *err)
{
    const struct entity_def *e = entity_by_name(r->entity);
    if (!e)
        return op_error_set(err, -EPROTO, "entity", "outbox row %lld: unknown entity '%s'",
                            (long long)r->seq, r->entity);
    struct egress_record *er = NULL;
    struct egress_counts one;
    memset(&one, 0, sizeof one);
    int rc, has = 0;
    if (!strcmp(r->op, "erase") || !strcmp(r->op, "purge")) {
        rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
        if (rc < 0 || !has)
            return rc;
        enum egress_op op = r->op[0] == 'e' ? EGRESS_OP_ERASE : EGRESS_OP_PURGE;
        rc = egress_tombstone(l->p, e, r->record_id, r->version, op, &er, err);
        if (rc < 0)
            return rc;
    } else {
        json_t *rec = NULL;
        char phone_key[PHONE_E164_MAX];
        rc = store_get_keyed(l->s, e, r->record_id, STORE_INCLUDE_DELETED, &rec, phone_key, err);
        if (rc == -ENOENT)
            return 0; /* gone: nothing to send */
        if (rc < 0)
            return rc;
        if (egress_expired(l->p, e, rec, ledger_now(l)) != 0) {
            /* Past its retention (or not judgeable: fail closed): treated
             * as purged, whether or not the purge has run yet. */
            rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
            if (rc == 0 && has)
                rc = egress_tombstone(l->p, e, r->record_id,
                                      (int64_t)json_integer_value(json_object_get(rec, "version")),
                                      EGRESS_OP_PURGE, &er, err);
            json_decref(rec);
            if (rc < 0 || !er)
                return rc;
            return put(l, cut, w, er, &one, counts, err);
        }
        json_t *del = json_object_get(rec, "deleted");
        if (json_is_true(del) || (json_is_integer(del) && json_integer_value(del))) {
            /* a deleted record HQ never had: nothing to tell it */
            rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
            if (rc < 0 || !has) {
                json_decref(rec);
                return rc;
            }
        }
        enum residency_verdict v = RESIDENCY_KEEP;
        rc = residency_judge(store_residency(l->s), l->p, e, rec, &v, err);
        if (rc == 0 && v != RESIDENCY_WITHHOLD) {
            residency_apply(v, rec);
            /* the phone's key as the store made it: no second parse */
            struct egress_known known = {store_region(l->s), phone_key};
            rc = egress_project_known(l->p, l->pkey, e, rec, &known, &er, &one, err);
        }
        if (rc == 0 && !er) {
            /* Withheld now (restricted, pinned, about a withheld record):
             * HQ must drop what it holds, if it holds anything. */
            rc = hq_may_have(l, sent, e->name, r->record_id, &has, err);
            if (rc == 0 && has) {
                json_int_t ver = json_integer_value(json_object_get(rec, "version"));
                rc = egress_tombstone(l->p, e, r->record_id, (int64_t)ver, EGRESS_OP_WITHDRAW, &er,
                                      err);
            }
        } else if (rc == 0 && er) {
            rc = residency_sent_add(sent, e->name, r->record_id);
            if (rc < 0)
                op_error_set(err, rc, NULL, "out of memory");
        }
        json_decref(rec);
        if (rc < 0 || !er) {
            egress_record_free(er);
            if (rc == 0)
                egress_counts_add(counts, &one); /* withheld whole: counted, nothing left */
            return rc;
        }
    }
    return put(l, cut, w, er, &one, counts, err);
}

/* Where a full segment may stop: see sync_ledger_int.h. */
int ledger_cursor_after(const struct outbox_row *rows, size_t n, size_t i,
                        const struct outbox_cursor *from, struct outbox_cursor *out)
{
    struct outbox_cursor c = *from;
    for (size_t k = 0; k <= i; k++) {
        int64_t *lane = rows[k].priority < OUTBOX_ORDINARY ? &c.urgent : &c.ordinary;
        if (rows[k].seq > *lane)
            *lane = rows[k].seq;
    }
    for (size_t k = i + 1; k < n; k++) {
        int64_t lane = rows[k].priority < OUTBOX_ORDINARY ? c.urgent : c.ordinary;
        if (rows[k].seq <= lane)
            return 0;
    }
    *out = c;
    return 1;
}

/* -ESTALE when a voiding committed since `epoch` was read: the segment may
 * hold values that may no longer leave. */
static int check_epoch(struct sync_ledger *l, int64_t epoch, struct op_error *err)
{
    struct ledger_state now;
    int rc = ledger_load_state(&l->q, &now, err);
    if (rc < 0)
        return rc;
    if (now.spool_epoch != epoch)
        return op_error_set(err, -ESTALE, "spool",
                            "the spool was voided while a segment was cut; cutting again");
    return 0;
}

/* The segment's row and the cursor past it. */
static int insert_segment(struct sync_ledger *l, const struct sync_segment *sg,
                          const struct outbox_cursor *to, double bpr, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_INSERT_SEGMENT, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)sg->no);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)sg->from_urgent);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)sg->from_ordinary);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)sg->to_urgent);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)sg->to_ordinary);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)sg->bytes);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)sg->records);
    sqlite3_bind_text(st, 8, sg->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, l->p->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, sg->created_ms);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_SEGMENTER_INSERT_SEGMENT, st, err);
    if (rc < 0)
        return rc;
    st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_ADVANCE_CURSOR, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, to->urgent);
    sqlite3_bind_int64(st, 2, to->ordinary);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(sg->no + 1));
    sqlite3_bind_double(st, 4, bpr);
    rc = sql_run(&l->q, UPLINK_Q_LEDGER_SEGMENTER_ADVANCE_CURSOR, st, err);
    return rc < 0 ? rc : 0;
}

/* ---- aggregate requests ------------------------------------------------------ */

/* Requests answered per segment: each answer is a few KiB at most. */
#define AGG_PER_SEGMENT 16
#define AGG_PARAMS_MAX 4

/* One answered request, until the segment's transaction records it. */
struct agg_answer {
    int64_t seq;
    int refused;
    char reason[256];
    char params[AGG_PARAMS_MAX * 66]; /* a refusal's: the request's, space-separated */
    json_t *record;                   /* what the segment carries */
};

struct agg_batch {
    struct agg_answer a[AGG_PER_SEGMENT];
    size_t n;
};

static void agg_batch_done(struct agg_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->a[i].record);
    b->n = 0;
}

/* The answer to one request body {"aggregate": NAME, "params": ["k=v"]}:
 * the aggregate after disclosure control, or a refusal saying why. */
static json_t *answer_request(struct sync_ledger *l, int64_t seq, const char *body,
                              struct agg_answer *out)
{
    char req[32];
    snprintf(req, sizeof req, "mailbox:%lld", (long long)seq);
    json_error_t je;
    json_t *b = json_loads(body, JSON_REJECT_DUPLICATES, &je);
    const char *name = json_string_value(json_object_get(b, "aggregate"));
    const json_t *ps = json_object_get(b, "params");
    const char *params[AGG_PARAMS_MAX];
    size_t np = 0;
    struct op_error e;
    op_error_clear(&e);
    int rc = 0;
    if (!b || !name || strlen(name) > 64 || (ps && !json_is_array(ps)) ||
        json_array_size(ps) > AGG_PARAMS_MAX) {
        rc = op_error_set(&e, -EINVAL, NULL,
                          "the request is not {\"aggregate\": NAME, \"params\": [at most %d "
                          "\"KEY=VALUE\"]}",
                          AGG_PARAMS_MAX);
    } else {
        for (size_t i = 0; i < json_array_size(ps) && rc == 0; i++) {
            params[np] = json_string_value(json_array_get(ps, i));
            if (!params[np] || strlen(params[np]) > 64)
                rc = op_error_set(&e, -EINVAL, NULL, "parameter %zu is not a KEY=VALUE string", i);
            else
                snprintf(out->params + strlen(out->params),
                         sizeof out->params - strlen(out->params), "%s%s", np ? " " : "",
                         params[np]);
            np++;
        }
    }
    json_t *a = NULL;
    if (rc == 0)
        rc = aggregate_answer(l->s, l->p, name, params, np, (uint64_t)ledger_now(l), &a, &e);
    if (rc == 0) {
        json_t *c = json_deep_copy(a); /* the kept answer stays as kept */
        json_decref(a);
        a = c;
        if (!a || json_object_set_new(a, "request", json_string(req)) < 0) {
            json_decref(a);
            json_decref(b);
            return NULL;
        }
    } else {
        out->refused = 1;
        snprintf(out->reason, sizeof out->reason, "%.255s", e.msg);
        char when[40];
        if (timefmt_iso_ms(ledger_now(l), when, sizeof when) < 0)
            snprintf(when, sizeof when, "?");
        a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "aggregate", name ? name : "(none)",
                      "request", req, "region", l->p->region, "policy_hash", l->p->hash, "refused",
                      e.msg[0] ? e.msg : "refused", "computed_at", when);
    }
    json_decref(b);
    return a;
}

/* Answers up to AGG_PER_SEGMENT pending requests into the segment. */
static int add_aggregates(struct sync_ledger *l, struct segment_writer *w, struct agg_batch *b,
                          struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REQUESTS, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    (void)sqlite3_bind_int(st, 1, AGG_PER_SEGMENT);
    int64_t seqs[AGG_PER_SEGMENT];
    char *bodies[AGG_PER_SEGMENT];
    size_t n = 0;
    int rc;
    while (n < AGG_PER_SEGMENT &&
           (rc = sql_step(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REQUESTS, st, err)) == 1) {
        seqs[n] = sqlite3_column_int64(st, 0);
        bodies[n] = strdup((const char *)sqlite3_column_text(st, 1));
        if (!bodies[n]) {
            sqlite3_reset(st);
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
            break;
        }
        n++;
    }
    if (n == AGG_PER_SEGMENT)
        sqlite3_reset(st);
    if (rc > 0)
        rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct agg_answer *a = &b->a[b->n];
        memset(a, 0, sizeof *a);
        a->seq = seqs[i];
        a->record = answer_request(l, seqs[i], bodies[i], a);
        char *text = a->record ? json_dumps(a->record, AGGREGATE_JSON_FLAGS) : NULL;
        struct egress_record *er = NULL;
        if (!text)
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        else
            rc = egress_aggregate(l->p, text, strlen(text), &er, err);
        if (rc == 0)
            rc = segment_writer_add(w, er, err);
        egress_record_free(er);
        free(text);
        if (rc < 0)
            json_decref(a->record);
        else
            b->n++;
    }
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    /* Standing aggregates the profile names, once per grid point. One
     * the policy refuses (a field's class) is left out without retrying. */
    for (size_t i = 0; rc == 0 && i < l->p->naggregates && b->n < AGG_PER_SEGMENT; i++) {
        const struct policy_aggregate *pa = &l->p->aggregates[i];
        int due = 0;
        if (!pa->standing)
            continue;
        struct op_error e;
        op_error_clear(&e);
        if (aggregate_standing_due(l->s, l->p, pa->name, (uint64_t)ledger_now(l), &due, &e) < 0 ||
            !due)
            continue;
        json_t *a = NULL;
        if (aggregate_answer(l->s, l->p, pa->name, NULL, 0, (uint64_t)ledger_now(l), &a, &e) < 0)
            continue;
        json_t *rec = json_deep_copy(a);
        json_decref(a);
        if (!rec || json_object_set_new(rec, "request", json_string("standing")) < 0) {
            json_decref(rec);
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        }
        char *text = json_dumps(rec, AGGREGATE_JSON_FLAGS);
        struct egress_record *er = NULL;
        rc = text ? egress_aggregate(l->p, text, strlen(text), &er, err)
                  : op_error_set(err, -ENOMEM, NULL, "out of memory");
        if (rc == 0)
            rc = segment_writer_add(w, er, err);
        egress_record_free(er);
        free(text);
        if (rc < 0) {
            json_decref(rec);
            break;
        }
        struct agg_answer *an = &b->a[b->n++];
        memset(an, 0, sizeof *an);
        an->seq = -1; /* standing: no mailbox row */
        an->record = rec;
    }
    return rc;
}

/* Whether a segment is due for aggregates alone: a pending request, or a
 * standing aggregate whose grid point has not been sent. */
static int aggregates_due(struct sync_ledger *l, int *due, struct op_error *err)
{
    sqlite3_stmt *q = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REQUESTS, err);
    if (!q)
        return err && err->code ? err->code : -EIO;
    (void)sqlite3_bind_int(q, 1, 1);
    int asked = sql_step(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REQUESTS, q, err);
    if (asked < 0)
        return asked;
    if (asked)
        sqlite3_reset(q);
    *due = asked;
    for (size_t i = 0; !*due && i < l->p->naggregates; i++) {
        if (!l->p->aggregates[i].standing)
            continue;
        struct op_error e;
        op_error_clear(&e);
        int d = 0;
        if (aggregate_standing_due(l->s, l->p, l->p->aggregates[i].name, (uint64_t)ledger_now(l),
                                   &d, &e) == 0 &&
            d) {
            /* due unless the policy refuses it (then it is never sent) */
            *due = aggregate_allowed(l->p, l->p->aggregates[i].name, &e) == 0;
        }
    }
    return 0;
}

/* A refusal in the egress ledger: what left is the refusal (no cells),
 * its bytes exactly as the segment carries them, with the request's
 * parameters as HQ gave them. The row goes in directly rather than
 * through aggregate_record_egress, which keeps answers (their parameters
 * checked and on the grid); a refusal has none of that. */
static int record_refusal(struct sync_ledger *l, const struct sync_segment *sg, const char *req,
                          const struct agg_answer *a, struct op_error *err)
{
    const char *name = json_string_value(json_object_get(a->record, "aggregate"));
    char *body = json_dumps(a->record, AGGREGATE_JSON_FLAGS);
    if (!body)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REFUSAL_EGRESS, err);
    int rc = st ? 0 : (err && err->code ? err->code : -EIO);
    if (rc == 0) {
        (void)sqlite3_bind_int64(st, 1, ledger_now(l));
        (void)sqlite3_bind_text(st, 2, req, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 3, name ? name : "(none)", -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 4, a->params, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 5, l->p->hash, -1, SQLITE_STATIC);
        (void)sqlite3_bind_int64(st, 6, (sqlite3_int64)sg->no);
        (void)sqlite3_bind_text(st, 7, body, -1, SQLITE_STATIC);
        rc = sql_run(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REFUSAL_EGRESS, st, err);
    }
    free(body);
    return rc < 0 ? rc : 0;
}

/* In the segment's transaction: each request answered, and each answer
 * in the egress ledger with the segment that carries it. */
static int record_aggregates(struct sync_ledger *l, const struct sync_segment *sg,
                             const struct agg_batch *b, struct op_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        const struct agg_answer *a = &b->a[i];
        if (a->seq < 0) {
            rc = aggregate_record_egress(l->s, "segment", "standing", (int64_t)sg->no, a->record,
                                         (uint64_t)ledger_now(l), err);
            continue;
        }
        char why[300];
        snprintf(why, sizeof why, "%s in segment %llu%s%.200s", a->refused ? "refused" : "answered",
                 (unsigned long long)sg->no, a->refused ? ": " : "", a->refused ? a->reason : "");
        sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_ANSWERED, err);
        if (!st)
            return err && err->code ? err->code : -EIO;
        (void)sqlite3_bind_int64(st, 1, a->seq);
        (void)sqlite3_bind_text(st, 2, a->refused ? "refused" : "applied", -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 3, why, -1, SQLITE_STATIC);
        rc = sql_run(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_ANSWERED, st, err);
        if (rc >= 0) {
            char req[32];
            snprintf(req, sizeof req, "mailbox:%lld", (long long)a->seq);
            rc = a->refused ? record_refusal(l, sg, req, a, err)
                            : aggregate_record_egress(l->s, "segment", req, (int64_t)sg->no,
                                                      a->record, (uint64_t)ledger_now(l), err);
        }
    }
    return rc < 0 ? rc : 0;
}

/* Requests answered (or refused) in a segment that no longer exists: it
 * was voided (the policy changed, docs/EGRESS.md "In time") or dropped
 * before HQ acknowledged it. They are pending again, and the next cut
 * answers them under the policy in force. One statement: all or none. */
static int requeue_voided_answers(struct sync_ledger *l, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REQUEUE_VOIDED, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_SEGMENTER_AGGREGATE_REQUEUE_VOIDED, st, err);
    return rc < 0 ? rc : 0;
}

static int record_segment(struct sync_ledger *l, const struct sync_segment *sg,
                          const struct outbox_cursor *to, double bpr, int64_t epoch,
                          const struct residency_sent *sent, const struct ledger_cut *cut,
                          const struct agg_batch *aggs, struct op_error *err)
{
    int rc = store_begin(l->s, err);
    if (rc < 0)
        return rc;
    rc = check_epoch(l, epoch, err);
    if (rc == 0)
        rc = residency_sent_record(store_residency(l->s), sent, sg->no, err);
    if (rc == 0)
        rc = ledger_cut_record(l, cut, sg->no, err);
    if (rc == 0)
        rc = insert_segment(l, sg, to, bpr, err);
    if (rc == 0)
        rc = record_aggregates(l, sg, aggs, err);
    return ledger_end_tx(l, rc, err);
}

/* The spool reached its cap (full = 1) or is below it again (-1). */
static void note_spool(struct sync_ledger *l, int full, uint64_t bytes, uint64_t segments)
{
    l->news.spool = full;
    l->news.spool_bytes = bytes;
    l->news.spool_segments = segments;
    l->news.spool_cap = l->spool_max;
}

/* ---- pacing ------------------------------------------------------------------ */

int ledger_pace(const struct ledger_pace_in *in, uint64_t *target)
{
    uint64_t full = in->segment_bytes;
    uint64_t first = full;
    if (in->first_ms) {
        first = in->goodput > 0 ? (uint64_t)(in->goodput * (double)in->first_ms / 1000.0)
                                : LEDGER_FIRST_DEFAULT;
        if (first < LEDGER_FIRST_MIN)
            first = LEDGER_FIRST_MIN;
        if (first > full)
            first = full;
    }
    if (in->waiting == 0) {
        *target = first; /* the link is idle: start it */
        return 1;
    }
    uint64_t t = 2 * in->newest_bytes;
    *target = t < first ? first : t > full ? full : t;
    if (in->urgent > 0)
        return 1; /* tombstones and withdrawals do not wait */
    if (in->untaken > 0)
        return 0; /* one is cut and waits for the link already */
    double bpr = in->bpr > 0 ? in->bpr : LEDGER_BPR_DEFAULT;
    if ((double)in->ordinary * bpr >= (double)*target)
        return 1; /* enough for a full one */
    return in->ordinary > 0 &&
           (in->oldest_age_ms >= (int64_t)in->hold_ms || in->newest_age_ms >= LEDGER_QUIET_MS);
}

/* Reads what ledger_pace decides on and asks it: *pending (unsegmented
 * rows), *target and *cut_now. */
static int pace(struct sync_ledger *l, const struct ledger_state *s, uint64_t waiting,
                int64_t *pending, uint64_t *target, int *cut_now, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_SEGMENTER_PACE, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, s->seg_u);
    sqlite3_bind_int64(st, 2, s->seg_o);
    int64_t v[6];
    int rc = sql_one_int64(&l->q, UPLINK_Q_LEDGER_SEGMENTER_PACE, st, "cannot read the outbox", v,
                           6, err);
    if (rc < 0)
        return rc;
    struct ledger_pace_in in = {
        .segment_bytes = l->segment_bytes,
        .first_ms = l->first_ms,
        .hold_ms = l->hold_ms,
        .goodput = s->goodput,
        .bpr = s->bpr,
        .waiting = waiting,
        .untaken = (uint64_t)v[0],
        .newest_bytes = (uint64_t)v[1],
        .urgent = v[2],
        .ordinary = v[3],
        .oldest_age_ms = v[4] > 0 ? ledger_now(l) - v[4] : 0,
        .newest_age_ms = v[5] > 0 ? ledger_now(l) - v[5] : 0,
    };
    *pending = v[2] + v[3];
    *cut_now = ledger_pace(&in, target);
    return 0;
}

static int cut_segment(struct sync_ledger *l, int *made, struct sync_segment *out,
                       struct op_error *err)
{
    struct ledger_state s;
    int rc = ledger_load_state(&l->q, &s, err);
    if (rc < 0)
        return rc;
    if (s.blocked[0]) {
        *made = 0;
        return 0;
    }
    uint64_t spool_bytes = 0, spool_segs = 0;
    rc = ledger_spool_usage(&l->q, &spool_bytes, &spool_segs, err);
    if (rc < 0)
        return rc;
    if (spool_bytes >= l->spool_max) {
        if (!s.spool_full) {
            rc = set_spool_full(l, 1, err);
            if (rc < 0)
                return rc;
            note_spool(l, 1, spool_bytes, spool_segs);
        }
        *made = 0;
        return 0;
    }
    if (s.spool_full) {
        rc = set_spool_full(l, 0, err);
        if (rc < 0)
            return rc;
        note_spool(l, -1, spool_bytes, spool_segs);
    }
    int64_t pending = 0;
    uint64_t target = l->segment_bytes;
    int cut_now = 1;
    if (l->pace)
        rc = pace(l, &s, spool_segs, &pending, &target, &cut_now, err);
    else
        rc = ledger_unsegmented(&l->q, s.seg_u, s.seg_o, &pending, err);
    if (rc < 0)
        return rc;
    int asked = 0;
    if (pending == 0 && (rc = aggregates_due(l, &asked, err)) < 0)
        return rc;
    if ((pending == 0 && !asked) || (pending > 0 && !cut_now)) {
        *made = 0;
        return 0;
    }

    struct segment_info hdr;
    memset(&hdr, 0, sizeof hdr);
    snprintf(hdr.node_id, sizeof hdr.node_id, "%s", l->cred.node_id);
    hdr.from_urgent = (uint64_t)s.seg_u;
    hdr.from_ordinary = (uint64_t)s.seg_o;
    hdr.schema_version = l->schema_version;
    snprintf(hdr.policy_hash, sizeof hdr.policy_hash, "%s", l->p->hash);
    hdr.created_ms = ledger_now(l);
    struct segment_writer *w = NULL;
    rc = segment_writer_new(&hdr, l->cred.hq_key, l->spool_dir, s.next_no, &w, err);
    if (rc < 0)
        return rc;

    struct ledger_cut *cut = NULL;
    rc = ledger_cut_new(l, &cut, err);
    if (rc < 0) {
        segment_writer_abort(w);
        return rc;
    }
    struct outbox_row *rows = malloc(LEDGER_BATCH * sizeof *rows);
    struct residency_sent *sent = NULL;
    if (!rows || residency_sent_new(&sent) < 0) {
        free(rows);
        ledger_cut_free(cut);
        segment_writer_abort(w);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    struct outbox_cursor cur = {s.seg_u, s.seg_o};
    struct egress_counts counts;
    memset(&counts, 0, sizeof counts);
    int full = 0;
    while (!full) {
        size_t n = 0;
        struct outbox_cursor covered;
        rc = outbox_next_batch(l->s, &cur, LEDGER_BATCH, rows, &n, &covered, err);
        if (rc < 0)
            goto fail;
        if (n == 0)
            break;
        for (size_t i = 0; i < n && !full; i++) {
            rc = add_row(l, w, cut, &rows[i], sent, &counts, err);
            if (rc < 0)
                goto fail;
            /* Paced segments may be small: count what deflate still holds,
             * by the bytes per record of recent segments until its first
             * block is out (2 bytes: the zlib header alone). */
            uint64_t size = segment_writer_compressed_bytes(w);
            if (l->pace)
                size = size <= 2 && s.bpr > 0
                           ? (uint64_t)((double)segment_writer_records(w) * s.bpr)
                           : segment_writer_estimated_bytes(w);
            if (size >= target) {
                if (i + 1 == n)
                    full = 1; /* covered below */
                else if (ledger_cursor_after(rows, n, i, &cur, &cur))
                    full = 2;
            }
        }
        if (full != 2)
            cur = covered;
    }
    free(rows);
    rows = NULL;
    struct agg_batch aggs;
    aggs.n = 0;
    rc = add_aggregates(l, w, &aggs, err);
    if (rc < 0) {
        agg_batch_done(&aggs);
        goto fail;
    }
    if (segment_writer_records(w) == 0 && spool_segs == 0) {
        /* Nothing HQ lacks, and no segment waits that the rows could
         * belong to: no segment; the rows are consumed at once. */
        segment_writer_abort(w);
        residency_sent_free(sent);
        ledger_cut_free(cut);
        rc = store_begin(l->s, err);
        if (rc == 0)
            rc = check_epoch(l, s.spool_epoch, err);
        if (rc == 0)
            rc = ledger_deltas_consume(l, &cur, err);
        rc = ledger_end_tx(l, rc, err);
        *made = 0;
        return rc;
    }

    struct sync_segment sg;
    memset(&sg, 0, sizeof sg);
    struct segment_info info;
    rc = segment_writer_finish(w, (uint64_t)cur.urgent, (uint64_t)cur.ordinary, &counts, sg.path,
                               sizeof sg.path, &info, err);
    w = NULL;
    if (rc < 0) {
        agg_batch_done(&aggs);
        residency_sent_free(sent);
        ledger_cut_free(cut);
        return rc;
    }
    struct stat sb;
    if (stat(sg.path, &sb) < 0) {
        rc = op_error_set(err, -errno, "spool", "cannot stat %s: %s", sg.path, strerror(errno));
        ledger_unlink_spool(l, sg.path);
        agg_batch_done(&aggs);
        residency_sent_free(sent);
        ledger_cut_free(cut);
        return rc;
    }
    sg.no = s.next_no;
    sg.from_urgent = (uint64_t)s.seg_u;
    sg.from_ordinary = (uint64_t)s.seg_o;
    sg.to_urgent = (uint64_t)cur.urgent;
    sg.to_ordinary = (uint64_t)cur.ordinary;
    sg.bytes = (uint64_t)sb.st_size;
    sg.records = info.records;
    sg.state = SYNC_SEG_SPOOLED;
    sg.created_ms = info.created_ms;
    double bpr = s.bpr;
    if (sg.records > 0) {
        double sample = (double)sg.bytes / (double)sg.records;
        bpr = bpr > 0 ? 0.7 * bpr + 0.3 * sample : sample;
    }
    rc = record_segment(l, &sg, &cur, bpr, s.spool_epoch, sent, cut, &aggs, err);
    agg_batch_done(&aggs);
    residency_sent_free(sent);
    ledger_cut_free(cut);
    if (rc < 0) {
        ledger_unlink_spool(l, sg.path); /* a file without its row */
        return rc;
    }
    *made = 1;
    *out = sg;
    return 0;
fail:
    free(rows);
    residency_sent_free(sent);
    ledger_cut_free(cut);
    segment_writer_abort(w);
    return rc;
}

/* The spool follows the policy in l->p: if its hash is not the one the
 * spool was cut under, void the spool (its files emptied before this
 * returns) and queue every record again (store_policy_changed, the step a
 * restriction's voiding takes), and say so in the news. */
int ledger_policy_in_force(struct sync_ledger *l, struct op_error *err)
{
    struct ledger_state s;
    int rc = ledger_load_state(&l->q, &s, err);
    if (rc < 0 || !strcmp(s.policy_hash, l->p->hash))
        return rc;
    char why[160];
    snprintf(why, sizeof why, "the policy in force changed to %.16s", l->p->hash);
    int changed = 0;
    rc = store_policy_changed(l->s, l->p->hash, why, &changed, err);
    if (rc == 0 && changed) {
        if (!l->news.policy_now[0])
            snprintf(l->news.policy_was, sizeof l->news.policy_was, "%s", s.policy_hash);
        snprintf(l->news.policy_now, sizeof l->news.policy_now, "%s", l->p->hash);
    }
    return rc;
}

/* The policy in force may have changed since the last segment (another
 * process such as `outpost policy accept`, or a reload whose voiding
 * failed): cut under the one in force, voiding what was cut under another
 * (ledger_policy_in_force). A policy that does not load stops segmenting:
 * fail closed. */
static int follow_policy(struct sync_ledger *l, struct op_error *err)
{
    struct policy *np = NULL;
    int rc = node_policy_load(l->policy_file, l->db_path, store_region(l->s), &np, err);
    if (rc < 0)
        return rc;
    if (strcmp(np->hash, l->p->hash)) {
        policy_free(l->p);
        l->p = np;
    } else {
        policy_free(np);
    }
    return ledger_policy_in_force(l, err);
}

int sync_ledger_make_segment(struct sync_ledger *l, int *made, struct sync_segment *out,
                             struct op_error *err)
{
    *made = 0;
    /* Files voided by another process that could not empty them. */
    int rc = residency_sweep(store_residency(l->s), err);
    if (rc < 0)
        return rc;
    for (int attempt = 0;; attempt++) {
        /* Again after a voiding during the cut: it may have been a policy
         * reload, and cutting again under the old policy would put the
         * values it withholds back into the spool. */
        rc = follow_policy(l, err);
        if (rc == 0)
            rc = requeue_voided_answers(l, err);
        if (rc < 0)
            return rc;
        rc = cut_segment(l, made, out, err);
        if (rc != -ESTALE || attempt == 2)
            return rc;
    }
}
