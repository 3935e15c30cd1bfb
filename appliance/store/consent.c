/*
 * Consent ledger, double opt-in tokens and the suppression list (see
 * consent.h and docs/CONSENT.md). The permission to send is derived here
 * and nowhere else: consent_check reads the ledger, the suppression list
 * and the region policy each time, so a withdrawal committed a moment ago
 * decides the very next check. Records change only through the store;
 * the token and suppression tables change in the same transaction.
 */
#include "consent.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "codec.h"
#include "entity.h"
#include "hlc.h"
#include "phone.h"
#include "region.h"
#include "timefmt.h"
#include "sql.h"
#include "store_queries.h"

#define PURPOSE_MAX 100
#define EVIDENCE_MAX 4096 /* bytes of JSON; evidence is a receipt, not a document */
#define ADDRESS_MAX 320

static int64_t clock_ms(int64_t now_ms)
{
    return now_ms ? now_ms : (int64_t)hlc_wall_ms(NULL);
}

/* "2026-11-24T10:00:00.000Z": one format for every time this module
 * writes, so the ledger's times compare as strings. */
static void iso_ms(int64_t ms, char out[32])
{
    if (timefmt_iso_ms(ms, out, 32) < 0)
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
}

static int sha256_hex(const char *data, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    (void)codec_hex_encode(md, 32, out, 65);
    return 0;
}

/* ---- the node key ---------------------------------------------------------- */

/* The key of the suppression list's HMAC: the node's pseudonym secret,
 * which never leaves the node, so the list cannot be reversed by hashing
 * a directory of addresses elsewhere. */
static int node_key(struct store *s, unsigned char key[32], struct op_error *err)
{
    return store_pseudonym_key(s, key, err);
}

/* ---- addresses ------------------------------------------------------------- */

enum addr_kind { ADDR_NONE, ADDR_EMAIL, ADDR_PHONE };

static enum addr_kind channel_addr(const char *channel)
{
    if (!strcmp(channel, "email"))
        return ADDR_EMAIL;
    if (!strcmp(channel, "sms") || !strcmp(channel, "call") || !strcmp(channel, "messaging_app"))
        return ADDR_PHONE;
    return ADDR_NONE;
}

/* The normalized address for the channel in out; 0 (none), 1 (written).
 * `legacy` asks for a phone's key as Outpost up to 0.1.0 made it
 * (phone_legacy_e164): entries hashed then still stand, so lookups and
 * lifts try that key too when it differs. */
static int normalize(struct store *s, enum addr_kind k, const char *address, int legacy, char *out,
                     size_t cap)
{
    if (!address || k == ADDR_NONE)
        return 0;
    while (isspace((unsigned char)*address))
        address++;
    size_t n = strlen(address);
    while (n && isspace((unsigned char)address[n - 1]))
        n--;
    if (!n || n >= cap || n > ADDRESS_MAX)
        return 0;
    if (k == ADDR_PHONE) {
        char e164[PHONE_E164_MAX], tmp[ADDRESS_MAX + 1];
        memcpy(tmp, address, n);
        tmp[n] = '\0';
        const char *region = store_region(s);
        const struct region_info *r = region ? region_find(region) : NULL;
        if ((legacy ? phone_legacy_e164(tmp, r, e164) : phone_to_e164(tmp, r, e164)) == 0) {
            snprintf(out, cap, "%s", e164);
            return 1;
        }
        /* Not normalizable: the trimmed text still blocks an exact repeat. */
    }
    for (size_t i = 0; i < n; i++)
        out[i] = k == ADDR_EMAIL ? (char)tolower((unsigned char)address[i]) : address[i];
    out[n] = '\0';
    return 1;
}

/* The keyed hash of a normalized address in out. */
static int hash_norm(struct store *s, const char *norm, char out[65], struct op_error *err)
{
    unsigned char key[32], md[32];
    unsigned int mdlen = 0;
    int rc = node_key(s, key, err);
    if (rc < 0)
        return rc;
    int ok = HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)norm, strlen(norm), md,
                  &mdlen) != NULL;
    memset(key, 0, sizeof key);
    if (!ok || mdlen != 32)
        return op_error_set(err, -EIO, NULL, "cannot compute the suppression hash");
    (void)codec_hex_encode(md, 32, out, 65);
    return 0;
}

/* The keyed hash of the address for a channel in out; 0 none, 1 made.
 * With `legacy` (NULL: not wanted) also the hash of the address's former
 * phone key, or "" when that is the same key. */
static int address_hash2(struct store *s, const char *channel, const char *address, char out[65],
                         char legacy[65], struct op_error *err)
{
    char norm[ADDRESS_MAX + 1], old[ADDRESS_MAX + 1];
    if (legacy)
        legacy[0] = '\0';
    if (!normalize(s, channel_addr(channel), address, 0, norm, sizeof norm))
        return 0;
    int rc = hash_norm(s, norm, out, err);
    if (rc == 0 && legacy && normalize(s, channel_addr(channel), address, 1, old, sizeof old) &&
        strcmp(old, norm))
        rc = hash_norm(s, old, legacy, err);
    return rc < 0 ? rc : 1;
}

