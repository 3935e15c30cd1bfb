/*
 * A node for the sync ledger's unit tests (test_ledger_*.c): a database
 * initialized for EU-DE in a temporary directory, a spool beside it, test
 * credentials, and a ledger on a clock the test moves. snapshot() prints
 * every table the ledger writes and the spool's files, so a test can show
 * that a refused call changed nothing (fx_check_unchanged) and an accepted
 * one only what it should.
 */
#ifndef OUTPOST_TEST_LEDGER_FIXTURE_H
#define OUTPOST_TEST_LEDGER_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_fixture.h"
#include "sync_ledger.h"
#include "sync_mac.h"

static char fx_spool[FX_PATH_MAX];
static struct node_credentials fx_cred;
static struct store *fx_st;
static int64_t fx_now = 1795000000000; /* 2026-11-18, ms */

static inline int64_t fx_ledger_clock(void *ctx)
{
    (void)ctx;
    return fx_now;
}

static inline void fx_setup(void)
{
    fx_tmpdir("ledger-unit");
    fx_policy_env("EU-DE");
    fx_cred_init(&fx_cred, "test-node-1", "EU-DE", 7, 1);
}

static inline int fx_teardown(void)
{
    store_close(fx_st);
    fx_st = NULL;
    return fx_finish();
}

/* A new database `name` (and spool) in the test directory, kept open in fx_st. */
static inline void fx_fresh(const char *name)
{
    fx_node(name, "EU-DE", fx_db, fx_spool, &fx_st);
}

/* A ledger on the test database cutting segments of about seg_bytes, its
 * spool capped at spool_max bytes (0 for either: the default). */
static inline struct sync_ledger *fx_open_capped(uint64_t seg_bytes, uint64_t spool_max)
{
    struct sync_ledger_options o = {.db_path = fx_db,
                                    .spool_dir = fx_spool,
                                    .cred = &fx_cred,
                                    .segment_bytes = seg_bytes,
                                    .spool_max_bytes = spool_max,
                                    .now_ms = fx_ledger_clock};
    struct sync_ledger *l = NULL;
    struct op_error err;
    if (sync_ledger_open(&o, &l, &err) < 0)
        fx_die("sync_ledger_open", &err);
    return l;
}

static inline struct sync_ledger *fx_open(uint64_t seg_bytes)
{
    return fx_open_capped(seg_bytes, 0);
}

/* A receipt as HQ would send it for segment `no` up to (tu, to), with
 * `reason` when the status is "rejected"; mac_ok = 0 forges the MAC. The
 * caller frees it. */
static inline char *fx_receipt(const char *node, uint64_t no, const char *status,
                               const char *reason, uint64_t tu, uint64_t to, int mac_ok)
{
    char mac[SYNC_MAC_HEX];
    if (sync_receipt_mac(fx_cred.hq_key, node, no, status, tu, to, mac) < 0)
        fx_die("sync_receipt_mac", NULL);
    if (!mac_ok)
        mac[0] = mac[0] == '0' ? '1' : '0';
    json_t *j =
        json_pack("{sssIsss{sIsI}sIsIsIssssss}", "node", node, "segment", (json_int_t)no, "status",
                  status, "to", "urgent", (json_int_t)tu, "ordinary", (json_int_t)to, "records",
                  (json_int_t)1, "applied", (json_int_t)1, "set_aside", (json_int_t)0, "reason",
                  !strcmp(status, "rejected") ? reason : "", "received_at",
                  "2026-11-24T18:00:00.000Z", "mac", mac);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* A new contact; the caller frees its id. */
static inline char *fx_contact(const char *name)
{
    return fx_create(fx_st, &entity_contact, json_pack("{ss}", "given_name", name));
}

/* Marks contact `id` (at version 1) restricted, as an officer would. */
static inline void fx_restrict(const char *id)
{
    json_t *ch = json_pack("{sb}", "restricted", 1);
    json_t *out = NULL;
    struct op_error err;
    if (store_update(fx_st, &entity_contact, id, 1, ch, 0, &out, &err) < 0)
        fx_die("restrict", &err);
    json_decref(ch);
    json_decref(out);
}

static inline struct sync_segment fx_segment(struct sync_ledger *l)
{
    struct sync_segment sg;
    struct op_error err;
    int made = 0;
    if (sync_ledger_make_segment(l, &made, &sg, &err) < 0 || !made)
        fx_die("make_segment", &err);
    return sg;
}

/* Appends `sql`'s rows to out, each column as text. */
static inline void fx_dump(const char *sql, char *out, size_t cap)
{
    sqlite3 *db = store_db(fx_st);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fx_die(sqlite3_errmsg(db), NULL);
    size_t n = strlen(out);
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "[%s]\n", sql);
    while (sqlite3_step(q) == SQLITE_ROW && n < cap) {
        for (int c = 0; c < sqlite3_column_count(q) && n < cap; c++) {
            const unsigned char *t = sqlite3_column_text(q, c);
            n += (size_t)snprintf(out + n, cap - n, "%s|", t ? (const char *)t : "NULL");
        }
        if (n < cap)
            n += (size_t)snprintf(out + n, cap - n, "\n");
    }
    sqlite3_finalize(q);
}

/* Every table the ledger writes, and the names of the spool's files. */
static inline char *fx_snapshot(void)
{
    size_t cap = 1 << 20;
    char *out = calloc(1, cap);
    if (!out)
        fx_die("out of memory", NULL);
    fx_dump("SELECT seq, op, priority FROM outbox ORDER BY seq", out, cap);
    fx_dump("SELECT * FROM sync_state", out, cap);
    fx_dump("SELECT * FROM sync_segments ORDER BY no", out, cap);
    fx_dump("SELECT * FROM spool_voided ORDER BY no", out, cap);
    fx_dump("SELECT entity, record_id, version, state, hex(hash), fields FROM egress_held "
            "ORDER BY entity, record_id",
            out, cap);
    fx_dump("SELECT segment_no, entity, record_id, version, state, hex(hash), fields "
            "FROM egress_flight ORDER BY segment_no, entity, record_id",
            out, cap);
    fx_dump("SELECT * FROM sync_errors ORDER BY kind", out, cap);
    fx_dump("SELECT * FROM mailbox ORDER BY seq", out, cap);
    DIR *d = opendir(fx_spool);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(out);
            if (e->d_name[0] != '.')
                snprintf(out + n, cap - n, "file %s\n", e->d_name);
        }
        closedir(d);
    }
    return out;
}

/* Checks that nothing fx_snapshot() shows has changed since `before` (an
 * earlier fx_snapshot(), freed here). */
static inline void fx_check_unchanged(char *before)
{
    char *after = fx_snapshot();
    CHECK_STR(after, before);
    free(before);
    free(after);
}

#endif
