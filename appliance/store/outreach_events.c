/*
 * Outreach events; see outreach_events.h.
 */
#include "outreach_events.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "hlc.h"
#include "sql.h"
#include "store_queries.h"

static const char *const kinds[] = {
    "delivered", "bounced_hard", "bounced_soft", "failed", "replied", "unsubscribed", NULL};

int outreach_event_kind_valid(const char *kind)
{
    for (size_t i = 0; kind && kinds[i]; i++)
        if (!strcmp(kinds[i], kind))
            return 1;
    return 0;
}

static const char *outcome_of(const char *kind)
{
    if (!strcmp(kind, "delivered"))
        return "delivered";
    if (!strcmp(kind, "replied"))
        return "replied";
    if (!strcmp(kind, "unsubscribed"))
        return NULL;
    return "bounced";
}

/* The transport's words, one line, at most OUTREACH_EVENT_DETAIL_MAX bytes
 * ending on a whole UTF-8 character. */
static void clean_detail(const char *in, char *out, size_t cap)
{
    size_t len = in ? strlen(in) : 0;
    size_t n = len < cap - 1 ? len : cap - 1;
    if (n < len) /* cut: not inside a character */
        while (n > 0 && ((unsigned char)in[n] & 0xC0) == 0x80)
            n--;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? ' ' : in[i];
    out[n] = '\0';
}

int outreach_record_event(struct store *s, int64_t message_id, const char *kind, int64_t at_ms,
                          const char *detail, struct op_error *err)
{
    if (!outreach_event_kind_valid(kind))
        return op_error_set(err, -EINVAL, "kind",
                            "kind: '%.32s' is not one of delivered, bounced_hard, bounced_soft, "
                            "failed, replied, unsubscribed",
                            kind ? kind : "");
    int64_t now = at_ms ? at_ms : (int64_t)hlc_wall_ms(NULL);
    char words[OUTREACH_EVENT_DETAIL_MAX + 1];
    clean_detail(detail, words, sizeof words);
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    int own = sqlite3_get_autocommit(c.db) != 0;
    rc = own ? store_begin(s, err) : 0;
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_OUTREACH_EVENTS_MESSAGE_EXISTS, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, message_id);
        rc = sql_step(&c, STORE_Q_OUTREACH_EVENTS_MESSAGE_EXISTS, st, err);
        if (rc == 1) {
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "message_id", "no message %lld", (long long)message_id);
        }
    }
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_OUTREACH_EVENTS_INSERT, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, message_id);
        sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        sqlite3_bind_text(st, 4, words, -1, SQLITE_STATIC);
        rc = sql_run_what(&c, st, "cannot record the event", err);
    }
    const char *oc = outcome_of(kind);
    if (rc == 0 && oc)
        rc = sql_get_st(&c, STORE_Q_OUTREACH_EVENTS_SET_OUTCOME, &st, err);
    if (rc == 0 && oc) {
        sqlite3_bind_int64(st, 1, message_id);
        sqlite3_bind_text(st, 2, oc, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = sql_run(&c, STORE_Q_OUTREACH_EVENTS_SET_OUTCOME, st, err);
        rc = rc < 0 ? rc : 0;
    }
    if (own) {
        if (rc < 0)
            store_rollback(s);
        else
            rc = store_commit(s, err);
    }
    sql_cache_close(&c);
    return rc;
}
