/*
 * Handing out printed mail and call lists; see outreach_handout.h. The
 * take is one transaction over the queue: every due message of the
 * channel ends it refused, failed or sending, so two states never mix
 * after a crash.
 */
#include "outreach_handout.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "phone.h"
#include "region.h"
#include "sql.h"
#include "store_queries.h"
#include "store_txn.h"

static const char *text_or(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

static int valid_channel(const char *channel, struct op_error *err)
{
    if (channel && (!strcmp(channel, "print") || !strcmp(channel, "call")))
        return 0;
    return op_error_set(err, -EINVAL, "channel", "channel: expected print or call");
}

int outreach_handout_recover(struct store *s, const char *channel, int64_t *count,
                             struct op_error *err)
{
    int rc = valid_channel(channel, err);
    if (rc < 0)
        return rc;
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_HANDOUT_RECOVER, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
        rc = sql_run(&c, STORE_Q_OUTREACH_HANDOUT_RECOVER, st, err);
        if (rc >= 0 && count)
            *count = rc;
    }
    sql_cache_close(&c);
    return rc < 0 ? rc : 0;
}

void outreach_handout_free(struct outreach_handout *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->rows[i].subject);
        free(h->rows[i].body);
        json_decref(h->rows[i].contact);
    }
    free(h->rows);
    h->rows = NULL;
    h->n = 0;
}

static const char *field(json_t *ct, const char *name)
{
    const char *v = json_string_value(json_object_get(ct, name));
    return v ? v : "";
}

/* Why the contact cannot be reached on the channel, or NULL. */
static const char *unreachable(struct store *s, const char *channel, json_t *ct, char phone[24])
{
    if (!strcmp(channel, "print")) {
        if (!field(ct, "street")[0] || (!field(ct, "locality")[0] && !field(ct, "postal_code")[0]))
            return "the contact has no postal address (street and locality or postal code)";
        return NULL;
    }
    const char *ph = field(ct, "phone");
    if (!ph[0])
        return "the contact has no phone number";
    const char *region = store_region(s);
    const struct region_info *r = region ? region_find(region) : NULL;
    char e164[PHONE_E164_MAX];
    if (phone_to_e164(ph, r, e164) != 0 || strlen(e164) >= 24)
        return "the contact's phone number is not valid in the region's numbering plan";
    snprintf(phone, 24, "%s", e164);
    return NULL;
}

static int settle(struct sql_cache *c, unsigned q, int64_t id, const char *a, const char *b,
                  struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, q, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
        if (b)
            sqlite3_bind_text(st, 3, b, -1, SQLITE_TRANSIENT);
        rc = sql_run_what(c, st, "cannot record the message's state", err);
    }
    return rc;
}

