/*
 * Field-level deltas (docs/SYNC.md, "Nothing new, nothing sent"): the
 * segmenter asks here, per record, what to put into the segment. The node
 * keeps, per record, the projection hash and field digests
 * (sync/core/projection_hash.h) of what HQ holds (egress_held, moved there
 * by an applied receipt) and of what cut segments carry to it
 * (egress_flight, written in the segment's transaction). A projection
 * whose hash equals what HQ will hold goes nowhere; a changed live one
 * goes as a patch against HQ's version when HQ applies patches and the
 * patch is smaller; anything else goes whole. When what HQ holds is not
 * known (a voided segment HQ may still settle, a patch HQ could not
 * apply) the whole record goes. The invariant: nothing is assumed about
 * HQ that a receipt did not say or a recorded segment will not say.
 */
#include "sync_ledger_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "projection_hash.h"
#include "residency.h"
#include "segment.h"

/* One record put into the segment being cut. */
struct cut_entry {
    char *entity, *id;
    int64_t version;
    enum projection_state state;
    unsigned char hash[PROJECTION_HASH_BYTES];
    char *fields; /* digests as JSON, NULL for gone */
};

struct ledger_cut {
    int patches;
    struct cut_entry *v;
    size_t n, cap;
    struct residency_sent *in; /* keys of v, for a quick "not in this cut" */
};

static void entry_free(struct cut_entry *e)
{
    free(e->entity);
    free(e->id);
    free(e->fields);
}

void ledger_cut_free(struct ledger_cut *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(&c->v[i]);
    free(c->v);
    residency_sent_free(c->in);
    free(c);
}

