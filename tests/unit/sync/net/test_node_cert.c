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

/* X509_verify_cert's result for leaf under ca; *why gets the error. */
static int verify_err(X509 *ca, X509 *leaf, int *why)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = -1;
    *why = -1;
    if (store && ctx && X509_STORE_add_cert(store, ca) == 1 &&
        X509_STORE_CTX_init(ctx, store, leaf, NULL) == 1 &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) == 1) {
        ok = X509_verify_cert(ctx);
        *why = X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

/* verify_err, saying why on stderr when leaf is refused. */
static int verify(X509 *ca, X509 *leaf)
{
    int why;
    int ok = verify_err(ca, leaf, &why);
    if (ok != 1 && why != -1)
        fprintf(stderr, "verify: %s\n", X509_verify_cert_error_string(why));
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
    int rc = node_cert_create(dir, &h, 0, 0, &res, &err);
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
    CHECK_EQ(node_cert_parse_hosts("www.outpost.branch.lan,192.168.1.10", &h, &err), 0);
    CHECK_EQ(node_cert_create(dir, &h, 90, 0, &res, &err), 0);
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
        CHECK_EQ(X509_check_ip_asc(chain2[0], "192.168.1.10", 0), 1);
        CHECK(X509_check_ip_asc(chain2[0], "::1", 0) != 1);
        CHECK_EQ(X509_check_host(chain2[0], "www.outpost.branch.lan", 0, 0, NULL), 1);
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
    CHECK_EQ(node_cert_create(subdir("days"), &h, NODE_CERT_DAYS_MAX + 1, 0, NULL, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "browsers refuse");
    CHECK_EQ(mode_of(subdir("days")), -1);
    struct node_cert_hosts none = {0};
    CHECK_EQ(node_cert_create(subdir("days"), &none, 0, 0, NULL, &err), -EINVAL);

    /* A CA key without its certificate: refused, nothing written. */
    const char *a = subdir("a");
    CHECK_EQ(node_cert_create(a, &h, 0, 0, NULL, &err), 0);
    const char *lone = subdir("lone");
    CHECK_EQ(mkdir(lone, 0700), 0);
    CHECK_EQ(copy_file(in_dir(a, "ca.key"), in_dir(lone, "ca.key")), 0);
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(lone, &h, 0, 0, NULL, &err), -EEXIST);
    CHECK_CONTAINS(err.msg, "ca.key but not");
    CHECK_EQ(mode_of(in_dir(lone, "node.pem")), -1);
    CHECK_EQ(mode_of(in_dir(lone, "ca.pem")), -1);

    /* A key and a certificate from two different CAs. */
    const char *b = subdir("b");
    CHECK_EQ(node_cert_create(b, &h, 0, 0, NULL, &err), 0);
    CHECK_EQ(copy_file(in_dir(b, "ca.pem"), in_dir(lone, "ca.pem")), 0);
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(lone, &h, 0, 0, NULL, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "does not belong to");

    /* Garbage in the key file. */
    FILE *fp = fopen(in_dir(lone, "ca.key"), "w");
    if (fp) {
        fputs("not a key\n", fp);
        fclose(fp);
    }
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(lone, &h, 0, 0, NULL, &err), -EIO);
    CHECK_CONTAINS(err.msg, "not a readable unencrypted private key");

    /* A directory whose parent is missing. */
    op_error_clear(&err);
    CHECK_EQ(node_cert_create(subdir("missing/deeper"), &h, 0, 0, NULL, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "missing/deeper");
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    return k;
}

static int add_ext_txt(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

/* What a thief of ca.key could do: a server certificate for any SAN
 * ("DNS:bank.example", "IP:10.9.9.9"), signed with the CA's key. */
static X509 *forge(X509 *ca, EVP_PKEY *ca_key, const char *cn, const char *san)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    int ok =
        k && x && n && X509_set_version(x, X509_VERSION_3) &&
        ASN1_INTEGER_set(X509_get_serialNumber(x), 4242) &&
        X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
        X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, k) &&
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
        X509_set_subject_name(x, n) && X509_set_issuer_name(x, X509_get_subject_name(ca)) &&
        add_ext_txt(x, ca, NID_basic_constraints, "critical,CA:FALSE") &&
        add_ext_txt(x, ca, NID_ext_key_usage, "serverAuth") &&
        add_ext_txt(x, ca, NID_authority_key_identifier, "keyid:always") &&
        add_ext_txt(x, ca, NID_subject_alt_name, san) && X509_sign(x, ca_key, EVP_sha256());
    X509_NAME_free(n);
    EVP_PKEY_free(k);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Loads dir's CA and checks forged leaves: each of `bad` must fail
 * verification with a name-constraints error, each of `good` verify. */
static void check_forgeries(const char *dir, const char *const *good, const char *const *bad)
{
    X509 *ca[1] = {NULL};
    CHECK_EQ(read_certs(in_dir(dir, "ca.pem"), ca, 1), 1);
    EVP_PKEY *key = read_key(in_dir(dir, "ca.key"));
    CHECK(key != NULL);
    if (!ca[0] || !key)
        return;
    for (; *good; good++) {
        X509 *leaf = forge(ca[0], key, "leaf", *good);
        CHECK(leaf != NULL);
        int why = 0;
        if (leaf && verify_err(ca[0], leaf, &why) != 1)
            fprintf(stderr, "%s: %s\n", *good, X509_verify_cert_error_string(why));
        CHECK(leaf && verify_err(ca[0], leaf, &why) == 1);
        X509_free(leaf);
    }
    for (; *bad; bad++) {
        X509 *leaf = forge(ca[0], key, "leaf", *bad);
        CHECK(leaf != NULL);
        int why = 0;
        if (!leaf)
            continue;
        CHECK(verify_err(ca[0], leaf, &why) != 1);
        if (why != X509_V_ERR_PERMITTED_VIOLATION && why != X509_V_ERR_EXCLUDED_VIOLATION)
            fprintf(stderr, "%s: %s\n", *bad, X509_verify_cert_error_string(why));
        CHECK(why == X509_V_ERR_PERMITTED_VIOLATION || why == X509_V_ERR_EXCLUDED_VIOLATION);
        X509_free(leaf);
    }
    EVP_PKEY_free(key);
    X509_free(ca[0]);
}

static void name_constraints(void)
{
    struct node_cert_hosts h;
    struct op_error err;
    const char *dir = subdir("nc");
    CHECK_EQ(node_cert_parse_hosts("outpost.branch.lan,192.168.1.10", &h, &err), 0);
    CHECK_EQ(node_cert_create(dir, &h, 0, 0, NULL, &err), 0);

    /* The CA carries critical name constraints; our own leaf verifies. */
    X509 *ca[1] = {NULL}, *chain[2] = {NULL, NULL};
    CHECK_EQ(read_certs(in_dir(dir, "ca.pem"), ca, 1), 1);
    CHECK_EQ(read_certs(in_dir(dir, "node.pem"), chain, 2), 2);
    if (ca[0] && chain[0]) {
        int crit = 0;
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca[0], NID_name_constraints, &crit, NULL);
        CHECK(nc != NULL);
        CHECK_EQ(crit, 1);
        NAME_CONSTRAINTS_free(nc);
        CHECK_EQ(verify(ca[0], chain[0]), 1);
    }
    X509_free(ca[0]);
    X509_free(chain[0]);
    X509_free(chain[1]);

    /* A stolen CA key cannot make devices trust it for anything else. */
    static const char *const good[] = {"DNS:outpost.branch.lan", "DNS:api.outpost.branch.lan",
                                       "IP:192.168.1.10", NULL};
    static const char *const bad[] = {"DNS:bank.example",
                                      "DNS:branch.lan",
                                      "DNS:evil-outpost.branch.lan.example",
                                      "IP:10.9.9.9",
                                      "IP:192.168.1.11",
                                      "IP:2001:db8::1",
                                      "DNS:outpost.branch.lan,DNS:bank.example",
                                      NULL};
    check_forgeries(dir, good, bad);

    /* A CA made for addresses only still refuses every DNS name, and one
     * made for names only every address. */
    CHECK_EQ(node_cert_parse_hosts("10.0.0.2", &h, &err), 0);
    CHECK_EQ(node_cert_create(subdir("nc-ip"), &h, 0, 0, NULL, &err), 0);
    static const char *const ip_good[] = {"IP:10.0.0.2", NULL};
    static const char *const ip_bad[] = {"DNS:bank.example", "IP:10.0.0.3", "IP:::1", NULL};
    check_forgeries(subdir("nc-ip"), ip_good, ip_bad);
    CHECK_EQ(node_cert_parse_hosts("outpost.lan", &h, &err), 0);
    CHECK_EQ(node_cert_create(subdir("nc-dns"), &h, 0, 0, NULL, &err), 0);
    static const char *const dns_good[] = {"DNS:outpost.lan", NULL};
    static const char *const dns_bad[] = {"IP:8.8.8.8", "IP:2001:db8::1", "DNS:lan", NULL};
    check_forgeries(subdir("nc-dns"), dns_good, dns_bad);

    /* Asking the reused CA for a host outside its names: refused, nothing
     * written. */
    char *before = slurp(in_dir(dir, "node.pem"));
    static const char *outside[] = {"bank.example", "outpost.branch.lan,10.9.9.9", "branch.lan",
                                    "::1"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        CHECK_EQ(node_cert_parse_hosts(outside[i], &h, &err), 0);
        op_error_clear(&err);
        CHECK_EQ(node_cert_create(dir, &h, 0, 0, NULL, &err), -EPERM);
        CHECK_CONTAINS(err.msg, "is outside the names the local CA");
        CHECK_CONTAINS(err.msg, "--new-ca");
    }
    char *after = slurp(in_dir(dir, "node.pem"));
    CHECK(before && after && !strcmp(before, after));
    free(before);
    free(after);

    /* --new-ca: the old CA moves aside, a new one covers the new names. */
    char *old_ca = slurp(in_dir(dir, "ca.pem"));
    CHECK_EQ(node_cert_parse_hosts("outpost.branch.lan,10.9.9.9", &h, &err), 0);
    struct node_cert_result res;
    CHECK_EQ(node_cert_create(dir, &h, 0, NODE_CERT_NEW_CA, &res, &err), 0);
    CHECK_EQ(res.ca_created, 1);
    CHECK_EQ(res.ca_replaced, 1);
    char *new_ca = slurp(in_dir(dir, "ca.pem"));
    CHECK(old_ca && new_ca && strcmp(old_ca, new_ca) != 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "test $(ls '%s' | grep -c '^ca.pem.replaced-') = 1 && "
             "test $(ls '%s' | grep -c '^ca.key.replaced-') = 1 && "
             "test $(stat -c %%a '%s'/ca.key.replaced-*) = 600",
             dir, dir, dir);
    CHECK_EQ(system(cmd), 0);
    free(old_ca);
    free(new_ca);
}

