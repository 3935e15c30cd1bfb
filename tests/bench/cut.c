/*
 * bench_cut: what cutting the outbox into segments costs the node
 * (docs/BENCHMARKS.md, "Cutting segments"), apart from any link. It opens
 * the sync ledger on a node database that already holds its changes (made
 * by tests/bench/cut: an import, or a round of updates to synced records)
 * and calls sync_ledger_make_segment until nothing is left, timing each
 * cut in CPU (CLOCK_PROCESS_CPUTIME_ID; the process is single-threaded)
 * and wall time. Prints one line per segment and the totals: records,
 * segment bytes, records per second of CPU.
 *
 * With --ack each segment is acknowledged as HQ would (a receipt under
 * the credentials' HQ key, saying HQ applies patches), so a later round
 * of updates is cut against what HQ holds, as on a drained node.
 *
 * Usage: bench_cut DB SPOOL_DIR CREDENTIALS [--segment-bytes N] [--ack]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "node_credentials.h"
#include "sync_mac.h"
#include "sync_ledger.h"

static double ms_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Applies HQ's receipt for sg: applied, patches on. */
static int acknowledge(struct sync_ledger *l, const struct node_credentials *cred,
                       const struct sync_segment *sg)
{
    char mac[SYNC_MAC_HEX];
    struct op_error err;
    if (sync_receipt_mac(cred->hq_key, cred->node_id, sg->no, "applied", sg->to_urgent,
                         sg->to_ordinary, mac) < 0)
        return -1;
    json_t *j = json_pack("{sssIsss{sIsI}sIsIsIsssssssb}", "node", cred->node_id, "segment",
                          (json_int_t)sg->no, "status", "applied", "to", "urgent",
                          (json_int_t)sg->to_urgent, "ordinary", (json_int_t)sg->to_ordinary,
                          "records", (json_int_t)sg->records, "applied", (json_int_t)sg->records,
                          "set_aside", (json_int_t)0, "reason", "", "received_at",
                          "2026-11-24T18:00:00.000Z", "mac", mac, "patch", 1);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    int outcome = 0,
        rc = text ? sync_ledger_apply_receipt(l, sg->no, text, strlen(text), &outcome, &err) : -1;
    free(text);
    if (rc < 0)
        fprintf(stderr, "bench_cut: receipt of segment %llu: %s\n", (unsigned long long)sg->no,
                err.msg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_cut DB SPOOL_DIR CREDENTIALS [--segment-bytes N]\n");
        return 2;
    }
    uint64_t seg_bytes = 0;
    int ack = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--segment-bytes") && i + 1 < argc) {
            seg_bytes = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--ack")) {
            ack = 1;
        } else {
            fprintf(stderr, "bench_cut: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct op_error err;
    struct node_credentials cred;
    if (node_credentials_load(argv[3], &cred, &err) < 0) {
        fprintf(stderr, "bench_cut: %s\n", err.msg);
        return 1;
    }
    struct sync_ledger_options o = {
        .db_path = argv[1], .spool_dir = argv[2], .cred = &cred, .segment_bytes = seg_bytes};
    struct sync_ledger *l = NULL;
    double c0 = ms_of(CLOCK_PROCESS_CPUTIME_ID), w0 = ms_of(CLOCK_MONOTONIC);
    if (sync_ledger_open(&o, &l, &err) < 0) {
        fprintf(stderr, "bench_cut: %s\n", err.msg);
        return 1;
    }
    printf("open: %.0f ms CPU, %.0f ms wall\n", ms_of(CLOCK_PROCESS_CPUTIME_ID) - c0,
           ms_of(CLOCK_MONOTONIC) - w0);
    uint64_t records = 0, bytes = 0;
    double cpu = 0, wall = 0;
    for (int n = 0;; n++) {
        struct sync_segment sg;
        int made = 0;
        double c1 = ms_of(CLOCK_PROCESS_CPUTIME_ID), w1 = ms_of(CLOCK_MONOTONIC);
        if (sync_ledger_make_segment(l, &made, &sg, &err) < 0) {
            fprintf(stderr, "bench_cut: segment %d: %s\n", n + 1, err.msg);
            return 1;
        }
        double c = ms_of(CLOCK_PROCESS_CPUTIME_ID) - c1, w = ms_of(CLOCK_MONOTONIC) - w1;
        cpu += c; /* the last call too: it may consume rows that send nothing */
        wall += w;
        if (!made)
            break;
        records += sg.records;
        bytes += sg.bytes;
        printf("segment %llu: %llu records, %llu bytes, %.0f ms CPU, %.0f ms wall\n",
               (unsigned long long)sg.no, (unsigned long long)sg.records,
               (unsigned long long)sg.bytes, c, w);
        if (ack && acknowledge(l, &cred, &sg) < 0)
            return 1;
    }
    sync_ledger_close(l);
    printf(
        "cut: %llu records in segments, %llu bytes (%.1f per record), %.0f ms CPU, %.0f ms wall, "
        "%.0f records/s CPU, %.0f records/s wall\n",
        (unsigned long long)records, (unsigned long long)bytes,
        records ? (double)bytes / (double)records : 0.0, cpu, wall,
        cpu > 0 ? (double)records * 1e3 / cpu : 0.0, wall > 0 ? (double)records * 1e3 / wall : 0.0);
    return 0;
}
