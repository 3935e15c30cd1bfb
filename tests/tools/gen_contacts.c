/*
 * gen_contacts: writes a CSV file of realistic, made-up contacts for demos,
 * tests and benchmarks. Names, addresses, phone numbers, postal codes and
 * job titles come from thirteen locales in four scripts (Latin with its
 * diacritics and Yoruba tone marks, Cyrillic, Han, Devanagari), so the
 * import, folding and search paths see the text they meet in the field.
 *
 * Invariants, for any seed and any count up to GEN_MAX_COUNT:
 *  - the output depends only on (seed, row): a longer run starts with the
 *    rows of a shorter one, and a run repeated with the same seed is
 *    byte-for-byte the same (own PRNG, never rand());
 *  - no two rows trip the store's duplicate detection: e-mails carry the
 *    row number, phone subscriber numbers are a bijection of the row's
 *    index within its locale, and within a locale every row gets a distinct
 *    (given name, family name, locality) combination (a bijection over the
 *    combination space; past it, a second given name tells rows apart).
 *    Localities differ between locales, so rows of two locales never share
 *    a locality.
 *  - phone numbers are written with their international +CC prefix, so
 *    they mean the same whatever region the importing node is set to.
 *
 * The tables live in gen_contacts.tsv (read at start; --data names
 * another file): one record a line, so a locale is added or corrected
 * without touching this code.
 *
 * Usage: gen_contacts --count N [--seed S] [--out FILE] [--data FILE]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GEN_MAX_COUNT 1000000u

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* ---- data (gen_contacts.tsv) ------------------------------------------ */

#define GEN_MAX_LOCALES 64
#define GEN_MAX_DATA (4u * 1024 * 1024)

#ifndef GEN_CONTACTS_DATA
#define GEN_CONTACTS_DATA "gen_contacts.tsv"
#endif

struct given {
    const char *name;  /* as written */
    const char *ascii; /* for the e-mail address */
    char sex;          /* 'f' or 'm': picks the family name's form */
    const char *lang;  /* BCP 47 override, or NULL for the locale's */
};

struct family {
    const char *m, *am; /* masculine (or only) form, and its ASCII */
    const char *f, *af; /* feminine form where the language has one, else NULL */
};

struct place {
    const char *locality;
    const char *region;
    const char *postal; /* '#' a digit, '@' an upper-case letter */
    const char *phone;  /* '#' a digit of the subscriber number (at least 6) */
};

struct locale {
    const char *country;  /* ISO 3166-1 alpha-2 */
    const char *language; /* BCP 47 */
    const char *joiner;   /* between two given names */
    struct given *given;
    size_t ngiven;
    struct family *family;
    size_t nfamily;
    int two_surnames; /* family name is two distinct surnames (Colombia) */
    struct place *places;
    size_t nplaces;
    const char **streets;
    size_t nstreets;
    const char *street_format; /* {street}, {house} and {nn} in the local order */
    unsigned house_max;
    const char **jobs;
    size_t njobs;
};

/* The tables as read: every string points into text, which they share. */
struct tables {
    char *text;
    struct locale l[GEN_MAX_LOCALES];
    size_t n;
};

/* Appends one zeroed element of `size` bytes to *arr (holding *n). */
static void *grow(void *arr, size_t *n, size_t size)
{
    void **a = arr;
    void *more = realloc(*a, (*n + 1) * size);
    if (!more)
        return NULL;
    *a = more;
    memset((char *)more + *n * size, 0, size);
    return (char *)more + (*n)++ * size;
}

