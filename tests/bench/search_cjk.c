/*
 * Index size and insert rate of three ways to index names and addresses
 * written without spaces (Chinese, Japanese, Thai), and whether each
 * finds a two-character substring (docs/BENCHMARKS.md, "Search in
 * scripts without spaces"):
 *
 *   pairs      outpost_fold as shipped: runs of those scripts as
 *              overlapping pairs of characters
 *   trigram    SQLite's trigram tokenizer (substrings of 3 or more)
 *   unicode61  the run as one token, the tokenizer before (prefixes only)
 *
 * usage: bench_search_cjk DIR [ROWS]   (default 3000 rows)
 * Each variant gets a fresh database in DIR (node settings: WAL,
 * synchronous=FULL) and one transaction of ROWS inserts into an FTS5 table
 * of five columns. Prints one line per variant.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"

static const char *const cn_family[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"};
static const char *const cn_given[] = {"小明", "伟", "芳", "娜", "秀英",
                                       "敏",   "静", "丽", "强", "磊"};
static const char *const cn_place[] = {"上海市海淀区", "北京市朝阳区", "广州市天河区",
                                       "深圳市南山区", "成都市武侯区", "杭州市西湖区"};
static const char *const cn_street[] = {"中山路", "人民大道", "建国门外大街", "南京东路"};
static const char *const jp_family[] = {"山田", "佐藤", "鈴木", "高橋", "田中", "渡辺"};
static const char *const jp_given[] = {"太郎", "花子", "さくら", "ゆうき", "健", "美咲"};
static const char *const jp_place[] = {"東京都新宿区", "大阪府大阪市北区", "京都府京都市左京区",
                                       "北海道札幌市中央区"};
static const char *const th_family[] = {"ใจดี", "รักไทย", "สุขสวัสดิ์", "ศรีสุข", "มั่นคง"};
static const char *const th_given[] = {"สมชาย", "สมศรี", "วิชัย", "มาลี", "ประเสริฐ"};
static const char *const th_place[] = {"กรุงเทพมหานคร", "เชียงใหม่", "ขอนแก่น", "ภูเก็ต"};

#define PICK(a) (a[rand() % (sizeof a / sizeof a[0])])

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench_search_cjk: %s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static long long count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int run(const char *dir, const char *name, const char *tokenize, int rows)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    unlink(path);
    sqlite3 *db = NULL;
    struct op_error err;
    if (db_open(path, DB_OPEN_CREATE, &db, &err) < 0) {
        fprintf(stderr, "bench_search_cjk: %s\n", err.msg);
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE t USING fts5(given_name, family_name, street, locality, "
             "job_title, tokenize = '%s')",
             tokenize);
    if (exec(db, sql) < 0)
        return -1;
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st, NULL);
    srand(16);
    double t0 = now();
    exec(db, "BEGIN");
    for (int i = 0; i < rows; i++) {
        const char *g, *f, *p;
        char street[128];
        switch (i % 3) {
        case 0:
            g = PICK(cn_given), f = PICK(cn_family), p = PICK(cn_place);
            snprintf(street, sizeof street, "%s%d号", PICK(cn_street), i % 300);
            break;
        case 1:
            g = PICK(jp_given), f = PICK(jp_family), p = PICK(jp_place);
            snprintf(street, sizeof street, "%d丁目%d番", i % 9 + 1, i % 30 + 1);
            break;
        default:
            g = PICK(th_given), f = PICK(th_family), p = PICK(th_place);
            snprintf(street, sizeof street, "ถนนสุขุมวิท %d", i % 200);
            break;
        }
        sqlite3_bind_text(st, 1, g, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, f, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, street, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, p, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, "工程师", -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "bench_search_cjk: insert: %s\n", sqlite3_errmsg(db));
            return -1;
        }
        sqlite3_reset(st);
    }
    exec(db, "COMMIT");
    double secs = now() - t0;
    sqlite3_finalize(st);
    long long bytes = count(db, "SELECT sum(length(block)) FROM t_data");
    /* two characters from the middle of a place, three, and a pair that is
     * in no place (海南): how many rows each finds */
    long long two = count(db, "SELECT count(*) FROM t WHERE t MATCH '\"海淀\"'");
    long long three = count(db, "SELECT count(*) FROM t WHERE t MATCH '\"海淀区\"'");
    long long th = count(db, "SELECT count(*) FROM t WHERE t MATCH '\"เทพมหา\"'");
    long long none = count(db, "SELECT count(*) FROM t WHERE t MATCH '\"海南\"'");
    printf("%-10s %6d rows %7.3f s %8.0f rows/s  index %7.1f KiB  海淀 %lld  海淀区 %lld  "
           "เทพมหา %lld  海南 %lld\n",
           name, rows, secs, rows / secs, bytes / 1024.0, two, three, th, none);
    db_close(db);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_search_cjk DIR [ROWS]\n");
        return 2;
    }
    int rows = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3000;
    if (rows < 1)
        return 2;
    return run(argv[1], "pairs", "outpost_fold", rows) ||
                   run(argv[1], "trigram", "trigram", rows) ||
                   run(argv[1], "unicode61", "unicode61 remove_diacritics 2", rows)
               ? 1
               : 0;
}
