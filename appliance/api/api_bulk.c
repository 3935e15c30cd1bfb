/*
 * Bulk create; see api_bulk.h. The shape of every item is checked before
 * the writer is taken; then each item goes through dup_choice_create (the
 * store's create and the import's duplicate choice) under one savepoint in
 * the writer's batch, which is rolled back when an item was bad or the
 * request is a dry run.
 */
#include "api_bulk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_idempotency.h"
#include "api_queries.h"
#include "api_query.h"
#include "api_records.h"
#include "api_route.h"
#include "dup_choice.h"
#include "http_server.h"
#include "problem.h"
#include "store.h"

#define BULK_PATH "contacts/bulk" /* what an idempotency key of this route is checked against */

struct bulk {
    json_t *errors; /* [{"pointer", "detail"}] of the bad items */
    int status;     /* of the first bad item */
    char first[440];
    size_t nbad;
};

/* The JSON pointer of field (NULL: the item itself) in item i. */
static void item_pointer(size_t i, const char *field, char *out, size_t cap)
{
    if (!field || !*field)
        snprintf(out, cap, "/%zu", i);
    else if (!strncmp(field, "custom.", 7))
        snprintf(out, cap, "/%zu/custom/%s", i, field + 7);
    else
        snprintf(out, cap, "/%zu/%s", i, field);
}

/* Notes a bad item: status as a single create would answer it. */
static void bad_item(struct bulk *b, size_t i, int status, const char *field, const char *msg)
{
    char ptr[120], detail[440], safe[400];
    item_pointer(i, field, ptr, sizeof ptr);
    snprintf(detail, sizeof detail, "item %zu: %s", i,
             api_reply_client_detail(status, msg, safe, sizeof safe));
    if (!b->nbad++) {
        b->status = status;
        snprintf(b->first, sizeof b->first, "%s", detail);
    }
    if (json_array_size(b->errors) < API_BULK_MAX_ERRORS)
        json_array_append_new(b->errors, json_pack("{s:s, s:s}", "pointer", ptr, "detail", detail));
}

/* The status a single create answers for a store error that is the
 * item's fault, or 0 for one that is not (the disk, the database). */
static int item_status(int rc)
{
    switch (rc) {
    case -EINVAL:
        return 422;
    case -EPERM:
        return 403;
    case -EEXIST:
    case STORE_EDUP:
        return 409;
    default:
        return 0;
    }
}

static void answer_bad(struct api_call *c, struct bulk *b)
{
    char detail[600];
    if (b->nbad == 1)
        snprintf(detail, sizeof detail, "%s; nothing was written", b->first);
    else
        snprintf(detail, sizeof detail,
                 "%s; %zu items were refused (see errors); nothing was written", b->first, b->nbad);
    json_t *p = problem_new(b->status, http_status_text(b->status), detail);
    if (p)
        json_object_set(p, "errors", b->errors);
    api_reply_json(&c->resp, b->status, p);
    c->resp.type = PROBLEM_CONTENT_TYPE;
}

/* The item's expected version for an update: 0 (none given), the number,
 * or -1 for a member that is not a whole number of 1 or more. The member
 * is taken out of the item, which the store would refuse with it. */