static int address_hash(struct store *s, const char *channel, const char *address, char out[65],
                        struct op_error *err)
{
    return address_hash2(s, channel, address, out, NULL, err);
}

static const char *contact_address(json_t *contact, const char *channel)
{
    switch (channel_addr(channel)) {
    case ADDR_EMAIL:
        return json_string_value(json_object_get(contact, "email"));
    case ADDR_PHONE:
        return json_string_value(json_object_get(contact, "phone"));
    default:
        return NULL;
    }
}

/* Suppression-list query id with its first two parameters bound: the
 * address's keyed hash and the channel (both kept by the caller until the
 * step). 0 with *st, or a negative errno. */
static int suppression_stmt(struct sql_cache *c, unsigned id, const char *hash, const char *channel,
                            sqlite3_stmt **st, struct op_error *err)
{
    int rc = sql_get_st(c, id, st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(*st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(*st, 2, channel, -1, SQLITE_STATIC);
    return 0;
}

static int suppress_hash(struct sql_cache *c, const char *hash, const char *channel,
                         const char *purpose, const char *reason, int64_t now, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = suppression_stmt(c, STORE_Q_CONSENT_SUPPRESSION_ADD, hash, channel, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 3, purpose ? purpose : "*", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_text(st, 5, reason && *reason ? reason : "withdrawn", -1, SQLITE_STATIC);
    return sql_run_what(c, st, "cannot add to the suppression list", err);
}

/* The earliest suppression entry for hash+channel covering purpose (NULL:
 * any); *found 0/1, created_ms and reason filled when found. */
static int find_suppression(struct sql_cache *c, const char *hash, const char *channel,
                            const char *purpose, int *found, int64_t *created_ms, char *reason,
                            size_t rcap, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = suppression_stmt(c, STORE_Q_CONSENT_SUPPRESSION_FIND, hash, channel, &st, err);
    if (rc < 0)
        return rc;
    if (purpose)
        sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) {
        if (created_ms)
            *created_ms = sqlite3_column_int64(st, 0);
        if (reason)
            snprintf(reason, rcap, "%s", (const char *)sqlite3_column_text(st, 1));
        rc = SQLITE_DONE;
    }
    if (rc != SQLITE_DONE)
        rc = sql_fail(c->db, rc, "cannot read the suppression list", err);
    else
        rc = 0;
    sqlite3_reset(st);
    return rc;
}

int consent_suppress(struct store *s, const char *channel, const char *address, const char *reason,
                     struct op_error *err)
{
    if (!channel)
        return op_error_set(err, -EINVAL, "channel", "channel: required");
    char h[65];
    int rc = address_hash(s, channel, address, h, err);
    if (rc <= 0)
        return rc;
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    rc = suppress_hash(&c, h, channel, "*", reason ? reason : "erased", clock_ms(0), err);
    sql_cache_close(&c);
    return rc;
}

int consent_is_suppressed(struct store *s, const char *channel, const char *purpose,
                          const char *address, int *suppressed, struct op_error *err)
{
    if (!channel)
        return op_error_set(err, -EINVAL, "channel", "channel: required");
    char h[65], was[65];
    int rc = address_hash2(s, channel, address, h, was, err);
    if (rc < 0)
        return rc;
    int found = 0;
    if (rc > 0) {
        struct sql_cache c;
        rc = store_queries_bind(s, &c, &store_queries, err);
        if (rc < 0)
            return rc;
        rc = find_suppression(&c, h, channel, purpose, &found, NULL, NULL, 0, err);
        if (rc == 0 && !found && was[0])
            rc = find_suppression(&c, was, channel, purpose, &found, NULL, NULL, 0, err);
        sql_cache_close(&c);
        if (rc < 0)
            return rc;
    }
    *suppressed = found;
    return 0;
}

/* ---- transactions ---------------------------------------------------------- */

/* Binds c to the store's connection and begins a transaction, unless the
 * caller has one open (*own = 0). On failure c is closed. */
static int txn_begin(struct store *s, struct sql_cache *c, int *own, struct op_error *err)
{
    int rc = store_queries_bind(s, c, &store_queries, err);
    if (rc < 0)
        return rc;
    *own = sqlite3_get_autocommit(c->db) != 0;
    rc = *own ? store_begin(s, err) : 0;
    if (rc < 0)
        sql_cache_close(c);
    return rc;
}

static int txn_end(struct store *s, int own, int rc, struct op_error *err)
{
    if (!own)
        return rc;
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    return store_commit(s, err);
}

/* ---- arguments -------------------------------------------------------------- */

static int check_enum(const char *field, const char *value, struct op_error *err)
{
    const struct field_def *f = entity_field(&entity_consent, field);
    if (!value || !*value)
        return op_error_set(err, -EINVAL, field, "%s: required", field);
    for (size_t i = 0; f && f->values && f->values[i]; i++)
        if (!strcmp(f->values[i], value))
            return 0;
    char list[200] = "";
    size_t used = 0;
    for (size_t i = 0; f && f->values && f->values[i]; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", f->values[i]);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    return op_error_set(err, -EINVAL, field, "%s: unknown value '%.40s' (one of: %s)", field, value,
                        list);
}

static int check_common(const char *contact_id, const char *channel, const char *purpose,
                        const char **kind, struct op_error *err)
{
    if (!contact_id || !*contact_id)
        return op_error_set(err, -EINVAL, "contact_id", "contact_id: required");
    if (strlen(contact_id) >= 40)
        return op_error_set(err, -EINVAL, "contact_id", "contact_id: not a record id");
    int rc = check_enum("channel", channel, err);
    if (rc < 0)
        return rc;
    if (!purpose || !*purpose)
        return op_error_set(err, -EINVAL, "purpose", "purpose: required (e.g. newsletter)");
    size_t n = strlen(purpose);
    if (n > PURPOSE_MAX)
        return op_error_set(err, -EINVAL, "purpose", "purpose: longer than %d bytes", PURPOSE_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)purpose[i] < 0x20 || purpose[i] == 0x7f)
            return op_error_set(err, -EINVAL, "purpose", "purpose: control character at byte %zu",
                                i + 1);
    if (!*kind)
        *kind = "marketing";
    return check_enum("kind", *kind, err);
}

static int get_contact(struct store *s, const char *id, json_t **out, struct op_error *err)
{
    int rc = store_get(s, &entity_contact, id, 0, out, err);
    if (rc == -ENOENT)
        return op_error_set(err, -ENOENT, "contact_id", "no contact %s (or it was deleted)", id);
    return rc;
}

static const char *mode_words(enum policy_consent_mode m)
{
    switch (m) {
    case POLICY_CONSENT_DOUBLE_OPT_IN:
        return "double opt-in";
    case POLICY_CONSENT_SINGLE_OPT_IN:
        return "single opt-in";
    default:
        return "opt-out";
    }
}

/* ---- record ----------------------------------------------------------------- */

static int set_default(json_t *ev, const char *key, const char *value)
{
    if (!value || json_object_get(ev, key))
        return 0;
    return json_object_set_new(ev, key, json_string(value)) ? -ENOMEM : 0;
}

static int make_evidence(const struct consent_request *req, json_t **out, struct op_error *err)
{
    json_t *ev;
    if (req->evidence && !json_is_null(req->evidence)) {
        if (!json_is_object(req->evidence))
            return op_error_set(err, -EINVAL, "evidence", "evidence: must be a JSON object");
        ev = json_deep_copy(req->evidence);
    } else {
        ev = json_object();
    }
    if (!ev)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (set_default(ev, "source", req->source) < 0 ||
        set_default(ev, "text_version", req->text_version) < 0 ||
        set_default(ev, "ip", req->ip) < 0) {
        json_decref(ev);
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    }
    char *dump = json_dumps(ev, JSON_COMPACT);
    size_t n = dump ? strlen(dump) : 0;
    free(dump);
    if (n > EVIDENCE_MAX) {
        json_decref(ev);
        return op_error_set(err, -EINVAL, "evidence", "evidence: larger than %d bytes of JSON",
                            EVIDENCE_MAX);
    }
    *out = ev;
    return 0;
}

static int make_token(char token[CONSENT_TOKEN_BUF], char hash[65], struct op_error *err)
{
    unsigned char raw[CONSENT_TOKEN_BYTES];
    int rc;
    /* Redrawn when it would start with '-', so that it can never be taken
     * for an option when pasted into `outpost consent confirm` (1 in 64;
     * the token keeps over 255 bits). */
    do {
        rc = auth_random(raw, sizeof raw);
        if (rc < 0)
            return op_error_set(err, rc, NULL, "no randomness for the confirmation token");
        rc = codec_b64_encode(raw, sizeof raw, CODEC_B64_URL | CODEC_B64_NOPAD, token,
                              CONSENT_TOKEN_BUF);
        memset(raw, 0, sizeof raw);
        if (rc < 0)
            return op_error_set(err, rc, NULL, "cannot encode the confirmation token");
    } while (token[0] == '-');
    return sha256_hex(token, strlen(token), hash) < 0
               ? op_error_set(err, -EIO, NULL, "cannot hash the confirmation token")
               : 0;
}

int consent_record(struct store *s, const struct policy *p, const struct consent_request *req,
                   int64_t now_ms, json_t **out, char token[CONSENT_TOKEN_BUF],
                   struct op_error *err)
{
    const char *kind = req->kind;
    int rc = check_common(req->contact_id, req->channel, req->purpose, &kind, err);
    if (rc < 0)
        return rc;
    rc = check_enum("method", req->method, err);
    if (rc < 0)
        return rc;
    int marketing = !strcmp(kind, "marketing");
    const struct policy_consent_rule *rule = NULL;
    if (marketing) {
        if (!p)
            return op_error_set(err, -EINVAL, NULL,
                                "no region policy is loaded, so no marketing consent can be "
                                "recorded");
        rule = policy_consent_for(p, req->channel);
        if (!rule)
            return op_error_set(err, -EINVAL, "channel",
                                "channel: %s has no consent rule for %s, so nothing may be sent "
                                "there for marketing and no consent is recorded",
                                p->region, req->channel);
    }
    json_t *ev = NULL;
    rc = make_evidence(req, &ev, err);
    if (rc < 0)
        return rc;
    if (rule && rule->mode == POLICY_CONSENT_SINGLE_OPT_IN) {
        const char *src = json_string_value(json_object_get(ev, "source"));
        if (!src || !*src) {
            json_decref(ev);
            return op_error_set(err, -EINVAL, "evidence.source",
                                "evidence.source: %s %s is single opt-in (%s): say where the "
                                "consent was given (a form, a signed sheet, a call)",
                                p->region, req->channel, rule->basis);
        }
    }
    int doi = rule && rule->mode == POLICY_CONSENT_DOUBLE_OPT_IN;
    int64_t now = clock_ms(now_ms);
    char now_iso[32], tok[CONSENT_TOKEN_BUF] = "", hash[65] = "";
    iso_ms(now, now_iso);
    if (doi) {
        rc = make_token(tok, hash, err);
        if (rc < 0) {
            json_decref(ev);
            return rc;
        }
    }
    json_t *fields = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "contact_id", req->contact_id, "channel",
        req->channel, "purpose", req->purpose, "kind", kind, "method", req->method, "status",
        doi ? "pending" : "granted", "evidence", ev, "requested_at", now_iso);
    if (!fields)
        return op_error_set(err, -ENOMEM, NULL, "out of memory");
    if (!doi)
        json_object_set_new(fields, "confirmed_at", json_string(now_iso));

    int own;
    json_t *contact = NULL, *rec = NULL;
    struct sql_cache c;
    rc = txn_begin(s, &c, &own, err);
    if (rc < 0) {
        json_decref(fields);
        return rc;
    }
    rc = get_contact(s, req->contact_id, &contact, err);
    json_decref(contact);
    if (rc == 0)
        rc = store_create(s, &entity_consent, fields, 0, &rec, err);
    if (rc == 0 && doi) {
        sqlite3_stmt *st;
        rc = sql_get_st(&c, STORE_Q_CONSENT_TOKEN_INSERT, &st, err);
        if (rc == 0) {
            unsigned ttl = rule->token_ttl_hours ? rule->token_ttl_hours : CONSENT_TTL_DEFAULT;
            sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, json_string_value(json_object_get(rec, "id")), -1,
                              SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 3, now);
            sqlite3_bind_int64(st, 4, now + (int64_t)ttl * 3600000);
            rc = sql_run_what(&c, st, "cannot store the confirmation token", err);
        }
    }
    rc = txn_end(s, own, rc, err);
    sql_cache_close(&c);
    json_decref(fields);
    if (rc < 0) {
        json_decref(rec);
        memset(tok, 0, sizeof tok);
        return rc;
    }
    if (token)
        snprintf(token, CONSENT_TOKEN_BUF, "%s", tok);
    memset(tok, 0, sizeof tok);
    if (out)
        *out = rec;
    else
        json_decref(rec);
    return 0;
}

