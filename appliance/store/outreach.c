/*
 * The outreach queue; see outreach.h and docs/OUTREACH.md. Every state
 * change is one committed transaction (or the caller's), so the state a
 * row shows after a crash is the last one committed.
 */
#include "outreach.h"

#include <errno.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "codec.h"
#include "entity.h"
#include "outreach_sms.h"
#include "sql.h"
#include "store_queries.h"
#include "store_txn.h"

#define DAY_MS (86400LL * 1000)

static const char *const states[] = {"queued",  "sending", "sent", "failed",
                                     "unknown", "refused", NULL};

int outreach_state_valid(const char *state)
{
    for (size_t i = 0; state && states[i]; i++)
        if (!strcmp(states[i], state))
            return 1;
    return 0;
}

int outreach_sha256_hex(const char *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    (void)codec_hex_encode(md, 32, out, 65);
    return 0;
}

static const char *text_or(sqlite3_stmt *st, int col, const char *dflt)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : dflt;
}

/* The contact's e-mail address and language ("" when absent). */
static int contact_address(struct store *s, const char *contact_id, char *addr, size_t acap,
                           char *lang, size_t lcap, struct op_error *err)
{
    json_t *c = NULL;
    int rc = store_get(s, &entity_contact, contact_id, STORE_IGNORE_VIEWER, &c, err);
    if (rc < 0)
        return rc;
    const char *e = json_string_value(json_object_get(c, "email"));
    const char *l = json_string_value(json_object_get(c, "language"));
    snprintf(addr, acap, "%s", e ? e : "");
    snprintf(lang, lcap, "%s", l ? l : "");
    json_decref(c);
    return 0;
}

static int insert_full(struct store *s, const char *contact_id, const char *channel,
                       const char *purpose, const char *kind, const char *lang, const char *tmpl,
                       const char *params, const char *subject, const char *body, int64_t now,
                       int64_t *id, struct op_error *err)
{
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_INSERT, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, contact_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, lang, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, tmpl, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, params, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 10, now);
        rc = sql_run_what(&c, st, "cannot queue the message", err);
    }
    if (rc == 0 && id)
        *id = sqlite3_last_insert_rowid(c.db);
    return store_txn_end(s, &c, own, rc, err);
}

static int insert(struct store *s, const char *contact_id, const char *channel, const char *purpose,
                  const char *kind, const char *lang, const char *tmpl, const char *params,
                  int64_t now, int64_t *id, struct op_error *err)
{
    return insert_full(s, contact_id, channel, purpose, kind, lang, tmpl, params, "", "", now, id,
                       err);
}

static int bad_text(const char *t, int newline_ok)
{
    for (; *t; t++)
        if (((unsigned char)*t < 0x20 && !(newline_ok && (*t == '\n' || *t == '\t'))) || *t == 0x7f)
            return 1;
    return 0;
}

/* An SMS: no subject; the text's coding and segments are kept in params
 * (its cost). */
static int queue_sms(struct store *s, const struct outreach_new *m, const char *kind,
                     int64_t now_ms, int64_t *id, struct op_error *err)
{
    if (strcmp(kind, "marketing") && strcmp(kind, "transactional"))
        return op_error_set(err, -EINVAL, "kind", "kind: expected marketing or transactional");
    size_t plen = m->purpose ? strlen(m->purpose) : 0;
    if (!plen || plen > 100 || bad_text(m->purpose, 0))
        return op_error_set(err, -EINVAL, "purpose",
                            "purpose: 1 to 100 bytes without control characters");
    struct sms_count cnt;
    int rc = outreach_sms_check_text(m->body, &cnt, err);
    if (rc == 0 && bad_text(m->body, 1))
        rc = op_error_set(err, -EINVAL, "body", "body: no control characters but newline and tab");
    if (rc < 0)
        return rc;
    char addr[324], lang[36], params[64];
    rc = contact_address(s, m->contact_id, addr, sizeof addr, lang, sizeof lang, err);
    if (rc < 0)
        return rc;
    snprintf(params, sizeof params, "{\"segments\":%u,\"coding\":\"%s\"}", cnt.segments,
             sms_coding_name(cnt.coding));
    return insert_full(s, m->contact_id, "sms", m->purpose, kind,
                       m->language && *m->language ? m->language : lang, "", params, "", m->body,
                       store_txn_now(now_ms), id, err);
}

