/*
 * The projection hash and field digests; contract in projection_hash.h.
 */
#include "projection_hash.h"

#include "codec.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {"live", "deleted", "gone"};

const char *projection_state_name(enum projection_state s)
{
    if ((unsigned)s > PROJECTION_GONE)
        return "";
    return state_names[s];
}

static int update(EVP_MD_CTX *c, const void *p, size_t n)
{
    return EVP_DigestUpdate(c, p, n) == 1 ? 0 : -EIO;
}

int projection_hash(const char *entity, enum projection_state state, const char *id,
                    const json_t *record, unsigned char out[PROJECTION_HASH_BYTES])
{
    if (!entity || (unsigned)state > PROJECTION_GONE)
        return -EINVAL;
    char *text = NULL;
    if (state == PROJECTION_GONE) {
        if (!id && record)
            id = json_string_value(json_object_get(record, "id"));
        if (!id)
            return -EINVAL;
    } else {
        if (!json_is_object(record))
            return -EINVAL;
        json_t *copy = json_copy((json_t *)record); /* shallow: two members go */
        if (!copy)
            return -ENOMEM;
        json_object_del(copy, "version");
        json_object_del(copy, "updated_at");
        text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(copy);
        if (!text)
            return -ENOMEM;
    }
    const char *body = text ? text : id;
    const char *sn = state_names[state];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = 0;
    int rc = c ? 0 : -ENOMEM;
    if (rc == 0)
        rc = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
    if (rc == 0)
        rc = update(c, entity, strlen(entity));
    if (rc == 0)
        rc = update(c, "\n", 1);
    if (rc == 0)
        rc = update(c, sn, strlen(sn));
    if (rc == 0)
        rc = update(c, "\n", 1);
    if (rc == 0)
        rc = update(c, body, strlen(body));
    if (rc == 0)
        rc = EVP_DigestFinal_ex(c, out, &n) == 1 && n == PROJECTION_HASH_BYTES ? 0 : -EIO;
    EVP_MD_CTX_free(c);
    free(text);
    return rc;
}

json_t *projection_field_digests(const json_t *record)
{
    if (!json_is_object(record))
        return NULL;
    json_t *out = json_object();
    /* one context for the record's fields, and the hex by codec: a
     * context and an snprintf a byte per field were half the digests'
     * cost, which is on every cut of a round of updates */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c) {
        json_decref(out);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)record, k, v)
    {
        if (!out)
            break;
        if (!strcmp(k, "id") || !strcmp(k, "version"))
            continue;
        char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        unsigned char md[32];
        unsigned int n = 0;
        int ok = t && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(c, k, strlen(k) + 1) == 1 &&
                 EVP_DigestUpdate(c, t, strlen(t)) == 1 && EVP_DigestFinal_ex(c, md, &n) == 1;
        free(t);
        char hex[17];
        ok = ok && codec_hex_encode(md, 8, hex, sizeof hex) == 16;
        if (!ok || json_object_set_new(out, k, json_string(hex)) < 0) {
            json_decref(out);
            out = NULL;
        }
    }
    EVP_MD_CTX_free(c);
    return out;
}
