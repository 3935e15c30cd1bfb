/*
 * The node's local CA and server certificate, made with the OpenSSL 3 API;
 * see node_cert.h. The invariant: a private key exists only in a file of
 * mode 0600, and every file is replaced atomically, so a crash leaves the
 * previous certificate (or none), never half a file.
 *
 * Why a local CA rather than a self-signed server certificate: browsers
 * make a user click through a self-signed certificate on every renewal and
 * every new host name, and some refuse to remember the exception at all.
 * A CA certificate is installed once per device, after which the node can
 * renew its own certificate every couple of years without anyone noticing.
 * Keys are EC P-256: accepted by every browser and OS the staff will use,
 * small and fast on a small ARM board. The CA may only sign end-entity
 * certificates (pathlen 0), so a stolen CA key cannot mint further CAs,
 * and only for the node's own names and addresses (critical
 * nameConstraints), so it cannot mint a certificate for a bank or a mail
 * server that the branch's devices would trust.
 */
#include "node_cert.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* ---- host names ------------------------------------------------------------ */

static int dns_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    int label_digits_only = 1;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? h[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return 0;
            if (i == n && label_digits_only)
                return 0; /* a numeric top label: a mistyped IP address */
            label = 0;
            label_digits_only = 1;
            continue;
        }
        if (!isalnum((unsigned char)c) && !(c == '-' && label > 0))
            return 0;
        if (!isdigit((unsigned char)c))
            label_digits_only = 0;
        label++;
    }
    return 1;
}

int node_cert_parse_hosts(const char *list, struct node_cert_hosts *out, struct op_error *err)
{
    memset(out, 0, sizeof *out);
    if (!list)
        return op_error_set(err, -EINVAL, "hosts", "hosts: none given");
    const char *p = list;
    for (int pos = 1;; pos++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        char h[NODE_CERT_HOST_LEN + 2];
        if (len == 0)
            return op_error_set(err, -EINVAL, "hosts", "hosts: entry %d is empty", pos);
        if (len >= sizeof h)
            return op_error_set(err, -EINVAL, "hosts", "hosts: entry %d is longer than 253 bytes",
                                pos);
        memcpy(h, p, len);
        h[len] = '\0';
        /* "[::1]" as in URLs */
        if (h[0] == '[' && h[len - 1] == ']') {
            memmove(h, h + 1, len - 2);
            h[len - 2] = '\0';
            len -= 2;
        }
        char canon[NODE_CERT_HOST_LEN];
        unsigned char bin[16];
        int is_ip = 1;
        if (inet_pton(AF_INET, h, bin) == 1) {
            inet_ntop(AF_INET, bin, canon, sizeof canon);
        } else if (inet_pton(AF_INET6, h, bin) == 1) {
            inet_ntop(AF_INET6, bin, canon, sizeof canon);
        } else {
            is_ip = 0;
            if (len > 0 && h[len - 1] == '.')
                h[--len] = '\0';
            if (strchr(h, '*'))
                return op_error_set(err, -EINVAL, "hosts",
                                    "hosts: '%s': wildcards are not supported; list each name", h);
            if (!dns_name_ok(h, len))
                return op_error_set(err, -EINVAL, "hosts",
                                    "hosts: '%s' is neither an IP address nor a host name "
                                    "(letters, digits, inner hyphens, dots)",
                                    h);
            for (size_t i = 0; i < len; i++)
                canon[i] = (char)tolower((unsigned char)h[i]);
            canon[len] = '\0';
        }
        int dup = 0;
        for (size_t i = 0; i < out->n; i++)
            dup |= !strcmp(out->name[i], canon);
        if (!dup) {
            if (out->n == NODE_CERT_HOSTS_MAX)
                return op_error_set(err, -EINVAL, "hosts", "hosts: more than %d",
                                    NODE_CERT_HOSTS_MAX);
            snprintf(out->name[out->n], NODE_CERT_HOST_LEN, "%s", canon);
            out->is_ip[out->n] = is_ip;
            out->n++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* ---- errors and files --------------------------------------------------------- */

/* Reports an OpenSSL failure with the library's own reason, once. */
static int ssl_fail(struct op_error *err, const char *what)
{
    char reason[256] = "unknown reason";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    return op_error_set(err, -EIO, NULL, "cannot %s: %s", what, reason);
}

static int sys_fail(struct op_error *err, int e, const char *what, const char *path)
{
    return op_error_set(err, -e, NULL, "cannot %s %s: %s", what, path, strerror(e));
}

static int join(char *out, size_t cap, const char *dir, const char *name, struct op_error *err)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return op_error_set(err, -ENAMETOOLONG, NULL, "path too long: %s/%s", dir, name);
    return 0;
}

/* Writes data to dir/name: a temporary file of `mode` in the same
 * directory, fsync, rename over the name, fsync of the directory. */
static int write_atomic(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                        mode_t mode, struct op_error *err)
{
    char final[PATH_MAX], tmp[PATH_MAX];
    int rc = join(final, sizeof final, dir, name, err);
    if (rc < 0)
        return rc;
    int n = snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", dir, name);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return op_error_set(err, -ENAMETOOLONG, NULL, "path too long: %s", final);
    int fd = mkostemp(tmp, O_CLOEXEC); /* created 0600: a key is never readable by others */
    if (fd < 0)
        return sys_fail(err, errno, "create a file in", dir);
    const char *p = data;
    size_t left = len;
    if (fchmod(fd, mode) < 0) {
        rc = sys_fail(err, errno, "set the mode of", tmp);
        goto fail;
    }
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = sys_fail(err, errno, "write", tmp);
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) < 0) {
        rc = sys_fail(err, errno, "sync", tmp);
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = sys_fail(err, errno, "close", tmp);
        goto fail;
    }
    fd = -1;
    if (rename(tmp, final) < 0) {
        rc = sys_fail(err, errno, "rename into place", final);
        goto fail;
    }
    if (fsync(dirfd) < 0)
        return sys_fail(err, errno, "sync the directory", dir);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    (void)unlink(tmp);
    return rc;
}

