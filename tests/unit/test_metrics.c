/* Tests for appliance/metrics.c: counters, cumulative buckets, the
 * exposition format, and the cap on distinct series. */
#include <stdlib.h>

#include "metrics.h"
#include "testlib.h"

static void counts_and_buckets(void)
{
    struct metrics *m = metrics_new();
    metrics_observe(m, "/api/v1/contacts", 200, 0.3);
    metrics_observe(m, "/api/v1/contacts", 200, 4.0);
    metrics_observe(m, "/api/v1/contacts", 422, 30.0);
    metrics_observe(m, "/healthz", 200, 0.1);
    struct metrics_gauges g = {.open_connections = 7, .db_bytes = 123456, .uptime_s = 9};
    char *out = NULL;
    size_t len = 0;
    CHECK_EQ(metrics_render(m, &g, &out, &len), 0);
    CHECK_EQ(strlen(out), len);
    CHECK_CONTAINS(out, "# TYPE outpost_http_requests_total counter\n");
    CHECK_CONTAINS(out,
                   "outpost_http_requests_total{route=\"/api/v1/contacts\",status=\"200\"} 2\n");
    CHECK_CONTAINS(out,
                   "outpost_http_requests_total{route=\"/api/v1/contacts\",status=\"422\"} 1\n");
    CHECK_CONTAINS(out, "_bucket{route=\"/api/v1/contacts\",le=\"0.0005\"} 1\n");
    CHECK_CONTAINS(out, "_bucket{route=\"/api/v1/contacts\",le=\"0.005\"} 2\n");
    CHECK_CONTAINS(out, "_bucket{route=\"/api/v1/contacts\",le=\"0.05\"} 3\n");
    CHECK_CONTAINS(out, "_bucket{route=\"/api/v1/contacts\",le=\"+Inf\"} 3\n");
    CHECK_CONTAINS(out, "_count{route=\"/api/v1/contacts\"} 3\n");
    CHECK_CONTAINS(out, "_sum{route=\"/api/v1/contacts\"} 0.034300\n");
    CHECK_CONTAINS(out, "outpost_http_open_connections 7\n");
    CHECK_CONTAINS(out, "outpost_db_size_bytes 123456\n");
    free(out);
    metrics_free(m);
}

static void series_are_capped(void)
{
    struct metrics *m = metrics_new();
    static char routes[1000][16];
    for (int i = 0; i < 1000; i++) {
        snprintf(routes[i], sizeof routes[i], "/r%d", i);
        metrics_observe(m, routes[i], 200, 1.0);
    }
    struct metrics_gauges g = {0};
    char *out = NULL;
    size_t len = 0;
    CHECK_EQ(metrics_render(m, &g, &out, &len), 0);
    CHECK_CONTAINS(out, "route=\"other\"");
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    CHECK(lines < 256 * 20);
    free(out);
    metrics_free(m);
}

int main(void)
{
    RUN(counts_and_buckets);
    RUN(series_are_capped);
    return tl_report();
}
