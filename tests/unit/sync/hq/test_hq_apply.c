/*
 * Tests for sync/hq/hq_apply.c: segments built as a node builds them
 * (egress_project / egress_tombstone and the segment writer) applied to a
 * temporary HQ store. Applied and replayed segments, records set aside,
 * rejected receipts (policy hash mismatch; a record egress_verify refuses,
 * with nothing of the segment applied), segments cut under a policy HQ
 * posted to that node (checked under it) and refusals without a receipt
 * (wrong key, wrong node, wrong segment number, revoked node). HQ
 * forgetting: canaries in exportable fields are in the store's files
 * after their segment applied and gone from the database and its log once
 * a segment erasing, purging or withdrawing them has (also when a reader
 * held the log at the commit, after `forget`), and from the database and
 * its log once a record was re-projected without a field under a tighter
 * policy. When OUTPOST_TEST_PG
 * names a database (tests/support/pg_cluster.sh, test hq_apply_pg) the
 * same tests run on the PostgreSQL backend, the canaries looked for in
 * the raw pages of the records table and its TOAST table (pageinspect),
 * and the reader is a session holding a snapshot. Two receivers
 * completing one segment: the one whose receipt write loses the race on
 * the receipt key answers the winner's receipt as a replay.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "egress.h"
#include "entity.h"
#include "hq_apply.h"
#include "hq_store.h"
#include "policy.h"
#include "projection_hash.h"
#include "segment.h"
#include "fixture.h"
#include "testlib.h"

static char dbpath[512];
static const char *pg; /* the PostgreSQL database under test, or NULL */
static struct hq_store st;
static struct hq_policies *pc;
static struct policy *ke;
static const unsigned char key1[32] = {0x11, 0x22}, tok1[32] = {1}, tok2[32] = {2};
static const unsigned char pkey[32] = {0x5a};

/* Builds segment `no` for node `node` signed with `key` from JSON lines
 * {"entity","op","record"} under policy p (whose hash goes into the
 * header). Writes the path to out. */
static int build(const char *node, const unsigned char key[32], const struct policy *p, uint64_t no,
                 const char *const *lines, char *out, size_t cap)
{
    struct segment_info hdr = {0};
    snprintf(hdr.node_id, sizeof hdr.node_id, "%s", node);
    hdr.from_urgent = 0;
    hdr.from_ordinary = no * 10;
    hdr.schema_version = 7;
    memcpy(hdr.policy_hash, p->hash, sizeof hdr.policy_hash);
    struct segment_writer *w = NULL;
    struct op_error err;
    char sub[512];
    snprintf(sub, sizeof sub, "%s/spool-%s", fx_dir, node);
    (void)mkdir(sub, 0700);
    if (segment_writer_new(&hdr, key, sub, no, &w, &err) < 0) {
        fprintf(stderr, "writer: %s\n", err.msg);
        return -1;
    }
    struct egress_counts counts = {0};
    uint64_t n = 0;
    for (size_t i = 0; lines[i]; i++) {
        json_t *j = json_loads(lines[i], 0, NULL);
        const char *ename = json_string_value(json_object_get(j, "entity"));
        const char *opname = json_string_value(json_object_get(j, "op"));
        json_t *rec = json_object_get(j, "record");
        enum egress_op op;
        CHECK_EQ(egress_op_parse(opname, &op), 0);
        struct egress_record *r = NULL;
        int rc;
        if (op == EGRESS_OP_PATCH) {
            /* as the node cuts it: the new projection against the field
             * digests of the projection of "base_record" */
            struct egress_record *whole = NULL, *old = NULL;
            rc = egress_project(p, pkey, entity_by_name(ename), rec, &whole, &counts, &err);
            if (rc == 0)
                rc = egress_project(p, pkey, entity_by_name(ename),
                                    json_object_get(j, "base_record"), &old, NULL, &err);
            json_t *oj = rc == 0 ? json_loads(egress_record_json(old), 0, NULL) : NULL;
            json_t *digests = projection_field_digests(oj);
            if (rc == 0)
                rc = egress_patch(whole, json_integer_value(json_object_get(oj, "version")),
                                  digests, &r, &err);
            json_decref(oj);
            json_decref(digests);
            egress_record_free(whole);
            egress_record_free(old);
        } else if (op <= EGRESS_OP_DELETE)
            rc = egress_project(p, pkey, entity_by_name(ename), rec, &r, &counts, &err);
        else
            rc = egress_tombstone(
                p, entity_by_name(ename), json_string_value(json_object_get(rec, "id")),
                json_integer_value(json_object_get(rec, "version")), op, &r, &err);
        json_decref(j);
        CHECK_EQ(rc, 0);
        if (rc < 0 || !r)
            continue;
        CHECK_EQ(segment_writer_add(w, r, &err), 0);
        egress_record_free(r);
        n++;
    }
    if (segment_writer_finish(w, 1, no * 10 + n, &counts, out, cap, NULL, &err) < 0) {
        fprintf(stderr, "finish: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int run_apply(const char *principal, const char *meta_node, const char *meta_seg,
                     const char *path, struct hq_apply_result *res)
{
    struct hq_upload u = {principal, meta_node, meta_seg, path};
    struct op_error err;
    op_error_clear(&err);
    int rc = hq_apply_upload(&st, pc, &u, 1700000000000, res, &err);
    if (rc < 0)
        fprintf(stderr, "apply: %s\n", err.msg);
    return rc;
}

/* Builds segment no of node (lines, under key and p) and hands it to
 * hq_apply as node's upload with that number; both steps checked. */
static void build_and_apply(const char *node, const unsigned char key[32], const struct policy *p,
                            uint64_t no, const char *const *lines, struct hq_apply_result *res)
{
    char path[1024], seg[24];
    CHECK_EQ(build(node, key, p, no, lines, path, sizeof path), 0);
    snprintf(seg, sizeof seg, "%" PRIu64, no);
    CHECK_EQ(run_apply(node, node, seg, path, res), 0);
}

/* Builds and applies segment `no` of node n1 (key1) under p, checks that
 * it was applied with every line counted as a record, and returns how
 * many of them took effect. */
static uint64_t applied(const struct policy *p, uint64_t no, const char *const *lines)
{
    struct hq_apply_result res;
    uint64_t n = 0;
    while (lines[n])
        n++;
    build_and_apply("n1", key1, p, no, lines, &res);
    CHECK_EQ(res.outcome, HQ_APPLY_APPLIED);
    CHECK_EQ(res.receipt.records, n);
    return res.receipt.applied;
}

static int add_count(void *ctx, const char *entity, uint64_t n)
{
    (void)entity;
    *(uint64_t *)ctx += n;
    return 0;
}

static uint64_t records(void)
{
    uint64_t n = 0;
    CHECK_EQ(st.ops->records_count(st.impl, NULL, NULL, add_count, &n, NULL), 0);
    return n;
}

static const char *const seg1[] = {
    "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c1\",\"version\":1,"
    "\"given_name\":\"Wanjiru\",\"email\":\"w@example.org\",\"street\":\"Moi Ave 1\","
    "\"country\":\"KE\"}}",
    "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c2\",\"version\":3,"
    "\"given_name\":\"Otieno\",\"country\":\"KE\"}}",
    "{\"entity\":\"organization\",\"op\":\"upsert\",\"record\":{\"id\":\"o1\",\"version\":1,"
    "\"name\":\"Acme Ltd\",\"country\":\"KE\"}}",
    /* no version: HQ cannot order it, so it is set aside */
    "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c3\","
    "\"given_name\":\"Akinyi\"}}",
    NULL,
};

static void test_applied_and_replay(void)
{
    char path[1024];
    CHECK_EQ(build("n1", key1, ke, 1, seg1, path, sizeof path), 0);
    struct hq_apply_result res;
    CHECK_EQ(run_apply("n1", "n1", "1", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_APPLIED);
    CHECK_EQ(res.receipt.status, HQ_RECEIPT_APPLIED);
    CHECK_EQ(res.receipt.records, 4);
    CHECK_EQ(res.receipt.applied, 3);
    CHECK_EQ(res.receipt.set_aside, 1);
    CHECK_EQ(res.receipt.to_urgent, 1);
    CHECK_EQ(res.receipt.to_ordinary, 14);
    CHECK_EQ(records(), 3);

    /* what HQ holds is the projection: pseudonyms, no street */
    struct hq_node n;
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, NULL), 0);
    CHECK_EQ(n.set_aside, 1);
    CHECK_EQ(n.segments_applied, 1);

    /* the same bytes again: a replay, the receipt as it was */
    CHECK_EQ(run_apply("n1", "n1", "1", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REPLAY);
    CHECK_EQ(res.receipt.applied, 3);
    CHECK_EQ(res.receipt.set_aside, 1);
    CHECK_EQ(records(), 3);
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, NULL), 0);
    CHECK_EQ(n.set_aside, 1);
}