/* Serializes a key or certificates into a secure memory BIO and writes it. */
static int write_bio(int dirfd, const char *dir, const char *name, BIO *bio, mode_t mode,
                     struct op_error *err)
{
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data)
        return op_error_set(err, -EIO, NULL, "cannot serialize %s", name);
    return write_atomic(dirfd, dir, name, data, (size_t)len, mode, err);
}

static int write_key(int dirfd, const char *dir, const char *name, EVP_PKEY *key,
                     struct op_error *err)
{
    BIO *bio = BIO_new(BIO_s_secmem()); /* cleansed when freed */
    if (!bio)
        return ssl_fail(err, "allocate memory for a key");
    int rc;
    if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
        rc = ssl_fail(err, "serialize a private key");
    else
        rc = write_bio(dirfd, dir, name, bio, 0600, err);
    BIO_free(bio);
    return rc;
}

static int write_certs(int dirfd, const char *dir, const char *name, X509 *first, X509 *second,
                       struct op_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        return ssl_fail(err, "allocate memory for a certificate");
    int rc;
    if (!PEM_write_bio_X509(bio, first) || (second && !PEM_write_bio_X509(bio, second)))
        rc = ssl_fail(err, "serialize a certificate");
    else
        rc = write_bio(dirfd, dir, name, bio, 0644, err);
    BIO_free(bio);
    return rc;
}

/* Refuses any passphrase prompt: our keys are not encrypted, and a CLI
 * must not stop to ask on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* ---- certificates -------------------------------------------------------------- */

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (!ext)
        return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Hands key and x out when rc is not negative (and returns 0), else frees
 * both and returns rc. */
static int hand_out(int rc, EVP_PKEY *key, X509 *x, EVP_PKEY **key_out, X509 **cert_out)
{
    if (rc < 0) {
        X509_free(x);
        EVP_PKEY_free(key);
        return rc;
    }
    *key_out = key;
    *cert_out = x;
    return 0;
}

/* The extensions of every certificate made here, in their order: basic
 * constraints, key usage, extended key usage (ext_usage; none when NULL)
 * and the subject's and issuer's key identifiers, for x issued by issuer. */
static int add_key_exts(X509 *x, X509 *issuer, const char *basic, const char *usage,
                        const char *ext_usage)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    return add_ext(x, &ctx, NID_basic_constraints, basic) &&
           add_ext(x, &ctx, NID_key_usage, usage) &&
           (!ext_usage || add_ext(x, &ctx, NID_ext_key_usage, ext_usage)) &&
           add_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
           add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
}

/* A positive random 127-bit serial: unique enough that no two certificates
 * from any node's CA share an issuer and serial in a browser's store. */
