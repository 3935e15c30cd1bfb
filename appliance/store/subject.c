/*
 * Data-subject export and erasure; see subject.h. Related records are
 * found through their contact_id column (tombstones included: a deleted
 * record still holds what it held until it is purged). Ids are copied out
 * of each query before any write, so no statement stays open across a
 * purge.
 */
#include "subject.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "csv_writer.h"
#include "retention.h"
#include "uuid7.h"
#include "sql.h"
#include "store_queries.h"

const struct entity_def *const subject_entities[] = {
    &entity_contact,
    &entity_contact_organization,
    &entity_activity,
    &entity_task,
    &entity_note,
    &entity_consent,
    NULL,
};

/* Exported but not erased: a deal is the organization's business record;
 * its contact_id keeps pointing at the tombstone. */
static const struct entity_def *const export_only[] = {&entity_deal, NULL};

/* A growable list of ids. */
struct idlist {
    char (*ids)[UUID_TEXT_LEN];
    size_t n, cap;
};

static int idlist_add(struct idlist *l, const char *id, size_t *total, struct op_error *err)
{
    if (++*total > SUBJECT_MAX_RECORDS)
        return op_error_set(err, -E2BIG, NULL,
                            "more than %d records are about this contact; this build handles at "
                            "most that many in one export or erasure",
                            SUBJECT_MAX_RECORDS);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->ids, cap * sizeof *l->ids);
        if (!p)
            return op_error_set(err, -ENOMEM, NULL, "out of memory");
        l->ids = p;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], UUID_TEXT_LEN, "%s", id);
    return 0;
}

/* The query of sql/subject.sql that finds each entity's records about a
 * contact (SQLite cannot bind a table name). */
static const struct store_entity_query related_queries[] = {
    {&entity_contact_organization, STORE_Q_SUBJECT_RELATED_CONTACT_ORGANIZATIONS},
    {&entity_activity, STORE_Q_SUBJECT_RELATED_ACTIVITIES},
    {&entity_task, STORE_Q_SUBJECT_RELATED_TASKS},
    {&entity_note, STORE_Q_SUBJECT_RELATED_NOTES},
    {&entity_consent, STORE_Q_SUBJECT_RELATED_CONSENTS},
    {&entity_deal, STORE_Q_SUBJECT_RELATED_DEALS},
    {NULL, 0},
};

/* Ids of the entity's records (tombstones too) whose contact_id is cid. */
static int related_ids(struct sql_cache *c, const struct entity_def *e, const char *cid,
                       struct idlist *out, size_t *total, struct op_error *err)
{
    int id = store_entity_query(related_queries, e);
    if (id < 0)
        return op_error_set(err, -EINVAL, NULL, "cannot find related records: no query for %s",
                            e->plural);
    sqlite3_stmt *st;
    int rc = sql_get_st(c, id, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, cid, -1, SQLITE_TRANSIENT);
    int r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == 0)
        r = idlist_add(out, (const char *)sqlite3_column_text(st, 0), total, err);
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        r = sql_fail(c->db, rc, "cannot find related records", err);
    sqlite3_reset(st);
    return r;
}

static int append_records(struct store *s, const struct entity_def *e, const struct idlist *l,
                          json_t *arr, struct op_error *err)
{
    for (size_t i = 0; i < l->n; i++) {
        json_t *rec;
        int rc = store_get(s, e, l->ids[i], STORE_INCLUDE_DELETED, &rec, err);
        if (rc == -ENOENT)
            continue; /* hidden from the current viewer */
        if (rc < 0)
            return rc;
        json_array_append_new(arr, rec);
    }
    return 0;
}

/* Column col as a JSON string, or JSON null where the row holds NULL. */
static json_t *col_text_or_null(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_string((const char *)sqlite3_column_text(st, col));
}

