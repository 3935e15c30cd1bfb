/*
 * Campaigns; see campaign.h and docs/OUTREACH.md, "Campaigns". The
 * segment's filters are bound as JSON arrays into one named query
 * (sql/campaign.sql), so no SQL is built at run time.
 */
#include "campaign.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consent.h"
#include "entity.h"
#include "outreach.h"
#include "sql.h"
#include "store_queries.h"
#include "store_txn.h"
#include "timefmt.h"
#include "utf8.h"

#define NAME_MAX_BYTES 200
#define SUBJECT_MAX 200
#define BODY_MAX 20000
#define FILTER_VALUES_MAX 100
#define TEMPLATES_MAX 20

static const char *const states[] = {"draft", "scheduled", "running", "paused",
                                     "done",  "cancelled", NULL};
static const char *const slots[] = {"given_name", "family_name", "name", "locality", NULL};

static int utf8_valid(const char *t, size_t n)
{
    return utf8_bad_offset(t, n, 0) < 0;
}

int campaign_state_valid(const char *state)
{
    for (size_t i = 0; state && states[i]; i++)
        if (!strcmp(states[i], state))
            return 1;
    return 0;
}

static const char *text_or(sqlite3_stmt *st, int col, const char *dflt)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : dflt;
}

/* ---- validation ---------------------------------------------------- */

static int bad_text(const char *t, int newline_ok)
{
    for (; *t; t++)
        if (((unsigned char)*t < 0x20 && !(newline_ok && (*t == '\n' || *t == '\t'))) || *t == 0x7f)
            return 1;
    return 0;
}

static int is_lang_key(const char *k)
{
    size_t n = strlen(k);
    if (n < 2 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 'a' || k[i] > 'z')
            return 0;
    return 1;
}

/* A non-empty array of 1..max strings, each passing ok() (may be NULL). */
static int check_values(const json_t *v, const char *key, int (*ok)(const char *), const char *what,
                        struct op_error *err)
{
    char field[64];
    snprintf(field, sizeof field, "segment.%s", key);
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > FILTER_VALUES_MAX)
        return op_error_set(err, -EINVAL, field, "%s: expected an array of 1 to %d values", field,
                            FILTER_VALUES_MAX);
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *t = json_string_value(e);
        snprintf(field, sizeof field, "segment.%s[%zu]", key, i);
        if (!t || !*t || strlen(t) > 100 || bad_text(t, 0) || !utf8_valid(t, strlen(t)))
            return op_error_set(err, -EINVAL, field, "%s: expected a text of 1 to 100 bytes",
                                field);
        if (ok && !ok(t))
            return op_error_set(err, -EINVAL, field, "%s: \"%.40s\" is not %s", field, t, what);
    }
    return 0;
}

static int is_country(const char *t)
{
    return strlen(t) == 2 && isupper((unsigned char)t[0]) && isupper((unsigned char)t[1]);
}

static int is_uuid(const char *t)
{
    return strlen(t) == 36 && strspn(t, "0123456789abcdef-") == 36 && t[8] == '-' && t[13] == '-' &&
           t[18] == '-' && t[23] == '-';
}

static int is_activity_channel(const char *t)
{
    const struct field_def *f = entity_field(&entity_activity, "channel");
    for (size_t i = 0; f && f->values && f->values[i]; i++)
        if (!strcmp(f->values[i], t))
            return 1;
    return 0;
}