/* One record of the data file (its fields f[0..nf)) into t. */
static const char *load_record(struct tables *t, char **f, size_t nf)
{
    struct locale *l = t->n ? &t->l[t->n - 1] : NULL;
    if (!strcmp(f[0], "locale")) {
        if (nf != 7)
            return "a locale has 6 fields";
        if (t->n == GEN_MAX_LOCALES)
            return "too many locales";
        l = &t->l[t->n++];
        l->country = f[1];
        l->language = f[2];
        l->joiner = !strcmp(f[3], "space") ? " " : !strcmp(f[3], "none") ? "" : NULL;
        l->two_surnames = !strcmp(f[4], "1");
        l->street_format = f[5];
        l->house_max = (unsigned)strtoul(f[6], NULL, 10);
        if (strlen(l->country) != 2 || !l->joiner || (strcmp(f[4], "0") && !l->two_surnames) ||
            !strstr(l->street_format, "{street}") || l->house_max == 0)
            return "bad country, joiner, surnames flag, street format or house number";
        return NULL;
    }
    if (!l)
        return "a record before the first locale";
    if (!strcmp(f[0], "given")) {
        struct given *g = nf == 4 || nf == 5 ? grow(&l->given, &l->ngiven, sizeof *g) : NULL;
        if (!g)
            return "a given name has 3 or 4 fields";
        *g = (struct given){f[1], f[2], f[3][0], nf == 5 ? f[4] : NULL};
        return (g->sex == 'f' || g->sex == 'm') && !f[3][1] ? NULL : "sex is f or m";
    }
    if (!strcmp(f[0], "family")) {
        struct family *m = nf == 3 || nf == 5 ? grow(&l->family, &l->nfamily, sizeof *m) : NULL;
        if (!m)
            return "a family name has 2 or 4 fields";
        *m = (struct family){f[1], f[2], nf == 5 ? f[3] : NULL, nf == 5 ? f[4] : NULL};
        return NULL;
    }
    if (!strcmp(f[0], "place")) {
        struct place *p = nf == 5 ? grow(&l->places, &l->nplaces, sizeof *p) : NULL;
        if (!p)
            return "a place has 4 fields";
        *p = (struct place){f[1], f[2], f[3], f[4]};
        return NULL;
    }
    int street = !strcmp(f[0], "street");
    if (street || !strcmp(f[0], "job")) {
        const char **v = nf == 2 ? street ? grow(&l->streets, &l->nstreets, sizeof *v)
                                          : grow(&l->jobs, &l->njobs, sizeof *v)
                                 : NULL;
        if (!v)
            return "a street or a job has 1 field";
        *v = f[1];
        return NULL;
    }
    return "unknown record (locale, given, family, place, street or job)";
}

/* Whether every locale can make rows: names of both sexes, two family
 * names where a row takes two, a place, a street and a job. */
static const char *check_locale(const struct locale *l)
{
    size_t nf = 0;
    for (size_t i = 0; i < l->ngiven; i++)
        nf += l->given[i].sex == 'f';
    if (nf == 0 || nf == l->ngiven)
        return "needs given names of both sexes";
    if (l->nfamily < (l->two_surnames ? 2u : 1u) || !l->nplaces || !l->nstreets || !l->njobs)
        return "needs family names, a place, a street and a job";
    return NULL;
}

static void tables_free(struct tables *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->l[i].given);
        free(t->l[i].family);
        free(t->l[i].places);
        free(t->l[i].streets);
        free(t->l[i].jobs);
    }
    free(t->text);
}

/* Reads the data file at path into t; on failure says why on stderr
 * (FILE:LINE for a bad record) and returns -1, t freed. */
static int tables_load(const char *path, struct tables *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "gen_contacts: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    t->text = malloc(GEN_MAX_DATA + 1);
    size_t len = t->text ? fread(t->text, 1, GEN_MAX_DATA + 1, f) : 0;
    int bad = !t->text || ferror(f) || len > GEN_MAX_DATA;
    fclose(f);
    if (bad) {
        fprintf(stderr, "gen_contacts: cannot read %s (at most %u bytes)\n", path, GEN_MAX_DATA);
        tables_free(t);
        return -1;
    }
    t->text[len] = '\0';
    unsigned long lineno = 0;
    for (char *line = t->text, *next; line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line || *line == '#')
            continue;
        char *fields[8];
        size_t nf = 0;
        for (char *p = line; p && nf < N_(fields); nf++) {
            fields[nf] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = '\0';
        }
        const char *why = load_record(t, fields, nf);
        if (why) {
            fprintf(stderr, "gen_contacts: %s:%lu: %s\n", path, lineno, why);
            tables_free(t);
            return -1;
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        const char *why = check_locale(&t->l[i]);
        if (why) {
            fprintf(stderr, "gen_contacts: %s: locale %s %s\n", path, t->l[i].country, why);
            tables_free(t);
            return -1;
        }
    }
    if (t->n == 0) {
        fprintf(stderr, "gen_contacts: %s: no locale\n", path);
        tables_free(t);
        return -1;
    }
    return 0;
}

