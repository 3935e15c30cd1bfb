/*
 * The node's TLS identity for the LAN: a small local certificate authority,
 * made once per node, and a server certificate for the node's host names
 * and addresses signed by it. Staff install the CA certificate once on
 * their devices; the node certificate can then be renewed (or its host
 * list changed) without anyone touching a browser again.
 *
 * Invariants: private keys are written only to files of mode 0600; every
 * file appears whole or not at all (temporary file, fsync, rename, fsync of
 * the directory); an existing CA is reused, never overwritten; node
 * certificates last at most NODE_CERT_DAYS_MAX days.
 *
 * Errors: 0 or a negative errno, with err saying what and where: -EINVAL
 * (a bad host name or day count), -EEXIST (a CA key without its
 * certificate, or the reverse: refuses to guess), -EKEYEXPIRED (the CA has
 * expired), -EIO (OpenSSL failed; its reason is in the message), and the
 * errors of the file system calls.
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
    int ca_created;                                 /* 0: an existing CA was reused */
    char ca_fingerprint[NODE_CERT_FINGERPRINT_LEN]; /* SHA-256 of the CA certificate */
    char node_not_after[32];                        /* "YYYY-MM-DD" */
};

/* Makes (or reuses) the CA in dir and issues a new node certificate with
 * a new key for `hosts` (the first one is the subject's common name),
 * valid for `days` (0: NODE_CERT_DAYS_DEFAULT; at most NODE_CERT_DAYS_MAX).
 * dir is created (mode 0755) if missing. res may be NULL. */
int node_cert_create(const char *dir, const struct node_cert_hosts *hosts, int days,
                     struct node_cert_result *res, struct op_error *err);

#endif