static int set_serial(X509 *x)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return 0;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* A new certificate for `key`'s public half with the given subject,
 * issued by `issuer` (NULL: self-issued), valid from an hour ago (clock
 * skew between devices) for `days`. */
static X509_NAME *make_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    if (!n)
        return NULL;
    if (!X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Outpost", -1, -1,
                                    0) ||
        (cn && !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                           -1, 0))) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

/* A certificate for key named O=Outpost, CN=cn (none when cn is NULL),
 * issued by issuer (itself when NULL) for days, without extensions or
 * signature yet; NULL when out of memory. */
static X509 *cert_start(EVP_PKEY *key, const char *cn, X509 *issuer, long days)
{
    X509_NAME *subject = make_name(cn);
    X509 *x = subject ? X509_new() : NULL;
    if (x && (!X509_set_version(x, X509_VERSION_3) || !set_serial(x) ||
              !X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, NULL) ||
              !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, -3600, NULL) ||
              !X509_set_pubkey(x, key) || !X509_set_subject_name(x, subject) ||
              !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject))) {
        X509_free(x);
        x = NULL;
    }
    X509_NAME_free(subject);
    return x;
}

/* One permitted subtree: a DNS name (itself and every name below it) or
 * one IP address (a /32 or /128 range). */
static int push_subtree(STACK_OF(GENERAL_SUBTREE) * st, const char *name, int is_ip)
{
    GENERAL_SUBTREE *sub = GENERAL_SUBTREE_new();
    if (!sub)
        return 0;
    int ok = 0;
    if (is_ip) {
        unsigned char b[32];
        int n = 0;
        if (inet_pton(AF_INET, name, b) == 1)
            n = 4;
        else if (inet_pton(AF_INET6, name, b) == 1)
            n = 16;
        ASN1_OCTET_STRING *o = n ? ASN1_OCTET_STRING_new() : NULL;
        memset(b + n, 0xff, (size_t)n); /* the mask: this one address */
        if (o && ASN1_OCTET_STRING_set(o, b, 2 * n)) {
            GENERAL_NAME_set0_value(sub->base, GEN_IPADD, o);
            ok = 1;
        } else {
            ASN1_OCTET_STRING_free(o);
        }
    } else {
        ASN1_IA5STRING *d = ASN1_IA5STRING_new();
        if (d && ASN1_STRING_set(d, name, -1)) {
            GENERAL_NAME_set0_value(sub->base, GEN_DNS, d);
            ok = 1;
        } else {
            ASN1_IA5STRING_free(d);
        }
    }
    if (ok && !sk_GENERAL_SUBTREE_push(st, sub))
        ok = 0;
    if (!ok)
        GENERAL_SUBTREE_free(sub);
    return ok;
}

/* The CA may sign only for the hosts it was made for (critical
 * nameConstraints, RFC 5280 4.2.1.10). A constraint binds only the name
 * types it lists, so both types are always listed: with no DNS name given
 * the DNS subtree is "invalid" (a reserved name nothing resolves to), with
 * no address the IP subtrees are 0.0.0.0/32 and ::/128. Otherwise a CA
 * made for addresses alone could sign for any DNS name, and the reverse. */
static int add_name_constraints(X509 *x, const struct node_cert_hosts *hosts)
{
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    if (!nc)
        return 0;
    nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
    int ok = nc->permittedSubtrees != NULL, dns = 0, ip = 0;
    for (size_t i = 0; ok && i < hosts->n; i++) {
        ok = push_subtree(nc->permittedSubtrees, hosts->name[i], hosts->is_ip[i]);
        dns |= !hosts->is_ip[i];
        ip |= hosts->is_ip[i];
    }
    if (ok && !dns)
        ok = push_subtree(nc->permittedSubtrees, "invalid", 0);
    if (ok && !ip)
        ok = push_subtree(nc->permittedSubtrees, "0.0.0.0", 1) &&
             push_subtree(nc->permittedSubtrees, "::", 1);
    ok = ok && X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) == 1;
    NAME_CONSTRAINTS_free(nc);
    return ok;
}

