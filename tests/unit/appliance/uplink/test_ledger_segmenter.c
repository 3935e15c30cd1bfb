/* Tests for appliance/uplink/ledger_segmenter.c: where a full segment may stop
 * (ledger_cursor_after, on rows as outbox_next_batch returns them: each
 * lane in seq order, urgent first), and cutting: segments follow each
 * other without gap or overlap and hold every change once; nothing to cut
 * changes nothing once the policy in force is recorded; each segment's row and the segmented cursor
 * commit with its file. Aggregate requests: a refusal is in the egress
 * ledger with its reason and no cells; an answer in a segment voided by a
 * policy change is answered again, under the new policy, without HQ
 * asking again; an acknowledged answer is not. And the canary test: with
 * canary values in every row-level field, every shipped aggregate asked
 * through the mailbox and answered, each segment read back with the
 * segment reader: no canary in any aggregate line (nor, for fields that
 * may not leave as they are, anywhere in the segment), and no count
 * between 0 and the minimum cell size shown. Pacing (docs/OUTBOX.md,
 * "When a segment is cut"): ledger_pace's rules one by one; over a backlog
 * a small first segment, nothing cut (and nothing changed) while it waits
 * for the link, then one twice its size, urgent rows at once, every
 * change once; a trickle behind a taken segment held until its oldest row
 * waited hold_ms, and cut at once when nothing waits. */
#include <strings.h>
#include <sys/stat.h>

#include "ledger_fixture.h"
#include "policy.h"
#include "segment.h"
#include "sync_ledger_int.h"

static struct outbox_row row(int priority, int64_t seq)
{
    struct outbox_row r;
    memset(&r, 0, sizeof r);
    r.priority = priority;
    r.seq = seq;
    return r;
}

/* A segment may stop after rows[0..i], with the cursor at urgent/ordinary. */
static void stops_at(const struct outbox_row *rows, size_t n, size_t i,
                     const struct outbox_cursor *from, int64_t urgent, int64_t ordinary)
{
    struct outbox_cursor out = {-1, -1};
    CHECK_EQ(ledger_cursor_after(rows, n, i, from, &out), 1);
    CHECK_EQ(out.urgent, urgent);
    CHECK_EQ(out.ordinary, ordinary);
}

static void test_cursor_after(void)
{
    struct outbox_cursor from = {0, 0}, out = {-1, -1};
    /* urgent rows first, then ordinary ones */
    struct outbox_row a[] = {row(OUTBOX_URGENT, 3), row(OUTBOX_URGENT, 4), row(OUTBOX_ORDINARY, 2),
                             row(OUTBOX_ORDINARY, 9)};
    stops_at(a, 4, 0, &from, 3, 0);
    stops_at(a, 4, 1, &from, 4, 0);
    stops_at(a, 4, 2, &from, 4, 2);
    stops_at(a, 4, 3, &from, 4, 9);

    /* the urgent lane holds two priorities: stopping after seq 7 would
     * skip seq 5 of the same lane, so it may not stop there */
    struct outbox_row b[] = {row(0, 7), row(1, 5), row(OUTBOX_ORDINARY, 1)};
    CHECK_EQ(ledger_cursor_after(b, 3, 0, &from, &out), 0);
    CHECK_EQ(out.urgent, -1); /* untouched */
    CHECK_EQ(out.ordinary, -1);
    stops_at(b, 3, 1, &from, 7, 0);

    /* the cursor starts where the segment starts */
    struct outbox_cursor mid = {10, 20};
    struct outbox_row c[] = {row(OUTBOX_ORDINARY, 21), row(OUTBOX_ORDINARY, 22)};
    stops_at(c, 2, 0, &mid, 10, 21);
    /* in place, as the segmenter calls it */
    CHECK_EQ(ledger_cursor_after(c, 2, 1, &mid, &mid), 1);
    CHECK_EQ(mid.urgent, 10);
    CHECK_EQ(mid.ordinary, 22);
}

static uint64_t records_in(const char *path)
{
    struct segment *sg = NULL;
    struct op_error err;
    if (segment_open(path, fx_cred.hq_key, NULL, &sg, &err) < 0)
        fx_die("segment_open", &err);
    const char *entity, *op, *json;
    size_t len;
    uint64_t n = 0;
    while (segment_next_record(sg, &entity, &op, &json, &len, &err) == 1)
        n++;
    segment_close(sg);
    return n;
}

static void test_cut(void)
{
    fx_fresh("cut");
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    struct sync_segment sg;
    int made = -1;
    /* the first call records the policy in force; after that, with
     * nothing to cut, nothing changes */
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    char *before = fx_snapshot();
    made = -1;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    fx_check_unchanged(before);
    sync_ledger_close(l);

    for (int i = 0; i < 600; i++) {
        char name[32];
        snprintf(name, sizeof name, "Person %d", i);
        free(fx_contact(name));
    }
    l = fx_open(4000); /* small segments */
    uint64_t prev_u = 0, prev_o = 0, total = 0, no = 0;
    int segments = 0;
    for (;;) {
        CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
        if (!made)
            break;
        segments++;
        CHECK_EQ(sg.no, ++no);
        CHECK_EQ(sg.from_urgent, prev_u);
        CHECK_EQ(sg.from_ordinary, prev_o);
        CHECK(sg.to_ordinary > sg.from_ordinary);
        CHECK_EQ(sg.state, SYNC_SEG_SPOOLED);
        CHECK_EQ(sg.created_ms, fx_now);
        CHECK(fx_exists(sg.path));
        CHECK_EQ(records_in(sg.path), sg.records);
        prev_u = sg.to_urgent;
        prev_o = sg.to_ordinary;
        total += sg.records;
    }
    CHECK(segments > 1);
    CHECK_EQ(total, 600);
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.spool_segments, (uint64_t)segments);
    CHECK_EQ(s.next_segment, no + 1);
    CHECK_EQ(s.outbox_depth, 600); /* nothing leaves the outbox before a receipt */
    sync_ledger_close(l);
}