static int append_audit(struct sql_cache *c, const struct entity_def *e, const char *id,
                        json_t *arr, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_SUBJECT_AUDIT_ROWS, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
    while ((rc = sql_step_what(c, st, "cannot read the audit log", err)) == 1) {
        char at[HLC_ISO_LEN];
        hlc_format_iso((hlc_stamp)sqlite3_column_int64(st, 1), at);
        json_t *row = json_object();
        json_object_set_new(row, "seq", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(row, "at", json_string(at));
        json_object_set_new(row, "actor", json_string((const char *)sqlite3_column_text(st, 2)));
        json_object_set_new(row, "address", col_text_or_null(st, 3));
        json_object_set_new(row, "action", json_string((const char *)sqlite3_column_text(st, 4)));
        json_object_set_new(row, "entity", json_string(e->name));
        json_object_set_new(row, "record_id", json_string(id));
        for (int col = 5; col <= 6; col++)
            json_object_set_new(row, col == 5 ? "version_before" : "version_after",
                                sqlite3_column_type(st, col) == SQLITE_NULL
                                    ? json_null()
                                    : json_integer(sqlite3_column_int64(st, col)));
        json_object_set_new(row, "detail", col_text_or_null(st, 7));
        json_array_append_new(arr, row);
    }
    return rc;
}

static int append_erasures(struct sql_cache *c, const char *cid, json_t *arr, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_SUBJECT_ERASURES, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, cid, -1, SQLITE_TRANSIENT);
    while ((rc = sql_step_what(c, st, "cannot read erasures", err)) == 1) {
        char at[HLC_ISO_LEN];
        hlc_format_iso((hlc_stamp)sqlite3_column_int64(st, 3) << HLC_COUNTER_BITS, at);
        json_t *row = json_pack("{s:s, s:s, s:s, s:s}", "id", sqlite3_column_text(st, 0), "entity",
                                sqlite3_column_text(st, 1), "record_id", sqlite3_column_text(st, 2),
                                "erased_at", at);
        json_object_set_new(row, "reason", col_text_or_null(st, 4));
        json_array_append_new(arr, row);
    }
    return rc;
}

int subject_export(struct store *s, const char *contact_id, uint64_t now_ms, json_t **out,
                   struct op_error *err)
{
    json_t *contact = NULL;
    int rc = store_get(s, &entity_contact, contact_id, STORE_INCLUDE_DELETED, &contact, err);
    if (rc < 0)
        return rc;
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0) {
        json_decref(contact);
        return rc;
    }
    const char *cid = json_string_value(json_object_get(contact, "id"));
    json_t *doc = json_object();
    json_t *audit = json_array();
    char when[HLC_ISO_LEN];
    hlc_format_iso((hlc_stamp)now_ms << HLC_COUNTER_BITS, when);
    json_object_set_new(doc, "format", json_string(SUBJECT_EXPORT_FORMAT));
    json_object_set_new(doc, "exported_at", json_string(when));
    json_object_set_new(doc, "node_id", json_string(store_node_id(s) ? store_node_id(s) : ""));
    json_object_set_new(doc, "region", json_string(store_region(s) ? store_region(s) : ""));
    json_object_set(doc, "contact", contact);
    rc = append_audit(&c, &entity_contact, cid, audit, err);

    size_t total = 1;
    const struct entity_def *const *lists[] = {subject_entities + 1, export_only};
    json_t *orgs = json_array();
    json_t *org_seen = json_object();
    for (size_t li = 0; li < 2 && rc == 0; li++) {
        for (const struct entity_def *const *ep = lists[li]; *ep && rc == 0; ep++) {
            const struct entity_def *e = *ep;
            struct idlist l = {NULL, 0, 0};
            json_t *arr = json_array();
            rc = related_ids(&c, e, cid, &l, &total, err);
            if (rc == 0)
                rc = append_records(s, e, &l, arr, err);
            for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++)
                rc = append_audit(&c, e,
                                  json_string_value(json_object_get(json_array_get(arr, i), "id")),
                                  audit, err);
            if (rc == 0 && e == &entity_contact_organization) {
                /* the organizations the person is linked to, once each */
                for (size_t i = 0; i < json_array_size(arr) && rc == 0; i++) {
                    const char *oid = json_string_value(
                        json_object_get(json_array_get(arr, i), "organization_id"));
                    if (!oid || json_object_get(org_seen, oid))
                        continue;
                    json_object_set_new(org_seen, oid, json_true());
                    json_t *org;
                    int orc =
                        store_get(s, &entity_organization, oid, STORE_INCLUDE_DELETED, &org, err);
                    if (orc == 0)
                        json_array_append_new(orgs, org);
                    else if (orc != -ENOENT)
                        rc = orc;
                }
            }
            json_object_set_new(doc, e->plural, arr);
            if (e == &entity_contact_organization)
                json_object_set(doc, "organizations", orgs);
            free(l.ids);
        }
    }
    json_t *erasures = json_array();
    if (rc == 0)
        rc = append_erasures(&c, cid, erasures, err);
    sql_cache_close(&c);
    json_object_set_new(doc, "erasures", erasures);
    json_object_set_new(doc, "audit_log", audit);
    json_decref(orgs);
    json_decref(org_seen);
    json_decref(contact);
    if (rc < 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* ---- CSV ---------------------------------------------------------------- */

/* The person opens this file in a spreadsheet: text goes behind the
 * formula guard (csv_writer_text), so a note saying "=HYPERLINK(...)" is
 * shown, not run. */
static int csv_value(struct csv_writer *w, json_t *v)
{
    if (json_is_string(v))
        return csv_writer_text(w, json_string_value(v), json_string_length(v));
    char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (!dump)
        return -ENOMEM;
    int rc = csv_writer_str(w, dump);
    free(dump);
    return rc;
}

static int csv_record(struct csv_writer *w, const char *entity, const char *id, json_t *rec)
{
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(rec, k, v)
    {
        if (json_is_null(v) || (json_is_object(v) && !json_object_size(v)) || !strcmp(k, "id"))
            continue;
        csv_writer_str(w, entity);
        csv_writer_str(w, id);
        csv_writer_str(w, k);
        csv_value(w, v);
        rc = csv_writer_end_row(w);
        if (rc < 0)
            return rc;
    }
    return rc;
}

int subject_write_csv(json_t *doc, FILE *out, struct op_error *err)
{
    struct csv_writer w;
    csv_writer_init(&w, out);
    csv_writer_str(&w, "entity");
    csv_writer_str(&w, "id");
    csv_writer_str(&w, "field");
    csv_writer_str(&w, "value");
    int rc = csv_writer_end_row(&w);
    json_t *c = json_object_get(doc, "contact");
    if (rc == 0)
        rc = csv_record(&w, "contact", json_string_value(json_object_get(c, "id")), c);
    const char *const sections[][2] = {
        {"contact_organizations", "contact_organization"},
        {"organizations", "organization"},
        {"deals", "deal"},
        {"activities", "activity"},
        {"tasks", "task"},
        {"notes", "note"},
        {"consents", "consent"},
        {"erasures", "erasure"},
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0] && rc == 0; i++) {
        json_t *arr = json_object_get(doc, sections[i][0]);
        size_t j;
        json_t *rec;
        json_array_foreach(arr, j, rec)
        {
            rc = csv_record(&w, sections[i][1], json_string_value(json_object_get(rec, "id")), rec);
            if (rc < 0)
                break;
        }
    }
    json_t *audit = json_object_get(doc, "audit_log");
    size_t j;
    json_t *row;
    json_array_foreach(audit, j, row)
    {
        if (rc < 0)
            break;
        char seq[32];
        snprintf(seq, sizeof seq, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(row, "seq")));
        rc = csv_record(&w, "audit_log", seq, row);
    }
    if (rc == 0 && fflush(out) != 0)
        rc = -errno;
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot write the CSV export: %s", strerror(-rc));
    return 0;
}

