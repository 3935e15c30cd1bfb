/*
 * Verify and apply one completed upload; contract in hq_apply.h. The
 * order of the checks is the protocol's. Refusals (no receipt) are
 * counted on the node in their own small transaction; everything else
 * about a segment happens between one begin and one commit.
 */
#include "hq_apply.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress.h"
#include "entity.h"
#include "segment.h"

#define HQ_POLICIES_MAX 64
/* policies posted to nodes kept loaded; the oldest loaded goes first */
#define HQ_POSTED_MAX 256

struct hq_policies {
    size_t n;
    struct {
        char region[HQ_REGION_MAX];
        struct policy *p;
    } e[HQ_POLICIES_MAX];
    size_t nposted, next; /* `next`: the slot to reuse when full */
    struct {
        char node[HQ_NODE_MAX];
        struct policy *p;
    } posted[HQ_POSTED_MAX];
};

int hq_policies_new(struct hq_policies **out)
{
    struct hq_policies *pc = calloc(1, sizeof *pc);
    if (!pc)
        return -ENOMEM;
    *out = pc;
    return 0;
}

void hq_policies_clear(struct hq_policies *pc)
{
    if (!pc)
        return;
    for (size_t i = 0; i < pc->n; i++)
        policy_free(pc->e[i].p);
    pc->n = 0;
    for (size_t i = 0; i < pc->nposted; i++)
        policy_free(pc->posted[i].p);
    pc->nposted = 0;
    pc->next = 0;
}

void hq_policies_free(struct hq_policies *pc)
{
    hq_policies_clear(pc);
    free(pc);
}

int hq_policies_get(struct hq_policies *pc, const char *region, const struct policy **out,
                    struct op_error *err)
{
    for (size_t i = 0; i < pc->n; i++)
        if (!strcmp(pc->e[i].region, region)) {
            *out = pc->e[i].p;
            return 0;
        }
    if (pc->n == HQ_POLICIES_MAX)
        return op_error_set(err, -E2BIG, "region", "more than %d regions in use", HQ_POLICIES_MAX);
    if (strlen(region) >= HQ_REGION_MAX)
        return op_error_set(err, -EINVAL, "region", "region code '%s' is too long", region);
    char path[1024];
    int rc = policy_find_file(region, path, sizeof path, err);
    if (rc < 0)
        return rc;
    struct policy *p = NULL;
    rc = policy_load_file(path, &p, err);
    if (rc < 0)
        return rc;
    if (strcmp(p->region, region)) {
        rc = op_error_set(err, -EINVAL, "region", "%s is the profile of region %s, not %s", path,
                          p->region, region);
        policy_free(p);
        return rc;
    }
    snprintf(pc->e[pc->n].region, sizeof pc->e[pc->n].region, "%s", region);
    pc->e[pc->n].p = p;
    pc->n++;
    *out = p;
    return 0;
}

struct posted_load {
    const char *node, *region, *hash;
    struct policy *p;
    struct op_error *err;
};

static int load_posted(void *ctx, const struct hq_mailbox_msg *m)
{
    struct posted_load *pl = ctx;
    char name[HQ_NODE_MAX + 64];
    snprintf(name, sizeof name, "policy message %" PRIu64 " posted to %s", m->seq, pl->node);
    struct op_error e2;
    op_error_clear(&e2);
    int rc = policy_load_buffer_for(name, pl->region, m->body, m->body_len, &pl->p, &e2);
    if (rc < 0)
        return op_error_set(pl->err, rc, "policy_hash", "%s no longer loads: %s", name, e2.msg);
    if (strcmp(pl->p->hash, pl->hash)) {
        policy_free(pl->p);
        pl->p = NULL;
        return op_error_set(pl->err, -EIO, "policy_hash", "%s: stored hash %.64s is wrong", name,
                            pl->hash);
    }
    return 0;
}

