/*
 * Request metrics in the Prometheus text format (version 0.0.4): requests
 * by route and status, a latency histogram per route, plus gauges the
 * caller supplies at render time. Used from the loop thread only. The
 * invariant: memory is bounded — routes are the daemon's own templates
 * ("GET /api/v1/contacts/{id}"), never raw paths, and past METRICS_MAX_SERIES
 * distinct (route, status) pairs new ones are counted under route "other".
 */
#ifndef OUTPOST_METRICS_H
#define OUTPOST_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SERIES 256

struct metrics;
struct sync_status;

struct metrics_gauges {
    unsigned open_connections;
    uint64_t db_bytes; /* database file plus its WAL */
    uint64_t uptime_s;
    /* sync to HQ as of the uplink's last ledger job (sync_ledger.h); NULL
     * when sync is off or has no figures yet: the outpost_sync_* series
     * are then left out */
    const struct sync_status *sync;
    int64_t now_ms; /* Unix ms for the ages; 0: the clock */
    /* the process_* series and outpost_build_info (procmetrics.h):
     * version the build's; start_s when the daemon started, Unix s */
    const char *version;
    double start_s;
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Counts one finished request. `route` must be a string that outlives m
 * (a literal from the route table). */
void metrics_observe(struct metrics *m, const char *route, int status, double duration_ms);

/* Renders everything; *out is malloc'd (caller frees), *len its length.
 * Returns 0 or -ENOMEM. */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char **out,
                   size_t *len);

#endif
