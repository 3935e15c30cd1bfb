/*
 * The campaign handlers; see api_campaigns.h. Writes go through the
 * batch writer (api_db_write_begin), reads through the caller's reader.
 */
#include "api_campaigns.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_query.h"
#include "api_records.h"
#include "campaign.h"

static int manager_only(struct api_call *c, const struct auth_user *u)
{
    if (u->role == AUTH_ROLE_MANAGER)
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "campaigns are for the manager role, not %s",
             auth_role_name(u->role));
    api_reply_problem(&c->resp, 403, msg, NULL);
    return -EPERM;
}

static int parse_id(struct api_call *c, int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(c->route.id, &end, 10);
    if (!c->route.id[0] || *end || v < 1) {
        api_reply_problem(&c->resp, 404, "no such campaign (ids are whole numbers)", NULL);
        return -ENOENT;
    }
    *id = v;
    return 0;
}

/* "segment.country[1]" as the JSON pointer's path "segment/country/1". */
static const char *pointer_of(const char *field, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = field; *p && o + 1 < cap; p++)
        if (*p != ']')
            out[o++] = (*p == '.' || *p == '[') ? '/' : *p;
    out[o] = '\0';
    return o ? out : NULL;
}

static void reply_error(struct api_call *c, int rc, const struct op_error *err)
{
    char ptr[72];
    if (rc == -EINVAL)
        api_reply_problem(&c->resp, 400, err->msg, pointer_of(err->field, ptr, sizeof ptr));
    else if (rc == -EALREADY)
        api_reply_problem(&c->resp, 409, err->msg, err->field[0] ? err->field : NULL);
    else
        api_reply_store_error(&c->resp, rc, err);
}

static void list(struct store *rd, struct api_call *c)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return;
    const char *state = NULL;
    int limit = 100;
    for (int i = 0; i < n; i++) {
        if (!strcmp(ps[i].name, "state")) {
            state = ps[i].value;
        } else if (!strcmp(ps[i].name, "limit")) {
            limit = api_query_limit(c, ps[i].value, CAMPAIGN_LIST_MAX);
            if (limit < 0)
                return;
        } else {
            api_reply_problem(&c->resp, 400, "unknown query parameter (state, limit)", NULL);
            return;
        }
    }
    json_t *arr = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = campaign_list(rd, state, (unsigned)limit, &arr, &err);
    if (rc < 0) {
        reply_error(c, rc, &err);
        return;
    }
    api_reply_json(&c->resp, 200, json_pack("{s:o}", "campaigns", arr));
}

static void create(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    json_t *body = api_request_json(&c->req, &c->resp);
    if (!body)
        return;
    struct op_error err;
    op_error_clear(&err);
    /* Checked before the writer is taken: bad input costs no write. */
    int rc = campaign_validate(body, &err);
    if (rc < 0) {
        json_decref(body);
        reply_error(c, rc, &err);
        return;
    }
    struct api_write w;
    rc = api_records_write_begin(db, c, u, body, &w, &err);
    if (rc < 0)
        return;
    int64_t id = 0;
    rc = campaign_create(w.conn->store, body, u->name, 0, &id, &err);
    json_t *rec = NULL;
    if (rc == 0)
        rc = campaign_get(w.conn->store, id, &rec, &err);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    json_decref(body);
    if (rc < 0) {
        json_decref(rec);
        reply_error(c, rc, &err);
        return;
    }
    snprintf(c->resp.location, sizeof c->resp.location, "%s/campaigns/%lld", API_PREFIX,
             (long long)id);
    api_reply_json(&c->resp, 201, rec);
}

void api_campaigns_collection(struct api_db *db, struct store *rd, struct api_call *c,
                              const struct auth_user *u)
{
    if (manager_only(c, u) < 0)
        return;
    if (!strcmp(c->req.method, "GET") || !strcmp(c->req.method, "HEAD"))
        list(rd, c);
    else if (!strcmp(c->req.method, "POST"))
        create(db, c, u);
    else
        api_reply_method_not_allowed(&c->resp, c->req.method, "GET, HEAD, POST");
}

void api_campaigns_get(struct store *rd, struct api_call *c, const struct auth_user *u)
{
    if (manager_only(c, u) < 0)
        return;
    if (strcmp(c->req.method, "GET") && strcmp(c->req.method, "HEAD")) {
        api_reply_method_not_allowed(&c->resp, c->req.method, "GET, HEAD");
        return;
    }
    int64_t id;
    if (parse_id(c, &id) < 0)
        return;
    json_t *rec = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = campaign_get(rd, id, &rec, &err);
    if (rc < 0) {
        reply_error(c, rc, &err);
        return;
    }
    api_reply_json(&c->resp, 200, rec);
}

void api_campaigns_action(struct api_db *db, struct store *rd, struct api_call *c,
                          const struct auth_user *u)
{
    if (manager_only(c, u) < 0)
        return;
    if (strcmp(c->req.method, "POST")) {
        api_reply_method_not_allowed(&c->resp, c->req.method, "POST");
        return;
    }
    int64_t id;
    if (parse_id(c, &id) < 0)
        return;
    const char *a = c->route.sub_id;
    struct op_error err;
    op_error_clear(&err);
    json_t *out = NULL;
    int rc;
    if (!strcmp(a, "dry-run")) {
        /* The policy is held a page at a time, so writes wait at most
         * for one page's decisions (docs/API.md). */
        char cursor[CAMPAIGN_CURSOR_BUF] = "";
        int done = 0;
        out = json_object();
        rc = 0;
        while (rc == 0 && !done) {
            const struct policy *p = api_db_policy_hold(db);
            rc = campaign_dry_run_step(rd, p, id, 0, cursor, out, &done, &err);
            api_db_policy_release(db);
        }
        if (rc < 0) {
            json_decref(out);
            reply_error(c, rc, &err);
            return;
        }
        api_reply_json(&c->resp, 200, out);
        return;
    }
    int (*fn)(struct store *, int64_t, int64_t, struct op_error *) =
        !strcmp(a, "start")    ? campaign_start
        : !strcmp(a, "pause")  ? campaign_pause
        : !strcmp(a, "cancel") ? campaign_cancel
                               : NULL;
    if (!fn) {
        api_reply_problem(&c->resp, 404, "no such campaign action (dry-run, start, pause, cancel)",
                          NULL);
        return;
    }
    struct api_write w;
    rc = api_records_write_begin(db, c, u, NULL, &w, &err);
    if (rc < 0)
        return;
    rc = fn(w.conn->store, id, 0, &err);
    if (rc == 0)
        rc = campaign_get(w.conn->store, id, &out, &err);
    rc = api_db_committed(rc, api_db_write_end(db, &w), &err);
    if (rc < 0) {
        json_decref(out);
        reply_error(c, rc, &err);
        return;
    }
    api_reply_json(&c->resp, 200, out);
}
