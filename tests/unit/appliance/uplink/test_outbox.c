/* Tests for appliance/uplink/outbox.c and the capture triggers of migration 0006:
 * every write path queues exactly the right rows in its own transaction
 * (a rollback queues nothing), local-only tables queue nothing, purges and
 * erasures go out first, an ack prunes exactly what it covers and can be
 * repeated, a batch or an ack inside the caller's transaction leaves it
 * open, and a database migrated from version 5 queues what it held. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "db.h"
#include "consent.h"
#include "consent_policy.h"
#include "importer.h"
#include "outbox.h"
#include "policy.h"
#include "retention.h"
#include "store.h"
#include "store_fixture.h"
#include "subject.h"
#include "testlib.h"

#define DAY_MS UINT64_C(86400000)
#define NOW_MS UINT64_C(1795514400000) /* 2026-11-24T10:00:00Z */

/* Records meant to be old are written on the injected clock from the start. */
static struct store *fresh_store(const char *name)
{
    return fx_store_at(name, NOW_MS - 100 * DAY_MS);
}

/* The whole outbox as "entity:op:version:priority" lines, in seq order,
 * with record ids left out so expectations stay readable. */
static char *dump(struct store *s)
{
    static char buf[4096];
    sqlite3_stmt *st;
    size_t len = 0;
    buf[0] = '\0';
    sqlite3_prepare_v2(store_db(s),
                       "SELECT entity || ':' || op || ':' || version || ':' || priority "
                       "FROM outbox ORDER BY seq",
                       -1, &st, NULL);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", len ? " " : "",
                         (const char *)sqlite3_column_text(st, 0));
        if (w < 0 || (size_t)w >= sizeof buf - len)
            break;
        len += (size_t)w;
    }
    sqlite3_finalize(st);
    return buf;
}

static void clear(struct store *s)
{
    sqlite3_exec(store_db(s), "DELETE FROM outbox", NULL, NULL, NULL);
}

static void store_writes_queue_rows(void)
{
    struct store *s = fresh_store("writes.db");
    CHECK_STR(dump(s), "");
    struct op_error err;
    char *c = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Ana"));
    json_t *ch = json_pack("{s:s}", "family_name", "Silva");
    CHECK_EQ(store_update(s, &entity_contact, c, 1, ch, 0, NULL, &err), 0);
    json_decref(ch);
    CHECK_EQ(store_delete(s, &entity_contact, c, 2, NULL, &err), 0);
    CHECK_STR(dump(s), "contact:upsert:1:2 contact:upsert:2:2 contact:delete:3:2");
    clear(s);

    char *o = fx_create(s, &entity_organization, json_pack("{s:s}", "name", "Acme"));
    char *c2 = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Bo"));
    char *n = fx_create(s, &entity_note, json_pack("{s:s, s:s}", "body", "hi", "contact_id", c2));
    char *d =
        fx_create(s, &entity_deal, json_pack("{s:s, s:s}", "title", "Big", "organization_id", o));
    CHECK_STR(dump(s),
              "organization:upsert:1:2 contact:upsert:1:2 note:upsert:1:2 deal:upsert:1:2");
    /* The outbox row carries the record's own stamp and id. */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox AS b JOIN notes AS n ON n.id = b.record_id "
                         "AND n.updated_hlc = b.hlc AND n.version = b.version"),
             1);
    clear(s);

    /* A failed write (stale version) queues nothing. */
    ch = json_pack("{s:s}", "body", "x");
    CHECK(store_update(s, &entity_note, n, 7, ch, 0, NULL, &err) < 0);
    json_decref(ch);
    CHECK_STR(dump(s), "");

    /* A rolled-back transaction queues nothing. */
    CHECK_EQ(store_begin(s, &err), 0);
    free(fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Gone")));
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 1);
    store_rollback(s);
    CHECK_STR(dump(s), "");

    /* Local-only tables queue nothing. */
    CHECK_EQ(sqlite3_exec(store_db(s),
                          "INSERT INTO node_meta (key, value) VALUES ('x', 'y');"
                          "INSERT INTO suppressions (hash, channel, created_ms, reason) "
                          "VALUES ('ab', 'email', 1, 'withdrawn')",
                          NULL, NULL, NULL),
             SQLITE_OK);
    CHECK_STR(dump(s), "");
    free(c), free(o), free(c2), free(n), free(d);
    store_close(s);
}

