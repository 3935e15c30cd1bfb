/* Tests for appliance/uplink/ledger_verify.c: a check asked for is the one
 * due, and the schedule adds one only when the last is older than the
 * interval (for a node never checked, an interval after its start);
 * nothing is compared while changes are in flight; the node's
 * set holds what the segmenter would send (a restricted contact and one
 * deleted before HQ had it are not in it) and equals the set HQ would
 * build from the segments it received; ending a check against an HQ that
 * lost records queues exactly those records in the outbox with the result
 * in one transaction, HQ's newer versions and records the node never sent
 * are reported, not queued, and a check cannot be ended twice. The
 * tombstones HQ acknowledged are in the set as gone: one HQ lost goes
 * again (an erasure as its tombstone, a withdrawal as a change the
 * segmenter withdraws, both on the urgent lane), and a tombstone HQ holds
 * that the node kept no row for is learnt, not drift. */
#include "ledger_fixture.h"
#include "projection_hash.h"
#include "range_digest.h"
#include "subject.h"

static int64_t outbox_rows(void)
{
    char out[256] = "";
    fx_dump("SELECT count(*) FROM outbox", out, sizeof out);
    return strtoll(strchr(out, '\n') + 1, NULL, 10);
}

/* Cuts and acknowledges every segment, as a sync that drained does. */
static void drain(struct sync_ledger *l)
{
    struct sync_segment sg;
    int made = 1;
    struct op_error err;
    while (made) {
        CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
        if (!made)
            break;
        char *r =
            fx_receipt(fx_cred.node_id, sg.no, "applied", "", sg.to_urgent, sg.to_ordinary, 1);
        int outcome = -1;
        CHECK_EQ(sync_ledger_mark_uploaded(l, sg.no, &err), 0);
        CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, r, strlen(r), &outcome, &err), 0);
        free(r);
    }
}

static void test_due(void)
{
    fx_fresh("due");
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    int64_t id = -1;
    /* never checked: the first scheduled check comes an interval after
     * the start */
    CHECK_EQ(sync_ledger_verify_due(l, 60000, 0, fx_now - 59000, &id, &err), 0);
    CHECK_EQ(id, 0);
    CHECK_EQ(sync_ledger_verify_due(l, 0, 0, 0, &id, &err), 0);
    CHECK_EQ(id, 0); /* no schedule, nothing asked */
    int64_t asked = 0;
    CHECK_EQ(sync_ledger_verify_request_db(fx_db, &asked, &err), 0);
    CHECK(asked > 0);
    CHECK_EQ(sync_ledger_verify_due(l, 0, 0, 0, &id, &err), 0);
    CHECK_EQ(id, asked);
    struct sync_verify_row r = {0};
    snprintf(r.result, sizeof r.result, "failed");
    snprintf(r.detail, sizeof r.detail, "HQ answered 503");
    CHECK_EQ(sync_ledger_verify_finish(l, id, NULL, &r, &err), 0);
    /* ended: a second end is refused, the row stays as it was */
    snprintf(r.detail, sizeof r.detail, "again");
    CHECK_EQ(sync_ledger_verify_finish(l, id, NULL, &r, &err), -ENOENT);
    struct sync_verify_row got;
    CHECK_EQ(sync_ledger_verify_get_db(fx_db, id, &got, &err), 0);
    CHECK_STR(got.result, "failed");
    CHECK_STR(got.detail, "HQ answered 503");
    CHECK_STR(got.origin, "cli");
    /* the schedule: the last check ended now, so one is due only after
     * the interval (and the jitter) */
    CHECK_EQ(sync_ledger_verify_due(l, 60000, 5000, 0, &id, &err), 0);
    CHECK_EQ(id, 0);
    fx_now += 64000;
    CHECK_EQ(sync_ledger_verify_due(l, 60000, 5000, 0, &id, &err), 0);
    CHECK_EQ(id, 0);
    fx_now += 2000;
    CHECK_EQ(sync_ledger_verify_due(l, 60000, 5000, 0, &id, &err), 0);
    CHECK(id > asked);
    CHECK_EQ(sync_ledger_verify_get_db(fx_db, id, &got, &err), 0);
    CHECK_STR(got.origin, "schedule");
    CHECK_EQ(got.finished_ms, 0);
    /* asked again while pending: the same one */
    int64_t again = 0;
    CHECK_EQ(sync_ledger_verify_due(l, 60000, 5000, 0, &again, &err), 0);
    CHECK_EQ(again, id);
    sync_ledger_close(l);
}

/* What HQ holds, made from the node's own entries: Ada and Bea lost, Cyd
 * with another hash and a lower version, Dov with another hash and a
 * higher version, Eli as the node has it. */
struct hq_copy {
    struct range_set *hq;
    char **ids;
};