/* The aggregate record of a segment file ("" when none), into out. */
static const char *aggregate_in(const char *path, const char *name, char *out, size_t cap)
{
    struct segment *sg = NULL;
    struct op_error err;
    out[0] = '\0';
    if (segment_open(path, fx_cred.hq_key, NULL, &sg, &err) < 0)
        fx_die("segment_open", &err);
    const char *entity, *op, *json;
    size_t len;
    char want[96];
    snprintf(want, sizeof want, "\"aggregate\":\"%s\"", name);
    while (segment_next_record(sg, &entity, &op, &json, &len, &err) == 1)
        if (!strcmp(entity, "aggregate") && strstr(json, want))
            snprintf(out, cap, "%s", json);
    segment_close(sg);
    return out;
}

static json_t *agg_message(uint64_t seq, const char *body)
{
    char mac[SYNC_MAC_HEX];
    if (sync_mailbox_mac(fx_cred.hq_key, fx_cred.node_id, seq, "aggregate_request", body,
                         strlen(body), mac) < 0)
        fx_die("sync_mailbox_mac", NULL);
    return json_pack("{sIssssssss}", "seq", (json_int_t)seq, "kind", "aggregate_request",
                     "created_at", "2026-11-24T18:00:00.000Z", "body", body, "mac", mac);
}

static const char *dump(const char *sql)
{
    static char out[8192];
    out[0] = '\0';
    fx_dump(sql, out, sizeof out);
    return strchr(out, '\n') + 1;
}

static void test_voided_answers(void)
{
    fx_fresh("agg");
    for (int i = 0; i < 12; i++)
        free(fx_contact("Someone"));
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    op_error_clear(&err);
    json_t *msgs = json_pack(
        "[oo]", agg_message(1, "{\"aggregate\":\"contacts_by_segment_district\",\"params\":[]}"),
        agg_message(2, "{\"aggregate\":\"telepathy_by_mood\",\"params\":[\"mood=calm\"]}"));
    json_t *a = json_pack("{so}", "messages", msgs);
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    int changed = -1;
    CHECK_EQ(sync_ledger_mailbox_store(l, text, strlen(text), &changed, &err), 0);
    free(text);

    /* segment 1: both answered, the refusal in the egress ledger too */
    struct sync_segment s1 = fx_segment(l);
    CHECK_EQ(s1.no, 1);
    struct policy *p1 = fx_policy_load("EU-DE");
    char rec[16384];
    CHECK(strstr(aggregate_in(s1.path, "contacts_by_segment_district", rec, sizeof rec),
                 p1->hash) != NULL);
    CHECK_STR(dump("SELECT seq, status, substr(reason, 1, 66) FROM mailbox ORDER BY seq"),
              "1|applied|answered in segment 1|\n"
              "2|refused|refused in segment 1: telepathy_by_mood is not a shipped aggregate|\n");
    char expect[512];
    snprintf(expect, sizeof expect,
             "mailbox:1|contacts_by_segment_district|%s|1|0|\n"
             "mailbox:2|telepathy_by_mood|%s|1|1|\n",
             p1->hash, p1->hash);
    CHECK_STR(
        dump("SELECT requester, name, policy_hash, segment_no, "
             "json_extract(body, '$.refused') IS NOT NULL FROM aggregate_egress ORDER BY seq"),
        expect);
    CHECK_STR(dump("SELECT params, instr(body, '\"cells\"') FROM aggregate_egress WHERE "
                   "requester = 'mailbox:2'"),
              "mood=calm|0|\n");

    /* the policy tightens before segment 1 is uploaded: it is voided, and
     * the next cut answers request 1 again under the new policy */
    char dir[FX_PATH_MAX], file[FX_PATH_MAX + 16], src[FX_PATH_MAX];
    fx_path(dir, sizeof dir, "tighter");
    CHECK_EQ(mkdir(dir, 0700), 0);
    snprintf(file, sizeof file, "%s/EU-DE.yaml", dir);
    char cmd[3 * FX_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "sed 's/^  min_cell_size: 10$/  min_cell_size: 12/' '%s' >'%s'",
             fx_profile_path("EU-DE", src, sizeof src), file);
    CHECK_EQ(system(cmd), 0);
    setenv("OUTPOST_POLICY", file, 1);
    struct policy *p2 = NULL;
    CHECK_EQ(policy_load_file(file, &p2, &err), 0);
    CHECK(p2 && strcmp(p2->hash, p1->hash) != 0);
    CHECK_EQ(p2->min_cell_size, 12);
    fx_now += 60000;
    struct sync_segment s2 = fx_segment(l);
    CHECK_EQ(s2.no, 2);
    CHECK(!fx_exists(s1.path)); /* voided */
    aggregate_in(s2.path, "contacts_by_segment_district", rec, sizeof rec);
    CHECK(strstr(rec, p2->hash) != NULL);
    CHECK(strstr(rec, "\"min_cell_size\":12") != NULL);
    CHECK(strstr(rec, "\"request\":\"mailbox:1\"") != NULL);
    CHECK_STR(dump("SELECT seq, status, substr(reason, 1, 20) FROM mailbox ORDER BY seq"),
              "1|applied|answered in segment |\n"
              "2|refused|refused in segment 2|\n");
    CHECK_STR(dump("SELECT reason FROM mailbox WHERE seq = 1"), "answered in segment 2|\n");
    snprintf(expect, sizeof expect, "mailbox:1|2|%s|\nmailbox:2|2|%s|\n", p2->hash, p2->hash);
    CHECK_STR(dump("SELECT requester, segment_no, policy_hash FROM aggregate_egress "
                   "WHERE segment_no = 2 ORDER BY seq"),
              expect);

    /* acknowledged: nothing is answered again, nothing changes */
    char *r = fx_receipt(fx_cred.node_id, s2.no, "applied", "", s2.to_urgent, s2.to_ordinary, 1);
    int outcome = 0;
    CHECK_EQ(sync_ledger_apply_receipt(l, s2.no, r, strlen(r), &outcome, &err), 0);
    free(r);
    fx_now += 60000;
    char *before = fx_snapshot();
    int made = -1;
    struct sync_segment s3;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s3, &err), 0);
    CHECK_EQ(made, 0);
    fx_check_unchanged(before);
    sync_ledger_close(l);
    policy_free(p1);
    policy_free(p2);
    fx_policy_env("EU-DE");
}