static int check_segment(const json_t *seg, struct op_error *err)
{
    if (!json_is_object(seg))
        return op_error_set(err, -EINVAL, "segment", "segment: expected an object of filters");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)seg, key, v)
    {
        int rc = 0;
        if (!strcmp(key, "country"))
            rc = check_values(v, key, is_country, "an ISO 3166-1 code such as DE", err);
        else if (!strcmp(key, "region") || !strcmp(key, "locality"))
            rc = check_values(v, key, NULL, NULL, err);
        else if (!strcmp(key, "language"))
            rc = check_values(v, key, is_lang_key, "a primary language subtag such as de", err);
        else if (!strcmp(key, "organization"))
            rc = check_values(v, key, is_uuid, "an organization id (a UUID)", err);
        else if (!strcmp(key, "owner")) {
            const char *t = json_string_value(v);
            if (!t || !is_uuid(t))
                rc = op_error_set(err, -EINVAL, "segment.owner",
                                  "segment.owner: expected a user id (a UUID)");
        } else if (!strcmp(key, "activity")) {
            const char *ch = json_string_value(json_object_get(v, "channel"));
            const char *since = json_string_value(json_object_get(v, "since"));
            int64_t ms;
            if (!json_is_object(v) || json_object_size(v) != 2)
                rc = op_error_set(err, -EINVAL, "segment.activity",
                                  "segment.activity: expected {\"channel\": ..., \"since\": ...}");
            else if (!ch || !is_activity_channel(ch))
                rc = op_error_set(err, -EINVAL, "segment.activity.channel",
                                  "segment.activity.channel: expected an activity channel (visit, "
                                  "call, sms, messaging_app, email, direct_mail, meeting)");
            else if (!since || timefmt_parse_iso(since, &ms) < 0)
                rc = op_error_set(err, -EINVAL, "segment.activity.since",
                                  "segment.activity.since: expected a UTC time such as "
                                  "2026-01-31 or 2026-01-31T08:00:00Z");
        } else {
            char field[80];
            snprintf(field, sizeof field, "segment.%.60s", key);
            rc = op_error_set(err, -EINVAL, field,
                              "%s: unknown filter (country, region, locality, language, "
                              "organization, owner, activity)",
                              field);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Slots are {{name}} of the list; anything else between braces is an
 * error, as is an unclosed "{{". */
static int check_slots(const char *t, const char *field, struct op_error *err)
{
    for (const char *p = strstr(t, "{{"); p; p = strstr(p, "{{")) {
        const char *q = strstr(p + 2, "}}");
        if (!q)
            return op_error_set(err, -EINVAL, field, "%s: \"{{\" without \"}}\"", field);
        size_t n = (size_t)(q - p - 2);
        int known = 0;
        for (size_t i = 0; slots[i]; i++)
            known |= strlen(slots[i]) == n && !strncmp(slots[i], p + 2, n);
        if (!known)
            return op_error_set(err, -EINVAL, field,
                                "%s: unknown slot {{%.*s}} (given_name, family_name, name, "
                                "locality)",
                                field, (int)(n > 40 ? 40 : n), p + 2);
        p = q + 2;
    }
    return 0;
}

/* What each channel needs of a contact and which consent ledger channel
 * decides it: the same mapping the sender (email, sms) and the hand-out
 * (print as direct_mail, call) apply when the message goes. */
struct channel_rule {
    const char *channel;
    const char *ledger;
    const char *address; /* "the contact has no ..." */
    int need_subject;
};

static const struct channel_rule channel_rules[] = {
    {"email", "email", "e-mail address", 1},
    {"sms", "sms", "mobile number in E.164", 0},
    {"call", "call", "phone number in E.164", 0},
    {"print", "direct_mail", "postal address (street and locality or postal code)", 1},
};

static const struct channel_rule *channel_rule(const char *channel)
{
    for (size_t i = 0; channel && i < sizeof channel_rules / sizeof channel_rules[0]; i++)
        if (!strcmp(channel_rules[i].channel, channel))
            return &channel_rules[i];
    return NULL;
}

static int check_templates(const json_t *tp, const char *fallback, int need_subject,
                           struct op_error *err)
{
    if (!json_is_object(tp) || json_object_size(tp) == 0 || json_object_size(tp) > TEMPLATES_MAX)
        return op_error_set(err, -EINVAL, "templates",
                            "templates: expected an object of 1 to %d languages, each "
                            "{\"subject\": ..., \"body\": ...}",
                            TEMPLATES_MAX);
    const char *lang;
    const json_t *t;
    json_object_foreach((json_t *)tp, lang, t)
    {
        char field[80];
        snprintf(field, sizeof field, "templates.%.20s", lang);
        if (!is_lang_key(lang))
            return op_error_set(err, -EINVAL, field,
                                "%s: expected a primary language subtag such as de or pt", field);
        if (!json_is_object(t))
            return op_error_set(err, -EINVAL, field,
                                "%s: expected {\"subject\": ..., \"body\": ...}", field);
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)t, k, v)
        {
            if (strcmp(k, "subject") && strcmp(k, "body")) {
                snprintf(field, sizeof field, "templates.%s.%.30s", lang, k);
                return op_error_set(err, -EINVAL, field, "%s: unknown member (subject, body)",
                                    field);
            }
        }
        const json_t *sv = json_object_get(t, "subject");
        const char *subj = json_string_value(sv);
        const char *body = json_string_value(json_object_get(t, "body"));
        snprintf(field, sizeof field, "templates.%s.subject", lang);
        int rc = 0;
        if (!need_subject && sv && !json_is_string(sv))
            return op_error_set(err, -EINVAL, field,
                                "%s: expected one line of text, or no subject at all", field);
        if (!need_subject && subj && !*subj)
            subj = NULL; /* "" is no subject where none is needed */
        if ((need_subject || subj) && (!subj || !*subj || strlen(subj) > SUBJECT_MAX ||
                                       bad_text(subj, 0) || !utf8_valid(subj, strlen(subj))))
            return op_error_set(err, -EINVAL, field,
                                "%s: expected one line of 1 to %d bytes of UTF-8 text%s", field,
                                SUBJECT_MAX, need_subject ? "" : " (or no subject)");
        if (subj)
            rc = check_slots(subj, field, err);
        if (rc < 0)
            return rc;
        snprintf(field, sizeof field, "templates.%s.body", lang);
        if (!body || !*body || strlen(body) > BODY_MAX || bad_text(body, 1) ||
            !utf8_valid(body, strlen(body)))
            return op_error_set(err, -EINVAL, field,
                                "%s: expected 1 to %d bytes of UTF-8 text (no control characters "
                                "but newline and tab)",
                                field, BODY_MAX);
        rc = check_slots(body, field, err);
        if (rc < 0)
            return rc;
    }
    if (!fallback || !json_object_get(tp, fallback))
        return op_error_set(err, -EINVAL, "fallback_language",
                            "fallback_language: expected one of the templates' languages");
    return 0;
}