/* A CA from before name constraints: still used, but reported, and
 * --new-ca replaces it with a constrained one. */
static void unconstrained_ca(void)
{
    const char *dir = subdir("legacy");
    CHECK_EQ(mkdir(dir, 0755), 0);
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    int ok = k && x && n && X509_set_version(x, X509_VERSION_3) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), 7) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) && X509_set_pubkey(x, k) &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)"old CA", -1,
                                        -1, 0) &&
             X509_set_subject_name(x, n) && X509_set_issuer_name(x, n) &&
             add_ext_txt(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
             add_ext_txt(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext_txt(x, x, NID_subject_key_identifier, "hash") && X509_sign(x, k, EVP_sha256());
    CHECK(ok);
    FILE *kf = fopen(in_dir(dir, "ca.key"), "w"), *cf = fopen(in_dir(dir, "ca.pem"), "w");
    CHECK(kf && cf);
    if (ok && kf && cf) {
        CHECK(PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL));
        CHECK(PEM_write_X509(cf, x));
    }
    if (kf)
        fclose(kf);
    if (cf)
        fclose(cf);
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(k);

    struct node_cert_hosts h;
    struct op_error err;
    CHECK_EQ(node_cert_parse_hosts("outpost.lan", &h, &err), 0);
    struct node_cert_result res;
    CHECK_EQ(node_cert_create(dir, &h, 0, 0, &res, &err), 0);
    CHECK_EQ(res.ca_created, 0);
    CHECK_EQ(res.ca_unconstrained, 1);
    CHECK_EQ(node_cert_create(dir, &h, 0, NODE_CERT_NEW_CA, &res, &err), 0);
    CHECK_EQ(res.ca_created, 1);
    CHECK_EQ(res.ca_replaced, 1);
    CHECK_EQ(res.ca_unconstrained, 0);
    /* Twice in the same second: both old CAs are kept. */
    CHECK_EQ(node_cert_create(dir, &h, 0, NODE_CERT_NEW_CA, &res, &err), 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c '^ca.key.replaced-') = 2", dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(node_cert_create(dir, &h, 0, 0, &res, &err), 0);
    CHECK_EQ(res.ca_created, 0);
    CHECK_EQ(res.ca_unconstrained, 0);
    static const char *const good[] = {"DNS:outpost.lan", NULL};
    static const char *const bad[] = {"DNS:bank.example", "IP:10.0.0.1", NULL};
    check_forgeries(dir, good, bad);
}