struct find {
    const char *id;
    char json[1024];
};

static int find_rec(void *ctx, const struct hq_record_row *r)
{
    struct find *f = ctx;
    if (!strcmp(r->id, f->id))
        snprintf(f->json, sizeof f->json, "%s", r->json);
    return 0;
}

static void test_projection_kept(void)
{
    struct find f = {.id = "c1"};
    CHECK_EQ(st.ops->records_list(st.impl, "n1", "contact", find_rec, &f, NULL), 0);
    CHECK_CONTAINS(f.json, "\"email\":\"h:");
    CHECK(!strstr(f.json, "street"));
    CHECK(!strstr(f.json, "w@example.org"));
}

static void test_tombstone_then_late_upsert(void)
{
    static const char *const seg2[] = {
        "{\"entity\":\"contact\",\"op\":\"erase\",\"record\":{\"id\":\"c2\",\"version\":4}}",
        NULL,
    };
    static const char *const seg3[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c2\",\"version\":3,"
        "\"given_name\":\"Otieno\"}}",
        NULL,
    };
    CHECK_EQ(applied(ke, 2, seg2), 1);
    CHECK_EQ(records(), 2);
    CHECK_EQ(applied(ke, 3, seg3), 0); /* stale: the erasure stands */
    CHECK_EQ(records(), 2);
}

/* ---- patches (docs/HQ.md, "Patches") ---- */

static void stored_text(const char *node, const char *id, char *out, size_t cap)
{
    struct find f = {.id = id};
    CHECK_EQ(st.ops->records_list(st.impl, node, "contact", find_rec, &f, NULL), 0);
    snprintf(out, cap, "%s", f.json);
}

struct whole_rows {
    char text[512];
};

static int grab_whole(void *ctx, const struct hq_set_aside_row *r)
{
    struct whole_rows *w = ctx;
    size_t n = strlen(w->text);
    snprintf(w->text + n, sizeof w->text - n, "%s %s|%s;", r->entity, r->id, r->reason);
    return 0;
}

#define P10_V1                                                                                     \
    "{\"id\":\"p10\",\"version\":1,\"given_name\":\"Amani\",\"language\":\"sw\","                  \
    "\"region\":\"Nairobi\",\"country\":\"KE\",\"job_title\":\"Clerk\"}"
#define P10_V2                                                                                     \
    "{\"id\":\"p10\",\"version\":2,\"given_name\":\"Amani\",\"region\":\"Mombasa\","               \
    "\"country\":\"KE\",\"job_title\":\"Manager\"}"

/* A patch onto the stored base: only the changed field and the removed
 * one travel, and HQ stores exactly the text the whole upsert stores (on
 * node n3, whole; on n1, by patch). Replaying the segment changes
 * nothing. */
