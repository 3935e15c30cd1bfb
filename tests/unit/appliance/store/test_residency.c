/* Tests for appliance/store/residency.c, driven through the store and the sync
 * ledger as outpostd drives them, under the KE profile (it pins contacts
 * by a custom field):
 *   - in time: a record restricted, pinned, erased or purged while an
 *     older version waits in the spool (spooled, or half uploaded) voids
 *     the spool; the spool file is emptied before the write returns (no
 *     canary left in it), the next segments hold no canary, and a
 *     half-uploaded segment stays listed for termination at HQ;
 *   - relations: what is about a restricted contact is withheld (link,
 *     activity, note, task, consent, a contact-only deal and its
 *     activities); a deal of a visible organization goes without the
 *     contact; lifting the restriction sends them again;
 *   - metadata: records HQ never received leave nothing at all (no
 *     withdraw, erase, purge or delete, not even the id);
 *   - what retention has expired leaves as a purge, or not at all;
 *   - a changed policy voids the spool and queues every record again.
 * Each scenario checks the bytes of what would leave (decoded segments)
 * for canary values, and that the visible records still leave, so a
 * segmenter that sent nothing would fail. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "outbox.h"
#include "policy.h"
#include "residency.h"
#include "segment.h"
#include "store.h"
#include "store_fixture.h"
#include "subject.h"
#include "sync_ledger.h"
#include "sync_mac.h"
#include "outpost_config.h"
#include "testlib.h"

static char dbp[FX_PATH_MAX], spool[FX_PATH_MAX];
static struct node_credentials cred;
static struct store *st;
static struct policy *pol;

static void fresh(const char *name)
{
    fx_node(name, "KE", dbp, spool, &st);
    store_set_policy(st, pol);
}

static struct sync_ledger *open_ledger(void)
{
    struct sync_ledger_options o = {.db_path = dbp, .spool_dir = spool, .cred = &cred};
    struct sync_ledger *l = NULL;
    struct op_error err;
    if (sync_ledger_open(&o, &l, &err) < 0)
        fx_die("sync_ledger_open", &err);
    return l;
}

static char *create(const struct entity_def *e, json_t *in)
{
    return fx_create(st, e, in);
}

static int64_t version_of(const struct entity_def *e, const char *id)
{
    json_t *r = NULL;
    struct op_error err;
    if (store_get(st, e, id, STORE_INCLUDE_DELETED, &r, &err) < 0)
        fx_die("get", &err);
    int64_t v = json_integer_value(json_object_get(r, "version"));
    json_decref(r);
    return v;
}

static int update(const struct entity_def *e, const char *id, json_t *ch, struct op_error *err)
{
    json_t *out = NULL;
    int rc = store_update(st, e, id, version_of(e, id), ch, 0, &out, err);
    json_decref(ch);
    json_decref(out);
    return rc;
}

/* Everything the segments from the ledger's next cuts would send, decoded:
 * "op entity json\n" per record, appended to *buf (grown). Returns the
 * number of segments cut. ack: acknowledge each as HQ would. */
static int cut_all(struct sync_ledger *l, int ack, char **buf, size_t *len)
{
    struct op_error err;
    int n = 0;
    for (;;) {
        struct sync_segment sg;
        int made = 0;
        if (sync_ledger_make_segment(l, &made, &sg, &err) != 0)
            fx_die("make_segment", &err);
        if (!made)
            break;
        n++;
        struct segment *seg = NULL;
        if (segment_open(sg.path, cred.hq_key, NULL, &seg, &err) < 0)
            fx_die("segment_open", &err);
        const char *entity, *op, *json;
        size_t jl;
        while (segment_next_record(seg, &entity, &op, &json, &jl, &err) == 1) {
            size_t add = strlen(op) + strlen(entity) + jl + 3;
            *buf = realloc(*buf, *len + add + 1);
            *len +=
                (size_t)snprintf(*buf + *len, add + 1, "%s %s %.*s\n", op, entity, (int)jl, json);
        }
        segment_close(seg);
        if (ack) {
            char mac[SYNC_MAC_HEX];
            sync_receipt_mac(cred.hq_key, cred.node_id, sg.no, "applied", sg.to_urgent,
                             sg.to_ordinary, mac);
            json_t *j =
                json_pack("{sssIsss{sIsI}ss}", "node", cred.node_id, "segment", (json_int_t)sg.no,
                          "status", "applied", "to", "urgent", (json_int_t)sg.to_urgent, "ordinary",
                          (json_int_t)sg.to_ordinary, "mac", mac);
            char *r = json_dumps(j, JSON_COMPACT);
            int outcome = 0;
            if (sync_ledger_apply_receipt(l, sg.no, r, strlen(r), &outcome, &err) < 0)
                fx_die("receipt", &err);
            free(r);
            json_decref(j);
        }
    }
    if (!*buf)
        *buf = calloc(1, 1);
    return n;
}

