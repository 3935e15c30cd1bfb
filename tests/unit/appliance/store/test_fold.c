/* Tests for appliance/store/fold.c: the folding that search and dedup share. */
#include <stdlib.h>

#include "db.h"
#include "fold.h"
#include "testlib.h"

static sqlite3 *db;
static struct folder *folder;

static const char *fold(const char *s)
{
    const char *out = "ERR";
    if (folder_fold(folder, s, strlen(s), &out) < 0)
        return "ERR";
    return out;
}

static void folds_diacritics_and_letters(void)
{
    CHECK_STR(fold("José  Müller"), "jose muller");
    CHECK_STR(fold("Łódź"), "lodz");
    CHECK_STR(fold("Straße"), "strasse");
    CHECK_STR(fold("Ørsted Ærø"), "orsted aero");
    CHECK_STR(fold("Œuvre Þór Đorđe"), "oeuvre thor dorde");
    CHECK_STR(fold("São Paulo"), "sao paulo");
    CHECK_STR(fold("Иван Петров"), "иван петров");
    CHECK_STR(fold("सुनील शर्मा"), "सुनील शर्मा"); /* vowel signs stay in the word */
    CHECK(strcmp(fold("सुनील"), "सोनल") != 0);
    CHECK_STR(fold("Jose\xcc\x81"), "jose"); /* decomposed é */
    CHECK_STR(fold("  "), "");
}

static int count(const char *match)
{
    sqlite3_stmt *st;
    int n = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE t MATCH ?1", -1, &st, NULL))
        return -1;
    sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void fts_queries_fold_too(void)
{
    CHECK_EQ(sqlite3_exec(db,
                          "CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'outpost_fold');"
                          "INSERT INTO t VALUES ('José Müller, Łódź');"
                          "INSERT INTO t VALUES ('Jürgen Großmann, Köln');",
                          NULL, NULL, NULL),
             SQLITE_OK);
    CHECK_EQ(count("jose"), 1);
    CHECK_EQ(count("lodz"), 1);
    CHECK_EQ(count("muller"), 1);
    CHECK_EQ(count("MÜLLER"), 1);
    CHECK_EQ(count("grossmann"), 1);
    CHECK_EQ(count("koln"), 1);
    CHECK_EQ(count("\"gro\"*"), 1);
    CHECK_EQ(count("paris"), 0);
    CHECK_EQ(sqlite3_exec(db, "INSERT INTO t VALUES ('सोनल वर्मा')", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(count("सुनील"), 0);
    CHECK_EQ(count("सोनल"), 1);
}

int main(void)
{
    struct op_error err;
    if (db_open(":memory:", DB_OPEN_CREATE, &db, &err) < 0 || folder_new(db, &folder) < 0) {
        fprintf(stderr, "setup failed: %s\n", err.msg);
        return 1;
    }
    RUN(folds_diacritics_and_letters);
    RUN(fts_queries_fold_too);
    folder_free(folder);
    db_close(db);
    return tl_report();
}