int ledger_cut_new(struct sync_ledger *l, struct ledger_cut **out, struct op_error *err)
{
    int rc = sql_exec(&l->q, UPLINK_Q_LEDGER_DELTAS_FLIGHT_CLEAN, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_DELTAS_PATCHES_GET, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    int64_t patches = 0;
    rc = sql_one_int64(&l->q, UPLINK_Q_LEDGER_DELTAS_PATCHES_GET, st, "sync state", &patches, 1,
                       err);
    if (rc < 0)
        return rc;
    struct ledger_cut *c = calloc(1, sizeof *c);
    if (!c || residency_sent_new(&c->in) < 0) {
        free(c);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    c->patches = patches != 0;
    *out = c;
    return 0;
}

/* What HQ will hold of the record once the spool is applied. */
struct base {
    int known;
    int64_t version;
    enum projection_state state;
    unsigned char hash[PROJECTION_HASH_BYTES];
    json_t *fields; /* NULL for gone */
};

static int base_in_cut(const struct ledger_cut *c, const char *entity, const char *id,
                       struct base *b)
{
    if (!residency_sent_has(c->in, entity, id))
        return 0;
    for (size_t i = c->n; i-- > 0;) {
        const struct cut_entry *e = &c->v[i];
        if (strcmp(e->entity, entity) || strcmp(e->id, id))
            continue;
        b->known = 1;
        b->version = e->version;
        b->state = e->state;
        memcpy(b->hash, e->hash, sizeof b->hash);
        b->fields = e->fields ? json_loads(e->fields, 0, NULL) : NULL;
        return 1;
    }
    return 0;
}

static int base_of(struct sync_ledger *l, const struct ledger_cut *c, const char *entity,
                   const char *id, struct base *b, struct op_error *err)
{
    memset(b, 0, sizeof *b);
    if (base_in_cut(c, entity, id, b))
        return 0;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_DELTAS_UNCERTAIN, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sql_step(&l->q, UPLINK_Q_LEDGER_DELTAS_UNCERTAIN, st, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        sqlite3_reset(st);
        return 0; /* not known: whole */
    }
    st = sql_get(&l->q, UPLINK_Q_LEDGER_DELTAS_BASE, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sql_step(&l->q, UPLINK_Q_LEDGER_DELTAS_BASE, st, err);
    if (rc <= 0)
        return rc;
    const void *h = sqlite3_column_blob(st, 2);
    if (h && sqlite3_column_bytes(st, 2) == PROJECTION_HASH_BYTES) {
        b->known = 1;
        b->version = sqlite3_column_int64(st, 0);
        b->state = (enum projection_state)sqlite3_column_int(st, 1);
        memcpy(b->hash, h, sizeof b->hash);
        const char *f = (const char *)sqlite3_column_text(st, 3);
        b->fields = f ? json_loads(f, 0, NULL) : NULL;
    }
    sqlite3_reset(st);
    return 0;
}

static int remember(struct ledger_cut *c, const char *entity, const char *id, int64_t version,
                    enum projection_state state, const unsigned char hash[PROJECTION_HASH_BYTES],
                    const json_t *fields)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct cut_entry *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    struct cut_entry *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    e->entity = strdup(entity);
    e->id = strdup(id);
    e->fields = fields ? json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!e->entity || !e->id || (fields && !e->fields) ||
        residency_sent_add(c->in, entity, id) < 0) {
        entry_free(e);
        return -ENOMEM;
    }
    e->version = version;
    e->state = state;
    memcpy(e->hash, hash, PROJECTION_HASH_BYTES);
    c->n++;
    return 0;
}

int ledger_cut_add(struct sync_ledger *l, struct ledger_cut *c, struct segment_writer *w,
                   const struct egress_record *er, int *sent, struct op_error *err)
{
    *sent = 0;
    const char *entity = egress_record_entity(er)->name;
    const char *id = egress_record_id(er);
    enum egress_op op = egress_record_op(er);
    enum projection_state state = op == EGRESS_OP_UPSERT   ? PROJECTION_LIVE
                                  : op == EGRESS_OP_DELETE ? PROJECTION_DELETED
                                                           : PROJECTION_GONE;
    /* kept with the record: egress_patch uses the same (borrowed) */
    const json_t *rec = egress_record_object(er);
    const json_t *fields = state != PROJECTION_GONE ? egress_record_field_digests(er) : NULL;
    if (!rec || (state != PROJECTION_GONE && !fields))
        return op_error_set(err, -ENOMEM, NULL, "%s %s: cannot read its projection", entity, id);
    int64_t version = (int64_t)json_integer_value(json_object_get(rec, "version"));
    unsigned char hash[PROJECTION_HASH_BYTES];
    struct base b;
    memset(&b, 0, sizeof b);
    int rc = projection_hash(entity, state, id, state == PROJECTION_GONE ? NULL : rec, hash);
    if (rc < 0)
        rc = op_error_set(err, rc, NULL, "%s %s: cannot hash its projection", entity, id);
    if (rc == 0)
        rc = base_of(l, c, entity, id, &b, err);
    /* An erasure or purge always goes: HQ keeps it as such, whatever it held. */
    int may_skip = op != EGRESS_OP_ERASE && op != EGRESS_OP_PURGE;
    if (rc == 0 && may_skip && b.known && !memcmp(b.hash, hash, sizeof hash)) {
        goto out; /* HQ holds (or will hold) exactly this */
    }
    struct egress_record *patch = NULL;
    if (rc == 0 && c->patches && b.known && b.state == PROJECTION_LIVE &&
        state == PROJECTION_LIVE && json_is_object(b.fields) && b.version <= version) {
        rc = egress_patch(er, b.version, b.fields, &patch, err);
        if (rc == 0 && egress_record_len(patch) >= egress_record_len(er)) {
            egress_record_free(patch); /* no smaller than the whole */
            patch = NULL;
        }
    }
    if (rc == 0)
        rc = segment_writer_add(w, patch ? patch : er, err);
    if (rc == 0) {
        *sent = 1;
        rc = remember(c, entity, id, version, state, hash, fields);
        if (rc < 0)
            op_error_set(err, rc, NULL, "out of memory");
    }
    egress_record_free(patch);
out:
    json_decref(b.fields);
    return rc;
}

int ledger_cut_record(struct sync_ledger *l, const struct ledger_cut *c, uint64_t no,
                      struct op_error *err)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cut_entry *e = &c->v[i];
        sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_DELTAS_FLIGHT_PUT, err);
        if (!st)
            return err && err->code ? err->code : -EIO;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
        sqlite3_bind_text(st, 2, e->entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, e->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, e->version);
        sqlite3_bind_int(st, 5, (int)e->state);
        sqlite3_bind_blob(st, 6, e->hash, PROJECTION_HASH_BYTES, SQLITE_STATIC);
        if (e->fields)
            sqlite3_bind_text(st, 7, e->fields, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        int rc = sql_run(&l->q, UPLINK_Q_LEDGER_DELTAS_FLIGHT_PUT, st, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int by_segment(struct sync_ledger *l, unsigned id, uint64_t no, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, id, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)no);
    int rc = sql_run(&l->q, id, st, err);
    return rc < 0 ? rc : 0;
}