static int64_t count(const char *sql)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL) != SQLITE_OK)
        fx_die(sql, NULL);
    int64_t v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_finalize(q);
    return v;
}

/* The spool's only segment file (spooled, not yet sent). */
static void one_spooled(struct sync_ledger *l, struct sync_segment *sg)
{
    struct op_error err;
    int made = 0;
    if (sync_ledger_make_segment(l, &made, sg, &err) != 0 || !made)
        fx_die("make_segment", &err);
}

/* Restricted while spooled, while half uploaded, and while the segmenter
 * had read it but not recorded its segment. */
static void test_void_in_time(void)
{
    fresh("time");
    struct sync_ledger *l = open_ledger();
    /* region is exportable under KE: the canaries would leave as typed */
    char *keep =
        create(&entity_contact, json_pack("{ssss}", "given_name", "K", "region", "Keepme"));
    char *c =
        create(&entity_contact, json_pack("{ssss}", "given_name", "C", "region", "Canaryspooled"));
    struct sync_segment sg;
    one_spooled(l, &sg);
    /* the uplink has started it: HQ holds part of it */
    struct op_error err;
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://127.0.0.1:9/files/abc", &err), 0);
    int64_t epoch0 = count("SELECT spool_epoch FROM sync_state");
    CHECK_EQ(update(&entity_contact, c, json_pack("{sb}", "restricted", 1), &err), 0);
    /* before the write returned: the file is gone, the row moved */
    struct stat sb;
    CHECK(stat(sg.path, &sb) < 0 && errno == ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM sync_segments WHERE state IN (0, 1)"), 0);
    CHECK_EQ(count("SELECT count(*) FROM spool_voided WHERE upload_url != ''"), 1);
    CHECK_EQ(count("SELECT spool_epoch FROM sync_state"), epoch0 + 1);
    /* HQ may hold the half-sent segment's records: they stay counted */
    CHECK_EQ(count("SELECT count(*) FROM egress_sent"), 2);
    char *out = NULL;
    size_t len = 0;
    CHECK(cut_all(l, 1, &out, &len) >= 1);
    CHECK(!strstr(out, "Canaryspooled"));
    CHECK_CONTAINS(out, "Keepme");
    /* what HQ may hold of it is withdrawn */
    char want[128];
    snprintf(want, sizeof want, "withdraw contact {\"id\":\"%s\"", c);
    CHECK_CONTAINS(out, want);
    free(out);

    /* a segment that never sent a byte: its records are forgotten */
    char *d =
        create(&entity_contact, json_pack("{ssss}", "given_name", "D", "region", "Canaryunsent"));
    one_spooled(l, &sg);
    CHECK_EQ(count("SELECT count(*) FROM egress_sent WHERE segment_no = (SELECT max(no) FROM "
                   "sync_segments)"),
             1);
    if (store_purge(st, &entity_contact, d, "erase", "ticket 7", &err) < 0)
        fx_die("erase", &err);
    CHECK(stat(sg.path, &sb) < 0 && errno == ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM spool_voided"), 1); /* only the half-sent one */
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    CHECK(!strstr(out, "Canaryunsent"));
    CHECK(!strstr(out, d)); /* HQ never had it: not even an erase with its id */
    free(out);
    free(keep);
    free(c);
    free(d);
    sync_ledger_close(l);
}

/* A pin set by a field's value, and an unrelated edit, while spooled. */
static void test_pin_voids_edit_does_not(void)
{
    fresh("pin");
    struct sync_ledger *l = open_ledger();
    char *c = create(&entity_contact, json_pack("{sss{ss}}", "given_name", "Pinme", "custom",
                                                "processing_category", "general"));
    char *e = create(&entity_contact, json_pack("{ss}", "given_name", "Editme"));
    struct sync_segment sg;
    one_spooled(l, &sg);
    struct op_error err;
    /* an ordinary edit keeps the spool: the old value was allowed to leave */
    CHECK_EQ(update(&entity_contact, e, json_pack("{ss}", "job_title", "Buyer"), &err), 0);
    struct stat sb;
    CHECK_EQ(stat(sg.path, &sb), 0);
    CHECK_EQ(count("SELECT count(*) FROM spool_voided"), 0);
    /* pinning voids it */
    CHECK_EQ(update(&entity_contact, c,
                    json_pack("{s{ss}}", "custom", "processing_category", "prescribed"), &err),
             0);
    CHECK(stat(sg.path, &sb) < 0 && errno == ENOENT);
    char *out = NULL;
    size_t len = 0;
    cut_all(l, 1, &out, &len);
    CHECK(!strstr(out, c)); /* never at HQ, now pinned: nothing at all */
    CHECK_CONTAINS(out, e);
    free(out);
    free(c);
    free(e);
    sync_ledger_close(l);
}

/* A record whose changes HQ has all acknowledged is in no segment: its
 * restriction or purge leaves the spool alone (a daily retention run must
 * not void a large spool again and again). A contact, organization or
 * deal voids whenever it becomes withheld: what is about it may be
 * spooled. */
static void test_settled_record_keeps_spool(void)
{
    fresh("settled");
    struct sync_ledger *l = open_ledger();
    char *x = create(&entity_activity,
                     json_pack("{ssss}", "channel", "call", "occurred_at", "2026-11-30T10:00:00Z"));
    char *z = create(&entity_contact, json_pack("{ssss}", "given_name", "Z", "region", "Older"));
    char *out = NULL;
    size_t len = 0;
    cut_all(l, 1, &out, &len);
    free(out);
    CHECK_EQ(count("SELECT count(*) FROM outbox"), 0);
    free(create(&entity_contact, json_pack("{ssss}", "given_name", "Y", "region", "Waiting")));
    struct sync_segment sg;
    one_spooled(l, &sg);
    struct op_error err;
    CHECK_EQ(update(&entity_activity, x, json_pack("{sb}", "restricted", 1), &err), 0);
    if (store_purge(st, &entity_contact, z, "purge", "retention", &err) < 0)
        fx_die("purge", &err);
    struct stat sb;
    CHECK_EQ(stat(sg.path, &sb), 0);
    CHECK_EQ(count("SELECT count(*) FROM sync_segments WHERE state = 0"), 1);
    CHECK_EQ(count("SELECT spool_epoch FROM sync_state"), 0);
    /* and HQ still learns that both went */
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    char want[160];
    snprintf(want, sizeof want, "withdraw activity {\"id\":\"%s\"", x);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "purge contact {\"id\":\"%s\"", z);
    CHECK_CONTAINS(out, want);
    free(out);
    free(x);
    free(z);
    sync_ledger_close(l);
}

/* Relations: what is about a restricted contact. */
static void test_relations(void)
{
    fresh("rel");
    struct sync_ledger *l = open_ledger();
    char *org = create(&entity_organization, json_pack("{ss}", "name", "Acme Visible Ltd"));
    char *p = create(&entity_contact, json_pack("{ss}", "given_name", "Wanjiru"));
    char *link = create(
        &entity_contact_organization,
        json_pack("{ssssss}", "contact_id", p, "organization_id", org, "role", "Canaryrole"));
    char *orgdeal =
        create(&entity_deal, json_pack("{sssssssssIss}", "title", "Orgdeal", "organization_id", org,
                                       "contact_id", p, "stage", "won", "amount_minor",
                                       (json_int_t)99900000, "currency", "KES"));
    char *owndeal =
        create(&entity_deal, json_pack("{ssss}", "title", "Canarydeal", "contact_id", p));
    char *visit =
        create(&entity_activity, json_pack("{ssssssssss}", "channel", "visit", "subject",
                                           "Canaryvisit", "occurred_at", "2026-11-01T10:00:00Z",
                                           "contact_id", p, "organization_id", org));
    char *dealact =
        create(&entity_activity,
               json_pack("{ssssssssss}", "channel", "call", "subject", "Canarycall", "occurred_at",
                         "2026-11-02T10:00:00Z", "deal_id", owndeal, "direction", "outbound"));
    char *note =
        create(&entity_note, json_pack("{ssss}", "body", "Canarynote text", "contact_id", p));
    char *task = create(&entity_task, json_pack("{ssss}", "title", "Canarytask", "contact_id", p));
    char *consent =
        create(&entity_consent,
               json_pack("{ssssssssssssss}", "contact_id", p, "channel", "email", "purpose",
                         "Canarypurpose", "kind", "marketing", "status", "granted", "method",
                         "written", "requested_at", "2026-11-01T10:00:00Z"));
    char *out = NULL;
    size_t len = 0;
    cut_all(l, 1, &out, &len);
    char first[128];
    snprintf(first, sizeof first, "upsert activity {\"id\":\"%s\"", visit);
    CHECK_CONTAINS(out, first); /* visible until restricted */
    free(out);

    struct op_error err;
    CHECK_EQ(update(&entity_contact, p, json_pack("{sb}", "restricted", 1), &err), 0);
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    const char *withheld[] = {p, link, owndeal, visit, dealact, note, task, consent};
    for (size_t i = 0; i < sizeof withheld / sizeof *withheld; i++) {
        char want[128];
        snprintf(want, sizeof want, "{\"id\":\"%s\",\"version\":", withheld[i]);
        CHECK_CONTAINS(out, want); /* a withdraw: HQ held it */
    }
    /* nothing of them goes out as data: every line naming them is a withdraw */
    for (size_t i = 0; i < sizeof withheld / sizeof *withheld; i++) {
        for (const char *at = strstr(out, withheld[i]); at; at = strstr(at + 1, withheld[i])) {
            const char *bol = at;
            while (bol > out && bol[-1] != '\n')
                bol--;
            int ok = !strncmp(bol, "withdraw ", 9) ||
                     (!strncmp(bol, "upsert deal ", 12) && strstr(bol, orgdeal) &&
                      strstr(bol, orgdeal) < strchr(bol, '\n'));
            CHECK(ok);
        }
    }
    /* the organization's deal stays, without the person */
    char want[200];
    snprintf(want, sizeof want, "upsert deal {\"id\":\"%s\"", orgdeal);
    CHECK_CONTAINS(out, want);
    const char *line = strstr(out, want);
    const char *eol = line ? strchr(line, '\n') : NULL;
    if (line && eol) {
        char one[2048];
        snprintf(one, sizeof one, "%.*s", (int)(eol - line), line);
        CHECK_CONTAINS(one, "\"contact_id\":null");
        CHECK_CONTAINS(one, "\"amount_minor\":99900000");
    }
    CHECK(!strstr(out, "upsert contact_organization"));
    free(out);

    /* lifting the restriction sends them again */
    CHECK_EQ(update(&entity_contact, p, json_pack("{sb}", "restricted", 0), &err), 0);
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    snprintf(want, sizeof want, "upsert activity {\"id\":\"%s\"", visit);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "upsert activity {\"id\":\"%s\"", dealact);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "upsert consent {\"id\":\"%s\"", consent);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "\"contact_id\":\"%s\"", p);
    CHECK_CONTAINS(out, want);
    free(out);

    /* an erased person: the deal of the organization loses the link */
    struct subject_erase_report rep;
    if (subject_erase(st, p, "ticket 9", 1764000000000ull, &rep, &err) < 0)
        fx_die("erase", &err);
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    snprintf(want, sizeof want, "upsert deal {\"id\":\"%s\"", orgdeal);
    line = strstr(out, want);
    CHECK(line != NULL);
    eol = line ? strchr(line, '\n') : NULL;
    if (line && eol) {
        char one[2048];
        snprintf(one, sizeof one, "%.*s", (int)(eol - line), line);
        CHECK_CONTAINS(one, "\"contact_id\":null");
    }
    free(out);

    const char *all[] = {org, p, link, orgdeal, owndeal, visit, dealact, note, task, consent};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free((char *)all[i]);
    sync_ledger_close(l);
}

