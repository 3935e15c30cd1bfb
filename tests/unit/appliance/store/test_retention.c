/* Tests for appliance/store/retention.c with an injected clock: records past the
 * policy's limit are purged (blanked, tombstoned, audited) and recent ones
 * kept; activities age by occurred_at, notes by their last change; a dry
 * run changes nothing; batches and max_records bound the work; a purged
 * record's text is gone from the database file; egress_expired, which
 * keeps expired records from leaving, says "expired" of exactly the
 * records the purge takes, at the edges of the cutoff too. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "egress.h"
#include "retention.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

#define DAY_MS UINT64_C(86400000)
/* 2026-06-01T00:00:00Z */
#define NOW_MS UINT64_C(1780272000000)

/* Records are written on the injected clock from long before NOW_MS. */
static struct store *fresh_store(const char *name)
{
    return fx_store_at(name, NOW_MS - 1000 * DAY_MS);
}

static struct policy_retention rules[2];
static struct policy pol;

static void build_policy(void)
{
    snprintf(pol.region, sizeof pol.region, "EU-DE");
    rules[0].entity = &entity_activity;
    rules[0].days = 365;
    snprintf(rules[0].basis, sizeof rules[0].basis, "GDPR Art. 5(1)(e)");
    rules[1].entity = &entity_note;
    rules[1].days = 30;
    snprintf(rules[1].basis, sizeof rules[1].basis, "design: notes are short-lived");
    pol.retention = rules;
    pol.nretention = 2;
}