/* ---- randomness ------------------------------------------------------ */

/* splitmix64: tiny, fast, and every seed gives a full-period stream. */
static uint64_t mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* A stream for one purpose (`tag`) and one index, independent of others. */
static uint64_t stream(uint64_t seed, uint64_t tag, uint64_t index)
{
    uint64_t s = seed ^ (tag * 0xd6e8feb86659fd93u);
    (void)mix(&s);
    s ^= index * 0xa0761d6478bd642fu;
    (void)mix(&s);
    return s;
}

static unsigned below(uint64_t *rng, unsigned n)
{
    return (unsigned)(mix(rng) % n);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* ---- a locale's combination space ------------------------------------ */

struct space {
    uint64_t nfamily;   /* family name choices (pairs for two_surnames) */
    uint64_t n;         /* given x family x places */
    uint64_t mult, add; /* r -> (mult * r + add) mod n, a bijection */
    unsigned nf, nm;    /* given names per sex */
    uint64_t phone_mult, phone_add;
};

static void space_init(struct space *sp, const struct locale *l, size_t li, uint64_t seed)
{
    sp->nfamily = l->two_surnames ? l->nfamily * (l->nfamily - 1) : l->nfamily;
    sp->n = l->ngiven * sp->nfamily * l->nplaces;
    uint64_t r = stream(seed, 1, li);
    sp->mult = mix(&r) % sp->n;
    if (sp->mult < 2)
        sp->mult = 2;
    while (gcd(sp->mult, sp->n) != 1)
        sp->mult++;
    sp->add = mix(&r) % sp->n;
    sp->nf = sp->nm = 0;
    for (size_t i = 0; i < l->ngiven; i++) {
        if (l->given[i].sex == 'f')
            sp->nf++;
        else
            sp->nm++;
    }
    /* Odd and not a multiple of 5: a bijection modulo any power of ten. */
    sp->phone_mult = (mix(&r) % 100000u) * 10u + 7u;
    sp->phone_add = mix(&r);
}

/* The largest count for which every row is distinct: within a locale, k
 * runs over n combinations times the second given names available. */
static uint64_t capacity(const struct space *sp)
{
    unsigned smaller = sp->nf < sp->nm ? sp->nf : sp->nm;
    return sp->n * smaller;
}

/* ---- output ------------------------------------------------------------ */

struct out {
    FILE *f;
    char row[4096];
    size_t len;
    int overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n >= sizeof o->row) {
        o->overflow = 1;
        return;
    }
    memcpy(o->row + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* One CSV field, quoted (RFC 4180) when it holds a comma, quote or newline. */
static void field(struct out *o, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        put(o, "\"", 1);
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                put(o, "\"", 1);
            put(o, p, 1);
        }
        put(o, "\"", 1);
    } else {
        puts_(o, s);
    }
    if (last)
        put(o, "\r\n", 2);
    else
        put(o, ",", 1);
}

/* Fills '#' with random digits and '@' with random capitals. */
static void pattern_random(char *dst, size_t cap, const char *pat, uint64_t *rng)
{
    size_t i = 0;
    for (const char *p = pat; *p && i + 1 < cap; p++) {
        if (*p == '#')
            dst[i++] = (char)('0' + below(rng, 10));
        else if (*p == '@')
            dst[i++] = (char)('A' + below(rng, 26));
        else
            dst[i++] = *p;
    }
    dst[i] = '\0';
}

