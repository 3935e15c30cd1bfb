/*
 * bench_hq_apply: what applying one default segment (SEGMENT_TARGET_BYTES
 * of compressed payload, about 480 KB) costs outpost-hq, and what
 * secure_delete adds to it. It builds three segments of KE contacts as a
 * node does (egress_project, the segment writer): one creating the
 * records, one changing every record (each old version is freed, which
 * is where secure_delete writes zeros), and one erasing every record;
 * then applies each to a fresh HQ store with hq_apply_upload and reports
 * the median of the runs.
 *
 * --secure-delete-off makes every connection start with secure_delete off
 * and ignore the store's own PRAGMA (an SQLite authorizer installed by an
 * auto extension), which is how the store behaved before it set it; the
 * store's code is the same in both runs.
 *
 * Usage: bench_hq_apply [--runs N] [--secure-delete-off] [--dir DIR]
 */
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "egress.h"
#include "entity.h"
#include "hq_apply.h"
#include "hq_store.h"
#include "policy.h"
#include "segment.h"

#define RUNS_MAX 50

static const unsigned char hq_key[32] = {0x42, 0x17};
static const unsigned char pkey[32] = {0x5a, 0x01};
static const unsigned char tok[32] = {9};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int ignore_secure_delete(void *ctx, int action, const char *a, const char *b, const char *c,
                                const char *d)
{
    (void)ctx;
    (void)c;
    (void)d;
    /* b is the value: reading the pragma is allowed, setting it is not */
    if (action == SQLITE_PRAGMA && a && !strcmp(a, "secure_delete") && b)
        return SQLITE_IGNORE;
    return SQLITE_OK;
}

