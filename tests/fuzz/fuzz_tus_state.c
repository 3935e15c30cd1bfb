/*
 * libFuzzer target for the state files of sync/net/tus_server.c, which
 * tus_server_new reads back at start-up from the spool: the input (after
 * its first byte) is written as <id>.state in an empty spool directory,
 * with a data file of 0 to 127 bytes beside it or none (the first byte's
 * low seven bits, 127 meaning none), and a server is opened on it. Beyond
 * "no crash, no leak, no overflow" it checks the module's promises: a
 * file that cannot be parsed is counted in bad_state_files and the start
 * still succeeds; a loaded upload has offset <= length and offset <= the
 * bytes of its data file (the crash-only invariant); a settled one has no
 * data file left; whatever the server rewrote loads again on a second
 * start with nothing bad and the same upload; and tus_server_redeliver
 * hands a complete upload over once with its length and a data file of at
 * least that size.
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_tus_state -max_len=70000 tests/fuzz/corpus/tus_state
 * State files look like
 *   outpost-tus 1\nlength 10\noffset 4\ncomplete 0\nprincipal node-a\nmetadata k dg==\n
 * optionally followed by "settled 1\nsettled_at T\n".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "tus_server.h"

#define ID "0123456789abcdef0123456789abcdef"

static char spool[300], state_path[400], data_path[400];

struct delivered {
    unsigned calls;
    uint64_t length;
};

static int authorize(void *ctx, struct http_exchange *x, char *principal, size_t cap)
{
    return -EACCES; /* no requests here */
}

static int on_complete(void *ctx, const char *upload_id, const char *principal,
                       const struct tus_metadata *md, const char *path, uint64_t length)
{
    struct delivered *d = ctx;
    d->calls++;
    d->length = length;
    must(!strcmp(upload_id, ID), "the delivered upload is the one in the spool");
    must(principal[0] != '\0', "a delivered upload has a principal");
    struct stat st;
    must(stat(path, &st) == 0 && (uint64_t)st.st_size >= length,
         "a delivered upload's data file holds its length");
    for (size_t i = 0; i < md->n; i++)
        must(md->pair[i].key[0] && md->pair[i].value[md->pair[i].len] == '\0',
             "metadata pairs have a key and a terminated value");
    return 0;
}

static uint64_t fixed_clock(void *ctx)
{
    return 1795000000000ull;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(spool, sizeof spool, "%s/spool", fuzz_tmpdir());
    snprintf(state_path, sizeof state_path, "%s/" ID ".state", spool);
    snprintf(data_path, sizeof data_path, "%s/" ID ".data", spool);
    must(mkdir(spool, 0700) == 0, "spool directory");
    return 0;
}

static struct tus_server *open_spool(struct delivered *d)
{
    struct tus_server_config cfg = {
        .spool_dir = spool,
        .authorize = authorize,
        .on_complete = on_complete,
        .ctx = d,
        .now_ms = fixed_clock,
    };
    struct tus_server *s = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = tus_server_new(&cfg, &s, &err);
    if (rc < 0)
        fprintf(stderr, "tus_server_new: %s\n", err.msg);
    must(rc == 0 && s != NULL, "a bad state file does not stop the start");
    return s;
}

static long long file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 100000)
        return 0;
    unsigned data_len = data[0] & 0x7f;
    fuzz_empty_dir(spool);
    fuzz_write_file(state_path, data + 1, size - 1, 0600);
    if (data_len != 127) {
        char zeros[127];
        memset(zeros, 'z', sizeof zeros);
        fuzz_write_file(data_path, zeros, data_len, 0600);
    }

    struct delivered d = {0};
    struct tus_server *s = open_spool(&d);
    struct tus_server_stats st;
    tus_server_stats(s, &st);
    uint64_t off = 0, len = 0;
    int found = tus_server_upload_offset(s, ID, &off, &len) == 0;
    must(st.bad_state_files + (unsigned)found == 1, "a state file is either loaded or counted bad");
    must(st.uploads + st.settled == (unsigned)found, "at most the one upload");
    must(d.calls == 0, "opening delivers nothing");
    if (!found) {
        tus_server_free(s);
        return 0;
    }
    must(off <= len, "offset <= length");
    must(st.spool_bytes == (st.settled ? 0 : len), "spool bytes are the held upload's length");
    long long have = file_size(data_path);
    if (st.settled) {
        must(off == len, "a settled upload is complete");
        must(have < 0, "a settled upload's data is gone");
    } else {
        must(have >= 0 && (uint64_t)have >= off, "offset <= durable bytes of the data file");
        must(st.complete == (off == len), "complete exactly when offset = length");
    }

    /* A second start reads what the first left: nothing bad, the same. */
    struct delivered d2 = {0};
    struct tus_server *s2 = open_spool(&d2);
    struct tus_server_stats st2;
    tus_server_stats(s2, &st2);
    uint64_t off2 = 0, len2 = 0;
    must(st2.bad_state_files == 0, "a loaded state file stays loadable");
    must(tus_server_upload_offset(s2, ID, &off2, &len2) == 0 && off2 == off && len2 == len,
         "a restart reports the same offset and length");
    must(st2.uploads == st.uploads && st2.settled == st.settled && st2.complete == st.complete &&
             st2.spool_bytes == st.spool_bytes,
         "a restart reports the same uploads");
    tus_server_free(s2);

    /* A complete upload is offered once, with its length. */
    int got = tus_server_redeliver(s);
    must(got >= 0, "redeliver succeeds");
    must(d.calls == (st.complete ? 1u : 0u), "redeliver offers exactly the complete upload");
    must((unsigned)got == d.calls, "redeliver counts the accepted calls");
    if (d.calls)
        must(d.length == len, "delivered with its length");
    must(tus_server_redeliver(s) == 0 && d.calls == (st.complete ? 1u : 0u),
         "an accepted upload is not offered again");
    if (st.complete)
        must(tus_server_settle(s, ID) == 0 && file_size(data_path) < 0, "settling drops the data");
    tus_server_free(s);
    return 0;
}