/* Fills the '#' of a phone pattern with the digits of `num` mod 10^d. */
static void pattern_number(char *dst, size_t cap, const char *pat, uint64_t num)
{
    unsigned d = 0;
    for (const char *p = pat; *p; p++)
        d += *p == '#';
    char digits[24];
    snprintf(digits, sizeof digits, "%020" PRIu64, num);
    const char *dg = digits + 20 - d;
    size_t i = 0;
    for (const char *p = pat; *p && i + 1 < cap; p++)
        dst[i++] = *p == '#' ? *dg++ : *p;
    dst[i] = '\0';
}

static unsigned phone_digits(const char *pat)
{
    unsigned d = 0;
    for (const char *p = pat; *p; p++)
        d += *p == '#';
    return d;
}

static uint64_t pow10u(unsigned d)
{
    uint64_t p = 1;
    while (d--)
        p *= 10;
    return p;
}

/* Lower-case ASCII letters and digits of s, appended to dst. */
static void slug(char *dst, size_t cap, const char *s)
{
    size_t i = strlen(dst);
    for (; *s && i + 1 < cap; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            dst[i++] = c;
    }
    dst[i] = '\0';
}

/* The i-th given name of one sex. */
static const struct given *given_of_sex(const struct locale *l, char sex, unsigned i)
{
    for (size_t j = 0; j < l->ngiven; j++)
        if (l->given[j].sex == sex && i-- == 0)
            return &l->given[j];
    return &l->given[0]; /* not reached: callers pass i below the count */
}

static unsigned index_in_sex(const struct locale *l, const struct given *g)
{
    unsigned i = 0;
    for (const struct given *p = l->given; p < g; p++)
        i += p->sex == g->sex;
    return i;
}

static const char *family_form(const struct family *f, char sex, int ascii)
{
    if (sex == 'f' && f->f)
        return ascii ? f->af : f->f;
    return ascii ? f->am : f->m;
}

/* A street address from a locale's format: {street} the street's name,
 * {house} the house number, {nn} a random two-digit number (01-99, drawn
 * from rng where it stands); anything else as it is. */
static void street_format(char *dst, size_t cap, const char *fmt, const char *street,
                          unsigned house, uint64_t *rng)
{
    size_t n = 0;
    dst[0] = '\0';
    for (const char *p = fmt; *p && n < cap;) {
        int w;
        if (!strncmp(p, "{street}", 8))
            w = snprintf(dst + n, cap - n, "%s", street), p += 8;
        else if (!strncmp(p, "{house}", 7))
            w = snprintf(dst + n, cap - n, "%u", house), p += 7;
        else if (!strncmp(p, "{nn}", 4))
            w = snprintf(dst + n, cap - n, "%02u", 1 + below(rng, 99)), p += 4;
        else
            w = snprintf(dst + n, cap - n, "%c", *p), p++;
        n += w > 0 ? (size_t)w : 0;
    }
}