static int secure_delete_off(sqlite3 *db, char **msg, const void *api)
{
    (void)msg;
    (void)api;
    int rc = sqlite3_exec(db, "PRAGMA secure_delete = OFF", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_set_authorizer(db, ignore_secure_delete, NULL);
    return rc;
}

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Builds segment `no`: record i (version `version`) of the contacts
 * 0..n-1, or as many as fill SEGMENT_TARGET_BYTES when *n is 0 (then *n
 * is set). erase: tombstones instead of projections. */
static int build(const char *dir, const struct policy *p, uint64_t no, int version, int erase,
                 unsigned *n, char *out, size_t cap)
{
    struct segment_info hdr = {0};
    snprintf(hdr.node_id, sizeof hdr.node_id, "bench-1");
    hdr.from_ordinary = no * 100000;
    hdr.schema_version = 7;
    memcpy(hdr.policy_hash, p->hash, sizeof hdr.policy_hash);
    struct segment_writer *w = NULL;
    struct op_error err;
    if (segment_writer_new(&hdr, hq_key, dir, no, &w, &err) < 0) {
        fprintf(stderr, "bench_hq_apply: %s\n", err.msg);
        return -1;
    }
    struct egress_counts counts = {0};
    uint32_t x = 2463534242u + (uint32_t)version;
    unsigned i = 0;
    for (;; i++) {
        if (*n ? i == *n : segment_writer_compressed_bytes(w) >= SEGMENT_TARGET_BYTES)
            break;
        char id[40], given[32], family[32], email[80], phone[32], region[48];
        snprintf(id, sizeof id, "0190a1b2-c3d4-7e5f-8a9b-%012u", i);
        snprintf(given, sizeof given, "Given%08x", rnd(&x));
        snprintf(family, sizeof family, "Family%08x", rnd(&x));
        snprintf(email, sizeof email, "%s.%s@example.org", given, family);
        snprintf(phone, sizeof phone, "+2547%08u", rnd(&x) % 100000000u);
        snprintf(region, sizeof region, "Region %u, version %d", rnd(&x) % 47, version);
        struct egress_record *r = NULL;
        int rc;
        if (erase) {
            rc = egress_tombstone(p, &entity_contact, id, version, EGRESS_OP_ERASE, &r, &err);
        } else {
            json_t *rec =
                json_pack("{s:s, s:i, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id,
                          "version", version, "created_at", "2025-03-01T08:00:00.000Z",
                          "updated_at", "2025-03-02T09:30:00.000Z", "deleted", 0, "given_name",
                          given, "family_name", family, "email", email, "phone", phone, "region",
                          region, "country", "KE", "language", "sw");
            rc = rec ? egress_project(p, pkey, &entity_contact, rec, &r, &counts, &err) : -ENOMEM;
            json_decref(rec);
        }
        if (rc < 0 || !r) {
            fprintf(stderr, "bench_hq_apply: record %u: %s\n", i, err.msg);
            segment_writer_abort(w);
            return -1;
        }
        rc = segment_writer_add(w, r, &err);
        egress_record_free(r);
        if (rc < 0) {
            fprintf(stderr, "bench_hq_apply: %s\n", err.msg);
            segment_writer_abort(w);
            return -1;
        }
    }
    *n = i;
    if (segment_writer_finish(w, 0, hdr.from_ordinary + i, &counts, out, cap, NULL, &err) < 0) {
        fprintf(stderr, "bench_hq_apply: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = 5, off = 0;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--secure-delete-off")) {
            off = 1;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = (int)strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            base = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_hq_apply [--runs N] [--secure-delete-off] [--dir DIR]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > RUNS_MAX) {
        fprintf(stderr, "bench_hq_apply: --runs must be 1 to %d\n", RUNS_MAX);
        return 2;
    }
    if (off && sqlite3_auto_extension((void (*)(void))secure_delete_off) != SQLITE_OK)
        return 1;
    char dir[512], path[3][1024], ppath[1024];
    snprintf(dir, sizeof dir, "%s/bench-hq-apply.XXXXXX", base);
    if (!mkdtemp(dir))
        return 1;
    struct op_error err;
    struct policy *ke = NULL;
    struct hq_policies *pc = NULL;
    if (policy_find_file("KE", ppath, sizeof ppath, &err) < 0 ||
        policy_load_file(ppath, &ke, &err) < 0 || hq_policies_new(&pc) < 0) {
        fprintf(stderr, "bench_hq_apply: %s\n", err.msg);
        return 1;
    }
    unsigned n = 0;
    if (build(dir, ke, 1, 1, 0, &n, path[0], sizeof path[0]) < 0 ||
        build(dir, ke, 2, 2, 0, &n, path[1], sizeof path[1]) < 0 ||
        build(dir, ke, 3, 3, 1, &n, path[2], sizeof path[2]) < 0)
        return 1;
    static const char *const what[3] = {"create", "change", "erase"};
    double ms[3][RUNS_MAX];
    for (int r = 0; r < runs; r++) {
        char db[600];
        snprintf(db, sizeof db, "%s/hq-%d.db", dir, r);
        struct hq_store st;
        if (hq_store_sqlite_open(db, &st, &err) < 0 ||
            st.ops->node_add(st.impl, "bench-1", "KE", tok, hq_key, 1, &err) < 0) {
            fprintf(stderr, "bench_hq_apply: %s\n", err.msg);
            return 1;
        }
        for (int k = 0; k < 3; k++) {
            char segno[4];
            snprintf(segno, sizeof segno, "%d", k + 1);
            struct hq_upload u = {"bench-1", "bench-1", segno, path[k]};
            struct hq_apply_result res;
            double t0 = now_ms();
            int rc = hq_apply_upload(&st, pc, &u, 1700000000000, &res, &err);
            ms[k][r] = now_ms() - t0;
            if (rc < 0 || res.outcome != HQ_APPLY_APPLIED || res.receipt.applied != n) {
                fprintf(stderr, "bench_hq_apply: segment %d not applied whole: %s %s\n", k + 1,
                        err.msg, res.reason);
                return 1;
            }
        }
        hq_store_close(&st);
    }
    struct stat sb;
    printf("secure_delete %s, %u contacts per segment, %d runs (median ms)\n", off ? "off" : "on",
           n, runs);
    for (int k = 0; k < 3; k++) {
        qsort(ms[k], (size_t)runs, sizeof ms[k][0], cmp_double);
        printf("  %-6s segment of %lld bytes: %.1f ms (min %.1f, max %.1f)\n", what[k],
               stat(path[k], &sb) == 0 ? (long long)sb.st_size : -1LL, ms[k][runs / 2], ms[k][0],
               ms[k][runs - 1]);
    }
    hq_policies_free(pc);
    policy_free(ke);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
    return 0;
}