int ledger_deltas_settled(struct sync_ledger *l, uint64_t no, int applied, struct op_error *err)
{
    int rc = applied ? by_segment(l, UPLINK_Q_LEDGER_DELTAS_PROMOTE, no, err) : 0;
    if (rc == 0)
        rc = by_segment(l, UPLINK_Q_LEDGER_DELTAS_FLIGHT_DROP, no, err);
    return rc;
}

/* The requeue query of an entity's table. */
static int requeue_query(const struct entity_def *e, unsigned *out)
{
    static const struct {
        const struct entity_def *e;
        unsigned q;
    } map[] = {
        {&entity_contact, UPLINK_Q_LEDGER_DELTAS_REQUEUE_CONTACTS},
        {&entity_organization, UPLINK_Q_LEDGER_DELTAS_REQUEUE_ORGANIZATIONS},
        {&entity_contact_organization, UPLINK_Q_LEDGER_DELTAS_REQUEUE_CONTACT_ORGANIZATIONS},
        {&entity_deal, UPLINK_Q_LEDGER_DELTAS_REQUEUE_DEALS},
        {&entity_activity, UPLINK_Q_LEDGER_DELTAS_REQUEUE_ACTIVITIES},
        {&entity_task, UPLINK_Q_LEDGER_DELTAS_REQUEUE_TASKS},
        {&entity_note, UPLINK_Q_LEDGER_DELTAS_REQUEUE_NOTES},
        {&entity_consent, UPLINK_Q_LEDGER_DELTAS_REQUEUE_CONSENTS},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].e == e) {
            *out = map[i].q;
            return 0;
        }
    return -ENOENT;
}

static int forget_one(struct sync_ledger *l, unsigned q, const char *entity, const char *id,
                      struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, q, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sql_run(&l->q, q, st, err);
    return rc < 0 ? rc : 0;
}

int ledger_deltas_forget(struct sync_ledger *l, const char *entity, const char *id,
                         struct op_error *err)
{
    int rc = forget_one(l, UPLINK_Q_LEDGER_DELTAS_HELD_FORGET, entity, id, err);
    if (rc == 0)
        rc = forget_one(l, UPLINK_Q_LEDGER_DELTAS_FLIGHT_FORGET, entity, id, err);
    return rc;
}

int ledger_deltas_needs_whole(struct sync_ledger *l, const json_t *list, size_t *requeued,
                              struct op_error *err)
{
    *requeued = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *entity = json_string_value(json_array_get(item, 0));
        const char *id = json_string_value(json_array_get(item, 1));
        const struct entity_def *e = entity ? entity_by_name(entity) : NULL;
        unsigned q;
        if (!e || !id || requeue_query(e, &q) < 0)
            continue; /* not a record this node sends: nothing to resend */
        int rc = forget_one(l, UPLINK_Q_LEDGER_DELTAS_HELD_FORGET, e->name, id, err);
        if (rc == 0)
            rc = forget_one(l, UPLINK_Q_LEDGER_DELTAS_FLIGHT_FORGET, e->name, id, err);
        sqlite3_stmt *st = rc == 0 ? sql_get(&l->q, q, err) : NULL;
        if (rc == 0 && !st)
            rc = err && err->code ? err->code : -EIO;
        if (rc == 0) {
            sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, ledger_now(l));
            rc = sql_run(&l->q, q, st, err);
        }
        if (rc < 0)
            return rc;
        *requeued += (size_t)rc;
    }
    return 0;
}

int ledger_deltas_set_patches(struct sync_ledger *l, int on, struct op_error *err)
{
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_DELTAS_PATCHES_SET, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int(st, 1, on ? 1 : 0);
    int rc = sql_run(&l->q, UPLINK_Q_LEDGER_DELTAS_PATCHES_SET, st, err);
    return rc < 0 ? rc : 0;
}

int ledger_deltas_consume(struct sync_ledger *l, const struct outbox_cursor *to,
                          struct op_error *err)
{
    int rc = outbox_ack(l->s, to, ledger_now(l), err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = sql_get(&l->q, UPLINK_Q_LEDGER_DELTAS_ADVANCE_BOTH, err);
    if (!st)
        return err && err->code ? err->code : -EIO;
    sqlite3_bind_int64(st, 1, to->urgent);
    sqlite3_bind_int64(st, 2, to->ordinary);
    rc = sql_run(&l->q, UPLINK_Q_LEDGER_DELTAS_ADVANCE_BOTH, st, err);
    return rc < 0 ? rc : 0;
}