int hq_policies_for_segment(struct hq_policies *pc, struct hq_store *st, const char *node,
                            const char *region, const char *hash, const struct policy **out,
                            struct op_error *err)
{
    const struct policy *prof = NULL;
    struct op_error perr;
    op_error_clear(&perr);
    int prc = hq_policies_get(pc, region, &prof, &perr);
    if (prc == 0 && !strcmp(prof->hash, hash)) {
        *out = prof;
        return 0;
    }
    for (size_t i = 0; i < pc->nposted; i++)
        if (!strcmp(pc->posted[i].node, node) && !strcmp(pc->posted[i].p->hash, hash)) {
            *out = pc->posted[i].p;
            return 0;
        }
    if (strlen(node) >= HQ_NODE_MAX)
        return op_error_set(err, -EINVAL, "node", "node name too long");
    struct posted_load pl = {node, region, hash, NULL, err};
    int rc = st->ops->mailbox_policy_get(st->impl, node, hash, load_posted, &pl, err);
    if (rc == -ENOENT) {
        if (prc < 0) {
            /* the profile is needed and missing: keep the upload, retry */
            if (err)
                *err = perr;
            return prc;
        }
        *out = NULL;
        return 0;
    }
    if (rc < 0)
        return rc;
    size_t slot;
    if (pc->nposted < HQ_POSTED_MAX) {
        slot = pc->nposted++;
    } else {
        slot = pc->next;
        pc->next = (pc->next + 1) % HQ_POSTED_MAX;
        policy_free(pc->posted[slot].p);
    }
    snprintf(pc->posted[slot].node, sizeof pc->posted[slot].node, "%s", node);
    pc->posted[slot].p = pl.p;
    *out = pl.p;
    return 0;
}

/* Counts a refusal on the node (if it exists) and fills out. */
static int refuse(struct hq_store *st, const char *node, int64_t now_ms,
                  struct hq_apply_result *out, struct op_error *err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int refuse(struct hq_store *st, const char *node, int64_t now_ms,
                  struct hq_apply_result *out, struct op_error *err, const char *fmt, ...)
{
    char why[HQ_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    struct op_error e2;
    op_error_clear(&e2);
    int rc = st->ops->node_refused(st->impl, node, why, now_ms, &e2);
    if (rc < 0 && rc != -ENOENT) {
        if (err)
            *err = e2;
        return rc; /* the count could not be kept: try again later */
    }
    memset(out, 0, sizeof *out);
    out->outcome = HQ_APPLY_REFUSED;
    snprintf(out->reason, sizeof out->reason, "%s", why);
    return 0;
}

static int parse_segment_no(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 16)
        return -EINVAL;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > SEGMENT_NO_MAX)
        return -EINVAL;
    *out = v;
    return 0;
}

/* receipt_put found a receipt for the segment that was not there when
 * the apply looked: another receiver applied the same segment meanwhile
 * and its commit came first. Its receipt is the answer, as for any
 * replay; called after the rollback of the losing transaction. Returns 0
 * with a replay in *out, or rc (the receipt cannot be read now). */
static int lost_race(struct hq_store *st, const char *node, uint64_t segno, int rc,
                     struct hq_apply_result *out, struct op_error *err)
{
    struct hq_receipt won;
    struct op_error e2;
    op_error_clear(&e2);
    if (st->ops->receipt_get(st->impl, node, segno, &won, &e2) < 0)
        return rc;
    memset(out, 0, sizeof *out);
    out->outcome = HQ_APPLY_REPLAY;
    out->receipt = won;
    if (err)
        op_error_clear(err);
    return 0;
}