int campaign_validate(const json_t *spec, struct op_error *err)
{
    if (!json_is_object(spec))
        return op_error_set(err, -EINVAL, NULL, "expected a JSON object");
    static const char *const members[] = {"name",     "segment",   "channel",
                                          "purpose",  "templates", "fallback_language",
                                          "start_at", "end_at",    NULL};
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)spec, key, v)
    {
        int known = 0;
        for (size_t i = 0; members[i]; i++)
            known |= !strcmp(members[i], key);
        if (!known) {
            char field[64];
            snprintf(field, sizeof field, "%.60s", key);
            return op_error_set(err, -EINVAL, field,
                                "%s: unknown member (name, segment, channel, purpose, templates, "
                                "fallback_language, start_at, end_at)",
                                field);
        }
    }
    const char *name = json_string_value(json_object_get(spec, "name"));
    if (!name || !*name || strlen(name) > NAME_MAX_BYTES || bad_text(name, 0) ||
        !utf8_valid(name, strlen(name)))
        return op_error_set(err, -EINVAL, "name", "name: expected one line of 1 to %d bytes",
                            NAME_MAX_BYTES);
    const json_t *seg = json_object_get(spec, "segment");
    int rc = seg ? check_segment(seg, err) : 0;
    if (rc < 0)
        return rc;
    const char *ch = json_string_value(json_object_get(spec, "channel"));
    const struct channel_rule *cr = outreach_channel_known(ch) ? channel_rule(ch) : NULL;
    if (!cr)
        return op_error_set(err, -EINVAL, "channel",
                            "channel: \"%.24s\" has no transport on this node (%s)", ch ? ch : "",
                            outreach_channels());
    const char *purpose = json_string_value(json_object_get(spec, "purpose"));
    if (!purpose || !*purpose || strlen(purpose) > 100 || bad_text(purpose, 0))
        return op_error_set(err, -EINVAL, "purpose",
                            "purpose: expected the consent ledger's purpose, 1 to 100 bytes");
    rc = check_templates(json_object_get(spec, "templates"),
                         json_string_value(json_object_get(spec, "fallback_language")),
                         cr->need_subject, err);
    if (rc < 0)
        return rc;
    int64_t start = 0, end = 0;
    const json_t *sv = json_object_get(spec, "start_at"), *ev = json_object_get(spec, "end_at");
    if (sv && (!json_is_string(sv) || timefmt_parse_iso(json_string_value(sv), &start) < 0))
        return op_error_set(err, -EINVAL, "start_at",
                            "start_at: expected a UTC time such as 2026-12-01T08:00:00Z");
    if (ev && !json_is_null(ev) &&
        (!json_is_string(ev) || timefmt_parse_iso(json_string_value(ev), &end) < 0))
        return op_error_set(err, -EINVAL, "end_at",
                            "end_at: expected a UTC time such as 2026-12-31T18:00:00Z");
    if (sv && ev && !json_is_null(ev) && end <= start)
        return op_error_set(err, -EINVAL, "end_at", "end_at: must be after start_at");
    return 0;
}

