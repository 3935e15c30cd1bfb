/*
 * Receipt and mailbox MACs (see sync_mac.h and docs/SYNC_PROTOCOL.md).
 * The text is fed to the HMAC in pieces, so a mailbox body of any length
 * is never copied; the newline separators and the version tag are the
 * only bytes this file adds, and a field that holds a newline is refused
 * so two different messages can never have the same text.
 */
#include "sync_mac.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

struct mac {
    EVP_MAC_CTX *ctx;
    int failed;
};

static int mac_start(struct mac *m, const unsigned char key[SYNC_MAC_KEY_BYTES])
{
    m->failed = 0;
    m->ctx = NULL;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!alg)
        return -EIO;
    m->ctx = EVP_MAC_CTX_new(alg);
    EVP_MAC_free(alg);
    if (!m->ctx)
        return -ENOMEM;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (!EVP_MAC_init(m->ctx, key, SYNC_MAC_KEY_BYTES, params)) {
        EVP_MAC_CTX_free(m->ctx);
        m->ctx = NULL;
        return -EIO;
    }
    return 0;
}

static void mac_put(struct mac *m, const void *data, size_t n)
{
    if (n > 0 && !EVP_MAC_update(m->ctx, data, n))
        m->failed = 1;
}

static void mac_str(struct mac *m, const char *s)
{
    mac_put(m, s, strlen(s));
}

static void mac_num(struct mac *m, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
    mac_put(m, buf, (size_t)n);
}

/* The MACed texts are lines: each value but the last ends with "\n". */
static void mac_str_line(struct mac *m, const char *s)
{
    mac_str(m, s);
    mac_str(m, "\n");
}

static void mac_num_line(struct mac *m, uint64_t v)
{
    mac_num(m, v);
    mac_str(m, "\n");
}

static int mac_finish(struct mac *m, char out[SYNC_MAC_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t len = 0;
    int ok = !m->failed && EVP_MAC_final(m->ctx, md, &len, sizeof md) && len == 32;
    EVP_MAC_CTX_free(m->ctx);
    m->ctx = NULL;
    if (!ok)
        return -EIO;
    (void)codec_hex_encode(md, 32, out, SYNC_MAC_HEX);
    return 0;
}

static int one_line(const char *s)
{
    return s && !strchr(s, '\n');
}

int sync_receipt_mac(const unsigned char key[SYNC_MAC_KEY_BYTES], const char *node,
                     uint64_t segment, const char *status, uint64_t to_urgent, uint64_t to_ordinary,
                     char out[SYNC_MAC_HEX])
{
    if (!one_line(node) || !one_line(status))
        return -EINVAL;
    struct mac m;
    int rc = mac_start(&m, key);
    if (rc < 0)
        return rc;
    mac_str_line(&m, "outpost-receipt-v1");
    mac_str_line(&m, node);
    mac_num_line(&m, segment);
    mac_str_line(&m, status);
    mac_num_line(&m, to_urgent);
    mac_num(&m, to_ordinary);
    return mac_finish(&m, out);
}

int sync_receipt_extras_mac(const unsigned char key[SYNC_MAC_KEY_BYTES], const char *node,
                            uint64_t segment, int patch, const json_t *needs_whole,
                            char out[SYNC_MAC_HEX])
{
    if (!one_line(node) || (needs_whole && !json_is_array(needs_whole)))
        return -EINVAL;
    size_t n = needs_whole ? json_array_size(needs_whole) : 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(needs_whole, i);
        if (!json_is_array(e) || json_array_size(e) != 2 ||
            !one_line(json_string_value(json_array_get(e, 0))) ||
            !one_line(json_string_value(json_array_get(e, 1))))
            return -EINVAL;
    }
    struct mac m;
    int rc = mac_start(&m, key);
    if (rc < 0)
        return rc;
    mac_str_line(&m, "outpost-receipt-extras-v1");
    mac_str_line(&m, node);
    mac_num_line(&m, segment);
    mac_num_line(&m, patch ? 1 : 0);
    mac_num(&m, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(needs_whole, i);
        mac_str(&m, "\n");
        mac_str_line(&m, json_string_value(json_array_get(e, 0)));
        mac_str(&m, json_string_value(json_array_get(e, 1)));
    }
    return mac_finish(&m, out);
}

int sync_mailbox_mac(const unsigned char key[SYNC_MAC_KEY_BYTES], const char *node, uint64_t seq,
                     const char *kind, const char *body, size_t body_len, char out[SYNC_MAC_HEX])
{
    if (!one_line(node) || !one_line(kind) || (!body && body_len > 0))
        return -EINVAL;
    struct mac m;
    int rc = mac_start(&m, key);
    if (rc < 0)
        return rc;
    mac_str_line(&m, "outpost-mailbox-v1");
    mac_str_line(&m, node);
    mac_num_line(&m, seq);
    mac_str_line(&m, kind);
    mac_put(&m, body, body_len);
    return mac_finish(&m, out);
}

/* 64 hex digits (either case) and a NUL to 32 bytes; -1 otherwise. */
static int decode(const char *h, unsigned char out[32])
{
    if (strnlen(h, 65) != 64 || codec_hex_decode(h, 64, 0, out, 32) != 32)
        return -1;
    return 0;
}

int sync_mac_equal(const char *a_hex, const char *b_hex)
{
    unsigned char a[32], b[32];
    if (!a_hex || !b_hex || decode(a_hex, a) != 0 || decode(b_hex, b) != 0)
        return 0;
    return CRYPTO_memcmp(a, b, sizeof a) == 0;
}
