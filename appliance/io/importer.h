/*
 * CSV import of records (contacts by default) into the store, all or
 * nothing, with a choice for probable duplicates and a per-row report. The first row is a header
 * naming the record's fields; every further row becomes one store_create inside a single
 * transaction, so a large file is one commit and a bad row anywhere leaves the database as it was.
 * The invariant: importer_run either commits every row of the file or changes nothing, and every
 * problem it reports names the file, the physical line, the column number and the column name.
 *
 * Columns (matched case-insensitively, surrounding white space trimmed):
 * the entity's field names (internal fields excepted); `id` (a UUIDv7 kept
 * as the record's id); `custom.NAME` (NAME, case kept, goes into the
 * "custom" object; an empty cell leaves the key out, a quoted empty cell
 * "" sets it to the empty string); or a `custom` column holding
 * a JSON object (not together with custom.NAME columns); and the metadata
 * columns of an export, `version`, `created_at`, `updated_at` and
 * `deleted`, which are accepted and ignored, except that a row whose
 * `deleted` says true is a tombstone and is skipped, so that an erased
 * record does not come back through an export and re-import. Empty cells
 * are absent values (JSON null); rows whose cells are all empty are skipped.
 */
#ifndef OUTPOST_IMPORTER_H
#define OUTPOST_IMPORTER_H

#include <stdint.h>
#include <stdio.h>

#include "csv_reader.h"
#include "entity.h"
#include "op_error.h"
#include "store.h"

#define IMPORTER_MAX_ERRORS_DEFAULT 20
#define IMPORTER_CUSTOM_NAME_MAX 64 /* bytes in NAME of a custom.NAME column */

/* What happens to a row that is a probable duplicate of a live record
 * (docs/DATA_MODEL.md, "Duplicate detection"). */
enum importer_on_dup {
    IMPORTER_DUP_REFUSE = 0, /* the row is a problem: nothing is imported */
    IMPORTER_DUP_SKIP,       /* the row is left out */
    IMPORTER_DUP_UPDATE,     /* the existing record takes the row's non-empty cells, at the
                                row's `version` if it has one, else at its current one */
    IMPORTER_DUP_NEW,        /* the row is imported as a new record all the same */
};

enum importer_flags {
    IMPORTER_DRY_RUN = 1u << 0,        /* validate everything, then roll back */
    IMPORTER_SKIP_DUP_CHECK = 1u << 1, /* accept probable duplicates */
};

struct importer_opts {
    const char *name;                /* the file name used in messages; "input" if NULL */
    const struct entity_def *entity; /* NULL: contacts */
    unsigned flags;                  /* enum importer_flags */
    const struct csv_limits *limits; /* NULL: the reader's defaults */
    /* In a dry run, how many problems to report before stopping (0: the
     * default); a real import always stops at the first. */
    size_t max_errors;
    /* Called for every problem found, the first included, in file order
     * (optional). The error is borrowed for the call. */
    void (*on_error)(void *ctx, int rc, const struct op_error *err);
    /* Called every few hundred rows with the number of rows imported so
     * far (optional). */
    void (*on_progress)(void *ctx, uint64_t rows);
    void *ctx;
    enum importer_on_dup on_duplicate;
    /* The report (optional): a CSV with the header line,action,existing_id,
     * reason and one row for every data row that was not empty: "create",
     * "update", "skip", "new" (a duplicate imported as new), "conflict"
     * (to be updated, but the record was at another version), "error".
     * existing_id names the matched record; reason says why (the warning of
     * a created row, the match of a duplicate, the problem). It records
     * what was decided: whether it was committed is importer_run's result. */
    FILE *report;
    /* Contacts written into the table by one statement (0: the default,
     * 1,000; 1: one statement a row, as a single create). Tuning only: the
     * records, audit, outbox, report and messages are the same for any
     * value (docs/IMPORT_EXPORT.md, "Performance"). */
    size_t batch_rows;
};

struct importer_result {
    uint64_t imported;        /* rows written (in a dry run: that would be written) */
    uint64_t skipped_deleted; /* rows skipped because `deleted` was true */
    uint64_t skipped_empty;   /* rows skipped because every cell was empty */
    uint64_t duplicates;      /* rows that were probable duplicates (any choice) */
    uint64_t dup_skipped;     /* of them left out */
    uint64_t dup_updated;     /* of them that updated the existing record */
    uint64_t dup_new;         /* of them imported as new (counted in imported too) */
    uint64_t conflicts;       /* of them not updated: the record was at another version */
    uint64_t warnings;        /* imported rows with a warning (same name and locality) */
    size_t errors;            /* problems reported */
};

/* Imports the CSV read from `in` (owned by the caller) into `s`. The store
 * must not be inside store_begin. Returns 0 when every row was imported
 * (or, in a dry run, would have been) and then, unless a dry run, the
 * transaction is committed. Otherwise returns the first problem's code and
 * the database is unchanged: -EINVAL (bad CSV, unknown or duplicate
 * column, bad value), STORE_EDUP (probable duplicate; err->ref is the
 * existing record's id), -EEXIST (a record with the row's id exists), -EIO
 * (reading failed) or another negative errno from the store. err->msg is
 * "FILE:LINE:COLUMN (NAME): what is wrong" and err->field the column name.
 * `res` (optional) is filled in either case. */
int importer_run(struct store *s, FILE *in, const struct importer_opts *opts,
                 struct importer_result *res, struct op_error *err);

#endif