int outreach_queue(struct store *s, const struct outreach_new *m, int64_t now_ms, int64_t *id,
                   struct op_error *err)
{
    const char *kind = m->kind ? m->kind : "marketing";
    if (!m->channel || (strcmp(m->channel, "email") && strcmp(m->channel, "sms") &&
                        strcmp(m->channel, "print") && strcmp(m->channel, "call")))
        return op_error_set(err, -EINVAL, "channel",
                            "channel: '%.32s' has no transport yet; expected email, sms, print or "
                            "call",
                            m->channel ? m->channel : "");
    if (!strcmp(m->channel, "sms"))
        return queue_sms(s, m, kind, now_ms, id, err);
    if (strcmp(kind, "marketing") && strcmp(kind, "transactional"))
        return op_error_set(err, -EINVAL, "kind", "kind: expected marketing or transactional");
    size_t plen = m->purpose ? strlen(m->purpose) : 0;
    if (!plen || plen > 100 || bad_text(m->purpose, 0))
        return op_error_set(err, -EINVAL, "purpose",
                            "purpose: 1 to 100 bytes without control characters");
    if (!m->subject || !*m->subject || strlen(m->subject) > 998 || bad_text(m->subject, 0))
        return op_error_set(err, -EINVAL, "subject",
                            "subject: one line of 1 to 998 bytes without control characters");
    if (!m->body || strlen(m->body) > 60000 || bad_text(m->body, 1))
        return op_error_set(err, -EINVAL, "body",
                            "body: at most 60000 bytes; no control characters but newline and tab");
    char addr[324], lang[36];
    int rc = contact_address(s, m->contact_id, addr, sizeof addr, lang, sizeof lang, err);
    if (rc < 0)
        return rc;
    return insert_full(s, m->contact_id, m->channel, m->purpose, kind,
                       m->language && *m->language ? m->language : lang, "", "{}", m->subject,
                       m->body, store_txn_now(now_ms), id, err);
}

int outreach_queue_confirmation(struct store *s, const char *contact_id, const char *channel,
                                const char *purpose, const char *token, int64_t now_ms, int64_t *id,
                                struct op_error *err)
{
    if (id)
        *id = 0;
    if (!channel || strcmp(channel, "email") || !token || !*token)
        return 0;
    char addr[324], lang[36];
    int rc = contact_address(s, contact_id, addr, sizeof addr, lang, sizeof lang, err);
    if (rc < 0)
        return rc;
    if (!addr[0])
        return 0;
    json_t *params = json_pack("{s:s, s:s}", "purpose", purpose, "token", token);
    char *ptext = params ? json_dumps(params, JSON_COMPACT) : NULL;
    json_decref(params);
    if (!ptext)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    rc = insert(s, contact_id, "email", purpose, "transactional", lang, "confirm", ptext,
                store_txn_now(now_ms), id, err);
    free(ptext);
    return rc;
}

int outreach_queue_test(struct store *s, const char *contact_id, int64_t now_ms, int64_t *id,
                        struct op_error *err)
{
    char addr[324], lang[36];
    int rc = contact_address(s, contact_id, addr, sizeof addr, lang, sizeof lang, err);
    if (rc < 0)
        return rc;
    if (!addr[0])
        return op_error_set(err, -EINVAL, "email", "contact %s has no e-mail address", contact_id);
    return insert(s, contact_id, "email", "test", "transactional", lang, "test", "{}",
                  store_txn_now(now_ms), id, err);
}

int outreach_recover(struct store *s, int64_t *count, struct op_error *err)
{
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    rc = sql_exec(&c, STORE_Q_OUTREACH_RECOVER, err);
    if (rc >= 0 && count)
        *count = rc;
    return store_txn_end(s, &c, own, rc < 0 ? rc : 0, err);
}

static int state_of(struct sql_cache *c, int64_t id, char *out, size_t cap, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_OUTREACH_STATE_OF, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sql_step(c, STORE_Q_OUTREACH_STATE_OF, st, err);
    if (rc == 1) {
        snprintf(out, cap, "%s", text_or(st, 0, ""));
        sqlite3_reset(st);
        return 0;
    }
    return rc < 0 ? rc : op_error_set(err, -ENOENT, "id", "no message %lld", (long long)id);
}

