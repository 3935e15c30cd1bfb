/*
 * The API's connections and group commit; see api_db.h. The readers are
 * a fixed pool guarded by one mutex; the writer, the open batch and the
 * policy by another.
 */
#include "api_db.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

struct api_db {
    char path[1024];
    struct api_conn writer;
    pthread_mutex_t writer_lock;
    /* Group commit (see api_db_write_begin): the open batch transaction,
     * its members waiting for the commit, and how many threads are queued
     * for the writer right now. */
    pthread_cond_t commit_cv;
    int batch_open;
    struct api_write *members[API_DB_BATCH_MAX];
    unsigned nmembers;
    unsigned write_waiters; /* atomic */
    uint64_t batches, batched_writes;
    struct api_conn *readers;
    unsigned nreaders;
    pthread_mutex_t readers_lock;
    /* The region policy the writer obeys; swapped under writer_lock. */
    struct policy *policy;
};

static int conn_open(struct api_db *db, struct api_conn *c, unsigned flags, struct op_error *err)
{
    int rc = store_open(db->path, flags, &c->store, err);
    if (rc < 0)
        return rc;
    if (!store_node_id(c->store)) {
        store_close(c->store);
        c->store = NULL;
        return op_error_set(err, -EINVAL, NULL,
                            "%s is not initialized as a node; run 'outpost init --db %s "
                            "--region CODE'",
                            db->path, db->path);
    }
    rc = auth_new(c->store, &c->auth, err);
    if (rc < 0) {
        store_close(c->store);
        c->store = NULL;
    }
    return rc;
}

static void conn_close(struct api_conn *c)
{
    auth_free(c->auth);
    store_close(c->store);
}

int api_db_open(const char *path, unsigned readers, struct api_db **out, struct op_error *err)
{
    struct api_db *db = calloc(1, sizeof *db);
    if (!db)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    snprintf(db->path, sizeof db->path, "%s", path);
    pthread_mutex_init(&db->writer_lock, NULL);
    pthread_cond_init(&db->commit_cv, NULL);
    pthread_mutex_init(&db->readers_lock, NULL);
    int rc = conn_open(db, &db->writer, 0, err);
    if (rc < 0)
        goto fail;
    db->nreaders = readers ? readers : 4;
    db->readers = calloc(db->nreaders, sizeof *db->readers);
    if (!db->readers) {
        rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < db->nreaders; i++) {
        rc = conn_open(db, &db->readers[i], DB_OPEN_READONLY, err);
        if (rc < 0)
            goto fail;
    }
    *out = db;
    return 0;
fail:
    api_db_close(db);
    return rc;
}

void api_db_close(struct api_db *db)
{
    if (!db)
        return;
    for (unsigned i = 0; i < db->nreaders && db->readers; i++)
        conn_close(&db->readers[i]);
    free(db->readers);
    conn_close(&db->writer);
    policy_free(db->policy);
    pthread_mutex_destroy(&db->writer_lock);
    pthread_cond_destroy(&db->commit_cv);
    pthread_mutex_destroy(&db->readers_lock);
    free(db);
}

const char *api_db_region(const struct api_db *db)
{
    return store_region(db->writer.store);
}

struct api_conn *api_db_reader(struct api_db *db)
{
    pthread_mutex_lock(&db->readers_lock);
    struct api_conn *c = NULL;
    for (unsigned i = 0; i < db->nreaders && !c; i++)
        if (!db->readers[i].busy)
            c = &db->readers[i];
    if (c)
        c->busy = 1;
    pthread_mutex_unlock(&db->readers_lock);
    return c;
}

void api_db_reader_release(struct api_db *db, struct api_conn *c)
{
    pthread_mutex_lock(&db->readers_lock);
    c->busy = 0;
    pthread_mutex_unlock(&db->readers_lock);
}