/* Writes a rejected receipt in its own transaction. */
static int reject(struct hq_store *st, const struct segment_info *info, int64_t now_ms,
                  const char *reason, struct hq_apply_result *out, struct op_error *err)
{
    struct hq_receipt r = {0};
    snprintf(r.node, sizeof r.node, "%s", info->node_id);
    r.segment = info->segment_no;
    r.status = HQ_RECEIPT_REJECTED;
    r.to_urgent = info->to_urgent;
    r.to_ordinary = info->to_ordinary;
    r.records = info->records;
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    r.received_ms = now_ms;
    r.segment_created_ms = info->created_ms;
    int rc = st->ops->begin(st->impl, err);
    if (rc < 0)
        return rc;
    int put = 0;
    if ((rc = put = st->ops->receipt_put(st->impl, &r, err)) < 0 ||
        (rc = st->ops->commit(st->impl, err)) < 0) {
        st->ops->rollback(st->impl);
        return put == -EEXIST ? lost_race(st, r.node, r.segment, rc, out, err) : rc;
    }
    memset(out, 0, sizeof *out);
    out->outcome = HQ_APPLY_REJECTED;
    out->receipt = r;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    return 0;
}

/* What one record did to the apply. */
enum line_result { LINE_APPLIED, LINE_STALE, LINE_SET_ASIDE, LINE_REJECT };

/* A patch (docs/HQ.md, "Patches"), verified: applied onto the stored
 * record only if that is live at exactly the patch's base version, and
 * then only if the merged record passes egress_verify as an upsert (a
 * field the node did not unset that may no longer leave rejects the
 * segment). The merged text is what the whole upsert would have carried.
 * A record HQ holds at a newer version makes it stale; any other base
 * sets it aside as needing the whole record, which the receipt lists. */
static int apply_patch(struct hq_store *st, const struct policy *p, const struct segment_info *info,
                       uint64_t line, const struct entity_def *e, const char *id, json_t *rec,
                       char *why, size_t cap, struct op_error *err)
{
    int64_t version = (int64_t)json_integer_value(json_object_get(rec, "version"));
    int64_t base = (int64_t)json_integer_value(json_object_get(rec, "base"));
    int64_t stored = 0;
    char op[HQ_OP_MAX], reason[HQ_REASON_MAX];
    char *json = NULL;
    struct op_error e2;
    op_error_clear(&e2);
    int rc = st->ops->record_get(st->impl, info->node_id, e->name, id, &stored, op, &json, &e2);
    if (rc < 0 && rc != -ENOENT) {
        if (err)
            *err = e2;
        return rc;
    }
    if (rc == 0 && stored > version) {
        free(json);
        return LINE_STALE;
    }
    if (rc == -ENOENT)
        snprintf(reason, sizeof reason, "needs whole: patch onto version %lld, HQ holds no record",
                 (long long)base);
    else if (strcmp(op, "upsert") || !json)
        snprintf(reason, sizeof reason,
                 "needs whole: patch onto version %lld, HQ holds a %s at version %lld",
                 (long long)base, op, (long long)stored);
    else if (stored != base)
        snprintf(reason, sizeof reason,
                 "needs whole: patch onto version %lld, HQ holds version %lld", (long long)base,
                 (long long)stored);
    else
        reason[0] = '\0';
    if (reason[0]) {
        free(json);
        rc = st->ops->needs_whole_add(st->impl, info->node_id, info->segment_no, line, e->name, id,
                                      reason, err);
        return rc < 0 ? rc : LINE_SET_ASIDE;
    }
    json_t *held = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    free(json);
    char *merged = NULL;
    rc = egress_patch_merge(e, held, rec, &merged, err);
    json_decref(held);
    if (rc < 0)
        return rc;
    json_t *m = json_loads(merged, 0, NULL);
    struct op_error verr;
    op_error_clear(&verr);
    rc = m ? egress_verify(p, e, EGRESS_OP_UPSERT, m, &verr) : -ENOMEM;
    json_decref(m);
    if (rc == -EPERM || rc == -EINVAL) {
        snprintf(why, cap, "record %" PRIu64 " (%.32s %.64s patch): %.380s", line, e->name, id,
                 verr.msg);
        free(merged);
        return LINE_REJECT;
    }
    if (rc < 0) {
        free(merged);
        return op_error_set(err, rc, NULL, "out of memory");
    }
    enum hq_record_result rr;
    rc = st->ops->record_apply(st->impl, info->node_id, e->name, id, version, "upsert", merged,
                               strlen(merged), info->segment_no, &rr, err);
    free(merged);
    if (rc < 0)
        return rc;
    return rr == HQ_RECORD_CHANGED ? LINE_APPLIED : LINE_STALE;
}