/* ---- erasure -------------------------------------------------------------- */

static int already_erased(struct sql_cache *c, const char *cid, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_SUBJECT_ALREADY_ERASED, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, cid, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : sql_fail(c->db, rc, "cannot read the audit log", err);
    sqlite3_reset(st);
    return rc;
}

static int record_erasure(struct sql_cache *c, struct uuid7_gen *ids, const char *subject,
                          const struct entity_def *e, const char *rid, uint64_t now_ms,
                          const char *reason, struct op_error *err)
{
    char id[UUID_TEXT_LEN];
    int rc = uuid7_next_text(ids, id);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot make an id: no randomness");
    sqlite3_stmt *st;
    rc = sql_get_st(c, STORE_Q_SUBJECT_ERASURE_INSERT, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, e->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, rid, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)now_ms);
    if (reason && *reason)
        sqlite3_bind_text(st, 6, reason, -1, SQLITE_TRANSIENT);
    return sql_run_what(c, st, "cannot record the erasure", err);
}

/* Deletes the person's outreach messages, their transports' reports and
 * their unsubscribe tokens. */
static int forget_outreach(struct sql_cache *c, const char *cid, struct op_error *err)
{
    static const unsigned qs[] = {STORE_Q_SUBJECT_OUTREACH_EVENTS_FORGET,
                                  STORE_Q_SUBJECT_OUTREACH_TOKENS_FORGET,
                                  STORE_Q_SUBJECT_OUTREACH_FORGET};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof qs / sizeof qs[0]; i++) {
        sqlite3_stmt *st;
        rc = sql_get_st(c, qs[i], &st, err);
        if (rc < 0)
            return rc;
        sqlite3_bind_text(st, 1, cid, -1, SQLITE_TRANSIENT);
        rc = sql_run_what(c, st, "cannot delete the person's outreach messages", err);
    }
    return rc < 0 ? rc : 0;
}

