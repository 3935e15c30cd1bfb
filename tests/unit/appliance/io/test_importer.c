/* Tests for appliance/io/importer.c: a good import lands every row with its
 * values, ids and custom fields; a dry run changes nothing; and every kind
 * of bad input (malformed CSV, invalid UTF-8, an over-long field, unknown
 * or duplicate columns, bad values, duplicates in the file or against the
 * database) is reported at FILE:LINE:COLUMN (NAME) and leaves the database
 * byte for byte as it was. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "importer.h"
#include "store.h"
#include "store_fixture.h"
#include "testlib.h"

/* Everything an import could change, as one string. */
static char *snapshot(struct store *s)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM contacts) || '|' || (SELECT count(*) FROM audit_log) || "
        "'|' || coalesce((SELECT group_concat(x, ',') FROM (SELECT id || ':' || version || ':' "
        "|| coalesce(email, '') AS x FROM contacts ORDER BY id)), '') || '|' || "
        "coalesce((SELECT value FROM node_meta WHERE key = 'hlc'), '')";
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out ? out : strdup("(snapshot failed)");
}

static long long contacts(struct store *s)
{
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM contacts", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

struct seen {
    int calls;
    char msgs[32][512];
    uint64_t last_progress;
    int progress_calls;
};

static void on_error(void *ctx, int rc, const struct op_error *e)
{
    struct seen *sn = ctx;
    (void)rc;
    if (sn->calls < 32)
        snprintf(sn->msgs[sn->calls], sizeof sn->msgs[0], "%s", e->msg);
    sn->calls++;
}

static void on_progress(void *ctx, uint64_t rows)
{
    struct seen *sn = ctx;
    sn->last_progress = rows;
    sn->progress_calls++;
}

static int import_buf(struct store *s, const char *csv, size_t len, unsigned flags,
                      struct importer_result *res, struct op_error *err, struct seen *sn)
{
    FILE *f = len ? fmemopen((void *)csv, len, "r") : fopen("/dev/null", "r");
    struct importer_opts o = {
        .name = "t.csv",
        .flags = flags,
        .on_error = sn ? on_error : NULL,
        .on_progress = sn ? on_progress : NULL,
        .ctx = sn,
    };
    int rc = importer_run(s, f, &o, res, err);
    fclose(f);
    return rc;
}

static int import(struct store *s, const char *csv, unsigned flags, struct importer_result *res,
                  struct op_error *err)
{
    return import_buf(s, csv, strlen(csv), flags, res, err, NULL);
}

static const char *sval(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(null)";
}

static json_t *get(struct store *s, const char *id)
{
    json_t *rec = NULL;
    struct op_error err;
    if (store_get(s, &entity_contact, id, 0, &rec, &err) < 0)
        fprintf(stderr, "get %s: %s\n", id, err.msg);
    return rec;
}

#define ID1 "01900000-0000-7000-8000-000000000001"
#define ID2 "01900000-0000-7000-8000-000000000002"
#define ID3 "01900000-0000-7000-8000-000000000003"

static void test_success(void)
{
    struct store *s = fx_store_next();
    static const char csv[] =
        "\xEF\xBB\xBF Given_Name ,FAMILY_NAME,Email,custom.Tier,custom.note,version,"
        "created_at,updated_at,deleted,id,country,birth_date,restricted\r\n"
        "Jos\xc3\xa9,\"M\xc3\xbcller, Jr.\",jose@example.com,gold,\"says \"\"hi\"\"\","
        "7,2020-01-01T00:00:00.000Z,2020-01-01T00:00:00.000Z,false," ID1 ",de,1980-02-29,true\r\n"
        "\xd0\x90\xd0\xbd\xd0\xbd\xd0\xb0,\"two\r\nlines\",,,,,,,," ID2 ",,,\r\n"
        "Gone,Away,gone@example.com,,,,,,true," ID3 ",,,\r\n"
        ",,,,,,,,,,,,\r\n";
    struct importer_result res;
    struct op_error err;
    struct seen sn = {0};
    int rc = import_buf(s, csv, sizeof csv - 1, 0, &res, &err, &sn);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "import: %s\n", err.msg);
    CHECK_EQ(res.imported, 2);
    CHECK_EQ(res.skipped_deleted, 1);
    CHECK_EQ(res.skipped_empty, 1);
    CHECK_EQ(res.errors, 0);
    CHECK_EQ(sn.calls, 0);
    CHECK_EQ(sn.last_progress, 2);
    CHECK_EQ(contacts(s), 2);

    json_t *a = get(s, ID1);
    CHECK_STR(sval(a, "given_name"), "Jos\xc3\xa9");
    CHECK_STR(sval(a, "family_name"), "M\xc3\xbcller, Jr.");
    CHECK_STR(sval(a, "email"), "jose@example.com");
    CHECK_STR(sval(a, "country"), "DE");
    CHECK_STR(sval(a, "birth_date"), "1980-02-29");
    CHECK(json_is_true(json_object_get(a, "restricted")));
    CHECK_EQ(json_integer_value(json_object_get(a, "version")), 1); /* meta ignored */
    json_t *custom = json_object_get(a, "custom");
    CHECK_STR(sval(custom, "Tier"), "gold");
    CHECK_STR(sval(custom, "note"), "says \"hi\"");
    json_decref(a);

    json_t *b = get(s, ID2);
    CHECK_STR(sval(b, "given_name"), "\xd0\x90\xd0\xbd\xd0\xbd\xd0\xb0");
    CHECK_STR(sval(b, "family_name"), "two\r\nlines");
    CHECK(json_is_null(json_object_get(b, "email")));
    CHECK_EQ(json_object_size(json_object_get(b, "custom")), 0); /* empty cells left out */
    CHECK(json_is_false(json_object_get(b, "restricted")));
    json_decref(b);

    json_t *gone = NULL;
    CHECK_EQ(store_get(s, &entity_contact, ID3, STORE_INCLUDE_DELETED, &gone, NULL), -ENOENT);
    store_close(s);
}

