/* Tests for appliance/store/subject.c: the export holds everything about one
 * person (consents with evidence, activities, links, audit rows) as JSON
 * and CSV; erasure blanks and tombstones the person's records in one go,
 * leaves a search for the name or e-mail empty, keeps the database
 * consistent (check_run), leaves no trace of the old values in the
 * database files, records the erasures for HQ, suppresses the address so
 * that a re-import is not contacted, and can be repeated harmlessly. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "consent.h"
#include "db.h"
#include "importer.h"
#include "outreach.h"
#include "policy.h"
#include "store.h"
#include "store_fixture.h"
#include "subject.h"
#include "testlib.h"

#define NOW_MS UINT64_C(1795000000000)

struct person {
    char *contact, *org, *link, *deal, *activity, *task, *note, *consent, *other;
};

static void make_person(struct store *s, struct person *p)
{
    p->contact =
        fx_create(s, &entity_contact,
                  json_pack("{s:s, s:s, s:s, s:s, s:s}", "given_name", "Zofia", "family_name",
                            "Canarywska", "email", "zofia.canarywska@example.org", "phone",
                            "+49 30 5550123", "street", "Canarystraße 17"));
    p->other =
        fx_create(s, &entity_contact,
                  json_pack("{s:s, s:s}", "family_name", "Keller", "email", "keller@example.org"));
    p->org = fx_create(s, &entity_organization, json_pack("{s:s}", "name", "Nordwind GmbH"));
    p->link = fx_create(s, &entity_contact_organization,
                        json_pack("{s:s, s:s, s:s}", "contact_id", p->contact, "organization_id",
                                  p->org, "role", "buyer"));
    p->deal = fx_create(s, &entity_deal,
                        json_pack("{s:s, s:s, s:s}", "title", "Framework contract", "contact_id",
                                  p->contact, "organization_id", p->org));
    p->activity = fx_create(s, &entity_activity,
                            json_pack("{s:s, s:s, s:s, s:s}", "channel", "call", "occurred_at",
                                      "2026-10-01T10:00:00Z", "body", "Zofia said CANARY-call-9931",
                                      "contact_id", p->contact));
    p->task =
        fx_create(s, &entity_task,
                  json_pack("{s:s, s:s}", "title", "Call Zofia back", "contact_id", p->contact));
    p->note =
        fx_create(s, &entity_note,
                  json_pack("{s:s, s:s}", "body", "CANARY-note-4412", "contact_id", p->contact));
    p->consent = fx_create(s, &entity_consent,
                           json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "contact_id",
                                     p->contact, "channel", "email", "purpose", "newsletter",
                                     "status", "granted", "method", "single_opt_in", "requested_at",
                                     "2026-09-01T08:00:00Z", "evidence", "ip", "203.0.113.77",
                                     "form", "CANARY-evidence-2208"));
}

static void free_person(struct person *p)
{
    free(p->contact);
    free(p->org);
    free(p->link);
    free(p->deal);
    free(p->activity);
    free(p->task);
    free(p->note);
    free(p->consent);
    free(p->other);
}

static void export_holds_everything(void)
{
    struct store *s = fx_store("export.db");
    struct person p;
    make_person(s, &p);
    json_t *doc = NULL;
    struct op_error err;
    int rc = subject_export(s, p.contact, NOW_MS, &doc, &err);
    CHECK_EQ(rc, 0);
    CHECK_STR(json_string_value(json_object_get(doc, "format")), SUBJECT_EXPORT_FORMAT);
    CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "contact"), "email")),
              "zofia.canarywska@example.org");
    json_t *consents = json_object_get(doc, "consents");
    CHECK_EQ(json_array_size(consents), 1);
    CHECK_STR(json_string_value(
                  json_object_get(json_object_get(json_array_get(consents, 0), "evidence"), "ip")),
              "203.0.113.77");
    CHECK_EQ(json_array_size(json_object_get(doc, "activities")), 1);
    CHECK_EQ(json_array_size(json_object_get(doc, "tasks")), 1);
    CHECK_EQ(json_array_size(json_object_get(doc, "notes")), 1);
    CHECK_EQ(json_array_size(json_object_get(doc, "deals")), 1);
    CHECK_EQ(json_array_size(json_object_get(doc, "contact_organizations")), 1);
    CHECK_STR(json_string_value(json_object_get(
                  json_array_get(json_object_get(doc, "organizations"), 0), "name")),
              "Nordwind GmbH");
    /* one create row for each of the 7 records about the person (not the organization) */
    CHECK_EQ(json_array_size(json_object_get(doc, "audit_log")), 7);
    /* nothing about the other contact */
    char *dump = json_dumps(doc, 0);
    CHECK(!strstr(dump, "keller@example.org"));
    free(dump);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ(subject_write_csv(doc, f, &err), 0);
    fclose(f);
    CHECK(!strncmp(buf, "entity,id,field,value\r\n", 23));
    char line[256];
    snprintf(line, sizeof line, "consent,%s,evidence,", p.consent);
    CHECK_CONTAINS(buf, line);
    CHECK_CONTAINS(buf, "203.0.113.77");
    snprintf(line, sizeof line, "activity,%s,body,Zofia said CANARY-call-9931\r\n", p.activity);
    CHECK_CONTAINS(buf, line);
    snprintf(line, sizeof line, "contact,%s,email,zofia.canarywska@example.org\r\n", p.contact);
    CHECK_CONTAINS(buf, line);
    CHECK_CONTAINS(buf, "audit_log,1,action,create\r\n");
    free(buf);
    json_decref(doc);

    CHECK_EQ(subject_export(s, "0190b5a0-0000-7000-8000-000000000000", NOW_MS, &doc, &err),
             -ENOENT);
    free_person(&p);
    store_close(s);
}