/* ---- canaries ---- */

/* Every canary starts with this (case folded before the search). */
#define CNRY "cnry"

static char *canary_contact(int i, const char *region)
{
    char given[32], mail[64], phone[32], street[48];
    snprintf(given, sizeof given, "CNRY-given-%d", i);
    snprintf(mail, sizeof mail, "cnry.%d@cnry-mail.example", i);
    snprintf(phone, sizeof phone, "+49 30 7771%04d", i);
    snprintf(street, sizeof street, "CNRY-street %d", i);
    return fx_create(fx_st, &entity_contact,
                     json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "given_name",
                               given, "family_name", "CNRY-family", "email", mail, "phone", phone,
                               "street", street, "locality", "CNRY-locality", "job_title",
                               "CNRY-job", "region", region, "custom", "cnry_note", "CNRY-custom"));
}

/* Every count in an answer's cells, totals and column totals is null, 0
 * or at least k: how many are not. */
static int small_counts(const json_t *a, json_int_t k)
{
    int bad = 0;
    const json_t *lists[2] = {json_object_get(a, "rows"), NULL};
    size_t i, j;
    const json_t *row, *c;
    json_array_foreach(lists[0], i, row)
    {
        json_array_foreach(json_object_get(row, "cells"), j, c)
        {
            const json_t *n = json_object_get(c, "n");
            bad += json_is_integer(n) && json_integer_value(n) > 0 && json_integer_value(n) < k;
        }
        const json_t *n = json_object_get(json_object_get(row, "total"), "n");
        bad += json_is_integer(n) && json_integer_value(n) > 0 && json_integer_value(n) < k;
    }
    json_array_foreach(json_object_get(a, "col_totals"), j, c)
    {
        const json_t *n = json_object_get(c, "n");
        bad += json_is_integer(n) && json_integer_value(n) > 0 && json_integer_value(n) < k;
    }
    const json_t *n = json_object_get(json_object_get(a, "total"), "n");
    bad += json_is_integer(n) && json_integer_value(n) > 0 && json_integer_value(n) < k;
    return bad;
}

/* Whether text holds a canary (any case) or the canaries' phone digits. */
static int has_canary(const char *text, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (!strncasecmp(text + i, CNRY, 4))
            return 1;
    /* the canary phones' subscriber digits, whole: four digits alone
     * turn up by chance in the hex of ids and pseudonyms */
    if (memmem(text, len, "77719999", 8) != NULL)
        return 1;
    for (int i = 0; i < 40; i++) {
        char digits[16];
        snprintf(digits, sizeof digits, "7771%04d", i);
        if (memmem(text, len, digits, 8) != NULL)
            return 1;
    }
    return 0;
}

