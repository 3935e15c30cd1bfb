/* Tests for sync/toolkit/durable.c: the directory of a path, and syncing a
 * directory that exists or does not. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "durable.h"
#include "testlib.h"

static void dir_of(void)
{
    char dir[64];
    durable_dir_of("node.db", dir, sizeof dir);
    CHECK_STR(dir, ".");
    durable_dir_of("/node.db", dir, sizeof dir);
    CHECK_STR(dir, "/");
    durable_dir_of("/var/lib/outpost/node.db", dir, sizeof dir);
    CHECK_STR(dir, "/var/lib/outpost");
    durable_dir_of("out/x.csv", dir, sizeof dir);
    CHECK_STR(dir, "out");
    char small[4];
    durable_dir_of("/var/lib/x", small, sizeof small);
    CHECK_STR(small, "/va");
}

static void sync_dir(void)
{
    char tmp[] = "/tmp/outpost-test-durable-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    CHECK_EQ(durable_sync_dir(tmp), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/file", tmp);
    CHECK_EQ(durable_sync_dir_of(path), 0);
    snprintf(path, sizeof path, "%s/missing/file", tmp);
    CHECK_EQ(durable_sync_dir_of(path), -ENOENT);
    CHECK_EQ(durable_sync_dir(path), -ENOENT);
    CHECK_EQ(rmdir(tmp), 0);
}

int main(void)
{
    RUN(dir_of);
    RUN(sync_dir);
    return tl_report();
}