static void test_header_only_and_custom_json(void)
{
    struct store *s = fx_store_next();
    struct importer_result res;
    struct op_error err;
    CHECK_EQ(import(s, "given_name,email\r\n", 0, &res, &err), 0);
    CHECK_EQ(res.imported, 0);
    CHECK_EQ(contacts(s), 0);

    CHECK_EQ(
        import(s, "id,given_name,custom\n" ID1 ",Kim,\"{\"\"k\"\":\"\"v\"\"}\"\n", 0, &res, &err),
        0);
    json_t *k = get(s, ID1);
    CHECK_STR(sval(json_object_get(k, "custom"), "k"), "v");
    json_decref(k);
    store_close(s);
}

static void test_dry_run(void)
{
    struct store *s = fx_store_next();
    struct importer_result res;
    struct op_error err;
    char *before = snapshot(s);
    CHECK_EQ(import(s, "given_name,email\nAnn,ann@example.com\nBo,bo@example.com\n",
                    IMPORTER_DRY_RUN, &res, &err),
             0);
    CHECK_EQ(res.imported, 2);
    char *after = snapshot(s);
    CHECK_STR(after, before);
    free(after);

    /* a dry run finds a duplicate inside the file (the first row's insert
     * is visible to the second row) and several problems in one go */
    struct seen sn = {0};
    static const char bad[] = "given_name,email,birth_date\n"
                              "Ann,ann@example.com,\n"
                              "Bob,bob@,\n"
                              "Cid,cid@example.com,1990-13-01\n"
                              "Dee,ANN@example.com,\n"
                              "Eve,eve@example.com,\n";
    int rc = import_buf(s, bad, sizeof bad - 1, IMPORTER_DRY_RUN, &res, &err, &sn);
    CHECK_EQ(rc, -EINVAL);
    CHECK_EQ(res.errors, 3);
    CHECK_EQ(sn.calls, 3);
    CHECK_CONTAINS(sn.msgs[0], "t.csv:3:2 (email): not an e-mail address: \"bob@\"");
    CHECK_CONTAINS(sn.msgs[1], "t.csv:4:3 (birth_date): not a date in the form YYYY-MM-DD");
    CHECK_CONTAINS(sn.msgs[2], "t.csv:5:2 (email): probable duplicate of contact");
    CHECK_STR(err.msg, sn.msgs[0]); /* err is the first problem */
    CHECK_EQ(res.imported, 2);      /* Ann and Eve would have gone in */
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);

    /* the problem count is capped */
    char big[8192];
    size_t o = (size_t)snprintf(big, sizeof big, "given_name,email\n");
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "P%d,nope%d\n", i, i);
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(import_buf(s, big, o, IMPORTER_DRY_RUN, &res, &err, &sn), -EINVAL);
    CHECK_EQ(res.errors, IMPORTER_MAX_ERRORS_DEFAULT);
    CHECK_EQ(sn.calls, IMPORTER_MAX_ERRORS_DEFAULT);
    /* a real import stops at the first */
    memset(&sn, 0, sizeof sn);
    CHECK_EQ(import_buf(s, big, o, 0, &res, &err, &sn), -EINVAL);
    CHECK_EQ(sn.calls, 1);
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);
    free(before);
    store_close(s);
}

