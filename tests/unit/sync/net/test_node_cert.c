/* Tests for sync/net/node_cert.c: host list parsing, a CA and a node
 * certificate that OpenSSL verifies for the listed names and addresses, key
 * file modes, reuse of an existing CA and refusal of a broken one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "node_cert.h"
#include "fixture.h"
#include "testlib.h"

/* dir/name; up to four results stay valid at a time. */
static const char *in_dir(const char *dir, const char *name)
{
    static char buf[4][400];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

/* fx_dir/name; up to four results stay valid at a time. */
static const char *subdir(const char *name)
{
    static char buf[4][300];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", fx_dir, name);
    return buf[i];
}

static int mode_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int)(sb.st_mode & 0777) : -1;
}

/* Reads every certificate in a PEM file; returns how many (up to max). */
static int read_certs(const char *path, X509 **out, int max)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    int n = 0;
    X509 *x;
    while (n < max && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
        out[n++] = x;
    fclose(fp);
    return n;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 65536);
    if (buf)
        (void)fread(buf, 1, 65535, fp);
    fclose(fp);
    return buf;
}

static void parse_hosts(void)
{
    struct node_cert_hosts h;
    struct op_error err;
    CHECK_EQ(node_cert_parse_hosts(" Outpost.Branch.LAN , 192.168.1.10,[::1],outpost.branch.lan.,"
                                   "localhost,2001:DB8::1",
                                   &h, &err),
             0);
    CHECK_EQ(h.n, 5);
    CHECK_STR(h.name[0], "outpost.branch.lan");
    CHECK_EQ(h.is_ip[0], 0);
    CHECK_STR(h.name[1], "192.168.1.10");
    CHECK_EQ(h.is_ip[1], 1);
    CHECK_STR(h.name[2], "::1");
    CHECK_EQ(h.is_ip[2], 1);
    CHECK_STR(h.name[3], "localhost");
    CHECK_STR(h.name[4], "2001:db8::1");

    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"", "entry 1 is empty"},
        {"a.lan,,b.lan", "entry 2 is empty"},
        {"exa mple.lan", "'exa mple.lan' is neither"},
        {"-bad.lan", "neither an IP address"},
        {"bad-.lan", "neither an IP address"},
        {"a..lan", "neither an IP address"},
        {"192.168.1.300", "neither an IP address"},
        {"*.branch.lan", "wildcards are not supported"},
        {"under_score.lan", "neither an IP address"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_error_clear(&err);
        CHECK_EQ(node_cert_parse_hosts(bad[i].in, &h, &err), -EINVAL);
        CHECK_CONTAINS(err.msg, bad[i].msg);
    }
    char many[33 * 8 + 1] = "";
    for (int i = 0; i < 33; i++) {
        char one[9];
        snprintf(one, sizeof one, "%sh%d", i ? "," : "", i);
        strncat(many, one, sizeof many - strlen(many) - 1);
    }
    op_error_clear(&err);
    CHECK_EQ(node_cert_parse_hosts(many, &h, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "more than 32");
    char label[70];
    memset(label, 'a', 64);
    memcpy(label + 64, ".lan", 5);
    CHECK_EQ(node_cert_parse_hosts(label, &h, &err), -EINVAL); /* a 64-byte label */
    memcpy(label + 63, ".lan", 5);                             /* 63 is the limit */
    CHECK_EQ(node_cert_parse_hosts(label, &h, &err), 0);
    CHECK_EQ(node_cert_parse_hosts(NULL, &h, &err), -EINVAL);
}