static int copy_entry(void *ctx, const struct range_entry *re)
{
    struct hq_copy *c = ctx;
    unsigned char h[PROJECTION_HASH_BYTES] = {0};
    memcpy(h, re->hash, RANGE_HASH_BYTES);
    int64_t v = re->version;
    if (!strcmp(re->id, c->ids[0]) || !strcmp(re->id, c->ids[1]))
        return 0;
    if (!strcmp(re->id, c->ids[2])) {
        h[0] ^= 1;
        v--;
    }
    if (!strcmp(re->id, c->ids[3])) {
        h[0] ^= 1;
        v++;
    }
    return range_set_add(c->hq, re->entity, re->id, v, h);
}

static void test_set_and_repair(void)
{
    fx_fresh("repair");
    char *ids[6];
    const char *names[] = {"Ada", "Bea", "Cyd", "Dov", "Eli", "Fay"};
    for (int i = 0; i < 6; i++)
        ids[i] = fx_contact(names[i]);
    fx_restrict(ids[5]); /* Fay: never leaves */
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    struct range_set *mine = NULL;
    uint64_t in_flight = 0;
    CHECK_EQ(sync_ledger_verify_set(l, &mine, &in_flight, &err), 0);
    CHECK(mine == NULL);
    CHECK(in_flight >= 6); /* the creations (and the restriction) wait */
    drain(l);
    CHECK_EQ(outbox_rows(), 0);
    CHECK_EQ(sync_ledger_verify_set(l, &mine, &in_flight, &err), 0);
    CHECK(mine != NULL);
    CHECK_EQ(in_flight, 0);
    CHECK_EQ(range_set_count(mine), 5); /* Fay is not in it */

    struct range_set *hq = NULL;
    CHECK_EQ(range_set_new(&hq), 0);
    struct hq_copy c = {hq, ids};
    CHECK_EQ(range_each(mine, "", copy_entry, &c), 0);
    unsigned char h[PROJECTION_HASH_BYTES];
    memset(h, 0xee, sizeof h);
    CHECK_EQ(range_set_add(hq, "contact", "never-sent", 1, h), 0);
    range_set_seal(hq);
    CHECK_EQ(range_set_count(hq), 4);

    struct range_walk *w = NULL;
    CHECK_EQ(range_walk_new(mine, &w), 0);
    char *body = NULL;
    size_t len = 0;
    while (range_walk_request(w, &body, &len) == 0) {
        char *ans = NULL;
        CHECK_EQ(range_answer(hq, body, len, &ans, &err), 0);
        CHECK_EQ(range_walk_answer(w, ans, strlen(ans), &err), 0);
        free(ans);
        free(body);
    }
    int64_t id = 0;
    CHECK_EQ(sync_ledger_verify_request_db(fx_db, &id, &err), 0);
    struct sync_verify_row r = {0};
    CHECK_EQ(sync_ledger_verify_finish(l, id, w, &r, &err), 0);
    CHECK_STR(r.result, "drift");
    CHECK_EQ(r.compared, 5);
    CHECK_EQ(r.drift, 5);    /* Ada, Bea missing; Cyd differs; Dov newer; never-sent */
    CHECK_EQ(r.resent, 3);   /* Ada, Bea, Cyd */
    CHECK_EQ(r.reported, 2); /* Dov's newer version, the record never sent */
    CHECK_CONTAINS(r.detail, "newer at HQ");
    CHECK_CONTAINS(r.detail, "never-sent");
    CHECK_EQ(outbox_rows(), 3);
    char out[4096] = "";
    fx_dump("SELECT record_id, op, priority FROM outbox ORDER BY record_id", out, sizeof out);
    for (int i = 0; i < 3; i++)
        CHECK_CONTAINS(out, ids[i]);
    CHECK(!strstr(out, ids[3]) && !strstr(out, ids[4]) && !strstr(out, ids[5]));
    struct sync_verify_row got;
    CHECK_EQ(sync_ledger_verify_get_db(fx_db, 0, &got, &err), 0);
    CHECK_EQ(got.id, id);
    CHECK_STR(got.result, "drift");
    CHECK_EQ(got.resent, 3);
    /* the repairs go as the segmenter cuts any change: three records */
    struct sync_segment sg = fx_segment(l);
    CHECK_EQ(sg.records, 3);
    range_walk_free(w);
    range_set_free(hq);
    range_set_free(mine);
    for (int i = 0; i < 6; i++)
        free(ids[i]);
    sync_ledger_close(l);
}

/* HQ's copy of the node's set without `lost` (a tombstone row deleted at
 * HQ), with a tombstone `extra` the node kept no row for. */
struct hq_tombs {
    struct range_set *hq;
    const char *lost1, *lost2;
};

