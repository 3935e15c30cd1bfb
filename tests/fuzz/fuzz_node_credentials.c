/*
 * libFuzzer target for sync/core/node_credentials.c: each input (after its
 * first byte) is written as a node's hq_credentials file and read with
 * node_credentials_load. The first byte's low bit picks the file's mode:
 * 0600 (owner only, as the module requires) or 0644, which must be
 * refused with -EPERM before a byte is read. Beyond "no crash, no leak, no
 * overflow" it checks the module's promises: a refusal has a documented
 * code, err->code equal to it, a message that starts with the file's
 * name, and leaves *out untouched; an accepted file gives a complete,
 * valid struct (node id, region, 64 lower-case hex digits of token, an
 * empty or http(s) URL), and node_credentials_write writes it back (mode
 * 0600) to a file that loads to the same struct.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_node_credentials -max_len=20000 \
 *       tests/fuzz/corpus/node_credentials
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "node_credentials.h"

static char path[300], path2[300];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(path, sizeof path, "%s/hq_credentials", fuzz_tmpdir());
    snprintf(path2, sizeof path2, "%s/hq_credentials.written", fuzz_tmpdir());
    return 0;
}

static int lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void check_valid(const struct node_credentials *c)
{
    must(memchr(c->node_id, '\0', sizeof c->node_id) && node_id_valid(c->node_id),
         "a loaded node id is valid");
    size_t rl = strnlen(c->region, sizeof c->region);
    must(rl >= 1 && rl < sizeof c->region, "a loaded region is 1..15 characters");
    for (size_t i = 0; i < rl; i++)
        must((c->region[i] >= 'A' && c->region[i] <= 'Z') ||
                 (c->region[i] >= '0' && c->region[i] <= '9') || c->region[i] == '-',
             "a loaded region is A-Z, 0-9, -");
    must(lower_hex(c->token, 64), "a loaded token is 64 lower-case hex digits");
    must(memchr(c->hq_url, '\0', sizeof c->hq_url) != NULL, "a loaded URL is terminated");
    must(!c->hq_url[0] || fuzz_starts(c->hq_url, "http://") || fuzz_starts(c->hq_url, "https://"),
         "a loaded URL is empty or http(s)");
    for (const char *p = c->hq_url; *p; p++)
        must((unsigned char)*p > ' ' && *p != 0x7f, "a loaded URL has no spaces or controls");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4 * NODE_CREDENTIALS_MAX_BYTES)
        return 0;
    int open_mode = data[0] & 1;
    fuzz_write_file(path, data + 1, size - 1, open_mode ? 0644 : 0600);
    struct node_credentials c, sentinel;
    memset(&c, 0xa5, sizeof c);
    memcpy(&sentinel, &c, sizeof c);
    struct op_error err;
    op_error_clear(&err);
    int rc = node_credentials_load(path, &c, &err);
    if (open_mode) {
        must(rc == -EPERM, "a file others may read is refused with -EPERM");
    }
    if (rc < 0) {
        must(rc == -EINVAL || rc == -EFBIG || rc == -EPERM || rc == -ENOMEM,
             "a refusal has a documented code");
        must(err.code == rc, "err->code is the code returned");
        must(err.msg[0] != '\0', "a refusal has a message");
        must(rc == -ENOMEM || fuzz_starts(err.msg, path), "the message names the file");
        must(!memcmp(&c, &sentinel, sizeof c), "a refusal leaves *out untouched");
        must(rc != -EFBIG || size - 1 > NODE_CREDENTIALS_MAX_BYTES, "-EFBIG only over the cap");
        return 0;
    }
    must(rc == 0, "success is 0");
    must(size - 1 <= NODE_CREDENTIALS_MAX_BYTES, "the size cap holds");
    check_valid(&c);

    /* Written back whole, owner-only, and read back the same. */
    (void)unlink(path2);
    op_error_clear(&err);
    rc = node_credentials_write(path2, &c, &err);
    if (rc < 0)
        fprintf(stderr, "cannot write loaded credentials back: %s\n", err.msg);
    must(rc == 0, "loaded credentials can be written");
    struct stat st;
    must(stat(path2, &st) == 0 && (st.st_mode & 0777) == 0600, "written with mode 0600");
    struct node_credentials back;
    memset(&back, 0, sizeof back);
    rc = node_credentials_load(path2, &back, &err);
    must(rc == 0, "written credentials load");
    must(!strcmp(back.node_id, c.node_id) && !strcmp(back.region, c.region) &&
             !strcmp(back.token, c.token) && !memcmp(back.hq_key, c.hq_key, sizeof c.hq_key) &&
             !strcmp(back.hq_url, c.hq_url),
         "written credentials load to the same struct");
    must(node_credentials_write(path2, &c, &err) == -EEXIST, "a write never replaces a file");
    return 0;
}