static int verify(X509 *ca, X509 *leaf)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = -1;
    if (store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
        X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1 &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) == 1) {
        ok = X509_verify_cert(ctx);
        if (ok != 1)
            fprintf(stderr, "verify: %s\n",
                    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static int key_matches(const char *key_path, X509 *cert)
{
    FILE *fp = fopen(key_path, "r");
    if (!fp)
        return 0;
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    int ok = k && X509_check_private_key(cert, k) == 1;
    EVP_PKEY_free(k);
    return ok;
}

static void create_and_verify(void)
{
    const char *dir = subdir("node"); /* made by node_cert_create */
    struct node_cert_hosts h;
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(node_cert_parse_hosts("outpost.branch.lan,192.168.1.10,::1", &h, &err), 0);
    struct node_cert_result res;
    int rc = node_cert_create(dir, &h, 0, &res, &err);
    if (rc)
        fprintf(stderr, "create: %s\n", err.msg);
    CHECK_EQ(rc, 0);
    CHECK_EQ(res.ca_created, 1);
    CHECK_EQ(strlen(res.ca_fingerprint), 95);

    CHECK_EQ(mode_of(in_dir(dir, "ca.key")), 0600);
    CHECK_EQ(mode_of(in_dir(dir, "node.key")), 0600);
    CHECK_EQ(mode_of(in_dir(dir, "ca.pem")), 0644);
    CHECK_EQ(mode_of(in_dir(dir, "node.pem")), 0644);

    X509 *ca[2] = {NULL, NULL}, *chain[3] = {NULL, NULL, NULL};
    CHECK_EQ(read_certs(in_dir(dir, "ca.pem"), ca, 2), 1);
    CHECK_EQ(read_certs(in_dir(dir, "node.pem"), chain, 3), 2);
    if (!ca[0] || !chain[0] || !chain[1])
        return;
    CHECK_EQ(X509_cmp(chain[1], ca[0]), 0); /* node.pem carries the CA after the leaf */
    CHECK_EQ(verify(ca[0], chain[0]), 1);

    /* The CA is a CA that can sign and nothing else; the leaf is a server. */
    CHECK_EQ(X509_check_ca(ca[0]), 1);
    CHECK(X509_get_key_usage(ca[0]) & KU_KEY_CERT_SIGN);
    CHECK_EQ(X509_check_ca(chain[0]), 0);
    CHECK(X509_get_extended_key_usage(chain[0]) & XKU_SSL_SERVER);
    CHECK_EQ(X509_check_host(chain[0], "outpost.branch.lan", 0, 0, NULL), 1);
    CHECK_EQ(X509_check_ip_asc(chain[0], "192.168.1.10", 0), 1);
    CHECK_EQ(X509_check_ip_asc(chain[0], "::1", 0), 1);
    CHECK(X509_check_host(chain[0], "other.branch.lan", 0, 0, NULL) != 1);
    CHECK(X509_check_ip_asc(chain[0], "192.168.1.11", 0) != 1);

    int days = 0, secs = 0;
    CHECK_EQ(
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(chain[0]), X509_get0_notAfter(chain[0])),
        1);
    CHECK(days * 86400LL + secs <= NODE_CERT_DAYS_MAX * 86400LL);
    CHECK(days >= NODE_CERT_DAYS_MAX - 1);
    CHECK_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca[0]), X509_get0_notAfter(ca[0])),
             1);
    CHECK_EQ(days, NODE_CERT_CA_DAYS);
    CHECK(X509_cmp_current_time(X509_get0_notBefore(chain[0])) < 0); /* valid now */
    CHECK(key_matches(in_dir(dir, "node.key"), chain[0]));
    CHECK(key_matches(in_dir(dir, "ca.key"), ca[0]));

    /* A second run reuses the CA (same file, same fingerprint) and issues
     * a new certificate with a new key that still verifies. */
    char *ca_before = slurp(in_dir(dir, "ca.pem"));
    char *key_before = slurp(in_dir(dir, "node.key"));
    char fp_before[NODE_CERT_FINGERPRINT_LEN];
    memcpy(fp_before, res.ca_fingerprint, sizeof fp_before);
    CHECK_EQ(node_cert_parse_hosts("outpost.branch.lan,10.1.2.3", &h, &err), 0);
    CHECK_EQ(node_cert_create(dir, &h, 90, &res, &err), 0);
    CHECK_EQ(res.ca_created, 0);
    CHECK_STR(res.ca_fingerprint, fp_before);
    char *ca_after = slurp(in_dir(dir, "ca.pem"));
    char *key_after = slurp(in_dir(dir, "node.key"));
    CHECK(ca_before && ca_after && !strcmp(ca_before, ca_after));
    CHECK(key_before && key_after && strcmp(key_before, key_after) != 0);
    X509 *chain2[3] = {NULL, NULL, NULL};
    CHECK_EQ(read_certs(in_dir(dir, "node.pem"), chain2, 3), 2);
    if (chain2[0]) {
        CHECK_EQ(verify(ca[0], chain2[0]), 1);
        CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(chain[0]),
                               X509_get0_serialNumber(chain2[0])) != 0);
        CHECK_EQ(X509_check_ip_asc(chain2[0], "10.1.2.3", 0), 1);
        CHECK(X509_check_ip_asc(chain2[0], "192.168.1.10", 0) != 1);
        CHECK_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(chain2[0]),
                                X509_get0_notAfter(chain2[0])),
                 1);
        CHECK_EQ(days, 90);
        CHECK(key_matches(in_dir(dir, "node.key"), chain2[0]));
    }
    /* No temporary files are left behind. */
    char cmd[500];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep tmp)\"", dir);
    CHECK_EQ(system(cmd), 0);

    free(ca_before);
    free(ca_after);
    free(key_before);
    free(key_after);
    for (int i = 0; i < 3; i++) {
        X509_free(chain[i]);
        X509_free(chain2[i]);
    }
    X509_free(ca[0]);
}

