/* Tests for sync/toolkit/log.c with stderr captured in a temporary file: the
 * priority prefix of each level, the program name, the threshold, level
 * names, escaping (a message with \n, \r, ESC, TAB and DEL stays one line,
 * so a newline in outside text cannot forge a second line; a backslash is
 * escaped, so text cannot spell out an escape), the length
 * cap (never splitting an escape or a UTF-8 character), and that lines
 * from several threads do not interleave; that a line written to the
 * journal's own stream ($JOURNAL_STREAM) carries no second name and no
 * time, and that timestamps, when asked for, start each line elsewhere. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testlib.h"

static int saved_fd = -1;
static FILE *sink;

/* Sends stderr (fd 2) to a new temporary file until capture_end. */
static void capture_begin(void)
{
    fflush(stderr);
    sink = tmpfile();
    saved_fd = dup(STDERR_FILENO);
    if (!sink || saved_fd < 0 || dup2(fileno(sink), STDERR_FILENO) < 0) {
        perror("capture");
        exit(1);
    }
}

/* Restores stderr and returns what was written meanwhile (malloc'd). */
static char *capture_end(size_t *len_out)
{
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    /* the log wrote to the shared file with write(2): ask the file */
    fseek(sink, 0, SEEK_END);
    long len = ftell(sink);
    char *buf = malloc((size_t)len + 1);
    rewind(sink);
    size_t n = fread(buf, 1, (size_t)len, sink);
    buf[n] = '\0';
    fclose(sink);
    if (len_out)
        *len_out = n;
    return buf;
}

static void prefixes_per_level(void)
{
    log_init("testd", LOG_LEVEL_DEBUG);
    capture_begin();
    log_err("e %d", 3);
    log_warning("w %s", "four");
    log_notice("n");
    log_info("i");
    log_debug("d");
    log_msg(LOG_LEVEL_WARNING, "via %s", "log_msg");
    char *out = capture_end(NULL);
    CHECK_STR(out, "<3>testd: e 3\n"
                   "<4>testd: w four\n"
                   "<5>testd: n\n"
                   "<6>testd: i\n"
                   "<7>testd: d\n"
                   "<4>testd: via log_msg\n");
    free(out);
}

static void program_name(void)
{
    log_init(NULL, LOG_LEVEL_INFO);
    capture_begin();
    log_info("no name");
    log_init("", LOG_LEVEL_INFO);
    log_info("empty name");
    log_init("outpost-hq", LOG_LEVEL_INFO);
    log_info("named");
    log_init("a-program-name-longer-than-thirty-two-bytes", LOG_LEVEL_INFO);
    log_info("cut");
    char *out = capture_end(NULL);
    CHECK_STR(out, "<6>no name\n"
                   "<6>empty name\n"
                   "<6>outpost-hq: named\n"
                   "<6>a-program-name-longer-than-thirt: cut\n");
    free(out);
}

static void threshold(void)
{
    log_init("testd", LOG_LEVEL_INFO); /* the default */
    CHECK_EQ(log_get_level(), LOG_LEVEL_INFO);
    capture_begin();
    log_debug("hidden at info");
    log_info("shown at info");
    log_set_level(LOG_LEVEL_WARNING);
    log_info("hidden at warning");
    log_notice("hidden at warning");
    log_warning("shown at warning");
    log_err("shown at warning");
    log_set_level(LOG_LEVEL_ERR);
    log_warning("hidden at err");
    log_err("shown at err");
    char *out = capture_end(NULL);
    CHECK_STR(out, "<6>testd: shown at info\n"
                   "<4>testd: shown at warning\n"
                   "<3>testd: shown at warning\n"
                   "<3>testd: shown at err\n");
    free(out);

    /* out of range: clamped, for the threshold and for a message */
    log_set_level((enum log_level)0);
    CHECK_EQ(log_get_level(), LOG_LEVEL_ERR);
    log_set_level((enum log_level)42);
    CHECK_EQ(log_get_level(), LOG_LEVEL_DEBUG);
    capture_begin();
    log_msg((enum log_level)1, "below err");
    log_msg((enum log_level)9, "above debug");
    out = capture_end(NULL);
    CHECK_STR(out, "<3>testd: below err\n<7>testd: above debug\n");
    free(out);
}