int campaign_create(struct store *s, const json_t *spec, const char *created_by, int64_t now_ms,
                    int64_t *id, struct op_error *err)
{
    int rc = campaign_validate(spec, err);
    if (rc < 0)
        return rc;
    int64_t now = store_txn_now(now_ms), start = now, end = 0;
    const json_t *sv = json_object_get(spec, "start_at"), *ev = json_object_get(spec, "end_at");
    if (sv)
        (void)timefmt_parse_iso(json_string_value(sv), &start);
    int has_end = ev && !json_is_null(ev);
    if (has_end)
        (void)timefmt_parse_iso(json_string_value(ev), &end);
    if (has_end && end <= start)
        return op_error_set(err, -EINVAL, "end_at", "end_at: must be after the start (now)");
    const json_t *seg = json_object_get(spec, "segment");
    char *segtext = seg ? json_dumps(seg, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    char *tptext = json_dumps(json_object_get(spec, "templates"), JSON_COMPACT | JSON_SORT_KEYS);
    if (!segtext || !tptext) {
        free(segtext);
        free(tptext);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    struct sql_cache c;
    int own;
    rc = store_txn_begin(s, &c, &own, err);
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        rc = sql_get_st(&c, STORE_Q_CAMPAIGN_INSERT, &st, err);
        if (rc == 0) {
            sqlite3_bind_text(st, 1, json_string_value(json_object_get(spec, "name")), -1,
                              SQLITE_STATIC);
            sqlite3_bind_text(st, 2, segtext, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, json_string_value(json_object_get(spec, "channel")), -1,
                              SQLITE_STATIC);
            sqlite3_bind_text(st, 4, json_string_value(json_object_get(spec, "purpose")), -1,
                              SQLITE_STATIC);
            sqlite3_bind_text(st, 5, tptext, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 6, json_string_value(json_object_get(spec, "fallback_language")),
                              -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 7, start);
            if (has_end)
                sqlite3_bind_int64(st, 8, end);
            sqlite3_bind_text(st, 9, created_by ? created_by : "", -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 10, now);
            rc = sql_run_what(&c, st, "cannot store the campaign", err);
        }
        if (rc == 0 && id)
            *id = sqlite3_last_insert_rowid(c.db);
        rc = store_txn_end(s, &c, own, rc, err);
    }
    free(segtext);
    free(tptext);
    return rc;
}

/* ---- reading --------------------------------------------------------- */

struct camp {
    int64_t id;
    char name[NAME_MAX_BYTES + 1];
    json_t *segment;
    char channel[24];
    char purpose[104];
    json_t *templates;
    char fallback[4];
    int64_t start_ms, end_ms; /* end 0: none */
    char state[16];
    char cursor[40];
    int plan_done;
    char created_by[64];
    int64_t created_ms, updated_ms;
};

static void camp_free(struct camp *k)
{
    json_decref(k->segment);
    json_decref(k->templates);
    k->segment = k->templates = NULL;
}

static void camp_read(sqlite3_stmt *st, struct camp *k)
{
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(st, 0);
    snprintf(k->name, sizeof k->name, "%s", text_or(st, 1, ""));
    k->segment = json_loads(text_or(st, 2, "{}"), 0, NULL);
    snprintf(k->channel, sizeof k->channel, "%s", text_or(st, 3, ""));
    snprintf(k->purpose, sizeof k->purpose, "%s", text_or(st, 4, ""));
    k->templates = json_loads(text_or(st, 5, "{}"), 0, NULL);
    snprintf(k->fallback, sizeof k->fallback, "%s", text_or(st, 6, ""));
    k->start_ms = sqlite3_column_int64(st, 7);
    k->end_ms = sqlite3_column_type(st, 8) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 8);
    snprintf(k->state, sizeof k->state, "%s", text_or(st, 9, ""));
    snprintf(k->cursor, sizeof k->cursor, "%s", text_or(st, 10, ""));
    k->plan_done = sqlite3_column_int(st, 11);
    snprintf(k->created_by, sizeof k->created_by, "%s", text_or(st, 12, ""));
    k->created_ms = sqlite3_column_int64(st, 13);
    k->updated_ms = sqlite3_column_int64(st, 14);
    if (!k->segment)
        k->segment = json_object();
    if (!k->templates)
        k->templates = json_object();
}

static int camp_load(struct sql_cache *c, int64_t id, struct camp *k, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_CAMPAIGN_GET, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sql_step(c, STORE_Q_CAMPAIGN_GET, st, err);
    if (rc == 1) {
        camp_read(st, k);
        sqlite3_reset(st);
        return 0;
    }
    return rc < 0 ? rc : op_error_set(err, -ENOENT, "id", "no campaign %lld", (long long)id);
}

static json_t *time_json(int64_t ms)
{
    char t[40];
    return timefmt_iso_s(ms, t, sizeof t) < 0 ? json_null() : json_string(t);
}

static json_t *camp_json(const struct camp *k)
{
    return json_pack("{s:I, s:s, s:O, s:s, s:s, s:O, s:s, s:o, s:o, s:s, s:b, s:s, s:o, s:o}", "id",
                     (json_int_t)k->id, "name", k->name, "segment", k->segment, "channel",
                     k->channel, "purpose", k->purpose, "templates", k->templates,
                     "fallback_language", k->fallback, "start_at", time_json(k->start_ms), "end_at",
                     k->end_ms ? time_json(k->end_ms) : json_null(), "state", k->state,
                     "planned_all", k->plan_done, "created_by", k->created_by, "created_at",
                     time_json(k->created_ms), "updated_at", time_json(k->updated_ms));
}

static int figures_on(struct sql_cache *c, int64_t id, json_t **out, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_CAMPAIGN_FIGURES, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sql_step(c, STORE_Q_CAMPAIGN_FIGURES, st, err);
    if (rc < 0)
        return rc;
    int64_t v[10] = {0};
    for (int i = 0; rc == 1 && i < 10; i++)
        v[i] = sqlite3_column_int64(st, i);
    if (rc == 1)
        sqlite3_reset(st);
    json_t *f = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "planned", (json_int_t)v[0], "queued",
        (json_int_t)v[1], "sending", (json_int_t)v[2], "sent", (json_int_t)v[3], "failed",
        (json_int_t)v[4], "unknown", (json_int_t)v[5], "refused", (json_int_t)v[6], "delivered",
        (json_int_t)v[7], "bounced", (json_int_t)v[8], "responded", (json_int_t)v[9]);
    json_t *by = json_object();
    rc = sql_get_st(c, STORE_Q_CAMPAIGN_REFUSED_BY_REASON, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        while ((rc = sql_step(c, STORE_Q_CAMPAIGN_REFUSED_BY_REASON, st, err)) == 1)
            json_object_set_new(by, text_or(st, 0, ""), json_integer(sqlite3_column_int64(st, 1)));
    }
    int64_t unsub = 0;
    if (rc == 0)
        rc = sql_get_st(c, STORE_Q_CAMPAIGN_UNSUBSCRIBED, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        rc = sql_one_int64(c, STORE_Q_CAMPAIGN_UNSUBSCRIBED, st, "unsubscribed", &unsub, 1, err);
    }
    if (rc < 0) {
        json_decref(f);
        json_decref(by);
        return rc;
    }
    json_object_set_new(f, "refused_by_reason", by);
    json_object_set_new(f, "unsubscribed", json_integer(unsub));
    *out = f;
    return 0;
}

