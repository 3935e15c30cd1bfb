/*
 * bench_verify: what an anti-entropy check of 100,000 records costs
 * (docs/BENCHMARKS.md, "Anti-entropy"): the digest exchange between a
 * node's range set and HQ's, with 0, 1 and 100 records drifted, in bytes
 * of request and answer bodies and round trips, and in CPU time of each
 * side (CLOCK_PROCESS_CPUTIME_ID around each side's calls; the process
 * is single-threaded). HQ's side is the real one: an SQLite HQ store
 * holding the projections (egress_project of KE contacts, as a node sends
 * them), read and hashed by hq_verify_answer (which builds HQ's set at
 * the first request of a check and keeps it for the next ones, as
 * outpost-hq does), and range_answer. The node's side hashes the same projections
 * (projection_hash) and walks (range_walk); drifted records are ones whose
 * projection changed at the node since HQ got it. Then, with --node, the
 * node's whole side from a real store: N contacts created in a KE node
 * database (their outbox rows dropped, as after a drained sync), and
 * sync_ledger_verify_set timed: reading, judging, projecting and hashing
 * every record.
 *
 * Tombstones: one record in ten (--tombstones PER_TEN, 0 to 9; default 1)
 * is erased: HQ holds an erase tombstone of it, the node the tombstone HQ
 * acknowledged, and both hash it as gone (request format 2); with --node,
 * the node's egress_held holds that many gone rows beside its contacts.
 *
 * Usage: bench_verify [--records N] [--dir DIR] [--node] [--tombstones PER_TEN]
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "egress.h"
#include "entity.h"
#include "hq_store.h"
#include "hq_verify.h"
#include "policy.h"
#include "projection_hash.h"
#include "range_digest.h"
#include "db.h"
#include "node_credentials.h"
#include "store.h"
#include "sync_ledger.h"

#include <sqlite3.h>

static const unsigned char pkey[32] = {0x5a, 0x01};
static const unsigned char tok[32] = {9}, hq_key[32] = {7};

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Contact i's projection (given_name suffixed with `tag`). */
static struct egress_record *project(const struct policy *p, unsigned i, const char *tag)
{
    char id[40], given[40], family[40], email[96], phone[24];
    uint32_t x = i * 2654435761u + 1;
    /* UUIDv7-like: time-ordered, so consecutive records share a prefix */
    snprintf(id, sizeof id, "0193%04x-%04x-7%03x-8%03x-%012x", i >> 16, i & 0xffff, i % 4096,
             rnd(&x) % 4096, rnd(&x));
    snprintf(given, sizeof given, "Given%u%s", rnd(&x) % 5000, tag);
    snprintf(family, sizeof family, "Family%u", rnd(&x) % 20000);
    snprintf(email, sizeof email, "%s.%s@example.org", given, family);
    snprintf(phone, sizeof phone, "+2547%08u", rnd(&x) % 100000000u);
    json_t *rec =
        json_pack("{s:s, s:i, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "version", 1,
                  "created_at", "2025-03-01T08:00:00.000Z", "updated_at",
                  "2025-03-02T09:30:00.000Z", "deleted", 0, "given_name", given, "family_name",
                  family, "email", email, "phone", phone, "country", "KE", "language", "sw");
    struct egress_record *r = NULL;
    struct op_error err;
    if (!rec || egress_project(p, pkey, &entity_contact, rec, &r, NULL, &err) < 0)
        r = NULL;
    json_decref(rec);
    return r;
}

/* The node's side from a store: N contacts (and n * per_ten / 10
 * acknowledged tombstones), then sync_ledger_verify_set. */