static void test_aggregate_canaries(void)
{
    fx_fresh("canary");
    struct policy *p = fx_policy_load("EU-DE");
    char *org = fx_create(fx_st, &entity_organization,
                          json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "Retail GmbH", "industry",
                                    "Retail", "region", "Bayern", "email",
                                    "cnry-org@cnry-mail.example", "phone", "+49 30 77719999"));
    /* 25 in Bayern (15 of them at the organization), 12 in Berlin, 3 in
     * Bremen: a district, rows and cells under the minimum */
    char *ids[40];
    for (int i = 0; i < 40; i++) {
        ids[i] = canary_contact(i, i < 25 ? "Bayern" : i < 37 ? "Berlin" : "Bremen");
        if (i < 15)
            free(fx_create(fx_st, &entity_contact_organization,
                           json_pack("{s:s, s:s, s:s}", "contact_id", ids[i], "organization_id",
                                     org, "role", "CNRY-role")));
        free(fx_create(fx_st, &entity_note,
                       json_pack("{s:s, s:s}", "contact_id", ids[i], "body", "CNRY-note")));
        free(fx_create(fx_st, &entity_task,
                       json_pack("{s:s, s:s}", "contact_id", ids[i], "title", "CNRY-task")));
        /* consents: 30 granted e-mail newsletters, 4 pending */
        if (i < 34)
            free(fx_create(fx_st, &entity_consent,
                           json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}}", "contact_id",
                                     ids[i], "channel", "email", "purpose", "newsletter", "kind",
                                     "marketing", "status", i < 30 ? "granted" : "pending",
                                     "method", "opt_out", "requested_at", "2026-11-01T00:00:00Z",
                                     "evidence", "text", "CNRY-evidence")));
        /* activities in 2026-Q3: 30 e-mails, 4 calls */
        free(fx_create(fx_st, &entity_activity,
                       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "channel",
                                 i < 30 ? "email" : "call", "direction", "outbound", "occurred_at",
                                 i % 2 ? "2026-07-08T10:00:00Z" : "2026-08-12T10:00:00Z", "subject",
                                 "CNRY-subject", "body", "CNRY-body", "outcome", "CNRY-outcome",
                                 "contact_id", ids[i])));
        /* deals closing in 2025: 25 won, 12 lost, 3 open in USD */
        free(fx_create(fx_st, &entity_deal,
                       json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "title", "CNRY-deal", "stage",
                                 i < 25   ? "won"
                                 : i < 37 ? "lost"
                                          : "proposal",
                                 "amount_minor", 1000 + i, "currency", i < 37 ? "EUR" : "USD",
                                 "expected_close", i % 2 ? "2025-03-10" : "2025-05-10",
                                 "contact_id", ids[i])));
    }
    for (int i = 0; i < 40; i++)
        free(ids[i]);
    free(org);

    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    op_error_clear(&err);
    static const char *const names[] = {
        "contacts_by_segment_district", "consent_rates_by_channel_purpose",
        "activities_by_channel_week",   "pipeline_by_stage_month",
        "conversion_by_channel",        "completeness_by_field"};
    json_t *msgs = json_array();
    for (size_t i = 0; i < 6; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"aggregate\":\"%s\",\"params\":[]}", names[i]);
        json_array_append_new(msgs, agg_message(i + 1, body));
    }
    json_t *a = json_pack("{so}", "messages", msgs);
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    int changed = -1;
    CHECK_EQ(sync_ledger_mailbox_store(l, text, strlen(text), &changed, &err), 0);
    free(text);

    /* every segment the node cuts, read back with the segment reader */
    int answered = 0, lines = 0, seen[6] = {0};
    for (;;) {
        struct sync_segment sg;
        int made = 0;
        CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
        if (!made)
            break;
        struct segment *rd = NULL;
        if (segment_open(sg.path, fx_cred.hq_key, NULL, &rd, &err) < 0)
            fx_die("segment_open", &err);
        const char *entity, *op, *json;
        size_t len;
        while (segment_next_record(rd, &entity, &op, &json, &len, &err) == 1) {
            lines++;
            if (strcmp(entity, "aggregate")) {
                /* records leave under the policy: only the organization's
                 * exportable fields may carry a canary-free value here,
                 * and pseudonymized, local or aggregate-only ones none */
                if (has_canary(json, len))
                    fprintf(stderr, "  a canary in a %s record: %.300s\n", entity, json);
                CHECK(!has_canary(json, len));
                continue;
            }
            if (has_canary(json, len))
                fprintf(stderr, "  a canary in an aggregate: %.300s\n", json);
            CHECK(!has_canary(json, len));
            json_t *ans = json_loadb(json, len, 0, NULL);
            CHECK(ans != NULL);
            const char *name = json_string_value(json_object_get(ans, "aggregate"));
            CHECK(json_object_get(ans, "refused") == NULL);
            for (size_t i = 0; name && i < 6; i++)
                seen[i] += !strcmp(name, names[i]);
            CHECK_EQ(json_integer_value(json_object_get(ans, "min_cell_size")), 10);
            CHECK_EQ(small_counts(ans, p->min_cell_size), 0);
            answered++;
            json_decref(ans);
        }
        segment_close(rd);
    }
    CHECK_EQ(answered, 6);
    for (size_t i = 0; i < 6; i++)
        CHECK_EQ(seen[i], 1);
    CHECK(lines > 6 * 40); /* the records went too, and were scanned */
    /* the test would see them: the egress ledger keeps the answers as
     * sent, and the canaries are in the database */
    char out[256] = "";
    fx_dump("SELECT count(*) FROM aggregate_egress WHERE lower(body) LIKE '%cnry%'", out,
            sizeof out);
    CHECK_STR(strchr(out, '\n') + 1, "0|\n");
    out[0] = '\0';
    fx_dump("SELECT count(*) > 0 FROM contacts WHERE locality = 'CNRY-locality'", out, sizeof out);
    CHECK_STR(strchr(out, '\n') + 1, "1|\n");
    sync_ledger_close(l);
    policy_free(p);
}

/* ---- field-level deltas (ledger_deltas.c) ---------------------------------- */