static void purges_old_keeps_recent(void)
{
    struct store *s = fresh_store("purge.db");
    fx_clock_ms = NOW_MS - 400 * DAY_MS;
    char *c = fx_create(s, &entity_contact, json_pack("{s:s}", "family_name", "Weber"));
    /* activities: by occurred_at, whenever they were written; the body is
     * long enough to spill into overflow pages, which a purge frees */
    char body[20000];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    memcpy(body + 100, "CANARY-old-call-7731", 20);
    memcpy(body + 15000, "CANARY-overflow-7732", 20);
    char *old_act = fx_create(s, &entity_activity,
                              json_pack("{s:s, s:s, s:s, s:s}", "channel", "call", "occurred_at",
                                        "2025-01-10T09:00:00Z", "body", body, "contact_id", c));
    fx_clock_ms = NOW_MS - 40 * DAY_MS;
    /* notes: by last change */
    char *old_note = fx_create(s, &entity_note, json_pack("{s:s}", "body", "CANARY-old-note-5520"));
    char *touched = fx_create(s, &entity_note, json_pack("{s:s}", "body", "old but edited"));
    fx_clock_ms = NOW_MS - 10 * DAY_MS;
    char *new_act =
        fx_create(s, &entity_activity,
                  json_pack("{s:s, s:s, s:s, s:s}", "channel", "call", "occurred_at",
                            "2026-05-20T09:00:00Z", "body", "recent call", "contact_id", c));
    /* an activity written recently about a call long ago is still old */
    char *late_act = fx_create(s, &entity_activity,
                               json_pack("{s:s, s:s, s:s}", "channel", "visit", "occurred_at",
                                         "2024-03-01T10:00:00Z", "body", "entered late"));
    fx_clock_ms = NOW_MS - 5 * DAY_MS;
    json_t *ch = json_pack("{s:s}", "body", "edited last week");
    struct op_error err;
    CHECK_EQ(store_update(s, &entity_note, touched, 1, ch, 0, NULL, &err), 0);
    json_decref(ch);
    char *recent_note = fx_create(s, &entity_note, json_pack("{s:s}", "body", "fresh"));

    /* dry run: counts, changes nothing */
    struct retention_options dry = {.dry_run = 1};
    struct retention_report rep;
    fx_clock_ms = NOW_MS;
    int rc = retention_run(s, &pol, NOW_MS, &dry, &rep, &err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(rep.nitems, 2);
    CHECK_EQ(rep.items[0].purged, 2);
    CHECK_EQ(rep.items[1].purged, 1);
    CHECK_STR(rep.items[0].age_by, "occurred_at");
    CHECK_STR(rep.items[1].age_by, "updated_at");
    CHECK_STR(rep.items[0].cutoff, "2025-06-01T00:00:00.000Z");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM activities WHERE deleted = 1"), 0);

    rc = retention_run(s, &pol, NOW_MS, NULL, &rep, &err);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ(rep.total, 3);

    json_t *a = NULL;
    CHECK_EQ(store_get(s, &entity_activity, old_act, STORE_INCLUDE_DELETED, &a, &err), 0);
    CHECK(json_is_true(json_object_get(a, "deleted")));
    CHECK(json_is_null(json_object_get(a, "body")));
    CHECK_EQ(json_integer_value(json_object_get(a, "version")), 2);
    CHECK_STR(json_string_value(json_object_get(a, "channel")), "call");
    CHECK_STR(json_string_value(json_object_get(a, "contact_id")), c);
    json_decref(a);
    CHECK_EQ(store_get(s, &entity_activity, old_act, 0, &a, &err), -ENOENT);
    CHECK_EQ(store_get(s, &entity_activity, new_act, 0, &a, &err), 0);
    json_decref(a);
    CHECK_EQ(store_get(s, &entity_activity, late_act, 0, &a, &err), -ENOENT);
    json_t *n = NULL;
    CHECK_EQ(store_get(s, &entity_note, old_note, STORE_INCLUDE_DELETED, &n, &err), 0);
    CHECK_STR(json_string_value(json_object_get(n, "body")), "");
    json_decref(n);
    CHECK_EQ(store_get(s, &entity_note, touched, 0, &n, &err), 0);
    json_decref(n);
    CHECK_EQ(store_get(s, &entity_note, recent_note, 0, &n, &err), 0);
    json_decref(n);

    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE action = 'purge' AND "
                         "entity = 'activity' AND version_before = 1 AND version_after = 2 AND "
                         "detail LIKE '%GDPR Art. 5(1)(e)%'"),
             2);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE action = 'purge' AND "
                         "entity = 'note'"),
             1);
    /* the contact is not under a rule */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM contacts WHERE deleted = 0"), 1);

    /* a second run finds nothing */
    rc = retention_run(s, &pol, NOW_MS, NULL, &rep, &err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(rep.total, 0);

    /* the purged text is not in the files (the run truncated the WAL) */
    char wal[320];
    snprintf(wal, sizeof wal, "%s-wal", fx_db);
    CHECK(!fx_file_contains(fx_db, "CANARY-old-call-7731"));
    CHECK(!fx_file_contains(fx_db, "CANARY-old-note-5520"));
    CHECK(!fx_file_contains(wal, "CANARY-old-call-7731"));
    CHECK(!fx_file_contains(fx_db, "CANARY-overflow-7732"));
    CHECK(!fx_file_contains(wal, "CANARY-overflow-7732"));
    CHECK(!fx_file_contains(wal, "CANARY-old-note-5520"));
    CHECK(fx_file_contains(fx_db, "recent call")); /* the scan can find what is there */
    free(c);
    free(old_act);
    free(new_act);
    free(late_act);
    free(old_note);
    free(touched);
    free(recent_note);
    store_close(s);
}

static void tombstone_still_holding_text_is_purged(void)
{
    struct store *s = fresh_store("tomb.db");
    fx_clock_ms = NOW_MS - 100 * DAY_MS;
    char *id = fx_create(s, &entity_note, json_pack("{s:s}", "body", "deleted but still here"));
    struct op_error err;
    CHECK_EQ(store_delete(s, &entity_note, id, 1, NULL, &err), 0);
    struct retention_report rep;
    CHECK_EQ(retention_run(s, &pol, NOW_MS, NULL, &rep, &err), 0);
    CHECK_EQ(rep.total, 1);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM notes WHERE body = ''"), 1);
    CHECK_EQ(fx_count(s, "SELECT version FROM notes"), 3);
    free(id);
    store_close(s);
}

