/*
 * Export of records (contacts by default) as RFC 4180 CSV or as vCard 4.0.
 * The CSV is what importer.h reads: a header of column names, then one row
 * per record, so an export with raw_cells imports back into a fresh
 * database as the same records (same ids, same values); without it,
 * formula cells are guarded for spreadsheets (below). The invariant: an
 * export is one consistent snapshot (both passes over the data run in one
 * read transaction), and a file written with exporter_to_file is either
 * the complete export or absent (temp file, fsync, rename, fsync of the
 * directory); a failed export never leaves a truncated file behind.
 *
 * CSV columns, in order: id; every non-internal field of the entity in
 * descriptor order except the "custom" object; one custom.NAME column per
 * custom key used by any exported record (sorted by name); with metadata:
 * version, created_at, updated_at, deleted. Values: strings as they are
 * (or guarded, below), null as an empty cell, booleans as true/false,
 * numbers in decimal, objects and arrays as compact JSON. Rows end in
 * CRLF.
 *
 * Formula guard (the default): a spreadsheet runs a cell that begins with
 * = + - @ (and, in some, TAB, CR or LF) as a formula, so a contact named
 * "=HYPERLINK(...)" would run on the desk of whoever opens the export.
 * Every text cell that begins with one of those characters (after any
 * spaces) is written as a quoted field with a single quote in front
 * (csv_writer_text), the OWASP CSV-injection rule, with no exceptions:
 * "+49 30 1234" and "-12" are guarded too, since the spreadsheet, not the
 * exporter, decides what it evaluates. Cells the exporter makes from
 * numbers (amounts), booleans and JSON objects are not text a user typed
 * and stay as they are. The guard changes the value, so a guarded export
 * does not import back as the same records: `raw_cells` turns it off, for
 * round trips and scripts.
 */
#ifndef OUTPOST_EXPORTER_H
#define OUTPOST_EXPORTER_H

#include <stdint.h>
#include <stdio.h>

#include "entity.h"
#include "op_error.h"
#include "store.h"

/* At most this many columns, so that the importer's reader (default
 * column cap) can read every export back. */
#define EXPORTER_MAX_COLUMNS 256

enum exporter_format {
    EXPORTER_CSV = 0,
    EXPORTER_VCARD = 1, /* contacts only */
};

struct exporter_opts {
    const struct entity_def *entity; /* NULL: contacts */
    enum exporter_format format;
    int include_deleted; /* tombstones too */
    int with_meta;       /* CSV: version, created_at, updated_at, deleted columns */
    int raw_cells;       /* CSV: no formula guard; the values exactly as stored */
    /* Called every few hundred records with the count so far (optional). */
    void (*on_progress)(void *ctx, uint64_t records);
    void *ctx;
};

/* Writes the export to `out` (owned by the caller; not flushed or closed).
 * The store must not be inside store_begin: the export runs its own read
 * transaction.
 * *count (optional) receives the number of records written. Returns 0, or
 * -E2BIG (more custom fields than a CSV row may hold), -EINVAL (vCard for
 * an entity other than contacts), -EIO or another negative errno from
 * writing or from the store; err says what. */
int exporter_run(struct store *s, FILE *out, const struct exporter_opts *opts, uint64_t *count,
                 struct op_error *err);

/* Same, into the file at `path`, atomically: the file appears complete or
 * not at all, created with mode 0600 because it holds personal data. */
int exporter_to_file(struct store *s, const char *path, const struct exporter_opts *opts,
                     uint64_t *count, struct op_error *err);

#endif