int outreach_requeue(struct store *s, int64_t id, int64_t now_ms, struct op_error *err)
{
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    char state[16] = "";
    rc = state_of(&c, id, state, sizeof state, err);
    if (rc == 0 && strcmp(state, "unknown") && strcmp(state, "failed"))
        rc = op_error_set(err, -EINVAL, "id",
                          "message %lld is %s: only unknown or failed messages are requeued",
                          (long long)id, state);
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_OUTREACH_REQUEUE, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, store_txn_now(now_ms));
        rc = sql_run_what(&c, st, "cannot requeue the message", err);
    }
    return store_txn_end(s, &c, own, rc, err);
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    static const char *const
        cols[] = {"id",       "contact_id", "channel", "purpose",    "kind",        "language",
                  "template", "subject",    "state",   "attempts",   "next_try_ms", "last_try_ms",
                  "decision", "rule",       "relay",   "created_ms", "sent_ms",     "error",
                  "segments", "coding" /* an SMS's cost (params); null for e-mail */};
    for (int i = 0; i < (int)(sizeof cols / sizeof cols[0]); i++) {
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER:
            v = json_integer(sqlite3_column_int64(st, i));
            break;
        case SQLITE_NULL:
            v = json_null();
            break;
        default:
            v = json_string(text_or(st, i, ""));
            break;
        }
        json_object_set_new(o, cols[i], v);
    }
    return o;
}

static int list_row(sqlite3_stmt *st, void *ctx, struct op_error *err)
{
    (void)err;
    json_array_append_new(ctx, row_json(st));
    return 0;
}

int outreach_list(struct store *s, const char *state, unsigned limit, json_t **out,
                  struct op_error *err)
{
    if (state && !outreach_state_valid(state))
        return op_error_set(err, -EINVAL, "state",
                            "state: '%.32s' is not one of queued, sending, sent, failed, unknown, "
                            "refused",
                            state);
    if (limit < 1 || limit > OUTREACH_LIST_MAX)
        return op_error_set(err, -EINVAL, "limit", "limit: must be 1..%d", OUTREACH_LIST_MAX);
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    rc = sql_get_st(&c, STORE_Q_OUTREACH_LIST, &st, err);
    if (rc == 0) {
        if (state)
            sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, limit);
        rc = sql_each(&c, STORE_Q_OUTREACH_LIST, st, list_row, arr, err);
    }
    sql_cache_close(&c);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

int outreach_get(struct store *s, int64_t id, json_t **out, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_GET, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        rc = sql_step(&c, STORE_Q_OUTREACH_GET, st, err);
        if (rc == 1) {
            *out = row_json(st);
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "id", "no message %lld", (long long)id);
        }
    }
    sql_cache_close(&c);
    return rc;
}

void outreach_job_free(struct outreach_job *j)
{
    free(j->subject);
    free(j->body);
    explicit_bzero(j->confirm_token, sizeof j->confirm_token);
    j->subject = j->body = NULL;
}

/* Marks a queued message refused or failed, in its own transaction. */
static int settle(struct store *s, unsigned q, int64_t id, const char *a, const char *b,
                  struct op_error *err)
{
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, q, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, a, -1, SQLITE_TRANSIENT);
        if (b)
            sqlite3_bind_text(st, 3, b, -1, SQLITE_TRANSIENT);
        rc = sql_run_what(&c, st, "cannot record the message's state", err);
    }
    return store_txn_end(s, &c, own, rc, err);
}

/* Reads the due row into job; 1 found, 0 none. */
static int read_due(struct store *s, int64_t now, struct outreach_job *job, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_NEXT_DUE, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        rc = sql_step(&c, STORE_Q_OUTREACH_NEXT_DUE, st, err);
    }
    if (rc == 1) {
        memset(job, 0, sizeof *job);
        job->id = sqlite3_column_int64(st, 0);
        snprintf(job->contact_id, sizeof job->contact_id, "%s", text_or(st, 1, ""));
        snprintf(job->channel, sizeof job->channel, "%s", text_or(st, 2, ""));
        snprintf(job->purpose, sizeof job->purpose, "%s", text_or(st, 3, ""));
        snprintf(job->kind, sizeof job->kind, "%s", text_or(st, 4, ""));
        snprintf(job->language, sizeof job->language, "%s", text_or(st, 5, ""));
        snprintf(job->tmpl, sizeof job->tmpl, "%s", text_or(st, 6, ""));
        json_t *params = json_loads(text_or(st, 7, "{}"), 0, NULL);
        const char *tok = json_string_value(json_object_get(params, "token"));
        snprintf(job->confirm_token, sizeof job->confirm_token, "%s", tok ? tok : "");
        json_decref(params);
        job->subject = strdup(text_or(st, 8, ""));
        job->body = strdup(text_or(st, 9, ""));
        job->attempts = sqlite3_column_int(st, 10);
        sqlite3_reset(st);
        if (!job->subject || !job->body) {
            outreach_job_free(job);
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        }
    }
    sql_cache_close(&c);
    return rc;
}

