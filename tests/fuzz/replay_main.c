/*
 * The main of a fuzz target in the normal build (no -Dfuzz=true): runs
 * LLVMFuzzerTestOneInput once over every file named on the command line or
 * found (sorted by name, not recursively) in a directory named there, and
 * says how many inputs ran. `meson test --suite fuzz` replays each
 * target's committed corpus this way, under gcc and under ASan+UBSan, so
 * the targets keep building and their corpora keep passing.
 *
 * Each input is copied into a heap buffer of exactly its size, so the
 * sanitizers catch a read one byte past it, as libFuzzer's would. Exit
 * status: 0 when at least one input ran (a target aborts on a broken
 * promise), 1 when none did (a missing corpus is rot, not success), 2 for
 * an unreadable argument.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Inputs larger than this are not corpus material. */
#define REPLAY_MAX_BYTES (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long inputs;
static unsigned long long total_bytes;

static int run_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > (off_t)REPLAY_MAX_BYTES) {
        fprintf(stderr, "replay: %s: %s\n", path,
                st.st_size > (off_t)REPLAY_MAX_BYTES ? "over 4 MiB" : strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    /* malloc(0) may return NULL; the target still gets a valid pointer */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "replay: cannot read %s\n", path);
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    (void)LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    inputs++;
    total_bytes += size;
    return 0;
}

static int regular_only(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, regular_only, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: cannot read %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        int len = snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (rc == 0 && len > 0 && (size_t)len < sizeof path && stat(path, &st) == 0 &&
            S_ISREG(st.st_mode))
            rc = run_file(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    const char *name = argc > 0 ? argv[0] : "replay";
    if (LLVMFuzzerInitialize)
        (void)LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (argv[i][0] == '-')
            continue; /* libFuzzer flags: ignored here */
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        if ((S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i])) < 0)
            return 2;
    }
    printf("%s: %lu inputs ran (%llu bytes)\n", name, inputs, total_bytes);
    return inputs > 0 ? 0 : 1;
}
