/*
 * HQ's side of anti-entropy (hq_verify.h): the node's records as a range
 * set, the digest route and the report route.
 */
#include "hq_verify.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
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
 * same. Digests are answered on the apply pool's threads (hq_serve), so
 * the kept set is guarded by mu; a set is built outside it, so one
 * node's build does not hold up another node's answer from the kept set. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char node[HQ_NODE_MAX];
    int format; /* range_request_format of the request it was built for */
    uint64_t applied, last_segment;
    int64_t built_ms;
    struct range_set *set;
} kept;

static void forget_locked(void)
{
    range_set_free(kept.set);
    memset(&kept, 0, sizeof kept);
}

void hq_verify_forget(void)
{
    pthread_mutex_lock(&mu);
    forget_locked();
    pthread_mutex_unlock(&mu);
}

static int kept_fits(const struct hq_node *n, int format, int64_t now_ms)
{
    return kept.set && !strcmp(kept.node, n->name) && kept.format == format &&
           kept.applied == n->segments_applied && kept.last_segment == n->last_segment &&
           now_ms - kept.built_ms <= HQ_VERIFY_CACHE_MS && now_ms >= kept.built_ms;
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
    pthread_mutex_lock(&mu);
    if (kept_fits(n, format, now_ms)) {
        rc = range_answer(kept.set, body, len, answer, err);
        pthread_mutex_unlock(&mu);
        return rc;
    }
    pthread_mutex_unlock(&mu);
    struct range_set *s = NULL;
    if ((rc = hq_verify_set(st, n->name, format == 2, &s, err)) < 0)
        return rc;
    rc = range_answer(s, body, len, answer, err);
    pthread_mutex_lock(&mu);
    forget_locked();
    kept.set = s;
    snprintf(kept.node, sizeof kept.node, "%s", n->name);
    kept.format = format;
    kept.applied = n->segments_applied;
    kept.last_segment = n->last_segment;
    kept.built_ms = now_ms;
    pthread_mutex_unlock(&mu);
    return rc;
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

/* Answers x from a digest's outcome: 200 with the answer, 400 naming
 * the member of a bad request, 503 with Retry-After when the store or
 * the pool cannot answer now (the node asks again). Takes answer. */
static void respond_digest(struct http_exchange *x, int rc, char *answer,
                           const struct op_error *err)
{
    if (rc == -EINVAL) {
        free(answer);
        char d[600];
        snprintf(d, sizeof d, "digest request: %s", err->msg);
        http_respond_problem(x, 400, NULL, d);
        return;
    }
    if (rc < 0) {
        free(answer);
        (void)http_add_header(x, "Retry-After", "5");
        http_respond_problem(x, 503, NULL, "the HQ store cannot answer digests now; retry later");
        return;
    }
    respond_text(x, 200, answer);
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
    respond_digest(x, rc, answer, &err);
}

struct hq_verify_digest {
    struct hq_node node;
    int64_t now_ms;
    char *body;
    size_t len;
    /* filled by hq_verify_digest_run */
    int rc;
    char *answer;
    struct op_error err;
};

struct hq_verify_digest *hq_verify_digest_new(struct http_exchange *x, const struct hq_node *n,
                                              int64_t now_ms)
{
    size_t len = 0;
    const char *body = http_body(x, &len);
    struct hq_verify_digest *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->node = *n;
    d->now_ms = now_ms;
    d->len = body ? len : 0;
    d->body = malloc(d->len + 1);
    if (!d->body) {
        free(d);
        return NULL;
    }
    if (d->len)
        memcpy(d->body, body, d->len);
    d->body[d->len] = '\0';
    d->rc = -EINPROGRESS;
    op_error_clear(&d->err);
    return d;
}

int hq_verify_digest_run(struct hq_store *st, void *arg)
{
    struct hq_verify_digest *d = arg;
    d->rc = hq_verify_answer(st, &d->node, d->now_ms, d->body, d->len, &d->answer, &d->err);
    return d->rc;
}

void hq_verify_digest_finish(struct hq_verify_digest *d, struct http_exchange *x, int rc)
{
    if (rc == -ECANCELED || d->rc == -EINPROGRESS) {
        (void)http_add_header(x, "Retry-After", "5");
        http_respond_problem(x, 503, NULL, "HQ is stopping; retry later");
    } else {
        respond_digest(x, d->rc, d->answer, &d->err);
        d->answer = NULL;
    }
    hq_verify_digest_free(d);
}

void hq_verify_digest_free(struct hq_verify_digest *d)
{
    if (!d)
        return;
    free(d->body);
    free(d->answer);
    free(d);
}

int hq_verify_is_digest(struct http_exchange *x)
{
    return !strcmp(http_path(x), "/v1/digest") && !strcmp(http_method(x), "POST");
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
