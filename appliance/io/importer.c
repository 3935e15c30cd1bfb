/*
 * All-or-nothing CSV import; see importer.h. The header is mapped to
 * columns once on the caller's thread. Then two threads share the work
 * (docs/IMPORT_EXPORT.md, "Performance"): a parser thread reads each row,
 * turns its cells into JSON and has the store check it and make its
 * duplicate keys (store_prepare_create: no database), and hands it through
 * a bounded queue (row_queue.h) to the caller's thread, the writer, the
 * only one that touches the store: it looks the keys up, writes the row
 * and its audit entry inside one transaction and reports, in file order.
 * A store error is mapped back to the cell it came from through
 * err->field, so that the user is pointed at FILE:LINE:COLUMN rather than
 * at a field name.
 */
#include "importer.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv_writer.h"
#include "dup_choice.h"
#include "io_queries.h"
#include "row_queue.h"
#include "sql.h"

#define PROGRESS_EVERY 256u
/* Rows in flight between the parser thread and the writer: enough to
 * ride over a slow commit of the full-text index or a slow phone number,
 * few enough that memory stays bounded (a row is its cells as JSON twice,
 * the cells and the checked record, and its keys: about 2 KiB for a
 * contact, so about 0.5 MiB, and as much again at most in rows handed
 * back to the parser to be freed). */
#define QUEUE_ROWS 256u
/* Contacts moved into the table by one statement (store_stage_create):
 * the search index writes its pending terms at the end of every
 * statement, and one statement a row made the import about 1.6 times
 * the CPU time of batches; 64 a batch cost about 1.3 times 256, 1,000
 * about 0.9 to 0.95 times 256 for 6 MB more memory (the rows waiting),
 * 4,096 little less for 28 MB more (docs/BENCHMARKS.md, "Import"). */
#define BATCH_ROWS_DEFAULT 1000u
#define BATCH_ROWS_MAX 4096u

enum col_kind {
    COL_FIELD,   /* a field of the entity */
    COL_ID,      /* the record id */
    COL_CUSTOM,  /* custom.NAME */
    COL_DELETED, /* the `deleted` metadata column */
    COL_IGNORED, /* created_at, updated_at */
    COL_VERSION, /* version: the expected version when a duplicate updates */
};

struct column {
    enum col_kind kind;
    const struct field_def *f;                /* COL_FIELD */
    char name[IMPORTER_CUSTOM_NAME_MAX + 16]; /* canonical name for messages */
    const char *key;                          /* COL_CUSTOM: NAME inside `name` */
};

struct imp {
    struct store *s;
    const struct entity_def *e;
    const struct importer_opts *o;
    const char *file;
    struct csv_reader *r;
    struct column *cols;
    size_t ncols;
    size_t ncustom;
    json_t *rec;
    size_t max_errors;
    struct importer_result res;
    int first_rc;
    struct op_error *err;
    struct csv_writer rw; /* the report, when asked for */
    int64_t row_version;  /* the row's version cell, 0 for none */
};

/* What the parser thread hands the writer for one record of the file, in
 * file order. */
enum item_kind {
    ITEM_ROW,     /* a record checked and keyed: fields and prep */
    ITEM_EMPTY,   /* every cell empty: skipped */
    ITEM_DELETED, /* a tombstone (`deleted` true): skipped */
    ITEM_PROBLEM, /* the reader's or a cell's problem at pline:pcol, msg in e */
    ITEM_REFUSED, /* the store refused the record before the database: e */
};

struct item {
    enum item_kind kind;
    int rc;
    int broken;         /* ITEM_PROBLEM: the reader cannot go on */
    unsigned long line; /* the record's line (where it ends) */
    unsigned long pline;
    size_t pcol;
    int64_t row_version; /* the row's version cell, 0 for none */
    json_t *fields;      /* ITEM_ROW: the row's cells by field */
    struct store_prepared *prep;
    struct op_error e;
    char warning[200];     /* ITEM_ROW staged: the store's warning for it, "" none */
    char wref[40];         /* and the contact it names, "" none */
    struct item *next;     /* on the parser's list of items to free */
    unsigned long lines[]; /* where each column's cell starts */
};

/* The parser thread's state: it owns the reader once the header is mapped
 * and reads `im` only for what map_header set (columns, entity, flags). */
struct parser {
    const struct imp *im;
    struct csv_reader *r;
    struct store_preparer *pr;
    struct row_queue *q;
    unsigned flags; /* for store_prepare_create */
    int failed;     /* out of memory: the rest of the file was not read */
    /* items the writer is done with, freed by the parser, which made
     * them: glibc's allocator frees a block it did not allocate on this
     * thread under its arena's lock, which cost the writer time */
    pthread_mutex_t done_mu;
    struct item *done;
};