static void level_names(void)
{
    static const char *const names[] = {"err", "warning", "notice", "info", "debug"};
    for (int i = 0; i < 5; i++) {
        enum log_level l = LOG_LEVEL_INFO;
        CHECK_EQ(log_level_parse(names[i], &l), 0);
        CHECK_EQ(l, LOG_LEVEL_ERR + i);
        CHECK_STR(log_level_name(l), names[i]);
    }
    static const char *const bad[] = {"", "ERR", "error", "warn", "info ", "6", "crit"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum log_level l = LOG_LEVEL_NOTICE;
        CHECK_EQ(log_level_parse(bad[i], &l), -EINVAL);
        CHECK_EQ(l, LOG_LEVEL_NOTICE);
    }
    enum log_level l = LOG_LEVEL_NOTICE;
    CHECK_EQ(log_level_parse(NULL, &l), -EINVAL);
    CHECK_STR(log_level_name((enum log_level)2), "?");
    CHECK_STR(log_level_name((enum log_level)8), "?");
}

static void escaping(void)
{
    log_init("testd", LOG_LEVEL_INFO);
    capture_begin();
    log_info("a\nb\rc\x1b[31md\te\x7f f\x01g");
    /* a path a client chose, with a newline and a forged line after it */
    log_warning("upload %s: cannot settle", "x\n<3>testd: forged\n");
    log_info("%s", "Łódź, Müller, \xe2\x80\xa8 \xc2\x85 \xff"); /* bytes >= 0x80 pass */
    log_info("%s", "");
    /* a backslash is escaped too: text that spells out "\n" cannot pass
     * for an escaped newline, so every escape in a line is the log's */
    log_info("path %s", "a\\nb\\\n");
    size_t len;
    char *out = capture_end(&len);
    CHECK_STR(out, "<6>testd: a\\nb\\rc\\x1b[31md\\x09e\\x7f f\\x01g\n"
                   "<4>testd: upload x\\n<3>testd: forged\\n: cannot settle\n"
                   "<6>testd: Łódź, Müller, \xe2\x80\xa8 \xc2\x85 \xff\n"
                   "<6>testd: \n"
                   "<6>testd: path a\\\\nb\\\\\\n\n");
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    CHECK_EQ(lines, 5);
    free(out);
}

/* The last line of out, without its newline, and checks it is one line
 * of at most LOG_LINE_MAX bytes. */
static size_t one_line(const char *out, size_t len)
{
    CHECK(len > 0 && out[len - 1] == '\n');
    CHECK(memchr(out, '\n', len) == out + len - 1);
    CHECK(len <= LOG_LINE_MAX);
    return len - 1;
}

static void length_cap(void)
{
    log_init("testd", LOG_LEVEL_INFO);
    const size_t head = strlen("<6>testd: ");
    char *big = malloc(10000);
    memset(big, 'a', 9999);
    big[9999] = '\0';

    /* a message that just fits is whole */
    size_t room = LOG_LINE_MAX - 1 - head;
    capture_begin();
    log_info("%.*s", (int)room, big);
    size_t len;
    char *out = capture_end(&len);
    CHECK_EQ(one_line(out, len), LOG_LINE_MAX - 1);
    CHECK(strstr(out, "...") == NULL);
    free(out);

    /* one byte more is cut and says so */
    capture_begin();
    log_info("%.*s", (int)room + 1, big);
    out = capture_end(&len);
    CHECK_EQ(one_line(out, len), LOG_LINE_MAX - 1);
    CHECK_EQ(memcmp(out + len - 4, "...\n", 4), 0);
    free(out);

    /* far more than fits, formatted: the same cap */
    capture_begin();
    log_info("%s and %s", big, big);
    out = capture_end(&len);
    CHECK_EQ(one_line(out, len), LOG_LINE_MAX - 1);
    CHECK_EQ(memcmp(out, "<6>testd: aaa", 13), 0);
    CHECK_EQ(memcmp(out + len - 4, "...\n", 4), 0);
    free(out);

    /* escapes are never split: only whole "\x01"s before the "..." */
    memset(big, '\x01', 9999);
    capture_begin();
    log_info("%s", big);
    out = capture_end(&len);
    size_t body = one_line(out, len) - head - 3;
    CHECK_EQ(body % 4, 0);
    CHECK_EQ(memcmp(out + head + body - 4, "\\x01...", 7), 0);
    free(out);

    /* nor UTF-8 characters: only whole "ł"s (2 bytes), for either parity
     * of the room left */
    for (int shift = 0; shift < 2; shift++) {
        size_t n = 0;
        if (shift)
            big[n++] = 'z';
        while (n + 2 < 9999) {
            big[n++] = '\xc5';
            big[n++] = '\x82';
        }
        big[n] = '\0';
        capture_begin();
        log_info("%s", big);
        out = capture_end(&len);
        body = one_line(out, len) - head - 3 - (size_t)shift;
        CHECK_EQ(body % 2, 0);
        CHECK_EQ((unsigned char)out[head + shift + body - 1], 0x82);
        CHECK(body + 2 > LOG_LINE_MAX - 1 - head - 3 - (size_t)shift); /* no more cut than needed */
        free(out);
    }
    free(big);
}

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 300; i++)
        log_info("thread %d line %d %s", id, i,
                 "..................................................................");
    return NULL;
}

