/*
 * Range digests (range_digest.h): a sorted array of entries, digests of
 * prefix ranges by binary search and one SHA-256 pass over the slice, HQ's
 * answer to a level of ranges, and the node's top-down walk.
 */
#include "range_digest.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    uint64_t bucket;
    char *entity, *id;
    int64_t version;
    unsigned char hash[RANGE_HASH_BYTES];
};

struct range_set {
    struct entry *e;
    size_t n, cap;
};

int range_set_new(struct range_set **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void range_set_free(struct range_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].entity);
        free(s->e[i].id);
    }
    free(s->e);
    free(s);
}

uint64_t range_bucket(const char *entity, const char *id)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    size_t le = strlen(entity), li = strlen(id);
    char stack[256], *text = le + li + 1 <= sizeof stack ? stack : malloc(le + li + 1);
    if (!text)
        return 0; /* out of memory: every record in bucket 0 still compares right */
    memcpy(text, entity, le);
    text[le] = '\n';
    memcpy(text + le + 1, id, li);
    SHA256((const unsigned char *)text, le + li + 1, md);
    if (text != stack)
        free(text);
    uint64_t b = 0;
    for (int i = 0; i < 8; i++)
        b = b << 8 | md[i];
    return b;
}

int range_set_add(struct range_set *s, const char *entity, const char *id, int64_t version,
                  const unsigned char hash[PROJECTION_HASH_BYTES])
{
    if (!entity || !id || !*entity || !*id || strchr(entity, '\n') || strchr(id, '\n'))
        return -EINVAL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        struct entry *e = realloc(s->e, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        s->e = e;
        s->cap = cap;
    }
    struct entry *e = &s->e[s->n];
    e->entity = strdup(entity);
    e->id = strdup(id);
    if (!e->entity || !e->id) {
        free(e->entity);
        free(e->id);
        return -ENOMEM;
    }
    e->bucket = range_bucket(entity, id);
    e->version = version;
    memcpy(e->hash, hash, RANGE_HASH_BYTES);
    s->n++;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    int c = strcmp(x->entity, y->entity);
    return c ? c : strcmp(x->id, y->id);
}

void range_set_seal(struct range_set *s)
{
    if (s->n)
        qsort(s->e, s->n, sizeof *s->e, entry_cmp);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w && !strcmp(s->e[w - 1].entity, s->e[i].entity) &&
            !strcmp(s->e[w - 1].id, s->e[i].id)) {
            free(s->e[i].entity);
            free(s->e[i].id);
            continue;
        }
        s->e[w++] = s->e[i];
    }
    s->n = w;
}

size_t range_set_count(const struct range_set *s)
{
    return s->n;
}

