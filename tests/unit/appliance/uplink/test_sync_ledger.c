/* Tests for appliance/uplink/sync_ledger.c against a real node database and a
 * temporary fx_spool: segments cover the outbox exactly; an authentic receipt
 * prunes the outbox and deletes the file, a replay is harmless, a forged
 * or mismatched one changes nothing; a rejection blocks until the policy
 * hash changes; restarts reconcile fx_spool and table after simulated
 * crashes; the fx_spool cap stops segmenting (told to the caller once, to log
 * it); an erasure goes in the first
 * segment behind a backlog; a restricted record HQ holds leaves as a
 * withdraw tombstone; 20,000 changes become many small segments; the
 * mailbox keeps only authentic messages, applies a policy from HQ that
 * loosens nothing and keeps one that loosens pending; between calls the
 * ledger holds no read snapshot; the records of a voided segment HQ never
 * had are not withdrawn, those of one it had are; a reload of a tighter
 * policy voids the segment uploading before it returns. */
#include <fcntl.h>
#include <unistd.h>

#include "db.h"
#include "ledger_fixture.h"
#include "node_policy.h"
#include "outbox.h"
#include "policy.h"
#include "segment.h"
#include "outpost_config.h"

static char *add_contact(const char *name, int restricted)
{
    return fx_create(fx_st, &entity_contact,
                     json_pack("{sssb}", "given_name", name, "restricted", restricted));
}

/* A new database `name` holding one contact, Ada, and a ledger on it
 * with fx_spool cap `cap` (0 for the default). */
static struct sync_ledger *ledger_with_ada(const char *name, uint64_t cap)
{
    fx_fresh(name);
    free(add_contact("Ada", 0));
    return fx_open_capped(0, cap);
}

static int64_t depth(void)
{
    int64_t d = -1, oldest = 0;
    struct op_error err;
    if (outbox_stats(fx_st, &d, &oldest, &err) < 0)
        fx_die("outbox_stats", &err);
    return d;
}

/* A receipt as HQ would send it; a rejection says the policy hash differs. */
static char *receipt(const char *node, uint64_t no, const char *status, uint64_t tu, uint64_t to,
                     int mac_ok)
{
    return fx_receipt(node, no, status, "policy hash mismatch", tu, to, mac_ok);
}

static int apply(struct sync_ledger *l, const struct sync_segment *sg, const char *status,
                 int mac_ok, int *outcome, struct op_error *err)
{
    char *r = receipt(fx_cred.node_id, sg->no, status, sg->to_urgent, sg->to_ordinary, mac_ok);
    int rc = sync_ledger_apply_receipt(l, sg->no, r, strlen(r), outcome, err);
    free(r);
    return rc;
}

/* The ops of a segment's records, joined with ',' (at most cap bytes). */
static void segment_ops(const char *path, char *out, size_t cap, char *first_json, size_t jcap)
{
    struct segment *sg = NULL;
    struct op_error err;
    out[0] = '\0';
    if (first_json)
        first_json[0] = '\0';
    if (segment_open(path, fx_cred.hq_key, NULL, &sg, &err) < 0)
        fx_die("segment_open", &err);
    const char *entity, *op, *json;
    size_t len;
    int rc;
    while ((rc = segment_next_record(sg, &entity, &op, &json, &len, &err)) == 1) {
        if (first_json && !first_json[0])
            snprintf(first_json, jcap, "%s", json);
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", n ? "," : "", op);
    }
    CHECK_EQ(rc, 0);
    segment_close(sg);
}