/* Records HQ never received: restricted at birth, restricted, pinned,
 * deleted, erased, purged before any segment: nothing about them leaves. */
static void test_never_sent_leaves_nothing(void)
{
    fresh("never");
    char *a =
        create(&entity_contact, json_pack("{sssb}", "given_name", "Bornhidden", "restricted", 1));
    char *b = create(&entity_contact, json_pack("{ss}", "given_name", "Laterhidden"));
    char *c = create(&entity_contact, json_pack("{ss}", "given_name", "Deleted"));
    char *d = create(&entity_contact, json_pack("{ss}", "given_name", "Erased"));
    char *v = create(&entity_contact, json_pack("{ss}", "given_name", "Visible"));
    struct op_error err;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(update(&entity_contact, a, json_pack("{ss}", "job_title", i ? "x" : "y"), &err),
                 0);
    CHECK_EQ(update(&entity_contact, b, json_pack("{sb}", "restricted", 1), &err), 0);
    json_t *out0 = NULL;
    CHECK_EQ(store_delete(st, &entity_contact, c, version_of(&entity_contact, c), &out0, &err), 0);
    json_decref(out0);
    if (store_purge(st, &entity_contact, d, "erase", "ticket 1", &err) < 0)
        fx_die("erase", &err);
    struct sync_ledger *l = open_ledger();
    char *out = NULL;
    size_t len = 0;
    cut_all(l, 1, &out, &len);
    const char *ids[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++)
        CHECK(!strstr(out, ids[i]));
    CHECK_CONTAINS(out, v);
    CHECK_EQ(count("SELECT count(*) FROM outbox"), 0); /* acknowledged all the same */
    free(out);
    free(a);
    free(b);
    free(c);
    free(d);
    free(v);
    sync_ledger_close(l);
}