static int search_hits(struct store *s, const char *text)
{
    json_t *r = NULL;
    struct op_error err;
    if (store_search(s, text, 10, &r, &err) < 0) {
        fprintf(stderr, "search %s: %s\n", text, err.msg);
        return -1;
    }
    int n = (int)json_array_size(r);
    json_decref(r);
    return n;
}

/* The CSV is for the person's spreadsheet: text that would run as a
 * formula is written behind a single quote. */
static void csv_guards_formulas(void)
{
    json_t *doc = json_pack("{s:{s:s, s:s, s:s, s:s}}", "contact", "id", "c1", "family_name",
                            "=HYPERLINK(\"http://evil.example/\")", "phone", "+49 30 1234567",
                            "given_name", "Plain");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct op_error err;
    CHECK_EQ(subject_write_csv(doc, f, &err), 0);
    fclose(f);
    CHECK_CONTAINS(buf, "contact,c1,family_name,\"'=HYPERLINK(\"\"http://evil.example/\"\")\"\r\n");
    CHECK_CONTAINS(buf, "contact,c1,phone,\"'+49 30 1234567\"\r\n");
    CHECK_CONTAINS(buf, "contact,c1,given_name,Plain\r\n");
    free(buf);
    json_decref(doc);
}

static void count_problem(void *ctx, const char *line)
{
    fprintf(stderr, "  check: %s\n", line);
    (*(int *)ctx)++;
}