int campaign_figures(struct store *s, int64_t id, json_t **out, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    struct camp k;
    rc = camp_load(&c, id, &k, err);
    if (rc == 0) {
        camp_free(&k);
        rc = figures_on(&c, id, out, err);
    }
    sql_cache_close(&c);
    return rc;
}

int campaign_get(struct store *s, int64_t id, json_t **out, struct op_error *err)
{
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    struct camp k;
    rc = camp_load(&c, id, &k, err);
    json_t *f = NULL;
    if (rc == 0) {
        rc = figures_on(&c, id, &f, err);
        if (rc == 0) {
            *out = camp_json(&k);
            json_object_set_new(*out, "figures", f);
        }
        camp_free(&k);
    }
    sql_cache_close(&c);
    return rc;
}

int campaign_list(struct store *s, const char *state, unsigned limit, json_t **out,
                  struct op_error *err)
{
    if (state && !campaign_state_valid(state))
        return op_error_set(err, -EINVAL, "state",
                            "state: '%.32s' is not one of draft, scheduled, running, paused, "
                            "done, cancelled",
                            state);
    if (limit < 1 || limit > CAMPAIGN_LIST_MAX)
        return op_error_set(err, -EINVAL, "limit", "limit: must be 1..%d", CAMPAIGN_LIST_MAX);
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    json_t *arr = json_array();
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_CAMPAIGN_LIST, &st, err);
    if (rc == 0) {
        if (state)
            sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, limit);
        while ((rc = sql_step(&c, STORE_Q_CAMPAIGN_LIST, st, err)) == 1) {
            struct camp k;
            camp_read(st, &k);
            json_array_append_new(arr, camp_json(&k));
            camp_free(&k);
        }
    }
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        json_t *f = NULL;
        if (rc == 0)
            rc = figures_on(&c, json_integer_value(json_object_get(o, "id")), &f, err);
        if (rc == 0)
            json_object_set_new(o, "figures", f);
    }
    sql_cache_close(&c);
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* ---- state changes --------------------------------------------------- */

static int change(struct store *s, int64_t id, int64_t now_ms, const char *verb,
                  const char *const *from, struct op_error *err)
{
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    struct camp k;
    rc = camp_load(&c, id, &k, err);
    if (rc < 0)
        return store_txn_end(s, &c, own, rc, err);
    int allowed = 0;
    for (size_t i = 0; from[i]; i++)
        allowed |= !strcmp(from[i], k.state);
    const char *to = NULL;
    if (!allowed)
        rc = op_error_set(err, -EALREADY, "state", "campaign %lld is %s: it cannot %s",
                          (long long)id, k.state, verb);
    else if (!strcmp(verb, "start")) {
        if (k.end_ms && k.end_ms <= now)
            rc = op_error_set(err, -EALREADY, "end_at",
                              "campaign %lld: its end_at has passed; nothing would be sent",
                              (long long)id);
        to = k.start_ms <= now ? "running" : "scheduled";
    } else if (!strcmp(verb, "pause"))
        to = "paused";
    else
        to = "cancelled";
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_CAMPAIGN_SET_STATE, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, k.state, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, now);
        rc = sql_run_what(&c, st, "cannot change the campaign's state", err);
    }
    if (rc == 0 && !strcmp(to, "cancelled")) {
        rc = sql_get_st(&c, STORE_Q_CAMPAIGN_CANCEL_MESSAGES, &st, err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, id);
            rc = sql_run_what(&c, st, "cannot stop the campaign's messages", err);
        }
    }
    camp_free(&k);
    return store_txn_end(s, &c, own, rc, err);
}

int campaign_start(struct store *s, int64_t id, int64_t now_ms, struct op_error *err)
{
    static const char *const from[] = {"draft", "paused", NULL};
    return change(s, id, now_ms, "start", from, err);
}

int campaign_pause(struct store *s, int64_t id, int64_t now_ms, struct op_error *err)
{
    static const char *const from[] = {"scheduled", "running", NULL};
    return change(s, id, now_ms, "pause", from, err);
}

int campaign_cancel(struct store *s, int64_t id, int64_t now_ms, struct op_error *err)
{
    static const char *const from[] = {"draft", "scheduled", "running", "paused", NULL};
    return change(s, id, now_ms, "cancel", from, err);
}

