/*
 * The daemons' log; see log.h. A line is built whole in a stack buffer
 * ("[TIME ]<N>[program: ]text\n") and written with one write(2), so lines from the
 * loop and the thread pool never interleave and stdio's buffering plays no
 * part. Escaping: \n and \r as themselves, every other byte below 0x20 and
 * 0x7f as \xNN, and a backslash as \\ (so an escape in a line always
 * comes from the log, never from text that spelt one out); bytes from 0x80
 * up pass through (UTF-8 text stays readable), and a cut never splits a
 * UTF-8 sequence or an escape.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char program[LOG_PROGRAM_MAX + 1];
static atomic_int threshold = LOG_LEVEL_INFO;
static int journal;               /* stderr is the journal's stream: no name, no time */
static atomic_int timestamps = 0; /* log_set_timestamps */

static const char *const names[] = {"err", "warning", "notice", "info", "debug"};

static enum log_level clamp(enum log_level level)
{
    if ((int)level < LOG_LEVEL_ERR)
        return LOG_LEVEL_ERR;
    if ((int)level > LOG_LEVEL_DEBUG)
        return LOG_LEVEL_DEBUG;
    return level;
}

/* systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the stream it connects
 * to stdout and stderr; a child whose stderr was redirected since inherits
 * the variable but not the stream, so both numbers must match. */
static int stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    if (!env || !*env)
        return 0;
    unsigned long long dev, ino;
    char tail;
    if (sscanf(env, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return 0;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *program_name, enum log_level level)
{
    journal = stderr_is_journal();
    snprintf(program, sizeof program, "%s", program_name && !journal ? program_name : "");
    log_set_level(level);
}

int log_to_journal(void)
{
    return journal;
}

void log_set_timestamps(int on)
{
    atomic_store_explicit(&timestamps, on ? 1 : 0, memory_order_relaxed);
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&threshold, (int)clamp(level), memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&threshold, memory_order_relaxed);
}

int log_level_parse(const char *text, enum log_level *out)
{
    for (size_t i = 0; text && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(text, names[i])) {
            *out = (enum log_level)(LOG_LEVEL_ERR + (int)i);
            return 0;
        }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    if ((int)level < LOG_LEVEL_ERR || (int)level > LOG_LEVEL_DEBUG)
        return "?";
    return names[level - LOG_LEVEL_ERR];
}

/* Appends s[0..n) escaped to dst from *pos, up to limit bytes in all.
 * Returns 1 when all of it fitted; else 0, and *pos is after the last
 * whole character that fitted. */
static int escape(char *dst, size_t *pos, size_t limit, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos, whole = p;
    unsigned need = 0; /* continuation bytes the current UTF-8 sequence still needs */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        char e[4];
        size_t elen = 2;
        e[0] = '\\';
        if (c == '\n') {
            e[1] = 'n';
        } else if (c == '\r') {
            e[1] = 'r';
        } else if (c == '\\') {
            e[1] = '\\';
        } else if (c < 0x20 || c == 0x7f) {
            e[1] = 'x';
            e[2] = hex[c >> 4];
            e[3] = hex[c & 15];
            elen = 4;
        } else {
            e[0] = (char)c;
            elen = 1;
        }
        if (p + elen > limit) {
            *pos = whole;
            return 0;
        }
        memcpy(dst + p, e, elen);
        p += elen;
        if (c >= 0xc0 && c < 0xf8)
            need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        else if (c >= 0x80 && c < 0xc0 && need)
            need--;
        else
            need = 0;
        if (!need)
            whole = p;
    }
    *pos = need ? whole : p;
    return !need;
}

static void write_all(const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    level = clamp(level);
    if ((int)level > atomic_load_explicit(&threshold, memory_order_relaxed))
        return;
    char text[LOG_LINE_MAX];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0)
        n = snprintf(text, sizeof text, "(a log message that cannot be formatted: %s)", fmt);
    int cut = (size_t)n >= sizeof text;
    size_t tlen = cut ? sizeof text - 1 : (size_t)n;

    char line[LOG_LINE_MAX];
    char stamp[40] = "";
    if (!journal && atomic_load_explicit(&timestamps, memory_order_relaxed)) {
        struct timespec now;
        struct tm tm;
        if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm)) {
            size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(stamp + sl, sizeof stamp - sl, ".%03ldZ ", now.tv_nsec / 1000000L);
        }
    }
    int h = snprintf(line, sizeof line, "%s<%d>%s%s", stamp, (int)level, program,
                     program[0] ? ": " : "");
    size_t pos = h > 0 ? (size_t)h : 0;
    size_t limit = sizeof line - 1; /* the newline */
    size_t start = pos;
    if (cut || !escape(line, &pos, limit, (const unsigned char *)text, tlen)) {
        pos = start;
        (void)escape(line, &pos, limit - 3, (const unsigned char *)text, tlen);
        memcpy(line + pos, "...", 3);
        pos += 3;
    }
    line[pos++] = '\n';
    write_all(line, pos);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

#define LOG_AT(name, level)                                                                        \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_vmsg(level, fmt, ap);                                                                  \
        va_end(ap);                                                                                \
    }

LOG_AT(log_err, LOG_LEVEL_ERR)
LOG_AT(log_warning, LOG_LEVEL_WARNING)
LOG_AT(log_notice, LOG_LEVEL_NOTICE)
LOG_AT(log_info, LOG_LEVEL_INFO)
LOG_AT(log_debug, LOG_LEVEL_DEBUG)
