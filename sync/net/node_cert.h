/*
 * The node's TLS identity for the LAN: a small local certificate authority,
 * made once per node, and a server certificate for the node's host names
 * and addresses signed by it. Staff install the CA certificate once on
 * their devices; the node certificate can then be renewed (or its host
 * list changed) without anyone touching a browser again.
 *
 * Invariants: private keys are written only to files of mode 0600; every
 * file appears whole or not at all (temporary file, fsync, rename, fsync of
 * the directory); an existing CA is reused, never overwritten (NODE_CERT_NEW_CA
 * moves it aside); a new CA may sign only for the hosts it was made for; node
 * certificates last at most NODE_CERT_DAYS_MAX days.
 *
 * Errors: 0 or a negative errno, with err saying what and where: -EINVAL
 * (a bad host name or day count), -EEXIST (a CA key without its
 * certificate, or the reverse: refuses to guess), -EPERM (a host outside
 * the CA's name constraints), -EKEYEXPIRED (the CA has expired), -EIO (OpenSSL failed; its reason
 * is in the message), and the errors of the file system calls.
 */
#ifndef OUTPOST_NODE_CERT_H
#define OUTPOST_NODE_CERT_H

#include <stddef.h>

#include "op_error.h"

#define NODE_CERT_DAYS_MAX 825 /* what Apple platforms accept for a server certificate */
#define NODE_CERT_DAYS_DEFAULT 825
#define NODE_CERT_CA_DAYS 3650
#define NODE_CERT_HOSTS_MAX 32
#define NODE_CERT_HOST_LEN 254       /* a DNS name (253) or an IPv6 address, with the NUL */
#define NODE_CERT_FINGERPRINT_LEN 96 /* "AB:CD:..." for SHA-256, with the NUL */

/* File names inside the directory. */
#define NODE_CERT_CA_KEY "ca.key"
#define NODE_CERT_CA_PEM "ca.pem"
#define NODE_CERT_NODE_KEY "node.key"
#define NODE_CERT_NODE_PEM "node.pem" /* node certificate followed by the CA certificate */

struct node_cert_hosts {
    size_t n;
    char name[NODE_CERT_HOSTS_MAX][NODE_CERT_HOST_LEN];
    int is_ip[NODE_CERT_HOSTS_MAX]; /* 1: an IPv4 or IPv6 address; 0: a DNS name */
};

/* Parses "name,name,..." (DNS names and IPv4/IPv6 addresses; surrounding
 * spaces ignored; duplicates dropped; DNS names lower-cased). -EINVAL
 * naming the bad entry: empty, too long, a label that is not letters,
 * digits and inner hyphens, a wildcard, or more than NODE_CERT_HOSTS_MAX. */
int node_cert_parse_hosts(const char *list, struct node_cert_hosts *out, struct op_error *err);

struct node_cert_result {
    int ca_created;       /* 0: an existing CA was reused */
    int ca_replaced;      /* NODE_CERT_NEW_CA moved an existing CA aside */
    int ca_unconstrained; /* the reused CA has no name constraints (made before they were) */
    char ca_fingerprint[NODE_CERT_FINGERPRINT_LEN]; /* SHA-256 of the CA certificate */
    char node_not_after[32];                        /* "YYYY-MM-DD" */
};

/* node_cert_create flags */
#define NODE_CERT_NEW_CA                                                                           \
    1u /* move an existing CA aside (ca.*.replaced-DATE) and make a new one                        \
        */

/* Makes (or reuses) the CA in dir and issues a new node certificate with
 * a new key for `hosts` (the first DNS name is the subject's common name),
 * valid for `days` (0: NODE_CERT_DAYS_DEFAULT; at most NODE_CERT_DAYS_MAX).
 * dir is created (mode 0755) if missing. res may be NULL.
 *
 * A new CA is constrained to `hosts` (critical nameConstraints: the DNS
 * names and everything below them, and exactly the listed addresses), so
 * its key cannot mint certificates that devices trust for other sites. A
 * reused CA signs only hosts inside its constraints: -EPERM naming the
 * first host outside them, nothing written. A reused CA without
 * constraints is used as it is and res->ca_unconstrained says so. */
int node_cert_create(const char *dir, const struct node_cert_hosts *hosts, int days, unsigned flags,
                     struct node_cert_result *res, struct op_error *err);

/* This machine's names for a certificate: its host name (when it is a
 * valid DNS name other than localhost) and its addresses. listen narrows
 * the addresses: "a.b.c.d:port" or "[addr]:port" gives that address only
 * (even a loopback one: the admin chose it),
 * "0.0.0.0:port" every interface's IPv4 address, "[::]:port" or NULL every
 * IPv4 and IPv6 address; loopback and IPv6 link-local addresses are left
 * out. -ENOENT when nothing usable is found. */
int node_cert_local_hosts(const char *listen, struct node_cert_hosts *out, struct op_error *err);

#endif
