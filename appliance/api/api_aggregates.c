/*
 * The aggregate handler; see api_aggregates.h. It takes the writer
 * exclusively (answers are kept and the ledger written there), so API
 * writes wait for the time one aggregate takes (docs/BENCHMARKS.md).
 */
#include "api_aggregates.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate.h"
#include "api_query.h"
#include "api_reply.h"
#include "egress.h"
#include "hlc.h"

void api_aggregates_get(struct api_db *db, struct api_call *c, const struct auth_user *u)
{
    if (u->role != AUTH_ROLE_HQ) {
        char msg[160];
        snprintf(msg, sizeof msg, "aggregates are for the hq role, not %s",
                 auth_role_name(u->role));
        api_reply_problem(&c->resp, 403, msg, NULL);
        return;
    }
    struct api_param ps[API_QUERY_PARAMS_MAX];
    int n = api_query_params(c, ps);
    if (n < 0)
        return;
    char kv[API_QUERY_PARAMS_MAX][sizeof ps[0].name + sizeof ps[0].value + 1];
    const char *params[API_QUERY_PARAMS_MAX];
    for (int i = 0; i < n; i++) {
        snprintf(kv[i], sizeof kv[i], "%.47s=%.511s", ps[i].name, ps[i].value);
        params[i] = kv[i];
    }
    struct op_error err;
    op_error_clear(&err);
    json_t *ans = NULL;
    uint64_t now = hlc_wall_ms(NULL);
    const struct policy *p;
    struct api_conn *w = api_db_exclusive(db, &p);
    int rc = aggregate_answer(w->store, p, c->route.id, params, (size_t)n, now, &ans, &err);
    /* the check a segment's answer passes, and HQ's: nothing else leaves */
    if (rc == 0 && egress_verify_aggregate(p, ans, &err) < 0)
        rc = -EIO;
    if (rc == 0)
        rc = aggregate_record_egress(w->store, "api", u->name, -1, ans, now, &err);
    api_db_exclusive_end(db);
    switch (rc) {
    case 0: {
        /* the bytes the ledger holds (aggregate_record_egress) */
        char *text = json_dumps(ans, AGGREGATE_JSON_FLAGS);
        json_decref(ans);
        if (!text) {
            api_reply_problem(&c->resp, 500, "out of memory", NULL);
            return;
        }
        free(c->resp.body);
        c->resp.status = 200;
        c->resp.body = text;
        c->resp.body_len = strlen(text);
        c->resp.type = "application/json";
        return;
    }
    case -ENOENT:
        api_reply_problem(&c->resp, 404, err.msg, NULL);
        break;
    case -EPERM:
        api_reply_problem(&c->resp, 403, err.msg, NULL);
        break;
    case -EINVAL:
        api_reply_problem(&c->resp, 400, err.msg, NULL);
        break;
    case -E2BIG:
        api_reply_problem(&c->resp, 422, err.msg, NULL);
        break;
    default:
        api_reply_problem(&c->resp, 500, "the aggregate could not be computed or recorded", NULL);
        break;
    }
    json_decref(ans);
}