static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

/* The contact's addresses go on the suppression list before they are
 * blanked: the hash outlives the address, so a later import or sign-up of
 * the same address is not contacted. */
static int suppress_contact(struct store *s, json_t *contact, unsigned *count, struct op_error *err)
{
    static const char *const phone_channels[] = {"sms", "call", "messaging_app"};
    const char *email = json_string_value(json_object_get(contact, "email"));
    const char *phone = json_string_value(json_object_get(contact, "phone"));
    int rc = 0;
    if (email && *email) {
        rc = consent_suppress(s, "email", email, "erased", err);
        if (rc == 0)
            (*count)++;
    }
    for (size_t i = 0; rc == 0 && phone && *phone && i < 3; i++) {
        rc = consent_suppress(s, phone_channels[i], phone, "erased", err);
        if (rc == 0)
            (*count)++;
    }
    return rc;
}

static int checkpoint(struct sql_cache *c, struct op_error *err)
{
    int busy = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc == SQLITE_BUSY)
        busy = 1;
    else if (rc != SQLITE_OK)
        return sql_fail(c->db, rc, "cannot checkpoint the write-ahead log", err);
    return busy;
}

int subject_erase(struct store *s, const char *contact_id, const char *reason, uint64_t now_ms,
                  struct subject_erase_report *report, struct op_error *err)
{
    memset(report, 0, sizeof *report);
    if (reason && strlen(reason) > SUBJECT_REASON_MAX)
        return op_error_set(err, -EINVAL, "reason", "reason: longer than %d bytes",
                            SUBJECT_REASON_MAX);
    json_t *contact = NULL;
    int rc = store_get(s, &entity_contact, contact_id, STORE_INCLUDE_DELETED, &contact, err);
    if (rc < 0)
        return rc;
    char cid[UUID_TEXT_LEN];
    snprintf(cid, sizeof cid, "%s", json_string_value(json_object_get(contact, "id")));
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc == 0)
        rc = already_erased(&c, cid, err);
    if (rc != 0) {
        sql_cache_close(&c);
        json_decref(contact);
        return rc < 0 ? rc : 0;
    }
    json_t *d = json_pack("{s:s, s:s}", "reason", "erasure", "subject", cid);
    if (d && reason && *reason)
        json_object_set_new(d, "note", json_string(reason));
    char *detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    struct idlist lists[8] = {{NULL, 0, 0}};
    size_t total = 1;
    struct uuid7_gen ids;
    uint64_t clock = now_ms;
    uuid7_init(&ids, fixed_clock, &clock, NULL, NULL);
    if (!detail) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto out;
    }
    rc = idlist_add(&lists[0], cid, &total, err);
    for (size_t i = 1; subject_entities[i] && rc == 0; i++)
        rc = related_ids(&c, subject_entities[i], cid, &lists[i], &total, err);
    if (rc < 0)
        goto out;

    /* FAST leaves freed pages as they were; the erasure zeroes them. */
    int saved = retention_secure_delete(s, 1);
    rc = store_begin(s, err);
    if (rc == 0)
        rc = suppress_contact(s, contact, &report->suppressed, err);
    for (size_t i = 0; subject_entities[i] && rc == 0; i++) {
        const struct entity_def *e = subject_entities[i];
        for (size_t j = 0; j < lists[i].n && rc == 0; j++) {
            rc = store_purge(s, e, lists[i].ids[j], "erase", detail, err);
            if (rc == 0)
                rc = record_erasure(&c, &ids, cid, e, lists[i].ids[j], now_ms, reason, err);
            if (rc == 0) {
                report->records++;
                report->by_entity[i]++;
            }
        }
    }
    if (rc == 0)
        rc = forget_outreach(&c, cid, err);
    if (rc == 0)
        rc = store_commit(s, err);
    else
        store_rollback(s);
    if (rc == 0) {
        rc = retention_compact_search(s, &entity_contact, err);
        if (rc == 0)
            rc = checkpoint(&c, err);
        if (rc > 0)
            rc = 0; /* a reader held the WAL; it is truncated at the next checkpoint */
    } else {
        memset(report, 0, sizeof *report);
    }
    if (saved >= 0)
        (void)retention_secure_delete(s, saved);
out:
    sql_cache_close(&c);
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        free(lists[i].ids);
    free(detail);
    json_decref(contact);
    return rc;
}
