/*
 * The outpost_fold tokenizer: unicode61 with remove_diacritics 2, then a
 * second pass that maps the remaining non-decomposable Latin letters to
 * ASCII. Tokens that are pure ASCII (the common case) pass through without
 * a copy. See fold.h.
 */
#include "fold.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sql.h"
#include "store_queries.h"

static const struct {
    uint32_t cp;
    const char *ascii;
} extra_folds[] = {
    /* Sorted by code point for bsearch. Inputs are already lower-cased. */
    {0x00df, "ss"}, /* ß */
    {0x00e6, "ae"}, /* æ */
    {0x00f0, "d"},  /* ð */
    {0x00f8, "o"},  /* ø */
    {0x00fe, "th"}, /* þ */
    {0x0111, "d"},  /* đ */
    {0x0127, "h"},  /* ħ */
    {0x0131, "i"},  /* ı */
    {0x0138, "k"},  /* ĸ */
    {0x0140, "l"},  /* ŀ */
    {0x0142, "l"},  /* ł */
    {0x0149, "n"},  /* ŉ */
    {0x014b, "n"},  /* ŋ */
    {0x0153, "oe"}, /* œ */
    {0x0167, "t"},  /* ŧ */
    {0x017f, "s"},  /* ſ */
    {0x0180, "b"},  /* ƀ */
    {0x0192, "f"},  /* ƒ */
    {0x01e5, "g"},  /* ǥ */
    {0x0268, "i"},  /* ɨ */
    {0x0289, "u"},  /* ʉ */
    {0x1e9e, "ss"}, /* ẞ (if not lower-cased) */
};