struct bad_case {
    const char *csv;
    int rc;
    const char *msg;
};

static void check_bad(struct store *s, const char *csv, size_t len, int want_rc,
                      const char *want_msg)
{
    char *before = snapshot(s);
    struct importer_result res;
    struct op_error err;
    int rc = import_buf(s, csv, len, 0, &res, &err, NULL);
    CHECK_EQ(rc, want_rc);
    CHECK_CONTAINS(err.msg, want_msg);
    CHECK_EQ(err.code, want_rc);
    char *after = snapshot(s);
    CHECK_STR(after, before);
    free(before);
    free(after);
    /* the same file in a dry run reports the same first problem */
    rc = import_buf(s, csv, len, IMPORTER_DRY_RUN, &res, &err, NULL);
    CHECK_EQ(rc, want_rc);
    CHECK_CONTAINS(err.msg, want_msg);
}

static void test_bad_input_changes_nothing(void)
{
    static const struct bad_case cases[] = {
        {"given_name,family_name\nAnna,Ok\nBen,\"unterminated\n", -EINVAL,
         "t.csv:3:2 (family_name): unterminated quoted field"},
        {"given_name,family_name\nAnna,Ok\n\xff,Bad\n", -EINVAL,
         "t.csv:3:1 (given_name): invalid UTF-8 (byte 0xFF at byte 1 of the field)"},
        {"given_name,family_name\nAnna,Ok\nBen,Bad\"quote\n", -EINVAL,
         "t.csv:3:2 (family_name): quote inside an unquoted field"},
        {"given_name,family_name\nAnna,Ok\nBen,Bad,Extra\n", -EINVAL,
         "t.csv:3:3: expected 2 fields as in the first row, found 3"},
        {"given_name,family_name\nAnna,Ok\nBen\n", -EINVAL,
         "t.csv:3:2 (family_name): expected 2 fields as in the first row, found 1"},
        {"given_name,Emial\nAnna,a@example.com\n", -EINVAL,
         "t.csv:1:2: unknown column \"Emial\"; known columns: id, owner_id, restricted, "
         "custom, given_name"},
        {"email, EMAIL \nx@example.com,y@example.com\n", -EINVAL,
         "t.csv:1:2 (email): duplicate column \"email\" (also column 1)"},
        {"given_name,,email\nA,,a@example.com\n", -EINVAL, "t.csv:1:2: empty column name"},
        {"given_name,custom,custom.x\nA,{},1\n", -EINVAL,
         "t.csv:1:2 (custom): use either a custom column"},
        {"given_name,custom.\nA,1\n", -EINVAL, "t.csv:1:2: custom column \"custom.\" needs a NAME"},
        {"given_name,email\nAnna,anna@example.com\nBob,bob@\n", -EINVAL,
         "t.csv:3:2 (email): not an e-mail address: \"bob@\""},
        {"given_name,job_title,email\nAnna,\"multi\nline\",bad\n", -EINVAL,
         "t.csv:3:3 (email): not an e-mail address: \"bad\""},
        {"given_name,birth_date\nAnna,1990-02-30\n", -EINVAL,
         "t.csv:2:2 (birth_date): not a date in the form YYYY-MM-DD: \"1990-02-30\""},
        {"given_name,country\nAnna,XX\n", -EINVAL,
         "t.csv:2:2 (country): not an ISO 3166-1 alpha-2 country code: \"XX\""},
        {"given_name,restricted\nAnna,maybe\n", -EINVAL,
         "t.csv:2:2 (restricted): expected true or false"},
        {"given_name,owner_id\nAnna," ID1 "\n", -EINVAL, "t.csv:2:2 (owner_id): no user with id"},
        {"id,given_name\nnot-a-uuid,Anna\n", -EINVAL, "t.csv:2:1 (id): not a UUIDv7"},
        {"given_name,deleted\nAnna,perhaps\n", -EINVAL,
         "t.csv:2:2 (deleted): expected true or false (or empty): \"perhaps\""},
        {"job_title\nBoss\n", -EINVAL, "t.csv:2: a contact needs at least a name"},
        {"\n\n", -EINVAL, "t.csv:1: empty file; expected a header row"},
    };
    struct store *s = fx_store_next();
    struct op_error err;
    json_t *eva = json_pack("{s:s, s:s}", "given_name", "Eva", "email", "eva@example.com");
    CHECK_EQ(store_create(s, &entity_contact, eva, 0, NULL, &err), 0);
    json_decref(eva);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_bad(s, cases[i].csv, strlen(cases[i].csv), cases[i].rc, cases[i].msg);
    check_bad(s, "", 0, -EINVAL, "t.csv:1: empty file");

    /* an over-long field */
    char *big = malloc(70000);
    size_t o = (size_t)snprintf(big, 70000, "given_name,job_title\nAnna,Boss\nBen,");
    memset(big + o, 'x', 65537);
    o += 65537;
    big[o++] = '\n';
    check_bad(s, big, o, -EINVAL, "t.csv:3:2 (job_title): field longer than 65536 bytes");
    /* a value over the field's own cap */
    o = (size_t)snprintf(big, 70000, "given_name\n");
    memset(big + o, 'y', 201);
    o += 201;
    big[o++] = '\n';
    check_bad(s, big, o, -EINVAL, "t.csv:2:1 (given_name): longer than 200 bytes");
    free(big);

    /* a bad row at the very end of a long file: nothing of it stays */
    size_t cap = 2000 * 64;
    char *many = malloc(cap);
    o = (size_t)snprintf(many, cap, "given_name,family_name,email\n");
    for (int i = 0; i < 1999; i++)
        o += (size_t)snprintf(many + o, cap - o, "G%d,F%d,p%d@example.com\n", i, i, i);
    o += (size_t)snprintf(many + o, cap - o, "Last,Row,last@\n");
    check_bad(s, many, o, -EINVAL, "t.csv:2001:3 (email): not an e-mail address");
    free(many);
    CHECK_EQ(contacts(s), 1);
    store_close(s);
}