static void test_ack_and_replay(void)
{
    fx_fresh("ack");
    free(add_contact("Ada", 0));
    free(add_contact("Bea", 0));
    struct sync_ledger *l = fx_open_capped(0, 0);
    struct op_error err;
    struct sync_segment sg, up;
    int made = 0, found = 0, outcome = -1;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 1);
    CHECK_EQ(sg.no, 1);
    CHECK_EQ(sg.records, 2);
    CHECK_EQ(sg.from_ordinary, 0);
    CHECK(sg.to_ordinary >= 2);
    CHECK_EQ(sg.state, SYNC_SEG_SPOOLED);
    CHECK(fx_exists(sg.path));
    char ops[256];
    segment_ops(sg.path, ops, sizeof ops, NULL, 0);
    CHECK_STR(ops, "upsert,upsert");
    /* nothing more to segment */
    CHECK_EQ(sync_ledger_make_segment(l, &made, &up, &err), 0);
    CHECK_EQ(made, 0);

    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(up.no, 1);
    CHECK_STR(up.upload_url, "");
    CHECK_EQ(sync_ledger_set_upload_url(l, 1, "http://hq/files/abc", &err), 0);
    CHECK_EQ(sync_ledger_mark_uploaded(l, 1, &err), 0);
    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_STR(up.upload_url, "http://hq/files/abc");
    CHECK_EQ(up.state, SYNC_SEG_UPLOADED);
    CHECK_EQ(sync_ledger_set_upload_url(l, 7, "http://x", &err), -ENOENT);

    CHECK_EQ(apply(l, &sg, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(outcome, SYNC_SEG_ACKED);
    CHECK_EQ(depth(), 0);
    CHECK(!fx_exists(sg.path));
    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_EQ(found, 0);
    /* a replay is harmless */
    outcome = -1;
    CHECK_EQ(apply(l, &sg, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(outcome, SYNC_SEG_ACKED);
    CHECK_EQ(depth(), 0);

    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.enabled, 1);
    CHECK_EQ(s.segments_acked, 1);
    CHECK(s.last_sync_ms > 0);
    CHECK_EQ(s.acked_ordinary, sg.to_ordinary);
    CHECK_EQ(s.next_segment, 2);
    CHECK_EQ(s.spool_bytes, 0);
    CHECK_EQ(s.outbox_depth, 0);
    CHECK(s.eta_s == 0);
    sync_ledger_close(l);
}

/* Two uploads in flight (docs/UPLINK.md, "Two uploads"): segment 2's
 * receipt comes before segment 1's. Segment 2 is settled and its file
 * goes, but no outbox row leaves and the cursor stays until segment 1 is
 * settled too; then both ranges leave at once. */
static void test_receipts_out_of_order(void)
{
    fx_fresh("order");
    free(add_contact("Ada", 0));
    struct sync_ledger *l = fx_open_capped(0, 0);
    struct op_error err;
    struct sync_segment s1, s2, up;
    int made = 0, found = 0, outcome = -1;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s1, &err), 0);
    CHECK_EQ(made, 1);
    free(add_contact("Bea", 0));
    free(add_contact("Cyd", 0));
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s2, &err), 0);
    CHECK_EQ(made, 1);
    CHECK_EQ(s2.no, s1.no + 1);
    CHECK_EQ(depth(), 3);
    /* the second slot takes the segment after the one the first holds */
    CHECK_EQ(sync_ledger_next_upload_except(l, s1.no, &found, &up, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(up.no, s2.no);
    CHECK_EQ(sync_ledger_next_upload_except(l, 0, &found, &up, &err), 0);
    CHECK_EQ(up.no, s1.no);

    CHECK_EQ(apply(l, &s2, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(outcome, SYNC_SEG_ACKED);
    CHECK(!fx_exists(s2.path));
    CHECK(fx_exists(s1.path));
    CHECK_EQ(depth(), 3); /* segment 1's rows and its own stay */
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.acked_ordinary, 0);
    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(up.no, s1.no);
    /* a replay of segment 2's receipt changes nothing */
    CHECK_EQ(apply(l, &s2, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(depth(), 3);

    CHECK_EQ(apply(l, &s1, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(outcome, SYNC_SEG_ACKED);
    CHECK_EQ(depth(), 0);
    CHECK(!fx_exists(s1.path));
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.acked_ordinary, s2.to_ordinary);
    CHECK_EQ(s.segments_acked, 2);
    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_EQ(found, 0);
    sync_ledger_close(l);
}

static void test_bad_receipts(void)
{
    struct sync_ledger *l = ledger_with_ada("bad", 0);
    struct op_error err;
    struct sync_segment sg;
    int made = 0, outcome = -1;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 1);

    CHECK_EQ(apply(l, &sg, "applied", 0, &outcome, &err), -EBADMSG);
    CHECK_STR(err.field, "mac");
    struct sync_segment wrong = sg;
    wrong.to_ordinary++;
    CHECK_EQ(apply(l, &wrong, "applied", 1, &outcome, &err), -EBADMSG);
    CHECK_STR(err.field, "to");
    char *r = receipt("other-node", sg.no, "applied", sg.to_urgent, sg.to_ordinary, 1);
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, r, strlen(r), &outcome, &err), -EBADMSG);
    CHECK_STR(err.field, "node");
    free(r);
    r = receipt(fx_cred.node_id, sg.no, "applied", sg.to_urgent, sg.to_ordinary, 1);
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no + 1, r, strlen(r), &outcome, &err), -EBADMSG);
    CHECK_STR(err.field, "segment");
    CHECK_EQ(sync_ledger_apply_receipt(l, sg.no, r, strlen(r) - 3, &outcome, &err), -EBADMSG);
    CHECK_STR(err.field, "receipt");
    free(r);
    CHECK_EQ(outcome, -1);
    /* nothing changed */
    CHECK_EQ(depth(), 1);
    CHECK(fx_exists(sg.path));
    int found = 0;
    struct sync_segment up;
    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(up.state, SYNC_SEG_SPOOLED);
    sync_ledger_close(l);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        fx_die(path, NULL);
}