static int write_row(struct out *o, const struct tables *t, uint64_t seed, uint64_t row,
                     const struct space *spaces)
{
    /* Each block of t->n rows holds every locale once, in an order
     * shuffled per block; the block number is the row's index within its
     * locale. */
    unsigned nloc = (unsigned)t->n;
    uint64_t block = row / nloc;
    unsigned pos = (unsigned)(row % nloc);
    unsigned order[GEN_MAX_LOCALES];
    uint64_t br = stream(seed, 2, block);
    for (unsigned i = 0; i < nloc; i++)
        order[i] = i;
    for (unsigned i = nloc - 1; i > 0; i--) {
        unsigned j = below(&br, i + 1);
        unsigned swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    size_t li = order[pos];
    const struct locale *l = &t->l[li];
    const struct space *sp = &spaces[li];
    uint64_t k = block;

    uint64_t tier = k / sp->n;
    uint64_t r = (sp->mult * (k % sp->n) + sp->add) % sp->n;
    const struct given *g = &l->given[r % l->ngiven];
    r /= l->ngiven;
    uint64_t fi = r % sp->nfamily;
    const struct place *pl = &l->places[r / sp->nfamily];

    uint64_t rng = stream(seed, 3, row);

    char given[256] = "", family[256] = "", email_name[128] = "";
    snprintf(given, sizeof given, "%s", g->name);
    if (tier) {
        /* Past the combination space a second given name keeps rows apart. */
        unsigned n = g->sex == 'f' ? sp->nf : sp->nm;
        const struct given *g2 =
            given_of_sex(l, g->sex, (unsigned)((index_in_sex(l, g) + tier) % n));
        size_t len = strlen(given);
        snprintf(given + len, sizeof given - len, "%s%s", l->joiner, g2->name);
    }
    const struct family *f1;
    if (l->two_surnames) {
        uint64_t a = fi / (l->nfamily - 1), b = fi % (l->nfamily - 1);
        if (b >= a)
            b++;
        f1 = &l->family[a];
        const struct family *f2 = &l->family[b];
        snprintf(family, sizeof family, "%s %s", family_form(f1, g->sex, 0),
                 family_form(f2, g->sex, 0));
    } else {
        f1 = &l->family[fi];
        snprintf(family, sizeof family, "%s", family_form(f1, g->sex, 0));
    }

    /* E-mail: unique through the row number. */
    static const char *const domains[] = {"example.com", "example.net", "example.org"};
    char sg[64] = "", sf[64] = "", email[200];
    slug(sg, sizeof sg, g->ascii);
    slug(sf, sizeof sf, family_form(f1, g->sex, 1));
    switch (below(&rng, 3)) {
    case 0:
        snprintf(email_name, sizeof email_name, "%s.%s", sg, sf);
        break;
    case 1:
        snprintf(email_name, sizeof email_name, "%c%s", sg[0], sf);
        break;
    default:
        snprintf(email_name, sizeof email_name, "%s_%s", sf, sg);
        break;
    }
    unsigned dom = below(&rng, 4);
    if (dom == 3) {
        char cc[3] = {(char)(l->country[0] - 'A' + 'a'), (char)(l->country[1] - 'A' + 'a'), 0};
        snprintf(email, sizeof email, "%s%" PRIu64 "@%s.example.net", email_name, row + 1, cc);
    } else {
        snprintf(email, sizeof email, "%s%" PRIu64 "@%s", email_name, row + 1, domains[dom]);
    }

    /* Phone: the subscriber digits are a bijection of k, so unique. */
    char phone[64];
    uint64_t mod = pow10u(phone_digits(pl->phone));
    uint64_t sub = (sp->phone_mult % mod * (k % mod) + sp->phone_add % mod) % mod;
    pattern_number(phone, sizeof phone, pl->phone, sub);

    char street[256] = "";
    const char *sn = l->streets[below(&rng, (unsigned)l->nstreets)];
    unsigned house = 1 + below(&rng, l->house_max);
    street_format(street, sizeof street, l->street_format, sn, house, &rng);
    if (below(&rng, 40) == 0)
        street[0] = '\0'; /* some contacts have no street on file */

    char postal[32];
    pattern_random(postal, sizeof postal, pl->postal, &rng);

    const char *job = below(&rng, 7) == 0 ? "" : l->jobs[below(&rng, (unsigned)l->njobs)];

    char birth[24] = "";
    if (below(&rng, 10) != 0) {
        static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        unsigned y = 1950 + below(&rng, 56), m = 1 + below(&rng, 12);
        unsigned leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        unsigned d = 1 + below(&rng, mdays[m - 1] + (m == 2 && leap));
        snprintf(birth, sizeof birth, "%04u-%02u-%02u", y, m, d);
    }

    o->len = 0;
    o->overflow = 0;
    field(o, given, 0);
    field(o, family, 0);
    field(o, email, 0);
    field(o, phone, 0);
    field(o, street, 0);
    field(o, pl->locality, 0);
    field(o, pl->region, 0);
    field(o, postal, 0);
    field(o, l->country, 0);
    field(o, g->lang ? g->lang : l->language, 0);
    field(o, job, 0);
    field(o, birth, 1);
    if (o->overflow)
        return -EOVERFLOW;
    return fwrite(o->row, 1, o->len, o->f) == o->len ? 0 : -EIO;
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gen_contacts --count N [--seed S] [--out FILE] [--data FILE]\n\n"
            "Write N made-up contacts from thirteen locales as an RFC 4180 CSV file\n"
            "(UTF-8, CRLF, header row) for `outpost import`. The same seed gives the\n"
            "same file; e-mails and phones are unique and no two rows share name and\n"
            "locality, so the duplicate detector stays quiet.\n\n"
            "  --count N   rows to write, 0 to %u\n"
            "  --seed S    any unsigned 64-bit number (default 1)\n"
            "  --out FILE  write FILE (via FILE.tmp and a rename) instead of stdout\n"
            "  --data FILE the names, places and jobs to draw from (default %s)\n",
            GEN_MAX_COUNT, GEN_CONTACTS_DATA);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'}, {"seed", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},   {"data", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    uint64_t count = 0, seed = 1;
    int have_count = 0, c;
    const char *path = NULL, *data = GEN_CONTACTS_DATA;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (parse_u64(optarg, GEN_MAX_COUNT, &count) < 0) {
                fprintf(stderr, "gen_contacts: --count: expected 0 to %u, got '%s'\n",
                        GEN_MAX_COUNT, optarg);
                return 2;
            }
            have_count = 1;
            break;
        case 's':
            if (parse_u64(optarg, UINT64_MAX, &seed) < 0) {
                fprintf(stderr, "gen_contacts: --seed: expected an unsigned number, got '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'o':
            path = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "gen_contacts: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gen_contacts: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!have_count) {
        fprintf(stderr, "gen_contacts: --count is required\n\n");
        usage(stderr);
        return 2;
    }

    struct tables t;
    if (tables_load(data, &t) < 0)
        return 1;
    struct space spaces[GEN_MAX_LOCALES];
    uint64_t per_locale = (count + t.n - 1) / t.n;
    for (size_t i = 0; i < t.n; i++) {
        space_init(&spaces[i], &t.l[i], i, seed);
        /* Both follow from the tables; checked so that an edit cannot
         * silently produce duplicates. */
        if (per_locale > capacity(&spaces[i])) {
            fprintf(stderr, "gen_contacts: locale %s has only %" PRIu64 " distinct rows\n",
                    t.l[i].country, capacity(&spaces[i]));
            tables_free(&t);
            return 1;
        }
        for (size_t p = 0; p < t.l[i].nplaces; p++)
            if (pow10u(phone_digits(t.l[i].places[p].phone)) < per_locale) {
                fprintf(stderr, "gen_contacts: phone pattern %s is too short\n",
                        t.l[i].places[p].phone);
                tables_free(&t);
                return 1;
            }
    }

    char tmp[4096];
    struct out o = {.f = stdout};
    if (path) {
        if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
            fprintf(stderr, "gen_contacts: file name too long\n");
            tables_free(&t);
            return 2;
        }
        o.f = fopen(tmp, "we");
        if (!o.f) {
            fprintf(stderr, "gen_contacts: cannot create %s: %s\n", tmp, strerror(errno));
            tables_free(&t);
            return 1;
        }
    }
    int rc = fputs("given_name,family_name,email,phone,street,locality,region,postal_code,"
                   "country,language,job_title,birth_date\r\n",
                   o.f) < 0
                 ? -EIO
                 : 0;
    for (uint64_t row = 0; rc == 0 && row < count; row++)
        rc = write_row(&o, &t, seed, row, spaces);
    tables_free(&t);
    if (fflush(o.f) != 0 && rc == 0)
        rc = -EIO;
    if (path) {
        if (fclose(o.f) != 0 && rc == 0)
            rc = -EIO;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -errno;
        if (rc < 0)
            (void)unlink(tmp);
    }
    if (rc < 0) {
        fprintf(stderr, "gen_contacts: cannot write %s: %s\n", path ? path : "standard output",
                strerror(-rc));
        return 1;
    }
    return 0;
}
