/*
 * libFuzzer target for the request side of sync/net/tus_server.c: the
 * headers a client sends (Tus-Resumable, Upload-Length, Upload-Offset,
 * Upload-Metadata, Upload-Checksum, Content-Type,
 * X-HTTP-Method-Override ...) and the body, on a real http_server on
 * 127.0.0.1 with a tus server behind it whose spool holds one upload of
 * the principal "node-a" (written as a state file before each input, so
 * every input starts from the same spool).
 *
 * Input: byte 0 picks the method (bits 0-2: POST HEAD PATCH DELETE OPTIONS
 * GET PUT POST), the path (bits 3-4: the collection, the upload, an
 * unknown id, a path outside the collection), whether authorize refuses
 * (bit 5), whether on_complete settles the upload or asks for redelivery
 * (bit 6); byte 1 is the upload's length (its offset is half of it, or all
 * of it when bit 7 of byte 0 is set). The rest is header lines up to the
 * first empty line ("\n\n"), then the body. Lines without ':' and the
 * framing headers (Content-Length, Transfer-Encoding, Connection, Host)
 * are dropped: the harness frames the request itself, so the bytes reach
 * the tus server rather than the HTTP parser's refusals (fuzz_http_request
 * covers those).
 *
 * Beyond "no crash, no leak, no overflow" it checks the module's
 * promises: every answer the tus server gives carries Tus-Resumable:
 * 1.0.0 and a status it documents (no 500 on a healthy disk); 401 exactly
 * when authorize refuses; a 201 names a new upload under /files with
 * offset 0; a 204 to a PATCH reports the upload's offset; the upload's
 * offset never passes its length nor the bytes of its data file; the caps
 * hold; and a restart on the spool reads back every upload with no bad
 * state file (the crash-only invariant).
 *
 * Build and run (docs/FUZZING.md):
 *   CC=clang meson setup build-fuzz -Dfuzz=true && ninja -C build-fuzz
 *   build-fuzz/tests/fuzz/fuzz_tus_headers -max_len=8000 tests/fuzz/corpus/tus_headers
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "fuzz_net.h"
#include "fuzz_util.h"
#include "http_server.h"
#include "tus_server.h"

#define ID "0123456789abcdef0123456789abcdef"
#define MAX_UPLOAD 4096u
#define MAX_SPOOL 8192u
#define MAX_UPLOADS 4u

struct run {
    struct tus_server *tus;
    int refuse;      /* authorize answers -EACCES */
    int settle;      /* on_complete settles; else asks for redelivery */
    unsigned called; /* handler calls for this input */
};

static uv_loop_t *loop;
static struct http_server *server;
static struct run run;
static char spool[300];

static int authorize(void *ctx, struct http_exchange *x, char *principal, size_t cap)
{
    struct run *r = ctx;
    if (r->refuse)
        return -EACCES;
    snprintf(principal, cap, "node-a");
    return 0;
}

static int admit(void *ctx, const char *principal, const struct tus_metadata *md, char *detail,
                 size_t cap)
{
    must(!strcmp(principal, "node-a"), "admit sees the principal");
    for (size_t i = 0; i < md->n; i++) {
        must(md->pair[i].key[0] != '\0', "a metadata key is not empty");
        must(md->pair[i].value[md->pair[i].len] == '\0', "a metadata value is terminated");
        for (const char *k = md->pair[i].key; *k; k++)
            must(*k > ' ' && *k < 0x7f && *k != ',', "a metadata key is printable ASCII");
        for (size_t j = 0; j < i; j++)
            must(strcmp(md->pair[i].key, md->pair[j].key) != 0, "metadata keys are unique");
    }
    if (tus_metadata_get(md, "refuse", NULL)) {
        snprintf(detail, cap, "refused by admit");
        return -EPERM;
    }
    if (tus_metadata_get(md, "busy", NULL))
        return -EAGAIN;
    return 0;
}

static int on_complete(void *ctx, const char *upload_id, const char *principal,
                       const struct tus_metadata *md, const char *data_path, uint64_t length)
{
    struct run *r = ctx;
    struct stat st;
    must(stat(data_path, &st) == 0 && (uint64_t)st.st_size >= length,
         "a complete upload's data file holds its length");
    if (!r->settle)
        return -EAGAIN;
    must(tus_server_settle(r->tus, upload_id) == 0, "settling from on_complete");
    return 0;
}

