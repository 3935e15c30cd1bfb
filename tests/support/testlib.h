/*
 * A minimal assertion layer for the unit tests: each CHECK prints the file,
 * line and both values when it fails and counts the failure; the test's
 * main returns tl_report(), which prints a summary and exits non-zero if
 * anything failed. Tests keep going after a failed check so one run shows
 * every broken behaviour. C_CHECK and its kin are the same checks for a
 * forked child (a client of a server the parent runs): counted in cfails,
 * which the child returns as its exit code.
 */
#ifndef OUTPOST_TESTLIB_H
#define OUTPOST_TESTLIB_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int tl_checks;
static int tl_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        tl_checks++;                                                                               \
        if (!(cond)) {                                                                             \
            tl_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, op, b)                                                                        \
    do {                                                                                           \
        long long tl_a_ = (long long)(a), tl_b_ = (long long)(b);                                  \
        tl_checks++;                                                                               \
        if (!(tl_a_ op tl_b_)) {                                                                   \
            tl_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s %s %s (%lld vs %lld)\n", __FILE__, __LINE__,  \
                    #a, #op, #b, tl_a_, tl_b_);                                                    \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *tl_a_ = (a), *tl_b_ = (b);                                                     \
        tl_checks++;                                                                               \
        if (!tl_a_ || !tl_b_ || strcmp(tl_a_, tl_b_) != 0) {                                       \
            tl_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, tl_a_ ? tl_a_ : "(null)", tl_b_ ? tl_b_ : "(null)");         \
        }                                                                                          \
    } while (0)

/* Checks that string `hay` contains `needle`. */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *tl_h_ = (hay), *tl_n_ = (needle);                                              \
        tl_checks++;                                                                               \
        if (!tl_h_ || !strstr(tl_h_, tl_n_)) {                                                     \
            tl_failed++;                                                                           \
            fprintf(stderr, "%s:%d: check failed: \"%s\" contains \"%s\"\n", __FILE__, __LINE__,   \
                    tl_h_ ? tl_h_ : "(null)", tl_n_);                                              \
        }                                                                                          \
    } while (0)

/* Checks in the child: each failure is printed and counted in cfails,
 * which the child returns as its exit code. */
static int cfails __attribute__((unused));

#define C_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            cfails++;                                                                              \
            fprintf(stderr, "  client %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                          \
    } while (0)

#define C_EQ(a, b)                                                                                 \
    do {                                                                                           \
        long long c_a_ = (long long)(a), c_b_ = (long long)(b);                                    \
        if (c_a_ != c_b_) {                                                                        \
            cfails++;                                                                              \
            fprintf(stderr, "  client %s:%d: check failed: %s == %s (%lld vs %lld)\n", __FILE__,   \
                    __LINE__, #a, #b, c_a_, c_b_);                                                 \
        }                                                                                          \
    } while (0)

#define C_STR(a, b)                                                                                \
    do {                                                                                           \
        const char *c_a_ = (a), *c_b_ = (b);                                                       \
        if (!c_a_ || strcmp(c_a_, c_b_) != 0) {                                                    \
            cfails++;                                                                              \
            fprintf(stderr, "  client %s:%d: check failed: %s == %s (\"%s\" vs \"%s\")\n",         \
                    __FILE__, __LINE__, #a, #b, c_a_ ? c_a_ : "(null)", c_b_);                     \
        }                                                                                          \
    } while (0)

#define C_HAS(hay, needle)                                                                         \
    do {                                                                                           \
        const char *c_h_ = (hay), *c_n_ = (needle);                                                \
        if (!c_h_ || !strstr(c_h_, c_n_)) {                                                        \
            cfails++;                                                                              \
            fprintf(stderr, "  client %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__,          \
                    __LINE__, c_h_ ? c_h_ : "(null)", c_n_);                                       \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int tl_before_ = tl_failed;                                                                \
        test();                                                                                    \
        fprintf(stderr, "%s %s\n", tl_failed == tl_before_ ? "ok  " : "FAIL", #test);              \
    } while (0)

static inline int tl_report(void)
{
    fprintf(stderr, "%d checks, %d failed\n", tl_checks, tl_failed);
    return tl_failed ? 1 : 0;
}

#endif
