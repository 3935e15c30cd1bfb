/*
 * The record handlers; see api_records.h. Each maps one request onto one
 * store call and the store's answer onto a response; the store decides
 * what is valid, visible and current, and what a field user may change
 * (ownership, the restricted flag: see store.h), because the writes run
 * with the caller as the store's viewer.
 */
#include "api_records.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "buf.h"
#include "api_idempotency.h"
#include "api_query.h"

static const char *filter_alias(const char *name)
{
    static const char *const aliases[][2] = {{"owner", "owner_id"},
                                             {"organization", "organization_id"},
                                             {"contact", "contact_id"},
                                             {"deal", "deal_id"},
                                             {"assignee", "assignee_id"}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(name, aliases[i][0]))
            return aliases[i][1];
    return name;
}

void api_records_list(struct store *rd, struct api_call *c, const struct auth_user *u,
                      const struct entity_def *e, const char *forced_field, const char *forced)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return;
    struct store_query q = {0};
    struct store_filter filters[API_QUERY_PARAMS_MAX + 1];
    size_t nf = 0;
    if (forced_field)
        filters[nf++] = (struct store_filter){forced_field, forced};
    for (int i = 0; i < n; i++) {
        const char *name = ps[i].name, *v = ps[i].value;
        if (!strcmp(name, "limit")) {
            q.limit = api_query_limit(c, v, STORE_LIST_MAX);
            if (q.limit < 0)
                return;
        } else if (!strcmp(name, "cursor")) {
            q.cursor = v;
        } else if (!strcmp(name, "sort")) {
            if (strcmp(v, "id") && strcmp(v, "updated")) {
                api_reply_problem(&c->resp, 400, "sort: expected id or updated", NULL);
                return;
            }
            q.sort = !strcmp(v, "updated") ? STORE_SORT_UPDATED : STORE_SORT_ID;
        } else if (!strcmp(name, "updated_since")) {
            q.updated_since = v;
        } else {
            const char *field = filter_alias(name);
            const struct field_def *f = entity_field(e, field);
            if (!f || !(f->flags & FIELD_FILTER)) {
                char msg[200];
                snprintf(msg, sizeof msg,
                         "unknown query parameter '%.48s' (limit, cursor, sort, "
                         "updated_since or a filter field)",
                         name);
                api_reply_problem(&c->resp, 400, msg, NULL);
                return;
            }
            filters[nf++] = (struct store_filter){f->name, v};
        }
    }
    q.filters = filters;
    q.nfilters = nf;
    /* The page is written as JSON text straight from the rows: no JSON
     * object per record (docs/BENCHMARKS.md, "API"). */
    struct buf body = BUF_INIT(API_LIST_BODY_MAX);
    struct op_error err;
    op_error_clear(&err);
    store_set_viewer(rd, api_auth_viewer(u));
    int rc = store_list_text(rd, e, &q, &body, &err);
    store_set_viewer(rd, NULL);
    if (rc < 0) {
        buf_done(&body);
        api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    api_reply_text(&c->resp, 200, &body);
}

void api_records_get(struct store *rd, struct api_call *c, const struct auth_user *u)
{
    json_t *rec = NULL;
    struct op_error err;
    op_error_clear(&err);
    store_set_viewer(rd, api_auth_viewer(u));
    int rc = store_get(rd, c->route.e, c->route.id, 0, &rec, &err);
    store_set_viewer(rd, NULL);
    api_reply_record(&c->resp, rc, &err, 200, rec);
}

void api_records_search(struct store *rd, struct api_call *c, const struct auth_user *u)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return;
    const char *text = NULL;
    int limit = 20;
    for (int i = 0; i < n; i++) {
        if (!strcmp(ps[i].name, "q"))
            text = ps[i].value;
        else if (!strcmp(ps[i].name, "limit")) {
            limit = api_query_limit(c, ps[i].value, STORE_SEARCH_MAX);
            if (limit < 0)
                return;
        } else {
            api_reply_problem(&c->resp, 400, "unknown query parameter (q, limit)", NULL);
            return;
        }
    }
    if (!text) {
        api_reply_problem(&c->resp, 400,
                          "q: the search text is required (GET /api/v1/search?q=TEXT)", NULL);
        return;
    }
    /* The hits are written as JSON text straight from the rows, as list
     * pages are (docs/BENCHMARKS.md, "API"). */
    struct buf body = BUF_INIT(API_LIST_BODY_MAX);
    struct op_error err;
    op_error_clear(&err);
    store_set_viewer(rd, api_auth_viewer(u));
    int rc = store_search_text(rd, text, limit, &body, &err);
    store_set_viewer(rd, NULL);
    if (rc < 0) {
        buf_done(&body);
        if (rc == -EINVAL)
            api_reply_problem(&c->resp, 400, err.msg, NULL);
        else
            api_reply_store_error(&c->resp, rc, &err);
        return;
    }
    api_reply_text(&c->resp, 200, &body);
}

