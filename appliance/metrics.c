/* Prometheus text exposition of request counters and latencies; see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

struct outbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void out_add(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_add(struct outbuf *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *np = realloc(o->p, cap);
        if (!np) {
            o->failed = 1;
            return;
        }
        o->p = np;
        o->cap = cap;
    }
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len)
{
    struct outbuf o = {malloc(4096), 0, 4096, 0};
    if (!o.p)
        return -ENOMEM;
    o.p[0] = '\0';
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
    if (o.failed) {
        free(o.p);
        return -ENOMEM;
    }
    *out = o.p;
    *len = o.len;
    return 0;
}