/* ---- planning -------------------------------------------------------- */

struct member {
    char id[40];
    char language[36];
    char *given, *family, *locality, *email, *phone_e164, *street, *postal_code;
};

static void member_free(struct member *m)
{
    free(m->given);
    free(m->family);
    free(m->locality);
    free(m->email);
    free(m->phone_e164);
    free(m->street);
    free(m->postal_code);
}

/* The segment's filters as the texts the query binds (NULL: none). */
struct seg_bind {
    char *arr[5]; /* country, region, locality, language, organization */
    const char *owner;
    const char *act_channel;
    char act_since[32];
};

static void seg_bind_free(struct seg_bind *b)
{
    for (int i = 0; i < 5; i++)
        free(b->arr[i]);
}

static void seg_bind_make(const json_t *seg, struct seg_bind *b)
{
    memset(b, 0, sizeof *b);
    static const char *const keys[] = {"country", "region", "locality", "language", "organization"};
    for (int i = 0; i < 5; i++) {
        const json_t *v = json_object_get(seg, keys[i]);
        b->arr[i] = v ? json_dumps(v, JSON_COMPACT) : NULL;
    }
    b->owner = json_string_value(json_object_get(seg, "owner"));
    const json_t *a = json_object_get(seg, "activity");
    b->act_channel = json_string_value(json_object_get(a, "channel"));
    int64_t ms = 0;
    if (b->act_channel &&
        timefmt_parse_iso(json_string_value(json_object_get(a, "since")), &ms) == 0)
        (void)timefmt_iso_s(ms, b->act_since, sizeof b->act_since);
}

/* Reads up to max members after cursor into ms; returns how many. */
static int segment_page(struct sql_cache *c, const struct seg_bind *b, const char *cursor,
                        unsigned max, struct member *ms, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, STORE_Q_CAMPAIGN_SEGMENT_PAGE, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, cursor, -1, SQLITE_TRANSIENT);
    for (int i = 0; i < 5; i++)
        if (b->arr[i])
            sqlite3_bind_text(st, 2 + i, b->arr[i], -1, SQLITE_STATIC);
    if (b->owner)
        sqlite3_bind_text(st, 7, b->owner, -1, SQLITE_STATIC);
    if (b->act_channel) {
        sqlite3_bind_text(st, 8, b->act_channel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 9, b->act_since, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 10, max);
    int n = 0;
    while ((rc = sql_step(c, STORE_Q_CAMPAIGN_SEGMENT_PAGE, st, err)) == 1) {
        struct member *m = &ms[n++];
        memset(m, 0, sizeof *m);
        snprintf(m->id, sizeof m->id, "%s", text_or(st, 0, ""));
        snprintf(m->language, sizeof m->language, "%s", text_or(st, 1, ""));
        m->given = strdup(text_or(st, 2, ""));
        m->family = strdup(text_or(st, 3, ""));
        m->locality = strdup(text_or(st, 4, ""));
        m->email = strdup(text_or(st, 5, ""));
        m->phone_e164 = strdup(text_or(st, 6, ""));
        m->street = strdup(text_or(st, 7, ""));
        m->postal_code = strdup(text_or(st, 8, ""));
        if (!m->given || !m->family || !m->locality || !m->email || !m->phone_e164 || !m->street ||
            !m->postal_code) {
            sqlite3_reset(st);
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
            break;
        }
    }
    if (rc < 0) {
        for (int i = 0; i < n; i++)
            member_free(&ms[i]);
        return rc;
    }
    return n;
}

struct decision {
    int allowed;
    char reason[24]; /* the consent state's name, or no_address */
    char rule[CONSENT_RULE_MAX];
};

/* The consent ledger's decision for one member, as the sender takes it. */
static int decide(struct store *s, const struct policy *p, const struct camp *k,
                  const struct member *m, int64_t now, struct decision *d, struct op_error *err)
{
    memset(d, 0, sizeof *d);
    const struct channel_rule *cr = channel_rule(k->channel);
    if (!cr)
        return op_error_set(err, -EINVAL, "channel", "channel: \"%.24s\" has no transport",
                            k->channel);
    int reachable;
    if (!strcmp(cr->channel, "email"))
        reachable = m->email[0] != '\0';
    else if (!strcmp(cr->channel, "print"))
        reachable = m->street[0] && (m->locality[0] || m->postal_code[0]);
    else
        reachable = m->phone_e164[0] == '+';
    if (!reachable) {
        snprintf(d->reason, sizeof d->reason, "no_address");
        snprintf(d->rule, sizeof d->rule, "the contact has no %s", cr->address);
        return 0;
    }
    struct consent_decision cd;
    int rc = consent_check(s, p, m->id, cr->ledger, k->purpose, "marketing", now, &cd, err);
    if (rc < 0)
        return rc;
    d->allowed = cd.allowed;
    snprintf(d->reason, sizeof d->reason, "%s", consent_state_name(cd.state));
    snprintf(d->rule, sizeof d->rule, "%s", cd.rule);
    return 0;
}

