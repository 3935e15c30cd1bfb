/*
 * outpostd's key table and cross-key check; see config.h. Reading, setting,
 * describing and printing are conf_table's (sync/core/conf_table.c), shared with
 * outpost-hq, so both daemons take the same file format and give the same
 * messages.
 */
#include "config.h"

#include "conf_table.h"
#include "fsutil.h"
#include "http_server.h"
#include "http_tls.h"
#include "sms_gateway.h"
#include "smtp_client.h"

#include <jansson.h>
#include <stdlib.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FIELD(f) CONF_FIELD(struct outpostd_config, f)

static const struct conf_key keys[] = {
    {"db", CONF_PATH, FIELD(db), 0, 0, "/var/lib/outpost/node.db",
     "the node database (created by 'outpost init')"},
    {"listen", CONF_TEXT, FIELD(listen), 0, 0, "0.0.0.0:8443",
     "address and port for the LAN API: IPv4 a.b.c.d:port or IPv6 [addr]:port"},
    {"tls", CONF_TEXT, FIELD(tls), 0, 0, "auto",
     "auto: HTTPS (plain HTTP only on a loopback listen without tls_cert); on: always HTTPS; "
     "off: plain HTTP"},
    {"tls_cert", CONF_PATH, FIELD(tls_cert), 0, 0, "",
     "PEM certificate chain; empty: node.pem beside the database, made at start if missing"},
    {"tls_key", CONF_PATH, FIELD(tls_key), 0, 0, "",
     "PEM private key for tls_cert; empty: node.key beside the database"},
    {"allow_plain_http", CONF_BOOL, FIELD(allow_plain_http), 0, 0, "false",
     "with tls = off, serve plain HTTP on a non-loopback listen: only behind a TLS proxy"},
    {"max_connections", CONF_UINT, FIELD(max_connections), 1, 100000, "512",
     "open connections; when full the oldest idle keep-alive one is closed, else 503"},
    {"max_connections_per_address", CONF_UINT, FIELD(max_connections_per_address), 1, 100000, "32",
     "connections one client address (IPv4, or IPv6 /64) may hold; beyond: refused"},
    {"max_header_bytes", CONF_UINT, FIELD(max_header_bytes), 1024, 1048576, "16384",
     "request line and headers larger than this get 431"},
    {"max_body_bytes", CONF_UINT, FIELD(max_body_bytes), 1024, 268435456, "1048576",
     "request bodies larger than this get 413"},
    {"header_timeout_ms", CONF_UINT, FIELD(header_timeout_ms), 100, 600000, "10000",
     "a request's headers must arrive within this (slow clients get 408)"},
    {"body_timeout_ms", CONF_UINT, FIELD(body_timeout_ms), 100, 3600000, "30000",
     "a request's body must arrive within this after its headers (408)"},
    {"idle_timeout_ms", CONF_UINT, FIELD(idle_timeout_ms), 100, 3600000, "60000",
     "an idle keep-alive connection is closed after this"},
    {"session_ttl_s", CONF_UINT, FIELD(session_ttl_s), 60, 2592000, "43200",
     "a login session expires this many seconds after it was created"},
    {"workers", CONF_UINT, FIELD(workers), 1, 64, "4",
     "threads running database work (each with its own read connection)"},
    {"log_requests", CONF_BOOL, FIELD(log_requests), 0, 0, "true",
     "one log line per request on stderr"},
    {"log_level", CONF_LOG_LEVEL, FIELD(log_level), 0, 0, "info",
     "log lines less severe than this are left out: err, warning, notice, info or debug"},
    {"log_timestamps", CONF_BOOL, FIELD(log_timestamps), 0, 0, "false",
     "each log line starts with its UTC time (a log file outside systemd; the journal keeps "
     "its own)"},
    {"hq_credentials", CONF_PATH, FIELD(hq_credentials), 0, 0, "",
     "the node's HQ credentials file (from 'outpost-hq node add', mode 0600); empty: sync off"},
    {"hq_url", CONF_TEXT, FIELD(hq_url), 0, 0, "",
     "HQ base URL (https://hq.example:8443); empty: the one in the credentials file"},
    {"hq_ca_file", CONF_PATH, FIELD(hq_ca_file), 0, 0, "",
     "PEM bundle to trust for HQ's certificate; empty: the system store"},
    {"hq_insecure_tls", CONF_BOOL, FIELD(hq_insecure_tls), 0, 0, "false",
     "do not verify HQ's TLS certificate: for tests only, never in the field"},
    {"spool_dir", CONF_PATH, FIELD(spool_dir), 0, 0, "",
     "where segments wait for upload; empty: 'spool' beside the database"},
    {"spool_max_bytes", CONF_SIZE, FIELD(spool_max_bytes), 65536, (uint64_t)1 << 40, "256MiB",
     "spool cap: segmenting stops (ALARM in the log and /metrics) when it is full"},
    {"segment_bytes", CONF_SIZE, FIELD(segment_bytes), 4096, 64UL << 20, "480KB",
     "target compressed size of one segment (about a minute at 64 kbit/s)"},
    {"sync_interval_ms", CONF_UINT, FIELD(sync_interval_ms), 100, 86400000, "10000",
     "how often to look for new changes and poll HQ's mailbox"},
    {"sync_bandwidth", CONF_RATE, FIELD(sync_bandwidth), 0, (uint64_t)1 << 40, "0",
     "upload cap in bytes/s (units: KB, KiB, kbit, Mbit...; 64kbit = 8000); 0: no cap"},
    {"sync_window", CONF_WINDOW, FIELD(sync_window), 0, 0, "",
     "local time when sync may run, HH:MM-HH:MM (may wrap midnight); empty: any time"},
    {"sync_daily_bytes", CONF_SIZE, FIELD(sync_daily_bytes), 0, (uint64_t)1 << 50, "0",
     "upload bytes per UTC day (e.g. 50MB); 0: unlimited"},
    {"verify_interval", CONF_UINT, FIELD(verify_interval), 0, 31 * 86400, "86400",
     "seconds between anti-entropy checks with HQ (plus up to a tenth more, at random); "
     "0: only on demand ('outpost sync verify')"},
    {"sync_create_with_data", CONF_BOOL, FIELD(sync_create_with_data), 0, 0, "false",
     "the POST that creates a segment's upload carries its first bytes: one round trip less "
     "per segment, but a link that accepts and holds bytes gets them (docs/UPLINK.md)"},
    {"sync_uploads_in_flight", CONF_UINT, FIELD(sync_uploads_in_flight), 1, 2, "2",
     "segments uploading at once: 2 keeps the link busy while one waits for HQ's answer "
     "(docs/UPLINK.md, \"Two uploads\"); 1: one at a time"},
    {"sync_first_segment_ms", CONF_UINT, FIELD(sync_first_segment_ms), 0, 600000, "1500",
     "with nothing waiting for the link, the first segment is cut to what the link sends in "
     "this long at its measured rate, and the next ones while it uploads (docs/OUTBOX.md); 0: "
     "full segments"},
    {"sync_hold_ms", CONF_UINT, FIELD(sync_hold_ms), 0, 86400000, "10000",
     "while a segment waits for the link, new changes wait up to this long to fill a segment "
     "rather than go in a small one of their own; urgent ones (erasures, withdrawals) never wait"},
    {"outreach_relay", CONF_TEXT, FIELD(outreach_relay), 0, 0, "",
     "SMTP relay for messages to contacts: smtp://HOST[:PORT] (STARTTLS) or smtps://; empty: "
     "the sender is off (docs/OUTREACH.md)"},
    {"outreach_relay_country", CONF_TEXT, FIELD(outreach_relay_country), 0, 0, "",
     "ISO 3166-1 country of the relay; required unless the relay is on loopback"},
    {"outreach_allow_plain", CONF_BOOL, FIELD(outreach_allow_plain), 0, 0, "false",
     "a loopback relay may be plain SMTP (never another host)"},
    {"outreach_ca_file", CONF_PATH, FIELD(outreach_ca_file), 0, 0, "",
     "CA bundle for the relay's certificate; empty: the system's"},
    {"outreach_from", CONF_TEXT, FIELD(outreach_from), 0, 0, "",
     "the sender address of messages to contacts; required with a relay"},
    {"outreach_user", CONF_TEXT, FIELD(outreach_user), 0, 0, "", "SMTP AUTH user; empty: none"},
    {"outreach_password_file", CONF_PATH, FIELD(outreach_password_file), 0, 0, "",
     "file holding the SMTP AUTH password (first line)"},
    {"outreach_public_url", CONF_TEXT, FIELD(outreach_public_url), 0, 0, "",
     "https:// URL where contacts reach outpostd's confirm and unsubscribe pages"},
    {"outreach_postal_address", CONF_TEXT, FIELD(outreach_postal_address), 0, 0, "",
     "the sender's postal address, in every message where the region requires it (US)"},
    {"outreach_rate", CONF_UINT, FIELD(outreach_rate), 1, 100000, "60",
     "SMTP attempts a minute, spaced evenly"},
    {"outreach_daily_cap", CONF_UINT, FIELD(outreach_daily_cap), 1, 10000000, "1000",
     "messages sent a UTC day; then the queue waits for the next day"},
    {"outreach_retry_s", CONF_UINT, FIELD(outreach_retry_s), 1, 86400, "60",
     "first retry after a temporary failure; doubled each attempt, at most a day"},
    {"outreach_max_attempts", CONF_UINT, FIELD(outreach_max_attempts), 1, 100, "8",
     "attempts before a message is failed"},
    {"outreach_timeout_ms", CONF_UINT, FIELD(outreach_timeout_ms), 1000, 600000, "60000",
     "the longest one SMTP transaction may take"},
    {"outreach_sms_gateway", CONF_TEXT, FIELD(outreach_sms_gateway), 0, 0, "",
     "SMS gateway: kannel:URL (Kannel's /cgi-bin/sendsms) or json:URL (a JSON gateway); empty: no "
     "SMS is sent (docs/OUTREACH.md)"},
    {"outreach_sms_gateway_country", CONF_TEXT, FIELD(outreach_sms_gateway_country), 0, 0, "",
     "ISO 3166-1 country of the SMS gateway; required unless it is on loopback"},
    {"outreach_sms_user", CONF_TEXT, FIELD(outreach_sms_user), 0, 0, "",
     "Kannel's sendsms username"},
    {"outreach_sms_password_file", CONF_PATH, FIELD(outreach_sms_password_file), 0, 0, "",
     "file holding Kannel's sendsms password (first line)"},
    {"outreach_sms_auth_file", CONF_PATH, FIELD(outreach_sms_auth_file), 0, 0, "",
     "JSON gateway: file holding the Authorization header's value (first line)"},
    {"outreach_sms_json_template", CONF_TEXT, FIELD(outreach_sms_json_template), 0, 0,
     "{\"to\":\"{to}\",\"text\":\"{text}\",\"ref\":\"{ref}\"}",
     "JSON gateway: the request body; {to}, {text} and {ref} are replaced, JSON-escaped"},
    {"outreach_sms_json_id", CONF_TEXT, FIELD(outreach_sms_json_id), 0, 0, "id",
     "JSON gateway: the answer's member with the message id (NAME or NAME.NAME)"},
    {"outreach_sms_from", CONF_TEXT, FIELD(outreach_sms_from), 0, 0, "",
     "the SMS sender id; empty: the gateway's default"},
    {"outreach_sms_ca_file", CONF_PATH, FIELD(outreach_sms_ca_file), 0, 0, "",
     "CA bundle for the gateway's certificate; empty: the system's"},
    {"outreach_sms_callback_url", CONF_TEXT, FIELD(outreach_sms_callback_url), 0, 0, "",
     "where the gateway reaches outpostd for delivery reports (http(s)://HOST:PORT); empty: none "
     "asked for"},
    {"outreach_sms_mo_secret_file", CONF_PATH, FIELD(outreach_sms_mo_secret_file), 0, 0, "",
     "file holding the shared secret of /o/sms/mo (replies); empty: replies are refused"},
    {"outreach_sms_max_segments", CONF_UINT, FIELD(outreach_sms_max_segments), 1, 10, "6",
     "an SMS longer than this many segments fails (each segment is paid for)"},
    {"outreach_hard_bounce_limit", CONF_UINT, FIELD(outreach_hard_bounce_limit), 1, 100, "2",
     "hard bounces after which a contact's e-mail address is suppressed"},
};