/* ---- confirm ----------------------------------------------------------------- */

static void when_text(int64_t ms, char out[32])
{
    iso_ms(ms, out);
}

int consent_confirm(struct store *s, const char *token, const char *ip, int64_t now_ms,
                    char consent_id[40], struct op_error *err)
{
    size_t tlen = token ? strlen(token) : 0;
    if (!tlen || tlen > CONSENT_TOKEN_MAX)
        return op_error_set(err, -ENOENT, "token",
                            "unknown confirmation token: check that the whole link was copied");
    char hash[65];
    if (sha256_hex(token, tlen, hash) < 0)
        return op_error_set(err, -EIO, NULL, "cannot hash the confirmation token");
    int64_t now = clock_ms(now_ms);
    struct sql_cache c;
    int own;
    int rc = txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc = sql_get_st(&c, STORE_Q_CONSENT_TOKEN_FIND, &st, err);
    char cid[40] = "";
    int64_t expires = 0, used = 0;
    int found = 0;
    if (st) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            found = 1;
            snprintf(cid, sizeof cid, "%s", (const char *)sqlite3_column_text(st, 0));
            expires = sqlite3_column_int64(st, 1);
            used = sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 2);
        } else if (src != SQLITE_DONE)
            rc = sql_fail(c.db, src, "cannot read the confirmation tokens", err);
        sqlite3_reset(st);
    }
    char w[32];
    if (rc == 0 && !found)
        rc = op_error_set(err, -ENOENT, "token",
                          "unknown confirmation token: check that the whole link was copied");
    else if (rc == 0 && used) {
        when_text(used, w);
        rc =
            op_error_set(err, -EALREADY, "token",
                         "this confirmation link was already used (%s); the consent is on file", w);
    } else if (rc == 0 && expires <= now) {
        when_text(expires, w);
        rc = op_error_set(err, -ETIME, "token",
                          "this confirmation link expired (%s); ask for a new one", w);
    }
    json_t *rec = NULL, *contact = NULL, *upd = NULL;
    if (rc == 0) {
        rc = store_get(s, &entity_consent, cid, 0, &rec, err);
        if (rc == -ENOENT ||
            (rc == 0 && strcmp(json_string_value(json_object_get(rec, "status")), "pending")))
            rc = op_error_set(err, -ECANCELED, "token",
                              "this confirmation request was withdrawn and cannot be confirmed");
    }
    const char *contact_id = rec ? json_string_value(json_object_get(rec, "contact_id")) : NULL;
    if (rc == 0) {
        rc = store_get(s, &entity_contact, contact_id, 0, &contact, err);
        if (rc == -ENOENT)
            rc = op_error_set(err, -ECANCELED, "token",
                              "the contact of this confirmation request was deleted");
    }
    if (rc == 0) {
        char now_iso[32];
        iso_ms(now, now_iso);
        json_t *ev = json_deep_copy(json_object_get(rec, "evidence"));
        if (!json_is_object(ev)) {
            json_decref(ev);
            ev = json_object();
        }
        json_object_set_new(ev, "confirmed_via", json_string("token"));
        if (ip && *ip)
            json_object_set_new(ev, "confirmed_ip", json_string(ip));
        json_t *chg = json_pack("{s:s, s:s, s:o}", "status", "granted", "confirmed_at", now_iso,
                                "evidence", ev);
        rc = chg ? store_update(s, &entity_consent, cid,
                                json_integer_value(json_object_get(rec, "version")), chg, 0, &upd,
                                err)
                 : op_error_set(err, -ENOMEM, NULL, "out of memory");
        json_decref(chg);
        json_decref(upd);
    }
    if (rc == 0 && (rc = sql_get_st(&c, STORE_Q_CONSENT_TOKEN_USE, &st, err)) == 0) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        rc = sql_run_what(&c, st, "cannot mark the token used", err);
    }
    if (rc == 0) {
        /* The contact asked again, in person: an earlier unsubscribe of this
         * address from this channel no longer stands for this purpose. */
        const char *channel = json_string_value(json_object_get(rec, "channel"));
        char h[2][65];
        int hr = address_hash2(s, channel, contact_address(contact, channel), h[0], h[1], err);
        if (hr < 0)
            rc = hr;
        for (int i = 0; hr > 0 && rc == 0 && i < 2 && h[i][0]; i++) {
            rc = suppression_stmt(&c, STORE_Q_CONSENT_SUPPRESSION_LIFT, h[i], channel, &st, err);
            if (rc < 0)
                break;
            sqlite3_bind_text(st, 3, json_string_value(json_object_get(rec, "purpose")), -1,
                              SQLITE_STATIC);
            rc = sql_run_what(&c, st, "cannot update the suppression list", err);
        }
    }
    json_decref(contact);
    json_decref(rec);
    rc = txn_end(s, own, rc, err);
    sql_cache_close(&c);
    if (rc == 0 && consent_id)
        snprintf(consent_id, 40, "%s", cid);
    return rc;
}