static const char *lookup_fold(uint32_t cp)
{
    size_t lo = 0, hi = sizeof extra_folds / sizeof extra_folds[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (extra_folds[mid].cp == cp)
            return extra_folds[mid].ascii;
        if (extra_folds[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Decodes one UTF-8 sequence at p (n bytes left); returns its length, or 1
 * for a malformed byte (which is then copied through unchanged). */
static int utf8_decode(const unsigned char *p, int n, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if ((p[0] & 0xe0) == 0xc0 && n >= 2) {
        *cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
        return 2;
    }
    if ((p[0] & 0xf0) == 0xe0 && n >= 3) {
        *cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
        return 3;
    }
    if ((p[0] & 0xf8) == 0xf0 && n >= 4) {
        *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
              (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
        return 4;
    }
    *cp = 0xfffd;
    return 1;
}

/* Writes the folded form of token into buf (cap >= 2 * n is always
 * enough: every replacement is at most as long as twice its source). */
static int fold_token(const char *tok, int n, char *buf)
{
    int o = 0;
    for (int i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode((const unsigned char *)tok + i, n - i, &cp);
        const char *rep = cp >= 0x80 ? lookup_fold(cp) : NULL;
        if (rep) {
            size_t rl = strlen(rep);
            memcpy(buf + o, rep, rl);
            o += (int)rl;
        } else {
            memcpy(buf + o, tok + i, (size_t)len);
            o += len;
        }
        i += len;
    }
    return o;
}

static int needs_fold(const char *tok, int n)
{
    for (int i = 0; i < n; i++)
        if ((unsigned char)tok[i] >= 0x80)
            return 1;
    return 0;
}

/* One instance of the tokenizer: the wrapped unicode61 instance. */
struct fold_tok {
    fts5_tokenizer base;
    Fts5Tokenizer *inner;
};

struct fold_cb {
    void *ctx;
    int (*xToken)(void *, int, const char *, int, int, int);
};

/* Scripts written without spaces between words: Thai, Lao, Myanmar,
 * Khmer, Hiragana, Katakana, CJK ideographs (with their extensions and
 * compatibility forms) and halfwidth Katakana. */
static int unspaced(uint32_t cp)
{
    return (cp >= 0x0e00 && cp <= 0x0eff) || (cp >= 0x1000 && cp <= 0x109f) ||
           (cp >= 0x1780 && cp <= 0x17ff) || (cp >= 0x3040 && cp <= 0x30ff) ||
           (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x4e00 && cp <= 0x9fff) ||
           (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff66 && cp <= 0xff9f) ||
           (cp >= 0x20000 && cp <= 0x3134f);
}

static int emit(struct fold_cb *cb, int tflags, const char *tok, int n, int start, int end);

/* A run of an unspaced script becomes its overlapping pairs of characters
 * ("上海市" -> "上海", "海市"), so any two or more characters of it match
 * wherever they are; a run of one character is itself. The pairs share
 * the run's offsets (what highlighting would use). */
static int emit_pairs(struct fold_cb *cb, int tflags, const char *run, int n, int start, int end)
{
    uint32_t cp;
    int first = utf8_decode((const unsigned char *)run, n, &cp);
    if (first >= n)
        return emit(cb, tflags, run, n, start, end);
    for (int i = 0; i < n;) {
        int a = utf8_decode((const unsigned char *)run + i, n - i, &cp);
        if (i + a >= n)
            break;
        int b = utf8_decode((const unsigned char *)run + i + a, n - i - a, &cp);
        int rc = emit(cb, tflags, run + i, a + b, start, end);
        if (rc != SQLITE_OK)
            return rc;
        i += a;
    }
    return SQLITE_OK;
}

/* Splits a token into runs of unspaced scripts (as pairs) and the rest
 * (as one token each). */
static int split_unspaced(struct fold_cb *cb, int tflags, const char *tok, int n, int start,
                          int end)
{
    int i = 0;
    while (i < n) {
        uint32_t cp;
        int l = utf8_decode((const unsigned char *)tok + i, n - i, &cp);
        int kind = unspaced(cp), j = i + l;
        while (j < n) {
            int m = utf8_decode((const unsigned char *)tok + j, n - j, &cp);
            /* a combining mark stays with its run */
            if (unspaced(cp) != kind && !(kind && cp >= 0x0300 && cp < 0x0370))
                break;
            j += m;
        }
        int rc = kind ? emit_pairs(cb, tflags, tok + i, j - i, start, end)
                      : emit(cb, tflags, tok + i, j - i, start, end);
        if (rc != SQLITE_OK)
            return rc;
        i = j;
    }
    return SQLITE_OK;
}

static int has_unspaced(const char *tok, int n)
{
    for (int i = 0; i < n;) {
        if ((unsigned char)tok[i] < 0xe0) { /* below U+0800: none of these scripts */
            i++;
            continue;
        }
        uint32_t cp;
        i += utf8_decode((const unsigned char *)tok + i, n - i, &cp);
        if (unspaced(cp))
            return 1;
    }
    return 0;
}

static int fold_xtoken(void *pctx, int tflags, const char *tok, int n, int start, int end)
{
    struct fold_cb *cb = pctx;
    if (!needs_fold(tok, n))
        return cb->xToken(cb->ctx, tflags, tok, n, start, end);
    if (has_unspaced(tok, n))
        return split_unspaced(cb, tflags, tok, n, start, end);
    return emit(cb, tflags, tok, n, start, end);
}

/* Passes one token on, its non-decomposable Latin letters folded. */
static int emit(struct fold_cb *cb, int tflags, const char *tok, int n, int start, int end)
{
    if (!needs_fold(tok, n))
        return cb->xToken(cb->ctx, tflags, tok, n, start, end);
    char stackbuf[256];
    char *buf = (size_t)n * 2 <= sizeof stackbuf ? stackbuf : malloc((size_t)n * 2);
    if (!buf)
        return SQLITE_NOMEM;
    int m = fold_token(tok, n, buf);
    int rc = cb->xToken(cb->ctx, tflags, buf, m, start, end);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

/* What fold_register hands fts5 as our tokenizer's user data. */
struct fold_udata {
    fts5_tokenizer u61;
    void *u61_udata;
};

static int fold_create(void *udata, const char **argv, int argc, Fts5Tokenizer **out)
{
    (void)argv;
    (void)argc;
    struct fold_udata *u = udata;
    struct fold_tok *t = calloc(1, sizeof *t);
    if (!t)
        return SQLITE_NOMEM;
    t->base = u->u61;
    /* Marks (M*) are token characters: without them the vowel signs of
     * Devanagari and other Indic scripts split "सुनील" into "स न ल", the
     * same tokens as "सोनल". Latin combining accents are still removed by
     * remove_diacritics. */
    static const char *args[] = {"remove_diacritics", "2", "categories", "L* N* Co M*"};
    int rc = u->u61.xCreate(u->u61_udata, args, 4, &t->inner);
    if (rc != SQLITE_OK) {
        free(t);
        return rc;
    }
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void fold_delete(Fts5Tokenizer *p)
{
    struct fold_tok *t = (struct fold_tok *)p;
    if (!t)
        return;
    t->base.xDelete(t->inner);
    free(t);
}

static int fold_tokenize(Fts5Tokenizer *p, void *ctx, int flags, const char *text, int n,
                         int (*xToken)(void *, int, const char *, int, int, int))
{
    struct fold_tok *t = (struct fold_tok *)p;
    struct fold_cb cb = {ctx, xToken};
    return t->base.xTokenize(t->inner, &cb, flags, text, n, fold_xtoken);
}

static fts5_api *get_fts5_api(sqlite3 *db)
{
    fts5_api *api = NULL;
    struct sql_cache c;
    if (sql_cache_init(&c, db, &store_queries, NULL) < 0)
        return NULL;
    sqlite3_stmt *st = sql_get(&c, STORE_Q_FOLD_FTS5_API, NULL);
    if (st) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        (void)sqlite3_step(st);
    }
    sql_cache_close(&c);
    return api;
}

static void free_udata(void *p)
{
    free(p);
}

static void fold_sql_free(void *p);
static int fold_sql_register(sqlite3 *db);

int fold_register(sqlite3 *db)
{
    fts5_api *api = get_fts5_api(db);
    if (!api)
        return -ENOSYS; /* SQLite built without FTS5 */
    void *u61_udata = NULL;
    fts5_tokenizer u61;
    int rc = api->xFindTokenizer(api, "unicode61", &u61_udata, &u61);
    if (rc != SQLITE_OK)
        return sql_errno(rc);
    struct fold_udata *copy = malloc(sizeof *copy);
    if (!copy)
        return -ENOMEM;
    copy->u61 = u61;
    copy->u61_udata = u61_udata;
    fts5_tokenizer ours = {fold_create, fold_delete, fold_tokenize};
    rc = api->xCreateTokenizer(api, "outpost_fold", copy, &ours, free_udata);
    if (rc != SQLITE_OK) {
        free(copy);
        return sql_errno(rc);
    }
    return fold_sql_register(db);
}

/* The most folded text one call may produce: the input is at most 1 MiB
 * and folding a character never makes it more than a few times longer. */
#define FOLD_OUT_MAX (8u << 20)

struct folder {
    fts5_tokenizer methods;
    Fts5Tokenizer *inst;
    struct buf out; /* the folded tokens, one space apart */
};

static int folder_xtoken(void *pctx, int tflags, const char *tok, int n, int start, int end)
{
    (void)tflags;
    (void)start;
    (void)end;
    struct folder *f = pctx;
    int rc = f->out.len ? buf_append(&f->out, " ", 1) : 0;
    if (rc == 0)
        rc = buf_append(&f->out, tok, (size_t)n);
    return rc == 0 ? SQLITE_OK : rc == -EFBIG ? SQLITE_TOOBIG : SQLITE_NOMEM;
}

int folder_new(sqlite3 *db, struct folder **out)
{
    fts5_api *api = get_fts5_api(db);
    if (!api)
        return -ENOSYS;
    struct folder *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    buf_init(&f->out, FOLD_OUT_MAX);
    void *udata = NULL;
    int rc = api->xFindTokenizer(api, "outpost_fold", &udata, &f->methods);
    if (rc == SQLITE_OK)
        rc = f->methods.xCreate(udata, NULL, 0, &f->inst);
    if (rc != SQLITE_OK) {
        free(f);
        return sql_errno(rc);
    }
    *out = f;
    return 0;
}

void folder_free(struct folder *f)
{
    if (!f)
        return;
    f->methods.xDelete(f->inst);
    buf_done(&f->out);
    free(f);
}

int folder_fold(struct folder *f, const char *text, size_t len, const char **out)
{
    if (len > 1u << 20)
        return -E2BIG;
    buf_clear(&f->out);
    if (buf_reserve(&f->out, 0) < 0)
        return -ENOMEM;
    int rc =
        f->methods.xTokenize(f->inst, f, FTS5_TOKENIZE_DOCUMENT, text, (int)len, folder_xtoken);
    if (rc != SQLITE_OK)
        return sql_errno(rc);
    *out = f->out.data;
    return (int)f->out.len;
}

/* ---- the SQL function of the name index -----------------------------------
 *
 * outpost_name_keys(part, ...) gives the keys of a name in search_names
 * (schema/migrations/0019_search_names.sql) as a JSON array: one per
 * distinct folded word of the parts, that word, a space and the sort
 * text (the parts' folded words in the order given, one space apart).
 * A space sorts before any letter or digit, so the keys of a word come
 * before those of longer words that start with it, and within a word
 * they are in the order of the sort text. The triggers call it with the
 * family name first for a contact. Words of unspaced scripts are left
 * out: their pairs stay with the full-text index. The words come from
 * the tokenizer itself, so the name index and the full-text index hold
 * the same words; the function is deterministic, which the triggers rely
 * on to delete exactly the keys they inserted. */

#define NAME_PARTS_MAX 4

static void fold_sql_free(void *p)
{
    folder_free(p);
}

/* Whether the key for word w[0..n) already stands in the array a. */
static int seen_word(const struct buf *a, const char *w, size_t n)
{
    for (const char *p = a->data; p && (p = strchr(p, '"'));) {
        if (!strncmp(p + 1, w, n) && p[1 + n] == ' ')
            return 1;
        p = strchr(p + 1, '"') + 1;
    }
    return 0;
}

static void sql_name_keys(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct folder *f = sqlite3_user_data(ctx);
    struct buf sort, a;
    buf_init(&sort, FOLD_OUT_MAX);
    buf_init(&a, FOLD_OUT_MAX);
    int rc = 0;
    if (argc > NAME_PARTS_MAX) {
        sqlite3_result_error(ctx, "outpost_name_keys: too many parts", -1);
        return;
    }
    /* the sort text: every part folded, in order */
    for (int i = 0; i < argc && rc == 0; i++) {
        if (sqlite3_value_type(argv[i]) == SQLITE_NULL)
            continue;
        const char *text = (const char *)sqlite3_value_text(argv[i]);
        const char *folded;
        int n =
            text ? folder_fold(f, text, (size_t)sqlite3_value_bytes(argv[i]), &folded) : -ENOMEM;
        if (n < 0)
            rc = n;
        else if (n > 0) {
            if (sort.len)
                rc = buf_append(&sort, " ", 1);
            if (rc == 0)
                rc = buf_append(&sort, folded, (size_t)n);
        }
    }
    if (rc == 0)
        rc = buf_append(&a, "[", 1);
    /* a folded word holds letters, digits and marks only: nothing to
     * escape in JSON */
    for (size_t i = 0; i < sort.len && rc == 0;) {
        size_t j = i;
        while (j < sort.len && sort.data[j] != ' ')
            j++;
        const char *w = sort.data + i;
        size_t n = j - i;
        if (!has_unspaced(w, (int)n) && !seen_word(&a, w, n)) {
            if (a.len > 1)
                rc = buf_append(&a, ",", 1);
            if (rc == 0)
                rc = buf_append(&a, "\"", 1);
            if (rc == 0)
                rc = buf_append(&a, w, n);
            if (rc == 0)
                rc = buf_append(&a, " ", 1);
            if (rc == 0)
                rc = buf_append(&a, sort.data, sort.len);
            if (rc == 0)
                rc = buf_append(&a, "\"", 1);
        }
        i = j + 1;
    }
    if (rc == 0)
        rc = buf_append(&a, "]", 1);
    if (rc == 0)
        sqlite3_result_text(ctx, a.data, (int)a.len, SQLITE_TRANSIENT);
    else if (rc == -ENOMEM)
        sqlite3_result_error_nomem(ctx);
    else
        sqlite3_result_error_toobig(ctx);
    buf_done(&sort);
    buf_done(&a);
}

static int fold_sql_register(sqlite3 *db)
{
    struct folder *f = NULL;
    int rc = folder_new(db, &f);
    if (rc < 0)
        return rc;
    rc = sqlite3_create_function_v2(db, "outpost_name_keys", -1,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, f,
                                    sql_name_keys, NULL, NULL, fold_sql_free);
    return rc == SQLITE_OK ? 0 : sql_errno(rc); /* on failure SQLite freed the folder */
}
