/*
 * What the PostgreSQL backend of the HQ store (hq_store_pg.c) offers
 * beyond the hq_store interface: the analysts' read-only access in SQL
 * (docs/HQ.md, "Analysts in SQL"). Opening the backend is hq_store_open
 * or hq_store_pg_open (hq_store.h).
 */
#ifndef OUTPOST_HQ_STORE_PG_H
#define OUTPOST_HQ_STORE_PG_H

#include "op_error.h"

/* Makes `role` a login role of the PostgreSQL store at conninfo that
 * reads the analytics views and nothing else: the group role
 * outpost_analyst is created if missing and granted the analytics
 * schema's views; role (a-z, 0-9, _; up to 63) gets LOGIN, the password's
 * SCRAM verifier (hashed here, never sent in clear) and membership.
 * Needs a connection allowed to create roles. 0, -EINVAL for a bad name,
 * -EEXIST when the role exists, or a negative errno; err says what. */
int hq_store_pg_grant_analyst(const char *conninfo, const char *role, const char *password,
                              struct op_error *err);

#endif
