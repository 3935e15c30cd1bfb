/*
 * libFuzzer target for sync/toolkit/csv_reader.c (and csv_writer.c). Beyond
 * "no crash, no leak, no overflow" it checks the reader's promises on every
 * record it accepts: fields within the caps, NUL-free valid UTF-8, the
 * field count of the first row, and positions that make sense; and that a
 * record written back with csv_writer reads back identically.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_csv_reader -max_len=200000 tests/fuzz/corpus/csv_reader
 * The first input byte picks small caps (so the cap paths are reached
 * with short inputs) or the defaults.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "csv_reader.h"
#include "csv_writer.h"

#define MAX_RECORDS 10000

/* Writes the record and reads it back: the same fields must come out. */
static void round_trip(const struct csv_field *fs, size_t n, const struct csv_limits *lim)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    must(o != NULL, "open_memstream");
    struct csv_writer w;
    csv_writer_init(&w, o);
    for (size_t i = 0; i < n; i++)
        csv_writer_field(&w, fs[i].data, fs[i].len);
    csv_writer_end_row(&w);
    fclose(o);
    FILE *in = fmemopen(buf, len, "r");
    struct csv_reader *r;
    must(csv_reader_new(in, lim, &r) == 0, "reader for round trip");
    struct op_error err;
    int got = csv_reader_next(r, &err);
    must(got == (int)n, "round trip field count");
    const struct csv_field *back = csv_reader_fields(r);
    for (size_t i = 0; i < n; i++)
        must(back[i].len == fs[i].len && !memcmp(back[i].data, fs[i].data, fs[i].len),
             "round trip field value");
    must(csv_reader_next(r, &err) == 0, "round trip: one record only");
    csv_reader_free(r);
    fclose(in);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct csv_limits lim = {0};
    if (data[0] & 1) {
        lim.max_field = 1 + (data[0] >> 4);
        lim.max_columns = 1 + ((data[0] >> 1) & 7);
    }
    size_t max_field = lim.max_field ? lim.max_field : CSV_MAX_FIELD_DEFAULT;
    size_t max_columns = lim.max_columns ? lim.max_columns : CSV_MAX_COLUMNS_DEFAULT;
    FILE *f = fmemopen((void *)(data + 1), size - 1, "r");
    if (!f)
        return 0;
    struct csv_reader *r;
    if (csv_reader_new(f, &lim, &r) < 0) {
        fclose(f);
        return 0;
    }
    size_t first = 0;
    unsigned long last_line = 0;
    for (int k = 0; k < MAX_RECORDS; k++) {
        struct op_error err;
        op_error_clear(&err);
        int n = csv_reader_next(r, &err);
        if (n == 0)
            break;
        if (n < 0) {
            unsigned long line;
            size_t col;
            csv_reader_error_pos(r, &line, &col);
            must(err.msg[0] != '\0', "an error without a message");
            must(line >= 1 && line <= size + 1, "error line out of range");
            must(col <= max_columns + 1, "error column out of range");
            if (csv_reader_broken(r))
                break;
            continue;
        }
        const struct csv_field *fs = csv_reader_fields(r);
        must((size_t)n == csv_reader_nfields(r), "count mismatch");
        must((size_t)n <= max_columns, "column cap");
        if (!first)
            first = (size_t)n;
        must((size_t)n == first, "field count differs from the first row");
        must(csv_reader_line(r) > last_line, "records go forward");
        last_line = csv_reader_line(r);
        for (int i = 0; i < n; i++) {
            must(fs[i].len <= max_field, "field cap");
            must(strlen(fs[i].data) == fs[i].len, "NUL inside a field");
            must(csv_utf8_bad_offset(fs[i].data, fs[i].len) < 0, "invalid UTF-8 passed");
            must(fs[i].line >= last_line, "field line before its record");
        }
        round_trip(fs, (size_t)n, &lim);
    }
    csv_reader_free(r);
    fclose(f);
    return 0;
}