static void erase_leaves_nothing(void)
{
    struct store *s = fx_store("erase.db");
    struct person p;
    make_person(s, &p);
    /* more contacts, each its own transaction, so the person's search
     * tokens sit in an older index segment than the latest writes */
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof name, "Filler%03d", i);
        free(fx_create(s, &entity_contact, json_pack("{s:s}", "family_name", name)));
    }
    CHECK_EQ(search_hits(s, "Canarywska"), 1);
    CHECK_EQ(search_hits(s, "zofia.canarywska"), 1);

    struct subject_erase_report rep;
    struct op_error err;
    /* a message to the person that the relay refused, naming the address */
    int64_t mid = 0;
    CHECK_EQ(outreach_queue_test(s, p.contact, NOW_MS, &mid, &err), 0);
    sqlite3 *w = NULL;
    CHECK_EQ(db_open(fx_db, 0, &w, &err), 0);
    CHECK_EQ(sqlite3_exec(w,
                          "UPDATE outreach_messages SET state = 'failed', error = "
                          "'550 <zofia.canarywska@example.org> CANARY-bounce-5150'; "
                          "INSERT INTO outreach_events (message_id, kind, at_ms, detail) "
                          "SELECT id, 'bounced_hard', 1, "
                          "'<zofia.canarywska@example.org> CANARY-dsn-5151' "
                          "FROM outreach_messages",
                          NULL, NULL, NULL),
             SQLITE_OK);
    db_close(w);
    int rc = subject_erase(s, p.contact, "ticket 4711", NOW_MS, &rep, &err);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "  %s\n", err.msg);
    CHECK_EQ(rep.records, 6); /* contact, link, activity, task, note, consent */
    CHECK_EQ(rep.suppressed, 4);
    CHECK_EQ(search_hits(s, "Canarywska"), 0);
    CHECK_EQ(search_hits(s, "zofia"), 0);
    CHECK_EQ(search_hits(s, "Keller"), 1);

    json_t *c = NULL;
    CHECK_EQ(store_get(s, &entity_contact, p.contact, STORE_INCLUDE_DELETED, &c, &err), 0);
    CHECK(json_is_true(json_object_get(c, "deleted")));
    CHECK(json_is_null(json_object_get(c, "email")));
    CHECK(json_is_null(json_object_get(c, "family_name")));
    CHECK(json_is_null(json_object_get(c, "street")));
    json_decref(c);
    json_t *k = NULL;
    CHECK_EQ(store_get(s, &entity_consent, p.consent, STORE_INCLUDE_DELETED, &k, &err), 0);
    CHECK_EQ(json_object_size(json_object_get(k, "evidence")), 0);
    CHECK(json_is_true(json_object_get(k, "deleted")));
    json_decref(k);
    /* the deal stays (the organization's record), pointing at the tombstone */
    json_t *d = NULL;
    CHECK_EQ(store_get(s, &entity_deal, p.deal, 0, &d, &err), 0);
    json_decref(d);

    CHECK_EQ(fx_count(s, "SELECT count(*) FROM erasures WHERE sent_at_ms IS NULL"), 6);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE action = 'erase'"), 6);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM audit_log WHERE detail LIKE '%Canary%'"), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outreach_messages"), 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM outreach_events"), 0);

    /* consistent: search index, foreign keys, integrity */
    sqlite3 *ro = NULL;
    CHECK_EQ(db_open(fx_db, DB_OPEN_READONLY | DB_OPEN_NO_MIGRATE, &ro, &err), 0);
    int problems = 0;
    struct check_result cr;
    CHECK_EQ(check_run(ro, count_problem, &problems, &cr, &err), 0);
    CHECK_EQ(problems, 0);
    db_close(ro);

    /* the old values are not in the database files */
    char wal[320];
    snprintf(wal, sizeof wal, "%s-wal", fx_db);
    static const char *const canaries[] = {
        "Canarywska",           "canarywska",       "zofia",
        "canarywska@example",   "CANARY-call-9931", "CANARY-note-4412",
        "CANARY-evidence-2208", "203.0.113.77",     "Canarystra",
        "CANARY-bounce-5150",   "CANARY-dsn-5151"};
    for (size_t i = 0; i < sizeof canaries / sizeof canaries[0]; i++) {
        int in_db = fx_file_contains(fx_db, canaries[i]);
        int in_wal = fx_file_contains(wal, canaries[i]);
        if (in_db || in_wal)
            fprintf(stderr, "  '%s' still in %s\n", canaries[i], in_db ? "the database" : "WAL");
        CHECK(!in_db);
        CHECK(!in_wal);
    }
    CHECK(fx_file_contains(fx_db, "keller@example.org"));

    /* again: nothing left to do */
    rc = subject_erase(s, p.contact, NULL, NOW_MS, &rep, &err);
    CHECK_EQ(rc, 0);
    CHECK_EQ(rep.records, 0);
    CHECK_EQ(fx_count(s, "SELECT count(*) FROM erasures"), 6);

    /* the export of an erased contact holds only the fact of the erasure */
    json_t *doc = NULL;
    CHECK_EQ(subject_export(s, p.contact, NOW_MS, &doc, &err), 0);
    CHECK_EQ(json_array_size(json_object_get(doc, "erasures")), 6);
    char *dump = json_dumps(doc, 0);
    CHECK(!strstr(dump, "Canary"));
    CHECK(!strstr(dump, "CANARY"));
    free(dump);
    json_decref(doc);

    CHECK_EQ(subject_erase(s, "0190b5a0-0000-7000-8000-000000000000", NULL, NOW_MS, &rep, &err),
             -ENOENT);
    free_person(&p);
    store_close(s);
}