/* Every line of a segment as "op json\n", into a new string. */
static char *lines_of(const char *path)
{
    struct segment *sg = NULL;
    struct op_error err;
    if (segment_open(path, fx_cred.hq_key, NULL, &sg, &err) < 0)
        fx_die("segment_open", &err);
    const char *entity, *op, *json;
    size_t len, cap = 1 << 16, n = 0;
    char *out = calloc(1, cap);
    while (segment_next_record(sg, &entity, &op, &json, &len, &err) == 1)
        n += (size_t)snprintf(out + n, cap - n, "%s %.*s\n", op, (int)len, json);
    segment_close(sg);
    return out;
}

static int ends_with(const char *t, const char *suffix)
{
    size_t n = strlen(t), k = strlen(suffix);
    return n >= k && !strcmp(t + n - k, suffix);
}

/* HQ's receipt for sg: applied, with `extra` members (a JSON object text)
 * merged in, under the extras MAC as HQ makes it when extra is not empty
 * (an empty one is an older HQ's receipt). want: what
 * sync_ledger_apply_receipt must return. */
static void ack_as(struct sync_ledger *l, const struct sync_segment *sg, const char *extra,
                   int want)
{
    char *r = fx_receipt(fx_cred.node_id, sg->no, "applied", "", sg->to_urgent, sg->to_ordinary, 1);
    json_t *j = json_loads(r, 0, NULL), *x = json_loads(extra, 0, NULL);
    CHECK(j && x);
    json_object_update(j, x);
    if (json_object_size(x) && !json_object_get(x, "extras_mac")) {
        char mac[SYNC_MAC_HEX];
        CHECK_EQ(sync_receipt_extras_mac(fx_cred.hq_key, fx_cred.node_id, sg->no,
                                         json_is_true(json_object_get(x, "patch")),
                                         json_object_get(x, "needs_whole"), mac),
                 0);
        json_object_set_new(j, "extras_mac", json_string(mac));
    }
    char *t = json_dumps(j, JSON_COMPACT);
    int outcome = -1;
    struct op_error err;
    CHECK_EQ(sync_ledger_apply_receipt(l, sg->no, t, strlen(t), &outcome, &err), want);
    if (want == 0)
        CHECK_EQ(outcome, SYNC_SEG_ACKED);
    free(t);
    free(r);
    json_decref(j);
    json_decref(x);
}

static void ack(struct sync_ledger *l, const struct sync_segment *sg, const char *extra)
{
    ack_as(l, sg, extra, 0);
}

/* Changes contact id (at version `from`) by `ch` (taken). */
static void edit(const char *id, int64_t from, json_t *ch)
{
    json_t *out = NULL;
    struct op_error err;
    if (store_update(fx_st, &entity_contact, id, from, ch, 0, &out, &err) < 0)
        fx_die("store_update", &err);
    json_decref(ch);
    json_decref(out);
}

static int made_segment(struct sync_ledger *l, struct sync_segment *sg)
{
    struct op_error err;
    int made = -1;
    CHECK_EQ(sync_ledger_make_segment(l, &made, sg, &err), 0);
    return made;
}

/* Nothing is sent for an edit of a field that does not leave; only the
 * changed field for an edit of one that does, against the version HQ
 * acknowledged; the whole record again when HQ asks for it, and to an HQ
 * that does not say it applies patches. */