int outreach_next(struct store *s, const struct policy *p, int64_t now_ms, struct outreach_job *job,
                  struct op_error *err)
{
    int64_t now = store_txn_now(now_ms);
    for (;;) {
        int rc = read_due(s, now, job, err);
        if (rc <= 0)
            return rc;
        char lang[36] = "";
        rc = contact_address(s, job->contact_id, job->address, sizeof job->address, lang,
                             sizeof lang, err);
        if (rc == -ENOENT) {
            rc =
                settle(s, STORE_Q_OUTREACH_FAIL_NOW, job->id, "the contact was deleted", NULL, err);
            outreach_job_free(job);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc < 0) {
            outreach_job_free(job);
            return rc;
        }
        if (!job->language[0])
            snprintf(job->language, sizeof job->language, "%s", lang);
        if (!strcmp(job->channel, "sms") &&
            (rc = outreach_sms_number(s, job->contact_id, job->address, err)) < 0) {
            outreach_job_free(job);
            return rc;
        }
        /* Right before sending, whatever happened while it waited. */
        rc = consent_check(s, p, job->contact_id, job->channel, job->purpose, job->kind, now,
                           &job->decision, err);
        if (rc < 0) {
            outreach_job_free(job);
            return rc;
        }
        if (!job->decision.allowed) {
            rc = settle(s, STORE_Q_OUTREACH_REFUSE, job->id,
                        consent_state_name(job->decision.state), job->decision.rule, err);
            outreach_job_free(job);
            if (rc < 0)
                return rc;
            continue;
        }
        if (!job->address[0]) {
            rc = settle(s, STORE_Q_OUTREACH_FAIL_NOW, job->id,
                        strcmp(job->channel, "sms") ? "the contact has no e-mail address"
                                                    : "the contact has no mobile number in E.164",
                        NULL, err);
            outreach_job_free(job);
            if (rc < 0)
                return rc;
            continue;
        }
        return 1;
    }
}

int outreach_new_token(char token[OUTREACH_TOKEN_BUF], struct op_error *err)
{
    unsigned char raw[32];
    int rc = auth_random(raw, sizeof raw);
    if (rc < 0)
        return op_error_set(err, rc, NULL, "no randomness for the unsubscribe token");
    rc = codec_b64_encode(raw, sizeof raw, CODEC_B64_URL | CODEC_B64_NOPAD, token,
                          OUTREACH_TOKEN_BUF);
    explicit_bzero(raw, sizeof raw);
    return rc < 0 ? op_error_set(err, rc, NULL, "cannot encode the unsubscribe token") : 0;
}

int outreach_attempt(struct store *s, const struct outreach_job *job, const char *relay,
                     const char *unsub_token, int64_t now_ms, struct op_error *err)
{
    char hash[65];
    if (outreach_sha256_hex(unsub_token, strlen(unsub_token), hash) < 0)
        return op_error_set(err, -EIO, NULL, "cannot hash the unsubscribe token");
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_ATTEMPT, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, job->id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, consent_state_name(job->decision.state), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, job->decision.rule, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, relay, -1, SQLITE_STATIC);
        rc = sql_run(&c, STORE_Q_OUTREACH_ATTEMPT, st, err);
        if (rc == 0)
            rc = op_error_set(err, -ESTALE, "id", "message %lld is no longer queued",
                              (long long)job->id);
        else if (rc > 0)
            rc = 0;
    }
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_OUTREACH_UNSUB_INSERT, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, job->id);
        sqlite3_bind_int64(st, 3, now);
        rc = sql_run_what(&c, st, "cannot store the unsubscribe token", err);
    }
    return store_txn_end(s, &c, own, rc, err);
}