static const struct conf_table table = {
    .keys = keys,
    .nkeys = sizeof keys / sizeof keys[0],
    .program = "outpostd",
    .size = sizeof(struct outpostd_config),
    .file_max = CONFIG_FILE_MAX,
};

static int check(const void *c, struct op_error *err)
{
    return config_check(c, err);
}

void config_defaults(struct outpostd_config *c)
{
    conf_defaults(&table, c);
}

int config_set(struct outpostd_config *c, const char *key, const char *value, const char *where,
               struct op_error *err)
{
    return conf_set(&table, c, key, value, where, err);
}

int config_load_file(struct outpostd_config *c, const char *path, struct op_error *err)
{
    return conf_load_file(&table, c, path, check, err);
}

int config_load(struct outpostd_config *c, const char *path, conf_overlay_fn overlay, void *ctx,
                struct op_error *err)
{
    return conf_load(&table, c, path, check, overlay, ctx, err);
}

int config_tls_plan(const struct outpostd_config *c, struct config_tls *out, struct op_error *err)
{
    struct config_tls p;
    memset(&p, 0, sizeof p);
    int on = !strcmp(c->tls, "on"), off = !strcmp(c->tls, "off");
    if (!on && !off && strcmp(c->tls, "auto"))
        return op_error_set(err, -EINVAL, "tls", "tls: expected auto, on or off, got '%.40s'",
                            c->tls);
    if (!c->tls_cert[0] != !c->tls_key[0])
        return op_error_set(err, -EINVAL, c->tls_cert[0] ? "tls_key" : "tls_cert",
                            "tls_cert and tls_key must be set together");
    int loopback = http_tls_listen_is_loopback(c->listen);
    if (off) {
        if (c->tls_cert[0])
            return op_error_set(err, -EINVAL, "tls",
                                "tls = off but tls_cert is set; remove one of them");
        if (!loopback && !c->allow_plain_http)
            return op_error_set(err, -EINVAL, "listen",
                                "listen %s is plain HTTP on a non-loopback address; set "
                                "tls = auto (the node certificate, outpost cert create) or "
                                "tls_cert/tls_key, or allow_plain_http = true behind a "
                                "TLS-terminating proxy",
                                c->listen);
        *out = p;
        return 0;
    }
    if (c->tls_cert[0]) {
        p.tls = 1;
        snprintf(p.cert, sizeof p.cert, "%s", c->tls_cert);
        snprintf(p.key, sizeof p.key, "%s", c->tls_key);
        *out = p;
        return 0;
    }
    if (loopback && !on) {
        *out = p; /* plain HTTP where only this machine can connect */
        return 0;
    }
    if (!c->db[0])
        return op_error_set(err, -EINVAL, "db", "db: the database path is empty");
    int rc = http_server_check_listen(c->listen, err);
    if (rc < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return op_error_set(err, rc, "listen", "listen: %s", why);
    }
    char dir[CONFIG_PATH_MAX];
    fsutil_dir_of(c->db, dir, sizeof dir);
    int a = snprintf(p.cert, sizeof p.cert, "%s/node.pem", dir);
    int b = snprintf(p.key, sizeof p.key, "%s/node.key", dir);
    if (a < 0 || (size_t)a >= sizeof p.cert || b < 0 || (size_t)b >= sizeof p.key)
        return op_error_set(err, -ENAMETOOLONG, "db", "db: path too long for node.pem beside it");
    snprintf(p.dir, sizeof p.dir, "%s", dir);
    p.tls = 1;
    p.node_cert = 1;
    *out = p;
    return 0;
}