static void handler(void *ctx, struct http_exchange *x)
{
    struct run *r = ctx;
    r->called++;
    tus_server_handler(r->tus, x);
}

static void on_log(void *ctx, const struct http_log_entry *e)
{
    must(e->status >= 100 && e->status <= 599, "logged status is an HTTP status");
}

static struct tus_server *open_tus(void)
{
    struct tus_server_config cfg = {
        .spool_dir = spool,
        .max_upload_bytes = MAX_UPLOAD,
        .max_spool_bytes = MAX_SPOOL,
        .max_uploads = MAX_UPLOADS,
        .max_incomplete_per_principal = 2,
        .max_metadata_bytes = 512,
        .authorize = authorize,
        .admit = admit,
        .on_complete = on_complete,
        .ctx = &run,
    };
    struct tus_server *t = NULL;
    struct op_error err;
    op_error_clear(&err);
    int rc = tus_server_new(&cfg, &t, &err);
    if (rc < 0)
        fprintf(stderr, "tus_server_new: %s\n", err.msg);
    must(rc == 0, "the tus server opens its spool");
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(spool, sizeof spool, "%s/spool", fuzz_tmpdir());
    must(mkdir(spool, 0700) == 0, "spool directory");
    loop = uv_default_loop();
    struct http_server_config cfg = {
        .listen = "127.0.0.1:0",
        .max_body_bytes = 2 * MAX_UPLOAD,
        .header_timeout_ms = 2000,
        .body_timeout_ms = 2000,
        .idle_timeout_ms = 2000,
    };
    struct op_error err;
    op_error_clear(&err);
    if (http_server_start(loop, &cfg, handler, on_log, &run, &server, &err) < 0) {
        fprintf(stderr, "cannot start: %s\n", err.msg);
        abort();
    }
    return 0;
}