static void reimport_stays_suppressed(void)
{
    static const char yaml[] = "format: outpost-region-policy/1\n"
                               "region: EU-DE\n"
                               "country: DE\n"
                               "default_class: local_only\n"
                               "default_basis: test\n"
                               "consent:\n"
                               "  email: {mode: opt_out, basis: test}\n"
                               "  sms: {mode: opt_out, basis: test}\n";
    struct policy *pol = NULL;
    struct op_error err;
    if (policy_load_buffer("EU-DE.yaml", yaml, sizeof yaml - 1, &pol, &err) < 0) {
        fprintf(stderr, "policy: %s\n", err.msg);
        exit(1);
    }
    struct store *s = fx_store("suppress.db");
    struct person p;
    make_person(s, &p);
    struct consent_decision dec;
    CHECK_EQ(
        consent_check(s, pol, p.other, "email", "newsletter", NULL, (int64_t)NOW_MS, &dec, &err),
        0);
    CHECK_EQ(dec.allowed, 1); /* opt-out: allowed unless suppressed */
    struct subject_erase_report rep;
    CHECK_EQ(subject_erase(s, p.contact, NULL, NOW_MS, &rep, &err), 0);

    /* the same person comes back through a CSV import, address in capitals */
    const char csv[] = "given_name,family_name,email,phone\r\n"
                       "Zofia,Canarywska,ZOFIA.Canarywska@example.org,030 5550123\r\n";
    FILE *in = fmemopen((void *)csv, sizeof csv - 1, "r");
    struct importer_opts o = {.name = "again.csv"};
    struct importer_result res;
    int rc = importer_run(s, in, &o, &res, &err);
    fclose(in);
    CHECK_EQ(rc, 0);
    char nid[64] = "";
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_db(s), "SELECT id FROM contacts WHERE deleted = 0 AND email = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, "ZOFIA.Canarywska@example.org", -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(nid, sizeof nid, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    CHECK(nid[0]);
    CHECK_EQ(consent_check(s, pol, nid, "email", "newsletter", NULL, (int64_t)NOW_MS, &dec, &err),
             0);
    CHECK_EQ(dec.allowed, 0);
    CHECK_EQ(dec.state, CONSENT_SUPPRESSED);
    CHECK_EQ(consent_check(s, pol, nid, "sms", "offers", NULL, (int64_t)NOW_MS, &dec, &err), 0);
    CHECK_EQ(dec.allowed, 0);
    CHECK_EQ(dec.state, CONSENT_SUPPRESSED);
    /* the other contact is not affected */
    CHECK_EQ(
        consent_check(s, pol, p.other, "email", "newsletter", NULL, (int64_t)NOW_MS, &dec, &err),
        0);
    CHECK_EQ(dec.allowed, 1);
    free_person(&p);
    store_close(s);
    policy_free(pol);
}

int main(void)
{
    fx_tmpdir("subject");
    RUN(export_holds_everything);
    RUN(csv_guards_formulas);
    RUN(erase_leaves_nothing);
    RUN(reimport_stays_suppressed);
    return fx_finish();
}