/* Past retention: an activity whose new version is older than the KE
 * retention (6 years) leaves as a purge, not as data; one HQ never had
 * leaves nothing. */
static void test_expired_does_not_leave(void)
{
    fresh("expired");
    struct sync_ledger *l = open_ledger();
    char *a = create(&entity_activity,
                     json_pack("{ssss}", "channel", "call", "occurred_at", "2026-11-30T10:00:00Z"));
    char *old = create(&entity_activity, json_pack("{ssss}", "channel", "visit", "occurred_at",
                                                   "2001-01-01T10:00:00Z"));
    char *out = NULL;
    size_t len = 0;
    cut_all(l, 1, &out, &len);
    char want[160];
    snprintf(want, sizeof want, "upsert activity {\"id\":\"%s\"", a);
    CHECK_CONTAINS(out, want);
    CHECK(!strstr(out, old)); /* expired before it ever left */
    free(out);
    struct op_error err;
    CHECK_EQ(
        update(&entity_activity, a, json_pack("{ss}", "occurred_at", "2002-02-02T10:00:00Z"), &err),
        0);
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    snprintf(want, sizeof want, "purge activity {\"id\":\"%s\",\"version\":2}", a);
    CHECK_CONTAINS(out, want);
    CHECK(!strstr(out, "2002-02-02"));
    free(out);
    free(a);
    free(old);
    sync_ledger_close(l);
}