static void test_rejected_blocks(void)
{
    struct sync_ledger *l = ledger_with_ada("rej", 0);
    struct op_error err;
    struct sync_segment sg, s2;
    int made = 0, outcome = -1, found = 0;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(apply(l, &sg, "rejected", 1, &outcome, &err), 0);
    CHECK_EQ(outcome, SYNC_SEG_REJECTED);
    CHECK(!fx_exists(sg.path));
    CHECK_EQ(depth(), 1); /* nothing acknowledged */
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_CONTAINS(s.blocked, "segment 1 rejected by HQ: policy hash mismatch");
    CHECK_EQ(s.segments_rejected, 1);
    free(add_contact("Bea", 0));
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s2, &err), 0);
    CHECK_EQ(made, 0);
    CHECK_EQ(sync_ledger_next_upload(l, &found, &s2, &err), 0);
    CHECK_EQ(found, 0);
    /* the same policy again: still blocked */
    CHECK_EQ(sync_ledger_reload_policy(l, &err), 0);
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s2, &err), 0);
    CHECK_EQ(made, 0);
    /* a new policy (another hash): segment again from the acked cursor */
    size_t len = 0;
    char *yaml = fx_read_file(getenv("OUTPOST_POLICY"), &len);
    char p2[400];
    snprintf(p2, sizeof p2, "%s/v2", fx_dir);
    mkdir(p2, 0700);
    snprintf(p2, sizeof p2, "%s/v2/EU-DE.yaml", fx_dir);
    write_file(p2, yaml, len);
    FILE *f = fopen(p2, "a");
    fputs("\n# revised\n", f);
    fclose(f);
    free(yaml);
    char *old = strdup(getenv("OUTPOST_POLICY"));
    setenv("OUTPOST_POLICY", p2, 1);
    if (sync_ledger_reload_policy(l, &err) != 0)
        fprintf(stderr, "reload: %s\n", err.msg);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_STR(s.blocked, "");
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s2, &err), 0);
    CHECK_EQ(made, 1);
    CHECK_EQ(s2.no, 2);
    CHECK_EQ(s2.from_ordinary, 0);
    CHECK_EQ(s2.records, 2);
    CHECK_EQ(apply(l, &s2, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(depth(), 0);
    setenv("OUTPOST_POLICY", old, 1);
    free(old);
    sync_ledger_close(l);
}

static void test_reconcile(void)
{
    struct sync_ledger *l = ledger_with_ada("rec", 0);
    struct op_error err;
    struct sync_segment s1, s2, s3;
    int made = 0;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s1, &err), 0);
    free(add_contact("Bea", 0));
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s2, &err), 0);
    CHECK_EQ(s2.from_ordinary, s1.to_ordinary);
    sync_ledger_close(l);

    /* crash leftovers: an unfinished write, a file whose row never
     * committed, and a row whose file is gone */
    char tmp[400], orphan[400];
    snprintf(tmp, sizeof tmp, "%s/0000000000000003.seg.tmp", fx_spool);
    snprintf(orphan, sizeof orphan, "%s/0000000000000042.seg", fx_spool);
    write_file(tmp, "x", 1);
    write_file(orphan, "y", 1);
    CHECK_EQ(unlink(s1.path), 0);
    l = fx_open_capped(0, 0);
    CHECK(!fx_exists(tmp));
    CHECK(!fx_exists(orphan));
    /* s1 had no file: s1 and everything after it is segmented again */
    CHECK(!fx_exists(s2.path));
    int found = 0;
    CHECK_EQ(sync_ledger_next_upload(l, &found, &s3, &err), 0);
    CHECK_EQ(found, 0);
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s3, &err), 0);
    CHECK_EQ(made, 1);
    CHECK_EQ(s3.no, 3);
    CHECK_EQ(s3.from_ordinary, s1.from_ordinary);
    CHECK_EQ(s3.to_ordinary, s2.to_ordinary);
    CHECK_EQ(s3.records, 2);
    int outcome = -1;
    /* the dropped segment's receipt no longer applies */
    CHECK_EQ(apply(l, &s1, "applied", 1, &outcome, &err), -ENOENT);
    CHECK_EQ(apply(l, &s3, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(depth(), 0);
    sync_ledger_close(l);

    /* acknowledged, but the file survived the unlink (crash): deleted at open */
    free(add_contact("Cy", 0));
    l = fx_open_capped(0, 0);
    struct sync_segment s4;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &s4, &err), 0);
    char copy[1100];
    snprintf(copy, sizeof copy, "%s.keep", s4.path);
    CHECK_EQ(link(s4.path, copy), 0);
    CHECK_EQ(apply(l, &s4, "applied", 1, &outcome, &err), 0);
    sync_ledger_close(l);
    CHECK_EQ(rename(copy, s4.path), 0);
    l = fx_open_capped(0, 0);
    CHECK(!fx_exists(s4.path));
    sync_ledger_close(l);
}

static void test_spool_cap(void)
{
    struct sync_ledger *l = ledger_with_ada("cap", 1);
    struct op_error err;
    struct sync_segment sg;
    int made = 0;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 1);
    free(add_contact("Bea", 0));
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.spool_full, 1);
    CHECK_EQ(s.spool_segments, 1);
    CHECK_EQ(s.spool_cap, 1);
    CHECK_EQ(s.outbox_depth, 2);
    /* the caller hears of it once, to log the alarm */
    struct sync_ledger_news news;
    sync_ledger_take_news(l, &news);
    CHECK_EQ(news.spool, 1);
    CHECK_EQ(news.spool_segments, 1);
    CHECK_EQ(news.spool_cap, 1);
    CHECK(news.spool_bytes > 0);
    CHECK_EQ(news.pending_seq, 0);
    CHECK_STR(news.policy_now, "");
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    sync_ledger_take_news(l, &news);
    CHECK_EQ(news.spool, 0);
    /* readable beside the daemon, without credentials */
    struct sync_status s2;
    CHECK_EQ(sync_ledger_status_db(fx_db, &s2, &err), 0);
    CHECK_EQ(s2.spool_full, 1);
    CHECK_EQ(s2.enabled, 1);
    CHECK_STR(s2.node_id, fx_cred.node_id);
    /* an ack frees the fx_spool */
    int outcome = -1, found = 0;
    struct sync_segment up;
    CHECK_EQ(sync_ledger_next_upload(l, &found, &up, &err), 0);
    CHECK_EQ(apply(l, &up, "applied", 1, &outcome, &err), 0);
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 1);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.spool_full, 0);
    sync_ledger_take_news(l, &news);
    CHECK_EQ(news.spool, -1);
    sync_ledger_close(l);
}