static int make_ca(const struct node_cert_hosts *hosts, EVP_PKEY **key_out, X509 **cert_out,
                   struct op_error *err)
{
    EVP_PKEY *key = new_key();
    if (!key)
        return ssl_fail(err, "generate the CA key");
    /* A random tag tells this node's CA from another's in a device's
     * certificate list, even when both nodes are called outpost.local. */
    unsigned char tag[4];
    if (RAND_bytes(tag, sizeof tag) != 1) {
        EVP_PKEY_free(key);
        return ssl_fail(err, "get random bytes");
    }
    char cn[65];
    snprintf(cn, sizeof cn, "Outpost local CA %02x%02x%02x%02x %.37s", tag[0], tag[1], tag[2],
             tag[3], hosts->name[0]);
    X509 *x = cert_start(key, cn, NULL, NODE_CERT_CA_DAYS);
    int ok =
        x &&
        add_key_exts(x, x, "critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", NULL) &&
        add_name_constraints(x, hosts) && X509_sign(x, key, EVP_sha256()) > 0;
    return hand_out(ok ? 0 : ssl_fail(err, "make the CA certificate"), key, x, key_out, cert_out);
}

static int add_san(X509 *x, const struct node_cert_hosts *hosts)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return 0;
    int ok = 1;
    for (size_t i = 0; ok && i < hosts->n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (!g) {
            ok = 0;
            break;
        }
        if (hosts->is_ip[i]) {
            ASN1_OCTET_STRING *ip = a2i_IPADDRESS(hosts->name[i]);
            if (ip)
                GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
            ok = ip != NULL;
        } else {
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            ok = s && ASN1_STRING_set(s, hosts->name[i], -1);
            if (ok)
                GENERAL_NAME_set0_value(g, GEN_DNS, s);
            else
                ASN1_IA5STRING_free(s);
        }
        if (ok && !sk_GENERAL_NAME_push(gens, g))
            ok = 0;
        if (!ok)
            GENERAL_NAME_free(g);
    }
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

static int make_node(const struct node_cert_hosts *hosts, long days, EVP_PKEY *ca_key, X509 *ca,
                     EVP_PKEY **key_out, X509 **cert_out, struct op_error *err)
{
    EVP_PKEY *key = new_key();
    if (!key)
        return ssl_fail(err, "generate the node key");
    /* The common name is informational (clients match the SAN); it is
     * capped at 64 characters by X.520, so a longer name is left out. It is
     * the first DNS name, never an address: a verifier that checks the CN
     * against the CA's name constraints would read "192.168.1.10" as a DNS
     * name and refuse it. */
    const char *cn = NULL;
    for (size_t i = 0; !cn && i < hosts->n; i++)
        if (!hosts->is_ip[i] && strlen(hosts->name[i]) <= 64)
            cn = hosts->name[i];
    X509 *x = cert_start(key, cn, ca, days);
    int ok = x != NULL;
    if (ok && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0)
        ok = X509_set1_notAfter(x, X509_get0_notAfter(ca)); /* never outlive the CA */
    ok = ok &&
         add_key_exts(x, ca, "critical,CA:FALSE", "critical,digitalSignature", "serverAuth") &&
         add_san(x, hosts) && X509_sign(x, ca_key, EVP_sha256()) > 0;
    return hand_out(ok ? 0 : ssl_fail(err, "make the node certificate"), key, x, key_out, cert_out);
}

/* Loads an existing CA and checks that its key and certificate belong
 * together and that it is still valid. */
static int load_ca(const char *key_path, const char *pem_path, EVP_PKEY **key_out, X509 **cert_out,
                   struct op_error *err)
{
    BIO *kb = BIO_new_file(key_path, "r");
    if (!kb)
        return sys_fail(err, errno ? errno : EIO, "read", key_path);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL);
    BIO_free(kb);
    if (!key) {
        char reason[256] = "unknown reason";
        unsigned long e = ERR_get_error();
        if (e)
            ERR_error_string_n(e, reason, sizeof reason);
        ERR_clear_error();
        return op_error_set(err, -EIO, NULL, "%s: not a readable unencrypted private key (%s)",
                            key_path, reason);
    }
    BIO *cb = BIO_new_file(pem_path, "r");
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
    BIO_free(cb);
    int rc = 0;
    if (!x)
        rc = op_error_set(err, -EIO, NULL, "%s: not a readable PEM certificate", pem_path);
    else if (X509_check_private_key(x, key) != 1)
        rc = op_error_set(err, -EINVAL, NULL,
                          "%s does not belong to %s; restore the pair or "
                          "move both aside to make a new CA",
                          key_path, pem_path);
    else if (X509_check_ca(x) == 0)
        rc = op_error_set(err, -EINVAL, NULL, "%s is not a CA certificate", pem_path);
    else if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        rc = op_error_set(err, -EKEYEXPIRED, NULL,
                          "the CA in %s has expired; move %s and %s "
                          "aside to make a new one (devices must then install it again)",
                          pem_path, key_path, pem_path);
    ERR_clear_error();
    return hand_out(rc, key, x, key_out, cert_out);
}