/* Verifies and applies payload line `line`. LINE_REJECT fills why. A
 * negative return is a store failure. */
static int apply_line(struct hq_store *st, const struct policy *p, const struct segment_info *info,
                      uint64_t line, const char *entity, const char *opname, const char *json,
                      size_t len, char *why, size_t cap, struct op_error *err)
{
    char reason[HQ_REASON_MAX];
    const char *id = "";
    json_error_t jerr;
    json_t *rec = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    const struct entity_def *e = entity_by_name(entity);
    enum egress_op op;
    int result = LINE_SET_ASIDE;
    if (!rec) {
        snprintf(reason, sizeof reason, "record is not JSON: %s", jerr.text);
        goto set_aside;
    }
    if (json_is_object(rec) && json_is_string(json_object_get(rec, "id")))
        id = json_string_value(json_object_get(rec, "id"));
    if (!strcmp(opname, "aggregate") && !strcmp(entity, "aggregate")) {
        /* An aggregate answer (docs/AGGREGATES.md): checked against the
         * node's policy like any record, and kept as the node's latest
         * answer for that aggregate (the segment number orders them). */
        struct op_error verr;
        op_error_clear(&verr);
        int rc = egress_verify_aggregate(p, rec, &verr);
        const char *name = json_string_value(json_object_get(rec, "aggregate"));
        if (rc == -EPERM) {
            snprintf(why, cap, "record %" PRIu64 " (aggregate %.64s): %.380s", line,
                     name ? name : "?", verr.msg);
            json_decref(rec);
            return LINE_REJECT;
        }
        if (rc < 0) {
            snprintf(reason, sizeof reason, "%s", verr.msg);
            id = name ? name : "";
            goto set_aside;
        }
        enum hq_record_result rr;
        rc = st->ops->record_apply(st->impl, info->node_id, "aggregate", name,
                                   (int64_t)info->segment_no, "upsert", json, len, info->segment_no,
                                   &rr, err);
        json_decref(rec);
        if (rc < 0)
            return rc;
        return rr == HQ_RECORD_CHANGED ? LINE_APPLIED : LINE_STALE;
    }
    if (!e || strcmp(e->name, entity) != 0) {
        snprintf(reason, sizeof reason, "unknown entity \"%s\"", entity);
        goto set_aside;
    }
    if (egress_op_parse(opname, &op) < 0) {
        snprintf(reason, sizeof reason, "unknown op \"%s\"", opname);
        goto set_aside;
    }
    struct op_error verr;
    op_error_clear(&verr);
    int rc = egress_verify(p, e, op, rec, &verr);
    if (rc == -EPERM) {
        snprintf(why, cap, "record %" PRIu64 " (%.32s %.64s): %.380s", line, entity, id, verr.msg);
        json_decref(rec);
        return LINE_REJECT;
    }
    if (rc < 0) {
        snprintf(reason, sizeof reason, "%s", verr.msg);
        goto set_aside;
    }
    json_t *ver = json_object_get(rec, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 0) {
        snprintf(reason, sizeof reason, "%s %s: no integer version of at least 0", entity, id);
        goto set_aside;
    }
    if (op == EGRESS_OP_PATCH) {
        rc = apply_patch(st, p, info, line, e, id, rec, why, cap, err);
        json_decref(rec);
        return rc;
    }
    enum hq_record_result rr;
    rc = st->ops->record_apply(st->impl, info->node_id, entity, id, json_integer_value(ver), opname,
                               json, len, info->segment_no, &rr, err);
    json_decref(rec);
    if (rc < 0)
        return rc;
    return rr == HQ_RECORD_CHANGED ? LINE_APPLIED : LINE_STALE;

set_aside:
    rc = st->ops->set_aside_add(st->impl, info->node_id, info->segment_no, line, entity, id, reason,
                                err);
    json_decref(rec);
    return rc < 0 ? rc : result;
}