/* Lines written from several threads at once come out whole. */
static void threads_do_not_interleave(void)
{
    log_init("testd", LOG_LEVEL_INFO);
    capture_begin();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    size_t len;
    char *out = capture_end(&len);
    int lines = 0, good = 0;
    for (char *s = out, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = '\0';
        int id, i, end = 0;
        lines++;
        if (sscanf(s, "<6>testd: thread %d line %d %*[.]%n", &id, &i, &end) == 2 && s[end] == '\0')
            good++;
    }
    CHECK_EQ(lines, 1200);
    CHECK_EQ(good, 1200);
    free(out);
}

/* Points $JOURNAL_STREAM at the current stderr (match) or at another
 * inode (no match), as systemd would for a unit's stream. */
static void journal_stream_env(int match)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0) {
        perror("fstat");
        exit(1);
    }
    char v[64];
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (match ? 0 : 1));
    setenv("JOURNAL_STREAM", v, 1);
}

static void journal_stream_has_one_name(void)
{
    capture_begin();
    journal_stream_env(1);
    log_init("outpostd", LOG_LEVEL_INFO);
    CHECK_EQ(log_to_journal(), 1);
    log_set_timestamps(1); /* the journal keeps its own time */
    log_err("bad listen address");
    log_notice("serving");
    log_set_timestamps(0);
    char *out = capture_end(NULL);
    CHECK_STR(out, "<3>bad listen address\n<5>serving\n");
    free(out);

    /* Inherited by a child whose stderr is a file: not the journal. */
    capture_begin();
    journal_stream_env(0);
    log_init("outpostd", LOG_LEVEL_INFO);
    CHECK_EQ(log_to_journal(), 0);
    log_err("bad listen address");
    out = capture_end(NULL);
    CHECK_STR(out, "<3>outpostd: bad listen address\n");
    free(out);

    capture_begin();
    setenv("JOURNAL_STREAM", "not-a-stream", 1);
    log_init("outpostd", LOG_LEVEL_INFO);
    CHECK_EQ(log_to_journal(), 0);
    log_warning("w");
    out = capture_end(NULL);
    CHECK_STR(out, "<4>outpostd: w\n");
    free(out);
    unsetenv("JOURNAL_STREAM");
}

/* "2026-12-06T15:40:01.123Z " then the usual line, only when asked. */
static void timestamps(void)
{
    unsetenv("JOURNAL_STREAM");
    log_init("outpost-hq", LOG_LEVEL_INFO);
    capture_begin();
    time_t before = time(NULL);
    log_set_timestamps(1);
    log_notice("stamped");
    log_set_timestamps(0);
    log_notice("plain");
    time_t after = time(NULL);
    char *out = capture_end(NULL);
    CHECK_INT(strlen(out), >, 25);
    if (strlen(out) > 25) {
        CHECK_STR(out + 24, " <5>outpost-hq: stamped\n<5>outpost-hq: plain\n");
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        char *end = strptime(out, "%Y-%m-%dT%H:%M:%S", &tm);
        CHECK(end != NULL);
        if (end) {
            CHECK_EQ(end[0], '.');
            CHECK_EQ(end[4], 'Z');
            time_t at = timegm(&tm);
            CHECK_INT((long long)at, >=, (long long)before);
            CHECK_INT((long long)at, <=, (long long)after);
        }
    }
    free(out);
}

int main(void)
{
    RUN(prefixes_per_level);
    RUN(program_name);
    RUN(threshold);
    RUN(level_names);
    RUN(escaping);
    RUN(length_cap);
    RUN(threads_do_not_interleave);
    RUN(journal_stream_has_one_name);
    RUN(timestamps);
    return tl_report();
}
