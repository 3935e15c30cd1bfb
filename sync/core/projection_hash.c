/*
 * The projection hash (projection_hash.h): SHA-256 of entity, state and
 * the record as sorted compact JSON without its version, or of the id for
 * a tombstone.
 */
#include "projection_hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

const char *projection_state_name(enum projection_state s)
{
    switch (s) {
    case PROJECTION_LIVE:
        return "live";
    case PROJECTION_DELETED:
        return "deleted";
    case PROJECTION_GONE:
        return "gone";
    }
    return "";
}

int projection_hash(const char *entity, enum projection_state state, const char *id,
                    const json_t *record, unsigned char out[PROJECTION_HASH_BYTES])
{
    const char *st = projection_state_name(state);
    if (!entity || !*st)
        return -EINVAL;
    char *text = NULL;
    const char *body;
    if (state == PROJECTION_GONE) {
        if (!id && record)
            id = json_string_value(json_object_get(record, "id"));
        if (!id)
            return -EINVAL;
        body = id;
    } else {
        if (!json_is_object(record))
            return -EINVAL;
        json_t *copy = json_copy((json_t *)record); /* shallow: members are shared */
        if (!copy)
            return -ENOMEM;
        json_object_del(copy, "version");
        text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(copy);
        if (!text)
            return -ENOMEM;
        body = text;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(c, entity, strlen(entity)) && EVP_DigestUpdate(c, "\n", 1) &&
             EVP_DigestUpdate(c, st, strlen(st)) && EVP_DigestUpdate(c, "\n", 1) &&
             EVP_DigestUpdate(c, body, strlen(body)) && EVP_DigestFinal_ex(c, out, &len);
    EVP_MD_CTX_free(c);
    free(text);
    return ok && len == PROJECTION_HASH_BYTES ? 0 : -EIO;
}
