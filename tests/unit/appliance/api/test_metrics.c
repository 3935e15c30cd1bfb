/* Tests for appliance/api/metrics.c: counters, cumulative buckets, the
 * exposition format, and the cap on distinct series. */
#include <stdlib.h>

#include "metrics.h"
#include "sync_ledger.h"
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

/* The outpost_sync_* series come from the uplink's cached status, and
 * only when there is one. */
static void sync_gauges(void)
{
    struct metrics *m = metrics_new();
    struct sync_status st;
    memset(&st, 0, sizeof st);
    st.enabled = 1;
    st.outbox_depth = 42;
    st.oldest_unsent_ms = 1000000;
    st.spool_bytes = 480000;
    st.spool_segments = 1;
    st.spool_full = 1;
    st.last_sync_ms = 990500;
    st.goodput_bps = 7999.96;
    st.eta_s = -1;
    snprintf(st.waiting, sizeof st.waiting, "outside the sync window 22:00-06:00");
    st.nerrors = 2;
    snprintf(st.errors[0].kind, sizeof st.errors[0].kind, "network");
    st.errors[0].n = 3;
    snprintf(st.errors[1].kind, sizeof st.errors[1].kind, "bad\"kind\n");
    st.errors[1].n = 1;
    struct metrics_gauges g = {.sync = &st, .now_ms = 1090000};
    char *out = NULL;
    size_t len = 0;
    CHECK_EQ(metrics_render(m, &g, &out, &len), 0);
    CHECK_CONTAINS(out, "# TYPE outpost_sync_outbox_depth gauge\noutpost_sync_outbox_depth 42\n");
    CHECK_CONTAINS(out, "outpost_sync_oldest_unsent_seconds 90.000\n");
    CHECK_CONTAINS(out, "outpost_sync_spool_bytes 480000\n");
    CHECK_CONTAINS(out, "outpost_sync_spool_full 1\n");
    CHECK_CONTAINS(out, "outpost_sync_blocked 0\n");
    CHECK_CONTAINS(out, "outpost_sync_waiting 1\n");
    CHECK_CONTAINS(out, "outpost_sync_last_success_timestamp_seconds 990.500\n");
    CHECK_CONTAINS(out, "outpost_sync_goodput_bytes_per_second 8000.0\n");
    CHECK_CONTAINS(out, "outpost_sync_eta_seconds -1.0\n");
    CHECK_CONTAINS(out, "outpost_sync_errors_total{kind=\"network\"} 3\n");
    CHECK_CONTAINS(out, "outpost_sync_errors_total{kind=\"badkind\"} 1\n"); /* label-safe */
    free(out);
    g.sync = NULL;
    CHECK_EQ(metrics_render(m, &g, &out, &len), 0);
    CHECK(strstr(out, "outpost_sync_") == NULL);
    free(out);
    metrics_free(m);
}

int main(void)
{
    RUN(counts_and_buckets);
    RUN(series_are_capped);
    RUN(sync_gauges);
    return tl_report();
}