/* RFC 5280 matching for the two name types the CA lists: a DNS
 * constraint matches the name itself and every name below it; an IP
 * constraint is an address and a mask of the same family. */
static int subtree_matches(const GENERAL_NAME *base, const char *host, int is_ip)
{
    if (is_ip) {
        if (base->type != GEN_IPADD)
            return 0;
        unsigned char a[16];
        int n = inet_pton(AF_INET, host, a) == 1 ? 4 : inet_pton(AF_INET6, host, a) == 1 ? 16 : 0;
        const ASN1_OCTET_STRING *c = base->d.iPAddress;
        if (!n || ASN1_STRING_length(c) != 2 * n)
            return 0;
        const unsigned char *cb = ASN1_STRING_get0_data(c);
        for (int i = 0; i < n; i++)
            if ((a[i] & cb[n + i]) != (cb[i] & cb[n + i]))
                return 0;
        return 1;
    }
    if (base->type != GEN_DNS)
        return 0;
    const char *c = (const char *)ASN1_STRING_get0_data(base->d.dNSName);
    size_t cn = (size_t)ASN1_STRING_length(base->d.dNSName), hn = strlen(host);
    if (cn > 0 && c[0] == '.') { /* ".example.lan": only names below */
        c++;
        cn--;
        if (hn <= cn)
            return 0;
    }
    if (cn == 0)
        return 1;
    if (hn < cn || strncasecmp(host + hn - cn, c, cn))
        return 0;
    return hn == cn || host[hn - cn - 1] == '.';
}

static int subtrees_match(const STACK_OF(GENERAL_SUBTREE) * st, const char *host, int is_ip,
                          int *any_of_type)
{
    int hit = 0;
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(st); i++) {
        const GENERAL_SUBTREE *sub = sk_GENERAL_SUBTREE_value(st, i);
        if (sub->base->type == (is_ip ? GEN_IPADD : GEN_DNS))
            *any_of_type = 1;
        hit |= subtree_matches(sub->base, host, is_ip);
    }
    return hit;
}

/* Refuses hosts the CA's name constraints leave out, before anything is
 * issued: a certificate for them would be rejected by every device. *constrained
 * is 1 when the CA has constraints, 0 for a CA made before they were
 * added (which can sign for any name). */
static int check_hosts_in_ca(X509 *ca, const struct node_cert_hosts *hosts, const char *pem_path,
                             int *constrained, struct op_error *err)
{
    int crit = 0;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, &crit, NULL);
    *constrained = nc != NULL;
    if (!nc)
        return 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < hosts->n; i++) {
        int typed = 0, unused = 0;
        int permitted =
            subtrees_match(nc->permittedSubtrees, hosts->name[i], hosts->is_ip[i], &typed) ||
            !typed;
        int excluded =
            subtrees_match(nc->excludedSubtrees, hosts->name[i], hosts->is_ip[i], &unused);
        if (!permitted || excluded)
            rc = op_error_set(err, -EPERM, "hosts",
                              "hosts: '%s' is outside the names the local CA in %s may sign "
                              "for; use the names it was made for, or make a new CA with "
                              "--new-ca (every device must then install it again)",
                              hosts->name[i], pem_path);
    }
    NAME_CONSTRAINTS_free(nc);
    return rc;
}

/* Moves an existing CA file aside as NAME.replaced-YYYYMMDDTHHMMSSZ (with
 * -2, -3... when that exists), so that --new-ca never destroys a key an
 * admin may still need: link() refuses to replace a file, rename() would
 * not. */
