/*
 * libFuzzer target for sync/core/range_digest.c, both ends of an
 * anti-entropy exchange (docs/SYNC_PROTOCOL.md, "Anti-entropy"). The first
 * byte picks the end; the rest is the body.
 *
 *   even: a node's request body to HQ's range_answer over a fixed set of
 *         300 records. Promises: 0 or -EINVAL (or -ENOMEM), nothing else;
 *         a refusal sets err->code, names a member and leaves *answer
 *         NULL; an answer is a JSON object whose "differ" rows each name a
 *         range the request asked, with HQ's true count of it, and whose
 *         entries lie inside their range.
 *   odd:  HQ's answer to a node's walk, after its first request (the
 *         root) and, when the answer lets the walk go on, to its second.
 *         Promises: 0 or -EBADMSG (or -ENOMEM); after a refusal the walk
 *         is over; the drift it reports names only records of either set
 *         and never more than the answers listed, and its stats count
 *         what was sent.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_range_digest -max_len=70000 tests/fuzz/corpus/range_digest
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "range_digest.h"

static struct range_set *hq;

static struct range_set *make(unsigned n)
{
    struct range_set *s = NULL;
    must(range_set_new(&s) == 0, "range_set_new");
    for (unsigned i = 0; i < n; i++) {
        char id[32];
        unsigned char h[PROJECTION_HASH_BYTES] = {0};
        snprintf(id, sizeof id, "c%u", i);
        h[0] = (unsigned char)i;
        h[1] = (unsigned char)(i >> 8);
        must(range_set_add(s, "contact", id, 1, h) == 0, "range_set_add");
    }
    range_set_seal(s);
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hq = make(300);
    return 0;
}

static void check_answer(const char *req, size_t len, const char *answer)
{
    json_t *r = json_loadb(req, len, 0, NULL);
    json_t *a = json_loads(answer, 0, NULL);
    json_t *differ = json_object_get(a, "differ");
    must(json_is_array(differ), "an answer has a differ array");
    size_t i;
    json_t *row;
    json_array_foreach(differ, i, row)
    {
        const char *p = json_string_value(json_array_get(row, 0));
        must(p && range_prefix_valid(p), "a differing range is a range");
        int asked = 0;
        size_t k;
        json_t *q;
        json_array_foreach(json_object_get(r, "ranges"), k, q)
        {
            if (!strcmp(json_string_value(json_array_get(q, 0)), p))
                asked = 1;
        }
        must(asked, "only ranges that were asked differ");
        unsigned char d[RANGE_DIGEST_BYTES];
        uint64_t n = 0;
        must(range_digest(hq, p, d, &n) == 0, "range_digest");
        must((uint64_t)json_integer_value(json_array_get(row, 1)) == n, "HQ's count is true");
        json_t *es = json_array_get(row, 2);
        if (es)
            must(json_array_size(es) == n, "entries are the whole range");
    }
    json_decref(r);
    json_decref(a);
}

static void hq_end(const char *body, size_t len)
{
    char *answer = (char *)"untouched";
    struct op_error err;
    op_error_clear(&err);
    int rc = range_answer(hq, body, len, &answer, &err);
    must(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "range_answer's codes");
    if (rc < 0) {
        must(answer == NULL, "a refusal leaves no answer");
        must(err.code == rc || rc == -ENOMEM, "err.code is the code");
        must(rc == -ENOMEM || err.field[0], "a refusal names a member");
        return;
    }
    check_answer(body, len, answer);
    free(answer);
}

static void node_end(const char *body, size_t len)
{
    struct range_set *mine = make(200);
    struct range_walk *w = NULL;
    must(range_walk_new(mine, &w) == 0, "range_walk_new");
    char *req = NULL;
    size_t rlen = 0;
    for (int round = 0; round < 2; round++) {
        if (range_walk_request(w, &req, &rlen) != 0)
            break;
        free(req);
        struct op_error err;
        op_error_clear(&err);
        int rc = range_walk_answer(w, body, len, &err);
        must(rc == 0 || rc == -EBADMSG || rc == -ENOMEM, "range_walk_answer's codes");
        if (rc < 0) {
            must(range_walk_request(w, &req, &rlen) == 1, "a refused answer ends the walk");
            break;
        }
    }
    struct range_walk_stats st;
    range_walk_stats(w, &st);
    must(st.compared == 200, "the walk compares the node's records");
    must(st.bytes_in <= 2 * len, "bytes in are the answers'");
    range_walk_free(w);
    range_set_free(mine);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1)
        node_end(body, len);
    else
        hq_end(body, len);
    return 0;
}
