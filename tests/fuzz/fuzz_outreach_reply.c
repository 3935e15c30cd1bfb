/*
 * libFuzzer target for appliance/store/outreach_reply.c
 * (outreach_reply_parse), the reader of e-mail that an MTA pipes to
 * `outpost outreach reply`. Beyond "no crash, no leak, no overflow" it
 * checks the reader's promises: a refusal is -EINVAL, -EFBIG or -ENOENT
 * with a message; an accepted reply has 1 to OUTREACH_REPLY_REFS tokens of
 * 43 base64url characters, a Subject and a body that are NUL-terminated
 * UTF-8 within their bounds (the body without CR or control characters
 * but LF and tab), and an id naming a Message-ID or a SHA-256.
 *
 * The input is the whole message. Seeds in corpus/outreach_reply are
 * replies as mail programs write them; they name
 * <outreach-1.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde@b.example>.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "outreach_reply.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outreach_reply r;
    struct op_error err;
    op_error_clear(&err);
    int rc = outreach_reply_parse((const char *)data, size, &r, &err);
    if (rc < 0) {
        must(rc == -EINVAL || rc == -EFBIG || rc == -ENOENT, "an undocumented error code");
        must(err.msg[0] != '\0', "a refusal without a message");
        return 0;
    }
    must(rc == 0, "a positive return");
    must(r.ntokens >= 1 && r.ntokens <= OUTREACH_REPLY_REFS, "token count out of bounds");
    for (int i = 0; i < r.ntokens; i++) {
        must(strlen(r.tokens[i]) == 43, "a token that is not 43 characters");
        for (size_t k = 0; k < 43; k++)
            must((r.tokens[i][k] >= 'A' && r.tokens[i][k] <= 'Z') ||
                     (r.tokens[i][k] >= 'a' && r.tokens[i][k] <= 'z') ||
                     (r.tokens[i][k] >= '0' && r.tokens[i][k] <= '9') || r.tokens[i][k] == '-' ||
                     r.tokens[i][k] == '_',
                 "a token outside base64url");
    }
    size_t sl = strnlen(r.subject, sizeof r.subject);
    must(sl <= OUTREACH_REPLY_SUBJECT_MAX, "subject too long");
    must(utf8_bad_offset(r.subject, sl, UTF8_REFUSE_CONTROLS) < 0, "subject not UTF-8 text");
    size_t bl = strnlen(r.body, sizeof r.body);
    must(bl <= OUTREACH_REPLY_BODY_MAX, "body too long");
    must(utf8_bad_offset(r.body, bl, 0) < 0, "body not UTF-8");
    for (size_t i = 0; i < bl; i++)
        must((unsigned char)r.body[i] >= 0x20 || r.body[i] == '\n' || r.body[i] == '\t',
             "a control character in the body");
    must(!strncmp(r.id, "Message-ID ", 11) || !strncmp(r.id, "sha256 ", 7), "an id of no kind");
    return 0;
}