/* ---- withdraw ------------------------------------------------------------------ */

struct open_rec {
    char id[40];
    int64_t version;
};

int consent_withdraw(struct store *s, const char *contact_id, const char *channel,
                     const char *purpose, const char *kind, const char *reason, int64_t now_ms,
                     int *count, struct op_error *err)
{
    int rc = check_common(contact_id, channel, purpose, &kind, err);
    if (rc < 0)
        return rc;
    if (reason && strlen(reason) > 200)
        return op_error_set(err, -EINVAL, "reason", "reason: longer than 200 bytes");
    int64_t now = clock_ms(now_ms);
    char now_iso[32];
    iso_ms(now, now_iso);
    struct sql_cache c;
    int own, n = 0;
    rc = txn_begin(s, &c, &own, err);
    if (rc < 0)
        return rc;
    json_t *contact = NULL;
    rc = get_contact(s, contact_id, &contact, err);
    struct open_rec *recs = NULL;
    size_t nrecs = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = sql_get_st(&c, STORE_Q_CONSENT_OPEN_RECORDS, &st, err);
    if (st) {
        sqlite3_bind_text(st, 1, contact_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
        int src;
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            if (nrecs == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct open_rec *nr = realloc(recs, ncap * sizeof *nr);
                if (!nr) {
                    rc = op_error_set(err, -ENOMEM, NULL, "out of memory");
                    break;
                }
                recs = nr;
                cap = ncap;
            }
            snprintf(recs[nrecs].id, sizeof recs[nrecs].id, "%s",
                     (const char *)sqlite3_column_text(st, 0));
            recs[nrecs].version = sqlite3_column_int64(st, 1);
            nrecs++;
        }
        if (rc == 0 && src != SQLITE_DONE)
            rc = sql_fail(c.db, src, "cannot read the consent ledger", err);
        sqlite3_reset(st);
    }
    for (size_t i = 0; rc == 0 && i < nrecs; i++) {
        json_t *chg = json_pack("{s:s, s:s}", "status", "withdrawn", "withdrawn_at", now_iso);
        rc = chg ? store_update(s, &entity_consent, recs[i].id, recs[i].version, chg, 0, NULL, err)
                 : op_error_set(err, -ENOMEM, NULL, "out of memory");
        json_decref(chg);
        n++;
    }
    free(recs);
    if (rc == 0 && nrecs == 0) {
        /* Nothing to withdraw: the objection itself goes on file. */
        json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:s}", "contact_id",
                              contact_id, "channel", channel, "purpose", purpose, "kind", kind,
                              "method", "opt_out", "status", "withdrawn", "evidence", "source",
                              reason && *reason ? reason : "withdrawal", "requested_at", now_iso,
                              "withdrawn_at", now_iso);
        rc = f ? store_create(s, &entity_consent, f, 0, NULL, err)
               : op_error_set(err, -ENOMEM, NULL, "out of memory");
        json_decref(f);
        n = 1;
    }
    if (rc == 0 && !strcmp(kind, "marketing")) {
        char h[65];
        int hr = address_hash(s, channel, contact_address(contact, channel), h, err);
        if (hr < 0)
            rc = hr;
        else if (hr > 0)
            rc = suppress_hash(&c, h, channel, purpose, "withdrawn", now, err);
    }
    json_decref(contact);
    rc = txn_end(s, own, rc, err);
    sql_cache_close(&c);
    if (rc == 0 && count)
        *count = n;
    return rc;
}