int range_prefix_valid(const char *p)
{
    if (!p)
        return 0;
    size_t n = strlen(p);
    if (n > RANGE_DEPTH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return 0;
    return 1;
}

/* The entries of range p: [*lo, *hi). */
static int slice(const struct range_set *s, const char *p, size_t *lo, size_t *hi)
{
    if (!range_prefix_valid(p))
        return -EINVAL;
    size_t d = strlen(p);
    if (!d) {
        *lo = 0;
        *hi = s->n;
        return 0;
    }
    uint64_t v = strtoull(p, NULL, 16);
    unsigned shift = 64u - 4u * (unsigned)d;
    uint64_t first = v << shift;
    uint64_t last = first | ((shift == 64u ? 0 : (UINT64_C(1) << shift)) - 1u);
    size_t a = 0, b = s->n;
    while (a < b) { /* first entry with bucket >= first */
        size_t m = a + (b - a) / 2;
        if (s->e[m].bucket < first)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    b = s->n;
    while (a < b) { /* first entry with bucket > last */
        size_t m = a + (b - a) / 2;
        if (s->e[m].bucket <= last)
            a = m + 1;
        else
            b = m;
    }
    *hi = a;
    return 0;
}

int range_digest(const struct range_set *s, const char *prefix,
                 unsigned char out[RANGE_DIGEST_BYTES], uint64_t *count)
{
    size_t lo, hi;
    if (slice(s, prefix, &lo, &hi) < 0)
        return -EINVAL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (size_t i = lo; ok && i < hi; i++) {
        const struct entry *e = &s->e[i];
        ok = EVP_DigestUpdate(c, e->entity, strlen(e->entity)) && EVP_DigestUpdate(c, "\n", 1) &&
             EVP_DigestUpdate(c, e->id, strlen(e->id)) && EVP_DigestUpdate(c, "\n", 1) &&
             EVP_DigestUpdate(c, e->hash, RANGE_HASH_BYTES);
    }
    ok = ok && EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    if (!ok)
        return -EIO;
    memcpy(out, md, RANGE_DIGEST_BYTES);
    *count = hi - lo;
    return 0;
}

int range_each(const struct range_set *s, const char *prefix, range_entry_fn cb, void *ctx)
{
    size_t lo, hi;
    if (slice(s, prefix, &lo, &hi) < 0)
        return -EINVAL;
    for (size_t i = lo; i < hi; i++) {
        const struct entry *e = &s->e[i];
        struct range_entry re = {.entity = e->entity, .id = e->id, .version = e->version};
        memcpy(re.hash, e->hash, RANGE_HASH_BYTES);
        int rc = cb(ctx, &re);
        if (rc)
            return rc;
    }
    return 0;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(const char *s, unsigned char *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -EINVAL;
        if (i % 2)
            out[i / 2] = (unsigned char)(out[i / 2] << 4 | v);
        else
            out[i / 2] = (unsigned char)v;
    }
    return 0;
}

static char *dump(json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return t;
}

static int entries_json(void *ctx, const struct range_entry *e)
{
    char h[2 * RANGE_HASH_BYTES + 1];
    to_hex(e->hash, RANGE_HASH_BYTES, h);
    json_t *row = json_pack("[ssIs]", e->entity, e->id, (json_int_t)e->version, h);
    return row && !json_array_append_new(ctx, row) ? 0 : -ENOMEM;
}

int range_answer(const struct range_set *hq, const char *body, size_t len, char **answer,
                 struct op_error *err)
{
    *answer = NULL;
    json_error_t je;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(req)) {
        json_decref(req);
        return op_error_set(err, -EINVAL, "body", "the body is not a JSON object: %s",
                            req ? "another JSON value" : je.text);
    }
    int rc = 0;
    json_t *out = NULL;
    const char *fmt = json_string_value(json_object_get(req, "format"));
    json_t *ranges = json_object_get(req, "ranges");
    if (!fmt || (strcmp(fmt, RANGE_FORMAT) != 0 && strcmp(fmt, RANGE_FORMAT_V1) != 0)) {
        rc = op_error_set(err, -EINVAL, "format", "format must be \"%s\" or \"%s\"", RANGE_FORMAT,
                          RANGE_FORMAT_V1);
        goto done;
    }
    if (!json_is_array(ranges) || json_array_size(ranges) == 0 ||
        json_array_size(ranges) > RANGE_REQUEST_MAX) {
        rc = op_error_set(err, -EINVAL, "ranges",
                          "ranges must be an array of 1 to %d [prefix, digest, count] triples",
                          RANGE_REQUEST_MAX);
        goto done;
    }
    if (json_object_size(req) != 2) {
        const char *k;
        json_t *v;
        json_object_foreach(req, k, v)
        {
            if (strcmp(k, "format") != 0 && strcmp(k, "ranges") != 0) {
                rc = op_error_set(err, -EINVAL, "body", "unknown member \"%.40s\"", k);
                goto done;
            }
        }
    }
    /* validate everything before answering anything */
    size_t i;
    json_t *r;
    json_array_foreach(ranges, i, r)
    {
        char f[32];
        snprintf(f, sizeof f, "ranges[%zu]", i);
        unsigned char d[RANGE_DIGEST_BYTES];
        const char *p = json_string_value(json_array_get(r, 0));
        json_t *cnt = json_array_get(r, 2);
        if (!json_is_array(r) || json_array_size(r) != 3) {
            rc = op_error_set(err, -EINVAL, f, "%s must be [prefix, digest, count]", f);
            goto done;
        }
        if (!range_prefix_valid(p)) {
            rc = op_error_set(err, -EINVAL, f,
                              "%s: the prefix must be 0 to %d lower-case hex digits", f,
                              RANGE_DEPTH_MAX);
            goto done;
        }
        if (from_hex(json_string_value(json_array_get(r, 1)), d, sizeof d) < 0) {
            rc = op_error_set(err, -EINVAL, f, "%s: the digest must be %d lower-case hex digits", f,
                              2 * RANGE_DIGEST_BYTES);
            goto done;
        }
        if (!json_is_integer(cnt) || json_integer_value(cnt) < 0) {
            rc = op_error_set(err, -EINVAL, f, "%s: the count must be a whole number >= 0", f);
            goto done;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(p, json_string_value(json_array_get(json_array_get(ranges, k), 0)))) {
                rc = op_error_set(err, -EINVAL, f, "%s: range \"%s\" is asked twice", f, p);
                goto done;
            }
    }
    out = json_array();
    if (!out) {
        rc = -ENOMEM;
        goto done;
    }
    size_t entries = 0;
    json_array_foreach(ranges, i, r)
    {
        const char *p = json_string_value(json_array_get(r, 0));
        unsigned char theirs[RANGE_DIGEST_BYTES], mine[RANGE_DIGEST_BYTES];
        (void)from_hex(json_string_value(json_array_get(r, 1)), theirs, sizeof theirs);
        uint64_t their_n = (uint64_t)json_integer_value(json_array_get(r, 2)), n = 0;
        if ((rc = range_digest(hq, p, mine, &n)) < 0)
            goto done;
        if (n == their_n && !memcmp(mine, theirs, sizeof mine))
            continue;
        json_t *row = json_pack("[sI]", p, (json_int_t)n);
        if (!row || json_array_append_new(out, row)) {
            rc = -ENOMEM;
            goto done;
        }
        int leaf =
            strlen(p) == RANGE_DEPTH_MAX || (n <= RANGE_LEAF_MAX && their_n <= RANGE_LEAF_MAX);
        if (leaf && entries + n <= RANGE_ANSWER_ENTRIES) {
            json_t *es = json_array();
            if (!es || json_array_append_new(row, es) || range_each(hq, p, entries_json, es)) {
                rc = -ENOMEM;
                goto done;
            }
            entries += n;
        }
    }
    json_t *doc = json_pack("{so}", "differ", out);
    out = NULL;
    *answer = dump(doc);
    if (!*answer)
        rc = -ENOMEM;
done:
    json_decref(out);
    json_decref(req);
    return rc;
}

int range_request_format(const char *body, size_t len)
{
    json_t *req = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *fmt = json_string_value(json_object_get(req, "format"));
    int v = !fmt ? 0 : !strcmp(fmt, RANGE_FORMAT) ? 2 : !strcmp(fmt, RANGE_FORMAT_V1) ? 1 : 0;
    json_decref(req);
    return v;
}

const char *range_drift_name(enum range_drift_kind k)
{
    switch (k) {
    case RANGE_DRIFT_MISSING:
        return "missing";
    case RANGE_DRIFT_DIFFERS:
        return "differs";
    case RANGE_DRIFT_HQ_NEWER:
        return "hq-newer";
    case RANGE_DRIFT_HQ_ONLY:
        return "hq-only";
    }
    return "";
}

struct drift {
    enum range_drift_kind kind;
    char *entity, *id;
    int64_t node_version, hq_version;
    int has_nh, has_hh;
    unsigned char node_hash[RANGE_HASH_BYTES], hq_hash[RANGE_HASH_BYTES];
};

struct range_walk {
    const struct range_set *mine;
    char **pending; /* ranges to ask next */
    size_t npending, cap;
    char **asked; /* the ranges of the request in flight */
    size_t nasked;
    struct drift *d;
    size_t nd, dcap;
    struct range_walk_stats st;
    int over;
};

static int push(struct range_walk *w, const char *p)
{
    if (w->npending == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        char **n = realloc(w->pending, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        w->pending = n;
        w->cap = cap;
    }
    if (!(w->pending[w->npending] = strdup(p)))
        return -ENOMEM;
    w->npending++;
    return 0;
}

int range_walk_new(const struct range_set *mine, struct range_walk **out)
{
    struct range_walk *w = calloc(1, sizeof *w);
    if (!w || push(w, "") < 0) {
        free(w);
        return -ENOMEM;
    }
    w->mine = mine;
    w->st.compared = mine->n;
    *out = w;
    return 0;
}

static void free_asked(struct range_walk *w)
{
    for (size_t i = 0; i < w->nasked; i++)
        free(w->asked[i]);
    free(w->asked);
    w->asked = NULL;
    w->nasked = 0;
}

void range_walk_free(struct range_walk *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->npending; i++)
        free(w->pending[i]);
    free(w->pending);
    free_asked(w);
    for (size_t i = 0; i < w->nd; i++) {
        free(w->d[i].entity);
        free(w->d[i].id);
    }
    free(w->d);
    free(w);
}

int range_walk_request(struct range_walk *w, char **body, size_t *len)
{
    *body = NULL;
    *len = 0;
    free_asked(w);
    if (w->over || !w->npending)
        return 1;
    if (w->st.requests >= RANGE_WALK_REQUESTS_MAX) {
        w->over = 1;
        return -E2BIG;
    }
    size_t n = w->npending < RANGE_REQUEST_MAX ? w->npending : RANGE_REQUEST_MAX;
    json_t *ranges = json_array();
    if (!ranges || !(w->asked = calloc(n, sizeof *w->asked))) {
        json_decref(ranges);
        return -ENOMEM;
    }
    /* take from the end: the walk goes depth first, which keeps pending small */
    for (size_t i = 0; i < n; i++) {
        char *p = w->pending[--w->npending];
        unsigned char d[RANGE_DIGEST_BYTES];
        uint64_t c = 0;
        char hex[2 * RANGE_DIGEST_BYTES + 1];
        if (range_digest(w->mine, p, d, &c) < 0) {
            free(p);
            json_decref(ranges);
            return -EIO;
        }
        to_hex(d, sizeof d, hex);
        w->asked[w->nasked++] = p;
        json_t *row = json_pack("[ssI]", p, hex, (json_int_t)c);
        if (!row || json_array_append_new(ranges, row)) {
            json_decref(ranges);
            return -ENOMEM;
        }
    }
    *body = dump(json_pack("{ssso}", "format", RANGE_FORMAT, "ranges", ranges));
    if (!*body)
        return -ENOMEM;
    *len = strlen(*body);
    w->st.requests++;
    w->st.ranges += n;
    w->st.bytes_out += *len;
    return 0;
}

static int add_drift(struct range_walk *w, enum range_drift_kind k, const char *entity,
                     const char *id, int64_t nv, int64_t hv, const unsigned char *nh,
                     const unsigned char *hh)
{
    if (w->nd == w->dcap) {
        size_t cap = w->dcap ? 2 * w->dcap : 16;
        struct drift *d = realloc(w->d, cap * sizeof *d);
        if (!d)
            return -ENOMEM;
        w->d = d;
        w->dcap = cap;
    }
    struct drift *d = &w->d[w->nd];
    d->kind = k;
    d->entity = strdup(entity);
    d->id = strdup(id);
    d->node_version = nv;
    d->hq_version = hv;
    d->has_nh = nh != NULL;
    d->has_hh = hh != NULL;
    if (nh)
        memcpy(d->node_hash, nh, RANGE_HASH_BYTES);
    if (hh)
        memcpy(d->hq_hash, hh, RANGE_HASH_BYTES);
    if (!d->entity || !d->id) {
        free(d->entity);
        free(d->id);
        return -ENOMEM;
    }
    w->nd++;
    w->st.drift++;
    return 0;
}

/* Compares the node's entries of one range with HQ's list. */
struct leaf_cmp {
    struct range_walk *w;
    json_t *hq;    /* [[entity,id,version,hash],...] */
    char *matched; /* per HQ entry */
};

static int leaf_one(void *ctx, const struct range_entry *e)
{
    struct leaf_cmp *c = ctx;
    size_t i;
    json_t *row;
    json_array_foreach(c->hq, i, row)
    {
        if (c->matched[i] || strcmp(json_string_value(json_array_get(row, 0)), e->entity) ||
            strcmp(json_string_value(json_array_get(row, 1)), e->id))
            continue;
        c->matched[i] = 1;
        unsigned char h[RANGE_HASH_BYTES];
        (void)from_hex(json_string_value(json_array_get(row, 3)), h, sizeof h);
        if (!memcmp(h, e->hash, sizeof h))
            return 0;
        int64_t hv = json_integer_value(json_array_get(row, 2));
        return add_drift(c->w, hv > e->version ? RANGE_DRIFT_HQ_NEWER : RANGE_DRIFT_DIFFERS,
                         e->entity, e->id, e->version, hv, e->hash, h);
    }
    return add_drift(c->w, RANGE_DRIFT_MISSING, e->entity, e->id, e->version, -1, e->hash, NULL);
}

static int bad(struct range_walk *w, struct op_error *err, const char *field, const char *what)
{
    w->over = 1;
    return op_error_set(err, -EBADMSG, field, "HQ's digest answer: %s", what);
}

int range_walk_answer(struct range_walk *w, const char *body, size_t len, struct op_error *err)
{
    w->st.bytes_in += len;
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *differ = json_object_get(doc, "differ");
    int rc = 0;
    if (!json_is_array(differ)) {
        json_decref(doc);
        return bad(w, err, "differ", "not an object with a differ array");
    }
    /* the whole set asked and not listed: HQ holds what the node holds */
    for (size_t k = 0; k < w->nasked; k++)
        if (!w->asked[k][0])
            w->st.hq_records = w->mine->n;
    size_t i;
    json_t *r;
    json_array_foreach(differ, i, r)
    {
        const char *p = json_string_value(json_array_get(r, 0));
        json_t *n = json_array_get(r, 1), *es = json_array_get(r, 2);
        size_t k = 0;
        while (p && k < w->nasked && strcmp(w->asked[k], p))
            k++;
        if (!p || k == w->nasked || !json_is_integer(n) || (es && !json_is_array(es))) {
            rc = bad(w, err, "differ", "a range that was not asked, or a malformed row");
            break;
        }
        if (!*p)
            w->st.hq_records = (uint64_t)json_integer_value(n);
        if (!es) { /* descend */
            if (strlen(p) >= RANGE_DEPTH_MAX) {
                /* HQ's answer was full: ask this one again */
                if ((rc = push(w, p)) < 0)
                    break;
                continue;
            }
            for (int c = RANGE_FANOUT - 1; c >= 0 && !rc; c--) {
                char child[RANGE_DEPTH_MAX + 2];
                snprintf(child, sizeof child, "%s%x", p, (unsigned)c);
                rc = push(w, child);
            }
            if (rc)
                break;
            continue;
        }
        size_t j;
        json_t *e;
        json_array_foreach(es, j, e)
        {
            unsigned char h[RANGE_HASH_BYTES];
            const char *ent = json_string_value(json_array_get(e, 0));
            const char *id = json_string_value(json_array_get(e, 1));
            if (!ent || !id || !json_is_integer(json_array_get(e, 2)) ||
                from_hex(json_string_value(json_array_get(e, 3)), h, sizeof h) < 0 ||
                !range_prefix_valid(p) || !*ent || !*id)
                return json_decref(doc), bad(w, err, "differ", "a malformed entry");
            char hexb[17];
            snprintf(hexb, sizeof hexb, "%016llx", (unsigned long long)range_bucket(ent, id));
            if (strncmp(hexb, p, strlen(p)) != 0)
                return json_decref(doc), bad(w, err, "differ", "an entry outside its range");
        }
        struct leaf_cmp c = {.w = w, .hq = es, .matched = calloc(json_array_size(es) + 1, 1)};
        if (!c.matched) {
            rc = -ENOMEM;
            break;
        }
        rc = range_each(w->mine, p, leaf_one, &c);
        json_array_foreach(es, j, e)
        {
            if (rc || c.matched[j])
                continue;
            unsigned char h[RANGE_HASH_BYTES];
            (void)from_hex(json_string_value(json_array_get(e, 3)), h, sizeof h);
            rc = add_drift(w, RANGE_DRIFT_HQ_ONLY, json_string_value(json_array_get(e, 0)),
                           json_string_value(json_array_get(e, 1)), -1,
                           json_integer_value(json_array_get(e, 2)), NULL, h);
        }
        free(c.matched);
        if (rc)
            break;
    }
    json_decref(doc);
    if (rc)
        w->over = 1;
    return rc;
}

int range_walk_each_drift(const struct range_walk *w, range_drift_fn cb, void *ctx)
{
    for (size_t i = 0; i < w->nd; i++) {
        struct range_drift d = {.kind = w->d[i].kind,
                                .entity = w->d[i].entity,
                                .id = w->d[i].id,
                                .node_version = w->d[i].node_version,
                                .hq_version = w->d[i].hq_version,
                                .has_node_hash = w->d[i].has_nh,
                                .has_hq_hash = w->d[i].has_hh};
        memcpy(d.node_hash, w->d[i].node_hash, RANGE_HASH_BYTES);
        memcpy(d.hq_hash, w->d[i].hq_hash, RANGE_HASH_BYTES);
        int rc = cb(ctx, &d);
        if (rc)
            return rc;
    }
    return 0;
}

void range_walk_stats(const struct range_walk *w, struct range_walk_stats *out)
{
    *out = w->st;
}
