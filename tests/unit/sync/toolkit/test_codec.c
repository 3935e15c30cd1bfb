/*
 * Tests for sync/toolkit/codec.c: the RFC 4648 section 10 vectors in both
 * alphabets with and without padding, strict decoding (characters
 * outside the alphabet, misplaced padding, impossible lengths,
 * non-canonical trailing bits), round trips of every byte value, and the
 * caps on every output.
 */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "testlib.h"

static ssize_t enc(const char *in, unsigned flags, char *out, size_t cap)
{
    return codec_b64_encode(in, strlen(in), flags, out, cap);
}

static ssize_t dec(const char *in, unsigned char *out, size_t cap, const char **why)
{
    return codec_b64_decode(in, strlen(in), out, cap, why);
}

static void rfc4648_vectors(void)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *padded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *bare[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char out[16];
        unsigned char raw[16];
        CHECK_EQ(enc(plain[i], 0, out, sizeof out), (ssize_t)strlen(padded[i]));
        CHECK_STR(out, padded[i]);
        CHECK_EQ(codec_b64_len(strlen(plain[i]), 0), strlen(padded[i]));
        CHECK_EQ(enc(plain[i], CODEC_B64_NOPAD, out, sizeof out), (ssize_t)strlen(bare[i]));
        CHECK_STR(out, bare[i]);
        CHECK_EQ(codec_b64_len(strlen(plain[i]), CODEC_B64_NOPAD), strlen(bare[i]));
        CHECK_EQ(dec(padded[i], raw, sizeof raw, NULL), (ssize_t)strlen(plain[i]));
        CHECK(memcmp(raw, plain[i], strlen(plain[i])) == 0);
        CHECK_EQ(dec(bare[i], raw, sizeof raw, NULL), (ssize_t)strlen(plain[i]));
        CHECK(memcmp(raw, plain[i], strlen(plain[i])) == 0);
    }
}

static void url_alphabet(void)
{
    char out[16];
    CHECK_EQ(codec_b64_encode("\xfb\xff", 2, CODEC_B64_URL | CODEC_B64_NOPAD, out, sizeof out), 3);
    CHECK_STR(out, "-_8");
    CHECK_EQ(codec_b64_encode("\xfb\xff", 2, 0, out, sizeof out), 4);
    CHECK_STR(out, "+/8=");
    CHECK_EQ(codec_b64_encode("\xfb\xff", 2, CODEC_B64_URL, out, sizeof out), 4);
    CHECK_STR(out, "-_8=");
    CHECK_EQ(codec_b64_encode("abc", 3, CODEC_B64_URL | CODEC_B64_NOPAD, out, sizeof out), 4);
    CHECK_STR(out, "YWJj");
}

static void strict_decoding(void)
{
    unsigned char raw[16];
    const char *why = "";
    CHECK_EQ(dec("Zm9v!", raw, sizeof raw, &why), -EINVAL);
    CHECK_STR(why, "it has a character outside the base64 alphabet");
    CHECK_EQ(dec("-_8", raw, sizeof raw, &why), -EINVAL); /* base64url is not standard */
    CHECK_EQ(dec("Zm 9v", raw, sizeof raw, &why), -EINVAL);
    CHECK_EQ(dec("Zg==Zg==", raw, sizeof raw, &why), -EINVAL);
    CHECK_STR(why, "padding ('=') is only allowed at the end");
    CHECK_EQ(dec("Zm9vY", raw, sizeof raw, &why), -EINVAL);
    CHECK_STR(why, "its length is not a whole number of bytes");
    CHECK_EQ(dec("Z", raw, sizeof raw, NULL), -EINVAL);
    /* "Zh" and "Zm9=" carry bits after the last byte: only "Zg" and "Zm8" are canonical */
    CHECK_EQ(dec("Zh==", raw, sizeof raw, &why), -EINVAL);
    CHECK_STR(why, "it is not canonical (bits set after its last byte)");
    CHECK_EQ(dec("Zh", raw, sizeof raw, NULL), -EINVAL);
    CHECK_EQ(dec("Zm9=", raw, sizeof raw, NULL), -EINVAL);
    CHECK_EQ(dec("Zm8=", raw, sizeof raw, NULL), 2);
    CHECK_EQ(dec("====", raw, sizeof raw, NULL), 0); /* only padding: empty */
    CHECK_EQ(codec_b64_decode("Zm9v", 0, raw, sizeof raw, NULL), 0);
}

