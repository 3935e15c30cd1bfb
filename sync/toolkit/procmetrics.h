/*
 * The Prometheus series every daemon exports about itself, under the
 * names Prometheus' own client libraries use, so a dashboard made for any
 * process works for outpostd and outpost-hq alike: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds, and
 * outpost_build_info{program,version} 1 (which build answers). The
 * invariant: a figure that cannot be read (no /proc) is left out with its
 * HELP and TYPE lines, never written as a made-up 0, and every series has
 * its HELP and TYPE (promtool check metrics passes).
 */
#ifndef OUTPOST_PROCMETRICS_H
#define OUTPOST_PROCMETRICS_H

#include "buf.h"

/* Appends the series in the text format (version 0.0.4) to b. program and
 * version are the build-info labels (bytes other than a-z A-Z 0-9 . _ - +
 * are left out of them); start_s is when the process started (Unix
 * seconds, taken by the caller at start: the unit's sandbox hides
 * /proc/stat, which the kernel's figure needs). Returns 0 or -ENOMEM (b
 * as buf_printf leaves it). */
int procmetrics_render(struct buf *b, const char *program, const char *version, double start_s);

#endif