static void batches_and_limits(void)
{
    struct store *s = fresh_store("batch.db");
    fx_clock_ms = NOW_MS - 100 * DAY_MS;
    for (int i = 0; i < 7; i++) {
        char body[32];
        snprintf(body, sizeof body, "note %d", i);
        free(fx_create(s, &entity_note, json_pack("{s:s}", "body", body)));
    }
    struct op_error err;
    struct retention_report rep;
    struct retention_options o = {.batch = 2, .max_records = 5};
    CHECK_EQ(retention_run(s, &pol, NOW_MS, &o, &rep, &err), 0);
    CHECK_EQ(rep.total, 5);
    CHECK_EQ(rep.more, 1);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM notes WHERE deleted = 1"), 5);
    CHECK_EQ(retention_run(s, &pol, NOW_MS, &o, &rep, &err), 0);
    CHECK_EQ(rep.total, 2);
    CHECK_EQ(rep.more, 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM notes WHERE deleted = 1"), 7);
    /* no policy: nothing happens */
    CHECK_EQ(retention_run(s, NULL, NOW_MS, NULL, &rep, &err), 0);
    CHECK_EQ(rep.nitems, 0);
    store_close(s);
}

static void users_cannot_be_purged(void)
{
    struct store *s = fresh_store("users.db");
    struct op_error err;
    char *id = fx_create(s, &entity_contact, json_pack("{s:s}", "family_name", "Roth"));
    CHECK_EQ(store_purge(s, &entity_user, id, NULL, NULL, &err), -EINVAL);
    CHECK_EQ(
        store_purge(s, &entity_contact, "0190b5a0-0000-7000-8000-000000000000", NULL, NULL, &err),
        -ENOENT);
    free(id);
    store_close(s);
}

/* Every entity a policy may give a retention rule has its queries (one
 * per table in sql/retention.sql); a rule for users is skipped. */
static void every_entity_has_queries(void)
{
    struct store *s = fresh_store("every.db");
    struct policy_retention all[16];
    struct policy p;
    memset(&p, 0, sizeof p);
    snprintf(p.region, sizeof p.region, "EU-DE");
    size_t n = 0;
    for (size_t i = 0; entity_all[i] && n < 16; i++) {
        memset(&all[n], 0, sizeof all[n]);
        all[n].entity = entity_all[i];
        all[n].days = 1;
        snprintf(all[n].basis, sizeof all[n].basis, "test");
        n++;
    }
    p.retention = all;
    p.nretention = n;
    free(fx_create(s, &entity_contact, json_pack("{s:s}", "family_name", "Alt")));
    fx_clock_ms = NOW_MS;
    struct retention_options dry = {.dry_run = 1};
    struct retention_report rep;
    struct op_error err;
    int rc = retention_run(s, &p, NOW_MS, &dry, &rep, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "dry run: %s\n", err.msg);
    CHECK_EQ(rep.nitems, n - 1);
    CHECK_EQ(rep.total, 1);
    rc = retention_run(s, &p, NOW_MS, NULL, &rep, &err);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "run: %s\n", err.msg);
    CHECK_EQ(rep.total, 1);
    store_close(s);
}

/* Each call sets the mode and returns the one before: the PRAGMA is
 * prepared afresh each time (SQLite applies it when it is prepared). */
static void secure_delete_modes(void)
{
    struct store *s = fresh_store("secure.db");
    CHECK_EQ(retention_secure_delete(s, 1), 2); /* db_open sets FAST */
    CHECK_EQ(retention_secure_delete(s, 0), 1);
    CHECK_EQ(retention_secure_delete(s, 1), 0);
    CHECK_EQ(retention_secure_delete(s, 2), 1);
    CHECK_EQ(retention_secure_delete(s, 2), 2);
    store_close(s);
}

