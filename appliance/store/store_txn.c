/*
 * A store module's unit of work; see store_txn.h.
 */
#include "store_txn.h"

#include "hlc.h"
#include "store_queries.h"

int store_txn_begin(struct store *s, struct sql_cache *c, int *own, struct op_error *err)
{
    *own = 0;
    int rc = store_queries_bind(s, c, &store_queries, err);
    if (rc < 0)
        return rc;
    *own = !store_in_transaction(s);
    rc = *own ? store_begin(s, err) : 0;
    if (rc < 0) {
        sql_cache_close(c);
        *own = 0;
    }
    return rc;
}

int store_txn_end(struct store *s, struct sql_cache *c, int own, int rc, struct op_error *err)
{
    if (own) {
        if (rc < 0) {
            store_rollback(s);
        } else {
            int cr = store_commit(s, err);
            if (cr < 0)
                rc = cr;
        }
    }
    sql_cache_close(c);
    return rc;
}

int64_t store_txn_now(int64_t now_ms)
{
    return now_ms ? now_ms : (int64_t)hlc_wall_ms(NULL);
}
