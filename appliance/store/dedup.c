/* Name skeletons and fuzzy name matching for duplicate detection; see
 * dedup.h. */
#include "dedup.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 8
#define WORD_MAX 64

/* Russian Cyrillic to Latin (close to ICAO 9303 passports), lower case:
 * what fold.h leaves of a Cyrillic name. Index: code point - 0x430. */
static const char *const cyrillic[] = {
    "a", "b", "v", "g", "d", "e",  "zh", "z",  "i",  "i",    "k", "l", "m", "n", "o",  "p",
    "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "",  "y", "",  "e", "iu", "ia",
};

/* One sound, one spelling: applied left to right, longest first. */
static const struct {
    const char *from, *to;
} evens[] = {
    {"tsch", "c"}, {"sch", "s"}, {"tch", "c"}, {"ch", "c"}, {"sh", "s"}, {"zh", "j"},
    {"kh", "h"},   {"ph", "f"},  {"th", "t"},  {"ck", "k"}, {"ts", "c"}, {"tz", "c"},
    {"ae", "a"},   {"oe", "o"},  {"ue", "u"},  {"ou", "u"}, {"w", "v"},  {"y", "i"},
    {"q", "k"},    {"x", "ks"},  {"z", "s"},   {"j", "i"},
};

/* Writes the even spelling of one folded word into out (cap WORD_MAX). */
static size_t even_word(const char *w, size_t n, char *out)
{
    char latin[WORD_MAX * 4];
    size_t l = 0;
    for (size_t i = 0; i < n && l + 5 < sizeof latin;) {
        unsigned char c = (unsigned char)w[i];
        if (c == 0xd0 || c == 0xd1) { /* U+0400..U+047F */
            if (i + 1 >= n)
                break;
            uint32_t cp = (uint32_t)(c & 0x1f) << 6 | ((unsigned char)w[i + 1] & 0x3f);
            if (cp == 0x451)
                cp = 0x435; /* ё */
            if (cp >= 0x430 && cp < 0x450) {
                const char *t = cyrillic[cp - 0x430];
                size_t tl = strlen(t);
                memcpy(latin + l, t, tl);
                l += tl;
            }
            i += 2;
        } else if (c >= 'a' && c <= 'z') {
            latin[l++] = (char)c;
            i++;
        } else if (c >= 0x80) {
            latin[l++] = (char)c; /* other scripts are kept as they are */
            i++;
        } else {
            i++; /* digits, apostrophes, hyphens */
        }
    }
    size_t o = 0;
    for (size_t i = 0; i < l && o + 3 < WORD_MAX;) {
        size_t k;
        for (k = 0; k < sizeof evens / sizeof evens[0]; k++) {
            size_t fl = strlen(evens[k].from);
            if (i + fl <= l && !memcmp(latin + i, evens[k].from, fl)) {
                size_t tl = strlen(evens[k].to);
                memcpy(out + o, evens[k].to, tl);
                o += tl;
                i += fl;
                break;
            }
        }
        if (k == sizeof evens / sizeof evens[0])
            out[o++] = latin[i++];
        /* doubled letters count once */
        while (o >= 2 && out[o - 1] == out[o - 2] && (unsigned char)out[o - 1] < 0x80)
            o--;
    }
    /* -off, -ow at the end of Russian names written the German or French way */
    if (o >= 4 && out[o - 1] == 'f' && out[o - 2] == 'o')
        out[o - 1] = 'v';
    out[o] = '\0';
    return o;
}

static int cmp_words(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t dedup_skeleton(const char *folded, char *out, size_t cap)
{
    char words[MAX_WORDS][WORD_MAX];
    const char *ptr[MAX_WORDS];
    size_t nw = 0;
    for (const char *p = folded; *p && nw < MAX_WORDS;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if (e > p && (size_t)(e - p) < WORD_MAX && even_word(p, (size_t)(e - p), words[nw]))
            ptr[nw] = words[nw], nw++;
        p = e;
    }
    qsort(ptr, nw, sizeof ptr[0], cmp_words);
    size_t o = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < nw; i++) {
        size_t l = strlen(ptr[i]);
        if (o + l + 2 > cap)
            break;
        if (o)
            out[o++] = ' ';
        memcpy(out + o, ptr[i], l + 1);
        o += l;
    }
    return o;
}

/* Optimal string alignment distance (Damerau-Levenshtein without
 * repeated edits of a substring), capped: returns at most cap + 1. */
static int distance(const char *a, const char *b, int cap)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (abs(la - lb) > cap)
        return cap + 1;
    if (la >= WORD_MAX || lb >= WORD_MAX)
        return strcmp(a, b) ? cap + 1 : 0;
    int d[WORD_MAX + 1][WORD_MAX + 1];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int c = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + c < v)
                v = d[i - 1][j - 1] + c;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb] > cap ? cap + 1 : d[la][lb];
}

