/*
 * outpost-hq's key table and cross-key check; see hq_config.h. Reading,
 * setting, describing and printing are conf_table's (sync/core/conf_table.c),
 * shared with outpostd, so both daemons take the same file format and give
 * the same messages.
 */
#include "hq_config.h"

#include "conf_table.h"
#include "hq_store.h"
#include "http_server.h"
#include "http_tls.h"

#include <errno.h>
#include <inttypes.h>

#define FIELD(f) CONF_FIELD(struct hq_config, f)

static const struct conf_key keys[] = {
    {"listen", CONF_TEXT, FIELD(listen), 0, 0, "127.0.0.1:8443",
     "address and port for the nodes: IPv4 a.b.c.d:port or IPv6 [addr]:port (port 0 picks one)"},
    {"db", CONF_PATH, FIELD(db), 0, 0, "/var/lib/outpost-hq/hq.db",
     "the HQ store (SQLite; created on first use) unless `store` is set"},
    {"store", CONF_TEXT, FIELD(store), 0, 0, "",
     "the HQ store on PostgreSQL: postgresql://USER@HOST/DB or a libpq conninfo (keep the "
     "password in ~/.pgpass, not here); empty: the SQLite file at db (docs/HQ.md)"},
    {"spool_dir", CONF_PATH, FIELD(spool_dir), 0, 0, "/var/lib/outpost-hq/uploads",
     "where tus uploads are held until applied"},
    {"shared_spool", CONF_BOOL, FIELD(shared_spool), 0, 0, "false",
     "several receivers behind one address serve this spool_dir and store at once (any of "
     "them takes any request of any upload; docs/HQ.md, \"Several receivers\"): uploads are "
     "locked per upload and read from the spool at each request"},
    {"tls_cert", CONF_PATH, FIELD(tls_cert), 0, 0, "",
     "PEM certificate chain; with tls_key, serve HTTPS only"},
    {"tls_key", CONF_PATH, FIELD(tls_key), 0, 0, "", "PEM private key for tls_cert"},
    {"allow_plain_http", CONF_BOOL, FIELD(allow_plain_http), 0, 0, "false",
     "serve plain HTTP on a non-loopback listen: only behind a TLS-terminating proxy"},
    {"max_upload_bytes", CONF_U64, FIELD(max_upload_bytes), 1024, 1ull << 40, "67108864",
     "largest upload (Tus-Max-Size); larger ones get 413"},
    {"max_spool_bytes", CONF_U64, FIELD(max_spool_bytes), 1024, 1ull << 50, "1073741824",
     "upload bytes held at once; beyond it creations get 507"},
    {"max_uploads", CONF_U64, FIELD(max_uploads), 1, 1000000, "4096",
     "uploads held at once; beyond it creations get 507"},
    {"max_incomplete_per_node", CONF_U64, FIELD(max_incomplete_per_node), 1, 1000, "4",
     "unfinished uploads per node; a new one replaces the node's oldest"},
    {"upload_expire_s", CONF_U64, FIELD(upload_expire_s), 60, 31536000, "604800",
     "an unfinished upload not written to for this long is deleted"},
    {"max_connections", CONF_U64, FIELD(max_connections), 1, 100000, "512",
     "open connections; when full the oldest idle keep-alive one is closed, else 503"},
    {"max_connections_per_address", CONF_U64, FIELD(max_connections_per_address), 1, 100000, "32",
     "connections one client address (IPv4, or IPv6 /64) may hold; beyond: refused"},
    {"max_header_bytes", CONF_U64, FIELD(max_header_bytes), 1024, 1048576, "16384",
     "request line and headers larger than this get 431"},
    {"max_body_bytes", CONF_U64, FIELD(max_body_bytes), 1024, 268435456, "4194304",
     "one request body (one tus PATCH chunk) larger than this gets 413"},
    {"header_timeout_ms", CONF_U64, FIELD(header_timeout_ms), 100, 600000, "10000",
     "a request's headers must arrive within this (408)"},
    {"body_timeout_ms", CONF_U64, FIELD(body_timeout_ms), 100, 3600000, "120000",
     "a request's body must arrive within this after its headers (408); slow links need time"},
    {"idle_timeout_ms", CONF_U64, FIELD(idle_timeout_ms), 100, 3600000, "60000",
     "an idle keep-alive connection is closed after this"},
    {"receipt_wait_ms", CONF_U64, FIELD(receipt_wait_ms), 0, 600000, "10000",
     "the PATCH completing an upload is answered after the segment is applied, with its "
     "receipt (Outpost-Receipt); 0 answers first and applies after"},
    {"apply_workers", CONF_U64, FIELD(apply_workers), 0, 16, "2",
     "threads that apply completed uploads off the event loop, each with its own store "
     "connection; 0 applies on the loop thread"},
    {"apply_queue", CONF_U64, FIELD(apply_queue), 1, 4096, "64",
     "completed uploads waiting for a thread at most; beyond it the completing PATCH gets 503 "
     "with Retry-After before its body is read"},
    {"log_requests", CONF_BOOL, FIELD(log_requests), 0, 0, "true",
     "one log line per request on stderr"},
    {"log_level", CONF_LOG_LEVEL, FIELD(log_level), 0, 0, "info",
     "log lines less severe than this are left out: err, warning, notice, info or debug"},
    {"log_timestamps", CONF_BOOL, FIELD(log_timestamps), 0, 0, "false",
     "each log line starts with its UTC time (a log file outside systemd; the journal keeps "
     "its own)"},
};