int outreach_outcome(struct store *s, int64_t id, enum outreach_outcome o, const char *error,
                     unsigned retry_s, unsigned max_attempts, int64_t now_ms, struct op_error *err)
{
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    int64_t attempts = 0;
    if (o == OUTREACH_TEMPORARY) {
        rc = sql_get_st(&c, STORE_Q_OUTREACH_ATTEMPTS_OF, &st, err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, id);
            rc = sql_one_int64(&c, STORE_Q_OUTREACH_ATTEMPTS_OF, st, "the message's attempts",
                               &attempts, 1, err);
        }
        if (rc == 0 && attempts >= (int64_t)max_attempts)
            o = OUTREACH_PERMANENT;
    }
    unsigned q = o == OUTREACH_SENT        ? STORE_Q_OUTREACH_OUTCOME_SENT
                 : o == OUTREACH_TEMPORARY ? STORE_Q_OUTREACH_OUTCOME_RETRY
                 : o == OUTREACH_UNKNOWN   ? STORE_Q_OUTREACH_OUTCOME_UNKNOWN
                                           : STORE_Q_OUTREACH_OUTCOME_FAILED;
    if (rc == 0)
        rc = sql_get_st(&c, q, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        if (o == OUTREACH_SENT) {
            sqlite3_bind_int64(st, 2, now);
        } else if (o == OUTREACH_TEMPORARY) {
            int64_t delay = (int64_t)retry_s * 1000;
            for (int64_t i = 1; i < attempts && delay < DAY_MS; i++)
                delay *= 2;
            sqlite3_bind_int64(st, 2, now + (delay < DAY_MS ? delay : DAY_MS));
            sqlite3_bind_text(st, 3, error ? error : "", -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_text(st, 2, error ? error : "", -1, SQLITE_STATIC);
        }
        rc = sql_run_what(&c, st, "cannot record the outcome", err);
    }
    return store_txn_end(s, &c, own, rc, err);
}

int outreach_sent_since(struct store *s, int64_t since_ms, int64_t *n, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_SENT_SINCE, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, since_ms);
        rc = sql_one_int64(&c, STORE_Q_OUTREACH_SENT_SINCE, st, "messages sent today", n, 1, err);
    }
    sql_cache_close(&c);
    return rc;
}

int outreach_unsubscribe(struct store *s, const char *token, int64_t now_ms, char *lang,
                         struct op_error *err)
{
    size_t tlen = token ? strlen(token) : 0;
    if (!tlen || tlen >= OUTREACH_TOKEN_BUF)
        return op_error_set(err, -ENOENT, "token", "unknown unsubscribe link");
    char hash[65];
    if (outreach_sha256_hex(token, tlen, hash) < 0)
        return op_error_set(err, -EIO, NULL, "cannot hash the unsubscribe token");
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    char contact[40] = "", channel[24] = "", purpose[104] = "";
    int64_t msg = 0;
    int used = 0;
    rc = sql_get_st(&c, STORE_Q_OUTREACH_UNSUB_FIND, &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        rc = sql_step(&c, STORE_Q_OUTREACH_UNSUB_FIND, st, err);
        if (rc == 1) {
            msg = sqlite3_column_int64(st, 0);
            snprintf(contact, sizeof contact, "%s", text_or(st, 1, ""));
            snprintf(channel, sizeof channel, "%s", text_or(st, 2, ""));
            snprintf(purpose, sizeof purpose, "%s", text_or(st, 3, ""));
            used = sqlite3_column_type(st, 4) != SQLITE_NULL;
            sqlite3_reset(st);
            rc = 0;
        } else if (rc == 0) {
            rc = op_error_set(err, -ENOENT, "token", "unknown unsubscribe link");
        }
    }
    if (rc == 0 && lang) {
        json_t *m = NULL;
        lang[0] = '\0';
        if (outreach_get(s, msg, &m, NULL) == 0) {
            const char *l = json_string_value(json_object_get(m, "language"));
            snprintf(lang, 36, "%s", l ? l : "");
            json_decref(m);
        }
    }
    if (rc == 0 && !used) {
        rc = consent_withdraw(s, contact, channel, purpose, "marketing",
                              "one-click unsubscribe (RFC 8058)", now, NULL, err);
        if (rc == -ENOENT) /* the contact was erased: its address is suppressed already */
            rc = 0;
        if (rc == 0)
            rc = outreach_record_event(s, msg, "unsubscribed", now, "one-click unsubscribe", err);
        if (rc == 0)
            rc = sql_get_st(&c, STORE_Q_OUTREACH_UNSUB_USE, &st, err);
        if (rc == 0) {
            sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, now);
            rc = sql_run_what(&c, st, "cannot mark the unsubscribe link used", err);
        }
    }
    return store_txn_end(s, &c, own, rc, err);
}

static const char *const channels_known[] = {"email", "sms", "print", "call", NULL};

int outreach_channel_known(const char *channel)
{
    for (size_t i = 0; channel && channels_known[i]; i++)
        if (!strcmp(channels_known[i], channel))
            return 1;
    return 0;
}

const char *outreach_channels(void)
{
    return "email, sms, print, call";
}