int hq_apply_upload(struct hq_store *st, struct hq_policies *pc, const struct hq_upload *u,
                    int64_t now_ms, struct hq_apply_result *out, struct op_error *err)
{
    struct hq_node node;
    struct op_error e2;
    op_error_clear(&e2);
    int rc = st->ops->node_get(st->impl, u->principal, &node, &e2);
    if (rc == -ENOENT)
        return refuse(st, u->principal, now_ms, out, err, "the token's node %s is unknown",
                      u->principal);
    if (rc < 0) {
        if (err)
            *err = e2;
        return rc;
    }
    if (node.revoked)
        return refuse(st, node.name, now_ms, out, err, "node %s is revoked", node.name);
    if (!u->meta_node || strcmp(u->meta_node, node.name) != 0)
        return refuse(st, node.name, now_ms, out, err,
                      "upload metadata names node '%s', the token is node %s's",
                      u->meta_node ? u->meta_node : "(none)", node.name);
    uint64_t segno;
    if (parse_segment_no(u->meta_segment, &segno) < 0)
        return refuse(st, node.name, now_ms, out, err,
                      "upload metadata segment '%s' is not a segment number",
                      u->meta_segment ? u->meta_segment : "(none)");

    struct segment *seg = NULL;
    op_error_clear(&e2);
    rc = segment_open(u->path, node.hq_key, NULL, &seg, &e2);
    if (rc == -EBADMSG || rc == -EFBIG || rc == -EPROTONOSUPPORT || rc == -EINVAL)
        return refuse(st, node.name, now_ms, out, err, "not a valid segment of node %s: %s",
                      node.name, e2.msg);
    if (rc < 0) {
        if (err)
            *err = e2;
        return rc;
    }
    const struct segment_info *info = segment_get_info(seg);
    if (strcmp(info->node_id, node.name) != 0 || info->segment_no != segno) {
        rc = refuse(st, node.name, now_ms, out, err,
                    "segment header names node %s segment %" PRIu64
                    ", the upload node %s segment %" PRIu64,
                    info->node_id, info->segment_no, node.name, segno);
        segment_close(seg);
        return rc;
    }

    /* Replay: the first receipt stands. */
    struct hq_receipt old;
    op_error_clear(&e2);
    rc = st->ops->receipt_get(st->impl, node.name, segno, &old, &e2);
    if (rc == 0) {
        segment_close(seg);
        memset(out, 0, sizeof *out);
        out->outcome = HQ_APPLY_REPLAY;
        out->receipt = old;
        return 0;
    }
    if (rc != -ENOENT) {
        segment_close(seg);
        if (err)
            *err = e2;
        return rc;
    }

    /* The segment was cut under the region's profile or under a policy
     * HQ posted to this node (which the node took up by itself or a
     * person there accepted); its records are checked under that one. */
    const struct policy *p = NULL;
    rc = hq_policies_for_segment(pc, st, node.name, node.region, info->policy_hash, &p, err);
    if (rc < 0) {
        segment_close(seg);
        return rc;
    }
    char why[HQ_REASON_MAX];
    if (!p) {
        const struct policy *prof = NULL;
        (void)hq_policies_get(pc, node.region, &prof, NULL);
        snprintf(why, sizeof why,
                 "policy hash %.64s of the segment is neither %.64s, the hash of the %s profile "
                 "HQ holds, nor the hash of a policy HQ posted to node %s",
                 info->policy_hash, prof ? prof->hash : "?", node.region, node.name);
        rc = reject(st, info, now_ms, why, out, err);
        segment_close(seg);
        return rc;
    }

    rc = st->ops->begin(st->impl, err);
    if (rc < 0) {
        segment_close(seg);
        return rc;
    }
    uint64_t line = 0, applied = 0, set_aside = 0;
    const char *entity, *op, *json;
    size_t len;
    int reject_why = 0;
    for (;;) {
        op_error_clear(&e2);
        int more = segment_next_record(seg, &entity, &op, &json, &len, &e2);
        if (more == 0)
            break;
        if (more == -EBADMSG) {
            snprintf(why, sizeof why, "malformed payload: %.480s", e2.msg);
            reject_why = 1;
            break;
        }
        if (more < 0) {
            rc = more;
            if (err)
                *err = e2;
            goto fail;
        }
        line++;
        int lr = apply_line(st, p, info, line, entity, op, json, len, why, sizeof why, err);
        if (lr < 0) {
            rc = lr;
            goto fail;
        }
        if (lr == LINE_REJECT) {
            reject_why = 1;
            break;
        }
        if (lr == LINE_APPLIED)
            applied++;
        else if (lr == LINE_SET_ASIDE)
            set_aside++;
    }
    if (reject_why) {
        st->ops->rollback(st->impl);
        rc = reject(st, info, now_ms, why, out, err);
        segment_close(seg);
        return rc;
    }
    struct hq_receipt r = {0};
    snprintf(r.node, sizeof r.node, "%s", node.name);
    r.segment = segno;
    r.status = HQ_RECEIPT_APPLIED;
    r.to_urgent = info->to_urgent;
    r.to_ordinary = info->to_ordinary;
    r.records = line;
    r.applied = applied;
    r.set_aside = set_aside;
    r.received_ms = now_ms;
    r.segment_created_ms = info->created_ms;
    if ((rc = st->ops->receipt_put(st->impl, &r, err)) < 0 ||
        (rc = st->ops->commit(st->impl, err)) < 0) {
        if (rc == -EEXIST) {
            st->ops->rollback(st->impl);
            segment_close(seg);
            return lost_race(st, node.name, segno, rc, out, err);
        }
        goto fail;
    }
    segment_close(seg);
    memset(out, 0, sizeof *out);
    out->outcome = HQ_APPLY_APPLIED;
    out->receipt = r;
    return 0;

fail:
    st->ops->rollback(st->impl);
    segment_close(seg);
    return rc;
}