/*
 * Group commit. Every write commits with an fsync (synchronous=FULL), and
 * the disk's fsync rate, not SQLite, would cap writes per second. So
 * writes that arrive while others are running share one transaction: a
 * writer takes the lock, opens the batch transaction if none is open, runs
 * its change and then, if more writers are queued behind it, leaves the
 * transaction open and waits; the last writer in the queue (or the
 * API_DB_BATCH_MAXth) commits for everyone and wakes them. Nobody answers
 * before the commit that holds their change succeeded, so "acknowledged"
 * still means "on disk". A write refused before it changed anything
 * (validation, duplicate, stale version) leaves the batch intact; one that
 * fails halfway (disk full) fails the whole batch, and every member
 * reports the error.
 */
int api_db_write_begin(struct api_db *db, const char *actor, const char *ip, const char *viewer,
                       struct api_write *w, struct op_error *err)
{
    __atomic_add_fetch(&db->write_waiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&db->writer_lock);
    __atomic_sub_fetch(&db->write_waiters, 1, __ATOMIC_SEQ_CST);
    if (!db->batch_open) {
        int rc = store_begin(db->writer.store, err);
        if (rc < 0) {
            pthread_mutex_unlock(&db->writer_lock);
            return rc;
        }
        db->batch_open = 1;
        db->nmembers = 0;
        db->batches++;
    }
    w->conn = &db->writer;
    w->policy = db->policy;
    w->done = 0;
    w->rc = 0;
    db->members[db->nmembers++] = w;
    db->batched_writes++;
    store_set_actor(db->writer.store, actor, ip);
    store_set_viewer(db->writer.store, viewer);
    return 0;
}

int api_db_write_end(struct api_db *db, struct api_write *w)
{
    store_set_viewer(db->writer.store, NULL);
    store_set_actor(db->writer.store, "system", NULL);
    if (__atomic_load_n(&db->write_waiters, __ATOMIC_SEQ_CST) == 0 ||
        db->nmembers == API_DB_BATCH_MAX) {
        struct op_error err;
        int rc = store_commit(db->writer.store, &err);
        for (unsigned i = 0; i < db->nmembers; i++) {
            db->members[i]->rc = rc;
            db->members[i]->done = 1;
        }
        db->nmembers = 0;
        db->batch_open = 0;
        pthread_cond_broadcast(&db->commit_cv);
    }
    while (!w->done)
        pthread_cond_wait(&db->commit_cv, &db->writer_lock);
    pthread_mutex_unlock(&db->writer_lock);
    return w->rc;
}

int api_db_committed(int rc, int commit_rc, struct op_error *err)
{
    if (rc < 0 || commit_rc == 0)
        return rc;
    if (commit_rc == -ENOSPC)
        return op_error_set(err, -ENOSPC, NULL, "the node's disk is full; nothing was written");
    return op_error_set(err, commit_rc, NULL, "the change could not be committed: %s",
                        strerror(-commit_rc));
}

const struct policy *api_db_policy_hold(struct api_db *db)
{
    pthread_mutex_lock(&db->writer_lock);
    return db->policy;
}

void api_db_policy_release(struct api_db *db)
{
    pthread_mutex_unlock(&db->writer_lock);
}

struct api_conn *api_db_exclusive(struct api_db *db, const struct policy **policy)
{
    pthread_mutex_lock(&db->writer_lock);
    while (db->batch_open)
        pthread_cond_wait(&db->commit_cv, &db->writer_lock);
    *policy = db->policy;
    return &db->writer;
}

void api_db_exclusive_end(struct api_db *db)
{
    pthread_mutex_unlock(&db->writer_lock);
}

void api_db_set_policy(struct api_db *db, struct policy *p)
{
    pthread_mutex_lock(&db->writer_lock);
    struct policy *old = db->policy;
    db->policy = p;
    store_set_policy(db->writer.store, p);
    pthread_mutex_unlock(&db->writer_lock);
    policy_free(old);
}

const char *api_db_policy_hash(const struct api_db *db)
{
    return db->policy ? db->policy->hash : "";
}