static size_t split(const char *s, char words[MAX_WORDS][WORD_MAX])
{
    size_t n = 0;
    for (const char *p = s; *p && n < MAX_WORDS;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if (e > p && (size_t)(e - p) < WORD_MAX) {
            memcpy(words[n], p, (size_t)(e - p));
            words[n][e - p] = '\0';
            n++;
        }
        p = e;
    }
    return n;
}

/* The typos allowed in a word of this length. */
static int allowance(const char *w)
{
    size_t l = strlen(w);
    return l >= 8 ? 2 : l >= 4 ? 1 : 0;
}

/* Whether words a[0..n) pair with b[0..n) in some order, within the
 * typos each word allows and two in all. */
static int pair_up(char a[][WORD_MAX], char b[][WORD_MAX], size_t n, size_t i, unsigned used,
                   int budget)
{
    if (i == n)
        return 1;
    for (size_t j = 0; j < n; j++) {
        if (used & (1u << j))
            continue;
        int allow = allowance(a[i]) < allowance(b[j]) ? allowance(a[i]) : allowance(b[j]);
        if (allow > budget)
            allow = budget;
        int d = distance(a[i], b[j], allow);
        if (d <= allow && pair_up(a, b, n, i + 1, used | (1u << j), budget - d))
            return 1;
    }
    return 0;
}

int dedup_names_match(const char *a, const char *b)
{
    if (!*a || !*b)
        return 0;
    if (!strcmp(a, b))
        return 1;
    char wa[MAX_WORDS][WORD_MAX], wb[MAX_WORDS][WORD_MAX];
    size_t na = split(a, wa), nb = split(b, wb);
    if (na == nb)
        return na <= 6 && pair_up(wa, wb, na, 0, 0, 2);
    /* a middle name or second surname more on one side */
    char(*small)[WORD_MAX] = na < nb ? wa : wb, (*large)[WORD_MAX] = na < nb ? wb : wa;
    size_t ns = na < nb ? na : nb, nl = na < nb ? nb : na;
    if (ns < 2)
        return 0;
    for (size_t i = 0; i < ns; i++) {
        size_t j;
        for (j = 0; j < nl; j++)
            if (!strcmp(small[i], large[j]))
                break;
        if (j == nl)
            return 0;
    }
    return 1;
}

static const struct {
    const char *word, *as;
} street_words[] = {
    {"strasse", "str"}, {"street", "st"}, {"avenue", "ave"}, {"av", "ave"},   {"avenida", "ave"},
    {"ulica", "ul"},    {"rua", "r"},     {"road", "rd"},    {"calle", "c"},  {"ulitsa", "ul"},
    {"platz", "pl"},    {"plac", "pl"},   {"weg", "wg"},     {"allee", "al"},
};

size_t dedup_street(const char *folded, char *out, size_t cap)
{
    size_t o = 0;
    if (cap)
        out[0] = '\0';
    for (const char *p = folded; *p;) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        if (!n)
            break;
        char w[WORD_MAX];
        if (n >= sizeof w)
            n = sizeof w - 1;
        memcpy(w, p, n);
        w[n] = '\0';
        /* "hauptstrasse" and "hauptstr" end alike; "haupt str" joins */
        if (n > 7 && !strcmp(w + n - 7, "strasse"))
            w[n - 4] = '\0';
        for (size_t k = 0; k < sizeof street_words / sizeof street_words[0]; k++)
            if (!strcmp(w, street_words[k].word)) {
                snprintf(w, sizeof w, "%s", street_words[k].as);
                break;
            }
        int glue =
            o && (!strcmp(w, "str") || !strcmp(w, "wg") || !strcmp(w, "al") || !strcmp(w, "pl"));
        size_t l = strlen(w);
        if (o + l + 2 > cap)
            break;
        if (o && !glue)
            out[o++] = ' ';
        memcpy(out + o, w, l + 1);
        o += l;
        p = e;
    }
    return o;
}

void dedup_phone_tail(const char *phone, char out[8])
{
    size_t n = 0;
    const char *ext = NULL;
    /* the digits of the number, not of an extension after it */
    for (const char *p = phone; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '#' ||
            (unsigned char)*p >= 0x80) {
            ext = p;
            break;
        }
    char digits[8] = {0};
    for (const char *p = phone; *p && p != ext; p++)
        if (*p >= '0' && *p <= '9') {
            memmove(digits, digits + 1, 6);
            digits[6] = *p;
            n++;
        }
    if (n < 7) {
        out[0] = '\0';
        return;
    }
    memcpy(out, digits, 7);
    out[7] = '\0';
}