static int node_side(const char *dir, unsigned n, unsigned per_ten)
{
    char db[600], spool[600];
    snprintf(db, sizeof db, "%s/node.db", dir);
    snprintf(spool, sizeof spool, "%s/spool", dir);
    unlink(db);
    struct store *s = NULL;
    struct op_error err;
    if (store_open(db, DB_OPEN_CREATE, &s, &err) < 0 || store_init_node(s, "KE", &err) < 0 ||
        store_begin_bulk(s, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        char given[40], family[40], email[96], phone[24];
        uint32_t x = i * 2654435761u + 1;
        snprintf(given, sizeof given, "Given%u", rnd(&x) % 5000);
        snprintf(family, sizeof family, "Family%u", rnd(&x) % 20000);
        snprintf(email, sizeof email, "%s.%s.%u@example.org", given, family, i);
        snprintf(phone, sizeof phone, "+2547%08u", i);
        json_t *f = json_pack("{ss ss ss ss ss}", "given_name", given, "family_name", family,
                              "email", email, "phone", phone, "language", "sw");
        int rc = f ? store_create(s, &entity_contact, f, STORE_SKIP_DUP_CHECK, NULL, &err) : -1;
        json_decref(f);
        if (rc < 0) {
            fprintf(stderr, "bench_verify: contact %u: %s\n", i, err.msg);
            return 1;
        }
    }
    if (store_commit(s, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    /* as after a drained sync: nothing in flight */
    (void)sqlite3_exec(store_db(s), "DELETE FROM outbox", NULL, NULL, NULL);
    /* the tombstones HQ acknowledged (as applied receipts leave them) */
    sqlite3_stmt *ins = NULL;
    unsigned tombs = n / 10 * per_ten;
    (void)sqlite3_exec(store_db(s), "BEGIN", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(store_db(s),
                           "INSERT INTO egress_held (entity, record_id, version, state, hash) "
                           "VALUES ('contact', ?1, 2, 2, ?2)",
                           -1, &ins, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_verify: %s\n", sqlite3_errmsg(store_db(s)));
        return 1;
    }
    for (unsigned i = 0; i < tombs; i++) {
        char id[40];
        unsigned char h[PROJECTION_HASH_BYTES];
        snprintf(id, sizeof id, "01930000-%04x-7000-8000-%012x", i & 0xffff, i);
        (void)projection_hash("contact", PROJECTION_GONE, id, NULL, h);
        sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(ins, 2, h, sizeof h, SQLITE_TRANSIENT);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "bench_verify: %s\n", sqlite3_errmsg(store_db(s)));
            return 1;
        }
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    (void)sqlite3_exec(store_db(s), "COMMIT", NULL, NULL, NULL);
    store_close(s);
    struct node_credentials cred;
    if (node_credentials_generate("bench-node", "KE", "http://127.0.0.1:9", &cred, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    struct sync_ledger_options o = {.db_path = db, .spool_dir = spool, .cred = &cred};
    struct sync_ledger *l = NULL;
    if (sync_ledger_open(&o, &l, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    double t0 = cpu_ms();
    struct range_set *set = NULL;
    uint64_t in_flight = 0;
    if (sync_ledger_verify_set(l, &set, &in_flight, &err) < 0 || !set) {
        fprintf(stderr, "bench_verify: %s (in flight %llu)\n", err.msg,
                (unsigned long long)in_flight);
        return 1;
    }
    double t = cpu_ms() - t0;
    printf("node: the set of %zu entries (%u contacts, %u tombstones) from its store "
           "(sync_ledger_verify_set): %.0f ms CPU\n",
           range_set_count(set), n, tombs, t);
    range_set_free(set);
    sync_ledger_close(l);
    unlink(db);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned n = 100000, per_ten = 1;
    int node_too = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--records") && i + 1 < argc)
            n = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--node"))
            node_too = 1;
        else if (!strcmp(argv[i], "--tombstones") && i + 1 < argc &&
                 (per_ten = (unsigned)strtoul(argv[++i], NULL, 10)) <= 9)
            ;
        else {
            fprintf(stderr, "usage: bench_verify [--records N] [--dir DIR] [--node] "
                            "[--tombstones PER_TEN]\n");
            return 2;
        }
    }
    char tmpl[] = "/tmp/bench-verify-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    struct op_error err;
    char ppath[512], db[600];
    struct policy *ke = NULL;
    if (policy_find_file("KE", ppath, sizeof ppath, &err) < 0 ||
        policy_load_file(ppath, &ke, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    snprintf(db, sizeof db, "%s/hq.db", dir);
    unlink(db);
    struct hq_store st = {0};
    if (hq_store_sqlite_open(db, &st, &err) < 0 ||
        st.ops->node_add(st.impl, "bench-1", "KE", tok, hq_key, 1, &err) < 0 ||
        st.ops->begin(st.impl, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    /* HQ holds every record as the node sent it; the erased ones as
     * their tombstones (version 2, no data) */
    for (unsigned i = 0; i < n; i++) {
        struct egress_record *r = project(ke, i, "");
        enum hq_record_result res;
        int tomb = i % 10 >= 10 - per_ten;
        if (!r ||
            st.ops->record_apply(st.impl, "bench-1", "contact", egress_record_id(r), 1, "upsert",
                                 egress_record_json(r), egress_record_len(r), 1, &res, &err) < 0 ||
            (tomb && st.ops->record_apply(st.impl, "bench-1", "contact", egress_record_id(r), 2,
                                          "erase", NULL, 0, 1, &res, &err) < 0)) {
            fprintf(stderr, "bench_verify: record %u: %s\n", i, r ? err.msg : "projection");
            return 1;
        }
        egress_record_free(r);
    }
    if (st.ops->commit(st.impl, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    struct hq_node node;
    if (st.ops->node_get(st.impl, "bench-1", &node, &err) < 0) {
        fprintf(stderr, "bench_verify: %s\n", err.msg);
        return 1;
    }
    printf("anti-entropy check of %u KE contacts, %u of them erased (tombstones at both ends; "
           "bodies only, HTTP headers come on top)\n",
           n, n / 10 * per_ten);
    printf("%-6s %8s %7s %10s %10s %12s %12s %12s\n", "drift", "requests", "ranges", "bytes up",
           "bytes down", "node set ms", "node walk ms", "HQ CPU ms");
    const unsigned drifts[] = {0, 1, 100};
    for (size_t d = 0; d < sizeof drifts / sizeof *drifts; d++) {
        double t0 = cpu_ms();
        struct range_set *mine = NULL;
        if (range_set_new(&mine) < 0)
            return 1;
        for (unsigned i = 0; i < n; i++) {
            /* the drifted records are spread over the whole set */
            int drifted = drifts[d] && i % (n / drifts[d]) == 0;
            int tomb = i % 10 >= 10 - per_ten && !drifted;
            struct egress_record *r = project(ke, i, drifted ? "x" : "");
            json_t *proj = r ? json_loads(egress_record_json(r), 0, NULL) : NULL;
            unsigned char h[PROJECTION_HASH_BYTES];
            if (!proj ||
                projection_hash("contact", tomb ? PROJECTION_GONE : PROJECTION_LIVE,
                                egress_record_id(r), tomb ? NULL : proj, h) ||
                range_set_add(mine, "contact", egress_record_id(r), tomb ? 2 : 1, h) < 0)
                return 1;
            json_decref(proj);
            egress_record_free(r);
        }
        range_set_seal(mine);
        double t_set = cpu_ms() - t0, t_walk = 0, t_hq = 0;
        struct range_walk *w = NULL;
        if (range_walk_new(mine, &w) < 0)
            return 1;
        char *body = NULL;
        size_t len = 0;
        for (;;) {
            double a = cpu_ms();
            int rc = range_walk_request(w, &body, &len);
            t_walk += cpu_ms() - a;
            if (rc == 1)
                break;
            if (rc < 0)
                return 1;
            a = cpu_ms();
            char *answer = NULL;
            if (hq_verify_answer(&st, &node, 1000 * (int64_t)d, body, len, &answer, &err) < 0) {
                fprintf(stderr, "bench_verify: %s\n", err.msg);
                return 1;
            }
            t_hq += cpu_ms() - a;
            free(body);
            a = cpu_ms();
            if (range_walk_answer(w, answer, strlen(answer), &err) < 0) {
                fprintf(stderr, "bench_verify: %s\n", err.msg);
                return 1;
            }
            t_walk += cpu_ms() - a;
            free(answer);
        }
        struct range_walk_stats s;
        range_walk_stats(w, &s);
        if (s.drift != drifts[d]) {
            fprintf(stderr, "bench_verify: found %llu drifted records, planted %u\n",
                    (unsigned long long)s.drift, drifts[d]);
            return 1;
        }
        printf("%-6u %8llu %7llu %10llu %10llu %12.0f %12.1f %12.0f\n", drifts[d],
               (unsigned long long)s.requests, (unsigned long long)s.ranges,
               (unsigned long long)s.bytes_out, (unsigned long long)s.bytes_in, t_set, t_walk,
               t_hq);
        range_walk_free(w);
        range_set_free(mine);
        hq_verify_forget(); /* each check starts with HQ building its set */
    }
    hq_store_close(&st);
    policy_free(ke);
    unlink(db);
    return node_too ? node_side(dir, n, per_ten) : 0;
}
