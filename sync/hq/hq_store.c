/*
 * The HQ store's backend chosen by its spec (hq_store.h): a PostgreSQL
 * connection string (postgresql://... or a key=value conninfo) opens the
 * PostgreSQL backend (hq_store_pg.c), anything else is the SQLite file's
 * path (hq_store_sqlite.c). What both backends share: closing a handle,
 * a receipt status's name.
 */
#include "hq_store.h"

#include <string.h>

int hq_store_is_pg(const char *spec)
{
    if (!spec)
        return 0;
    if (!strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11))
        return 1;
    /* a key=value conninfo starts with a key: "host=... dbname=..." */
    size_t k = strspn(spec, "abcdefghijklmnopqrstuvwxyz_");
    return k > 0 && spec[k] == '=';
}

int hq_store_open(const char *spec, struct hq_store *out, struct op_error *err)
{
    if (hq_store_is_pg(spec))
        return hq_store_pg_open(spec, out, err);
    return hq_store_sqlite_open(spec, out, err);
}

const char *hq_receipt_status_name(enum hq_receipt_status s)
{
    return s == HQ_RECEIPT_APPLIED ? "applied" : "rejected";
}

void hq_store_close(struct hq_store *st)
{
    if (!st || !st->ops)
        return;
    st->ops->close(st->impl);
    st->ops = NULL;
    st->impl = NULL;
}
