/* Prometheus text exposition of request counters and latencies; see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "procmetrics.h"
#include "sync_ledger.h"

static const double bucket_ms[] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500};
#define NBUCKETS (sizeof bucket_ms / sizeof bucket_ms[0])

struct series {
    const char *route;
    int status;
    uint64_t count;
};

struct route_hist {
    const char *route;
    uint64_t buckets[NBUCKETS]; /* cumulative at render time, raw here */
    uint64_t count;
    double sum_ms;
};

struct metrics {
    struct series series[METRICS_MAX_SERIES];
    size_t nseries;
    struct route_hist hist[METRICS_MAX_SERIES];
    size_t nhist;
};

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
    free(m);
}

static struct route_hist *hist_for(struct metrics *m, const char *route)
{
    for (size_t i = 0; i < m->nhist; i++)
        if (m->hist[i].route == route || !strcmp(m->hist[i].route, route))
            return &m->hist[i];
    if (m->nhist < METRICS_MAX_SERIES - 1) {
        m->hist[m->nhist].route = route;
        return &m->hist[m->nhist++];
    }
    struct route_hist *h = &m->hist[METRICS_MAX_SERIES - 1];
    if (m->nhist < METRICS_MAX_SERIES) {
        h->route = "other";
        m->nhist = METRICS_MAX_SERIES;
    }
    return h;
}

void metrics_observe(struct metrics *m, const char *route, int status, double duration_ms)
{
    struct series *s = NULL;
    for (size_t i = 0; i < m->nseries && !s; i++)
        if (m->series[i].status == status &&
            (m->series[i].route == route || !strcmp(m->series[i].route, route)))
            s = &m->series[i];
    if (!s) {
        if (m->nseries < METRICS_MAX_SERIES - 1) {
            s = &m->series[m->nseries++];
            s->route = route;
            s->status = status;
        } else {
            s = &m->series[METRICS_MAX_SERIES - 1];
            if (m->nseries < METRICS_MAX_SERIES) {
                m->nseries = METRICS_MAX_SERIES;
                s->route = "other";
                s->status = 0;
            }
        }
    }
    s->count++;
    struct route_hist *h = hist_for(m, route);
    for (size_t b = 0; b < NBUCKETS; b++)
        if (duration_ms <= bucket_ms[b]) {
            h->buckets[b]++;
            break;
        }
    h->count++;
    h->sum_ms += duration_ms;
}

/* The exposition being rendered; the first failure sticks and the rest
 * is skipped, so the renderers need not check each line. */
struct outbuf {
    struct buf b;
    int rc;
};

