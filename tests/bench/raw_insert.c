/*
 * bench_raw_insert: the floor `outpost import` is measured against. It
 * reads a gen_contacts CSV file and inserts every row with one prepared
 * statement into a plain 12-column table, in one transaction, with the
 * connection settings the store uses for durability (WAL,
 * synchronous=FULL), and reports rows per second. No validation, no
 * duplicate keys, no search index, no audit: what is left is parsing and
 * SQLite itself.
 *
 * The CSV reader here is a minimal RFC 4180 one (quoted fields, doubled
 * quotes, CRLF or LF, line breaks inside quotes); it exists so that the
 * benchmark does not depend on the code it measures.
 *
 * With --outpost-schema the rows go instead into the contacts table of a
 * real node database (made by db_open, so with every index and trigger of
 * today's schema), and each row carries what that schema needs SQLite to
 * store for it:
 *   - the 12 columns, an id (UUIDv7) and a clock stamp (created_hlc,
 *     updated_hlc), version 1;
 *   - the five duplicate-key columns (email_norm, phone_e164, name_key,
 *     street_key, phone_tail), so their five partial indexes get an entry
 *     each; the keys are made here the cheap way (e-mail lower-cased, the
 *     phone's digits after a '+', "given family|locality" and
 *     "street|locality" lower-cased in ASCII, the phone's last 7 digits),
 *     which gives index entries of about the size and spread of the real
 *     ones without Outpost's folding or libphonenumber;
 *   - through the schema's own triggers: the full-text index with the
 *     outpost_fold tokenizer (pairs of characters for Chinese, Japanese,
 *     Thai) and the outbox row for HQ.
 * It uses the connection settings `outpost import` uses: WAL,
 * synchronous=FULL and the import's 64 MiB page cache.
 * What it leaves out is Outpost's own work: validation, normalization,
 * the duplicate lookups and the audit row. The difference between the two
 * runs is what the schema costs SQLite; the rest of `outpost import`'s
 * time is Outpost's.
 *
 * --rows-per-statement N (with --outpost-schema) is an experiment, not the
 * baseline: the rows go first into a temporary table, and every N rows
 * one INSERT ... SELECT moves them into contacts. The triggers still run
 * per row, but a statement that writes the full-text index ends with a
 * savepoint release, at which SQLite's FTS5 writes its pending terms out
 * as a new segment; N rows a statement make that once per N rows. It
 * shows what that per-statement flush costs (docs/BENCHMARKS.md).
 *
 * Usage: bench_raw_insert [--outpost-schema [--rows-per-statement N]] FILE.csv DB
 *        (DB must not exist yet)
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "db.h"
#include "uuid7.h"

#define NCOLS 12
#define FIELD_MAX 65536

static const char *const columns[NCOLS] = {
    "given_name", "family_name", "email",   "phone",    "street",    "locality",
    "region",     "postal_code", "country", "language", "job_title", "birth_date",
};

struct reader {
    FILE *in;
    unsigned long line; /* physical line of the next character */
    char *buf[NCOLS];
    size_t len[NCOLS];
};

/* Reads one record into r->buf; returns the number of fields, 0 at end of
 * file, or -1 after printing an error. */
static int read_record(struct reader *r, const char *path)
{
    int n = 0, c = getc(r->in);
    if (c == EOF)
        return 0;
    unsigned long start = r->line;
    for (;;) {
        if (n == NCOLS) {
            fprintf(stderr, "bench_raw_insert: %s:%lu: more than %d fields\n", path, start, NCOLS);
            return -1;
        }
        size_t len = 0;
        char *b = r->buf[n];
        if (c == '"') {
            for (;;) {
                c = getc(r->in);
                if (c == EOF) {
                    fprintf(stderr, "bench_raw_insert: %s:%lu: unterminated quoted field\n", path,
                            start);
                    return -1;
                }
                if (c == '"') {
                    c = getc(r->in);
                    if (c != '"')
                        break;
                } else if (c == '\n') {
                    r->line++;
                }
                if (len + 1 >= FIELD_MAX) {
                    fprintf(stderr, "bench_raw_insert: %s:%lu: field over %d bytes\n", path,
                            r->line, FIELD_MAX);
                    return -1;
                }
                b[len++] = (char)c;
            }
        } else {
            while (c != ',' && c != '\n' && c != '\r' && c != EOF) {
                if (c == '"') {
                    fprintf(stderr, "bench_raw_insert: %s:%lu: quote inside an unquoted field\n",
                            path, r->line);
                    return -1;
                }
                if (len + 1 >= FIELD_MAX) {
                    fprintf(stderr, "bench_raw_insert: %s:%lu: field over %d bytes\n", path,
                            r->line, FIELD_MAX);
                    return -1;
                }
                b[len++] = (char)c;
                c = getc(r->in);
            }
        }
        b[len] = '\0';
        r->len[n++] = len;
        if (c == ',') {
            c = getc(r->in);
            continue;
        }
        if (c == '\r')
            c = getc(r->in);
        if (c == '\n') {
            r->line++;
            return n;
        }
        if (c == EOF)
            return n;
        fprintf(stderr, "bench_raw_insert: %s:%lu: unexpected character after a field\n", path,
                r->line);
        return -1;
    }
}