/* This machine's names: never loopback, and a listen on one address
 * gives that address. */
static void local_hosts(void)
{
    struct node_cert_hosts h;
    struct op_error err;
    op_error_clear(&err);
    int rc = node_cert_local_hosts(NULL, &h, &err);
    if (rc == -ENOENT)
        return; /* a sandbox without a host name or an address */
    CHECK_EQ(rc, 0);
    for (size_t i = 0; i < h.n; i++) {
        CHECK(strcmp(h.name[i], "127.0.0.1") != 0);
        CHECK(strcmp(h.name[i], "::1") != 0);
        CHECK(strcmp(h.name[i], "localhost") != 0);
    }
    CHECK_EQ(node_cert_local_hosts("192.0.2.7:8443", &h, &err), 0);
    int found = 0;
    for (size_t i = 0; i < h.n; i++)
        found |= !strcmp(h.name[i], "192.0.2.7") && h.is_ip[i];
    CHECK(found);
    CHECK(h.n <= 2); /* that address and perhaps the host name */
}

int main(void)
{
    fx_tmpdir("cert");
    RUN(parse_hosts);
    RUN(create_and_verify);
    RUN(refuses_broken_ca);
    RUN(name_constraints);
    RUN(unconstrained_ca);
    RUN(local_hosts);
    return fx_finish();
}
