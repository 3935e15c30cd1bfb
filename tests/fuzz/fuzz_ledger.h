/*
 * The node the ledger targets (fuzz_receipt.c, fuzz_mailbox.c) feed HQ's
 * answers to: a database initialized for EU-DE in the scratch directory,
 * two contacts cut into segment 1 in the spool, credentials with a fixed
 * hq_key, and a ledger on a fixed clock. fzl_fresh() builds it again from
 * nothing, which a target does after an input that changed it, so every
 * input meets the same node. The policy is the region's profile from the
 * source tree (or policy-override.yaml beside the database, once a
 * mailbox message put one there), never $OUTPOST_POLICY.
 */
#ifndef OUTPOST_FUZZ_LEDGER_H
#define OUTPOST_FUZZ_LEDGER_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db.h"
#include "fuzz_util.h"
#include "store.h"
#include "sync_ledger.h"
#include "sync_mac.h"

static char fzl_db[400], fzl_spool[400], fzl_override[400];
static struct node_credentials fzl_cred;
static struct sync_ledger *fzl;
static struct sync_segment fzl_seg; /* segment 1, as the ledger recorded it */

static inline int64_t fzl_clock(void *ctx)
{
    return 1795000000000; /* 2026-11-18, ms */
}

static inline void fzl_die(const char *what, const struct op_error *err)
{
    fprintf(stderr, "fuzz ledger fixture: %s: %s\n", what, err ? err->msg : "");
    abort();
}

static inline void fzl_fresh(void)
{
    sync_ledger_close(fzl);
    fzl = NULL;
    char p[500];
    fuzz_empty_dir(fzl_spool);
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", fzl_db, suffixes[i]);
        (void)unlink(p);
    }
    (void)unlink(fzl_override);

    struct op_error err;
    op_error_clear(&err);
    struct store *st = NULL;
    if (store_open(fzl_db, DB_OPEN_CREATE, &st, &err) < 0 || store_init_node(st, "EU-DE", &err) < 0)
        fzl_die("store", &err);
    const char *names[] = {"Ada", "Bea"};
    for (size_t i = 0; i < 2; i++) {
        json_t *in = json_pack("{ss}", "given_name", names[i]);
        if (store_create(st, &entity_contact, in, STORE_SKIP_DUP_CHECK, NULL, &err) < 0)
            fzl_die("create", &err);
        json_decref(in);
    }
    store_close(st);
    struct sync_ledger_options o = {
        .db_path = fzl_db, .spool_dir = fzl_spool, .cred = &fzl_cred, .now_ms = fzl_clock};
    if (sync_ledger_open(&o, &fzl, &err) < 0)
        fzl_die("sync_ledger_open", &err);
    int made = 0;
    if (sync_ledger_make_segment(fzl, &made, &fzl_seg, &err) < 0 || !made)
        fzl_die("make_segment", &err);
    struct sync_ledger_news news;
    sync_ledger_take_news(fzl, &news);
}

static inline void fzl_setup(void)
{
    unsetenv("OUTPOST_POLICY");
    const char *dir = fuzz_tmpdir();
    snprintf(fzl_db, sizeof fzl_db, "%s/node.db", dir);
    snprintf(fzl_spool, sizeof fzl_spool, "%s/spool", dir);
    snprintf(fzl_override, sizeof fzl_override, "%s/policy-override.yaml", dir);
    snprintf(fzl_cred.node_id, sizeof fzl_cred.node_id, "fuzz-node-1");
    snprintf(fzl_cred.region, sizeof fzl_cred.region, "EU-DE");
    for (int i = 0; i < 32; i++)
        fzl_cred.hq_key[i] = (unsigned char)(i * 7 + 1);
    fzl_fresh();
}

/* What a refused answer must leave as it was. */
struct fzl_view {
    struct sync_status st;
    uint64_t mailbox_after;
    int spool_file;
    int override_file;
};

static inline int fzl_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static inline void fzl_look(struct fzl_view *v)
{
    struct op_error err;
    memset(v, 0, sizeof *v);
    if (sync_ledger_status(fzl, &v->st, &err) < 0 ||
        sync_ledger_mailbox_after(fzl, &v->mailbox_after, &err) < 0)
        fzl_die("status", &err);
    v->spool_file = fzl_exists(fzl_seg.path);
    v->override_file = fzl_exists(fzl_override);
}

static inline int fzl_same(const struct fzl_view *a, const struct fzl_view *b)
{
    return a->st.outbox_depth == b->st.outbox_depth && a->st.acked_urgent == b->st.acked_urgent &&
           a->st.acked_ordinary == b->st.acked_ordinary &&
           a->st.segments_acked == b->st.segments_acked &&
           a->st.segments_rejected == b->st.segments_rejected &&
           a->st.spool_segments == b->st.spool_segments && a->st.spool_bytes == b->st.spool_bytes &&
           a->st.next_segment == b->st.next_segment && a->st.last_sync_ms == b->st.last_sync_ms &&
           !strcmp(a->st.blocked, b->st.blocked) && a->mailbox_after == b->mailbox_after &&
           a->spool_file == b->spool_file && a->override_file == b->override_file;
}

/* A JSON object's member as a uint64 the way the ledger reads numbers (a
 * JSON integer >= 0); -1 otherwise. */
static inline int fzl_u64(json_t *o, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

#endif