struct whole_list {
    json_t *arr;
    int failed;
};

static int add_whole(void *ctx, const struct hq_set_aside_row *r)
{
    struct whole_list *wl = ctx;
    if (json_array_append_new(wl->arr, json_pack("[ss]", r->entity, r->id)) < 0) {
        wl->failed = 1;
        return 1;
    }
    return 0;
}

int hq_apply_receipt_extras(struct hq_store *st, const struct hq_receipt *r,
                            const unsigned char key[SYNC_MAC_KEY_BYTES], json_t *doc,
                            struct op_error *err)
{
    if (json_object_set_new(doc, "patch", json_true()) < 0)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    struct whole_list wl = {json_array(), 0};
    if (!wl.arr)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = 0;
    if (r->status == HQ_RECEIPT_APPLIED && r->set_aside > 0)
        rc = st->ops->needs_whole_list(st->impl, r->node, r->segment, add_whole, &wl, err);
    if (rc == 0 && wl.failed)
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (rc == 0 && json_array_size(wl.arr) > 0 && json_object_set(doc, "needs_whole", wl.arr) < 0)
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    char mac[SYNC_MAC_HEX];
    if (rc == 0) {
        rc = sync_receipt_extras_mac(key, r->node, r->segment, 1, wl.arr, mac);
        if (rc < 0)
            op_error_set(err, rc, "needs_whole", "cannot make the receipt's extras MAC");
    }
    if (rc == 0 && json_object_set_new(doc, "extras_mac", json_string(mac)) < 0)
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
    json_decref(wl.arr);
    return rc < 0 ? rc : 0;
}
