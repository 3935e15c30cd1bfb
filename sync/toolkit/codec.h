/*
 * Byte-to-text codecs the node and HQ share: base64 (RFC 4648, standard
 * and URL-safe alphabets, with or without padding) and hexadecimal. The
 * invariant: output never overruns its cap (which counts the NUL), and
 * the decoders are strict, so each byte string has exactly one accepted
 * encoding and anything else is refused rather than guessed at.
 */
#ifndef OUTPOST_CODEC_H
#define OUTPOST_CODEC_H

#include <stddef.h>
#include <sys/types.h>

/* base64url alphabet ('-' and '_' for '+' and '/'), RFC 4648 section 5 */
#define CODEC_B64_URL 1u
/* no trailing '=' */
#define CODEC_B64_NOPAD 2u

/* Hex decoding: refuse upper-case digits. */
#define CODEC_HEX_LOWER 1u

/* The length of the base64 of n bytes under flags, without the NUL. */
size_t codec_b64_len(size_t n, unsigned flags);

/* Writes the base64 of in[0..n) and a NUL into out (cap bytes). Returns
 * the length written without the NUL, or -ENOBUFS (out untouched) when
 * codec_b64_len(n, flags) + 1 > cap. */
ssize_t codec_b64_encode(const void *in, size_t n, unsigned flags, char *out, size_t cap);

/* Strict decoding of standard-alphabet base64 in[0..len) into out (cap
 * bytes, no NUL added). Padding is optional: trailing '=' are ignored,
 * any '=' before them is refused. Refused with -EINVAL: a character
 * outside the alphabet, a length that is not a whole number of bytes, and
 * bits set after the last byte (a non-canonical encoding); -ENOBUFS when
 * the decoded bytes do not fit in cap. Returns the decoded length. When
 * why is not NULL, a refusal sets *why to a phrase saying what is wrong
 * ("it has a character outside the base64 alphabet"). */
ssize_t codec_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                         const char **why);

/* Writes the lower-case hex of in[0..n) and a NUL into out (cap bytes).
 * Returns 2 * n, or -ENOBUFS (out untouched) when 2 * n + 1 > cap. */
ssize_t codec_hex_encode(const void *in, size_t n, char *out, size_t cap);

/* 1 if s[0..len) is all hex digits (only lower-case with
 * CODEC_HEX_LOWER), 0 otherwise. An empty string is all hex digits. */
int codec_hex_valid(const char *s, size_t len, unsigned flags);

/* Decodes hex in[0..len) (either case, or only lower-case with
 * CODEC_HEX_LOWER) into out (cap bytes). Returns len / 2; -EINVAL for an
 * odd length or a character that is not such a digit; -ENOBUFS when
 * len / 2 > cap. out is written only on success. */
ssize_t codec_hex_decode(const char *in, size_t len, unsigned flags, unsigned char *out,
                         size_t cap);

#endif