/* The purge and egress_expired share one rule; around the cutoff they
 * must agree record by record (including the quirk of comparing
 * occurred_at as text: ".0001Z" sorts before ".000Z"). */
static void egress_expired_agrees(void)
{
    struct store *s = fresh_store("agree.db");
    const uint64_t cutoff_note = NOW_MS - 30 * DAY_MS;
    struct {
        const struct entity_def *e;
        uint64_t at;          /* when written (updated_at) */
        const char *occurred; /* activities */
        int want;
        char *id;
    } r[] = {
        /* in the order written: the clock never goes back */
        {&entity_note, NOW_MS - 400 * DAY_MS, NULL, 1, NULL},
        {&entity_note, cutoff_note - 1, NULL, 1, NULL},
        {&entity_note, cutoff_note, NULL, 0, NULL},
        {&entity_note, cutoff_note + 1, NULL, 0, NULL},
        /* activities age by occurred_at, whenever they were written
         * (here: today); the activity cutoff is 2025-06-01T00:00:00.000Z */
        {&entity_activity, NOW_MS, "2025-05-31T23:59:59Z", 1, NULL},
        {&entity_activity, NOW_MS, "2025-05-31T23:59:59.999Z", 1, NULL},
        {&entity_activity, NOW_MS, "2025-06-01T00:00:00.000Z", 0, NULL},
        {&entity_activity, NOW_MS, "2025-06-01T00:00:00Z", 0, NULL},
        {&entity_activity, NOW_MS, "2025-06-01T00:00:00.0001Z", 1, NULL},
        {&entity_activity, NOW_MS, "2026-05-01T10:00:00Z", 0, NULL},
    };
    size_t n = sizeof r / sizeof r[0];
    struct op_error err;
    for (size_t i = 0; i < n; i++) {
        fx_clock_ms = r[i].at;
        r[i].id = r[i].occurred ? fx_create(s, r[i].e,
                                            json_pack("{s:s, s:s, s:s}", "channel", "call",
                                                      "occurred_at", r[i].occurred, "body", "x"))
                                : fx_create(s, r[i].e, json_pack("{s:s}", "body", "x"));
        json_t *rec = NULL;
        CHECK_EQ(store_get(s, r[i].e, r[i].id, 0, &rec, &err), 0);
        int got = egress_expired(&pol, r[i].e, rec, (int64_t)NOW_MS);
        if (got != r[i].want)
            fprintf(stderr, "  record %zu (%s): egress_expired %d, want %d\n", i, r[i].e->name, got,
                    r[i].want);
        CHECK_EQ(got, r[i].want);
        json_decref(rec);
    }
    fx_clock_ms = NOW_MS;
    struct retention_report rep;
    CHECK_EQ(retention_run(s, &pol, NOW_MS, NULL, &rep, &err), 0);
    for (size_t i = 0; i < n; i++) {
        char sql[300];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM audit_log WHERE action = 'purge' AND record_id = '%s'",
                 r[i].id);
        int64_t purged = fx_count(s, sql);
        if (purged != r[i].want)
            fprintf(stderr, "  record %zu (%s): purged %lld, egress_expired said %d\n", i,
                    r[i].e->name, (long long)purged, r[i].want);
        CHECK_EQ(purged, r[i].want);
        free(r[i].id);
    }
    store_close(s);
}

int main(void)
{
    fx_tmpdir("retention");
    build_policy();
    RUN(purges_old_keeps_recent);
    RUN(tombstone_still_holding_text_is_purged);
    RUN(batches_and_limits);
    RUN(users_cannot_be_purged);
    RUN(egress_expired_agrees);
    RUN(every_entity_has_queries);
    RUN(secure_delete_modes);
    return fx_finish();
}