/* Many contacts in one transaction. */
static void add_many(int n)
{
    struct op_error err;
    if (store_begin(fx_st, &err) < 0)
        fx_die("begin", &err);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "Person %d", i);
        free(add_contact(name, 0));
    }
    if (store_commit(fx_st, &err) < 0)
        fx_die("commit", &err);
}

/* Cuts and acknowledges every segment: HQ holds everything queued. */
static void drain_and_ack(struct sync_ledger *l)
{
    struct op_error err;
    struct sync_segment sg;
    int made = 0, outcome = -1;
    for (;;) {
        if (sync_ledger_make_segment(l, &made, &sg, &err) != 0)
            fx_die("make_segment", &err);
        if (!made)
            break;
        if (apply(l, &sg, "applied", 1, &outcome, &err) != 0)
            fx_die("apply", &err);
    }
}

/* Cuts the next segment into sg and checks that it starts where the one
 * before ended (*prev_to, moved on); 0 when nothing is left to cut. */
static int next_contiguous(struct sync_ledger *l, struct sync_segment *sg, uint64_t *prev_to)
{
    struct op_error err;
    int made = 0;
    CHECK_EQ(sync_ledger_make_segment(l, &made, sg, &err), 0);
    if (!made)
        return 0;
    CHECK_EQ(sg->from_ordinary, *prev_to);
    *prev_to = sg->to_ordinary;
    return 1;
}

static void test_erase_first_and_withdraw(void)
{
    fx_fresh("erase");
    add_many(3000);
    char *restricted = add_contact("Hidden", 0);
    char *victim = add_contact("Victim", 0);
    struct op_error err;
    struct sync_ledger *l = fx_open_capped(4000, 0);
    drain_and_ack(l); /* HQ holds all of them */
    add_many(3000);   /* a backlog */
    fx_restrict(restricted);
    if (store_purge(fx_st, &entity_contact, victim, "erase", "subject request", &err) < 0)
        fx_die("purge", &err);
    struct sync_segment sg;
    int made = 0;
    if (sync_ledger_make_segment(l, &made, &sg, &err) != 0)
        fx_die("make_segment", &err);
    CHECK_EQ(made, 1);
    CHECK(sg.records < 3000);
    CHECK(sg.to_urgent > sg.from_urgent);
    char ops[65536], first[512];
    segment_ops(sg.path, ops, sizeof ops, first, sizeof first);
    CHECK(!strncmp(ops, "erase,upsert", 12));
    char want[128];
    snprintf(want, sizeof want, "{\"id\":\"%s\"", victim);
    CHECK(!strncmp(first, want, strlen(want)));
    /* drain the rest; the restricted contact leaves as a withdraw */
    int withdraws = 0, total = (int)sg.records;
    uint64_t prev_to = sg.to_ordinary;
    while (next_contiguous(l, &sg, &prev_to)) {
        total += (int)sg.records;
        segment_ops(sg.path, ops, sizeof ops, first, sizeof first);
        for (const char *p = ops; (p = strstr(p, "withdraw")); p++)
            withdraws++;
    }
    CHECK_EQ(withdraws, 1);
    /* 3000 new + Hidden's withdraw + the erase; Victim's ordinary rows
     * collapse behind it */
    CHECK(total >= 3002);
    free(restricted);
    free(victim);
    sync_ledger_close(l);
}

static void test_many_small_segments(void)
{
    fx_fresh("many");
    add_many(20000);
    struct sync_ledger *l = fx_open_capped(20000, 0);
    struct op_error err;
    struct sync_segment sg;
    int segments = 0;
    uint64_t records = 0, prev_to = 0;
    while (next_contiguous(l, &sg, &prev_to)) {
        records += sg.records;
        segments++;
        /* the target is kept within one record and deflate's buffer */
        CHECK(sg.bytes < 20000 + 65536);
    }
    CHECK_EQ(records, 20000);
    CHECK(segments >= 10);
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_EQ(s.spool_segments, (uint64_t)segments);
    CHECK(s.eta_s == -1); /* no goodput yet */
    struct sync_link_report r = {
        .bytes_sent = 1000, .bytes_confirmed = 1000, .sample_bytes = 1000, .duration_ms = 500};
    CHECK_EQ(sync_ledger_note_link(l, &r, &err), 0);
    struct sync_link_report e = {.error_kind = "network", .error_msg = "connection refused"};
    CHECK_EQ(sync_ledger_note_link(l, &e, &err), 0);
    CHECK_EQ(sync_ledger_note_link(l, &e, &err), 0);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK(s.goodput_bps > 1999 && s.goodput_bps < 2001);
    CHECK(s.eta_s > 0);
    CHECK_EQ(s.bytes_today, 1000);
    CHECK_EQ(s.nerrors, 1);
    CHECK_STR(s.errors[0].kind, "network");
    CHECK_EQ(s.errors[0].n, 2);
    CHECK_STR(s.last_error, "network: connection refused");
    sync_ledger_close(l);
}

static json_t *message(uint64_t seq, const char *kind, const char *body, int mac_ok)
{
    char mac[SYNC_MAC_HEX];
    sync_mailbox_mac(fx_cred.hq_key, fx_cred.node_id, seq, kind, body, strlen(body), mac);
    if (!mac_ok)
        mac[5] = mac[5] == 'a' ? 'b' : 'a';
    return json_pack("{sIssssssss}", "seq", (json_int_t)seq, "kind", kind, "created_at",
                     "2026-11-24T18:00:00.000Z", "body", body, "mac", mac);
}

