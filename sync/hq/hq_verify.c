/*
 * HQ's side of anti-entropy (hq_verify.h): the node's records as a range
 * set, the digest route and the report route.
 */
#include "hq_verify.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "projection_hash.h"

int hq_verify_path(const char *path)
{
    return !strcmp(path, "/v1/digest") || !strcmp(path, "/v1/verify");
}

struct build {
    struct range_set *s;
    int rc;
};

static int add_row(void *ctx, const struct hq_record_row *r)
{
    struct build *b = ctx;
    /* only the entities a node syncs record by record: aggregate answers
     * (kept as records of entity "aggregate") are not projections */
    const struct entity_def *e = entity_by_name(r->entity);
    if (!e || (e->flags & ENTITY_NODE_LOCAL))
        return 0;
    enum projection_state state = !strcmp(r->op, "delete") ? PROJECTION_DELETED : PROJECTION_LIVE;
    unsigned char h[PROJECTION_HASH_BYTES];
    int tomb = strcmp(r->op, "upsert") && strcmp(r->op, "delete");
    json_t *rec = tomb ? NULL : json_loads(r->json, 0, NULL);
    int rc;
    if (tomb) { /* erase, purge, withdraw: gone, the id alone */
        rc = projection_hash(r->entity, PROJECTION_GONE, r->id, NULL, h);
    } else if (json_is_object(rec)) {
        rc = projection_hash(r->entity, state, r->id, rec, h);
    } else { /* cannot be what the node projects: hash the text so it differs */
        json_t *wrap = json_pack("{ss}", "unreadable", r->json);
        rc = wrap ? projection_hash(r->entity, state, r->id, wrap, h) : -ENOMEM;
        json_decref(wrap);
    }
    json_decref(rec);
    if (rc == 0)
        rc = range_set_add(b->s, r->entity, r->id, r->version, h);
    if (rc == -EINVAL) /* an id the node could not have sent: it cannot match anything */
        rc = 0;
    b->rc = rc;
    return rc;
}

int hq_verify_set(const struct hq_store *st, const char *node, int tombstones,
                  struct range_set **out, struct op_error *err)
{
    struct build b = {0};
    int rc = range_set_new(&b.s);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "out of memory");
    rc = st->ops->records_list(st->impl, node, NULL, add_row, &b, err);
    if (rc == 0)
        rc = b.rc;
    if (rc == 0 && tombstones) {
        rc = st->ops->tombstones_list(st->impl, node, add_row, &b, err);
        if (rc == 0)
            rc = b.rc;
    }
    if (rc < 0) {
        if (b.rc < 0)
            op_error_set(err, rc, NULL, "cannot build the range digests of node %s", node);
        range_set_free(b.s);
        return rc;
    }
    range_set_seal(b.s);
    *out = b.s;
    return 0;
}

/* The set built last: one node's, while its applied segments stay the
 * same (HQ's loop is the only caller). */
static struct {
    char node[HQ_NODE_MAX];
    int format; /* range_request_format of the request it was built for */
    uint64_t applied, last_segment;
    int64_t built_ms;
    struct range_set *set;
} kept;

void hq_verify_forget(void)
{
    range_set_free(kept.set);
    memset(&kept, 0, sizeof kept);
}

int hq_verify_answer(const struct hq_store *st, const struct hq_node *n, int64_t now_ms,
                     const char *body, size_t len, char **answer, struct op_error *err)
{
    *answer = NULL;
    /* the request is checked before HQ reads any record */
    struct range_set *empty = NULL;
    if (range_set_new(&empty) < 0)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    int rc = range_answer(empty, body ? body : "", len, answer, err);
    range_set_free(empty);
    free(*answer);
    *answer = NULL;
    if (rc < 0)
        return rc;
    int format = range_request_format(body, len);
    if (!kept.set || strcmp(kept.node, n->name) || kept.format != format ||
        kept.applied != n->segments_applied || kept.last_segment != n->last_segment ||
        now_ms - kept.built_ms > HQ_VERIFY_CACHE_MS || now_ms < kept.built_ms) {
        hq_verify_forget();
        struct range_set *s = NULL;
        if ((rc = hq_verify_set(st, n->name, format == 2, &s, err)) < 0)
            return rc;
        kept.set = s;
        kept.format = format;
        snprintf(kept.node, sizeof kept.node, "%s", n->name);
        kept.applied = n->segments_applied;
        kept.last_segment = n->last_segment;
        kept.built_ms = now_ms;
    }
    return range_answer(kept.set, body, len, answer, err);
}