static int copy_file(const char *from, const char *to)
{
    char cmd[900];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    return system(cmd);
}

static void refuses_broken_ca(void)
{
    struct node_cert_hosts h;
    struct op_error err;
    CHECK_EQ(node_cert_parse_hosts("outpost.lan", &h, &err), 0);

    /* Bad day counts and no hosts change nothing. */
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(subdir("days"), &h, NODE_CERT_DAYS_MAX + 1, NULL, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "browsers refuse");
    CHECK_EQ(mode_of(subdir("days")), -1);
    struct node_cert_hosts none = {0};
    CHECK_EQ(node_cert_create(subdir("days"), &none, 0, NULL, &err), -EINVAL);

    /* A CA key without its certificate: refused, nothing written. */
    const char *a = subdir("a");
    CHECK_EQ(node_cert_create(a, &h, 0, NULL, &err), 0);
    const char *lone = subdir("lone");
    CHECK_EQ(mkdir(lone, 0700), 0);
    CHECK_EQ(copy_file(in_dir(a, "ca.key"), in_dir(lone, "ca.key")), 0);
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(lone, &h, 0, NULL, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "ca.key but not");
    CHECK_EQ(mode_of(in_dir(lone, "node.pem")), -1);
    CHECK_EQ(mode_of(in_dir(lone, "ca.pem")), -1);

    /* A key and a certificate from two different CAs. */
    const char *b = subdir("b");
    CHECK_EQ(node_cert_create(b, &h, 0, NULL, &err), 0);
    CHECK_EQ(copy_file(in_dir(b, "ca.pem"), in_dir(lone, "ca.pem")), 0);
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(lone, &h, 0, NULL, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "does not belong to");

    /* Garbage in the key file. */
    FILE *fp = fopen(in_dir(lone, "ca.key"), "w");
    if (fp) {
        fputs("not a key\n", fp);
        fclose(fp);
    }
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(lone, &h, 0, NULL, &err), -EIO);
    CHECK_CONTAINS(err.msg, "not a readable unencrypted private key");

    /* A directory whose parent is missing. */
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(subdir("missing/deeper"), &h, 0, NULL, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "missing/deeper");
}

int main(void)
{
    fx_tmpdir("cert");
    RUN(parse_hosts);
    RUN(create_and_verify);
    RUN(refuses_broken_ca);
    return fx_finish();
}