static void test_duplicates(void)
{
    struct store *s = fx_store_next();
    struct op_error err;
    json_t *eva =
        json_pack("{s:s, s:s, s:s}", "id", ID1, "given_name", "Eva", "email", "eva@example.com");
    CHECK_EQ(store_create(s, &entity_contact, eva, 0, NULL, &err), 0);
    json_decref(eva);

    /* against the database: named by id, column and line */
    char *before = snapshot(s);
    struct importer_result res;
    const char *dup_db = "given_name,email\nNew,new@example.com\nEve,EVA@example.com\n";
    CHECK_EQ(import(s, dup_db, 0, &res, &err), STORE_EDUP);
    CHECK_CONTAINS(err.msg, "t.csv:3:2 (email): probable duplicate of contact " ID1);
    CHECK_CONTAINS(err.msg, "--skip-duplicate-check");
    CHECK_STR(err.ref, ID1);
    char *after = snapshot(s);
    CHECK_STR(after, before);
    free(after);

    /* inside the file: the earlier row is the "existing" record */
    const char *dup_file =
        "id,given_name,phone\n" ID2 ",Ann,+49 30 1234567\n" ID3 ",Other,030 1234567\n";
    CHECK_EQ(import(s, dup_file, 0, &res, &err), STORE_EDUP);
    CHECK_CONTAINS(err.msg, "t.csv:3:3 (phone): probable duplicate of contact " ID2);
    CHECK_STR(err.ref, ID2);
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);

    /* an id that exists already */
    CHECK_EQ(import(s, "id,given_name\n" ID1 ",Someone Else\n", 0, &res, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "t.csv:2:1 (id): a contact with id " ID1 " already exists");
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);
    free(before);

    /* the override */
    CHECK_EQ(import(s, dup_db, IMPORTER_SKIP_DUP_CHECK, &res, &err), 0);
    CHECK_EQ(res.imported, 2);
    CHECK_EQ(import(s, dup_file, IMPORTER_SKIP_DUP_CHECK, &res, &err), 0);
    CHECK_EQ(contacts(s), 5);
    store_close(s);
}