/* The other synced entities, a consent and a retention purge. */
static void other_paths_queue_rows(void)
{
    struct store *s = fresh_store("paths.db");
    struct op_error err;
    fx_clock_ms = NOW_MS - 100 * DAY_MS;
    store_set_clock(s, fx_clock, NULL);
    char *c = fx_create(s, &entity_contact,
                        json_pack("{s:s, s:s}", "given_name", "Ana", "email", "ana@example.org"));
    char *o = fx_create(s, &entity_organization, json_pack("{s:s}", "name", "Acme"));
    char *l = fx_create(s, &entity_contact_organization,
                        json_pack("{s:s, s:s}", "contact_id", c, "organization_id", o));
    char *a = fx_create(s, &entity_activity,
                        json_pack("{s:s, s:s, s:s}", "channel", "call", "occurred_at",
                                  "2026-08-01T09:00:00Z", "contact_id", c));
    char *t = fx_create(s, &entity_task, json_pack("{s:s}", "title", "Call back"));
    char *n = fx_create(s, &entity_note, json_pack("{s:s}", "body", "old note"));
    CHECK_STR(dump(s), "contact:upsert:1:2 organization:upsert:1:2 contact_organization:upsert:1:2 "
                       "activity:upsert:1:2 task:upsert:1:2 note:upsert:1:2");
    clear(s);

    struct policy *pol = fx_consent_policy();
    struct consent_request req = {.contact_id = c,
                                  .channel = "email",
                                  .purpose = "newsletter",
                                  .method = "double_opt_in",
                                  .source = "web form",
                                  .text_version = "v1"};
    char token[CONSENT_TOKEN_BUF];
    CHECK_EQ(consent_record(s, pol, &req, (int64_t)NOW_MS, NULL, token, &err), 0);
    /* the consent record syncs; its token (consent_tokens) does not */
    CHECK_STR(dump(s), "consent:upsert:1:2");
    clear(s);
    char cid[40];
    CHECK_EQ(consent_confirm(s, token, NULL, (int64_t)NOW_MS + 1000, cid, &err), 0);
    CHECK_STR(dump(s), "consent:upsert:2:2");
    clear(s);
    policy_free(pol);

    /* Retention: notes older than 30 days are purged, urgently. */
    static struct policy_retention rule;
    static struct policy rpol;
    snprintf(rpol.region, sizeof rpol.region, "EU-DE");
    rule.entity = &entity_note;
    rule.days = 30;
    snprintf(rule.basis, sizeof rule.basis, "test");
    rpol.retention = &rule;
    rpol.nretention = 1;
    fx_clock_ms = NOW_MS;
    struct retention_report rep;
    CHECK_EQ(retention_run(s, &rpol, NOW_MS, NULL, &rep, &err), 0);
    CHECK_EQ(rep.total, 1);
    CHECK_STR(dump(s), "note:purge:2:0");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox AS b JOIN notes AS n ON n.id = b.record_id "
                         "AND n.deleted = 1"),
             1);
    free(c), free(o), free(l), free(a), free(t), free(n);
    store_close(s);
}

static void import_queues_each_row(void)
{
    struct store *s = fresh_store("import.db");
    static const char csv[] = "given_name,email\r\nAna,a@example.org\r\nBo,b@example.org\r\n";
    FILE *f = fmemopen((void *)csv, sizeof csv - 1, "r");
    struct importer_opts o = {.name = "people.csv"};
    struct importer_result res;
    struct op_error err;
    CHECK_EQ(importer_run(s, f, &o, &res, &err), 0);
    fclose(f);
    CHECK_STR(dump(s), "contact:upsert:1:2 contact:upsert:1:2");
    /* A refused import (bad column) leaves the outbox as it was. */
    static const char bad[] = "given_name,nonsense\r\nCy,1\r\n";
    f = fmemopen((void *)bad, sizeof bad - 1, "r");
    CHECK(importer_run(s, f, &o, &res, &err) < 0);
    fclose(f);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 2);
    store_close(s);
}