static void respond_text(struct http_exchange *x, int status, char *body)
{
    if (!body) {
        http_respond_problem(x, 503, NULL, "out of memory");
        return;
    }
    http_respond(x, status, "application/json", body, strlen(body));
    free(body);
}

static void handle_digest(const struct hq_store *st, struct http_exchange *x,
                          const struct hq_node *n, int64_t now_ms)
{
    size_t len = 0;
    const char *body = http_body(x, &len);
    struct op_error err;
    op_error_clear(&err);
    char *answer = NULL;
    int rc = hq_verify_answer(st, n, now_ms, body, len, &answer, &err);
    if (rc == -EINVAL) {
        char d[600];
        snprintf(d, sizeof d, "digest request: %s", err.msg);
        http_respond_problem(x, 400, NULL, d);
        return;
    }
    if (rc < 0) {
        http_respond_problem(x, 503, NULL, "the HQ store cannot answer digests now; retry later");
        return;
    }
    respond_text(x, 200, answer);
}

/* The report's whole-number members, in struct hq_verify's order. */
static const char *const counts[] = {"compared", "hq_records", "ranges", "requests",
                                     "bytes",    "drift",      "resent", "reported"};

static void handle_report(const struct hq_store *st, struct http_exchange *x,
                          const struct hq_node *n, int64_t now_ms)
{
    size_t len = 0;
    const char *body = http_body(x, &len);
    json_t *doc = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    struct hq_verify v = {.at_ms = now_ms};
    snprintf(v.node, sizeof v.node, "%s", n->name);
    char d[160] = "";
    const char *result = json_string_value(json_object_get(doc, "result"));
    uint64_t *dst[] = {&v.compared, &v.hq_records, &v.ranges, &v.requests,
                       &v.bytes,    &v.drift,      &v.resent, &v.reported};
    if (!json_is_object(doc))
        snprintf(d, sizeof d, "verify report: the body is not a JSON object");
    else if (json_object_size(doc) != 1 + sizeof counts / sizeof *counts)
        snprintf(d, sizeof d, "verify report: it must have exactly result and the %zu counts",
                 sizeof counts / sizeof *counts);
    else if (!result || (strcmp(result, "agree") && strcmp(result, "repaired") &&
                         strcmp(result, "drift") && strcmp(result, "failed")))
        snprintf(d, sizeof d, "verify report: result must be agree, repaired, drift or failed");
    for (size_t i = 0; !*d && i < sizeof counts / sizeof *counts; i++) {
        json_t *c = json_object_get(doc, counts[i]);
        if (!json_is_integer(c) || json_integer_value(c) < 0)
            snprintf(d, sizeof d, "verify report: %s must be a whole number >= 0", counts[i]);
        else
            *dst[i] = (uint64_t)json_integer_value(c);
    }
    if (*d) {
        json_decref(doc);
        http_respond_problem(x, 400, NULL, d);
        return;
    }
    snprintf(v.result, sizeof v.result, "%s", result);
    json_decref(doc);
    struct op_error err;
    op_error_clear(&err);
    if (st->ops->verify_put(st->impl, &v, &err) < 0) {
        http_respond_problem(x, 503, NULL, "the HQ store cannot keep the report now; retry later");
        return;
    }
    respond_text(x, 200, strdup("{\"stored\":true}"));
}

void hq_verify_handle(const struct hq_store *st, struct http_exchange *x, const struct hq_node *n,
                      int64_t now_ms)
{
    if (strcmp(http_method(x), "POST") != 0) {
        (void)http_add_header(x, "Allow", "POST");
        http_respond_problem(x, 405, NULL, "only POST is allowed here");
        return;
    }
    if (!strcmp(http_path(x), "/v1/digest"))
        handle_digest(st, x, n, now_ms);
    else
        handle_report(st, x, n, now_ms);
}