/* A new policy in force voids the spool and cuts every record again. */
static void test_policy_change(void)
{
    fresh("policy");
    struct sync_ledger *l = open_ledger();
    char *c =
        create(&entity_contact, json_pack("{ssss}", "given_name", "Otieno", "region", "Nairobi"));
    char *out = NULL;
    size_t len = 0;
    cut_all(l, 1, &out, &len);
    free(out);
    free(create(&entity_contact, json_pack("{ssss}", "given_name", "S", "region", "Spooled")));
    struct sync_segment sg;
    one_spooled(l, &sg);
    struct op_error err;
    int changed = 0;
    struct sync_ledger_news news;
    sync_ledger_take_news(l, &news);
    CHECK_EQ(store_policy_changed(st, "0123abcd", "a test", &changed, &err), 0);
    CHECK_EQ(changed, 1);
    struct stat sb;
    CHECK(stat(sg.path, &sb) < 0 && errno == ENOENT);
    CHECK_EQ(count("SELECT count(*) FROM outbox WHERE record_id = (SELECT id FROM contacts "
                   "WHERE region = 'Nairobi')"),
             1);
    /* the ledger sees its own policy differ from the recorded one: it cuts
     * everything again under it; what HQ acknowledged with the same
     * projection goes nowhere (docs/SYNC.md, "Nothing new, nothing sent"),
     * what was voided goes again */
    out = NULL;
    len = 0;
    cut_all(l, 1, &out, &len);
    CHECK(!strstr(out, c));
    CHECK_CONTAINS(out, "Spooled");
    CHECK_EQ(count("SELECT count(*) FROM sync_state WHERE policy_hash = '0123abcd'"), 0);
    /* and tells its caller, who logs it */
    sync_ledger_take_news(l, &news);
    CHECK_STR(news.policy_now, pol->hash);
    CHECK_STR(news.policy_was, "0123abcd");
    /* the same hash again changes nothing */
    CHECK_EQ(store_policy_changed(st, pol->hash, "again", &changed, &err), 0);
    CHECK_EQ(changed, 0);
    free(out);
    free(c);
    sync_ledger_close(l);
}

int main(void)
{
    fx_tmpdir("residency");
    fx_policy_env("KE");
    pol = fx_policy_load("KE");
    fx_cred_init(&cred, "test-node-ke", "KE", 5, 3);

    test_void_in_time();
    test_pin_voids_edit_does_not();
    test_settled_record_keeps_spool();
    test_relations();
    test_never_sent_leaves_nothing();
    test_expired_does_not_leave();
    test_policy_change();

    store_close(st);
    policy_free(pol);
    return fx_finish();
}
