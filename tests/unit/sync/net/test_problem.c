/*
 * Tests for sync/net/problem.c: the standard members come first, in
 * order and compact; the title defaults to the reason phrase; members a
 * caller adds follow them; quotes and control bytes are escaped; a failed
 * render (no document, or over the buffer's cap) leaves the buffer as it
 * was.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "problem.h"
#include "testlib.h"

static void shape(void)
{
    struct buf b = BUF_INIT(SIZE_MAX);
    CHECK_EQ(problem_render(&b, problem_new(404, "Not Found", "no such path")), 0);
    CHECK_STR(b.data,
              "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":\"no "
              "such path\"}");
    buf_clear(&b);
    CHECK_EQ(problem_render(&b, problem_new(460, "Checksum Mismatch", "say \"a\\b\"\n")), 0);
    CHECK_STR(b.data, "{\"type\":\"about:blank\",\"title\":\"Checksum Mismatch\",\"status\":460,"
                      "\"detail\":\"say \\\"a\\\\b\\\"\\n\"}");
    buf_done(&b);
}

static void members(void)
{
    json_t *p = problem_new(409, "Conflict", "taken");
    CHECK(p != NULL);
    json_object_set_new(p, "existing_id", json_string("x1"));
    struct buf b = BUF_INIT(SIZE_MAX);
    CHECK_EQ(buf_puts(&b, "> "), 0);
    CHECK_EQ(problem_render(&b, p), 0); /* appends */
    CHECK_STR(b.data, "> {\"type\":\"about:blank\",\"title\":\"Conflict\",\"status\":409,"
                      "\"detail\":\"taken\",\"existing_id\":\"x1\"}");
    buf_done(&b);
}

static void failures(void)
{
    struct buf b = BUF_INIT(40);
    CHECK_EQ(buf_puts(&b, "kept"), 0);
    CHECK_EQ(problem_render(&b, NULL), -ENOMEM);
    CHECK_EQ(problem_render(&b, problem_new(400, "Bad Request", "too long for forty bytes")),
             -EFBIG);
    CHECK_EQ(b.len, 4);
    CHECK_STR(b.data, "kept");
    CHECK(problem_new(400, "Bad Request", "\xff not UTF-8") == NULL);
    buf_done(&b);
}

int main(void)
{
    shape();
    members();
    failures();
    return tl_report();
}
