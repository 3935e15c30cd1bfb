/*
 * CSV and vCard export; see exporter.h. A CSV header must name every
 * custom key before the first row, so the CSV export walks the records
 * twice: once to collect the union of custom keys, once to write. Both
 * walks run inside one read transaction, which in WAL mode is a snapshot:
 * the daemon may keep writing, and the export still sees one consistent
 * state, so no key can appear in the second walk that the first missed.
 */
#include "exporter.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv_writer.h"
#include "fsutil.h"
#include "io_queries.h"
#include "sql.h"
#include "vcard.h"

#define PROGRESS_EVERY 256u

static const char *const meta_cols[] = {"version", "created_at", "updated_at", "deleted"};

struct exp {
    struct store *s;
    const struct entity_def *e;
    const struct exporter_opts *o;
    FILE *out;
    struct csv_writer w;
    json_t *keyset;    /* pass 1: custom key -> true */
    const char **keys; /* sorted custom keys (borrowed from keyset) */
    size_t nkeys;
    size_t nbase; /* id + plain field columns */
    uint64_t count;
    struct op_error *err;
};

static int is_custom_field(const struct field_def *f)
{
    return f->type == FIELD_OBJECT && !strcmp(f->name, "custom");
}

static int exported_field(const struct field_def *f)
{
    return !(f->flags & FIELD_INTERNAL) && !is_custom_field(f);
}

static int has_custom(const struct entity_def *e)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (is_custom_field(&e->fields[i]))
            return 1;
    return 0;
}