static void test_deltas(void)
{
    fx_fresh("deltas");
    struct sync_ledger *l = fx_open(0);
    char *id = fx_create(fx_st, &entity_contact,
                         json_pack("{ss ss ss ss ss}", "given_name", "Lena", "region", "Bayern",
                                   "country", "DE", "language", "de", "job_title", "Clerk"));
    struct sync_segment sg;
    CHECK_EQ(made_segment(l, &sg), 1);
    char *t = lines_of(sg.path);
    CHECK(!strncmp(t, "upsert {", 8));
    CHECK_CONTAINS(t, "\"region\":\"Bayern\"");
    free(t);
    ack(l, &sg, "{\"patch\":true}");
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_held WHERE version = 1"), 1);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_flight"), 0);

    /* a field that stays at the node: no segment, the outbox row consumed */
    edit(id, 1, json_pack("{ss}", "job_title", "Head clerk"));
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM outbox"), 1);
    CHECK_EQ(made_segment(l, &sg), 0);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM outbox"), 0);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM sync_segments"), 1);
    CHECK_EQ(fx_count(fx_st, "SELECT segmented_ordinary = acked_ordinary FROM sync_state"), 1);

    /* an exportable field: a patch with it alone, against version 1 */
    edit(id, 2, json_pack("{ss}", "region", "Berlin"));
    CHECK_EQ(made_segment(l, &sg), 1);
    t = lines_of(sg.path);
    char want[256];
    /* the edit's time goes with it: a whole upsert would carry it too */
    snprintf(want, sizeof want, "patch {\"id\":\"%s\",\"version\":3,\"base\":1,\"updated_at\":\"",
             id);
    CHECK(!strncmp(t, want, strlen(want)));
    CHECK(ends_with(t, "Z\",\"region\":\"Berlin\"}\n"));
    free(t);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_flight WHERE version = 3"), 1);

    /* in flight: an edit back and forth of a local field sends nothing
     * either (an empty segment keeps the rows behind the one that waits) */
    edit(id, 3, json_pack("{ss}", "job_title", "Clerk"));
    struct sync_segment empty;
    CHECK_EQ(made_segment(l, &empty), 1);
    CHECK_EQ(empty.records, 0);

    /* the segment is voided (a restriction elsewhere, a policy change):
     * the in-flight hash goes, and the change is sent again */
    int changed = 0;
    struct op_error err;
    CHECK_EQ(store_policy_changed(fx_st, "0123abcd", "a test", &changed, &err), 0);
    CHECK_EQ(changed, 1);
    CHECK_EQ(made_segment(l, &sg), 1);
    t = lines_of(sg.path);
    /* the edit's time goes with it: a whole upsert would carry it too */
    snprintf(want, sizeof want, "patch {\"id\":\"%s\",\"version\":4,\"base\":1,\"updated_at\":\"",
             id);
    CHECK(!strncmp(t, want, strlen(want)));
    CHECK(ends_with(t, "Z\",\"region\":\"Berlin\"}\n"));
    free(t);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_flight"), 1);

    /* a needs_whole list changed on the way (HQ's MAC covers another
     * list), or one without the MAC, is refused: nothing changes */
    char extra[512], mac[SYNC_MAC_HEX];
    int64_t queued = fx_count(fx_st, "SELECT count(*) FROM outbox");
    json_t *real = json_pack("[[ss]]", "contact", "no-such-id");
    CHECK_EQ(sync_receipt_extras_mac(fx_cred.hq_key, fx_cred.node_id, sg.no, 1, real, mac), 0);
    json_decref(real);
    snprintf(extra, sizeof extra,
             "{\"patch\":true,\"needs_whole\":[[\"contact\",\"%s\"]],\"extras_mac\":\"%s\"}", id,
             mac);
    ack_as(l, &sg, extra, -EBADMSG);
    snprintf(extra, sizeof extra,
             "{\"patch\":true,\"needs_whole\":[[\"contact\",\"%s\"]],"
             "\"extras_mac\":\"%s\"}",
             id, "00");
    ack_as(l, &sg, extra, -EBADMSG);
    char *plain =
        fx_receipt(fx_cred.node_id, sg.no, "applied", "", sg.to_urgent, sg.to_ordinary, 1);
    json_t *pj = json_loads(plain, 0, NULL);
    json_object_set_new(pj, "needs_whole", json_pack("[[ss]]", "contact", id));
    char *pt = json_dumps(pj, JSON_COMPACT);
    int pout = -1;
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, pt, strlen(pt), &pout, &err), -EBADMSG);
    CHECK_STR(err.field, "needs_whole");
    free(pt);
    free(plain);
    json_decref(pj);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_flight"), 1);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM outbox"), queued);
    char q[96];
    snprintf(q, sizeof q, "SELECT count(*) FROM sync_segments WHERE no = %llu AND state = 2",
             (unsigned long long)sg.no);
    CHECK_EQ(fx_count(fx_st, q), 0);

    /* HQ lacked the base: the record is queued again and goes whole */
    snprintf(extra, sizeof extra,
             "{\"patch\":true,\"needs_whole\":[[\"contact\",\"%s\"],"
             "[\"contact\",\"no-such-id\"],[\"user\",\"x\"]]}",
             id);
    ack(l, &sg, extra);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_held"), 0);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM outbox"), 1);
    CHECK_EQ(made_segment(l, &sg), 1);
    t = lines_of(sg.path);
    CHECK(!strncmp(t, "upsert {", 8));
    CHECK_CONTAINS(t, "\"region\":\"Berlin\"");
    CHECK_CONTAINS(t, "\"language\":\"de\"");
    free(t);

    /* an HQ that does not say it applies patches gets whole records */
    ack(l, &sg, "{}");
    CHECK_EQ(fx_count(fx_st, "SELECT hq_patches FROM sync_state"), 0);
    edit(id, 4, json_pack("{ss}", "region", "Hessen"));
    CHECK_EQ(made_segment(l, &sg), 1);
    t = lines_of(sg.path);
    CHECK(!strncmp(t, "upsert {", 8));
    CHECK_CONTAINS(t, "\"given_name\":\"h:");
    free(t);
    /* a rejected segment's in-flight hash goes too */
    char *r =
        fx_receipt(fx_cred.node_id, sg.no, "rejected", "a test", sg.to_urgent, sg.to_ordinary, 1);
    int outcome = -1;
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, r, strlen(r), &outcome, &err), 0);
    CHECK_EQ(outcome, SYNC_SEG_REJECTED);
    free(r);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_flight"), 0);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_held WHERE version = 4"), 1);
    free(id);
    sync_ledger_close(l);
}

/* A policy that withholds a field HQ holds: the change goes (the hash
 * differs) as a patch that unsets the field, though the record did not
 * change. */