static void test_progress(void)
{
    struct store *s = fx_store_next();
    size_t cap = 1000 * 48;
    char *csv = malloc(cap);
    size_t o = (size_t)snprintf(csv, cap, "given_name,email\n");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(csv + o, cap - o, "N%d,n%d@example.com\n", i, i);
    struct importer_result res;
    struct op_error err;
    struct seen sn = {0};
    CHECK_EQ(import_buf(s, csv, o, 0, &res, &err, &sn), 0);
    CHECK_EQ(res.imported, 1000);
    CHECK_EQ(sn.last_progress, 1000);
    CHECK(sn.progress_calls >= 4);
    CHECK_EQ(contacts(s), 1000);
    free(csv);
    store_close(s);
}

/* A file of `n` good rows (given_name, e-mail, a German phone) with
 * `bad` (if not NULL) as data row number `at` (1-based), in a malloc'd
 * buffer; *len its length. */
static char *many_rows(int n, int at, const char *bad, size_t *len)
{
    size_t cap = (size_t)n * 80 + 256;
    char *csv = malloc(cap);
    size_t o = (size_t)snprintf(csv, cap, "given_name,email,phone\n");
    for (int i = 1; i <= n; i++) {
        if (bad && i == at)
            o += (size_t)snprintf(csv + o, cap - o, "%s\n", bad);
        else
            o += (size_t)snprintf(csv + o, cap - o, "Row%d,row%d@example.com,030 %07d\n", i, i,
                                  1000000 + i);
    }
    *len = o;
    return csv;
}

/* The rows are read and checked on a thread of their own and written
 * here: the smallest files, a problem at the first row, and problems on
 * either side of the hand-off in files far longer than the queue (256
 * rows) all end with the same results and an untouched database. */
