/*
 * Tests for sync/core/node_credentials.c: generated credentials are random and
 * valid; they survive write and load byte for byte; a file is written with
 * mode 0600 and never over another; a file others can read is refused
 * before its content is looked at; and every malformed key (unknown
 * format, bad hex, wrong lengths, a bad node id, unknown or missing keys)
 * is refused with "FILE: KEY: problem" and the key in err->field.
 */
#include "node_credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "testlib.h"

static char dir[64];

static const char TOKEN[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char KEYHEX[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

static void put(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    fchmod(fd, mode);
    close(fd);
}

/* Writes text to path (mode 0600) and loads it. */
static int load_text(const char *path, const char *text, struct node_credentials *c,
                     struct op_error *err)
{
    put(path, text, 0600);
    return node_credentials_load(path, c, err);
}

static void test_node_id_valid(void)
{
    CHECK_EQ(node_id_valid("nairobi-1"), 1);
    CHECK_EQ(node_id_valid("a"), 1);
    CHECK_EQ(node_id_valid("A.b_c:d-9"), 1);
    char s[80];
    memset(s, 'x', 64);
    s[64] = '\0';
    CHECK_EQ(node_id_valid(s), 1);
    s[64] = 'x';
    s[65] = '\0';
    CHECK_EQ(node_id_valid(s), 0);
    CHECK_EQ(node_id_valid(""), 0);
    CHECK_EQ(node_id_valid(NULL), 0);
    CHECK_EQ(node_id_valid("a b"), 0);
    CHECK_EQ(node_id_valid("a/b"), 0);
    CHECK_EQ(node_id_valid("ä"), 0);
    CHECK_EQ(node_id_valid("a\n"), 0);
}

static void test_generate_write_load(void)
{
    struct node_credentials a, b;
    struct op_error err;
    CHECK_EQ(node_credentials_generate("nairobi-1", "KE", "https://hq.example:8443", &a, &err), 0);
    CHECK_EQ(node_credentials_generate("nairobi-1", "KE", NULL, &b, &err), 0);
    CHECK_STR(a.node_id, "nairobi-1");
    CHECK_STR(a.region, "KE");
    CHECK_STR(a.hq_url, "https://hq.example:8443");
    CHECK_STR(b.hq_url, "");
    CHECK_EQ(strlen(a.token), 64);
    CHECK_EQ(strspn(a.token, "0123456789abcdef"), 64);
    /* random: two enrolments never share a token or a key */
    CHECK(strcmp(a.token, b.token) != 0);
    CHECK(memcmp(a.hq_key, b.hq_key, 32) != 0);
    static const unsigned char zero[32];
    CHECK(memcmp(a.hq_key, zero, 32) != 0);

    char path[128];
    snprintf(path, sizeof path, "%s/creds.json", dir);
    CHECK_EQ(node_credentials_write(path, &a, &err), 0);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_mode & 07777, 0600);
    CHECK_EQ(fx_count_entries(dir), 1); /* no temporary file left */
    struct node_credentials c;
    memset(&c, 0x55, sizeof c);
    CHECK_EQ(node_credentials_load(path, &c, &err), 0);
    CHECK_STR(c.node_id, a.node_id);
    CHECK_STR(c.region, a.region);
    CHECK_STR(c.token, a.token);
    CHECK(memcmp(c.hq_key, a.hq_key, 32) == 0);
    CHECK_STR(c.hq_url, a.hq_url);
    /* the file is the documented format */
    FILE *f = fopen(path, "r");
    char text[1024] = "";
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    CHECK_CONTAINS(text, "{\"format\":\"outpost-node-credentials-1\",\"node_id\":\"nairobi-1\"");
    CHECK_CONTAINS(text, a.token);
    CHECK_CONTAINS(text, "\"hq_url\":\"https://hq.example:8443\"");
    CHECK(n > 0 && text[n - 1] == '\n');

    /* never over an existing file */
    CHECK_EQ(node_credentials_write(path, &b, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, path);
    CHECK_EQ(node_credentials_load(path, &c, &err), 0);
    CHECK_STR(c.token, a.token);
    CHECK_EQ(fx_count_entries(dir), 1);

    /* without hq_url the key is absent and loads as "" */
    char p2[128];
    snprintf(p2, sizeof p2, "%s/b.json", dir);
    CHECK_EQ(node_credentials_write(p2, &b, &err), 0);
    CHECK_EQ(node_credentials_load(p2, &c, &err), 0);
    CHECK_STR(c.hq_url, "");
    unlink(p2);

    /* a directory that does not exist: an error, nothing created */
    snprintf(p2, sizeof p2, "%s/nope/c.json", dir);
    CHECK_EQ(node_credentials_write(p2, &a, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, p2);

    /* invalid structs are not written */
    struct node_credentials bad = a;
    snprintf(bad.node_id, sizeof bad.node_id, "a b");
    snprintf(p2, sizeof p2, "%s/bad.json", dir);
    CHECK_EQ(node_credentials_write(p2, &bad, &err), -EINVAL);
    CHECK_STR(err.field, "node_id");
    bad = a;
    bad.token[3] = 'G';
    CHECK_EQ(node_credentials_write(p2, &bad, &err), -EINVAL);
    CHECK_STR(err.field, "token");
    bad = a;
    snprintf(bad.region, sizeof bad.region, "ke");
    CHECK_EQ(node_credentials_write(p2, &bad, &err), -EINVAL);
    CHECK_STR(err.field, "region");
    CHECK(access(p2, F_OK) != 0);
    unlink(path);

    /* generate refuses bad input */
    CHECK_EQ(node_credentials_generate("a b", "KE", NULL, &c, &err), -EINVAL);
    CHECK_STR(err.field, "node_id");
    CHECK_EQ(node_credentials_generate("n", "../etc", NULL, &c, &err), -EINVAL);
    CHECK_STR(err.field, "region");
    CHECK_EQ(node_credentials_generate("n", NULL, NULL, &c, &err), -EINVAL);
    CHECK_EQ(node_credentials_generate("n", "KE", "ftp://x", &c, &err), -EINVAL);
    CHECK_STR(err.field, "hq_url");
    CHECK_EQ(node_credentials_generate("n", "KE", "https://a b", &c, &err), -EINVAL);
    char longurl[2100];
    memset(longurl, 'a', sizeof longurl);
    memcpy(longurl, "https://", 8);
    longurl[sizeof longurl - 1] = '\0';
    CHECK_EQ(node_credentials_generate("n", "KE", longurl, &c, &err), -EINVAL);
    CHECK_STR(err.field, "hq_url");
}

static void test_mode_refused(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/open.json", dir);
    char text[512];
    snprintf(text, sizeof text,
             "{\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
             "\"token\":\"%s\",\"hq_key\":\"%s\"}",
             TOKEN, KEYHEX);
    struct node_credentials c;
    struct op_error err;
    static const mode_t modes[] = {0640, 0604, 0620, 0602, 0660, 0644};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        put(path, text, modes[i]);
        CHECK_EQ(node_credentials_load(path, &c, &err), -EPERM);
        CHECK_CONTAINS(err.msg, path);
        CHECK_CONTAINS(err.msg, "chmod 600");
    }
    put(path, text, 0400);
    CHECK_EQ(node_credentials_load(path, &c, &err), 0);
    CHECK_STR(c.node_id, "n1");
    CHECK_EQ(c.hq_key[0], 0xff);
    CHECK_EQ(c.hq_key[31], 0x00);
    unlink(path);
    snprintf(path, sizeof path, "%s/missing.json", dir);
    CHECK_EQ(node_credentials_load(path, &c, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, path);
    CHECK_EQ(node_credentials_load(dir, &c, &err), -EINVAL);
}

static void test_bad_content(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/c.json", dir);
    char upper[65];
    snprintf(upper, sizeof upper, "%s", TOKEN);
    for (int i = 0; i < 64; i++)
        if (upper[i] >= 'a')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    /* each: the JSON between the braces, the field, a word of the message */
    struct {
        const char *fmt, *field, *says;
    } cases[] = {
        {"\"format\":\"outpost-node-credentials-2\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\"",
         "format", "is not"},
        {"\"node_id\":\"n1\",\"region\":\"KE\",\"token\":\"%s\",\"hq_key\":\"%s\"", "format",
         "missing"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"a b\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\"",
         "node_id", "A-Z"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\"",
         "node_id", "A-Z"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":7,\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\"",
         "node_id", "string"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"../KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\"",
         "region", "A-Z"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%.63s\",\"hq_key\":\"%s\"",
         "token", "63 characters"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s0\",\"hq_key\":\"%s\"",
         "token", "65 characters"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%.62sxy\",\"hq_key\":\"%s\"",
         "token", "non-hex"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%.30s\"",
         "hq_key", "30 characters"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%.63sz\"",
         "hq_key", "non-hex"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\"%.0s",
         "hq_key", "missing"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\",\"hq_url\":5",
         "hq_url", "string"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\",\"hq_url\":\"file:///etc/passwd\"",
         "hq_url", "http"},
        {"\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
         "\"token\":\"%s\",\"hq_key\":\"%s\",\"secret\":\"x\"",
         "secret", "unknown key"},
    };
    struct node_credentials c;
    struct op_error err;
    char body[1024], text[1100];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        /* the formats are the literals above */
        snprintf(body, sizeof body, cases[i].fmt, TOKEN, KEYHEX);
#pragma GCC diagnostic pop
        snprintf(text, sizeof text, "{%s}\n", body);
        put(path, text, 0600);
        memset(&c, 0x11, sizeof c);
        struct node_credentials before = c;
        int rc = node_credentials_load(path, &c, &err);
        CHECK_EQ(rc, -EINVAL);
        CHECK_STR(err.field, cases[i].field);
        char head[256];
        snprintf(head, sizeof head, "%s: %s: ", path, cases[i].field);
        CHECK_CONTAINS(err.msg, head);
        CHECK_CONTAINS(err.msg, cases[i].says);
        CHECK(memcmp(&c, &before, sizeof c) == 0); /* written only on success */
    }
    /* upper-case hex: the token is compared as text at HQ, so refused */
    snprintf(text, sizeof text,
             "{\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"region\":\"KE\","
             "\"token\":\"%s\",\"hq_key\":\"%s\"}",
             upper, KEYHEX);
    CHECK_EQ(load_text(path, text, &c, &err), -EINVAL);
    CHECK_STR(err.field, "token");
    /* not JSON, not an object, a duplicate key */
    CHECK_EQ(load_text(path, "{\"format\":", &c, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "not valid JSON");
    CHECK_EQ(load_text(path, "[]", &c, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "not a JSON object");
    snprintf(text, sizeof text,
             "{\"format\":\"outpost-node-credentials-1\",\"node_id\":\"n1\",\"node_id\":\"n2\","
             "\"region\":\"KE\",\"token\":\"%s\",\"hq_key\":\"%s\"}",
             TOKEN, KEYHEX);
    CHECK_EQ(load_text(path, text, &c, &err), -EINVAL);
    /* too large to be credentials */
    char *big = malloc(NODE_CREDENTIALS_MAX_BYTES + 100);
    memset(big, ' ', NODE_CREDENTIALS_MAX_BYTES + 99);
    big[0] = '{';
    big[NODE_CREDENTIALS_MAX_BYTES + 98] = '}';
    big[NODE_CREDENTIALS_MAX_BYTES + 99] = '\0';
    put(path, big, 0600);
    free(big);
    CHECK_EQ(node_credentials_load(path, &c, &err), -EFBIG);
    unlink(path);
}

int main(void)
{
    fx_mkdtemp("node-credentials", dir, sizeof dir);
    RUN(test_node_id_valid);
    RUN(test_generate_write_load);
    RUN(test_mode_refused);
    RUN(test_bad_content);
    CHECK_EQ(fx_count_entries(dir), 0);
    CHECK_EQ(rmdir(dir), 0);
    return tl_report();
}