/* The template language for a contact: its primary subtag if the campaign
 * has a template for it, else the fallback. */
static const char *pick_language(const struct camp *k, const char *contact_lang, char out[4])
{
    size_t n = strcspn(contact_lang, "-_");
    if (n >= 2 && n <= 3) {
        for (size_t i = 0; i < n; i++)
            out[i] = (char)tolower((unsigned char)contact_lang[i]);
        out[n] = '\0';
        if (json_object_get(k->templates, out))
            return out;
    }
    snprintf(out, 4, "%s", k->fallback);
    return out;
}

/* Fills the slots of t; a malloc'd string or NULL. */
static char *render(const char *t, const struct member *m)
{
    size_t cap = strlen(t) + 1;
    for (const char *p = strstr(t, "{{"); p; p = strstr(p + 2, "{{"))
        cap += strlen(m->given) + strlen(m->family) + strlen(m->locality) + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    while (*t) {
        const char *q = NULL;
        if (t[0] == '{' && t[1] == '{' && (q = strstr(t + 2, "}}"))) {
            size_t n = (size_t)(q - t - 2);
            const char *v = NULL;
            char both[2 * 1024];
            if (n == 10 && !strncmp(t + 2, "given_name", n))
                v = m->given;
            else if (n == 11 && !strncmp(t + 2, "family_name", n))
                v = m->family;
            else if (n == 8 && !strncmp(t + 2, "locality", n))
                v = m->locality;
            else if (n == 4 && !strncmp(t + 2, "name", n)) {
                snprintf(both, sizeof both, "%s%s%s", m->given,
                         m->given[0] && m->family[0] ? " " : "", m->family);
                v = both;
            }
            if (v) {
                size_t vl = strlen(v);
                memcpy(out + o, v, vl);
                o += vl;
                t = q + 2;
                continue;
            }
        }
        out[o++] = *t++;
    }
    out[o] = '\0';
    return out;
}

int campaign_plan_step(struct store *s, const struct policy *p, int64_t id, unsigned batch,
                       int64_t now_ms, int *done, int64_t *planned, struct op_error *err)
{
    *done = 0;
    if (planned)
        *planned = 0;
    if (batch < 1 || batch > 10 * CAMPAIGN_BATCH)
        return op_error_set(err, -EINVAL, "batch", "batch: must be 1..%d", 10 * CAMPAIGN_BATCH);
    int64_t now = store_txn_now(now_ms);
    struct member *ms = calloc(batch, sizeof *ms);
    if (!ms)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0) {
        free(ms);
        return rc;
    }
    struct camp k;
    rc = camp_load(&c, id, &k, err);
    if (rc < 0) {
        free(ms);
        return store_txn_end(s, &c, own, rc, err);
    }
    if (strcmp(k.state, "running") || k.plan_done) {
        *done = 1;
        camp_free(&k);
        free(ms);
        return store_txn_end(s, &c, own, 0, err);
    }
    struct seg_bind b;
    seg_bind_make(k.segment, &b);
    int n = segment_page(&c, &b, k.cursor, batch, ms, err);
    rc = n < 0 ? n : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        struct decision d;
        rc = decide(s, p, &k, &ms[i], now, &d, err);
        if (rc < 0)
            break;
        char lang[4];
        pick_language(&k, ms[i].language, lang);
        const json_t *t = json_object_get(k.templates, lang);
        const char *subj_t = json_string_value(json_object_get(t, "subject"));
        char *subj = render(subj_t ? subj_t : "", &ms[i]);
        char *body = render(json_string_value(json_object_get(t, "body")), &ms[i]);
        sqlite3_stmt *st = NULL;
        if (!subj || !body)
            rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
        if (rc == 0)
            rc = sql_get_st(&c, STORE_Q_CAMPAIGN_PLAN_INSERT, &st, err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, ms[i].id, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, k.channel, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, k.purpose, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 5, lang, -1, SQLITE_STATIC);
            /* a refused message keeps its reason, not a text naming the person */
            sqlite3_bind_text(st, 6, d.allowed ? subj : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 7, d.allowed ? body : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 8, d.allowed ? "queued" : "refused", -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 9, d.reason, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 10, d.rule, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 11, now);
            rc = sql_run_what(&c, st, "cannot plan the campaign's message", err);
        }
        free(subj);
        free(body);
    }
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        rc = sql_get_st(&c, STORE_Q_CAMPAIGN_PLAN_ADVANCE, &st, err);
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_text(st, 2, n > 0 ? ms[n - 1].id : k.cursor, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(st, 3, n < (int)batch);
            sqlite3_bind_int64(st, 4, now);
            rc = sql_run_what(&c, st, "cannot record the campaign's progress", err);
        }
    }
    for (int i = 0; i < n; i++)
        member_free(&ms[i]);
    free(ms);
    seg_bind_free(&b);
    camp_free(&k);
    rc = store_txn_end(s, &c, own, rc, err);
    if (rc == 0) {
        *done = n < (int)batch;
        if (planned)
            *planned = n;
    }
    return rc;
}

