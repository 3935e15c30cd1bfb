/*
 * outpostd's configuration: a table of keys with types, limits, defaults
 * and one line of documentation each, read from a `key = value` file and
 * from command-line flags. The invariant: a config either loads completely
 * and valid, or the caller's current config is untouched and the error
 * names the file, line and key (so SIGHUP with a bad file changes nothing).
 */
#ifndef OUTPOST_CONFIG_H
#define OUTPOST_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "conf_table.h"
#include "op_error.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_FILE_MAX (64 * 1024)

struct outpostd_config {
    char db[CONFIG_PATH_MAX];
    char listen[128];
    char tls[8]; /* "auto", "on" or "off" (config_tls_plan) */
    char tls_cert[CONFIG_PATH_MAX];
    char tls_key[CONFIG_PATH_MAX];
    int allow_plain_http; /* tls = off on a non-loopback listen (behind a TLS proxy) */
    unsigned max_connections;
    unsigned max_connections_per_address;
    unsigned max_header_bytes;
    unsigned max_body_bytes;
    unsigned header_timeout_ms;
    unsigned body_timeout_ms;
    unsigned idle_timeout_ms;
    unsigned session_ttl_s;
    unsigned workers;
    int log_requests;
    int log_level;      /* enum log_level: lines less severe are left out */
    int log_timestamps; /* each line starts with its UTC time (not in the journal) */

    /* sync to HQ (docs/UPLINK.md); off while hq_credentials is empty */
    char hq_url[2048];
    char hq_credentials[CONFIG_PATH_MAX];
    char hq_ca_file[CONFIG_PATH_MAX];
    int hq_insecure_tls;
    char spool_dir[CONFIG_PATH_MAX]; /* "": <directory of db>/spool */
    uint64_t spool_max_bytes;
    uint64_t segment_bytes;
    unsigned sync_interval_ms;
    unsigned verify_interval;        /* seconds between anti-entropy checks; 0: on demand only */
    uint64_t sync_bandwidth;         /* bytes/s, 0 = no cap */
    char sync_window[16];            /* "" or HH:MM-HH:MM (validated) */
    uint64_t sync_daily_bytes;       /* 0 = unlimited */
    int sync_create_with_data;       /* the POST that creates an upload carries its first bytes */
    unsigned sync_uploads_in_flight; /* segments uploading at once: 1 or 2 */
    unsigned sync_first_segment_ms;  /* link idle: the first segment is what it sends in this */
    unsigned sync_hold_ms;           /* a segment waiting: rows wait this long for a fuller one */

    /* outreach (docs/OUTREACH.md); the sender is off while outreach_relay is empty */
    char outreach_relay[512];
    char outreach_relay_country[8];
    int outreach_allow_plain;
    char outreach_ca_file[CONFIG_PATH_MAX];
    char outreach_from[320];
    char outreach_user[256];
    char outreach_password_file[CONFIG_PATH_MAX];
    char outreach_public_url[512];
    char outreach_postal_address[512];
    unsigned outreach_rate;      /* attempts a minute */
    unsigned outreach_daily_cap; /* messages sent a UTC day */
    unsigned outreach_retry_s;   /* first retry delay, doubled each attempt */
    unsigned outreach_max_attempts;
    unsigned outreach_timeout_ms;        /* one SMTP transaction */
    unsigned outreach_hard_bounce_limit; /* then the address is suppressed for e-mail */

    /* outreach by SMS (docs/OUTREACH.md "SMS"); off while outreach_sms_gateway is empty */
    char outreach_sms_gateway[600]; /* kannel:URL or json:URL */
    char outreach_sms_gateway_country[8];
    char outreach_sms_user[128];
    char outreach_sms_password_file[CONFIG_PATH_MAX];
    char outreach_sms_auth_file[CONFIG_PATH_MAX];
    char outreach_sms_json_template[1024];
    char outreach_sms_json_id[128];
    char outreach_sms_from[32];
    char outreach_sms_ca_file[CONFIG_PATH_MAX];
    char outreach_sms_callback_url[512]; /* where the gateway reaches /o/sms/dlr */
    char outreach_sms_mo_secret_file[CONFIG_PATH_MAX];
    unsigned outreach_sms_max_segments;
};

/* Fills c with every default. */
void config_defaults(struct outpostd_config *c);

/* Sets one key from text (as in the file or a --key flag). Returns 0 or
 * -EINVAL with err saying what the key expects, or -ENOENT for an unknown
 * key. `where` ("FILE:LINE" or "--flag") prefixes the message. */
int config_set(struct outpostd_config *c, const char *key, const char *value, const char *where,
               struct op_error *err);

/* Reads a file on top of a copy of *c; on success replaces *c. On failure
 * *c is unchanged and err says "FILE:LINE: key: problem". */
int config_load_file(struct outpostd_config *c, const char *path, struct op_error *err);

/* Builds the config the way outpostd does at start and on SIGHUP
 * (conf_load): defaults, the file at path (NULL: none), then overlay, the
 * command line, with ctx. On success replaces *c; otherwise *c is
 * unchanged and the return is the failing step's or overlay's. */
int config_load(struct outpostd_config *c, const char *path, conf_overlay_fn overlay, void *ctx,
                struct op_error *err);

/* Cross-key checks (db set; config_tls_plan; hq_url is http(s)). */
int config_check(const struct outpostd_config *c, struct op_error *err);

/* The outreach keys across each other (docs/OUTREACH.md): a relay URL
 * that is smtp:// or smtps://; plain only on loopback; a country for a
 * relay elsewhere; a sender address; a public URL. Nothing when no relay
 * is set. (Residency against the region profile is checked where the
 * policy is loaded: outreach_sender_check.) */
int config_check_outreach(const struct outpostd_config *c, struct op_error *err);

/* The SMS keys across each other (docs/OUTREACH.md "SMS"): kannel:URL or
 * json:URL; plain http only on loopback; a country for a gateway
 * elsewhere; a callback URL that is http(s) without a query; a JSON
 * template with {to} and {text}. Nothing when no gateway is set. */
int config_check_sms(const struct outpostd_config *c, struct op_error *err);

/* How the API is served, decided from listen, tls, tls_cert/tls_key,
 * allow_plain_http and db. */
struct config_tls {
    int tls;                    /* 0: plain HTTP */
    int node_cert;              /* cert and key are the node certificate in dir: make if missing */
    char cert[CONFIG_PATH_MAX]; /* with tls: the PEM chain and key to load */
    char key[CONFIG_PATH_MAX];
    char dir[CONFIG_PATH_MAX]; /* with node_cert: the database's directory */
};

/* The rule: plain HTTP only where nobody else can listen in, or where the
 * admin said so twice. tls_cert/tls_key set: HTTPS with them (tls = off
 * then is a contradiction). tls = auto (the default): plain HTTP on a
 * loopback listen, otherwise HTTPS with node.pem/node.key beside the
 * database. tls = on: HTTPS, the same files. tls = off: plain HTTP, on a
 * non-loopback listen only with allow_plain_http = true. Returns 0 with
 * *out filled, or -EINVAL with err naming the key (for a plain
 * non-loopback listen: "listen ADDR is plain HTTP on a non-loopback
 * address; set ..."). */
int config_tls_plan(const struct outpostd_config *c, struct config_tls *out, struct op_error *err);

/* Prints every key with its default and description, as the file format. */
void config_describe(FILE *out);

/* Prints the effective values, as a loadable file. */
void config_print(FILE *out, const struct outpostd_config *c);

#endif
