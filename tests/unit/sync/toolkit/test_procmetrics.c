/* Tests for sync/toolkit/procmetrics.c: every family has HELP and TYPE
 * before its sample, the figures are this process's own (CPU time grows
 * with work, open descriptors count one more after an open, resident
 * memory grows when pages are touched), the start time is the caller's,
 * and build-info labels keep only label-safe bytes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procmetrics.h"
#include "testlib.h"

static char *render(double start)
{
    struct buf b = BUF_INIT(1u << 20);
    CHECK_EQ(procmetrics_render(&b, "outpostd", "0.1.0", start), 0);
    size_t len;
    char *text = buf_take(&b, &len);
    buf_done(&b);
    return text ? text : strdup("");
}

/* The value of the sample line "NAME VALUE"; -1 when absent. */
static double value(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static void families_have_help_and_type(void)
{
    char *t = render(1700000000.5);
    static const char *names[] = {"process_cpu_seconds_total",
                                  "process_virtual_memory_bytes",
                                  "process_resident_memory_bytes",
                                  "process_open_fds",
                                  "process_max_fds",
                                  "process_start_time_seconds",
                                  "outpost_build_info"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char help[128], type[128];
        snprintf(help, sizeof help, "# HELP %s ", names[i]);
        snprintf(type, sizeof type, "# TYPE %s ", names[i]);
        const char *h = strstr(t, help), *ty = strstr(t, type);
        CHECK(h != NULL);
        CHECK(ty != NULL);
        CHECK(h && ty && h < ty);
    }
    CHECK_CONTAINS(t, "# TYPE process_cpu_seconds_total counter\n");
    CHECK_CONTAINS(t, "\noutpost_build_info{program=\"outpostd\",version=\"0.1.0\"} 1\n");
    CHECK(value(t, "process_start_time_seconds") == 1700000000.5);
    CHECK(t[strlen(t) - 1] == '\n');
    free(t);
    /* No start time given: no made-up series. */
    t = render(0);
    CHECK(strstr(t, "process_start_time_seconds") == NULL);
    free(t);
}

static void figures_are_the_process_own(void)
{
    char *a = render(1);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    /* work and touched memory */
    volatile double x = 0;
    for (long i = 0; i < 30000000; i++)
        x += (double)i * 0.5;
    size_t big = 64u << 20;
    char *mem = malloc(big);
    CHECK(mem != NULL);
    if (mem)
        memset(mem, 1, big);
    char *b = render(1);
    CHECK_INT((long)value(b, "process_open_fds"), ==, (long)value(a, "process_open_fds") + 1);
    CHECK(value(b, "process_cpu_seconds_total") > value(a, "process_cpu_seconds_total"));
    CHECK(value(b, "process_resident_memory_bytes") >=
          value(a, "process_resident_memory_bytes") + (double)(32u << 20));
    CHECK(value(b, "process_virtual_memory_bytes") >= value(b, "process_resident_memory_bytes"));
    CHECK(value(b, "process_max_fds") > 0);
    free(mem);
    close(fd);
    free(a);
    free(b);
}

static void labels_are_safe(void)
{
    struct buf b = BUF_INIT(1u << 20);
    CHECK_EQ(procmetrics_render(&b, "out\"post\nhq", "1.0 \\beta}", 0), 0);
    CHECK_CONTAINS(b.data, "outpost_build_info{program=\"outposthq\",version=\"1.0beta\"} 1\n");
    buf_done(&b);
    /* A cap too small for the text: an error, not a cut document. */
    struct buf small = BUF_INIT(64);
    CHECK(procmetrics_render(&small, "outpostd", "0.1.0", 1) < 0);
    buf_done(&small);
}

int main(void)
{
    RUN(families_have_help_and_type);
    RUN(figures_are_the_process_own);
    RUN(labels_are_safe);
    return tl_report();
}