/* Column numbers in the file (see columns[]). */
enum { C_GIVEN, C_FAMILY, C_EMAIL, C_PHONE, C_STREET, C_LOCALITY };

/* Appends s lower-cased (ASCII letters only) to out at *o. */
static void put_lower(char *out, size_t cap, size_t *o, const char *s)
{
    for (; *s && *o + 1 < cap; s++)
        out[(*o)++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    out[*o] = '\0';
}

/* Binds the duplicate-key columns (?15 to ?19) made the cheap way; a key
 * whose parts are empty is NULL, as the store leaves it. */
static void bind_keys(sqlite3_stmt *st, const struct reader *r)
{
    char email[256], phone[40], name[512], street[512], tail[8];
    size_t o = 0;
    put_lower(email, sizeof email, &o, r->buf[C_EMAIL]);
    size_t np = 0;
    phone[np++] = '+';
    for (const char *p = r->buf[C_PHONE]; *p && np + 1 < sizeof phone; p++)
        if (*p >= '0' && *p <= '9')
            phone[np++] = *p;
    phone[np] = '\0';
    tail[0] = '\0';
    if (np > 7)
        memcpy(tail, phone + np - 7, 8);
    o = 0;
    put_lower(name, sizeof name, &o, r->buf[C_GIVEN]);
    put_lower(name, sizeof name, &o, " ");
    put_lower(name, sizeof name, &o, r->buf[C_FAMILY]);
    put_lower(name, sizeof name, &o, "|");
    put_lower(name, sizeof name, &o, r->buf[C_LOCALITY]);
    o = 0;
    put_lower(street, sizeof street, &o, r->buf[C_STREET]);
    put_lower(street, sizeof street, &o, "|");
    put_lower(street, sizeof street, &o, r->buf[C_LOCALITY]);
    const char *v[] = {email[0] ? email : NULL, np > 1 ? phone : NULL,
                       r->len[C_GIVEN] || r->len[C_FAMILY] ? name : NULL,
                       r->len[C_STREET] ? street : NULL, tail[0] ? tail : NULL};
    for (int i = 0; i < 5; i++) {
        if (v[i])
            sqlite3_bind_text(st, 15 + i, v[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st, 15 + i);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail_db(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench_raw_insert: %s: %s\n", what, sqlite3_errmsg(db));
    return 1;
}

int main(int argc, char **argv)
{
    int outpost_schema = argc >= 4 && !strcmp(argv[1], "--outpost-schema");
    long per_stmt = 0;
    if (outpost_schema && argc == 6 && !strcmp(argv[2], "--rows-per-statement")) {
        char *end;
        per_stmt = strtol(argv[3], &end, 10);
        if (*end || per_stmt < 1 || per_stmt > 100000)
            per_stmt = -1;
    }
    if ((argc != 3 && !(outpost_schema && argc == 4) && per_stmt == 0) || per_stmt < 0) {
        fprintf(stderr, "usage: bench_raw_insert [--outpost-schema [--rows-per-statement N]] "
                        "FILE.csv DB   (DB must not exist yet; N from 1 to 100000)\n");
        return 2;
    }
    const char *csv = argv[argc - 2], *dbpath = argv[argc - 1];
    struct stat st;
    if (stat(dbpath, &st) == 0) {
        fprintf(stderr, "bench_raw_insert: %s exists; give a new database path\n", dbpath);
        return 2;
    }
    struct reader r = {.line = 1};
    for (int i = 0; i < NCOLS; i++) {
        r.buf[i] = malloc(FIELD_MAX);
        if (!r.buf[i]) {
            fprintf(stderr, "bench_raw_insert: out of memory\n");
            return 1;
        }
    }
    r.in = fopen(csv, "re");
    if (!r.in) {
        fprintf(stderr, "bench_raw_insert: cannot open %s: %s\n", csv, strerror(errno));
        return 1;
    }

    int ret = 1;
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    double t0 = now_s();
    int n = read_record(&r, csv);
    if (n != NCOLS) {
        if (n >= 0)
            fprintf(stderr, "bench_raw_insert: %s:1: expected a header of %d columns\n", csv,
                    NCOLS);
        goto out;
    }
    for (int i = 0; i < NCOLS; i++)
        if (strcmp(r.buf[i], columns[i]) != 0) {
            fprintf(stderr, "bench_raw_insert: %s:1: column %d is '%s', expected '%s'\n", csv,
                    i + 1, r.buf[i], columns[i]);
            goto out;
        }

    static const char plain_setup[] =
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
        "CREATE TABLE contacts (given_name TEXT, family_name TEXT, email TEXT, phone TEXT,"
        " street TEXT, locality TEXT, region TEXT, postal_code TEXT, country TEXT,"
        " language TEXT, job_title TEXT, birth_date TEXT);";
    static const char plain_insert[] = "INSERT INTO contacts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
    static const char outpost_insert[] =
        "INSERT INTO contacts (given_name, family_name, email, phone, street, locality, region,"
        " postal_code, country, language, job_title, birth_date, id, version, created_hlc,"
        " updated_hlc, email_norm, phone_e164, name_key, street_key, phone_tail)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?13,1,?14,?14,?15,?16,?17,?18,?19)";
    if (outpost_schema) {
        struct op_error err;
        if (db_open(dbpath, DB_OPEN_CREATE, &db, &err) < 0) {
            fprintf(stderr, "bench_raw_insert: %s\n", err.msg);
            goto out;
        }
        /* the import's page cache (appliance/io/sql/importer.sql) */
        if (sqlite3_exec(db, "PRAGMA cache_size = -65536", NULL, NULL, NULL) != SQLITE_OK) {
            ret = fail_db(db, "cannot set the page cache");
            goto out;
        }
    } else if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
               sqlite3_exec(db, plain_setup, NULL, NULL, NULL) != SQLITE_OK) {
        ret = fail_db(db, "cannot set up the database");
        goto out;
    }
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        ret = fail_db(db, "cannot begin");
        goto out;
    }
    static const char stage_setup[] =
        "CREATE TEMP TABLE stage AS SELECT given_name, family_name, email, phone, street,"
        " locality, region, postal_code, country, language, job_title, birth_date, id, version,"
        " created_hlc, updated_hlc, email_norm, phone_e164, name_key, street_key, phone_tail"
        " FROM main.contacts WHERE 0";
    static const char stage_insert[] =
        "INSERT INTO temp.stage VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?13,1,?14,?14,?15,?16,?17,?18,?19)";
    static const char stage_move[] =
        "INSERT INTO main.contacts (given_name, family_name, email, phone, street, locality,"
        " region, postal_code, country, language, job_title, birth_date, id, version,"
        " created_hlc, updated_hlc, email_norm, phone_e164, name_key, street_key, phone_tail)"
        " SELECT * FROM temp.stage ORDER BY rowid; DELETE FROM temp.stage;";
    if (per_stmt && sqlite3_exec(db, stage_setup, NULL, NULL, NULL) != SQLITE_OK) {
        ret = fail_db(db, "cannot make the staging table");
        goto out;
    }
    if (sqlite3_prepare_v2(db,
                           per_stmt         ? stage_insert
                           : outpost_schema ? outpost_insert
                                            : plain_insert,
                           -1, &ins, NULL) != SQLITE_OK) {
        ret = fail_db(db, "cannot prepare the insert");
        goto out;
    }
    struct uuid7_gen ids;
    uuid7_init(&ids, NULL, NULL, NULL, NULL);
    unsigned long rows = 0;
    for (;;) {
        unsigned long line = r.line;
        n = read_record(&r, csv);
        if (n == 0)
            break;
        if (n < 0)
            goto out;
        if (n != NCOLS) {
            fprintf(stderr, "bench_raw_insert: %s:%lu: %d fields, expected %d\n", csv, line, n,
                    NCOLS);
            goto out;
        }
        for (int i = 0; i < NCOLS; i++) {
            if (r.len[i])
                sqlite3_bind_text(ins, i + 1, r.buf[i], (int)r.len[i], SQLITE_STATIC);
            else
                sqlite3_bind_null(ins, i + 1);
        }
        if (outpost_schema) {
            char id[UUID_TEXT_LEN];
            if (uuid7_next_text(&ids, id) < 0)
                goto out;
            sqlite3_bind_text(ins, 13, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 14, (sqlite3_int64)(rows + 1));
            bind_keys(ins, &r);
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            ret = fail_db(db, "insert failed");
            goto out;
        }
        sqlite3_reset(ins);
        rows++;
        if (per_stmt && rows % (unsigned long)per_stmt == 0 &&
            sqlite3_exec(db, stage_move, NULL, NULL, NULL) != SQLITE_OK) {
            ret = fail_db(db, "cannot move the staged rows");
            goto out;
        }
    }
    if (per_stmt && sqlite3_exec(db, stage_move, NULL, NULL, NULL) != SQLITE_OK) {
        ret = fail_db(db, "cannot move the staged rows");
        goto out;
    }
    sqlite3_finalize(ins);
    ins = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        ret = fail_db(db, "commit failed");
        goto out;
    }
    double secs = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("rows %lu seconds %.3f rows_per_s %.0f cpu_seconds %.3f\n", rows, secs,
           secs > 0 ? rows / secs : 0.0, cpu);
    ret = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    fclose(r.in);
    for (int i = 0; i < NCOLS; i++)
        free(r.buf[i]);
    return ret;
}