int config_check(const struct outpostd_config *c, struct op_error *err)
{
    if (!c->db[0])
        return op_error_set(err, -EINVAL, "db", "db: the database path is empty");
    int rc = http_server_check_listen(c->listen, err);
    if (rc < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return op_error_set(err, rc, "listen", "listen: %s", why);
    }
    struct config_tls plan;
    rc = config_tls_plan(c, &plan, err);
    if (rc < 0)
        return rc;
    if (c->hq_url[0] && strncasecmp(c->hq_url, "https://", 8) &&
        strncasecmp(c->hq_url, "http://", 7))
        return op_error_set(err, -EINVAL, "hq_url",
                            "hq_url: expected an http:// or https:// URL, got '%.80s'", c->hq_url);
    rc = config_check_outreach(c, err);
    return rc < 0 ? rc : config_check_sms(c, err);
}

int config_check_sms(const struct outpostd_config *c, struct op_error *err)
{
    if (!c->outreach_sms_gateway[0])
        return 0;
    enum sms_gateway_kind kind;
    char url[SMS_GATEWAY_URL_MAX];
    int rc = sms_gateway_parse(c->outreach_sms_gateway, &kind, url, "outreach_sms_gateway", err);
    if (rc < 0)
        return rc;
    int loopback = sms_gateway_is_loopback(url);
    if (!loopback && strncasecmp(url, "https://", 8))
        return op_error_set(err, -EINVAL, "outreach_sms_gateway",
                            "outreach_sms_gateway: only a gateway on loopback may be plain "
                            "http://; use https:// for %.128s",
                            url);
    const char *cc = c->outreach_sms_gateway_country;
    if (!loopback && !cc[0])
        return op_error_set(err, -EINVAL, "outreach_sms_gateway_country",
                            "outreach_sms_gateway_country: required for a gateway that is not on "
                            "this host (the gateway receives contacts' numbers and texts)");
    if (cc[0] && (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z'))
        return op_error_set(err, -EINVAL, "outreach_sms_gateway_country",
                            "outreach_sms_gateway_country: expected two capital letters (ISO "
                            "3166-1), got '%.8s'",
                            cc);
    const char *cb = c->outreach_sms_callback_url;
    if (cb[0] && ((strncasecmp(cb, "https://", 8) && strncasecmp(cb, "http://", 7)) ||
                  strpbrk(cb, "?# <>\"'\r\n\t") || cb[strlen(cb) - 1] == '/'))
        return op_error_set(err, -EINVAL, "outreach_sms_callback_url",
                            "outreach_sms_callback_url: expected http(s)://HOST[:PORT][/PATH] "
                            "without a query or a trailing /, got '%.80s'",
                            cb);
    if (kind == SMS_GATEWAY_JSON) {
        char *probe = sms_gateway_json_body(c->outreach_sms_json_template, "+1", "x", "r");
        json_t *j = probe ? json_loads(probe, 0, NULL) : NULL;
        free(probe);
        if (!j)
            return op_error_set(err, -EINVAL, "outreach_sms_json_template",
                                "outreach_sms_json_template: must be JSON with \"{to}\" and "
                                "\"{text}\" inside strings, got '%.80s'",
                                c->outreach_sms_json_template);
        json_decref(j);
    }
    return 0;
}

int config_check_outreach(const struct outpostd_config *c, struct op_error *err)
{
    if (!c->outreach_relay[0])
        return 0;
    int rc = smtp_client_check_relay(c->outreach_relay, "outreach_relay", err);
    if (rc < 0)
        return rc;
    int loopback = smtp_client_relay_is_loopback(c->outreach_relay);
    if (c->outreach_allow_plain && !loopback)
        return op_error_set(err, -EINVAL, "outreach_allow_plain",
                            "outreach_allow_plain: only a relay on loopback may be plain SMTP; "
                            "%.128s is not",
                            c->outreach_relay);
    if (!loopback && !c->outreach_relay_country[0])
        return op_error_set(err, -EINVAL, "outreach_relay_country",
                            "outreach_relay_country: required for a relay that is not on this "
                            "host (the relay receives contacts' addresses)");
    const char *cc = c->outreach_relay_country;
    if (cc[0] && (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z'))
        return op_error_set(err, -EINVAL, "outreach_relay_country",
                            "outreach_relay_country: expected two capital letters (ISO 3166-1), "
                            "got '%.8s'",
                            cc);
    if (!c->outreach_from[0] || !strchr(c->outreach_from, '@') ||
        strpbrk(c->outreach_from, " <>,\"\r\n\t"))
        return op_error_set(err, -EINVAL, "outreach_from",
                            "outreach_from: a plain e-mail address is required with a relay, got "
                            "'%.80s'",
                            c->outreach_from);
    if (strncasecmp(c->outreach_public_url, "https://", 8) &&
        !(loopback && !strncasecmp(c->outreach_public_url, "http://", 7)))
        return op_error_set(err, -EINVAL, "outreach_public_url",
                            "outreach_public_url: an https:// URL where contacts reach outpostd is "
                            "required with a relay (http:// only beside a loopback relay, for "
                            "tests), got '%.80s'",
                            c->outreach_public_url);
    if (strpbrk(c->outreach_public_url, " <>,\"\r\n\t"))
        return op_error_set(
            err, -EINVAL, "outreach_public_url",
            "outreach_public_url: spaces, quotes, '<', '>' and ',' are not allowed");
    return 0;
}

void config_describe(FILE *out)
{
    conf_describe(&table, out);
}

void config_print(FILE *out, const struct outpostd_config *c)
{
    conf_print(&table, out, c);
}