static int collect_keys(void *ctx, json_t *rec)
{
    struct exp *x = ctx;
    json_t *custom = json_object_get(rec, "custom");
    const char *key;
    json_t *v;
    json_object_foreach(custom, key, v)
    {
        if (json_object_get(x->keyset, key))
            continue;
        if (json_object_size(x->keyset) + x->nbase + 4 >= EXPORTER_MAX_COLUMNS)
            return op_error_set(x->err, -E2BIG, "custom",
                                "the records use more custom field names than a CSV row may "
                                "hold (at most %d columns)",
                                EXPORTER_MAX_COLUMNS);
        if (json_object_set_new(x->keyset, key, json_true()) < 0)
            return op_error_set(x->err, -ENOMEM, NULL, "out of memory");
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes one JSON value as a cell. */
static int put_value(struct csv_writer *w, json_t *v, int raw)
{
    char num[64];
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        /* text a user typed goes behind the formula guard unless raw */
        return (raw ? csv_writer_field : csv_writer_text)(w, json_string_value(v),
                                                          json_string_length(v));
    case JSON_TRUE:
        return csv_writer_str(w, "true");
    case JSON_FALSE:
        return csv_writer_str(w, "false");
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return csv_writer_str(w, num);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        return csv_writer_str(w, num);
    case JSON_OBJECT:
    case JSON_ARRAY: {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (!dump)
            return -ENOMEM;
        int rc = csv_writer_str(w, dump);
        free(dump);
        return rc;
    }
    case JSON_NULL:
    default:
        return csv_writer_field(w, NULL, 0);
    }
}

static int write_header(struct exp *x)
{
    struct csv_writer *w = &x->w;
    (void)csv_writer_str(w, "id");
    for (size_t i = 0; i < x->e->nfields; i++)
        if (exported_field(&x->e->fields[i]))
            (void)csv_writer_str(w, x->e->fields[i].name);
    for (size_t i = 0; i < x->nkeys; i++) {
        char name[512];
        int n = snprintf(name, sizeof name, "custom.%s", x->keys[i]);
        if (n < 0 || (size_t)n >= sizeof name)
            return op_error_set(x->err, -E2BIG, "custom", "custom field name too long: %.60s",
                                x->keys[i]);
        (void)csv_writer_field(w, name, (size_t)n);
    }
    if (x->o->with_meta)
        for (size_t i = 0; i < sizeof meta_cols / sizeof meta_cols[0]; i++)
            (void)csv_writer_str(w, meta_cols[i]);
    return csv_writer_end_row(w);
}

static void tick(struct exp *x)
{
    x->count++;
    if (x->o->on_progress && x->count % PROGRESS_EVERY == 0)
        x->o->on_progress(x->o->ctx, x->count);
}

static int write_error(struct exp *x, int rc)
{
    if (rc == -ENOMEM)
        return op_error_set(x->err, rc, NULL, "out of memory");
    return op_error_set(x->err, rc, NULL, "cannot write the export: %s", strerror(-rc));
}

static int write_row(void *ctx, json_t *rec)
{
    struct exp *x = ctx;
    struct csv_writer *w = &x->w;
    int raw = x->o->raw_cells;
    int rc = put_value(w, json_object_get(rec, "id"), raw);
    for (size_t i = 0; i < x->e->nfields && rc == 0; i++)
        if (exported_field(&x->e->fields[i]))
            rc = put_value(w, json_object_get(rec, x->e->fields[i].name), raw);
    json_t *custom = json_object_get(rec, "custom");
    for (size_t i = 0; i < x->nkeys && rc == 0; i++) {
        json_t *v = json_object_get(custom, x->keys[i]);
        /* "" (a quoted empty cell) is an empty string; nothing is no key */
        if (json_is_string(v) && json_string_length(v) == 0)
            rc = csv_writer_quoted(w, "", 0);
        else
            rc = put_value(w, v, raw);
    }
    if (x->o->with_meta)
        for (size_t i = 0; i < sizeof meta_cols / sizeof meta_cols[0] && rc == 0; i++)
            rc = put_value(w, json_object_get(rec, meta_cols[i]), raw);
    if (rc == 0)
        rc = csv_writer_end_row(w);
    if (rc < 0)
        return write_error(x, rc);
    /* a key the first walk did not see would be lost: refuse, never drop */
    const char *key;
    json_t *v;
    json_object_foreach(custom, key, v)
    {
        if (!json_object_get(x->keyset, key))
            return op_error_set(x->err, -EAGAIN, "custom",
                                "custom field \"%.60s\" appeared during the export; run it again",
                                key);
    }
    tick(x);
    return 0;
}

static int write_vcard(void *ctx, json_t *rec)
{
    struct exp *x = ctx;
    int rc = vcard_write(x->out, rec);
    if (rc < 0)
        return write_error(x, rc);
    if (ferror(x->out))
        return write_error(x, -EIO);
    tick(x);
    return 0;
}

static int run_csv(struct exp *x)
{
    x->nbase = 1;
    for (size_t i = 0; i < x->e->nfields; i++)
        if (exported_field(&x->e->fields[i]))
            x->nbase++;
    x->keyset = json_object();
    if (!x->keyset)
        return op_error_set(x->err, -ENOMEM, NULL, "out of memory");
    int rc = 0;
    if (has_custom(x->e)) {
        rc = store_each(x->s, x->e, x->o->include_deleted, collect_keys, x, x->err);
        if (rc < 0)
            return rc;
    }
    x->nkeys = json_object_size(x->keyset);
    if (x->nkeys) {
        x->keys = calloc(x->nkeys, sizeof *x->keys);
        if (!x->keys)
            return op_error_set(x->err, -ENOMEM, NULL, "out of memory");
        size_t i = 0;
        const char *key;
        json_t *v;
        json_object_foreach(x->keyset, key, v)
        {
            x->keys[i++] = key;
        }
        qsort(x->keys, x->nkeys, sizeof *x->keys, cmp_str);
    }
    rc = write_header(x);
    if (rc < 0)
        return x->err && x->err->msg[0] ? rc : write_error(x, rc);
    return store_each(x->s, x->e, x->o->include_deleted, write_row, x, x->err);
}

int exporter_run(struct store *s, FILE *out, const struct exporter_opts *opts, uint64_t *count,
                 struct op_error *err)
{
    static const struct exporter_opts defaults;
    struct exp x = {
        .s = s,
        .o = opts ? opts : &defaults,
        .out = out,
        .err = err,
    };
    op_error_clear(err);
    x.e = x.o->entity ? x.o->entity : &entity_contact;
    if (x.o->format == EXPORTER_VCARD && x.e != &entity_contact)
        return op_error_set(err, -EINVAL, "format", "vCard export is for contacts only");
    csv_writer_init(&x.w, out);

    struct sql_cache q;
    int rc = store_queries_bind(s, &q, &io_queries, err);
    if (rc < 0)
        return rc;
    rc = sql_exec(&q, IO_Q_EXPORTER_BEGIN, err);
    if (rc < 0) {
        sql_cache_close(&q);
        return rc;
    }
    if (x.o->format == EXPORTER_VCARD)
        rc = store_each(s, x.e, x.o->include_deleted, write_vcard, &x, err);
    else
        rc = run_csv(&x);
    if (rc > 0) /* a callback's code is always negative; be safe */
        rc = -EIO;
    (void)sql_exec(&q, rc == 0 ? IO_Q_EXPORTER_COMMIT : IO_Q_EXPORTER_ROLLBACK, NULL);
    sql_cache_close(&q);
    if (rc == 0 && x.o->on_progress)
        x.o->on_progress(x.o->ctx, x.count);
    json_decref(x.keyset);
    free(x.keys);
    if (count)
        *count = x.count;
    return rc;
}

int exporter_to_file(struct store *s, const char *path, const struct exporter_opts *opts,
                     uint64_t *count, struct op_error *err)
{
    op_error_clear(err);
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return op_error_set(err, -ENAMETOOLONG, NULL, "output path too long: %.200s", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return op_error_set(err, -e, NULL, "cannot create a file next to %s: %s", path,
                            strerror(e));
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return op_error_set(err, -e, NULL, "cannot write %s: %s", tmp, strerror(e));
    }
    uint64_t done = 0;
    int rc = exporter_run(s, f, opts, &done, err);
    errno = 0;
    if (rc == 0 && (fflush(f) != 0 || ferror(f)))
        rc = -(errno ? errno : EIO);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -(errno ? errno : EIO);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        if (!err || !err->msg[0] || err->code != rc)
            op_error_set(err, rc, NULL, "cannot write %s: %s", path, strerror(-rc));
        unlink(tmp);
        return rc;
    }
    rc = fsutil_fsync_dir_of(path, NULL);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "cannot sync the directory of %s: %s", path,
                            strerror(-rc));
    if (count)
        *count = done;
    return 0;
}