static int copy_but(void *ctx, const struct range_entry *re)
{
    struct hq_tombs *c = ctx;
    if (!strcmp(re->id, c->lost1) || !strcmp(re->id, c->lost2))
        return 0;
    unsigned char h[PROJECTION_HASH_BYTES] = {0};
    memcpy(h, re->hash, RANGE_HASH_BYTES);
    return range_set_add(c->hq, re->entity, re->id, re->version, h);
}

static void test_tombstones(void)
{
    fx_fresh("tombstones");
    char *gus = fx_contact("Gus"), *hal = fx_contact("Hal"), *ivy = fx_contact("Ivy");
    struct sync_ledger *l = fx_open(0);
    struct op_error err;
    drain(l);
    struct subject_erase_report rep;
    CHECK_EQ(subject_erase(fx_st, gus, "ticket 9", (uint64_t)fx_now, &rep, &err), 0);
    fx_restrict(hal);
    drain(l);
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_held WHERE state = 2"), 2);

    /* the acknowledged tombstones are in the set, hashed as gone */
    struct range_set *mine = NULL;
    uint64_t in_flight = 0;
    CHECK_EQ(sync_ledger_verify_set(l, &mine, &in_flight, &err), 0);
    CHECK(mine != NULL);
    CHECK_EQ(range_set_count(mine), 3);

    /* HQ lost both tombstones, and holds one the node has no row for */
    struct range_set *hq = NULL;
    CHECK_EQ(range_set_new(&hq), 0);
    struct hq_tombs c = {hq, gus, hal};
    CHECK_EQ(range_each(mine, "", copy_but, &c), 0);
    unsigned char g[PROJECTION_HASH_BYTES];
    CHECK_EQ(projection_hash("contact", PROJECTION_GONE, "old-tombstone", NULL, g), 0);
    CHECK_EQ(range_set_add(hq, "contact", "old-tombstone", 7, g), 0);
    range_set_seal(hq);

    struct range_walk *w = NULL;
    CHECK_EQ(range_walk_new(mine, &w), 0);
    char *body = NULL;
    size_t len = 0;
    while (range_walk_request(w, &body, &len) == 0) {
        char *ans = NULL;
        CHECK_EQ(range_answer(hq, body, len, &ans, &err), 0);
        CHECK_EQ(range_walk_answer(w, ans, strlen(ans), &err), 0);
        free(ans);
        free(body);
    }
    int64_t id = 0;
    CHECK_EQ(sync_ledger_verify_request_db(fx_db, &id, &err), 0);
    struct sync_verify_row r = {0};
    CHECK_EQ(sync_ledger_verify_finish(l, id, w, &r, &err), 0);
    CHECK_STR(r.result, "repaired");
    CHECK_EQ(r.drift, 2); /* the two lost tombstones; the learnt one is not drift */
    CHECK_EQ(r.resent, 2);
    CHECK_EQ(r.reported, 0);
    CHECK_CONTAINS(r.detail, "1 tombstones HQ holds learnt");
    char out[4096] = "";
    fx_dump("SELECT record_id, op, priority FROM outbox ORDER BY op", out, sizeof out);
    char want[256];
    snprintf(want, sizeof want, "%s|erase|0", gus);
    CHECK_CONTAINS(out, want);
    snprintf(want, sizeof want, "%s|upsert|0", hal);
    CHECK_CONTAINS(out, want);
    CHECK(!strstr(out, ivy));
    CHECK_EQ(fx_count(fx_st, "SELECT count(*) FROM egress_held WHERE record_id = 'old-tombstone' "
                             "AND state = 2 AND version = 7"),
             1);
    /* the repairs: the erasure's tombstone and a withdrawal, nothing else */
    struct sync_segment sg = fx_segment(l);
    CHECK_EQ(sg.records, 2);
    range_walk_free(w);
    range_set_free(hq);
    range_set_free(mine);

    /* after the repairs are acknowledged the sets agree, the learnt
     * tombstone included */
    char *rr = fx_receipt(fx_cred.node_id, sg.no, "applied", "", sg.to_urgent, sg.to_ordinary, 1);
    int outcome = -1;
    CHECK_EQ(sync_ledger_mark_uploaded(l, sg.no, &err), 0);
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, rr, strlen(rr), &outcome, &err), 0);
    free(rr);
    CHECK_EQ(sync_ledger_verify_set(l, &mine, &in_flight, &err), 0);
    CHECK(mine != NULL);
    CHECK_EQ(range_set_count(mine), 4);
    range_set_free(mine);
    free(gus);
    free(hal);
    free(ivy);
    sync_ledger_close(l);
}

int main(void)
{
    fx_setup();
    RUN(test_due);
    RUN(test_set_and_repair);
    RUN(test_tombstones);
    return fx_teardown();
}
