/*
 * Problem documents; see problem.h. Objects keep their members in the
 * order they were added (jansson 2.8 and later), which is what keeps the
 * standard members first.
 */
#include "problem.h"

#include <errno.h>

json_t *problem_new(int status, const char *title, const char *detail)
{
    if (!title || !detail)
        return NULL;
    return json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title, "status",
                     status, "detail", detail);
}

struct sink {
    struct buf *b;
    int rc;
};

static int append(const char *s, size_t n, void *arg)
{
    struct sink *k = arg;
    k->rc = buf_append(k->b, s, n);
    return k->rc < 0 ? -1 : 0;
}

int problem_render(struct buf *b, json_t *p)
{
    if (!p)
        return -ENOMEM;
    size_t len = b->len;
    struct sink k = {b, 0};
    int rc = json_dump_callback(p, append, &k, JSON_COMPACT);
    json_decref(p);
    if (rc == 0)
        return 0;
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
    return k.rc < 0 ? k.rc : -ENOMEM;
}
