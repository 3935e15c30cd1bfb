/* Tests for appliance/uplink/ledger_receipts.c: a receipt with a forged MAC, for
 * another node, another segment, another range, a truncated one, and a
 * replay that disagrees with how the segment was settled are refused with
 * -EBADMSG naming the field and change nothing at all (every ledger table
 * and the spool compared before and after); an applied receipt changes
 * only the outbox, the segment, the cursor and the spool file; a replay
 * changes nothing; a rejection blocks; a receipt for a voided segment only
 * forgets its upload. */
#include "ledger_fixture.h"

/* A receipt for this node's test: a rejection says "bad shape". */
static char *receipt(const char *node, uint64_t no, const char *status, uint64_t tu, uint64_t to,
                     int mac_ok)
{
    return fx_receipt(node, no, status, "bad shape", tu, to, mac_ok);
}

/* This node's receipt for sg with `status` and sg's own range. */
static char *own_receipt(const struct sync_segment *sg, const char *status)
{
    return receipt(fx_cred.node_id, sg->no, status, sg->to_urgent, sg->to_ordinary, 1);
}

/* Applies receipt r to segment sg, checks that it was taken, and returns
 * the outcome. */
static int taken(struct sync_ledger *l, const struct sync_segment *sg, const char *r)
{
    struct op_error err;
    int outcome = -1;
    CHECK_EQ(sync_ledger_apply_receipt(l, sg->no, r, strlen(r), &outcome, &err), 0);
    return outcome;
}

/* Applies a receipt for segment `no` and checks that it was refused for
 * `field` with nothing changed. */
static void refused(struct sync_ledger *l, uint64_t no, const char *json, size_t len,
                    const char *field)
{
    char *before = fx_snapshot();
    struct op_error err;
    op_error_clear(&err);
    int outcome = -1;
    CHECK_EQ(sync_ledger_apply_receipt(l, no, json, len, &outcome, &err), -EBADMSG);
    CHECK_STR(err.field, field);
    CHECK_EQ(outcome, -1);
    fx_check_unchanged(before);
}

/* A new database `name` holding one contact, a ledger on it, and the
 * segment cut from it into *sg. */
static struct sync_ledger *one_segment(const char *name, struct sync_segment *sg)
{
    fx_fresh(name);
    free(fx_contact("Ada"));
    struct sync_ledger *l = fx_open(0);
    *sg = fx_segment(l);
    return l;
}

static void test_refused(void)
{
    fx_fresh("refused");
    free(fx_contact("Ada"));
    free(fx_contact("Bea"));
    struct sync_ledger *l = fx_open(0);
    struct sync_segment sg = fx_segment(l);
    const char *me = fx_cred.node_id;

    char *r = receipt(me, sg.no, "applied", sg.to_urgent, sg.to_ordinary, 0);
    refused(l, sg.no, r, strlen(r), "mac");
    free(r);
    r = receipt("other-node", sg.no, "applied", sg.to_urgent, sg.to_ordinary, 1);
    refused(l, sg.no, r, strlen(r), "node");
    free(r);
    /* authentic, but another range than the segment's: HQ would ack rows
     * the node never sent it */
    r = receipt(me, sg.no, "applied", sg.to_urgent, sg.to_ordinary + 1, 1);
    refused(l, sg.no, r, strlen(r), "to");
    free(r);
    r = receipt(me, sg.no, "applied", sg.to_urgent, sg.to_ordinary, 1);
    refused(l, sg.no + 1, r, strlen(r), "segment");
    refused(l, sg.no, r, strlen(r) - 3, "receipt");
    free(r);
    r = receipt(me, sg.no, "maybe", sg.to_urgent, sg.to_ordinary, 1);
    refused(l, sg.no, r, strlen(r), "status");
    free(r);
    CHECK(fx_exists(sg.path));
    sync_ledger_close(l);
}