static void test_two_threads(void)
{
    struct store *s = fx_store_next();
    struct importer_result res;
    struct op_error err;
    char *before = snapshot(s);

    /* no data row, and no byte at all */
    CHECK_EQ(import(s, "given_name,email\n", 0, &res, &err), 0);
    CHECK_EQ(res.imported, 0);
    CHECK_EQ(import_buf(s, "", 0, 0, &res, &err, NULL), -EINVAL);
    CHECK_CONTAINS(err.msg, "t.csv:1: empty file");
    char *after = snapshot(s);
    CHECK_STR(after, before);
    free(after);

    /* bad at the first row: the parser's own problem, then the store's */
    CHECK_EQ(import(s, "given_name,deleted\nAnn,maybe\n", 0, &res, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "t.csv:2:2 (deleted): expected true or false");
    CHECK_EQ(import(s, "given_name,email\nAnn,not-an-address\n", 0, &res, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "t.csv:2:2 (email):");
    CHECK_EQ(res.imported, 0);
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);

    /* one row */
    CHECK_EQ(import(s, "given_name,phone\nUna,030 1234567\n", 0, &res, &err), 0);
    CHECK_EQ(res.imported, 1);
    CHECK_EQ(contacts(s), 1);
    free(before);
    before = snapshot(s);

    /* a bad cell at row 1,500 of 2,000: rows before it were written,
     * and are rolled back; the rows after it are never read */
    size_t len;
    char *csv = many_rows(2000, 1500, "Bad,bad@example.com,not a phone at all", &len);
    CHECK_EQ(import_buf(s, csv, len, 0, &res, &err, NULL), -EINVAL);
    CHECK_CONTAINS(err.msg, "t.csv:1501:3 (phone):");
    CHECK_EQ(res.imported, 1499);
    CHECK_EQ(res.errors, 1);
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);
    free(csv);

    /* a duplicate of the one record at row 2 of 2,000: the writer stops
     * while the parser waits on a full queue; both end, nothing changed */
    csv = many_rows(2000, 2, "Una,una@example.com,+49 30 1234567", &len);
    CHECK_EQ(import_buf(s, csv, len, 0, &res, &err, NULL), STORE_EDUP);
    CHECK_CONTAINS(err.msg, "t.csv:3:3 (phone): probable duplicate of contact");
    CHECK_EQ(res.imported, 1);
    CHECK_EQ(res.errors, 1);
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);
    free(csv);

    /* a dry run stops at its error limit though the parser could go on;
     * problems come in file order, from both threads */
    size_t cap = 3000 * 40;
    char *many_bad = malloc(cap);
    size_t o = (size_t)snprintf(many_bad, cap, "given_name,email,deleted\n");
    for (int i = 1; i <= 3000; i++)
        o +=
            (size_t)snprintf(many_bad + o, cap - o, i % 2 ? "N%d,bad%d,\n" : "N%d,,what%d\n", i, i);
    struct seen sn = {0};
    struct importer_opts opt = {.name = "t.csv",
                                .flags = IMPORTER_DRY_RUN,
                                .max_errors = 5,
                                .on_error = on_error,
                                .ctx = &sn};
    FILE *f = fmemopen(many_bad, o, "r");
    CHECK_EQ(importer_run(s, f, &opt, &res, &err), -EINVAL);
    fclose(f);
    CHECK_EQ(res.errors, 5);
    CHECK_EQ(sn.calls, 5);
    CHECK_CONTAINS(sn.msgs[0], "t.csv:2:2 (email):");
    CHECK_CONTAINS(sn.msgs[1], "t.csv:3:3 (deleted): expected true or false");
    CHECK_CONTAINS(sn.msgs[4], "t.csv:6:2 (email):");
    after = snapshot(s);
    CHECK_STR(after, before);
    free(after);
    free(many_bad);

    /* and the whole long file, good, lands in order */
    csv = many_rows(2000, 0, NULL, &len);
    CHECK_EQ(import_buf(s, csv, len, 0, &res, &err, NULL), 0);
    CHECK_EQ(res.imported, 2000);
    CHECK_EQ(contacts(s), 2001);
    free(csv);
    free(before);
    store_close(s);
}

/* ---- contacts written in batches ------------------------------------- */

/* What a batch could change in order: the contacts in rowid order with
 * their keys, whether their clock stamps rise with the rowid, the audit
 * rows and the outbox rows in order. */
static char *digest(struct store *s)
{
    static const char sql[] =
        "SELECT (SELECT group_concat(x, ',') FROM (SELECT id || ':' || coalesce(email, '') || "
        "':' || version || ':' || coalesce(phone_e164, '') || ':' || coalesce(name_key, '') "
        "AS x FROM contacts ORDER BY rowid)) || '|' || (SELECT count(*) FROM contacts a JOIN "
        "contacts b ON b.rowid = a.rowid + 1 WHERE b.created_hlc <= a.created_hlc) || '|' || "
        "(SELECT group_concat(x, ',') FROM (SELECT action || ':' || record_id || ':' || "
        "coalesce(version_after, '') AS x FROM audit_log WHERE entity = 'contact' ORDER BY "
        "rowid)) || '|' || (SELECT group_concat(x, ',') FROM (SELECT entity || ':' || "
        "record_id || ':' || version || ':' || op AS x FROM outbox ORDER BY rowid))";
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out ? out : strdup("(digest failed)");
}

struct run {
    int rc;
    struct importer_result res;
    struct op_error err;
    struct seen sn;
    char *report;
};

static void run_free(struct run *r)
{
    free(r->report);
}

static void run_batched(struct store *s, const char *csv, unsigned flags, enum importer_on_dup od,
                        size_t batch, struct run *r)
{
    memset(r, 0, sizeof *r);
    size_t n = 0;
    FILE *rep = open_memstream(&r->report, &n);
    FILE *f = fmemopen((void *)csv, strlen(csv), "r");
    struct importer_opts o = {.name = "t.csv",
                              .flags = flags,
                              .on_error = on_error,
                              .on_progress = on_progress,
                              .ctx = &r->sn,
                              .on_duplicate = od,
                              .report = rep,
                              .batch_rows = batch};
    r->rc = importer_run(s, f, &o, &r->res, &r->err);
    fclose(f);
    fclose(rep);
}