static int skip_dup_param(const struct api_call *c)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    char bad[64];
    int n = api_query_parse(c->req.query, ps, API_QUERY_PARAMS_MAX, bad, sizeof bad);
    for (int i = 0; i < n; i++)
        if (!strcmp(ps[i].name, "skip_duplicate_check") &&
            (!strcmp(ps[i].value, "true") || !strcmp(ps[i].value, "1")))
            return 1;
    return 0;
}

void api_records_create(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    const struct entity_def *e = c->route.e;
    if (c->req.has_idempotency_key && api_idempotency_key_check(c) < 0)
        return;
    json_t *body = api_request_json(&c->req, &c->resp);
    if (!body)
        return;
    unsigned flags = skip_dup_param(c) ? STORE_SKIP_DUP_CHECK : 0;
    if (c->req.has_idempotency_key) {
        api_idempotency_create(db, c, u, body, flags);
        return;
    }
    json_t *rec = NULL;
    struct op_error err;
    struct api_write w;
    if (api_records_write_begin(db, c, u, body, &w, &err) < 0)
        return;
    int rc = store_create(w.conn->store, e, body, flags, &rec, &err);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    json_decref(body);
    if (rc == 0)
        snprintf(c->resp.location, sizeof c->resp.location, "%s/%s/%s", API_PREFIX, e->plural,
                 json_string_value(json_object_get(rec, "id")));
    api_reply_record(&c->resp, rc, &err, 201, rec);
}

static void update_or_delete(struct api_db *db, struct api_call *c, const struct auth_user *u,
                             int del)
{
    if (!c->req.has_if_match) {
        api_reply_problem(
            &c->resp, 428,
            "If-Match is required: send the ETag of the version you last read, so that "
            "no one else's change is overwritten",
            NULL);
        return;
    }
    int64_t version = api_request_if_match(&c->req);
    if (version < 0) {
        api_reply_problem(&c->resp, 412, "If-Match must be an ETag such as \"3\" (or *)", NULL);
        return;
    }
    json_t *body = NULL;
    if (!del) {
        body = api_request_json(&c->req, &c->resp);
        if (!body)
            return;
    }
    unsigned flags = !del && skip_dup_param(c) ? STORE_SKIP_DUP_CHECK : 0;
    struct op_error err;
    json_t *rec = NULL;
    struct api_write w;
    int rc = api_records_write_begin(db, c, u, body, &w, &err);
    if (rc < 0)
        return;
    struct store *s = w.conn->store;
    if (version == 0) { /* If-Match: * — whatever is current */
        rc = store_get(s, c->route.e, c->route.id, 0, &rec, &err);
        if (rc == 0)
            version = json_integer_value(json_object_get(rec, "version"));
        json_decref(rec);
        rec = NULL;
    }
    if (rc == 0)
        rc = del ? store_delete(s, c->route.e, c->route.id, version, NULL, &err)
                 : store_update(s, c->route.e, c->route.id, version, body, flags, &rec, &err);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    json_decref(body);
    if (rc == 0 && del)
        c->resp.status = 204;
    else
        api_reply_record(&c->resp, rc, &err, 200, rec);
}

int api_records_write_begin(struct api_db *db, struct api_call *c, const struct auth_user *u,
                            json_t *body, struct api_write *w, struct op_error *err)
{
    op_error_clear(err);
    int rc = api_db_write_begin(db, u->name, c->req.ip, api_auth_viewer(u), w, err);
    if (rc < 0) {
        json_decref(body);
        api_reply_store_error(&c->resp, rc, err);
    }
    return rc;
}

void api_records_update(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    update_or_delete(db, c, u, 0);
}

void api_records_delete(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    update_or_delete(db, c, u, 1);
}
