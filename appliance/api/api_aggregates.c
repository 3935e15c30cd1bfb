/*
 * The aggregate handler; see api_aggregates.h. The computation, which
 * reads a whole table, runs on a read connection under a private copy of
 * the policy in force (loaded again from its file, the same bytes by its
 * hash); only keeping the answer, spending the privacy budget and the
 * egress ledger take the writer, for a few small writes. So API writes
 * never wait for an aggregate to be computed.
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

/* A private copy of the policy in force: its file loaded again, checked
 * to be the same bytes by its hash. NULL (no policy set) is left to
 * aggregate_compute to refuse. -EAGAIN when the file changed since. */
static int own_policy(struct api_db *db, struct policy **out, struct op_error *err)
{
    char path[sizeof((struct policy *)0)->path], region[sizeof((struct policy *)0)->region];
    char hash[POLICY_HASH_HEX];
    const struct policy *held = api_db_policy_hold(db);
    int have = held != NULL;
    if (held) {
        memcpy(path, held->path, sizeof path);
        memcpy(region, held->region, sizeof region);
        memcpy(hash, held->hash, sizeof hash);
    }
    api_db_policy_release(db);
    *out = NULL;
    if (!have)
        return 0;
    struct op_error e2;
    op_error_clear(&e2);
    int rc = policy_load_file_for(path, region, out, &e2);
    if (rc == 0 && strcmp((*out)->hash, hash)) {
        policy_free(*out);
        *out = NULL;
        rc = -EAGAIN;
    }
    if (rc < 0)
        return op_error_set(err, -EAGAIN, NULL,
                            "the region policy file changed and is not in force yet; ask again");
    return 0;
}

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
    struct policy *mine = NULL;
    int rc = own_policy(db, &mine, &err);
    int kept = 0;
    if (rc == 0) {
        struct api_conn *rd = api_db_reader(db);
        if (!rd) {
            rc = op_error_set(&err, -EBUSY, NULL, "every database reader is busy; ask again");
        } else {
            rc = aggregate_compute(rd->store, mine, c->route.id, params, (size_t)n, now, &ans,
                                   &kept, &err);
            api_db_reader_release(db, rd);
        }
    }
    if (rc == 0) {
        /* the writer, briefly: keep the answer (and spend), check it as a
         * segment's answer is checked and as HQ checks it, record it */
        const struct policy *p;
        struct api_conn *w = api_db_exclusive(db, &p);
        if (!p || strcmp(p->hash, mine->hash))
            rc = op_error_set(&err, -EAGAIN, NULL,
                              "the region policy changed while the aggregate was computed; ask "
                              "again");
        else if (!kept)
            rc = aggregate_keep(w->store, p, &ans, now, &err);
        if (rc == 0 && egress_verify_aggregate(p, ans, &err) < 0)
            rc = -EIO;
        if (rc == 0)
            rc = aggregate_record_egress(w->store, "api", u->name, -1, ans, now, &err);
        api_db_exclusive_end(db);
    }
    policy_free(mine);
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
    case -EDQUOT: /* the privacy budget of the period is spent */
        api_reply_problem(&c->resp, 429, err.msg, NULL);
        break;
    case -EAGAIN:
    case -EBUSY:
        api_reply_problem(&c->resp, 503, err.msg, NULL);
        break;
    default:
        api_reply_problem(&c->resp, 500, "the aggregate could not be computed or recorded", NULL);
        break;
    }
    json_decref(ans);
}
