/*
 * Base64 and hex, written once for both daemons. Decoding validates the
 * whole input before it writes a byte, so a refused input leaves the
 * caller's buffer as it was.
 */
#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_digits[] = "0123456789abcdef";

size_t codec_b64_len(size_t n, unsigned flags)
{
    if (flags & CODEC_B64_NOPAD)
        return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    return (n + 2) / 3 * 4;
}

ssize_t codec_b64_encode(const void *in, size_t n, unsigned flags, char *out, size_t cap)
{
    const unsigned char *p = in;
    const char *abc = (flags & CODEC_B64_URL) ? b64_url : b64_std;
    if (n > (SIZE_MAX - 4) / 4 * 3 || n > SSIZE_MAX / 4 * 3 - 3 ||
        codec_b64_len(n, flags) + 1 > cap)
        return -ENOBUFS;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = abc[v >> 6 & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i > 0) {
        uint32_t v = (uint32_t)p[i] << 16 | (n - i == 2 ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (n - i == 2)
            out[o++] = abc[v >> 6 & 63];
        if (!(flags & CODEC_B64_NOPAD)) {
            if (n - i == 1)
                out[o++] = '=';
            out[o++] = '=';
        }
    }
    out[o] = '\0';
    return (ssize_t)o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t codec_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                         const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    while (len > 0 && in[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        if (b64_value((unsigned char)in[i]) < 0) {
            *why = in[i] == '=' ? "padding ('=') is only allowed at the end"
                                : "it has a character outside the base64 alphabet";
            return -EINVAL;
        }
    }
    if (len % 4 == 1) {
        *why = "its length is not a whole number of bytes";
        return -EINVAL;
    }
    /* Leftover bits must be zero, so each byte string has one encoding. */
    int rest = (int)(len % 4 * 6 % 8);
    if (rest > 0 && (b64_value((unsigned char)in[len - 1]) & ((1 << rest) - 1)) != 0) {
        *why = "it is not canonical (bits set after its last byte)";
        return -EINVAL;
    }
    size_t n = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (n > cap || n > SSIZE_MAX) {
        *why = "it decodes to more bytes than allowed";
        return -ENOBUFS;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64_value((unsigned char)in[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (ssize_t)o;
}

ssize_t codec_hex_encode(const void *in, size_t n, char *out, size_t cap)
{
    const unsigned char *p = in;
    if (n > SSIZE_MAX / 2 - 1 || 2 * n + 1 > cap)
        return -ENOBUFS;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return (ssize_t)(2 * n);
}

static int hex_value(char c, unsigned flags)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F' && !(flags & CODEC_HEX_LOWER))
        return c - 'A' + 10;
    return -1;
}

int codec_hex_valid(const char *s, size_t len, unsigned flags)
{
    for (size_t i = 0; i < len; i++)
        if (hex_value(s[i], flags) < 0)
            return 0;
    return 1;
}

ssize_t codec_hex_decode(const char *in, size_t len, unsigned flags, unsigned char *out, size_t cap)
{
    if (len % 2 || !codec_hex_valid(in, len, flags))
        return -EINVAL;
    if (len / 2 > cap)
        return -ENOBUFS;
    for (size_t i = 0; i < len / 2; i++)
        out[i] =
            (unsigned char)(hex_value(in[2 * i], flags) << 4 | hex_value(in[2 * i + 1], flags));
    return (ssize_t)(len / 2);
}
