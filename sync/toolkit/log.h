/*
 * The daemons' log: one line per message on stderr, starting with the
 * sd-daemon(3) priority prefix ("<3>" err ... "<7>" debug) that systemd's
 * journal reads from a unit's stderr (SyslogLevelPrefix=yes, the default),
 * then the program's name, so `journalctl -p warning -u outpostd` shows
 * only what needs a person. When stderr is the journal itself (systemd
 * names its stream in $JOURNAL_STREAM) the name is left out: the journal
 * shows its own "outpostd[PID]:" and the line would carry it twice. When
 * asked (log_set_timestamps, for a log file outside systemd) a line
 * starts with its UTC time before the priority; the journal keeps its own
 * time, so there the request is ignored. The invariant: one call writes exactly one
 * line, with one write(2), of at most LOG_LINE_MAX bytes: control bytes in
 * the formatted text (a newline in a path or in metadata a client sent)
 * are escaped ("\n", "\r", "\x1b"), and so is the backslash ("\\"), so
 * no text can end a line early, forge another one, or pass for an escape.
 * Every caller gets this without doing anything: there is no way to write
 * a raw control byte, and text of several lines is logged as several
 * calls.
 *
 * outpostd and outpost-hq call it from their main files and their loop
 * modules; library code does not log but returns its error (op_error.h)
 * to the caller that decides. The name and threshold are process-wide
 * (stderr is): set once at start, the threshold again on reload. Safe to
 * call from any thread.
 */
#ifndef OUTPOST_LOG_H
#define OUTPOST_LOG_H

#include <stdarg.h>

/* The syslog(3) priorities the journal understands, as sd-daemon's SD_ERR
 * to SD_DEBUG. A message goes out when its level is at or below the
 * threshold. */
enum log_level {
    LOG_LEVEL_ERR = 3,     /* something failed and will not fix itself: a person must act */
    LOG_LEVEL_WARNING = 4, /* something failed and is retried, or a setting was not taken */
    LOG_LEVEL_NOTICE = 5,  /* a state change: started, stopped, reloaded, policy in force */
    LOG_LEVEL_INFO = 6,    /* routine progress: a segment applied, one request */
    LOG_LEVEL_DEBUG = 7    /* repeats and detail the other levels leave out */
};

/* The longest line written, with its prefix and newline; a longer message
 * is cut at a whole character and ends in "...". */
#define LOG_LINE_MAX 2048

/* The longest program name kept (longer ones are cut). */
#define LOG_PROGRAM_MAX 32

/* Sets the name every line starts with after its priority ("outpostd"
 * gives "<6>outpostd: ..."; NULL or "" gives no name) and the threshold,
 * and looks once at where stderr goes: when it is the stream
 * $JOURNAL_STREAM names ("DEVICE:INODE", set by systemd), lines carry no
 * name and no time. Call once at start, before other threads run. Until
 * it is called lines carry no name and the threshold is LOG_LEVEL_INFO. */
void log_init(const char *program, enum log_level threshold);

/* 1 when log_init found stderr to be the journal's stream, else 0. */
int log_to_journal(void);

/* on: every line starts with its UTC time to the millisecond and a space
 * ("2026-12-06T15:40:01.123Z <5>outpostd: ..."), for a log file written
 * outside systemd; ignored when stderr is the journal. Off at start. Like
 * the threshold, it may change on a reload. */
void log_set_timestamps(int on);

/* Changes the threshold (a reload); takes effect for the next message in
 * every thread. A level outside ERR..DEBUG is clamped into it. */
void log_set_level(enum log_level threshold);

/* The threshold in force. */
enum log_level log_get_level(void);

/* Parses a level as journalctl -p names it: "err", "warning", "notice",
 * "info" or "debug". Returns 0 and sets *out, or -EINVAL (*out unchanged). */
int log_level_parse(const char *text, enum log_level *out);

/* "err", "warning", "notice", "info" or "debug"; "?" for anything else. */
const char *log_level_name(enum log_level level);

/* Formats one message (no trailing newline: the line gets one) and writes
 * it when level is at or below the threshold. Never fails visibly: a line
 * that cannot be written is dropped (there is nowhere else to say so). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* log_msg at one level each. */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