static int move_aside(int dirfd, const char *dir, const char *path, struct op_error *err)
{
    char aside[PATH_MAX], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm))
        snprintf(stamp, sizeof stamp, "%lld", (long long)now);
    for (int i = 1;; i++) {
        int n = i == 1 ? snprintf(aside, sizeof aside, "%s.replaced-%s", path, stamp)
                       : snprintf(aside, sizeof aside, "%s.replaced-%s-%d", path, stamp, i);
        if (n < 0 || (size_t)n >= sizeof aside)
            return op_error_set(err, -ENAMETOOLONG, NULL, "path too long: %s", path);
        if (link(path, aside) == 0)
            break;
        if (errno == ENOENT)
            return 0;
        if (errno != EEXIST || i == 100)
            return sys_fail(err, errno, "move aside", path);
    }
    if (unlink(path) < 0)
        return sys_fail(err, errno, "remove", path);
    if (fsync(dirfd) < 0)
        return sys_fail(err, errno, "sync the directory", dir);
    return 0;
}

static void fingerprint(X509 *x, char out[NODE_CERT_FINGERPRINT_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!X509_digest(x, EVP_sha256(), md, &n))
        return;
    size_t o = 0;
    for (unsigned int i = 0; i < n && o + 3 < NODE_CERT_FINGERPRINT_LEN; i++)
        o += (size_t)snprintf(out + o, NODE_CERT_FINGERPRINT_LEN - o, i ? ":%02X" : "%02X", md[i]);
}

static void date_of(const ASN1_TIME *t, char out[32])
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(out, 32, "%Y-%m-%d", &tm);
    else
        snprintf(out, 32, "?");
}

int node_cert_create(const char *dir, const struct node_cert_hosts *hosts, int days, unsigned flags,
                     struct node_cert_result *res, struct op_error *err)
{
    if (!hosts || hosts->n == 0)
        return op_error_set(err, -EINVAL, "hosts",
                            "hosts: at least one host name or address "
                            "is needed");
    if (days == 0)
        days = NODE_CERT_DAYS_DEFAULT;
    if (days < 1 || days > NODE_CERT_DAYS_MAX)
        return op_error_set(err, -EINVAL, "days",
                            "days: expected 1 to %d (browsers refuse "
                            "longer-lived server certificates)",
                            NODE_CERT_DAYS_MAX);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return sys_fail(err, errno, "create the directory", dir);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return sys_fail(err, errno, "open the directory", dir);

    char ca_key_path[PATH_MAX], ca_pem_path[PATH_MAX];
    EVP_PKEY *ca_key = NULL, *node_key = NULL;
    X509 *ca = NULL, *node = NULL;
    struct node_cert_result r;
    memset(&r, 0, sizeof r);
    int rc = join(ca_key_path, sizeof ca_key_path, dir, NODE_CERT_CA_KEY, err);
    if (rc == 0)
        rc = join(ca_pem_path, sizeof ca_pem_path, dir, NODE_CERT_CA_PEM, err);
    if (rc < 0)
        goto out;
    struct stat sb;
    int have_key = stat(ca_key_path, &sb) == 0, have_pem = stat(ca_pem_path, &sb) == 0;
    if ((flags & NODE_CERT_NEW_CA) && (have_key || have_pem)) {
        rc = move_aside(dirfd, dir, ca_key_path, err);
        if (rc == 0)
            rc = move_aside(dirfd, dir, ca_pem_path, err);
        if (rc < 0)
            goto out;
        r.ca_replaced = 1;
        have_key = have_pem = 0;
    }
    if (have_key != have_pem) {
        rc = op_error_set(err, -EEXIST, NULL,
                          "found %s but not %s; restore it, or move the "
                          "other aside to make a new CA",
                          have_key ? ca_key_path : ca_pem_path,
                          have_key ? ca_pem_path : ca_key_path);
        goto out;
    }
    if (have_key) {
        int constrained = 0;
        rc = load_ca(ca_key_path, ca_pem_path, &ca_key, &ca, err);
        if (rc == 0)
            rc = check_hosts_in_ca(ca, hosts, ca_pem_path, &constrained, err);
        r.ca_unconstrained = rc == 0 && !constrained;
    } else {
        rc = make_ca(hosts, &ca_key, &ca, err);
        /* The key first: a crash between the two renames leaves a key
         * without a certificate, which the next run refuses to overwrite. */
        if (rc == 0)
            rc = write_key(dirfd, dir, NODE_CERT_CA_KEY, ca_key, err);
        if (rc == 0)
            rc = write_certs(dirfd, dir, NODE_CERT_CA_PEM, ca, NULL, err);
        r.ca_created = rc == 0;
    }
    if (rc == 0)
        rc = make_node(hosts, days, ca_key, ca, &node_key, &node, err);
    if (rc == 0)
        rc = write_key(dirfd, dir, NODE_CERT_NODE_KEY, node_key, err);
    if (rc == 0)
        rc = write_certs(dirfd, dir, NODE_CERT_NODE_PEM, node, ca, err);
    if (rc == 0) {
        fingerprint(ca, r.ca_fingerprint);
        date_of(X509_get0_notAfter(node), r.node_not_after);
        if (res)
            *res = r;
    }
out:
    X509_free(node);
    X509_free(ca);
    EVP_PKEY_free(node_key);
    EVP_PKEY_free(ca_key);
    close(dirfd);
    ERR_clear_error();
    return rc;
}