/* The same outcome, byte for byte, one statement a row or in batches. */
static void same_runs(const struct run *a, const struct run *b)
{
    CHECK_EQ(b->rc, a->rc);
    CHECK_STR(b->err.msg, a->err.msg);
    CHECK_STR(b->report, a->report);
    CHECK(!memcmp(&b->res, &a->res, sizeof a->res));
    CHECK_EQ(b->sn.calls, a->sn.calls);
    for (int i = 0; i < a->sn.calls && i < 32; i++)
        CHECK_STR(b->sn.msgs[i], a->sn.msgs[i]);
    CHECK_EQ(b->sn.last_progress, a->sn.last_progress);
}

#define BID(n) "01900000-0000-7000-8000-0000000001" #n

/* Thirteen rows with explicit ids: a phone kept as typed (row 4), the
 * same name in the same locality as row 2 (row 6: a warning naming row
 * 2's contact), row 3's e-mail again (row 9: a probable duplicate), and
 * with `bad`, row 11 replaced by it. */
static char *batch_file(const char *bad)
{
    static const char *const rows[] = {
        BID(01) ",Ana,Silva,ana@example.org,030 1000001,Berlin",
        BID(02) ",Bo,Berg,bo@example.org,030 1000002,Berlin",
        BID(03) ",Cy,Cole,cy@example.org,030 1000003,Hamburg",
        BID(04) ",Di,Dorn,di@example.org,+1 000 000 0000,Berlin",
        BID(05) ",Ed,Eck,ed@example.org,030 1000005,Köln",
        BID(06) ",Bo,Berg,bo.two@example.org,030 1000006,Berlin",
        BID(07) ",Fay,Fink,fay@example.org,030 1000007,Bonn",
        BID(08) ",Gil,Gross,gil@example.org,030 1000008,Bonn",
        BID(09) ",Cyrus,Other,CY@example.org,030 1000009,Essen",
        BID(10) ",Hal,Horn,hal@example.org,030 1000010,Essen",
        BID(11) ",Ida,Iser,ida@example.org,030 1000011,Ulm",
        BID(12) ",Jo,Jung,jo@example.org,030 1000012,Ulm",
        BID(13) ",Kai,Kurz,kai@example.org,030 1000013,Ulm",
    };
    size_t cap = 4096;
    char *csv = malloc(cap);
    size_t o = (size_t)snprintf(csv, cap, "id,given_name,family_name,email,phone,locality\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        o += (size_t)snprintf(csv + o, cap - o, "%s\n", bad && i == 10 ? bad : rows[i]);
    return csv;
}

/* Batches of 1 (a statement a row, as before), 2, 3, 5 and the default
 * give the same report, messages, counts, records, audit and outbox,
 * on an empty node (keys in memory) and on a node that already holds a
 * contact (keys looked up in SQLite plus the rows staged). */
static void test_batches_same_result(void)
{
    static const size_t sizes[] = {2, 3, 5, 0};
    char *csv = batch_file(NULL);
    for (int held = 0; held < 2; held++) {
        struct run one;
        char *want = NULL;
        for (int k = -1; k < (int)(sizeof sizes / sizeof sizes[0]); k++) {
            struct store *s = fx_store_next();
            struct op_error err;
            if (held) {
                json_t *z = json_pack("{s:s, s:s, s:s}", "id", ID1, "given_name", "Zed", "email",
                                      "zed@example.org");
                CHECK_EQ(store_create(s, &entity_contact, z, 0, NULL, &err), 0);
                json_decref(z);
            }
            struct run r;
            run_batched(s, csv, 0, IMPORTER_DUP_NEW, k < 0 ? 1 : sizes[k], &r);
            char *got = digest(s);
            if (k < 0) {
                one = r;
                want = got;
                CHECK_EQ(r.rc, 0);
                CHECK_EQ(r.res.imported, 13);
                CHECK_EQ(r.res.dup_new, 1);
                CHECK(r.res.warnings >= 2);
                CHECK_CONTAINS(r.report, "10,new," BID(03));
                CHECK_CONTAINS(r.report, "7,create," BID(02));
                CHECK_CONTAINS(r.report, "5,create,,\"phone: ");
            } else {
                same_runs(&one, &r);
                CHECK_STR(got, want);
                free(got);
                run_free(&r);
            }
            store_close(s);
        }
        run_free(&one);
        free(want);
    }
    free(csv);
}

/* A batch the database refuses (an id twice in the file) is written again
 * row by row: the row at fault is named at its line and column as before,
 * the rows before it are reported first, a dry run goes on after it, and
 * a real import leaves the database as it was. Row 11 repeats row 10's
 * id, so with batches of 3 the batch of rows 10 to 12 fails as a whole;
 * with batches of 5, rows 11 to 13 have row 12 as a bad e-mail too, a
 * problem found before the database, between staged rows. */
static void test_batch_failure_replayed(void)
{
    char *csv = batch_file(BID(10) ",Ida,Iser,ida@example.org,030 1000011,Ulm");
    static const char *const bad2 = BID(10) ",Ida,Iser,ida@example.org,030 1000011,Ulm\n" BID(
        12) ",Jo,Jung,not-an-address,030 1000012,Ulm";
    char *csv2 = batch_file(bad2);
    const char *files[] = {csv, csv2};
    for (int f = 0; f < 2; f++) {
        for (int dry = 0; dry < 2; dry++) {
            struct run one;
            for (int k = 0; k < 4; k++) {
                static const size_t sizes[] = {1, 3, 5, 0};
                struct store *s = fx_store_next();
                char *before = snapshot(s);
                struct run r;
                run_batched(s, files[f], dry ? IMPORTER_DRY_RUN : 0, IMPORTER_DUP_NEW, sizes[k],
                            &r);
                char *after = snapshot(s);
                CHECK_STR(after, before);
                free(after);
                free(before);
                if (k == 0) {
                    one = r;
                    CHECK_EQ(r.rc, -EEXIST);
                    CHECK_CONTAINS(r.err.msg,
                                   "t.csv:12:1 (id): a contact with id " BID(10) " already exists");
                    CHECK_CONTAINS(r.report, "11,create,");
                    CHECK_EQ(r.res.errors, dry && f ? 2u : 1u);
                    if (dry)
                        CHECK_CONTAINS(r.report, "14,create,");
                } else {
                    same_runs(&one, &r);
                    run_free(&r);
                }
                store_close(s);
            }
            run_free(&one);
        }
    }
    free(csv);
    free(csv2);
}

/* On a node that already holds contacts the lookups go to SQLite, which
 * does not see the staged rows: a row matching one staged before it in
 * the same batch is still found, named by that row's id. */
static void test_batch_sees_staged_rows(void)
{
    static const char csv[] = "id,given_name,email,phone\n" BID(01) ",Ann,ann@example.org,\n" BID(
        02) ",Ben,ben@example.org,+49 30 1234567\n" BID(03) ",Other,other@example.org,030 "
                                                            "1234567\n";
    struct store *s = fx_store_next();
    struct op_error err;
    json_t *z =
        json_pack("{s:s, s:s, s:s}", "id", ID1, "given_name", "Zed", "email", "zed@example.org");
    CHECK_EQ(store_create(s, &entity_contact, z, 0, NULL, &err), 0);
    json_decref(z);
    char *before = snapshot(s);
    struct run r;
    run_batched(s, csv, 0, IMPORTER_DUP_REFUSE, 0, &r);
    CHECK_EQ(r.rc, STORE_EDUP);
    CHECK_CONTAINS(r.err.msg, "t.csv:4:4 (phone): probable duplicate of contact " BID(02));
    char *after = snapshot(s);
    CHECK_STR(after, before);
    free(after);
    free(before);
    run_free(&r);
    store_close(s);
}

int main(void)
{
    fx_tmpdir("importer");
    RUN(test_success);
    RUN(test_header_only_and_custom_json);
    RUN(test_dry_run);
    RUN(test_bad_input_changes_nothing);
    RUN(test_duplicates);
    RUN(test_progress);
    RUN(test_two_threads);
    RUN(test_batches_same_result);
    RUN(test_batch_failure_replayed);
    RUN(test_batch_sees_staged_rows);
    return fx_finish();
}