static void out_add(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_add(struct outbuf *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->rc = buf_vprintf(&o->b, fmt, ap);
    va_end(ap);
}

/* The outpost_sync_* gauges (docs/UPLINK.md lists them). */
static void render_sync(struct outbuf *o, const struct sync_status *s, int64_t now_ms)
{
    if (!now_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    double oldest = s->oldest_unsent_ms > 0 && now_ms > s->oldest_unsent_ms
                        ? (double)(now_ms - s->oldest_unsent_ms) / 1000.0
                        : 0.0;
    out_add(o,
            "# HELP outpost_sync_outbox_depth Changes waiting in the outbox for HQ.\n"
            "# TYPE outpost_sync_outbox_depth gauge\n"
            "outpost_sync_outbox_depth %lld\n"
            "# HELP outpost_sync_oldest_unsent_seconds Age of the oldest change HQ has not "
            "acknowledged.\n"
            "# TYPE outpost_sync_oldest_unsent_seconds gauge\n"
            "outpost_sync_oldest_unsent_seconds %.3f\n"
            "# HELP outpost_sync_spool_bytes Bytes of segments waiting in the spool.\n"
            "# TYPE outpost_sync_spool_bytes gauge\n"
            "outpost_sync_spool_bytes %llu\n"
            "# HELP outpost_sync_spool_segments Segments waiting in the spool.\n"
            "# TYPE outpost_sync_spool_segments gauge\n"
            "outpost_sync_spool_segments %llu\n"
            "# HELP outpost_sync_spool_full 1 when the spool cap stops segmenting (alarm).\n"
            "# TYPE outpost_sync_spool_full gauge\n"
            "outpost_sync_spool_full %d\n"
            "# HELP outpost_sync_blocked 1 when sync is stopped (rejected segment, region "
            "mismatch); see 'outpost status'.\n"
            "# TYPE outpost_sync_blocked gauge\n"
            "outpost_sync_blocked %d\n"
            "# HELP outpost_sync_waiting 1 when sync waits with nothing wrong (outside the sync "
            "window, daily budget spent); see 'outpost status'.\n"
            "# TYPE outpost_sync_waiting gauge\n"
            "outpost_sync_waiting %d\n"
            "# HELP outpost_sync_last_success_timestamp_seconds When HQ's last receipt was "
            "applied (Unix time); 0 never.\n"
            "# TYPE outpost_sync_last_success_timestamp_seconds gauge\n"
            "outpost_sync_last_success_timestamp_seconds %.3f\n"
            "# HELP outpost_sync_goodput_bytes_per_second Upload bytes/s confirmed by HQ, "
            "smoothed.\n"
            "# TYPE outpost_sync_goodput_bytes_per_second gauge\n"
            "outpost_sync_goodput_bytes_per_second %.1f\n"
            "# HELP outpost_sync_eta_seconds Estimated time to drain the backlog; -1 unknown.\n"
            "# TYPE outpost_sync_eta_seconds gauge\n"
            "outpost_sync_eta_seconds %.1f\n"
            "# HELP outpost_sync_bytes_today Upload bytes HQ acknowledged this UTC day (its offset "
            "gained): what the daily budget is charged.\n"
            "# TYPE outpost_sync_bytes_today gauge\n"
            "outpost_sync_bytes_today %llu\n"
            "# HELP outpost_sync_bytes_sent_total Upload body bytes put on the link since start.\n"
            "# TYPE outpost_sync_bytes_sent_total counter\n"
            "outpost_sync_bytes_sent_total %llu\n"
            "# HELP outpost_sync_bytes_confirmed_total Upload bytes HQ acknowledged since start.\n"
            "# TYPE outpost_sync_bytes_confirmed_total counter\n"
            "outpost_sync_bytes_confirmed_total %llu\n"
            "# HELP outpost_sync_bytes_resent_total Bytes sent again because a cut lost them.\n"
            "# TYPE outpost_sync_bytes_resent_total counter\n"
            "outpost_sync_bytes_resent_total %llu\n"
            "# HELP outpost_sync_retries_total Requests to HQ repeated after a failure.\n"
            "# TYPE outpost_sync_retries_total counter\n"
            "outpost_sync_retries_total %llu\n"
            "# HELP outpost_sync_chunk_bytes The upload chunk size the link adapted to.\n"
            "# TYPE outpost_sync_chunk_bytes gauge\n"
            "outpost_sync_chunk_bytes %llu\n"
            "# HELP outpost_sync_uploads Uploads HQ holds and has not settled (in flight or "
            "paused).\n"
            "# TYPE outpost_sync_uploads gauge\n"
            "outpost_sync_uploads %zu\n"
            "# HELP outpost_sync_errors_total Sync errors by kind.\n"
            "# TYPE outpost_sync_errors_total counter\n",
            (long long)s->outbox_depth, oldest, (unsigned long long)s->spool_bytes,
            (unsigned long long)s->spool_segments, s->spool_full ? 1 : 0, s->blocked[0] ? 1 : 0,
            s->waiting[0] ? 1 : 0, (double)s->last_sync_ms / 1000.0, s->goodput_bps, s->eta_s,
            (unsigned long long)s->bytes_today, (unsigned long long)s->link_bytes_sent,
            (unsigned long long)s->link_bytes_confirmed, (unsigned long long)s->link_bytes_resent,
            (unsigned long long)s->link_retries, (unsigned long long)s->link_chunk_bytes,
            s->nuploads);
    size_t n = s->nerrors < 16 ? s->nerrors : 16;
    for (size_t i = 0; i < n; i++) {
        /* kinds are the daemon's own words; keep only label-safe bytes */
        char kind[sizeof s->errors[i].kind];
        size_t k = 0;
        for (size_t c = 0; c < sizeof kind - 1 && s->errors[i].kind[c]; c++) {
            char ch = s->errors[i].kind[c];
            if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')
                kind[k++] = ch;
        }
        kind[k] = '\0';
        out_add(o, "outpost_sync_errors_total{kind=\"%s\"} %llu\n", kind,
                (unsigned long long)s->errors[i].n);
    }
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len)
{
    struct outbuf o = {BUF_INIT(SIZE_MAX), 0};
    o.rc = buf_reserve(&o.b, 4096);
    out_add(&o, "# HELP outpost_http_requests_total HTTP requests by route and status.\n"
                "# TYPE outpost_http_requests_total counter\n");
    for (size_t i = 0; i < m->nseries; i++)
        out_add(&o, "outpost_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                m->series[i].route, m->series[i].status, (unsigned long long)m->series[i].count);
    out_add(&o, "# HELP outpost_http_request_duration_seconds Time from a request's first "
                "byte to its response.\n"
                "# TYPE outpost_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nhist; i++) {
        const struct route_hist *h = &m->hist[i];
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += h->buckets[b];
            out_add(&o,
                    "outpost_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                    "%llu\n",
                    h->route, bucket_ms[b] / 1000.0, (unsigned long long)cum);
        }
        out_add(&o,
                "outpost_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                "outpost_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                "outpost_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                h->route, (unsigned long long)h->count, h->route, h->sum_ms / 1000.0, h->route,
                (unsigned long long)h->count);
    }
    out_add(&o,
            "# HELP outpost_http_open_connections Connections open now.\n"
            "# TYPE outpost_http_open_connections gauge\n"
            "outpost_http_open_connections %u\n"
            "# HELP outpost_db_size_bytes Database file plus write-ahead log.\n"
            "# TYPE outpost_db_size_bytes gauge\n"
            "outpost_db_size_bytes %llu\n"
            "# HELP outpost_uptime_seconds Seconds since outpostd started.\n"
            "# TYPE outpost_uptime_seconds gauge\n"
            "outpost_uptime_seconds %llu\n",
            g->open_connections, (unsigned long long)g->db_bytes, (unsigned long long)g->uptime_s);
    if (g->sync)
        render_sync(&o, g->sync, g->now_ms);
    if (!o.rc)
        o.rc = procmetrics_render(&o.b, "outpostd", g->version ? g->version : "", g->start_s);
    char *text = o.rc ? NULL : buf_take(&o.b, len);
    buf_done(&o.b);
    if (!text)
        return -ENOMEM;
    *out = text;
    return 0;
}