static void test_patch_onto_base(void)
{
    static const char *const whole1[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":" P10_V1 "}", NULL};
    static const char *const whole2[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":" P10_V2 "}", NULL};
    static const char *const patch2[] = {
        "{\"entity\":\"contact\",\"op\":\"patch\",\"record\":" P10_V2 ",\"base_record\":" P10_V1
        "}",
        NULL};
    struct hq_apply_result res;
    build_and_apply("n1", key1, ke, 40, whole1, &res);
    CHECK_EQ(res.receipt.applied, 1);
    /* n3: the same records sent whole, to compare with */
    static const unsigned char tok3[32] = {3};
    CHECK_EQ(st.ops->node_add(st.impl, "n3", "KE", tok3, key1, 1, NULL), 0);
    build_and_apply("n3", key1, ke, 240, whole1, &res);
    build_and_apply("n3", key1, ke, 241, whole2, &res);
    CHECK_EQ(res.receipt.applied, 1);

    char path[1024];
    CHECK_EQ(build("n1", key1, ke, 41, patch2, path, sizeof path), 0);
    /* what travels: id, version, base, the changed region, language unset;
     * not the pseudonym that did not change, not the withheld job title */
    struct segment *sg = NULL;
    struct op_error err;
    CHECK_EQ(segment_open(path, key1, NULL, &sg, &err), 0);
    const char *ent, *op, *json;
    size_t len;
    CHECK_EQ(segment_next_record(sg, &ent, &op, &json, &len, &err), 1);
    CHECK_STR(op, "patch");
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)len, json);
    CHECK_STR(line, "{\"id\":\"p10\",\"version\":2,\"base\":1,\"region\":\"Mombasa\","
                    "\"unset\":[\"language\"]}");
    segment_close(sg);
    CHECK_EQ(run_apply("n1", "n1", "41", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_APPLIED);
    CHECK_EQ(res.receipt.applied, 1);
    CHECK_EQ(res.receipt.set_aside, 0);

    char by_patch[1024], by_whole[1024];
    stored_text("n1", "p10", by_patch, sizeof by_patch);
    stored_text("n3", "p10", by_whole, sizeof by_whole);
    CHECK(by_patch[0] != '\0');
    CHECK_STR(by_patch, by_whole);
    CHECK(!strstr(by_patch, "language"));
    CHECK_CONTAINS(by_patch, "Mombasa");

    /* the same segment again: a replay, the record as it was */
    CHECK_EQ(run_apply("n1", "n1", "41", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REPLAY);
    stored_text("n1", "p10", by_patch, sizeof by_patch);
    CHECK_STR(by_patch, by_whole);

    /* the receipt says patches are applied, and asks for nothing whole */
    json_t *doc = json_object();
    CHECK_EQ(hq_apply_receipt_extras(&st, &res.receipt, key1, doc, &err), 0);
    CHECK(json_is_true(json_object_get(doc, "patch")));
    CHECK(json_object_get(doc, "needs_whole") == NULL);
    /* the flag is under the extras MAC, with an empty list */
    char mac[SYNC_MAC_HEX];
    CHECK_EQ(sync_receipt_extras_mac(key1, "n1", res.receipt.segment, 1, NULL, mac), 0);
    CHECK_STR(json_string_value(json_object_get(doc, "extras_mac")), mac);
    json_decref(doc);
}

/* A patch whose base HQ does not hold (another version, no record, a
 * tombstone) changes nothing, is set aside as needing the whole record,
 * and the receipt lists it; the whole record then applies. */
static void test_patch_wrong_base(void)
{
    static const char *const patch_p11[] = {
        "{\"entity\":\"contact\",\"op\":\"patch\",\"record\":{\"id\":\"p11\",\"version\":5,"
        "\"region\":\"Kisumu\",\"country\":\"KE\"},\"base_record\":{\"id\":\"p11\",\"version\":4,"
        "\"region\":\"Nakuru\",\"country\":\"KE\"}}",
        /* p10 is at version 2 at HQ, not 1 */
        "{\"entity\":\"contact\",\"op\":\"patch\",\"record\":{\"id\":\"p10\",\"version\":3,"
        "\"region\":\"Kisumu\",\"country\":\"KE\"},\"base_record\":" P10_V1 "}",
        NULL};
    char before[1024], after[1024];
    stored_text("n1", "p10", before, sizeof before);
    struct hq_apply_result res;
    build_and_apply("n1", key1, ke, 42, patch_p11, &res);
    CHECK_EQ(res.outcome, HQ_APPLY_APPLIED);
    CHECK_EQ(res.receipt.applied, 0);
    CHECK_EQ(res.receipt.set_aside, 2);
    stored_text("n1", "p10", after, sizeof after);
    CHECK_STR(after, before);
    stored_text("n1", "p11", after, sizeof after);
    CHECK_STR(after, "");

    struct whole_rows w = {{0}};
    struct op_error err;
    CHECK_EQ(st.ops->needs_whole_list(st.impl, "n1", 42, grab_whole, &w, &err), 0);
    CHECK_STR(w.text, "contact p11|needs whole: patch onto version 4, HQ holds no record;"
                      "contact p10|needs whole: patch onto version 1, HQ holds version 2;");
    json_t *doc = json_object();
    CHECK_EQ(hq_apply_receipt_extras(&st, &res.receipt, key1, doc, &err), 0);
    char *t = json_dumps(json_object_get(doc, "needs_whole"), JSON_COMPACT);
    CHECK_STR(t, "[[\"contact\",\"p11\"],[\"contact\",\"p10\"]]");
    free(t);
    /* the list is under the extras MAC: the same list verifies, one
     * with a record added, dropped or swapped does not */
    char mac[SYNC_MAC_HEX], other[SYNC_MAC_HEX];
    CHECK_EQ(sync_receipt_extras_mac(key1, "n1", 42, 1, json_object_get(doc, "needs_whole"), mac),
             0);
    CHECK_STR(json_string_value(json_object_get(doc, "extras_mac")), mac);
    json_t *l2 = json_pack("[[ss][ss][ss]]", "contact", "p11", "contact", "p10", "contact", "x");
    CHECK_EQ(sync_receipt_extras_mac(key1, "n1", 42, 1, l2, other), 0);
    CHECK(!sync_mac_equal(mac, other));
    json_array_remove(l2, 2);
    json_array_remove(l2, 1);
    CHECK_EQ(sync_receipt_extras_mac(key1, "n1", 42, 1, l2, other), 0);
    CHECK(!sync_mac_equal(mac, other));
    json_decref(l2);
    json_decref(doc);

    /* the node sends them whole: applied */
    static const char *const whole[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"p11\",\"version\":5,"
        "\"region\":\"Kisumu\",\"country\":\"KE\"}}",
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"p10\",\"version\":3,"
        "\"region\":\"Kisumu\",\"country\":\"KE\"}}",
        NULL};
    CHECK_EQ(applied(ke, 43, whole), 2);
    stored_text("n1", "p10", after, sizeof after);
    CHECK_CONTAINS(after, "Kisumu");
    CHECK(!strstr(after, "given_name")); /* whole: what the patch would have kept is gone */

    /* a patch onto a tombstone needs the whole record too */
    static const char *const erase[] = {
        "{\"entity\":\"contact\",\"op\":\"withdraw\",\"record\":{\"id\":\"p11\",\"version\":5}}",
        NULL};
    CHECK_EQ(applied(ke, 44, erase), 1);
    static const char *const onto_tomb[] = {
        "{\"entity\":\"contact\",\"op\":\"patch\",\"record\":{\"id\":\"p11\",\"version\":6,"
        "\"region\":\"Kitui\",\"country\":\"KE\"},\"base_record\":{\"id\":\"p11\",\"version\":5,"
        "\"region\":\"Kisumu\",\"country\":\"KE\"}}",
        NULL};
    build_and_apply("n1", key1, ke, 45, onto_tomb, &res);
    CHECK_EQ(res.receipt.set_aside, 1);
    memset(&w, 0, sizeof w);
    CHECK_EQ(st.ops->needs_whole_list(st.impl, "n1", 45, grab_whole, &w, &err), 0);
    CHECK_CONTAINS(w.text, "HQ holds a withdraw at version 5");
}

/* A patch carrying a field the policy withholds is refused by name, and
 * malformed patches by the member at fault; nothing at HQ changes. */
static void test_patch_residency(void)
{
    char before[1024], after[1024];
    stored_text("n1", "p10", before, sizeof before);
    static const char *const sets_street[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"p12\",\"version\":1,"
        "\"country\":\"KE\"}}",
        NULL};
    CHECK_EQ(applied(ke, 46, sets_street), 1);
    /* egress_verify refuses the patch's own members */
    json_t *bad =
        json_loads("{\"id\":\"p12\",\"version\":2,\"base\":1,\"street\":\"Moi Ave\"}", 0, NULL);
    struct op_error err;
    CHECK_EQ(egress_verify(ke, &entity_contact, EGRESS_OP_PATCH, bad, &err), -EPERM);
    CHECK_STR(err.field, "street");
    json_decref(bad);
    /* and shapes: base above the version, unset of a field also set */
    bad = json_loads("{\"id\":\"p12\",\"version\":2,\"base\":3}", 0, NULL);
    CHECK_EQ(egress_verify(ke, &entity_contact, EGRESS_OP_PATCH, bad, &err), -EINVAL);
    CHECK_STR(err.field, "base");
    json_decref(bad);
    bad = json_loads("{\"id\":\"p12\",\"version\":2,\"base\":1,\"region\":\"X\","
                     "\"unset\":[\"region\"]}",
                     0, NULL);
    CHECK_EQ(egress_verify(ke, &entity_contact, EGRESS_OP_PATCH, bad, &err), -EINVAL);
    CHECK_STR(err.field, "region");
    json_decref(bad);
    stored_text("n1", "p10", after, sizeof after);
    CHECK_STR(after, before);

    /* HQ holds a street for p13 (kept under a looser policy before): a
     * patch that does not unset it would leave it, so the segment is
     * rejected and nothing of it applied */
    enum hq_record_result rr;
    const char *held = "{\"id\":\"p13\",\"version\":1,\"street\":\"Moi Ave 9\",\"country\":\"KE\"}";
    CHECK_EQ(st.ops->record_apply(st.impl, "n1", "contact", "p13", 1, "upsert", held, strlen(held),
                                  48, &rr, &err),
             0);
    static const char *const keeps_street[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"p14\",\"version\":1,"
        "\"country\":\"KE\"}}",
        "{\"entity\":\"contact\",\"op\":\"patch\",\"record\":{\"id\":\"p13\",\"version\":2,"
        "\"country\":\"UG\"},\"base_record\":{\"id\":\"p13\",\"version\":1,\"country\":\"KE\"}}",
        NULL};
    struct hq_apply_result res;
    build_and_apply("n1", key1, ke, 49, keeps_street, &res);
    CHECK_EQ(res.outcome, HQ_APPLY_REJECTED);
    CHECK_CONTAINS(res.reason, "street");
    stored_text("n1", "p13", after, sizeof after);
    CHECK_STR(after, held);
    stored_text("n1", "p14", after, sizeof after);
    CHECK_STR(after, "");
}

/* KE's policy file, at most max bytes of it, into buf; its length. */
static size_t ke_policy_text(char *buf, size_t max)
{
    char ppath[1024];
    struct op_error err;
    CHECK_EQ(policy_find_file("KE", ppath, sizeof ppath, &err), 0);
    FILE *f = fopen(ppath, "re");
    size_t len = f ? fread(buf, 1, max, f) : 0;
    if (f)
        fclose(f);
    return len;
}

static void test_rejected_policy_hash(void)
{
    /* the same rules, other bytes: another hash */
    static char buf[POLICY_MAX_BYTES];
    size_t len = ke_policy_text(buf, sizeof buf - 64);
    struct op_error err;
    len += (size_t)snprintf(buf + len, 64, "\n# edited\n");
    struct policy *other = NULL;
    CHECK_EQ(policy_load_buffer("KE.yaml", buf, len, &other, &err), 0);
    if (!other)
        fprintf(stderr, "%s\n", err.msg);
    if (!other)
        return;
    CHECK(strcmp(other->hash, ke->hash) != 0);
    char path[1024];
    CHECK_EQ(build("n1", key1, other, 4, seg1, path, sizeof path), 0);
    struct hq_apply_result res;
    uint64_t before = records();
    CHECK_EQ(run_apply("n1", "n1", "4", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REJECTED);
    CHECK_EQ(res.receipt.status, HQ_RECEIPT_REJECTED);
    CHECK_CONTAINS(res.reason, "policy hash");
    CHECK_CONTAINS(res.reason, ke->hash);
    CHECK_EQ(records(), before);
    struct hq_receipt r;
    CHECK_EQ(st.ops->receipt_get(st.impl, "n1", 4, &r, NULL), 0);
    CHECK_EQ(r.status, HQ_RECEIPT_REJECTED);
    policy_free(other);
}

static void test_rejected_egress_verify(void)
{
    /* KE's rules with contact.street exportable, stamped with KE's hash:
     * a node whose egress was tampered with. The first record is fine and
     * must not be applied either. */
    static char buf[POLICY_MAX_BYTES];
    size_t len = ke_policy_text(buf, sizeof buf - 1);
    struct op_error err;
    buf[len] = '\0';
    char *at = strstr(buf, "contact.street: {class: local_only");
    CHECK(at != NULL);
    if (!at)
        return;
    memcpy(strstr(at, "local_only"), "exportable", 10);
    struct policy *forged = NULL;
    CHECK_EQ(policy_load_buffer("KE.yaml", buf, len, &forged, &err), 0);
    if (!forged)
        return;
    memcpy(forged->hash, ke->hash, sizeof forged->hash);
    static const char *const lines[] = {
        "{\"entity\":\"organization\",\"op\":\"upsert\",\"record\":{\"id\":\"o9\","
        "\"version\":1,\"name\":\"Fine Ltd\"}}",
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c9\",\"version\":1,"
        "\"street\":\"Kenyatta Ave 5\"}}",
        NULL,
    };
    char path[1024];
    CHECK_EQ(build("n1", key1, forged, 5, lines, path, sizeof path), 0);
    uint64_t before = records();
    struct hq_apply_result res;
    CHECK_EQ(run_apply("n1", "n1", "5", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REJECTED);
    CHECK_CONTAINS(res.reason, "record 2");
    CHECK_CONTAINS(res.reason, "street");
    CHECK_EQ(records(), before);
    struct find fd = {.id = "o9"};
    CHECK_EQ(st.ops->records_list(st.impl, NULL, NULL, find_rec, &fd, NULL), 0);
    CHECK_STR(fd.json, "");
    policy_free(forged);
}

/* 1 if the file at path holds needle anywhere (a missing file holds
 * nothing). */
static int file_has(const char *path, const char *needle)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat sb;
    int found = 0;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
        char *buf = malloc((size_t)sb.st_size);
        size_t got = 0;
        while (buf && got < (size_t)sb.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        found = buf && memmem(buf, got, needle, strlen(needle)) != NULL;
        free(buf);
    }
    close(fd);
    return found;
}

/* 1 if a raw page of the records table or its TOAST table holds needle
 * (PostgreSQL). */
static PGconn *insp; /* the test's own connection, idle between queries */

static int pg_store_has(const char *needle)
{
    PGconn *c = insp;
    const char *v[1] = {needle};
    PGresult *r = PQexecParams(
        c,
        "SELECT count(*) FROM (SELECT 'records'::regclass AS rel UNION ALL "
        "SELECT reltoastrelid::regclass FROM pg_class WHERE oid = 'records'::regclass) t, "
        "LATERAL generate_series(0, pg_relation_size(t.rel) / 8192 - 1) b "
        ", LATERAL heap_page_items(get_raw_page(t.rel::text, b::int)) i "
        "WHERE position(convert_to($1, 'UTF8') IN i.t_data) > 0",
        1, NULL, v, NULL, NULL, 0);
    int found = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        found = strtol(PQgetvalue(r, 0, 0), NULL, 10) > 0;
    else
        fprintf(stderr, "pg_store_has: %s", PQerrorMessage(c));
    CHECK(found >= 0);
    PQclear(r);
    return found > 0;
}

/* One SQL command as the database's superuser (the test's setup). */
static void pg_exec(const char *sql)
{
    PGresult *r = PQexec(insp, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(insp));
    PQclear(r);
}

/* Closes a session and waits until its server process is gone (a
 * closing session still counts as open for a moment). */
static void pg_close_wait(PGconn *c)
{
    char q[128];
    snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", PQbackendPID(c));
    PQfinish(c);
    for (int i = 0; i < 500; i++) {
        PGresult *r = PQexec(insp, q);
        int gone =
            PQresultStatus(r) == PGRES_TUPLES_OK && strtol(PQgetvalue(r, 0, 0), NULL, 10) == 0;
        PQclear(r);
        if (gone)
            break;
        usleep(10000);
    }
}

/* 1 if HQ's database file or its log holds needle. */
static int store_has(const char *needle)
{
    if (pg)
        return pg_store_has(needle);
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    return file_has(dbpath, needle) || file_has(wal, needle);
}

static void test_erasure_forgotten(void)
{
    /* A long exportable value goes to overflow pages, which a delete puts
     * on the freelist: secure_delete must zero those too. */
    static char street[6000];
    memset(street, 'x', sizeof street - 1);
    memcpy(street + 3000, "CANARY-hq-street-8842", 21);
    static char line_org[6400];
    snprintf(line_org, sizeof line_org,
             "{\"entity\":\"organization\",\"op\":\"upsert\",\"record\":{\"id\":\"o20\","
             "\"version\":1,\"name\":\"CANARY-hq-orgname-1906\",\"street\":\"%s\"}}",
             street);
    const char *const seg_a[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c20\",\"version\":1,"
        "\"given_name\":\"Njeri\",\"region\":\"CANARY-hq-region-5521\",\"country\":\"KE\"}}",
        line_org,
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c21\",\"version\":1,"
        "\"region\":\"CANARY-hq-region-3390\"}}",
        NULL,
    };
    CHECK_EQ(applied(ke, 20, seg_a), 3);
    /* the canaries are there, so the checks below can fail */
    CHECK(store_has("CANARY-hq-region-5521"));
    CHECK(store_has("CANARY-hq-orgname-1906"));
    CHECK(store_has("CANARY-hq-street-8842"));
    CHECK(store_has("CANARY-hq-region-3390"));

    /* an erasure and a purge: gone from the database and its log */
    static const char *const seg_b[] = {
        "{\"entity\":\"contact\",\"op\":\"erase\",\"record\":{\"id\":\"c20\",\"version\":2}}",
        "{\"entity\":\"organization\",\"op\":\"purge\",\"record\":{\"id\":\"o20\","
        "\"version\":2}}",
        NULL,
    };
    CHECK_EQ(applied(ke, 21, seg_b), 2);
    CHECK(!store_has("CANARY-hq-region-5521"));
    CHECK(!store_has("CANARY-hq-orgname-1906"));
    CHECK(!store_has("CANARY-hq-street-8842"));
    CHECK(store_has("CANARY-hq-region-3390")); /* not erased: kept */
    struct stat sb;
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    if (!pg)
        CHECK(stat(wal, &sb) < 0 || sb.st_size == 0); /* truncated */

    /* a withdrawal while another process reads: the log cannot be
     * truncated at the commit (PostgreSQL: the old row version cannot be
     * vacuumed away), and is once the reader is done */
    sqlite3 *rd = NULL;
    PGconn *prd = NULL;
    if (pg) {
        prd = PQconnectdb(pg);
        PQclear(PQexec(prd, "BEGIN ISOLATION LEVEL REPEATABLE READ"));
        PGresult *x = PQexec(prd, "SELECT count(*) FROM records");
        CHECK_EQ(PQresultStatus(x), PGRES_TUPLES_OK);
        PQclear(x);
    } else {
        CHECK_EQ(sqlite3_open_v2(dbpath, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        CHECK_EQ(sqlite3_exec(rd, "BEGIN; SELECT count(*) FROM records;", NULL, NULL, NULL),
                 SQLITE_OK);
    }
    static const char *const seg_c[] = {
        "{\"entity\":\"contact\",\"op\":\"withdraw\",\"record\":{\"id\":\"c21\","
        "\"version\":2}}",
        NULL,
    };
    CHECK_EQ(applied(ke, 22, seg_c), 1);
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(st.ops->forget(st.impl, &err), -EBUSY);
    CHECK(store_has("CANARY-hq-region-3390")); /* the reader's snapshot holds it */
    if (pg) {
        pg_close_wait(prd);
    } else {
        CHECK_EQ(sqlite3_exec(rd, "COMMIT;", NULL, NULL, NULL), SQLITE_OK);
        CHECK_EQ(sqlite3_close(rd), SQLITE_OK);
    }
    CHECK_EQ(st.ops->forget(st.impl, &err), 0);
    CHECK(!store_has("CANARY-hq-region-3390"));
    CHECK_EQ(st.ops->forget(st.impl, &err), 0); /* nothing pending */
}

/* The KE profile's text with `old` replaced by `new` and a comment. */
static size_t ke_text(char *buf, size_t cap, const char *old, const char *new)
{
    char ppath[1024];
    struct op_error err;
    CHECK_EQ(policy_find_file("KE", ppath, sizeof ppath, &err), 0);
    FILE *f = fopen(ppath, "re");
    char *raw = malloc(cap);
    size_t len = f ? fread(raw, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    raw[len] = '\0';
    char *at = strstr(raw, old);
    CHECK(at != NULL);
    int n = snprintf(buf, cap, "# posted by HQ\n%.*s%s%s", at ? (int)(at - raw) : (int)len, raw,
                     at ? new : "", at ? at + strlen(old) : "");
    free(raw);
    return n > 0 ? (size_t)n : 0;
}

static int seq_of(void *ctx, const struct hq_mailbox_msg *m)
{
    *(uint64_t *)ctx = m->seq;
    return 0;
}

/* A segment cut under a policy HQ posted to that node is checked under
 * that policy and applied; the same hash from another node, or a hash HQ
 * never posted, is rejected naming it. */
static void test_posted_policy(void)
{
    static char buf[POLICY_MAX_BYTES];
    size_t len = ke_text(buf, sizeof buf, "contact.country: {class: exportable",
                         "contact.country: {class: local_only");
    struct op_error err;
    struct policy *posted = NULL;
    CHECK_EQ(policy_load_buffer("KE.yaml", buf, len, &posted, &err), 0);
    if (!posted)
        return;
    /* not posted yet: unknown */
    char path[1024];
    struct hq_apply_result res;
    build_and_apply("n1", key1, posted, 30, seg1, &res);
    CHECK_EQ(res.outcome, HQ_APPLY_REJECTED);
    CHECK_CONTAINS(res.reason, posted->hash);
    CHECK_CONTAINS(res.reason, "nor the hash of a policy HQ posted to node n1");

    uint64_t seq = 0, got = 0;
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "policy", buf, len, 1, &seq, &err), 0);
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n1", posted->hash, seq_of, &got, &err), 0);
    CHECK_EQ(got, seq);
    CHECK_EQ(st.ops->mailbox_policy_get(st.impl, "n2", posted->hash, seq_of, &got, &err), -ENOENT);
    CHECK_EQ(build("n1", key1, posted, 31, seg1, path, sizeof path), 0);
    uint64_t before = records();
    CHECK_EQ(run_apply("n1", "n1", "31", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_APPLIED);
    CHECK_EQ(res.receipt.set_aside, 1);
    CHECK(records() >= before);
    /* cached, and after a SIGHUP read again from the store */
    const struct policy *p = NULL;
    CHECK_EQ(hq_policies_for_segment(pc, &st, "n1", "KE", posted->hash, &p, &err), 0);
    CHECK(p && !strcmp(p->hash, posted->hash));
    hq_policies_clear(pc);
    p = NULL;
    CHECK_EQ(hq_policies_for_segment(pc, &st, "n1", "KE", posted->hash, &p, &err), 0);
    CHECK(p && !strcmp(p->hash, posted->hash));
    CHECK_EQ(hq_policies_for_segment(pc, &st, "n1", "KE", ke->hash, &p, &err), 0);
    CHECK(p && !strcmp(p->hash, ke->hash));
    CHECK_EQ(hq_policies_for_segment(pc, &st, "n2", "KE", posted->hash, &p, &err), 0);
    CHECK(p == NULL);

    /* another node under n1's policy: rejected */
    build_and_apply("n2", key1, posted, 32, seg1, &res);
    CHECK_EQ(res.outcome, HQ_APPLY_REJECTED);
    CHECK_CONTAINS(res.reason, "nor the hash of a policy HQ posted to node n2");

    /* the records are checked under the posted policy, not the profile:
     * a country under the posted hash is a violation */
    struct policy *forged = NULL;
    CHECK_EQ(policy_load_buffer("KE.yaml", buf, len, &forged, &err), 0);
    if (forged) {
        /* the posted policy's hash, but country leaves */
        for (size_t i = 0; i < forged->nfields; i++)
            if (forged->fields[i].entity == &entity_contact &&
                !strcmp(forged->fields[i].field, "country"))
                forged->fields[i].cls = POLICY_EXPORTABLE;
        CHECK_EQ(build("n1", key1, forged, 33, seg1, path, sizeof path), 0);
        before = records();
        CHECK_EQ(run_apply("n1", "n1", "33", path, &res), 0);
        CHECK_EQ(res.outcome, HQ_APPLY_REJECTED);
        CHECK_CONTAINS(res.reason, "country");
        CHECK_EQ(records(), before);
    }
    policy_free(forged);
    policy_free(posted);
}

static void test_refused(void)
{
    char path[1024];
    struct hq_apply_result res;
    struct hq_node n;
    uint64_t before = records();
    /* another key: the HMAC fails */
    unsigned char bad[32];
    memcpy(bad, key1, 32);
    bad[5] ^= 1;
    build_and_apply("n1", bad, ke, 6, seg1, &res);
    CHECK_EQ(res.outcome, HQ_APPLY_REFUSED);
    CHECK_CONTAINS(res.reason, "HMAC");
    CHECK_EQ(st.ops->receipt_get(st.impl, "n1", 6, &res.receipt, NULL), -ENOENT);
    /* the header names another node */
    CHECK_EQ(build("n2", key1, ke, 6, seg1, path, sizeof path), 0);
    CHECK_EQ(run_apply("n1", "n1", "6", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REFUSED);
    CHECK_CONTAINS(res.reason, "names node n2");
    /* metadata segment differs from the header */
    CHECK_EQ(build("n1", key1, ke, 7, seg1, path, sizeof path), 0);
    CHECK_EQ(run_apply("n1", "n1", "8", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REFUSED);
    /* metadata node is not the token's */
    CHECK_EQ(run_apply("n1", "n2", "7", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REFUSED);
    CHECK_CONTAINS(res.reason, "metadata names node 'n2'");
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n, NULL), 0);
    CHECK_EQ(n.segments_refused, 4);
    /* not a segment at all */
    char junk[600];
    snprintf(junk, sizeof junk, "%s/junk", fx_dir);
    FILE *f = fopen(junk, "we");
    if (f) {
        fputs("hello", f);
        fclose(f);
    }
    CHECK_EQ(run_apply("n1", "n1", "7", junk, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REFUSED);
    /* a revoked node's completed upload is not applied */
    CHECK_EQ(st.ops->node_revoke(st.impl, "n2", 1, NULL), 0);
    CHECK_EQ(run_apply("n2", "n2", "6", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REFUSED);
    CHECK_EQ(records(), before);
    /* and segment 7, genuine, still applies afterwards */
    CHECK_EQ(run_apply("n1", "n1", "7", path, &res), 0);
    CHECK_EQ(res.outcome, HQ_APPLY_APPLIED);
}

/* Debian's SQLite is built with secure_delete on by default, upstream's
 * with it off. Every connection of this test starts with it off, so the
 * canary test fails unless the store turns it on itself. */
/* ---- two receivers completing one segment ---- */

/* The store as a receiver sees it while another receiver applies the
 * same segment: its receipt_get finds nothing (the other's commit had
 * not happened yet) the first `blind` times. */
static const struct hq_store_ops *race_real;
static struct hq_store_ops race_ops;
static int blind;

static int blind_receipt_get(void *impl, const char *node, uint64_t segment, struct hq_receipt *out,
                             struct op_error *err)
{
    if (blind > 0) {
        blind--;
        return op_error_set(err, -ENOENT, "segment", "no receipt (not committed yet)");
    }
    return race_real->receipt_get(impl, node, segment, out, err);
}

/* The loser of the race on the receipt key gets the winner's receipt as
 * a replay at once, instead of an error that would leave its upload for
 * a redelivery; nothing of its transaction stays. */
static void test_receipt_race_is_replay(void)
{
    static const char *const lines[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"r1\",\"version\":2,"
        "\"given_name\":\"Chebet\",\"country\":\"KE\"}}",
        NULL,
    };
    char path[1024];
    CHECK_EQ(build("n1", key1, ke, 61, lines, path, sizeof path), 0);
    struct hq_apply_result won, res;
    CHECK_EQ(run_apply("n1", "n1", "61", path, &won), 0); /* the other receiver */
    CHECK_EQ(won.outcome, HQ_APPLY_APPLIED);
    uint64_t before = records();
    struct hq_node n0, n1;
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n0, NULL), 0);

    struct hq_store real = st;
    race_real = st.ops;
    race_ops = *st.ops;
    race_ops.receipt_get = blind_receipt_get;
    st.ops = &race_ops;
    blind = 1;
    struct hq_upload u = {"n1", "n1", "61", path};
    struct op_error err;
    op_error_clear(&err);
    int rc = hq_apply_upload(&st, pc, &u, 1700000009999, &res, &err);
    st = real;
    CHECK_EQ(blind, 0); /* the race was run */
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "apply: %s\n", err.msg);
    CHECK_EQ(res.outcome, HQ_APPLY_REPLAY);
    CHECK_EQ(res.receipt.segment, 61);
    CHECK_EQ(res.receipt.status, HQ_RECEIPT_APPLIED);
    CHECK_EQ(res.receipt.received_ms, won.receipt.received_ms); /* the winner's */
    CHECK_EQ(records(), before);
    CHECK_EQ(st.ops->node_get(st.impl, "n1", &n1, NULL), 0);
    CHECK_EQ(n1.segments_applied, n0.segments_applied);

    /* The same race on a segment that is rejected (a policy hash HQ does
     * not know): the receipt that won stands. */
    static char buf[POLICY_MAX_BYTES];
    size_t len = ke_policy_text(buf, sizeof buf - 64);
    len += (size_t)snprintf(buf + len, 64, "\n# edited again\n");
    struct policy *other = NULL;
    CHECK_EQ(policy_load_buffer("KE.yaml", buf, len, &other, &err), 0);
    if (!other)
        return;
    CHECK_EQ(build("n1", key1, other, 62, lines, path, sizeof path), 0);
    CHECK_EQ(run_apply("n1", "n1", "62", path, &won), 0);
    CHECK_EQ(won.outcome, HQ_APPLY_REJECTED);
    st.ops = &race_ops;
    blind = 1;
    u.meta_segment = "62";
    op_error_clear(&err);
    rc = hq_apply_upload(&st, pc, &u, 1700000009999, &res, &err);
    st = real;
    CHECK_EQ(blind, 0);
    CHECK_EQ(rc, 0);
    CHECK_EQ(res.outcome, HQ_APPLY_REPLAY);
    CHECK_EQ(res.receipt.status, HQ_RECEIPT_REJECTED);
    CHECK_EQ(res.receipt.received_ms, won.receipt.received_ms);
    policy_free(other);
}

static int upstream_default(sqlite3 *db, char **msg, const void *api)
{
    (void)msg;
    (void)api;
    return sqlite3_exec(db, "PRAGMA secure_delete = OFF", NULL, NULL, NULL);
}

/* A policy tightened at the node: its re-projection of a record at the
 * same version lacks the field that may no longer leave, and applying it
 * leaves the old value neither in HQ's database nor in its log (the log is
 * truncated as after an erasure). A replacement that drops nothing leaves
 * the log as it is. */
static void test_reprojection_forgotten(void)
{
    static char buf[POLICY_MAX_BYTES];
    size_t len = ke_text(buf, sizeof buf, "contact.region: {class: exportable",
                         "contact.region: {class: local_only");
    struct op_error err;
    struct policy *tight = NULL;
    CHECK_EQ(policy_load_buffer("KE.yaml", buf, len, &tight, &err), 0);
    if (!tight)
        return;
    uint64_t seq = 0;
    CHECK_EQ(st.ops->mailbox_post(st.impl, "n1", "policy", buf, len, 1, &seq, &err), 0);
    static const char *const before[] = {
        "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c70\",\"version\":3,"
        "\"given_name\":\"Wanjiru\",\"region\":\"CANARY-hq-reproj-7731\"}}",
        NULL,
    };
    CHECK_EQ(applied(ke, 70, before), 1);
    CHECK(store_has("CANARY-hq-reproj-7731")); /* so the check below can fail */
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    struct stat sb;
    /* the same record under the tighter policy: region is not sent */
    CHECK_EQ(applied(tight, 71, before), 1);
    struct find fd = {.id = "c70"};
    CHECK_EQ(st.ops->records_list(st.impl, NULL, NULL, find_rec, &fd, NULL), 0);
    CHECK_CONTAINS(fd.json, "\"given_name\"");
    CHECK(strstr(fd.json, "region") == NULL);
    if (!pg) {
        CHECK(!store_has("CANARY-hq-reproj-7731"));
        CHECK(stat(wal, &sb) < 0 || sb.st_size == 0); /* truncated */
        /* a newer version that drops nothing: the log is kept */
        static const char *const later[] = {
            "{\"entity\":\"contact\",\"op\":\"upsert\",\"record\":{\"id\":\"c70\","
            "\"version\":4,\"given_name\":\"Wanjiru N\"}}",
            NULL,
        };
        CHECK_EQ(applied(tight, 72, later), 1);
        CHECK(stat(wal, &sb) == 0 && sb.st_size > 0);
    }
    policy_free(tight);
}

int main(void)
{
    fx_tmpdir("hq-apply");
    char ppath[1024];
    fx_path(dbpath, sizeof dbpath, "hq.db");
    struct op_error err;
    if (sqlite3_auto_extension((void (*)(void))upstream_default) != SQLITE_OK)
        return 1;
    pg = getenv("OUTPOST_TEST_PG");
    if (pg && !*pg)
        pg = NULL;
    if (hq_store_open(pg ? pg : dbpath, &st, &err) < 0 || hq_policies_new(&pc) < 0 ||
        policy_find_file("KE", ppath, sizeof ppath, &err) < 0 ||
        policy_load_file(ppath, &ke, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    if (pg) {
        /* uncompressed, so a canary's bytes can be found in the pages
         * (the store compresses long records by default) */
        insp = PQconnectdb(pg);
        CHECK_EQ(PQstatus(insp), CONNECTION_OK);
        pg_exec("CREATE EXTENSION IF NOT EXISTS pageinspect");
        pg_exec("ALTER TABLE records ALTER COLUMN record SET STORAGE EXTERNAL");
    }
    CHECK_EQ(st.ops->node_add(st.impl, "n1", "KE", tok1, key1, 1, &err), 0);
    CHECK_EQ(st.ops->node_add(st.impl, "n2", "KE", tok2, key1, 1, &err), 0);
    RUN(test_applied_and_replay);
    RUN(test_projection_kept);
    RUN(test_tombstone_then_late_upsert);
    RUN(test_rejected_policy_hash);
    RUN(test_rejected_egress_verify);
    RUN(test_posted_policy);
    RUN(test_refused);
    RUN(test_erasure_forgotten);
    RUN(test_reprojection_forgotten);
    RUN(test_patch_onto_base);
    RUN(test_patch_wrong_base);
    RUN(test_patch_residency);
    RUN(test_receipt_race_is_replay);
    hq_policies_free(pc);
    policy_free(ke);
    hq_store_close(&st);
    if (insp)
        PQfinish(insp);
    return fx_finish();
}