static void test_deltas_policy_withholds(void)
{
    fx_fresh("deltas-policy");
    struct sync_ledger *l = fx_open(0);
    char *id = fx_create(fx_st, &entity_contact,
                         json_pack("{ss ss ss ss}", "given_name", "Jana", "region", "Bayern",
                                   "country", "DE", "language", "de"));
    struct sync_segment sg;
    CHECK_EQ(made_segment(l, &sg), 1);
    ack(l, &sg, "{\"patch\":true}");
    sync_ledger_close(l);

    /* the region's profile with language kept at the node */
    char src[FX_PATH_MAX], dst[FX_PATH_MAX];
    fx_profile_path("EU-DE", src, sizeof src);
    fx_path(dst, sizeof dst, "nolang");
    (void)mkdir(dst, 0700);
    fx_path(dst, sizeof dst, "nolang/EU-DE.yaml");
    FILE *in = fopen(src, "re"), *out = fopen(dst, "we");
    CHECK(in && out);
    char line[4096];
    while (in && out && fgets(line, sizeof line, in)) {
        if (strstr(line, "contact.language:"))
            fputs("  contact.language: {class: local_only, basis: \"a test\"}\n", out);
        else
            fputs(line, out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    setenv("OUTPOST_POLICY", dst, 1);
    l = fx_open(0);
    CHECK_EQ(made_segment(l, &sg), 1);
    char *t = lines_of(sg.path);
    char want[256];
    snprintf(want, sizeof want,
             "patch {\"id\":\"%s\",\"version\":1,\"base\":1,\"unset\":[\"language\"]}\n", id);
    CHECK_STR(t, want);
    free(t);
    fx_policy_env("EU-DE");
    free(id);
    sync_ledger_close(l);
}

/* ---- pacing (docs/OUTBOX.md, "When a segment is cut") -------------------- */

static void test_pace_rules(void)
{
    uint64_t t = 0;
    struct ledger_pace_in in = {.segment_bytes = 480000, .first_ms = 1500, .hold_ms = 10000};
    /* nothing waits: a first segment of 1.5 s of the link, now */
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, LEDGER_FIRST_DEFAULT); /* rate unknown */
    in.goodput = 32000;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, 48000);
    in.goodput = 1000; /* 1.5 KB: not below the floor */
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, LEDGER_FIRST_MIN);
    in.goodput = 1e9; /* a LAN: a full segment */
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, 480000);
    in.first_ms = 0; /* first segments off: always full */
    in.goodput = 32000;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, 480000);
    in.first_ms = 1500;

    /* one waits and the link has not taken it: hold, even with a backlog */
    in.waiting = 1;
    in.untaken = 1;
    in.newest_bytes = 48000;
    in.ordinary = 100000;
    in.bpr = 110;
    in.oldest_age_ms = 3600000;
    CHECK_EQ(ledger_pace(&in, &t), 0);
    CHECK_EQ(t, 96000);
    /* unless rows of the urgent lane wait */
    in.urgent = 1;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    in.urgent = 0;

    /* the link took it: the next is twice as large, cut when full... */
    in.untaken = 0;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, 96000);
    in.ordinary = 872; /* 95,920 estimated bytes: not full */
    in.oldest_age_ms = 0;
    CHECK_EQ(ledger_pace(&in, &t), 0);
    in.ordinary = 873;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    /* ... or when the oldest row waited its bound */
    in.ordinary = 3;
    in.oldest_age_ms = 9999;
    CHECK_EQ(ledger_pace(&in, &t), 0);
    in.oldest_age_ms = 10000;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    /* ... or when no row came for a second: the rest of a backlog */
    in.oldest_age_ms = 5000;
    in.newest_age_ms = 999;
    CHECK_EQ(ledger_pace(&in, &t), 0);
    in.newest_age_ms = 1000;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    in.newest_age_ms = 0;
    /* nothing to cut is never cut for its age */
    in.ordinary = 0;
    CHECK_EQ(ledger_pace(&in, &t), 0);
    /* growth stops at a full segment */
    in.newest_bytes = 400000;
    in.ordinary = 100000;
    CHECK_EQ(ledger_pace(&in, &t), 1);
    CHECK_EQ(t, 480000);
    /* an unknown rate of bytes per record is taken as the default */
    in.bpr = 0;
    in.oldest_age_ms = 0;
    in.newest_bytes = 48000;
    in.ordinary = (int64_t)(96000 / LEDGER_BPR_DEFAULT) - 1;
    CHECK_EQ(ledger_pace(&in, &t), 0);
}

static struct sync_ledger *open_paced(uint64_t first_ms, uint64_t hold_ms)
{
    struct sync_ledger_options o = {.db_path = fx_db,
                                    .spool_dir = fx_spool,
                                    .cred = &fx_cred,
                                    .now_ms = fx_ledger_clock,
                                    .pace = 1,
                                    .first_segment_ms = first_ms,
                                    .hold_ms = hold_ms};
    struct sync_ledger *l = NULL;
    struct op_error err;
    if (sync_ledger_open(&o, &l, &err) < 0)
        fx_die("sync_ledger_open", &err);
    return l;
}

static void exec_sql(const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(store_db(fx_st), sql, NULL, NULL, &msg) != SQLITE_OK)
        fx_die(msg, NULL);
}

/* A paced ledger over a backlog: a small first segment, nothing more cut
 * (and nothing changed) until the link takes it, then one twice its size;
 * urgent rows go at once behind an untaken segment; the cuts stay one
 * gapless run of every change, each in its own transaction. */