static void purge_and_erase_are_urgent(void)
{
    struct store *s = fresh_store("erase.db");
    struct op_error err;
    char *a = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Ana"));
    char *b = fx_create(s, &entity_contact,
                        json_pack("{s:s, s:s}", "given_name", "Bo", "email", "bo@example.org"));
    char *n =
        fx_create(s, &entity_note, json_pack("{s:s, s:s}", "body", "about Bo", "contact_id", b));
    CHECK_EQ(store_purge(s, &entity_contact, a, "purge", "retention", &err), 0);
    struct subject_erase_report rep;
    CHECK_EQ(subject_erase(s, b, "ticket 7", 1795000000000, &rep, &err), 0);
    CHECK_STR(dump(s), "contact:upsert:1:2 contact:upsert:1:2 note:upsert:1:2 "
                       "contact:purge:2:0 contact:erase:2:0 note:erase:2:0");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM erasures WHERE sent_at_ms IS NULL"), 2);

    /* Urgent rows come first although written last. */
    struct outbox_row rows[8];
    size_t k = 0;
    struct outbox_cursor at = {0, 0}, cov;
    CHECK_EQ(outbox_next_batch(s, &at, 8, rows, &k, &cov, &err), 0);
    CHECK_EQ(k, 6);
    CHECK_STR(rows[0].op, "purge");
    CHECK_STR(rows[1].op, "erase");
    CHECK_STR(rows[2].op, "erase");
    CHECK_STR(rows[3].op, "upsert");
    CHECK_EQ(rows[0].priority, 0);
    CHECK_EQ(rows[3].priority, 2);

    /* A window of 3 holds only the urgent lane; acking it leaves the
     * ordinary rows and marks the erasures sent. */
    CHECK_EQ(outbox_next_batch(s, &at, 3, rows, &k, &cov, &err), 0);
    CHECK_EQ(k, 3);
    CHECK_EQ(cov.ordinary, 0);
    CHECK(cov.urgent > 0);
    CHECK_EQ(outbox_ack(s, &cov, 1795000001000, &err), 0);
    CHECK_STR(dump(s), "contact:upsert:1:2 contact:upsert:1:2 note:upsert:1:2");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM erasures WHERE sent_at_ms = 1795000001000"), 2);
    CHECK_EQ(outbox_ack(s, &cov, 1795000002000, &err), 0); /* again: harmless */
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 3);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM erasures WHERE sent_at_ms = 1795000001000"), 2);
    free(a), free(b), free(n);
    store_close(s);
}

static void batches_collapse_and_ack(void)
{
    struct store *s = fresh_store("ack.db");
    struct op_error err;
    char *a = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Ana"));
    for (int v = 1; v <= 3; v++) {
        json_t *ch = json_pack("{s:s}", "job_title", v == 1 ? "a" : v == 2 ? "b" : "c");
        CHECK_EQ(store_update(s, &entity_contact, a, v, ch, 0, NULL, &err), 0);
        json_decref(ch);
    }
    char *b = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Bo"));
    int64_t depth = -1, oldest = -1;
    CHECK_EQ(outbox_stats(s, &depth, &oldest, &err), 0);
    CHECK_EQ(depth, 5);
    CHECK(oldest > 1700000000000); /* a real Unix ms time */

    struct outbox_row rows[10];
    size_t k;
    struct outbox_cursor at = {0, 0}, cov;
    CHECK_EQ(outbox_next_batch(s, &at, 10, rows, &k, &cov, &err), 0);
    CHECK_EQ(k, 2); /* Ana at version 4, Bo */
    CHECK_EQ(rows[0].version, 4);
    CHECK_STR(rows[0].record_id, a);
    CHECK_STR(rows[1].record_id, b);

    /* A window of 2 covers Ana's first two rows only. */
    CHECK_EQ(outbox_next_batch(s, &at, 2, rows, &k, &cov, &err), 0);
    CHECK_EQ(k, 1);
    CHECK_EQ(rows[0].version, 2);
    CHECK_EQ(outbox_ack(s, &cov, 1, &err), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 3);
    /* The next window starts after the acked one. */
    CHECK_EQ(outbox_next_batch(s, &cov, 10, rows, &k, &at, &err), 0);
    CHECK_EQ(k, 2);
    CHECK_EQ(rows[0].version, 4);

    /* Past the last issued seq: refused, nothing deleted. */
    struct outbox_cursor far = {0, at.ordinary + 100};
    CHECK_EQ(outbox_ack(s, &far, 1, &err), -ERANGE);
    CHECK_CONTAINS(err.msg, "past the last outbox row");
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 3);
    CHECK_EQ(outbox_ack(s, &at, 1, &err), 0);
    CHECK_EQ(outbox_ack(s, &at, 1, &err), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 0);
    CHECK_EQ(outbox_stats(s, &depth, &oldest, &err), 0);
    CHECK_EQ(depth, 0);
    CHECK_EQ(oldest, 0);
    CHECK_EQ(outbox_next_batch(s, &at, 0, rows, &k, &cov, &err), -EINVAL);
    free(a), free(b);
    store_close(s);
}