static int store_msgs(struct sync_ledger *l, json_t *msgs, int *changed, struct op_error *err)
{
    json_t *a = json_pack("{soss}", "messages", msgs, "last", "x");
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    int rc = sync_ledger_mailbox_store(l, s, strlen(s), changed, err);
    free(s);
    return rc;
}

/* The text in the first column of the first row of sql, or "" when there is none. */
static const char *first_text(const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *q;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(store_db(fx_st), sql, -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return buf;
}

static const char *mailbox_states(void)
{
    static char buf[512];
    return first_text("SELECT group_concat(seq || ':' || status, ',') FROM "
                      "(SELECT * FROM mailbox ORDER BY seq)",
                      buf, sizeof buf);
}

static const char *ledger_rows(void)
{
    static char buf[1024];
    return first_text("SELECT group_concat(kind || ':' || actor || ':' || mailbox_seq, ',') "
                      "FROM (SELECT * FROM policy_ledger ORDER BY id)",
                      buf, sizeof buf);
}

static int same_file(const char *path, const char *text)
{
    size_t n = 0;
    char *got = fx_read_file(path, &n);
    int same = got && n == strlen(text) && !memcmp(got, text, n);
    free(got);
    return same;
}

/* The mailbox keeps only authentic messages; a policy from HQ that
 * loosens nothing takes effect by itself (recorded in the policy ledger),
 * one that loosens waits as pending, a newer one supersedes it. The
 * profile is in force at the start (no OUTPOST_POLICY). */
static void test_mailbox(void)
{
    char *env = strdup(getenv("OUTPOST_POLICY"));
    size_t len = 0;
    char *yaml = fx_read_file(env, &len);
    unsetenv("OUTPOST_POLICY");
    fx_fresh("mail");
    struct sync_ledger *l = fx_open_capped(0, 0);
    struct op_error err;
    char ke[400];
    snprintf(ke, sizeof ke, "%s/KE.yaml", OUTPOST_SOURCE_REGIONS_DIR);
    size_t klen = 0;
    char *keyaml = fx_read_file(ke, &klen);
    char over[400];
    CHECK_EQ(node_policy_override_path(fx_db, over, sizeof over), 0);
    uint64_t after = 99;
    int changed = -1;
    /* a comment: nothing of substance; a field closed; a field opened */
    char *commented = fx_edit(yaml, "format:", "# revised at HQ\nformat:");
    char *tighter = fx_edit(commented, "contact.phone: {class: pseudonymize",
                            "contact.phone: {class: local_only");
    char *looser = fx_edit(tighter, "contact.given_name: {class: pseudonymize",
                           "contact.given_name: {class: exportable");
    char *looser2 =
        fx_edit(looser, "contact.email: {class: pseudonymize", "contact.email: {class: exportable");

    /* one forged message: nothing stored, cursor unchanged */
    CHECK_EQ(store_msgs(
                 l,
                 json_pack("[oo]", message(1, "reference", "{}", 1), message(2, "policy", yaml, 0)),
                 &changed, &err),
             -EBADMSG);
    CHECK_STR(err.field, "mac");
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK_EQ(after, 0);
    CHECK(!fx_exists(over));

    /* a policy of another region is refused; the profile again is the
     * policy in force already; a comment changes nothing of substance and
     * takes effect by itself */
    CHECK_EQ(store_msgs(l,
                        json_pack("[oooo]", message(1, "reference", "{}", 1),
                                  message(2, "policy", keyaml, 1), message(3, "policy", yaml, 1),
                                  message(4, "policy", commented, 1)),
                        &changed, &err),
             0);
    CHECK_EQ(changed, 1);
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK_EQ(after, 4);
    CHECK_STR(mailbox_states(), "1:pending,2:refused,3:applied,4:applied");
    CHECK(same_file(over, commented));
    struct stat sb;
    CHECK_EQ(stat(over, &sb), 0);
    CHECK_EQ(sb.st_mode & 0777, 0640);
    CHECK_STR(ledger_rows(), "auto-tightened:hq:4");

    /* a tightening: by itself; a loosening: pending, the policy stays */
    CHECK_EQ(store_msgs(l,
                        json_pack("[oo]", message(5, "policy", tighter, 1),
                                  message(6, "policy", looser, 1)),
                        &changed, &err),
             0);
    CHECK_EQ(changed, 1);
    CHECK_STR(mailbox_states(), "1:pending,2:refused,3:applied,4:applied,5:applied,6:pending");
    /* the caller hears of the one waiting, to log it */
    struct sync_ledger_news news;
    sync_ledger_take_news(l, &news);
    CHECK_EQ(news.pending_seq, 6);
    CHECK_EQ(news.pending_loosens, 1);
    CHECK_EQ(strlen(news.pending_hash), 64);
    sync_ledger_take_news(l, &news);
    CHECK_EQ(news.pending_seq, 0);
    CHECK(same_file(over, tighter));
    CHECK_STR(ledger_rows(), "auto-tightened:hq:4,auto-tightened:hq:5");
    char reason[512];
    CHECK_CONTAINS(first_text("SELECT reason FROM mailbox WHERE seq = 6", reason, sizeof reason),
                   "1 loosen, 0 tighten, 0 neutral: contact.given_name: pseudonymize -> "
                   "exportable (loosens)");
    CHECK_CONTAINS(first_text("SELECT summary FROM policy_ledger WHERE mailbox_seq = 5", reason,
                              sizeof reason),
                   "contact.phone: pseudonymize -> local_only (tightens)");

    /* a second loosening supersedes the first; nothing takes effect */
    CHECK_EQ(store_msgs(l, json_pack("[o]", message(7, "policy", looser2, 1)), &changed, &err), 0);
    CHECK_EQ(changed, 0);
    sync_ledger_take_news(l, &news);
    CHECK_EQ(news.pending_seq, 7);
    CHECK_EQ(news.pending_loosens, 2);
    CHECK_STR(mailbox_states(),
              "1:pending,2:refused,3:applied,4:applied,5:applied,6:refused,7:pending");
    CHECK(same_file(over, tighter));
    CHECK_STR(first_text("SELECT reason FROM mailbox WHERE seq = 6", reason, sizeof reason),
              "superseded by policy message 7 from HQ");

    /* the override is what the node loads when nothing more explicit is set */
    char path[1024];
    CHECK_EQ(node_policy_path(NULL, fx_db, "EU-DE", path, sizeof path, &err), 0);
    CHECK_STR(path, over);
    struct policy *pol = NULL;
    CHECK_EQ(node_policy_load(NULL, fx_db, "EU-DE", &pol, &err), 0);
    CHECK(pol && !strcmp(pol->path, over) && !strcmp(pol->region, "EU-DE"));
    policy_free(pol);
    CHECK_EQ(node_policy_path("/x.yaml", fx_db, "EU-DE", path, sizeof path, &err), 0);
    CHECK_STR(path, "/x.yaml");
    setenv("OUTPOST_POLICY", env, 1);
    CHECK_EQ(node_policy_path(NULL, fx_db, "EU-DE", path, sizeof path, &err), 0);
    CHECK_STR(path, env);
    /* a repeat is harmless and does not change the policy again */
    changed = -1;
    CHECK_EQ(store_msgs(l, json_pack("[o]", message(5, "policy", tighter, 1)), &changed, &err), 0);
    CHECK_EQ(changed, 0);
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK_EQ(after, 7);
    CHECK_EQ(sync_ledger_mailbox_store(l, "nope", 4, &changed, &err), -EBADMSG);
    /* with OUTPOST_POLICY in force, a tightening judged against it is
     * written but does not take effect: not recorded as in force */
    sync_ledger_close(l);
    l = fx_open_capped(0, 0);
    char *env_tighter =
        fx_edit(yaml, "contact.phone: {class: pseudonymize", "contact.phone: {class: local_only");
    CHECK_EQ(store_msgs(l, json_pack("[o]", message(8, "policy", env_tighter, 1)), &changed, &err),
             0);
    CHECK_EQ(changed, 0);
    CHECK(same_file(over, env_tighter));
    CHECK_STR(ledger_rows(), "auto-tightened:hq:4,auto-tightened:hq:5");
    CHECK_CONTAINS(first_text("SELECT reason FROM mailbox WHERE seq = 8", reason, sizeof reason),
                   "but not in force");
    free(env_tighter);
    free(yaml);
    free(keyaml);
    free(commented);
    free(tighter);
    free(looser);
    free(looser2);
    free(env);
    sync_ledger_close(l);
}

static void test_region_mismatch(void)
{
    fx_fresh("region");
    struct node_credentials other = fx_cred;
    snprintf(other.region, sizeof other.region, "KE");
    struct sync_ledger_options o = {.db_path = fx_db, .spool_dir = fx_spool, .cred = &other};
    struct sync_ledger *l = NULL;
    struct op_error err;
    CHECK_EQ(sync_ledger_open(&o, &l, &err), -EINVAL);
    CHECK_STR(err.field, "region");
    CHECK(l == NULL);
    struct sync_status s;
    CHECK_EQ(sync_ledger_status_db(fx_db, &s, &err), 0);
    CHECK_CONTAINS(s.blocked, "credentials are for region KE");
    /* the right credentials lift that block */
    l = fx_open_capped(0, 0);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_STR(s.blocked, "");
    sync_ledger_close(l);
}

/* Why sync waits with nothing wrong: recorded, read beside the daemon,
 * cleared; not a block. */
static void test_waiting(void)
{
    fx_fresh("waiting");
    struct sync_ledger *l = fx_open_capped(0, 0);
    struct op_error err;
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_STR(s.waiting, "");
    CHECK_EQ(sync_ledger_set_waiting(l, "outside the sync window 22:00-06:00", &err), 0);
    CHECK_EQ(sync_ledger_status_db(fx_db, &s, &err), 0);
    CHECK_STR(s.waiting, "outside the sync window 22:00-06:00");
    CHECK_STR(s.blocked, "");
    /* the same text again writes nothing and keeps it */
    CHECK_EQ(sync_ledger_set_waiting(l, "outside the sync window 22:00-06:00", &err), 0);
    CHECK_EQ(sync_ledger_set_waiting(l, "", &err), 0);
    CHECK_EQ(sync_ledger_status_db(fx_db, &s, &err), 0);
    CHECK_STR(s.waiting, "");
    sync_ledger_close(l);
}

/* Whether the ledger's connection holds no read snapshot: another
 * connection writes, and its passive checkpoint can then copy every WAL
 * frame back (a snapshot held open would pin the frames after it). */
static int nothing_held(void)
{
    free(add_contact("Probe", 0));
    int log = -1, ckpt = -2;
    int rc =
        sqlite3_wal_checkpoint_v2(store_db(fx_st), NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt);
    if (rc != SQLITE_OK || log != ckpt)
        fprintf(stderr, "  checkpoint: rc %d, %d of %d frames\n", rc, ckpt, log);
    return rc == SQLITE_OK && log == ckpt;
}

/* The ledger's statements are prepared once and kept; each is reset as
 * soon as its row is read, so between calls the ledger holds no snapshot:
 * it sees what others commit, and outpostd never stalls a checkpoint. */
static void test_no_snapshot_held(void)
{
    fx_fresh("snapshot");
    free(add_contact("Ada", 0));
    struct sync_ledger *l = fx_open_capped(0, 0);
    CHECK(nothing_held());
    struct op_error err;
    struct sync_status s;
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK(nothing_held());
    int made = 0, found = 0;
    struct sync_segment sg, next;
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 1);
    CHECK(nothing_held());
    CHECK_EQ(sync_ledger_next_upload(l, &found, &next, &err), 0);
    CHECK_EQ(found, 1);
    CHECK(nothing_held());
    uint64_t after = 0;
    CHECK_EQ(sync_ledger_mailbox_after(l, &after, &err), 0);
    CHECK(nothing_held());
    int outcome = 0;
    CHECK_EQ(apply(l, &sg, "applied", 1, &outcome, &err), 0);
    CHECK(nothing_held());
    char url[256];
    uint64_t no = 0;
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK(nothing_held());
    /* what another connection committed is what the ledger reads next */
    CHECK_EQ(sqlite3_exec(store_db(fx_st), "UPDATE sync_state SET blocked = 'held by a test'", NULL,
                          NULL, NULL),
             SQLITE_OK);
    CHECK_EQ(sync_ledger_status(l, &s, &err), 0);
    CHECK_STR(s.blocked, "held by a test");
    CHECK_EQ(s.outbox_depth, depth());
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    CHECK_EQ(made, 0);
    CHECK(nothing_held());
    sync_ledger_close(l);
}