static const struct conf_table table = {
    .keys = keys,
    .nkeys = sizeof keys / sizeof keys[0],
    .program = "outpost-hq",
    .size = sizeof(struct hq_config),
    .file_max = HQ_CONFIG_FILE_MAX,
};

static int check(const void *c, struct op_error *err)
{
    return hq_config_check(c, err);
}

void hq_config_defaults(struct hq_config *c)
{
    conf_defaults(&table, c);
}

int hq_config_set(struct hq_config *c, const char *key, const char *value, const char *where,
                  struct op_error *err)
{
    return conf_set(&table, c, key, value, where, err);
}

int hq_config_load_file(struct hq_config *c, const char *path, struct op_error *err)
{
    return conf_load_file(&table, c, path, check, err);
}

int hq_config_load(struct hq_config *c, const char *path, conf_overlay_fn overlay, void *ctx,
                   struct op_error *err)
{
    return conf_load(&table, c, path, check, overlay, ctx, err);
}

int hq_config_check(const struct hq_config *c, struct op_error *err)
{
    int rc = http_server_check_listen(c->listen, err);
    if (rc < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return op_error_set(err, rc, "listen", "listen: %s", why);
    }
    if (!c->tls_cert[0] != !c->tls_key[0])
        return op_error_set(err, -EINVAL, c->tls_cert[0] ? "tls_key" : "tls_cert",
                            "tls_cert and tls_key must be set together");
    if (!c->tls_cert[0] && !c->allow_plain_http && !http_tls_listen_is_loopback(c->listen))
        return op_error_set(err, -EINVAL, "listen",
                            "listen %s is plain HTTP on a non-loopback address; set "
                            "tls_cert/tls_key, or allow_plain_http = true behind a "
                            "TLS-terminating proxy",
                            c->listen);
    if (c->store[0] && !hq_store_is_pg(c->store))
        return op_error_set(err, -EINVAL, "store",
                            "store: '%.200s' is not a PostgreSQL connection string "
                            "(postgresql://..., postgres://... or key=value pairs); leave it "
                            "empty for the SQLite file at db",
                            c->store);
    if (!c->store[0] && !c->db[0])
        return op_error_set(err, -EINVAL, "db", "db: the store path is empty");
    if (!c->spool_dir[0])
        return op_error_set(err, -EINVAL, "spool_dir", "spool_dir: the upload spool is empty");
    if (c->max_upload_bytes > c->max_spool_bytes)
        return op_error_set(err, -EINVAL, "max_upload_bytes",
                            "max_upload_bytes (%" PRIu64 ") is over max_spool_bytes (%" PRIu64 ")",
                            c->max_upload_bytes, c->max_spool_bytes);
    return 0;
}

const char *hq_config_store(const struct hq_config *c)
{
    return c->store[0] ? c->store : c->db;
}

void hq_config_describe(FILE *out)
{
    conf_describe(&table, out);
}

void hq_config_print(FILE *out, const struct hq_config *c)
{
    conf_print(&table, out, c);
}