/* ---- this machine's names ----------------------------------------------------- */

static void add_local(struct node_cert_hosts *out, const char *name, int is_ip)
{
    for (size_t i = 0; i < out->n; i++)
        if (!strcmp(out->name[i], name))
            return;
    if (out->n == NODE_CERT_HOSTS_MAX || strlen(name) >= NODE_CERT_HOST_LEN)
        return;
    snprintf(out->name[out->n], NODE_CERT_HOST_LEN, "%s", name);
    out->is_ip[out->n] = is_ip;
    out->n++;
}

/* Addresses staff may type: not loopback, not IPv6 link-local (those need
 * a zone index no browser URL carries). */
static int address_usable(const struct sockaddr *sa, char *out, size_t cap)
{
    if (sa->sa_family == AF_INET) {
        const struct in_addr *a = &((const struct sockaddr_in *)sa)->sin_addr;
        const unsigned char *b = (const unsigned char *)a;
        return b[0] != 127 && b[0] != 0 && inet_ntop(AF_INET, a, out, (socklen_t)cap) != NULL;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a) &&
               !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_V4MAPPED(a) &&
               inet_ntop(AF_INET6, a, out, (socklen_t)cap) != NULL;
    }
    return 0;
}

int node_cert_local_hosts(const char *listen, struct node_cert_hosts *out, struct op_error *err)
{
    memset(out, 0, sizeof *out);
    char name[NODE_CERT_HOST_LEN];
    if (gethostname(name, sizeof name) == 0) {
        name[sizeof name - 1] = '\0';
        size_t n = strlen(name);
        for (size_t i = 0; i < n; i++)
            name[i] = (char)tolower((unsigned char)name[i]);
        if (dns_name_ok(name, n) && strcmp(name, "localhost"))
            add_local(out, name, 0);
    }
    /* A listen on one address: that address. On every address (0.0.0.0,
     * [::]): each interface's, IPv4 only for 0.0.0.0. */
    char host[NODE_CERT_HOST_LEN] = "";
    int want4 = 1, want6 = 1;
    if (listen) {
        const char *l = listen, *end;
        if (*l == '[') {
            l++;
            end = strchr(l, ']');
        } else {
            end = strrchr(l, ':');
        }
        size_t n = end ? (size_t)(end - l) : strlen(l);
        if (n < sizeof host) {
            memcpy(host, l, n);
            host[n] = '\0';
        }
    }
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, host, bin) == 1 && memcmp(bin, "\0\0\0\0", 4) != 0) {
        if (inet_ntop(AF_INET, bin, text, sizeof text))
            add_local(out, text, 1); /* even loopback: the admin chose it */
        want4 = want6 = 0;
    } else if (inet_pton(AF_INET6, host, bin) == 1 &&
               !IN6_IS_ADDR_UNSPECIFIED((struct in6_addr *)bin)) {
        if (inet_ntop(AF_INET6, bin, text, sizeof text))
            add_local(out, text, 1);
        want4 = want6 = 0;
    } else if (!strcmp(host, "0.0.0.0")) {
        want6 = 0;
    }
    struct ifaddrs *ifs = NULL;
    if ((want4 || want6) && getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || (i->ifa_addr->sa_family == AF_INET && !want4) ||
                (i->ifa_addr->sa_family == AF_INET6 && !want6))
                continue;
            if (address_usable(i->ifa_addr, text, sizeof text))
                add_local(out, text, 1);
        }
        freeifaddrs(ifs);
    }
    if (out->n == 0)
        return op_error_set(err, -ENOENT, "hosts",
                            "cannot tell this machine's host name or addresses; list them with "
                            "outpost cert create --hosts NAME[,ADDRESS...]");
    return 0;
}