static int64_t take_version(json_t *item)
{
    json_t *v = json_object_get(item, "version");
    if (!v || json_is_null(v)) {
        json_object_del(item, "version");
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return -1;
    int64_t n = json_integer_value(v);
    json_object_del(item, "version");
    return n;
}

struct counts {
    size_t created, updated, skipped, refused, conflicts, duplicates, warnings;
};

/* One item's line of the answer. */
static json_t *item_result(size_t i, const struct dup_outcome *o, json_t *rec, int dry,
                           struct counts *n)
{
    static const char *const names[] = {
        [DUP_ACTION_CREATED] = "created",   [DUP_ACTION_SKIPPED] = "skipped",
        [DUP_ACTION_UPDATED] = "updated",   [DUP_ACTION_NEW] = "created",
        [DUP_ACTION_CONFLICT] = "conflict", [DUP_ACTION_REFUSED] = "refused",
    };
    json_t *r = json_pack("{s:I, s:s}", "index", (json_int_t)i, "result", names[o->action]);
    if (!r)
        return NULL;
    if (rec && !dry) {
        json_object_set(r, "id", json_object_get(rec, "id"));
        json_object_set(r, "version", json_object_get(rec, "version"));
    } else if (o->action == DUP_ACTION_UPDATED && o->existing_id[0]) {
        json_object_set_new(r, "id", json_string(o->existing_id));
    }
    if (o->existing_id[0])
        json_object_set_new(r, "existing_id", json_string(o->existing_id));
    switch (o->action) {
    case DUP_ACTION_CREATED:
        n->created++;
        if (o->reason[0]) {
            n->warnings++;
            json_object_set_new(r, "warning", json_string(o->reason));
        }
        return r;
    case DUP_ACTION_NEW:
        n->created++;
        break;
    case DUP_ACTION_SKIPPED:
        n->skipped++;
        break;
    case DUP_ACTION_UPDATED:
        n->updated++;
        break;
    case DUP_ACTION_CONFLICT:
        n->conflicts++;
        json_object_set_new(r, "detail", json_string(o->detail));
        break;
    case DUP_ACTION_REFUSED:
        n->refused++;
        break;
    }
    n->duplicates++;
    json_object_set_new(r, "rule", json_string(o->reason));
    return r;
}

static int parse_params(struct api_call *c, enum dup_choice *choice, int *dry)
{
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const char *v = ps[i].value;
        if (!strcmp(ps[i].name, "on_duplicate")) {
            if (dup_choice_parse(v, choice) < 0) {
                api_reply_problem(&c->resp, 400,
                                  "on_duplicate: expected refuse, skip, update or new", NULL);
                return -EINVAL;
            }
        } else if (!strcmp(ps[i].name, "dry_run")) {
            if (!strcmp(v, "true") || !strcmp(v, "1"))
                *dry = 1;
            else if (!strcmp(v, "false") || !strcmp(v, "0"))
                *dry = 0;
            else {
                api_reply_problem(&c->resp, 400, "dry_run: expected true or false", NULL);
                return -EINVAL;
            }
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown query parameter '%.48s' (on_duplicate, dry_run)",
                     ps[i].name);
            api_reply_problem(&c->resp, 400, msg, NULL);
            return -EINVAL;
        }
    }
    return 0;
}

/* The items' shape, before anything is written: objects, a version that is
 * a whole number. versions[i] gets item i's expected version. */
static int check_shape(json_t *items, int64_t *versions, struct bulk *b)
{
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item)) {
            bad_item(b, i, 422, NULL, "a contact must be a JSON object");
            continue;
        }
        versions[i] = take_version(item);
        if (versions[i] < 0)
            bad_item(b, i, 422, "version",
                     "version: the existing contact's expected version, a whole number of 1 "
                     "or more");
    }
    return b->nbad ? -EINVAL : 0;
}