static int64_t sent_rows(uint64_t segment_no)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM egress_sent WHERE segment_no = %llu",
             (unsigned long long)segment_no);
    sqlite3_stmt *q;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store_db(fx_st), sql, -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

/* Ada and Bea cut into one segment whose upload URL is recorded (as before
 * a creation that carries data), then Ada restricted: the segment is
 * voided with its URL. Returns the voided segment's number; *ada the id. */
static struct sync_ledger *voided_with_url(const char *name, uint64_t *no, char **ada)
{
    fx_fresh(name);
    *ada = add_contact("Ada", 0);
    free(add_contact("Bea", 0));
    struct sync_ledger *l = fx_open_capped(0, 0);
    struct sync_segment sg = fx_segment(l);
    struct op_error err;
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq/files/named", &err), 0);
    CHECK_EQ(sent_rows(sg.no), 2);
    fx_restrict(*ada);
    int found = 0;
    char url[256];
    CHECK_EQ(sync_ledger_next_voided(l, &found, no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(*no, sg.no);
    return l;
}

/* The ops of the next segment cut, or "" when none is. */
static void next_ops(struct sync_ledger *l, char *ops, size_t cap)
{
    struct sync_segment sg;
    struct op_error err;
    int made = 0;
    ops[0] = '\0';
    CHECK_EQ(sync_ledger_make_segment(l, &made, &sg, &err), 0);
    if (made)
        segment_ops(sg.path, ops, cap, NULL, 0);
}

/* A voided segment HQ never had (its upload unknown, no receipt): its
 * records are forgotten as sent and the restricted one is not withdrawn;
 * one HQ had (the termination found it) keeps them and the withdrawal
 * follows; a segment cut before the answer keeps them too. */
static void test_voided_never_sent(void)
{
    struct op_error err;
    uint64_t no = 0;
    char *ada = NULL, ops[256];
    int64_t records = 7;
    int found = 1;
    char url[256];

    /* HQ had it (terminated, or whole): the withdrawal follows (control) */
    struct sync_ledger *l = voided_with_url("void-had", &no, &ada);
    CHECK_EQ(sync_ledger_forget_voided(l, no, &err), 0);
    CHECK_EQ(sent_rows(no), 2);
    next_ops(l, ops, sizeof ops);
    CHECK(strstr(ops, "withdraw") != NULL);
    CHECK(strstr(ops, "upsert") != NULL);
    free(ada);
    sync_ledger_close(l);

    /* HQ never had it: no withdrawal names Ada, Bea goes again */
    l = voided_with_url("void-never", &no, &ada);
    CHECK_EQ(sync_ledger_forget_unsent_voided(l, no, &records, &err), 0);
    CHECK_EQ(records, 2);
    CHECK_EQ(sent_rows(no), 0);
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 0);
    /* again (a kill -9 before the answer was acted on): harmless */
    char *before = fx_snapshot();
    CHECK_EQ(sync_ledger_forget_unsent_voided(l, no, &records, &err), 0);
    CHECK_EQ(records, 0);
    fx_check_unchanged(before);
    next_ops(l, ops, sizeof ops);
    CHECK_STR(ops, "upsert");
    free(ada);
    sync_ledger_close(l);

    /* a segment was cut meanwhile (it withdraws Ada): the rows stay */
    l = voided_with_url("void-cut", &no, &ada);
    next_ops(l, ops, sizeof ops);
    CHECK(strstr(ops, "withdraw") != NULL);
    CHECK_EQ(sync_ledger_forget_unsent_voided(l, no, &records, &err), 0);
    CHECK_EQ(records, 0);
    CHECK_EQ(sent_rows(no), 2);
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 0);
    free(ada);
    sync_ledger_close(l);
}