/* One due message into *row (1), or 0 when none is left. */
static int read_due(struct sql_cache *c, const char *channel, int64_t now,
                    struct outreach_handout_row *row, char kind[16], struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_HANDOUT_NEXT_DUE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    rc = sql_step(c, STORE_Q_OUTREACH_HANDOUT_NEXT_DUE, st, err);
    if (rc != 1)
        return rc;
    memset(row, 0, sizeof *row);
    row->id = sqlite3_column_int64(st, 0);
    snprintf(row->contact_id, sizeof row->contact_id, "%s", text_or(st, 1));
    snprintf(row->purpose, sizeof row->purpose, "%s", text_or(st, 2));
    snprintf(kind, 16, "%s", text_or(st, 3));
    snprintf(row->language, sizeof row->language, "%s", text_or(st, 4));
    row->subject = strdup(text_or(st, 5));
    row->body = strdup(text_or(st, 6));
    sqlite3_reset(st);
    if (!row->subject || !row->body) {
        free(row->subject);
        free(row->body);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    return 1;
}

int outreach_handout_take(struct store *s, const struct policy *p, const char *channel,
                          unsigned limit, int64_t now_ms, struct outreach_handout *out,
                          struct op_error *err)
{
    memset(out, 0, sizeof *out);
    int rc = valid_channel(channel, err);
    if (rc < 0)
        return rc;
    if (limit < 1 || limit > OUTREACH_HANDOUT_MAX)
        return op_error_set(err, -EINVAL, "limit", "limit: must be 1..%d", OUTREACH_HANDOUT_MAX);
    snprintf(out->channel, sizeof out->channel, "%s", channel);
    out->rows = calloc(limit, sizeof *out->rows);
    if (!out->rows)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    const char *ledger = !strcmp(channel, "print") ? "direct_mail" : "call";
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc == 0) {
        rc = store_begin(s, err);
        if (rc < 0)
            sql_cache_close(&c);
    }
    if (rc < 0) {
        outreach_handout_free(out);
        return rc;
    }
    while (rc == 0 && out->n < limit) {
        struct outreach_handout_row row;
        char kind[16];
        rc = read_due(&c, channel, now, &row, kind, err);
        if (rc <= 0)
            break;
        rc = 0;
        json_t *ct = NULL;
        int g = store_get(s, &entity_contact, row.contact_id, STORE_IGNORE_VIEWER, &ct, err);
        const char *why = NULL;
        if (g == -ENOENT) {
            why = "the contact was deleted";
        } else if (g < 0) {
            rc = g;
        } else {
            rc = consent_check(s, p, row.contact_id, ledger, row.purpose, kind, now, &row.decision,
                               err);
            if (rc == 0 && row.decision.allowed)
                why = unreachable(s, channel, ct, row.phone);
        }
        if (rc == 0 && g == 0 && !row.decision.allowed) {
            rc = settle(&c, STORE_Q_OUTREACH_REFUSE, row.id, consent_state_name(row.decision.state),
                        row.decision.rule, err);
            out->refused++;
        } else if (rc == 0 && why) {
            rc = settle(&c, STORE_Q_OUTREACH_FAIL_NOW, row.id, why, NULL, err);
            out->failed++;
        } else if (rc == 0) {
            sqlite3_stmt *st = NULL;
            rc = sql_get_st(&c, STORE_Q_OUTREACH_ATTEMPT, &st, err);
            if (rc == 0) {
                sqlite3_bind_int64(st, 1, row.id);
                sqlite3_bind_int64(st, 2, now);
                sqlite3_bind_text(st, 3, consent_state_name(row.decision.state), -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 4, row.decision.rule, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 5, !strcmp(channel, "print") ? "print file" : "call list", -1,
                                  SQLITE_STATIC);
                rc = sql_run_what(&c, st, "cannot record the attempt", err);
            }
            if (rc == 0) {
                if (!row.language[0])
                    snprintf(row.language, sizeof row.language, "%s", field(ct, "language"));
                row.contact = ct;
                ct = NULL;
                out->rows[out->n++] = row;
                row.subject = row.body = NULL;
            }
        }
        json_decref(ct);
        free(row.subject);
        free(row.body);
    }
    if (rc < 0) {
        store_rollback(s);
        sql_cache_close(&c);
        outreach_handout_free(out);
        return rc;
    }
    rc = store_commit(s, err);
    sql_cache_close(&c);
    if (rc < 0)
        outreach_handout_free(out);
    return rc;
}

static int finish(struct store *s, const struct outreach_handout *h, unsigned q, int64_t now,
                  const char *why, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    rc = store_begin(s, err);
    if (rc < 0) {
        sql_cache_close(&c);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < h->n; i++) {
        sqlite3_stmt *st = NULL;
        rc = sql_get_st(&c, q, &st, err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, h->rows[i].id);
            if (why)
                sqlite3_bind_text(st, 2, why, -1, SQLITE_STATIC);
            else
                sqlite3_bind_int64(st, 2, now);
            rc = sql_run_what(&c, st, "cannot record the message's state", err);
        }
    }
    if (rc < 0)
        store_rollback(s);
    else
        rc = store_commit(s, err);
    sql_cache_close(&c);
    return rc;
}

int outreach_handout_done(struct store *s, const struct outreach_handout *h, int64_t now_ms,
                          struct op_error *err)
{
    return finish(s, h, STORE_Q_OUTREACH_HANDOUT_DONE, store_txn_now(now_ms), NULL, err);
}

int outreach_handout_release(struct store *s, const struct outreach_handout *h, const char *why,
                             struct op_error *err)
{
    return finish(s, h, STORE_Q_OUTREACH_HANDOUT_RELEASE, 0, why ? why : "", err);
}
