/*
 * The process_* series and the build info; see procmetrics.h. CPU time
 * comes from getrusage, memory from /proc/self/statm, open descriptors
 * from counting /proc/self/fd, the limit from getrlimit.
 */
#include "procmetrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* Copies the label-safe bytes of s into out. */
static void label(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++) {
        char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-' || c == '+')
            out[n++] = c;
    }
    out[n] = '\0';
}

/* Entries of /proc/self/fd, less the one opendir holds; -1 without /proc. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

int procmetrics_render(struct buf *b, const char *program, const char *version, double start_s)
{
    int rc = 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        rc |= buf_printf(b,
                         "# HELP process_cpu_seconds_total Total user and system CPU time spent "
                         "in seconds.\n"
                         "# TYPE process_cpu_seconds_total counter\n"
                         "process_cpu_seconds_total %.3f\n",
                         (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                             (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size = 0, resident = 0;
    if (f) {
        int got = fscanf(f, "%llu %llu", &size, &resident);
        fclose(f);
        long page = sysconf(_SC_PAGESIZE);
        if (got == 2 && page > 0)
            rc |= buf_printf(b,
                             "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                             "# TYPE process_virtual_memory_bytes gauge\n"
                             "process_virtual_memory_bytes %llu\n"
                             "# HELP process_resident_memory_bytes Resident memory size in "
                             "bytes.\n"
                             "# TYPE process_resident_memory_bytes gauge\n"
                             "process_resident_memory_bytes %llu\n",
                             size * (unsigned long long)page, resident * (unsigned long long)page);
    }
    long fds = open_fds();
    if (fds >= 0)
        rc |= buf_printf(b,
                         "# HELP process_open_fds Number of open file descriptors.\n"
                         "# TYPE process_open_fds gauge\n"
                         "process_open_fds %ld\n",
                         fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        rc |= buf_printf(b,
                         "# HELP process_max_fds Maximum number of open file descriptors.\n"
                         "# TYPE process_max_fds gauge\n"
                         "process_max_fds %llu\n",
                         (unsigned long long)rl.rlim_cur);
    if (start_s > 0)
        rc |= buf_printf(b,
                         "# HELP process_start_time_seconds Start time of the process since unix "
                         "epoch in seconds.\n"
                         "# TYPE process_start_time_seconds gauge\n"
                         "process_start_time_seconds %.3f\n",
                         start_s);
    char p[64], v[64];
    label(program, p, sizeof p);
    label(version, v, sizeof v);
    rc |= buf_printf(b,
                     "# HELP outpost_build_info The program and version answering; always 1.\n"
                     "# TYPE outpost_build_info gauge\n"
                     "outpost_build_info{program=\"%s\",version=\"%s\"} 1\n",
                     p, v);
    return rc ? -ENOMEM : 0;
}