static void bump(json_t *o, const char *key, int64_t by)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + by));
}

int campaign_dry_run_step(struct store *s, const struct policy *p, int64_t id, int64_t now_ms,
                          char cursor[CAMPAIGN_CURSOR_BUF], json_t *acc, int *done,
                          struct op_error *err)
{
    *done = 0;
    int64_t now = store_txn_now(now_ms);
    struct member *ms = calloc(CAMPAIGN_BATCH, sizeof *ms);
    if (!ms)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    struct sql_cache c;
    int rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0) {
        free(ms);
        return rc;
    }
    struct camp k;
    rc = camp_load(&c, id, &k, err);
    if (rc < 0) {
        sql_cache_close(&c);
        free(ms);
        return rc;
    }
    static const char *const members[] = {"segment", "would_send", "refused", NULL};
    for (size_t i = 0; members[i]; i++)
        if (!json_object_get(acc, members[i]))
            json_object_set_new(acc, members[i], json_integer(0));
    if (!json_object_get(acc, "refused_by_reason"))
        json_object_set_new(acc, "refused_by_reason", json_object());
    if (!json_object_get(acc, "would_send_by_language"))
        json_object_set_new(acc, "would_send_by_language", json_object());
    json_t *by = json_object_get(acc, "refused_by_reason");
    json_t *langs = json_object_get(acc, "would_send_by_language");
    struct seg_bind b;
    seg_bind_make(k.segment, &b);
    int n = segment_page(&c, &b, cursor, CAMPAIGN_BATCH, ms, err);
    rc = n < 0 ? n : 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        struct decision d;
        rc = decide(s, p, &k, &ms[i], now, &d, err);
        if (rc < 0)
            break;
        bump(acc, "segment", 1);
        if (d.allowed) {
            char lang[4];
            bump(acc, "would_send", 1);
            bump(langs, pick_language(&k, ms[i].language, lang), 1);
        } else {
            bump(acc, "refused", 1);
            bump(by, d.reason, 1);
        }
    }
    if (rc == 0 && n > 0)
        snprintf(cursor, CAMPAIGN_CURSOR_BUF, "%s", ms[n - 1].id);
    if (rc == 0)
        *done = n < CAMPAIGN_BATCH;
    for (int i = 0; i < (n > 0 ? n : 0); i++)
        member_free(&ms[i]);
    seg_bind_free(&b);
    camp_free(&k);
    sql_cache_close(&c);
    free(ms);
    return rc;
}

int campaign_dry_run(struct store *s, const struct policy *p, int64_t id, int64_t now_ms,
                     json_t **out, struct op_error *err)
{
    char cursor[CAMPAIGN_CURSOR_BUF] = "";
    json_t *acc = json_object();
    int done = 0, rc = 0;
    while (rc == 0 && !done)
        rc = campaign_dry_run_step(s, p, id, now_ms, cursor, acc, &done, err);
    if (rc < 0) {
        json_decref(acc);
        return rc;
    }
    *out = acc;
    return 0;
}

static int run_clock(struct sql_cache *c, unsigned q, int64_t now, struct op_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_get_st(c, q, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        rc = sql_run_what(c, st, "cannot move the campaigns on", err);
    }
    return rc;
}

int campaign_tick(struct store *s, const struct policy *p, unsigned batch, int64_t now_ms,
                  int *busy, struct op_error *err)
{
    *busy = 0;
    int64_t now = store_txn_now(now_ms);
    struct sql_cache c;
    int own;
    int rc = store_txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    rc = run_clock(&c, STORE_Q_CAMPAIGN_START_DUE, now, err);
    if (rc == 0)
        rc = run_clock(&c, STORE_Q_CAMPAIGN_END_MESSAGES, now, err);
    if (rc == 0)
        rc = run_clock(&c, STORE_Q_CAMPAIGN_END_CAMPAIGNS, now, err);
    int64_t next = 0;
    if (rc == 0) {
        sqlite3_stmt *st = NULL;
        rc = sql_get_st(&c, STORE_Q_CAMPAIGN_NEXT_TO_PLAN, &st, err);
        if (rc == 0) {
            rc = sql_step(&c, STORE_Q_CAMPAIGN_NEXT_TO_PLAN, st, err);
            if (rc == 1) {
                next = sqlite3_column_int64(st, 0);
                sqlite3_reset(st);
                rc = 0;
            }
        }
    }
    rc = store_txn_end(s, &c, own, rc, err);
    if (rc == 0 && next) {
        int done = 0;
        int64_t n = 0;
        rc = campaign_plan_step(s, p, next, batch, now, &done, &n, err);
        *busy = rc == 0 && n > 0;
    }
    if (rc == 0) {
        rc = store_txn_begin(s, &c, &own, err);
        if (rc == 0)
            rc = store_txn_end(s, &c, own, run_clock(&c, STORE_Q_CAMPAIGN_FINISH, now, err), err);
    }
    return rc;
}