/* Every record's JSON in a segment, one after another. */
static void segment_text(const char *path, char *out, size_t cap)
{
    struct segment *sg = NULL;
    struct op_error err;
    out[0] = '\0';
    if (segment_open(path, fx_cred.hq_key, NULL, &sg, &err) < 0)
        fx_die("segment_open", &err);
    const char *entity, *op, *json;
    size_t len, n = 0;
    int rc;
    while ((rc = segment_next_record(sg, &entity, &op, &json, &len, &err)) == 1 && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%.*s\n", (int)len, json);
    CHECK_EQ(rc, 0);
    segment_close(sg);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) < 0 ? -1 : sb.st_size;
}

/* A policy reloaded while a segment uploads that makes contact.region
 * local_only: before the reload returns, the segment's file is emptied
 * and it is listed as voided with its upload URL (so the uploader stops
 * and terminates it), and the records are cut again without the field.
 * The same policy reloaded again voids nothing. */
static void test_reload_tighter_voids(void)
{
    fx_fresh("tighten");
    free(fx_create(fx_st, &entity_contact,
                   json_pack("{ssss}", "given_name", "Ada", "region", "CANARY-reg-4411")));
    free(fx_create(fx_st, &entity_contact,
                   json_pack("{ssss}", "given_name", "Bea", "region", "CANARY-reg-5522")));
    struct sync_ledger *l = fx_open_capped(0, 0);
    struct op_error err;
    struct sync_segment sg = fx_segment(l);
    static char text[16384];
    segment_text(sg.path, text, sizeof text);
    CHECK_CONTAINS(text, "CANARY-reg-4411"); /* so the checks below can fail */
    CHECK_EQ(sync_ledger_set_upload_url(l, sg.no, "http://hq/files/tight", &err), 0);
    CHECK(file_size(sg.path) > 0);

    size_t len = 0;
    char *yaml = fx_read_file(getenv("OUTPOST_POLICY"), &len);
    char *at = yaml ? strstr(yaml, "contact.region: {class: exportable") : NULL;
    CHECK(at != NULL);
    if (!at) {
        free(yaml);
        sync_ledger_close(l);
        return;
    }
    char dir[400], p2[440];
    snprintf(dir, sizeof dir, "%s/tight", fx_dir);
    mkdir(dir, 0700);
    snprintf(p2, sizeof p2, "%s/EU-DE.yaml", dir);
    FILE *f = fopen(p2, "w");
    CHECK(f != NULL);
    fprintf(f, "%.*scontact.region: {class: local_only%s", (int)(at - yaml), yaml,
            at + strlen("contact.region: {class: exportable"));
    fclose(f);
    free(yaml);
    char *old = strdup(getenv("OUTPOST_POLICY"));
    setenv("OUTPOST_POLICY", p2, 1);

    struct sync_ledger_news news;
    sync_ledger_take_news(l, &news);
    if (sync_ledger_reload_policy(l, &err) != 0)
        fprintf(stderr, "reload: %s\n", err.msg);
    /* in the same call: emptied (or gone), voided with its URL */
    CHECK(file_size(sg.path) <= 0);
    int found = 0;
    uint64_t no = 0;
    char url[256] = "";
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 1);
    CHECK_EQ(no, sg.no);
    CHECK_STR(url, "http://hq/files/tight");
    char rows[2048] = "";
    fx_dump("SELECT no, reason FROM spool_voided", rows, sizeof rows);
    CHECK_CONTAINS(rows, "the policy in force changed to");
    rows[0] = '\0';
    fx_dump("SELECT count(*) FROM sync_segments WHERE state = 0", rows, sizeof rows);
    CHECK_CONTAINS(rows, "\n0|\n");
    sync_ledger_take_news(l, &news);
    CHECK(news.policy_now[0] != '\0');

    /* cut again under the new policy: both contacts, no region */
    struct sync_segment s2 = fx_segment(l);
    CHECK(s2.no > sg.no);
    segment_text(s2.path, text, sizeof text);
    CHECK_CONTAINS(text, "\"given_name\"");
    CHECK(strstr(text, "CANARY-reg-") == NULL);
    CHECK(strstr(text, "\"region\"") == NULL);

    /* the same policy again: the spool is kept */
    off_t size = file_size(s2.path);
    CHECK(size > 0);
    CHECK_EQ(sync_ledger_reload_policy(l, &err), 0);
    CHECK_EQ(file_size(s2.path), size);
    CHECK_EQ(sync_ledger_next_voided(l, &found, &no, url, sizeof url, &err), 0);
    CHECK_EQ(found, 1); /* still only the first, until the uploader forgets it */
    CHECK_EQ(no, sg.no);

    setenv("OUTPOST_POLICY", old, 1);
    free(old);
    sync_ledger_close(l);
}

int main(void)
{
    fx_setup();

    test_ack_and_replay();
    test_bad_receipts();
    test_receipts_out_of_order();
    test_rejected_blocks();
    test_reconcile();
    test_spool_cap();
    test_erase_first_and_withdraw();
    test_many_small_segments();
    test_mailbox();
    test_region_mismatch();
    test_waiting();
    test_no_snapshot_held();
    test_voided_never_sent();
    test_reload_tighter_voids();

    return fx_teardown();
}