static void test_paced_backlog(void)
{
    fx_fresh("paced");
    for (int i = 0; i < 1500; i++) {
        char name[48];
        snprintf(name, sizeof name, "Person %d of the paced backlog", i);
        free(fx_contact(name));
    }
    /* 8,000 B/s measured: a first segment of 12,000 bytes */
    exec_sql("UPDATE sync_state SET goodput_bps = 8000");
    struct sync_ledger *l = open_paced(1500, 10000);
    struct op_error err;
    struct sync_segment s1 = fx_segment(l);
    fprintf(stderr, "paced: first segment %llu bytes, %llu records\n", (unsigned long long)s1.bytes,
            (unsigned long long)s1.records);
    /* about 12,000: deflate's first block is not out yet, so the size is
     * estimated (at 4:1; these records compress better) */
    CHECK(s1.bytes >= 6000 && s1.bytes < 18000);
    CHECK(s1.records > 0 && s1.records < 1500);
    CHECK_EQ(s1.from_ordinary, 0);

    /* held while it waits for the link: nothing changes */
    char *before = fx_snapshot();
    int made = -1;
    struct sync_segment sg;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    fx_check_unchanged(before);

    /* the link takes it: the next is about twice its size */
    CHECK_EQ(sync_ledger_set_upload_url(l, s1.no, "http://hq.test/v1/uploads/seg-1", &err), 0);
    struct sync_segment s2 = fx_segment(l);
    CHECK_EQ(s2.no, s1.no + 1);
    CHECK_EQ(s2.from_ordinary, s1.to_ordinary);
    fprintf(stderr, "paced: second segment %llu bytes, %llu records\n",
            (unsigned long long)s2.bytes, (unsigned long long)s2.records);
    CHECK(s2.bytes >= 3 * s1.bytes / 2 && s2.bytes < 5 * s1.bytes / 2);
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);

    /* an erasure does not wait behind it */
    char ins[512];
    snprintf(ins, sizeof ins,
             "INSERT INTO outbox (entity, record_id, version, hlc, op, priority, created_ms) "
             "SELECT 'contact', id, version, updated_hlc, 'erase', 0, %lld FROM contacts "
             "ORDER BY id LIMIT 1",
             (long long)fx_now);
    exec_sql(ins);
    struct sync_segment s3 = fx_segment(l);
    CHECK_EQ(s3.from_urgent, 0);
    CHECK(s3.to_urgent > 0);
    CHECK_EQ(s3.from_ordinary, s2.to_ordinary);

    /* every change once, in order, as the link takes each */
    uint64_t total = s1.records + s2.records + s3.records - 1; /* s3 carries the erasure */
    uint64_t prev = s3.to_ordinary;
    CHECK_EQ(sync_ledger_set_upload_url(l, s2.no, "http://hq.test/v1/uploads/seg-2", &err), 0);
    CHECK_EQ(sync_ledger_set_upload_url(l, s3.no, "http://hq.test/v1/uploads/seg-3", &err), 0);
    /* the last rows do not fill a segment: they go once they waited */
    fx_now = fx_count(fx_st, "SELECT max(created_ms) FROM outbox") + 10000;
    for (;;) {
        CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
        if (!made)
            break;
        CHECK_EQ(sg.from_ordinary, prev);
        prev = sg.to_ordinary;
        total += sg.records;
        CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq.test/v1/uploads/seg-n", &err), 0);
    }
    CHECK_EQ(total, 1500);
    sync_ledger_close(l);
    fx_now = 1795000000000;
}

/* A trickle behind a segment the link takes: the few new rows wait for a
 * fuller segment until the oldest has waited hold_ms; with nothing
 * waiting they go at once. */
static void test_paced_trickle(void)
{
    fx_fresh("trickle");
    for (int i = 0; i < 5; i++)
        free(fx_contact("Early"));
    struct sync_ledger *l = open_paced(1500, 10000);
    struct op_error err;
    struct sync_segment s1 = fx_segment(l); /* nothing waits: at once, however few */
    CHECK_EQ(s1.records, 5);
    CHECK_EQ(sync_ledger_set_upload_url(l, s1.no, "http://hq.test/v1/uploads/seg-1", &err), 0);
    for (int i = 0; i < 3; i++)
        free(fx_contact("Late"));
    int64_t queued = fx_count(fx_st, "SELECT min(created_ms) FROM outbox WHERE seq > 5");
    /* the trickle goes on: the newest row came half a second ago */
    char touch[160];
    snprintf(touch, sizeof touch, "UPDATE outbox SET created_ms = %lld WHERE seq = 8",
             (long long)(queued + 9500));
    exec_sql(touch);
    fx_now = queued + 9999;
    char *before = fx_snapshot();
    int made = -1;
    struct sync_segment sg;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    fx_check_unchanged(before);
    fx_now = queued + 10000;
    struct sync_segment s2 = fx_segment(l);
    CHECK_EQ(s2.records, 3);
    CHECK_EQ(s2.from_ordinary, s1.to_ordinary);
    sync_ledger_close(l);

    /* HQ acknowledged both: nothing waits, so a new row goes at once */
    l = open_paced(1500, 10000);
    for (uint64_t no = s1.no; no <= s2.no; no++) {
        struct sync_segment *x = no == s1.no ? &s1 : &s2;
        char *r = fx_receipt(fx_cred.node_id, no, "applied", "", x->to_urgent, x->to_ordinary, 1);
        int outcome = 0;
        CHECK_EQ(sync_ledger_apply_receipt(l, no, r, strlen(r), &outcome, &err), 0);
        free(r);
    }
    free(fx_contact("Later"));
    struct sync_segment s3 = fx_segment(l);
    CHECK_EQ(s3.records, 1);
    sync_ledger_close(l);
    fx_now = 1795000000000;
}

int main(void)
{
    fx_setup();
    test_deltas();
    test_deltas_policy_withholds();
    test_cursor_after();
    test_cut();
    test_pace_rules();
    test_paced_backlog();
    test_paced_trickle();
    test_voided_answers();
    test_aggregate_canaries();
    return fx_teardown();
}