/* A node from before sync queues everything it holds when migrated. */
static void migration_backfills(void)
{
    fx_path(fx_db, sizeof fx_db, "v5.db");
    sqlite3 *db;
    struct op_error err;
    CHECK_EQ(db_open(fx_db, DB_OPEN_CREATE | DB_OPEN_NO_MIGRATE, &db, &err), 0);
    CHECK_EQ(db_migrate(db, 5, &err), 5);
    CHECK_EQ(sqlite3_exec(db,
                          "INSERT INTO organizations (id, version, created_hlc, updated_hlc, name) "
                          "VALUES ('o1', 1, 10, 10, 'Acme');"
                          "INSERT INTO contacts (id, version, created_hlc, updated_hlc, deleted, "
                          "given_name) VALUES ('c1', 3, 5, 20, 0, 'Ana'), "
                          "('c2', 2, 6, 30, 1, NULL);"
                          "INSERT INTO users (id, version, created_hlc, updated_hlc, name, role) "
                          "VALUES ('u1', 1, 1, 1, 'admin', 'admin');"
                          "INSERT INTO erasures (id, subject_id, entity, record_id, erased_at_ms) "
                          "VALUES ('e1', 'c2', 'contact', 'c2', 99)",
                          NULL, NULL, NULL),
             SQLITE_OK);
    CHECK(db_migrate(db, -1, &err) >= 1);
    db_close(db);
    struct store *s = NULL;
    CHECK_EQ(store_open(fx_db, 0, &s, &err), 0);
    if (!s)
        return;
    CHECK_STR(dump(s), "organization:upsert:1:2 contact:upsert:3:2 contact:delete:2:2 "
                       "contact:erase:0:0");
    store_close(s);
}

/* A batch is read in one snapshot of its own, or inside the caller's
 * transaction, which it leaves open; a refused ack inside the caller's
 * transaction changes nothing and leaves it open too. */
static void batches_in_transactions(void)
{
    struct store *s = fresh_store("txn.db");
    struct op_error err;
    char *a = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Ana"));
    struct outbox_row rows[4];
    size_t k = 0;
    struct outbox_cursor at = {0, 0}, cov;
    CHECK_EQ(outbox_next_batch(s, &at, 4, rows, &k, &cov, &err), 0);
    CHECK_EQ(k, 1);
    CHECK_EQ(sqlite3_get_autocommit(store_db(s)), 1);

    CHECK_EQ(store_begin(s, &err), 0);
    char *b = fx_create(s, &entity_contact, json_pack("{s:s}", "given_name", "Bo"));
    CHECK_EQ(outbox_next_batch(s, &at, 4, rows, &k, &cov, &err), 0);
    CHECK_EQ(k, 2); /* the caller's own uncommitted row too */
    CHECK_EQ(sqlite3_get_autocommit(store_db(s)), 0);
    struct outbox_cursor far = {0, cov.ordinary + 100};
    CHECK_EQ(outbox_ack(s, &far, 1, &err), -ERANGE);
    CHECK_EQ(sqlite3_get_autocommit(store_db(s)), 0);
    CHECK_EQ(outbox_ack(s, &cov, 1, &err), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 0);
    store_rollback(s);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outbox"), 1);
    CHECK_EQ(sqlite3_get_autocommit(store_db(s)), 1);
    free(a), free(b);
    store_close(s);
}

int main(void)
{
    fx_tmpdir("outbox");
    RUN(store_writes_queue_rows);
    RUN(other_paths_queue_rows);
    RUN(import_queues_each_row);
    RUN(purge_and_erase_are_urgent);
    RUN(batches_collapse_and_ack);
    RUN(batches_in_transactions);
    RUN(migration_backfills);
    return fx_finish();
}