static const char *const meta_ignored[] = {"version", "created_at", "updated_at"};

/* snprintf that truncates quietly (messages are capped by design). */
__attribute__((format(printf, 3, 4))) static void putf(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

/* Reports one problem at FILE:LINE[:COLUMN (NAME)] (just FILE when line is
 * 0: a problem with the import as a whole) and returns rc. */
__attribute__((format(printf, 6, 7))) static int report(struct imp *im, int rc, unsigned long line,
                                                        size_t col, const char *ref,
                                                        const char *fmt, ...)
{
    struct op_error e;
    op_error_clear(&e);
    char what[sizeof e.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);

    const char *colname =
        col >= 1 && col <= im->ncols && im->cols[col - 1].name[0] ? im->cols[col - 1].name : NULL;
    if (col && colname)
        putf(e.msg, sizeof e.msg, "%s:%lu:%zu (%s): %s", im->file, line, col, colname, what);
    else if (col)
        putf(e.msg, sizeof e.msg, "%s:%lu:%zu: %s", im->file, line, col, what);
    else if (line)
        putf(e.msg, sizeof e.msg, "%s:%lu: %s", im->file, line, what);
    else /* about the whole import, not a place in the file */
        putf(e.msg, sizeof e.msg, "%s: %s", im->file, what);
    e.code = rc;
    putf(e.field, sizeof e.field, "%s", colname ? colname : "");
    putf(e.ref, sizeof e.ref, "%s", ref ? ref : "");

    im->res.errors++;
    if (im->o->report && line) {
        char num[24];
        snprintf(num, sizeof num, "%lu", line);
        csv_writer_str(&im->rw, num);
        csv_writer_str(&im->rw, "error");
        csv_writer_str(&im->rw, ref);
        csv_writer_field(&im->rw, e.msg, strlen(e.msg));
        csv_writer_end_row(&im->rw);
    }
    if (!im->first_rc) {
        im->first_rc = rc;
        if (im->err)
            *im->err = e;
    }
    if (im->o->on_error)
        im->o->on_error(im->o->ctx, rc, &e);
    return rc;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Moves *s past leading blanks and returns the length left without trailing ones. */
static size_t trimmed(const char **s, size_t len)
{
    while (len && is_space(**s))
        (*s)++, len--;
    while (len && is_space((*s)[len - 1]))
        len--;
    return len;
}

/* The header cell trimmed, lower-cased into buf (custom keys keep case). */
static int header_name(const struct csv_field *f, char *buf, size_t cap, const char **raw,
                       size_t *rawlen)
{
    const char *s = f->data;
    size_t len = trimmed(&s, f->len);
    *raw = s;
    *rawlen = len;
    if (len >= cap)
        return -ENAMETOOLONG;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    buf[len] = '\0';
    return 0;
}

static void known_columns(const struct entity_def *e, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "id");
    for (size_t i = 0; i < e->nfields && o < cap; i++)
        if (!(e->fields[i].flags & FIELD_INTERNAL))
            o += (size_t)snprintf(buf + o, cap - o, ", %s", e->fields[i].name);
    if (o < cap)
        o += (size_t)snprintf(buf + o, cap - o, ", custom.NAME");
    for (size_t i = 0; i < sizeof meta_ignored / sizeof meta_ignored[0] && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, ", %s", meta_ignored[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, ", deleted");
}

static int map_header(struct imp *im)
{
    const struct csv_field *fs = csv_reader_fields(im->r);
    size_t n = csv_reader_nfields(im->r);
    im->cols = calloc(n, sizeof *im->cols);
    if (!im->cols)
        return report(im, -ENOMEM, 1, 0, NULL, "out of memory");
    im->ncols = n;
    int rc = 0;
    int custom_json = 0;
    for (size_t i = 0; i < n; i++) {
        struct column *c = &im->cols[i];
        char lower[IMPORTER_CUSTOM_NAME_MAX + 16];
        const char *raw;
        size_t rawlen;
        unsigned long line = fs[i].line;
        if (header_name(&fs[i], lower, sizeof lower, &raw, &rawlen) < 0) {
            rc = report(im, -EINVAL, line, i + 1, NULL, "column name longer than %zu bytes",
                        sizeof lower - 1);
            continue;
        }
        if (rawlen == 0) {
            rc = report(im, -EINVAL, line, i + 1, NULL,
                        "empty column name; the header row must name every column");
            continue;
        }
        const struct field_def *f = entity_field(im->e, lower);
        if (!strcmp(lower, "id")) {
            c->kind = COL_ID;
            snprintf(c->name, sizeof c->name, "id");
        } else if (!strcmp(lower, "deleted")) {
            c->kind = COL_DELETED;
            snprintf(c->name, sizeof c->name, "deleted");
        } else if (!strncmp(lower, "custom.", 7)) {
            const char *key = raw + 7;
            size_t klen = trimmed(&key, rawlen - 7);
            if (klen == 0 || klen > IMPORTER_CUSTOM_NAME_MAX) {
                rc = report(im, -EINVAL, line, i + 1, NULL,
                            "custom column \"%.*s\" needs a NAME of 1 to %d bytes after "
                            "\"custom.\"",
                            (int)rawlen, raw, IMPORTER_CUSTOM_NAME_MAX);
                continue;
            }
            c->kind = COL_CUSTOM;
            snprintf(c->name, sizeof c->name, "custom.%.*s", (int)klen, key);
            c->key = c->name + 7;
            im->ncustom++;
        } else if (f && !(f->flags & FIELD_INTERNAL)) {
            c->kind = COL_FIELD;
            c->f = f;
            snprintf(c->name, sizeof c->name, "%s", f->name);
            if (f->type == FIELD_OBJECT && !strcmp(f->name, "custom"))
                custom_json = 1;
        } else {
            int meta = 0;
            for (size_t k = 0; k < sizeof meta_ignored / sizeof meta_ignored[0]; k++)
                if (!strcmp(lower, meta_ignored[k])) {
                    meta = 1;
                    c->kind = k == 0 ? COL_VERSION : COL_IGNORED;
                    snprintf(c->name, sizeof c->name, "%s", meta_ignored[k]);
                }
            if (!meta) {
                char known[600];
                known_columns(im->e, known, sizeof known);
                rc = report(im, -EINVAL, line, i + 1, NULL,
                            "unknown column \"%.*s\"; known columns: %s", (int)rawlen, raw, known);
                continue;
            }
        }
        for (size_t k = 0; k < i; k++) {
            if (im->cols[k].name[0] && !strcmp(im->cols[k].name, c->name)) {
                rc = report(im, -EINVAL, line, i + 1, NULL,
                            "duplicate column \"%s\" (also column %zu)", c->name, k + 1);
                break;
            }
        }
    }
    if (rc == 0 && custom_json && im->ncustom) {
        for (size_t i = 0; i < n; i++)
            if (im->cols[i].kind == COL_FIELD && !strcmp(im->cols[i].f->name, "custom"))
                rc = report(im, -EINVAL, fs[i].line, i + 1, NULL,
                            "use either a custom column (a JSON object) or custom.NAME "
                            "columns, not both");
    }
    return rc;
}

/* The column a store error is about: the one named err->field (custom.NAME
 * for a custom.NAME column), else for custom.NAME the JSON `custom` column
 * that held the key, else 0 (the row as a whole, such as a required custom
 * field no column gave). */
static size_t column_of(const struct imp *im, const char *field)
{
    if (!field || !*field)
        return 0;
    for (size_t i = 0; i < im->ncols; i++) {
        const struct column *c = &im->cols[i];
        if (!strcmp(c->name, field))
            return i + 1;
    }
    if (!strncmp(field, "custom.", 7))
        for (size_t i = 0; i < im->ncols; i++)
            if (im->cols[i].kind == COL_FIELD && !strcmp(im->cols[i].name, "custom"))
                return i + 1;
    return 0;
}

/* Drops a leading "field: " from a store message when the column named in
 * the position is that field; otherwise (custom.NAME inside the JSON
 * `custom` column, a row-level problem) the message keeps it, so the key
 * stays named. */
static const char *without_field(const char *msg, const char *field, const char *colname)
{
    size_t n = strlen(field);
    if (n && !strcmp(field, colname) && !strncmp(msg, field, n) && msg[n] == ':' &&
        msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static int store_problem(struct imp *im, int rc, const struct op_error *se, const struct item *it)
{
    size_t col = column_of(im, se->field);
    unsigned long line = col ? it->lines[col - 1] : it->line;
    const char *colname = col ? im->cols[col - 1].name : "";
    const char *msg = se->msg[0] ? without_field(se->msg, se->field, colname) : strerror(-rc);
    if (rc == STORE_EDUP) {
        /* the store's own hint names no option; the CLI's flag replaces it */
        char base[sizeof se->msg];
        putf(base, sizeof base, "%s", msg);
        char *hint = strstr(base, "; pass the skip-duplicate-check");
        if (hint)
            *hint = '\0';
        msg = base;
        const char *ref = se->ref[0] ? se->ref : NULL;
        if (ref && !strstr(msg, ref))
            return report(im, rc, line, col, ref,
                          "%s (existing %s %s); use --skip-duplicate-check to import it anyway",
                          msg, im->e->name, ref);
        return report(im, rc, line, col, ref, "%s; use --skip-duplicate-check to import it anyway",
                      msg);
    }
    return report(im, rc, line, col, se->ref[0] ? se->ref : NULL, "%s", msg);
}

static int reader_problem(struct imp *im, int rc, const struct op_error *re)
{
    unsigned long line;
    size_t col;
    csv_reader_error_pos(im->r, &line, &col);
    return report(im, rc, line, col, NULL, "%s", re->msg);
}

/* Records a problem of the parser thread's in `it`, for the writer to
 * report in its place in the file. Returns rc. */
__attribute__((format(printf, 5, 6))) static int
row_problem(struct item *it, int rc, unsigned long line, size_t col, const char *fmt, ...)
{
    it->kind = ITEM_PROBLEM;
    it->rc = rc;
    it->pline = line;
    it->pcol = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->e.msg, sizeof it->e.msg, fmt, ap);
    va_end(ap);
    return rc;
}

/* Whether a dry run may look for further problems after this one: only
 * after a problem with one row, and only while the transaction is intact
 * (a store that had to end it would otherwise make the next rows real). */
static int may_go_on(struct imp *im, int rc, int broken)
{
    if (!(im->o->flags & IMPORTER_DRY_RUN) || im->res.errors >= im->max_errors)
        return 0;
    if (rc != -EINVAL && rc != STORE_EDUP && rc != -EEXIST)
        return 0;
    if (broken)
        return 0;
    return store_in_transaction(im->s);
}

/* Interprets the `deleted` cell: 1 tombstone, 0 live, -EINVAL bad. */
static int parse_deleted(const struct csv_field *f)
{
    const char *s = f->data;
    size_t len = trimmed(&s, f->len);
    if (len == 0 || (len == 5 && !strncasecmp(s, "false", 5)) || (len == 1 && *s == '0') ||
        (len == 2 && !strncasecmp(s, "no", 2)))
        return 0;
    if ((len == 4 && !strncasecmp(s, "true", 4)) || (len == 1 && *s == '1') ||
        (len == 3 && !strncasecmp(s, "yes", 3)))
        return 1;
    return -EINVAL;
}

/* On the parser thread: turns the reader's current record into `it`:
 * ITEM_EMPTY or ITEM_DELETED (skipped), ITEM_PROBLEM (a bad cell),
 * ITEM_REFUSED (the store's checks refused it) or ITEM_ROW with its cells
 * as JSON and the record checked and keyed. */
static void fill_item(struct parser *pa, struct item *it)
{
    const struct imp *im = pa->im;
    const struct csv_field *fs = csv_reader_fields(pa->r);
    unsigned long rowline = csv_reader_line(pa->r);
    it->line = rowline;
    int any = 0;
    for (size_t i = 0; i < im->ncols; i++) {
        const char *s = fs[i].data;
        size_t len = fs[i].len;
        it->lines[i] = fs[i].line;
        for (size_t k = 0; k < len && !any; k++)
            any = !is_space(s[k]);
    }
    if (!any) {
        it->kind = ITEM_EMPTY;
        return;
    }

    json_t *rec = json_object();
    json_t *custom = im->ncustom ? json_object() : NULL;
    if (!rec || (im->ncustom && !custom)) {
        json_decref(rec);
        json_decref(custom);
        row_problem(it, -ENOMEM, rowline, 0, "out of memory");
        return;
    }
    int rc = 0;
    for (size_t i = 0; i < im->ncols && rc == 0; i++) {
        const struct column *c = &im->cols[i];
        const struct csv_field *f = &fs[i];
        /* set_new takes the reference even when it fails */
        switch (c->kind) {
        case COL_FIELD:
            rc = json_object_set_new(rec, c->f->name,
                                     f->len ? json_stringn_nocheck(f->data, f->len) : json_null());
            break;
        case COL_ID:
            if (f->len)
                rc = json_object_set_new(rec, "id", json_stringn_nocheck(f->data, f->len));
            break;
        case COL_CUSTOM:
            /* an empty cell is no key; a quoted empty cell ("") an empty string */
            if (f->len || f->quoted)
                rc = json_object_set_new(custom, c->key, json_stringn_nocheck(f->data, f->len));
            break;
        case COL_DELETED: {
            int d = parse_deleted(f);
            if (d < 0)
                rc = row_problem(it, -EINVAL, f->line, i + 1,
                                 "expected true or false (or empty): \"%.80s\"", f->data);
            else if (d > 0)
                rc = 1;
            break;
        }
        case COL_VERSION: {
            char num[24];
            const char *v = f->data;
            size_t vl = trimmed(&v, f->len);
            char *end = NULL;
            it->row_version = 0;
            if (vl && vl < sizeof num) {
                memcpy(num, v, vl);
                num[vl] = '\0';
                long long x = strtoll(num, &end, 10);
                if (*end || x < 1)
                    rc = row_problem(it, -EINVAL, f->line, i + 1,
                                     "expected a version number of 1 or more (or empty): \"%.80s\"",
                                     f->data);
                else
                    it->row_version = x;
            } else if (vl) {
                rc = row_problem(it, -EINVAL, f->line, i + 1, "not a version number");
            }
            break;
        }
        case COL_IGNORED:
            break;
        }
        if (rc == -1) /* jansson's failure: out of memory */
            rc = row_problem(it, -ENOMEM, f->line, i + 1, "out of memory");
    }
    if (rc == 0 && custom && json_object_set_new(rec, "custom", custom) < 0)
        rc = row_problem(it, -ENOMEM, rowline, 0, "out of memory");
    else if (rc != 0)
        json_decref(custom);
    if (rc != 0) {
        json_decref(rec);
        if (rc == 1)
            it->kind = ITEM_DELETED;
        return;
    }
    it->fields = rec;
    rc = store_prepare_create(pa->pr, im->e, rec, pa->flags, &it->prep, &it->e);
    if (rc < 0) {
        it->kind = ITEM_REFUSED;
        it->rc = rc;
        return;
    }
    it->kind = ITEM_ROW;
}

static void item_free(struct item *it)
{
    if (!it)
        return;
    json_decref(it->fields);
    store_prepared_free(it->prep);
    free(it);
}

/* The writer: hands an item it is done with back to the parser. */
static void give_back(struct parser *pa, struct item *it)
{
    pthread_mutex_lock(&pa->done_mu);
    it->next = pa->done;
    pa->done = it;
    pthread_mutex_unlock(&pa->done_mu);
}

/* The parser (or the writer after the join): frees what was handed back. */
static void free_given_back(struct parser *pa)
{
    pthread_mutex_lock(&pa->done_mu);
    struct item *it = pa->done;
    pa->done = NULL;
    pthread_mutex_unlock(&pa->done_mu);
    while (it) {
        struct item *next = it->next;
        item_free(it);
        it = next;
    }
}

/* The parser thread: reads every record after the header and hands it to
 * the writer in order. Stops at the end of the file, after a problem that
 * ends the import (any problem outside a dry run; a reader that cannot go
 * on), or when the writer cancels. */
static void *parser_main(void *arg)
{
    struct parser *pa = arg;
    int dry = (pa->im->o->flags & IMPORTER_DRY_RUN) != 0;
    for (;;) {
        free_given_back(pa);
        struct item *it = calloc(1, sizeof *it + pa->im->ncols * sizeof it->lines[0]);
        if (!it) {
            /* no item can carry the problem: the writer sees the end of
             * the file early and reads `failed` after the join */
            pa->failed = 1;
            break;
        }
        op_error_clear(&it->e);
        int n = csv_reader_next(pa->r, &it->e);
        if (n == 0) {
            free(it);
            break;
        }
        int last = 0;
        if (n < 0) {
            unsigned long line;
            size_t col;
            csv_reader_error_pos(pa->r, &line, &col);
            it->kind = ITEM_PROBLEM;
            it->rc = n;
            it->pline = line;
            it->pcol = col;
            it->line = line;
            it->broken = csv_reader_broken(pa->r) != 0;
            last = !dry || it->broken;
        } else {
            fill_item(pa, it);
            last = !dry && (it->kind == ITEM_PROBLEM || it->kind == ITEM_REFUSED);
        }
        if (row_queue_push(pa->q, it) < 0) {
            item_free(it);
            break;
        }
        if (last)
            break;
    }
    row_queue_finish(pa->q);
    return NULL;
}

/* One row of the report (when asked for). */
static void report_row(struct imp *im, unsigned long line, const char *action, const char *ref,
                       const char *reason)
{
    if (!im->o->report)
        return;
    char num[24];
    snprintf(num, sizeof num, "%lu", line);
    csv_writer_str(&im->rw, num);
    csv_writer_str(&im->rw, action);
    csv_writer_str(&im->rw, ref);
    csv_writer_str(&im->rw, reason);
    csv_writer_end_row(&im->rw);
}

/* A row that is a probable duplicate of record e->ref, under the chosen
 * --on-duplicate: decided and applied by dup_choice_resolve, the rule the
 * API's bulk create shares. Returns 0 or a negative code with *e filled. */
static int duplicate_row(struct imp *im, unsigned long line, struct op_error *e)
{
    static const enum dup_choice choice_of[] = {
        [IMPORTER_DUP_REFUSE] = DUP_CHOICE_REFUSE,
        [IMPORTER_DUP_SKIP] = DUP_CHOICE_SKIP,
        [IMPORTER_DUP_UPDATE] = DUP_CHOICE_UPDATE,
        [IMPORTER_DUP_NEW] = DUP_CHOICE_NEW,
    };
    struct op_error dup = *e;
    struct dup_outcome o;
    im->res.duplicates++;
    op_error_clear(e);
    int rc = dup_choice_resolve(im->s, im->e, im->rec, choice_of[im->o->on_duplicate],
                                im->row_version, &dup, &o, NULL, e);
    if (rc < 0)
        return rc;
    switch (o.action) {
    case DUP_ACTION_SKIPPED:
        im->res.dup_skipped++;
        report_row(im, line, "skip", o.existing_id, o.reason);
        break;
    case DUP_ACTION_UPDATED:
        im->res.dup_updated++;
        report_row(im, line, "update", o.existing_id, o.reason);
        break;
    case DUP_ACTION_CONFLICT:
        im->res.conflicts++;
        report_row(im, line, "conflict", o.existing_id, o.detail);
        break;
    case DUP_ACTION_NEW:
        im->res.dup_new++;
        im->res.imported++;
        report_row(im, line, "new", o.existing_id, o.reason);
        break;
    default: /* refused: the caller stops at it */
        *e = dup;
        return STORE_EDUP;
    }
    return 0;
}

static int write_row(struct imp *im, struct item *it, unsigned flags);

/* On the writer (the caller's thread, the only one that touches the
 * store): one item from the parser. Returns 0 or the problem's code
 * (reported). */
static int write_item(struct imp *im, struct item *it, unsigned flags)
{
    switch (it->kind) {
    case ITEM_EMPTY:
        im->res.skipped_empty++;
        return 0;
    case ITEM_DELETED:
        im->res.skipped_deleted++;
        return 0;
    case ITEM_PROBLEM:
        return report(im, it->rc, it->pline, it->pcol, NULL, "%s", it->e.msg);
    case ITEM_REFUSED:
        return store_problem(im, it->rc, &it->e, it);
    case ITEM_ROW:
        break;
    }
    return write_row(im, it, flags);
}

/* Counts and reports a row written (or staged and then written). */
static void row_created(struct imp *im, const struct item *it, const char *wref,
                        const char *warning)
{
    if (warning)
        im->res.warnings++;
    report_row(im, it->line, "create", wref, warning);
    im->res.imported++;
    if (im->o->on_progress && im->res.imported % PROGRESS_EVERY == 0)
        im->o->on_progress(im->o->ctx, im->res.imported);
}

/* One checked row written by itself, as store_create does it. */
static int write_row(struct imp *im, struct item *it, unsigned flags)
{
    struct op_error e;
    op_error_clear(&e);
    int rc = store_create_prepared(im->s, it->prep, flags, &e);
    if (rc == STORE_EDUP && e.ref[0] && im->o->on_duplicate != IMPORTER_DUP_REFUSE) {
        im->rec = it->fields;
        im->row_version = it->row_version;
        rc = duplicate_row(im, it->line, &e);
        im->rec = NULL;
        return rc < 0 ? store_problem(im, rc, &e, it) : 0;
    }
    if (rc < 0)
        return store_problem(im, rc, &e, it);
    const char *wref = NULL, *warning = store_warning(im->s, &wref);
    row_created(im, it, wref, warning);
    return 0;
}

/* The rows staged and not yet written, in file order. */
struct batch {
    struct item **items; /* room for the batch size */
    size_t n;
};

/* Writes the staged rows into the table and reports each as created; if
 * the batch fails, writes them again one by one, so that the row at
 * fault is reported as it would have been alone, with the rows before it
 * reported first. Hands every item back. Returns 1 when the import must
 * stop (a problem may_go_on refuses), else 0. */
static int flush_batch(struct imp *im, struct parser *pa, struct batch *b, unsigned flags)
{
    if (!b->n)
        return 0;
    struct op_error e;
    op_error_clear(&e);
    int replay = 0;
    int rc = store_flush_staged(im->s, &replay, &e);
    int stop = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = b->items[i];
        if (rc == 0) {
            row_created(im, it, it->wref[0] ? it->wref : NULL, it->warning[0] ? it->warning : NULL);
        } else if (!replay) {
            /* the database failed the batch as a whole: said once, at its
             * first row, and the import stops */
            if (i == 0)
                store_problem(im, rc, &e, it);
            stop = 1;
        } else if (!stop) {
            int wrc = write_row(im, it, flags);
            if (wrc < 0 && !may_go_on(im, wrc, 0))
                stop = 1;
        }
        give_back(pa, it);
    }
    b->n = 0;
    return stop;
}

/* Stages a checked row for the next batch (written when the batch is
 * full). Returns 0 when staged (the batch owns the item), 2 when staged
 * and the import must stop (the batch it completed failed; the item is
 * handed back), 1 when not staged and the import must stop (the batch
 * before it failed), or -1 when the row was not staged and was written
 * by itself, after the batch before it, with *rc its result (reported). */
static int stage_row(struct imp *im, struct parser *pa, struct batch *b, struct item *it,
                     unsigned flags, size_t batch_rows, int *rc)
{
    struct op_error e;
    op_error_clear(&e);
    *rc = store_stage_create(im->s, it->prep, flags, &e);
    if (*rc == 0) {
        const char *wref = NULL, *warning = store_warning(im->s, &wref);
        putf(it->warning, sizeof it->warning, "%s", warning ? warning : "");
        putf(it->wref, sizeof it->wref, "%s", wref ? wref : "");
        b->items[b->n++] = it;
        return b->n >= batch_rows && flush_batch(im, pa, b, flags) ? 2 : 0;
    }
    if (flush_batch(im, pa, b, flags))
        return 1;
    if (*rc != STORE_ESTAGE) /* the database refused the staging itself */
        *rc = store_problem(im, *rc, &e, it);
    else
        *rc = write_row(im, it, flags);
    return -1;
}

/* Reads the rows after the header on a parser thread and writes them
 * here, in file order, until the end of the file or a problem that ends
 * the import; the parser is stopped and joined before this returns. */
static int run_rows(struct imp *im)
{
    unsigned flags = (im->o->flags & IMPORTER_SKIP_DUP_CHECK) ? STORE_SKIP_DUP_CHECK : 0;
    struct parser pa = {.im = im, .r = im->r, .flags = flags};
    int rc = store_preparer_new(im->s, &pa.pr);
    if (rc < 0)
        return report(im, rc, 0, 0, NULL, "cannot start checking rows: %s", strerror(-rc));
    rc = row_queue_new(QUEUE_ROWS, &pa.q);
    if (rc < 0) {
        store_preparer_free(pa.pr);
        return report(im, rc, 0, 0, NULL, "out of memory");
    }
    pthread_mutex_init(&pa.done_mu, NULL);
    /* jansson makes its hash seed on first use: make it here, not racing */
    json_decref(json_object());
    pthread_t tid;
    rc = -pthread_create(&tid, NULL, parser_main, &pa);
    if (rc < 0) {
        pthread_mutex_destroy(&pa.done_mu);
        row_queue_free(pa.q);
        store_preparer_free(pa.pr);
        return report(im, rc, 0, 0, NULL, "cannot start the parser thread: %s", strerror(-rc));
    }
    size_t batch_rows = im->o->batch_rows ? im->o->batch_rows : BATCH_ROWS_DEFAULT;
    if (batch_rows > BATCH_ROWS_MAX)
        batch_rows = BATCH_ROWS_MAX;
    struct batch b = {0};
    if (batch_rows > 1 && !(b.items = calloc(batch_rows, sizeof *b.items)))
        batch_rows = 1; /* without memory for the batch, a row a statement */
    int stop = 0;
    struct item *it;
    while ((it = row_queue_pop(pa.q))) {
        if (stop) {
            give_back(&pa, it);
            continue;
        }
        if (it->kind == ITEM_ROW && batch_rows > 1) {
            int st = stage_row(im, &pa, &b, it, flags, batch_rows, &rc);
            if (st == 0)
                continue; /* the batch holds it */
            if (st == 2) {
                stop = 1;
                row_queue_cancel(pa.q);
                continue;
            }
            if (st == 1) {
                stop = 1;
                row_queue_cancel(pa.q);
                give_back(&pa, it);
                continue;
            }
        } else {
            /* a problem is reported after the rows before it */
            if ((it->kind == ITEM_PROBLEM || it->kind == ITEM_REFUSED) &&
                flush_batch(im, &pa, &b, flags)) {
                stop = 1;
                row_queue_cancel(pa.q);
                give_back(&pa, it);
                continue;
            }
            rc = write_item(im, it, flags);
        }
        if (rc < 0 && !may_go_on(im, rc, it->broken)) {
            stop = 1;
            row_queue_cancel(pa.q);
        }
        give_back(&pa, it);
    }
    if (!stop)
        (void)flush_batch(im, &pa, &b, flags);
    free(b.items);
    pthread_join(tid, NULL);
    while ((it = row_queue_pop(pa.q))) /* none after a join; kept for safety */
        item_free(it);
    free_given_back(&pa);
    pthread_mutex_destroy(&pa.done_mu);
    row_queue_free(pa.q);
    store_preparer_free(pa.pr);
    if (pa.failed && !stop)
        report(im, -ENOMEM, 0, 0, NULL, "out of memory while reading the file");
    return im->first_rc;
}

int importer_run(struct store *s, FILE *in, const struct importer_opts *opts,
                 struct importer_result *res, struct op_error *err)
{
    static const struct importer_opts defaults;
    struct imp im = {
        .s = s,
        .o = opts ? opts : &defaults,
        .err = err,
    };
    op_error_clear(err);
    im.e = im.o->entity ? im.o->entity : &entity_contact;
    im.file = im.o->name ? im.o->name : "input";
    im.max_errors = (im.o->flags & IMPORTER_DRY_RUN)
                        ? (im.o->max_errors ? im.o->max_errors : IMPORTER_MAX_ERRORS_DEFAULT)
                        : 1;
    int rc = csv_reader_new(in, im.o->limits, &im.r);
    if (rc < 0) {
        report(&im, rc, 0, 0, NULL, "cannot start reading: %s", strerror(-rc));
        goto done;
    }

    struct op_error e;
    op_error_clear(&e);
    rc = csv_reader_next(im.r, &e);
    if (rc == 0) {
        rc = report(&im, -EINVAL, 1, 0, NULL,
                    "empty file; expected a header row naming the columns");
        goto done;
    }
    if (rc < 0) {
        rc = reader_problem(&im, rc, &e);
        goto done;
    }
    if (im.o->report) {
        csv_writer_init(&im.rw, im.o->report);
        csv_writer_str(&im.rw, "line");
        csv_writer_str(&im.rw, "action");
        csv_writer_str(&im.rw, "existing_id");
        csv_writer_str(&im.rw, "reason");
        csv_writer_end_row(&im.rw);
    }
    rc = map_header(&im);
    if (rc < 0)
        goto done;

    /* One transaction holds every row, and the search index and the
     * indexes grow all through it: with SQLite's default 2 MiB page cache
     * it spills pages to the WAL and reads them back. A 64 MiB cache (for
     * this connection only, freed when the import ends) cut a 100,000-row
     * import from 7.0 s to 5.7 s. Memory stays bounded: 64 MiB plus the
     * reader's constant buffers, whatever the file size. */
    struct sql_cache q;
    if (store_queries_bind(s, &q, &io_queries, NULL) == 0) {
        (void)sql_exec(&q, IO_Q_IMPORTER_CACHE_SIZE, NULL);
        sql_cache_close(&q);
    }
    op_error_clear(&e);
    rc = store_begin_bulk(s, &e);
    if (rc < 0) {
        rc = report(&im, rc, 0, 0, NULL, "cannot start the import transaction: %s%s",
                    e.msg[0] ? e.msg : strerror(-rc),
                    rc == -EBUSY ? " (another process is writing; try again)" : "");
        goto done;
    }
    rc = run_rows(&im);
    if (rc < 0 || (im.o->flags & IMPORTER_DRY_RUN)) {
        store_rollback(s);
    } else {
        op_error_clear(&e);
        rc = store_commit(s, &e);
        if (rc < 0) {
            store_rollback(s);
            rc = report(&im, rc, 0, 0, NULL, "cannot commit the import: %s",
                        e.msg[0] ? e.msg : strerror(-rc));
        }
    }
    if (rc == 0 && im.o->on_progress)
        im.o->on_progress(im.o->ctx, im.res.imported);

done:
    if (rc < 0 && !im.first_rc)
        im.first_rc = rc;
    free(im.cols);
    csv_reader_free(im.r);
    if (res)
        *res = im.res;
    return im.first_rc;
}