static void test_applied_and_replay(void)
{
    struct sync_segment sg;
    struct sync_ledger *l = one_segment("applied", &sg);
    struct op_error err;
    char *r = own_receipt(&sg, "applied");
    char *before = fx_snapshot();
    CHECK_EQ(taken(l, &sg, r), SYNC_SEG_ACKED);
    CHECK(!fx_exists(sg.path));
    char *after = fx_snapshot();
    CHECK(strcmp(after, before) != 0);
    /* the acknowledged row left the outbox */
    CHECK_CONTAINS(before, "FROM outbox ORDER BY seq]\n1|upsert|2|\n[SELECT * FROM sync_state]");
    CHECK_CONTAINS(after, "FROM outbox ORDER BY seq]\n[SELECT * FROM sync_state]");
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.acked_ordinary, sg.to_ordinary);
    CHECK_EQ(s.segments_acked, 1);
    CHECK_EQ(s.last_sync_ms, fx_now);

    /* a replay: the same outcome, nothing changes */
    fx_now += 1000;
    CHECK_EQ(taken(l, &sg, r), SYNC_SEG_ACKED);
    char *again = fx_snapshot();
    CHECK_STR(again, after);
    free(r);
    /* a replay that says otherwise is refused */
    r = own_receipt(&sg, "rejected");
    refused(l, sg.no, r, strlen(r), "status");
    free(r);
    free(before);
    free(after);
    free(again);
    sync_ledger_close(l);
}

static void test_rejected(void)
{
    struct sync_segment sg;
    struct sync_ledger *l = one_segment("rejected", &sg);
    struct op_error err;
    char *r = own_receipt(&sg, "rejected");
    CHECK_EQ(taken(l, &sg, r), SYNC_SEG_REJECTED);
    CHECK(!fx_exists(sg.path));
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_CONTAINS(s.blocked, "rejected by HQ: bad shape");
    CHECK_EQ(s.segments_rejected, 1);
    CHECK_EQ(s.outbox_depth, 1); /* nothing acknowledged */
    CHECK_EQ(s.acked_ordinary, 0);
    /* a replay: harmless */
    char *before = fx_snapshot();
    CHECK_EQ(taken(l, &sg, r), SYNC_SEG_REJECTED);
    fx_check_unchanged(before);
    free(r);
    sync_ledger_close(l);
}

static void test_voided(void)
{
    fx_fresh("voided");
    char *id = fx_contact("Ada");
    struct sync_ledger *l = fx_open(0);
    struct sync_segment sg = fx_segment(l);
    struct op_error err;
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq/files/abc", &err), 0);
    /* a restriction voids the spool: the segment moves to spool_voided */
    fx_restrict(id);
    int found = 0;
    uint64_t no = 0;
    char url[256];
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(no, sg.no);
    CHECK_STR(url, "http://hq/files/abc");

    /* HQ settled it anyway: the receipt forgets the upload and nothing else */
    char *r = own_receipt(&sg, "applied");
    char *before = fx_snapshot();
    CHECK_EQ(taken(l, &sg, r), SYNC_SEG_VOIDED);
    char *after = fx_snapshot();
    CHECK_CONTAINS(before, "[SELECT * FROM spool_voided ORDER BY no]\n1|");
    CHECK_CONTAINS(after, "[SELECT * FROM spool_voided ORDER BY no]\n[");
    /* the same text once the spool_voided rows are cut out */
    char *b = strstr(before, "[SELECT * FROM spool_voided"),
         *be = strstr(before, "[SELECT * FROM sync_errors");
    char *a = strstr(after, "[SELECT * FROM spool_voided"),
         *ae = strstr(after, "[SELECT * FROM sync_errors");
    CHECK(b && be && a && ae);
    if (b && be && a && ae) {
        CHECK_EQ(strncmp(before, after, (size_t)(b - before)), 0);
        CHECK_STR(ae, be);
    }
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 0);
    /* HQ applied it, so HQ holds what it carried (docs/SYNC.md, "Nothing
     * new, nothing sent"), moved in the receipt's transaction */
    CHECK_CONTAINS(before, "egress_flight ORDER BY segment_no, entity, record_id]\n1|contact|");
    CHECK_CONTAINS(after, "egress_flight ORDER BY segment_no, entity, record_id]\n[");
    char held[160];
    snprintf(held, sizeof held, "egress_held ORDER BY entity, record_id]\ncontact|%s|1|0|", id);
    CHECK_CONTAINS(after, held);
    /* and the restriction's withdrawal goes: the hash of a tombstone is
     * not the one HQ holds */
    struct sync_segment w = fx_segment(l);
    CHECK_EQ(w.records, 1);
    /* a second one names no segment the ledger knows */
    int outcome = -1;
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, r, strlen(r), &outcome, &err), -ENOENT);
    CHECK_STR(err.field, "segment");
    CHECK_EQ(outcome, -1);
    free(before);
    free(after);
    free(r);
    free(id);
    sync_ledger_close(l);
}

int main(void)
{
    fx_setup();
    test_refused();
    test_applied_and_replay();
    test_rejected();
    test_voided();
    return fx_teardown();
}