void api_bulk_create(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    const struct entity_def *e = c->route.e;
    if (c->req.has_idempotency_key && api_idempotency_key_check(c) < 0)
        return;
    enum dup_choice choice = DUP_CHOICE_REFUSE;
    int dry = 0;
    if (parse_params(c, &choice, &dry) < 0)
        return;
    json_t *items = api_request_json_array(&c->req, &c->resp);
    if (!items)
        return;
    size_t n = json_array_size(items);
    if (n == 0 || n > API_BULK_MAX_ITEMS) {
        char msg[160];
        snprintf(msg, sizeof msg, "send 1 to %d contacts in one bulk create, not %zu%s",
                 API_BULK_MAX_ITEMS, n, n ? "; send them in parts" : "");
        api_reply_problem(&c->resp, n ? 413 : 422, msg, NULL);
        json_decref(items);
        return;
    }
    char sha[65];
    struct bulk b = {.errors = json_array()};
    int64_t *versions = calloc(n, sizeof *versions);
    json_t *results = json_array();
    if (!b.errors || !versions || !results ||
        (c->req.has_idempotency_key && api_idempotency_fingerprint(&c->req, sha) < 0)) {
        api_reply_problem(&c->resp, 500, "out of memory", NULL);
        goto done;
    }
    if (check_shape(items, versions, &b) < 0) {
        answer_bad(c, &b);
        goto done;
    }

    struct op_error err;
    struct api_write w;
    if (api_records_write_begin(db, c, u, NULL, &w, &err) < 0)
        goto done;
    struct store *s = w.conn->store;
    struct sql_cache q;
    struct api_idempotency_earlier was = {0};
    struct counts cnt = {0};
    int fatal = 0, mismatch = 0;
    char *answer = NULL;
    int rc = store_queries_bind(s, &q, &api_queries, &err);
    if (rc < 0) {
        fatal = rc;
        goto commit;
    }
    if (c->req.has_idempotency_key && !dry) {
        rc = api_idempotency_find(&q, c, u->name, BULK_PATH, sha, &was, &err);
        if (rc < 0)
            fatal = rc;
        else if (was.found && !was.same)
            mismatch = 1;
        if (rc < 0 || was.found)
            goto close;
    }
    rc = sql_exec(&q, API_Q_BULK_SAVEPOINT, &err);
    if (rc < 0) {
        fatal = rc;
        goto close;
    }
    for (size_t i = 0; i < n && !fatal; i++) {
        json_t *item = json_array_get(items, i), *rec = NULL;
        struct dup_outcome o;
        struct op_error ierr;
        op_error_clear(&ierr);
        rc = dup_choice_create(s, e, item, 0, choice, versions[i], &o, &rec, &ierr);
        if (rc < 0) {
            int st = item_status(rc);
            if (!st || !store_in_transaction(s)) {
                fatal = rc;
                err = ierr;
            } else {
                bad_item(&b, i, st, ierr.field, ierr.msg[0] ? ierr.msg : strerror(-rc));
                if (b.nbad >= API_BULK_MAX_ERRORS)
                    break;
            }
            continue;
        }
        json_t *r = item_result(i, &o, rec, dry, &cnt);
        json_decref(rec);
        if (!r || json_array_append_new(results, r) < 0)
            fatal = op_error_set(&err, -ENOMEM, NULL, "out of memory");
    }
    if (!fatal && !b.nbad) {
        json_t *a = json_pack(
            "{s:b, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:O}", "dry_run", dry,
            "on_duplicate", dup_choice_name(choice), "summary", "received", (json_int_t)n,
            "created", (json_int_t)cnt.created, "updated", (json_int_t)cnt.updated, "skipped",
            (json_int_t)cnt.skipped, "refused", (json_int_t)cnt.refused, "conflicts",
            (json_int_t)cnt.conflicts, "duplicates", (json_int_t)cnt.duplicates, "warnings",
            (json_int_t)cnt.warnings, "items", results);
        answer = a ? json_dumps(a, JSON_COMPACT) : NULL;
        json_decref(a);
        if (!answer)
            fatal = op_error_set(&err, -ENOMEM, NULL, "out of memory");
    }
    if (!fatal && !b.nbad && !dry && c->req.has_idempotency_key) {
        rc = api_idempotency_remember(&q, c, u->name, BULK_PATH, sha, 200, e->name, "", answer,
                                      &err);
        if (rc < 0)
            fatal = rc;
    }
    if (fatal || b.nbad || dry)
        (void)sql_exec(&q, API_Q_BULK_ROLLBACK_TO, NULL);
    (void)sql_exec(&q, API_Q_BULK_RELEASE, NULL);
close:
    sql_cache_close(&q);
commit:
    rc = api_db_committed(fatal, api_db_write_end(db, &w), &err);
    if (rc < 0) {
        api_reply_store_error(&c->resp, rc, &err);
    } else if (mismatch) {
        api_reply_problem(&c->resp, 422,
                          "Idempotency-Key: this key was already used for a different request "
                          "(another collection or body); make a new key for a new request",
                          NULL);
    } else if (was.found) {
        c->resp.status = was.status ? was.status : 200;
        c->resp.body = was.answer;
        c->resp.body_len = was.answer ? strlen(was.answer) : 0;
        c->resp.type = "application/json";
        c->resp.replayed = 1;
        was.answer = NULL;
    } else if (b.nbad) {
        answer_bad(c, &b);
    } else {
        c->resp.status = 200;
        free(c->resp.body);
        c->resp.body = answer;
        c->resp.body_len = strlen(answer);
        c->resp.type = "application/json";
        answer = NULL;
    }
    free(answer);
    free(was.answer);
done:
    free(versions);
    json_decref(results);
    json_decref(b.errors);
    json_decref(items);
}