/* ---- check ---------------------------------------------------------------------- */

struct ledger_pick {
    char id[40];
    char status[16];
    char at[40]; /* the decisive time */
    char expires[40];
    char source[80];
    int confirmed_by_token;
    char pending_id[40];
    char pending_at[40];
};

static void copy_col(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* The latest decisive record (granted, denied, withdrawn, by the time of
 * the event that decided it; ids break ties) and the latest pending one. */
static int pick(struct sql_cache *c, const char *contact_id, const char *channel,
                const char *purpose, const char *kind, struct ledger_pick *lp, struct op_error *err)
{
    sqlite3_stmt *st;
    int rc = sql_get_st(c, STORE_Q_CONSENT_LEDGER, &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, contact_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kind, -1, SQLITE_STATIC);
    memset(lp, 0, sizeof *lp);
    while ((rc = sql_step_what(c, st, "cannot read the consent ledger", err)) == 1) {
        const char *status = (const char *)sqlite3_column_text(st, 1);
        if (!status)
            continue;
        if (!strcmp(status, "pending")) {
            copy_col(st, 0, lp->pending_id, sizeof lp->pending_id);
            copy_col(st, 2, lp->pending_at, sizeof lp->pending_at);
            continue;
        }
        copy_col(st, 0, lp->id, sizeof lp->id);
        copy_col(st, 1, lp->status, sizeof lp->status);
        copy_col(st, 2, lp->at, sizeof lp->at);
        copy_col(st, 3, lp->expires, sizeof lp->expires);
        copy_col(st, 4, lp->source, sizeof lp->source);
        lp->confirmed_by_token = sqlite3_column_int(st, 5);
    }
    return rc;
}

static void decide(struct consent_decision *d, int allowed, enum consent_state st, const char *id,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void decide(struct consent_decision *d, int allowed, enum consent_state st, const char *id,
                   const char *fmt, ...)
{
    d->allowed = allowed;
    d->state = st;
    snprintf(d->consent_id, sizeof d->consent_id, "%s", id ? id : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->rule, sizeof d->rule, fmt, ap);
    va_end(ap);
}

static void decide_marketing(const struct policy *p, const struct policy_consent_rule *rule,
                             const char *channel, const char *purpose, const struct ledger_pick *lp,
                             const char *now_iso, struct consent_decision *d)
{
    char pre[400];
    snprintf(pre, sizeof pre, "%s %s is %s (%s)", p->region, channel, mode_words(rule->mode),
             rule->basis);
    int pending_newer = lp->pending_id[0] && strcmp(lp->pending_at, lp->at) > 0;
    if (!strcmp(lp->status, "withdrawn") || !strcmp(lp->status, "denied")) {
        const char *what = lp->status[0] == 'w' ? "withdrawn" : "refused";
        if (pending_newer && rule->mode == POLICY_CONSENT_DOUBLE_OPT_IN)
            decide(d, 0, CONSENT_PENDING, lp->pending_id,
                   "%s: consent %s %s; a new request of %s is pending confirmation", pre, what,
                   lp->at, lp->pending_at);
        else
            decide(d, 0, lp->status[0] == 'w' ? CONSENT_WITHDRAWN : CONSENT_DENIED, lp->id,
                   "%s: consent for '%s' %s %s", pre, purpose, what, lp->at);
        return;
    }
    if (!strcmp(lp->status, "granted")) {
        if (lp->expires[0] && strcmp(lp->expires, now_iso) <= 0) {
            decide(d, 0, CONSENT_EXPIRED, lp->id, "%s: consent for '%s' expired %s", pre, purpose,
                   lp->expires);
            return;
        }
        if (rule->mode == POLICY_CONSENT_DOUBLE_OPT_IN && !lp->confirmed_by_token) {
            decide(d, 0, CONSENT_NONE, lp->id,
                   "%s: consent %s for '%s' was recorded without confirmation through a double "
                   "opt-in link",
                   pre, lp->id, purpose);
            return;
        }
        if (rule->mode == POLICY_CONSENT_DOUBLE_OPT_IN)
            decide(d, 1, CONSENT_GRANTED, lp->id, "%s: consent for '%s' confirmed %s", pre, purpose,
                   lp->at);
        else
            decide(d, 1, CONSENT_GRANTED, lp->id, "%s: consent for '%s' granted %s (source: %s)",
                   pre, purpose, lp->at, lp->source[0] ? lp->source : "none recorded");
        return;
    }
    if (rule->mode == POLICY_CONSENT_OPT_OUT) {
        decide(d, 1, CONSENT_NONE, NULL, "%s: no objection on file for '%s'", pre, purpose);
        return;
    }
    if (lp->pending_id[0] && rule->mode == POLICY_CONSENT_DOUBLE_OPT_IN) {
        decide(d, 0, CONSENT_PENDING, lp->pending_id,
               "%s: consent requested %s is pending confirmation", pre, lp->pending_at);
        return;
    }
    decide(d, 0, CONSENT_NONE, NULL, "%s: no consent on file for '%s'", pre, purpose);
}

int consent_check(struct store *s, const struct policy *p, const char *contact_id,
                  const char *channel, const char *purpose, const char *kind, int64_t now_ms,
                  struct consent_decision *out, struct op_error *err)
{
    int rc = check_common(contact_id, channel, purpose, &kind, err);
    if (rc < 0)
        return rc;
    struct sql_cache c;
    rc = store_queries_bind(s, &c, &store_queries, err);
    if (rc < 0)
        return rc;
    json_t *contact = NULL;
    struct consent_decision d;
    memset(&d, 0, sizeof d);
    rc = get_contact(s, contact_id, &contact, err);
    if (rc < 0)
        goto done;
    char now_iso[32];
    iso_ms(clock_ms(now_ms), now_iso);
    struct ledger_pick lp;
    if (strcmp(kind, "marketing")) {
        rc = pick(&c, contact_id, channel, purpose, kind, &lp, err);
        if (rc == 0 && (!strcmp(lp.status, "withdrawn") || !strcmp(lp.status, "denied")))
            decide(&d, 0, lp.status[0] == 'w' ? CONSENT_WITHDRAWN : CONSENT_DENIED, lp.id,
                   "transactional messages for '%s' on %s were %s %s", purpose, channel,
                   lp.status[0] == 'w' ? "withdrawn" : "refused", lp.at);
        else if (rc == 0)
            decide(&d, 1, CONSENT_NONE, NULL,
                   "transactional messages are not marketing: sent without consent unless "
                   "withdrawn (no withdrawal on file for '%s' on %s)",
                   purpose, channel);
        goto done;
    }
    const struct policy_consent_rule *rule = p ? policy_consent_for(p, channel) : NULL;
    if (!p) {
        decide(&d, 0, CONSENT_NONE, NULL,
               "no region policy is loaded: nothing may be sent for marketing");
        goto done;
    }
    if (!rule) {
        decide(&d, 0, CONSENT_NONE, NULL,
               "%s has no consent rule for %s: nothing may be sent there for marketing", p->region,
               channel);
        goto done;
    }
    char h[65], was[65];
    int hr = address_hash2(s, channel, contact_address(contact, channel), h, was, err);
    if (hr < 0) {
        rc = hr;
        goto done;
    }
    if (hr > 0) {
        int found = 0;
        int64_t since = 0;
        char reason[64] = "";
        rc = find_suppression(&c, h, channel, purpose, &found, &since, reason, sizeof reason, err);
        if (rc == 0 && !found && was[0])
            rc = find_suppression(&c, was, channel, purpose, &found, &since, reason, sizeof reason,
                                  err);
        if (rc < 0)
            goto done;
        if (found) {
            char w[32];
            iso_ms(since, w);
            decide(&d, 0, CONSENT_SUPPRESSED, NULL,
                   "%s %s: the address is on the suppression list since %s (%s)", p->region,
                   channel, w, reason);
            goto done;
        }
    }
    rc = pick(&c, contact_id, channel, purpose, kind, &lp, err);
    if (rc == 0)
        decide_marketing(p, rule, channel, purpose, &lp, now_iso, &d);
done:
    sql_cache_close(&c);
    json_decref(contact);
    if (rc == 0)
        *out = d;
    return rc;
}

/* ---- the confirmation message ------------------------------------------------------ */

/* The templates have exactly two slots, purpose then link, and nothing
 * else: no name, no offer, no sender's advertising. */
static const struct {
    const char *lang;
    const char *text;
} templates[] = {
    {"de", "Guten Tag,\n\n"
           "bitte bestätigen Sie, dass Sie Nachrichten zum Zweck \"%s\" erhalten möchten:\n\n"
           "%s\n\n"
           "Wenn Sie das nicht angefordert haben, ignorieren Sie diese Nachricht; ohne Ihre "
           "Bestätigung erhalten Sie nichts weiter.\n"},
    {"pt", "Olá,\n\n"
           "confirme que deseja receber mensagens para a finalidade \"%s\":\n\n"
           "%s\n\n"
           "Se não foi você quem pediu, ignore esta mensagem; sem a sua confirmação não "
           "enviaremos mais nada.\n"},
    {"fr",
     "Bonjour,\n\n"
     "veuillez confirmer que vous souhaitez recevoir des messages pour la finalité \"%s\" :\n\n"
     "%s\n\n"
     "Si vous ne l'avez pas demandé, ignorez ce message ; sans votre confirmation, vous ne "
     "recevrez rien d'autre.\n"},
    {"es", "Hola:\n\n"
           "confirme que desea recibir mensajes para la finalidad \"%s\":\n\n"
           "%s\n\n"
           "Si no lo ha solicitado usted, ignore este mensaje; sin su confirmación no recibirá "
           "nada más.\n"},
    {"ru", "Здравствуйте!\n\n"
           "Пожалуйста, подтвердите, что вы хотите получать сообщения с целью \"%s\":\n\n"
           "%s\n\n"
           "Если вы этого не запрашивали, не отвечайте на это сообщение; без вашего "
           "подтверждения вы больше ничего не получите.\n"},
    {"en", "Hello,\n\n"
           "please confirm that you want to receive messages for the purpose \"%s\":\n\n"
           "%s\n\n"
           "If you did not ask for this, ignore this message; without your confirmation you "
           "will receive nothing further.\n"},
};

static int has_control(const char *t)
{
    for (; *t; t++)
        if ((unsigned char)*t < 0x20 || *t == 0x7f)
            return 1;
    return 0;
}

int consent_confirmation_text(const struct policy *p, const char *lang, const char *purpose,
                              const char *link, char *out, size_t cap)
{
    if (!purpose || !link || !*link || has_control(purpose) || has_control(link))
        return -EINVAL;
    char primary[8] = "";
    const char *l = lang && *lang ? lang : (p ? p->language : "en");
    size_t n = strcspn(l, "-_");
    if (n < sizeof primary) {
        for (size_t i = 0; i < n; i++)
            primary[i] = (char)tolower((unsigned char)l[i]);
        primary[n] = '\0';
    }
    size_t pick_i = sizeof templates / sizeof templates[0] - 1;
    for (size_t i = 0; i < sizeof templates / sizeof templates[0]; i++)
        if (!strcmp(templates[i].lang, primary))
            pick_i = i;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    int w = snprintf(out, cap, templates[pick_i].text, purpose, link);
#pragma GCC diagnostic pop
    if (w < 0 || (size_t)w >= cap)
        return -ENOBUFS;
    return 0;
}

const char *consent_state_name(enum consent_state st)
{
    static const char *const names[] = {"none",      "pending", "granted",   "denied",
                                        "withdrawn", "expired", "suppressed"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown";
}