/* The value of header name in an answer (its head only), copied to out. */
static int resp_header(const char *resp, const char *name, char *out, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = strstr(resp, "\r\n"); p && (!end || p < end); p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 3 + nl;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

static const int tus_statuses[] = {200, 201, 204, 400, 401, 403, 404,
                                   405, 409, 412, 413, 415, 460, 503};

static int framing_header(const char *line, size_t n)
{
    static const char *const names[] = {"content-length", "transfer-encoding", "connection",
                                        "host"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t k = strlen(names[i]);
        if (n > k && strncasecmp(line, names[i], k) == 0 &&
            (line[k] == ':' || line[k] == ' ' || line[k] == '\t'))
            return 1;
    }
    return 0;
}

static void write_upload_state(uint64_t length, uint64_t offset)
{
    char p[400], buf[256];
    snprintf(p, sizeof p, "%s/" ID ".state", spool);
    int n = snprintf(buf, sizeof buf,
                     "outpost-tus 1\nlength %llu\noffset %llu\ncomplete %d\nprincipal node-a\n"
                     "metadata segment MQ==\n",
                     (unsigned long long)length, (unsigned long long)offset, offset == length);
    fuzz_write_file(p, buf, (size_t)n, 0600);
    char zeros[256];
    memset(zeros, 'z', sizeof zeros);
    snprintf(p, sizeof p, "%s/" ID ".data", spool);
    fuzz_write_file(p, zeros, (size_t)offset, 0600);
}

static long long data_size(const char *id)
{
    char p[400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s.data", spool, id);
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"POST",    "HEAD", "PATCH", "DELETE",
                                          "OPTIONS", "GET",  "PUT",   "POST"};
    if (size < 2 || size > 16384)
        return 0;
    unsigned m = data[0] & 7, target = (data[0] >> 3) & 3;
    uint64_t length = data[1], offset = data[0] & 0x80 ? length : length / 2;
    run.refuse = (data[0] >> 5) & 1;
    run.settle = (data[0] >> 6) & 1;
    run.called = 0;
    data += 2;
    size -= 2;

    tus_server_free(run.tus);
    fuzz_empty_dir(spool);
    write_upload_state(length, offset);
    run.tus = open_tus();

    /* The request: line, the input's header lines, framing, body. */
    static const char *const paths[] = {"/files", ("/files/" ID),
                                        "/files/ffffffffffffffffffffffffffffffff", "/other"};
    size_t cap = 256 + 2 * size;
    char *req = malloc(cap);
    must(req != NULL, "memory");
    size_t len = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\n", methods[m], paths[target]);
    const uint8_t *p = data, *end = data + size, *body = end;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *le = nl ? nl : end;
        if (le == p) { /* empty line: the body follows */
            body = p + 1;
            break;
        }
        size_t n = (size_t)(le - p);
        if (p[n - 1] == '\r')
            n--;
        if (n && memchr(p, ':', n) && !memchr(p, '\0', n) && !memchr(p, '\r', n) &&
            !framing_header((const char *)p, n)) {
            memcpy(req + len, p, n);
            len += n;
            memcpy(req + len, "\r\n", 2);
            len += 2;
        }
        p = nl ? nl + 1 : end;
    }
    size_t blen = body < end ? (size_t)(end - body) : 0;
    len += (size_t)snprintf(req + len, cap - len,
                            "Host: hq\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n", blen);
    must(len + blen <= cap, "request buffer");
    memcpy(req + len, body, blen);
    len += blen;

    char resp[8192];
    size_t got = fuzz_exchange(loop, server, req, len, resp, sizeof resp);
    free(req);

    int status = 0;
    must(got > 0 && sscanf(resp, "HTTP/1.1 %d ", &status) == 1, "every request is answered");
    char v[300];
    if (run.called) {
        must(run.called == 1, "one request, one handler call");
        int known = 0;
        for (size_t i = 0; i < sizeof tus_statuses / sizeof tus_statuses[0]; i++)
            known |= status == tus_statuses[i];
        if (!known)
            fprintf(stderr, "status %d\n%s\n", status, resp);
        must(known, "a status the tus server documents");
        must(resp_header(resp, "Tus-Resumable", v, sizeof v) && !strcmp(v, "1.0.0"),
             "every answer carries Tus-Resumable: 1.0.0");
        if (target != 3)
            must((status == 401) == run.refuse, "401 exactly when authorize refuses");
    }
    if (status == 201) {
        must(resp_header(resp, "Location", v, sizeof v) && fuzz_starts(v, "/files/") &&
                 strlen(v) == 7 + TUS_ID_LEN,
             "a 201 names the new upload under /files");
        uint64_t o = 1, l = 0;
        must(tus_server_upload_offset(run.tus, v + 7, &o, &l) == 0, "a created upload exists");
        must(l <= MAX_UPLOAD && (o == 0 || o == l), "a new upload starts at offset 0");
    }
    uint64_t off = 0, ulen = 0;
    int have = tus_server_upload_offset(run.tus, ID, &off, &ulen) == 0;
    if (status == 204 && target == 1 && have && !strcmp(methods[m], "PATCH"))
        must(resp_header(resp, "Upload-Offset", v, sizeof v) &&
                 strtoull(v, NULL, 10) == (unsigned long long)off,
             "a 204 to PATCH reports the upload's offset");
    struct tus_server_stats st;
    tus_server_stats(run.tus, &st);
    must(st.uploads <= MAX_UPLOADS && st.spool_bytes <= MAX_SPOOL, "the caps hold");
    if (have) {
        must(off <= ulen, "offset <= length");
        long long ds = data_size(ID);
        must(st.settled || (ds >= 0 && (uint64_t)ds >= off),
             "offset <= durable bytes of the data file");
    }

    /* A restart reads back what this one left. */
    struct tus_server *again = open_tus();
    struct tus_server_stats st2;
    tus_server_stats(again, &st2);
    must(st2.bad_state_files == 0, "every state file the server wrote loads");
    must(st2.uploads == st.uploads && st2.settled == st.settled &&
             st2.spool_bytes == st.spool_bytes,
         "a restart reads back the same uploads");
    uint64_t off2 = 0, len2 = 0;
    if (have)
        must(tus_server_upload_offset(again, ID, &off2, &len2) == 0 && off2 == off && len2 == ulen,
             "a restart reads back the same offset");
    tus_server_free(again);
    return 0;
}
