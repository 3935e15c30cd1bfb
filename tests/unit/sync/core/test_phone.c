/* Tests for sync/core/phone.c: the keys duplicate detection compares and
 * egress pseudonymizes, on the corpus tests/data/phones.tsv (every spelling
 * of every region, and the texts that must get no key). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"
#include "testlib.h"

static const char *e164(const char *in, const char *region)
{
    static char out[PHONE_E164_MAX];
    const struct region_info *r = region ? region_find(region) : NULL;
    if (phone_to_e164(in, r, out) < 0)
        return "ERR";
    return out;
}

/* Every row of the corpus gets exactly its expected key, or none; the
 * corpus covers at least 200 spellings and every region a node can have. */
static void corpus(void)
{
    const char *dir = getenv("TESTS_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/data/phones.tsv", dir ? dir : "tests");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    size_t nregions = 0;
    const struct region_info *all = region_all(&nregions);
    int per_region[32] = {0};
    int rows = 0, wrong = 0, nokey = 0;
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || !line[0])
            continue;
        char *text = strchr(line, '\t');
        char *want = text ? strchr(text + 1, '\t') : NULL;
        CHECK(want != NULL);
        if (!want)
            continue;
        *text++ = '\0';
        *want++ = '\0';
        const struct region_info *r = region_find(line);
        CHECK(r != NULL);
        if (!r)
            continue;
        per_region[r - all]++;
        rows++;
        char got[PHONE_E164_MAX] = "-";
        enum phone_verdict v = phone_parse(text, r, got);
        if (!strcmp(want, "-"))
            nokey++;
        if ((v == PHONE_VALID) != (strcmp(want, "-") != 0) || strcmp(got, want)) {
            fprintf(stderr, "phones.tsv:%d: %s \"%s\": want %s, got %s\n", lineno, line, text, want,
                    v == PHONE_VALID ? got : "no key");
            wrong++;
        }
    }
    fclose(f);
    fprintf(stderr, "corpus: %d spellings (%d without a key), %d wrong\n", rows, nokey, wrong);
    CHECK_EQ(wrong, 0);
    CHECK_INT(rows, >=, 200);
    CHECK_INT(nokey, >=, 13);
    for (size_t i = 0; i < nregions; i++) {
        if (per_region[i] < 10)
            fprintf(stderr, "corpus: region %s has only %d spellings\n", all[i].code,
                    per_region[i]);
        CHECK_INT(per_region[i], >=, 10);
    }
}

/* The spellings of one person meet in one key, in every region. */
static void one_key_per_person(void)
{
    CHECK_STR(e164("011 15-1234-5678", "AR"), e164("+54 9 11 1234-5678", "AR"));
    CHECK_STR(e164("+54 9 11 1234-5678", "EU-DE"), "+5491112345678");
    CHECK_STR(e164("8 10 49 30 1234567", "RU"), e164("030 1234567", "EU-DE"));
    CHECK_STR(e164("011 49 30 1234567", "US-TX"), "+49301234567");
    CHECK_STR(e164("0 21 11 91234-5678", "BR"), e164("(11) 91234-5678", "BR"));
    /* the same national digits in another region are another number */
    char ke[PHONE_E164_MAX], de[PHONE_E164_MAX];
    CHECK_EQ(phone_to_e164("0712 345678", region_find("KE"), ke), 0);
    CHECK_EQ(phone_to_e164("0712 345678", region_find("EU-DE"), de), 0);
    CHECK(strcmp(ke, de) != 0);
}

static void international_without_region(void)
{
    CHECK_STR(e164("+55 11 91234-5678", NULL), "+5511912345678");
    CHECK_STR(e164("+1 415 523 4567 ext. 7", NULL), "+14155234567;ext=7");
    CHECK_STR(e164("030 1234567", NULL), "ERR");
}

/* No key, and a reason a person can act on. */
static void reasons(void)
{
    const struct region_info *de = region_find("EU-DE"), *us = region_find("US-CA");
    char out[PHONE_E164_MAX] = "untouched", why[160];
    CHECK_EQ(phone_parse("call me", de, out), PHONE_NOT_A_NUMBER);
    CHECK_STR(out, "untouched");
    CHECK_STR(phone_reason(PHONE_NOT_A_NUMBER, de, why, sizeof why), "not a telephone number");
    CHECK_EQ(phone_parse("+49 30", de, out), PHONE_NOT_IN_PLAN);
    CHECK_EQ(phone_parse("0712 34", region_find("KE"), out), PHONE_TOO_SHORT);
    CHECK_EQ(phone_parse("0712 345678 123456", region_find("KE"), out), PHONE_TOO_LONG);
    CHECK_EQ(phone_parse("(415) 123-4567", us, out), PHONE_NOT_IN_PLAN);
    CHECK_CONTAINS(phone_reason(PHONE_NOT_IN_PLAN, us, why, sizeof why), "dialled in US");
    CHECK_EQ(phone_parse("030 1234567", NULL, out), PHONE_NO_COUNTRY);
    CHECK_CONTAINS(phone_reason(PHONE_NO_COUNTRY, NULL, why, sizeof why), "write it with +");
    CHECK_STR(out, "untouched");
    /* longer than any number libphonenumber reads */
    char big[400];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ(phone_parse(big, de, out), PHONE_NOT_A_NUMBER);
    CHECK_EQ(phone_to_e164(big, de, out), -EINVAL);
    CHECK_EQ(phone_parse(NULL, de, out), PHONE_NOT_A_NUMBER);
}

int main(void)
{
    RUN(corpus);
    RUN(one_key_per_person);
    RUN(international_without_region);
    RUN(reasons);
    return tl_report();
}