static void b64_round_trip(void)
{
    unsigned char all[256], back[256];
    char text[400];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= sizeof all; n += 37) {
        ssize_t len = codec_b64_encode(all, n, 0, text, sizeof text);
        CHECK_EQ(len, (ssize_t)codec_b64_len(n, 0));
        CHECK_EQ(codec_b64_decode(text, (size_t)len, back, sizeof back, NULL), (ssize_t)n);
        CHECK(memcmp(all, back, n) == 0);
        len = codec_b64_encode(all, n, CODEC_B64_NOPAD, text, sizeof text);
        CHECK_EQ(codec_b64_decode(text, (size_t)len, back, sizeof back, NULL), (ssize_t)n);
        CHECK(memcmp(all, back, n) == 0);
    }
}

static void b64_caps(void)
{
    char out[8];
    unsigned char raw[4];
    memset(out, 'x', sizeof out);
    CHECK_EQ(enc("abcd", 0, out, 8), -ENOBUFS); /* "YWJjZA==" needs 9 with the NUL */
    CHECK_EQ(out[0], 'x');                      /* untouched */
    CHECK_EQ(enc("abcd", CODEC_B64_NOPAD, out, 7), 6);
    CHECK_STR(out, "YWJjZA");
    CHECK_EQ(enc("", 0, out, 0), -ENOBUFS);
    CHECK_EQ(enc("", 0, out, 1), 0);
    CHECK_EQ(enc("abcdefghijkl", CODEC_B64_URL | CODEC_B64_NOPAD, out, 8), -ENOBUFS);
    const char *why = "";
    CHECK_EQ(dec("Zm9vYg==", raw, 3, &why), -ENOBUFS);
    CHECK_STR(why, "it decodes to more bytes than allowed");
    CHECK_EQ(dec("Zm9vYg==", raw, 4, NULL), 4);
    CHECK_EQ(dec("Zm9vYg==", raw, 4, NULL), 4);
}

static void hex(void)
{
    char out[16];
    unsigned char raw[8];
    CHECK_EQ(codec_hex_encode("\x00\x01\xab\xff", 4, out, sizeof out), 8);
    CHECK_STR(out, "0001abff");
    CHECK_EQ(codec_hex_encode("", 0, out, 1), 0);
    CHECK_STR(out, "");
    CHECK_EQ(codec_hex_encode("\x00\x01\xab\xff", 4, out, 8), -ENOBUFS); /* the NUL */
    CHECK_EQ(codec_hex_encode("", 0, out, 0), -ENOBUFS);

    CHECK_EQ(codec_hex_decode("0001abff", 8, 0, raw, sizeof raw), 4);
    CHECK(memcmp(raw, "\x00\x01\xab\xff", 4) == 0);
    CHECK_EQ(codec_hex_decode("0001ABff", 8, 0, raw, sizeof raw), 4);
    CHECK(memcmp(raw, "\x00\x01\xab\xff", 4) == 0);
    CHECK_EQ(codec_hex_decode("0001ABff", 8, CODEC_HEX_LOWER, raw, sizeof raw), -EINVAL);
    CHECK_EQ(codec_hex_decode("abc", 3, 0, raw, sizeof raw), -EINVAL);
    CHECK_EQ(codec_hex_decode("zz", 2, 0, raw, sizeof raw), -EINVAL);
    CHECK_EQ(codec_hex_decode("0g", 2, 0, raw, sizeof raw), -EINVAL);
    CHECK_EQ(codec_hex_decode("a\0", 2, 0, raw, sizeof raw), -EINVAL);
    CHECK_EQ(codec_hex_decode("", 0, 0, raw, sizeof raw), 0);
    raw[0] = 0x55;
    CHECK_EQ(codec_hex_decode("00112233", 8, 0, raw, 3), -ENOBUFS);
    CHECK_EQ(raw[0], 0x55); /* untouched */

    CHECK(codec_hex_valid("0123456789abcdefABCDEF", 22, 0));
    CHECK(!codec_hex_valid("0123456789abcdefABCDEF", 22, CODEC_HEX_LOWER));
    CHECK(codec_hex_valid("0123456789abcdef", 16, CODEC_HEX_LOWER));
    CHECK(!codec_hex_valid("-", 1, 0));
    CHECK(codec_hex_valid("", 0, 0));

    unsigned char all[256], back[256];
    char text[513];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    CHECK_EQ(codec_hex_encode(all, sizeof all, text, sizeof text), 512);
    CHECK_EQ(codec_hex_decode(text, 512, CODEC_HEX_LOWER, back, sizeof back), 256);
    CHECK(memcmp(all, back, sizeof all) == 0);
}

int main(void)
{
    RUN(rfc4648_vectors);
    RUN(url_alphabet);
    RUN(strict_decoding);
    RUN(b64_round_trip);
    RUN(b64_caps);
    RUN(hex);
    return tl_report();
}
