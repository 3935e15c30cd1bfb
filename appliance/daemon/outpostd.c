/*
 * outpostd, the node daemon: reads its configuration, opens the node
 * database, serves the LAN API on one libuv loop and shuts down cleanly.
 * See docs/OUTPOSTD.md. Crash-only: every state change is a committed
 * SQLite transaction, so kill -9 at any point loses nothing acknowledged;
 * the clean shutdown only adds a WAL checkpoint.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "api.h"
#include "config.h"
#include "daemon.h"
#include "db.h"
#include "http_server.h"
#include "http_tls.h"
#include "log.h"
#include "node_cert.h"
#include "node_credentials.h"
#include "node_policy.h"
#include "outpost_config.h"
#include "api_outreach.h"
#include "outreach_sender.h"
#include "outreach_sms_sender.h"
#include "policy.h"
#include "store.h"
#include "uplink.h"
#include "web.h"

struct outpostd {
    uv_loop_t *loop;
    struct daemon daemon; /* signals, systemd, watchdog (daemon.h) */
    struct outpostd_config cfg;
    const char *config_path;
    int argc;
    char **argv;
    int print_config; /* --print-config was given */
    struct api *api;
    struct http_server *server;
    uv_timer_t retention; /* daily purge of what the region policy says is past its limit */
    /* policy-override.yaml beside the database: an administrator's
     * `outpost policy accept` writes it, and it must be in force here at
     * once, not at the next SIGHUP */
    uv_fs_event_t override_watch;
    uv_timer_t override_settle; /* one reload for a burst of events */
    int override_watch_on;
    struct node_credentials cred;
    struct uplink *uplink;            /* sync to HQ; NULL when hq_credentials is empty */
    int stops_pending;                /* the HTTP server and the uplink stop in parallel */
    struct outreach_sender *outreach; /* NULL when outreach_relay is empty */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: outpostd [--config FILE] [--KEY VALUE]...\n"
                 "       outpostd --reload PID\n"
                 "       outpostd --describe-config | --version | --help\n\n"
                 "The Outpost node daemon: serves the CRM API to field staff on the LAN.\n\n"
                 "  --config FILE       read settings from FILE ('key = value' lines)\n"
                 "  --KEY VALUE         set any config key, e.g. --db /var/lib/outpost/node.db\n"
                 "                      --listen 0.0.0.0:8443 (flags override the file)\n"
                 "  --print-config      print the effective settings and exit\n"
                 "  --describe-config   print every key with its default and meaning\n"
                 "  --allow-root        run even as root (a container whose only user is\n"
                 "                      root; also OUTPOST_ALLOW_ROOT=1); refused otherwise\n"
                 "  --reload PID        make the daemon PID reload (SIGHUP) and wait for the\n"
                 "                      outcome: exit 1 when it refused the file (ExecReload)\n"
                 "  --version           print the version\n\n"
                 "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the config file\n"
                 "and the region policy.\n");
}

/* The command line over the file (conf_load's overlay): --KEY VALUE
 * flags, then the cross-key check. Returns 0, 1 to exit 0 (--help,
 * --version, --describe-config) or a negative code with err filled. */
static int apply_flags(void *conf, void *ctx, struct op_error *err)
{
    struct outpostd *d = ctx;
    for (int i = 1; i < d->argc; i++) {
        const char *arg = d->argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            printf("outpostd %s\n", OUTPOST_VERSION);
            return 1;
        }
        if (!strcmp(arg, "--describe-config")) {
            config_describe(stdout);
            return 1;
        }
        if (!strcmp(arg, "--print-config")) {
            d->print_config = 1;
            continue;
        }
        struct conf_flag f;
        int rc = conf_flag_read(d->argc, d->argv, &i, &f, err);
        if (rc < 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return op_error_set(err, rc, NULL, "%s (see --help)", why);
        }
        if (!strcmp(f.key, "config"))
            continue; /* read before the other flags */
        if ((rc = config_set(conf, f.key, f.value, f.where, err)) < 0)
            return rc;
    }
    return config_check(conf, err);
}

static const char *find_config_flag(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            return argv[i + 1];
        if (!strncmp(argv[i], "--config=", 9))
            return argv[i] + 9;
    }
    return NULL;
}

/* Retention: a few minutes after start (not at once: a node restarted in
 * a loop would purge in a loop), then daily. */
#define RETENTION_FIRST_MS (5u * 60u * 1000u)
#define RETENTION_EVERY_MS (24u * 60u * 60u * 1000u)

static void retention_done(void *ctx, int rc, uint64_t purged, const struct op_error *err)
{
    (void)ctx;
    if (rc < 0)
        log_err("retention: %s", err->msg[0] ? err->msg : strerror(-rc));
    else if (purged)
        log_notice("retention: purged %llu records past their limit", (unsigned long long)purged);
}

static void on_retention(uv_timer_t *t)
{
    struct outpostd *d = t->data;
    if (d->daemon.stopping)
        return;
    int rc = api_run_retention(d->api, retention_done, d);
    if (rc < 0)
        log_err("retention: cannot queue the run: %s", uv_strerror(rc));
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void stopped(void *arg)
{
    struct outpostd *d = arg;
    if (--d->stops_pending > 0)
        return;
    d->server = NULL;
    d->uplink = NULL;
    daemon_close(&d->daemon);
    uv_close((uv_handle_t *)&d->retention, close_cb);
    if (d->override_watch_on) {
        uv_close((uv_handle_t *)&d->override_watch, close_cb);
        uv_close((uv_handle_t *)&d->override_settle, close_cb);
    }
}

/* SIGTERM or SIGINT (daemon.h has said so): the HTTP server and the
 * uplink stop in parallel, and the last to finish closes the handles. */
static void begin_stop(void *ctx)
{
    struct outpostd *d = ctx;
    /* the message in hand gets its outcome recorded first */
    outreach_sender_stop(d->outreach);
    d->outreach = NULL;
    d->stops_pending = d->uplink ? 2 : 1;
    if (d->uplink) {
        /* no request that ends from now on wakes it: it may be freed
         * before the HTTP server has stopped */
        struct uplink *u = d->uplink;
        d->uplink = NULL;
        api_set_sync_source(d->api, NULL, NULL);
        uplink_stop(u, stopped, d);
    }
    http_server_stop(d->server, stopped, d);
}

static const struct sync_status *sync_source(void *ctx)
{
    struct outpostd *d = ctx;
    return uplink_status(d->uplink);
}

/* The policy the API now runs under holds for sync at once: if it is
 * not the one the spool was cut under, every spooled or uploading segment
 * is voided (its file emptied, which stops an upload in flight) and every
 * record queued again, before the reload is reported done
 * (store_policy_changed, the step `outpost policy accept` takes; the
 * uplink's ledger finds nothing left to do). docs/EGRESS.md, "Paced
 * segments". */
static int policy_voids_spool(struct outpostd *d, struct op_error *err)
{
    struct store *s = NULL;
    int rc = store_open(d->cfg.db, DB_OPEN_NO_MIGRATE, &s, err);
    if (rc == 0) {
        const char *hash = api_policy_hash(d->api);
        char why[160];
        snprintf(why, sizeof why, "the policy in force changed to %.16s", hash);
        store_set_actor(s, "system:policy", NULL);
        rc = store_policy_changed(s, hash, why, NULL, err);
    }
    store_close(s);
    return rc;
}

/* A policy from HQ's mailbox was stored beside the database: the API
 * takes it as a SIGHUP would (the uplink reloads the ledger's copy). */
static void policy_from_hq(void *ctx)
{
    struct outpostd *d = ctx;
    struct op_error err;
    op_error_clear(&err);
    if (api_reload_policy(d->api, &err) < 0)
        log_err("policy from HQ refused, keeping the running policy: %s", err.msg);
    else
        log_notice("region policy from HQ in force (sha256 %s)", api_policy_hash(d->api));
}

/* policy-override.yaml was replaced (an acceptance at the node, or the
 * sync ledger applying a policy from HQ, which also reloads through
 * policy_from_hq): reload it as SIGHUP would, and say so when the policy
 * in force changed. */
static void on_override_settled(uv_timer_t *t)
{
    struct outpostd *d = t->data;
    if (d->daemon.stopping)
        return;
    char before[POLICY_HASH_HEX];
    snprintf(before, sizeof before, "%s", api_policy_hash(d->api));
    struct op_error err;
    op_error_clear(&err);
    if (api_reload_policy(d->api, &err) < 0) {
        log_err("%s changed but is refused, keeping the running policy: %s", NODE_POLICY_OVERRIDE,
                err.msg);
        return;
    }
    if (!strcmp(before, api_policy_hash(d->api)))
        return;
    log_notice("%s changed: region policy in force (sha256 %s)", NODE_POLICY_OVERRIDE,
               api_policy_hash(d->api));
    op_error_clear(&err);
    if (policy_voids_spool(d, &err) < 0)
        log_err("the spool cut under the old policy could not be voided: %s", err.msg);
    uplink_reload_policy(d->uplink);
    outreach_sender_reload(d->outreach);
}

static void on_db_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    struct outpostd *d = h->data;
    if (status < 0 || !filename || strcmp(filename, NODE_POLICY_OVERRIDE) || d->daemon.stopping)
        return;
    uv_timer_start(&d->override_settle, on_override_settled, 200, 0);
}

/* Watches the database's directory for policy-override.yaml. Without the
 * watch (no inotify) an acceptance takes effect at the next SIGHUP. */
static void watch_override(struct outpostd *d)
{
    char over[1024], dir[1024];
    if (!strcmp(d->cfg.db, ":memory:") ||
        node_policy_override_path(d->cfg.db, over, sizeof over) < 0)
        return;
    const char *slash = strrchr(over, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == over ? 1 : (int)(slash - over), over);
    uv_fs_event_init(d->loop, &d->override_watch);
    uv_timer_init(d->loop, &d->override_settle);
    d->override_watch.data = d->override_settle.data = d;
    d->override_watch_on = 1;
    int rc = uv_fs_event_start(&d->override_watch, on_db_dir_event, dir, 0);
    if (rc < 0)
        log_warning("cannot watch %s for %s (%s): an accepted policy takes effect at the "
                    "next reload (SIGHUP)",
                    dir, NODE_POLICY_OVERRIDE, uv_strerror(rc));
}

/* Sync starts when hq_credentials is set; a credentials file that cannot
 * be used is a configuration error (exit 2), not a silent offline node. */
static int start_sync(struct outpostd *d, struct op_error *err)
{
    const struct outpostd_config *c = &d->cfg;
    if (!c->hq_credentials[0]) {
        log_notice("sync: not configured (hq_credentials is empty)");
        return 0;
    }
    int rc = node_credentials_load(c->hq_credentials, &d->cred, err);
    if (rc < 0)
        return rc;
    struct uplink_config uc = {
        .db_path = c->db,
        .spool_dir = c->spool_dir,
        .cred = &d->cred,
        .hq_url = c->hq_url,
        .ca_file = c->hq_ca_file[0] ? c->hq_ca_file : NULL,
        .insecure_tls = c->hq_insecure_tls,
        .spool_max_bytes = c->spool_max_bytes,
        .segment_bytes = c->segment_bytes,
        .interval_ms = c->sync_interval_ms,
        .verify_interval_ms = (uint64_t)c->verify_interval * 1000u,
        .bandwidth_bps = c->sync_bandwidth,
        .window = c->sync_window,
        .daily_bytes = c->sync_daily_bytes,
        .create_with_data = c->sync_create_with_data,
        .uploads_in_flight = c->sync_uploads_in_flight,
        .pace = 1,
        .first_segment_ms = c->sync_first_segment_ms,
        .hold_ms = c->sync_hold_ms,
        .policy_changed = policy_from_hq,
        .ctx = d,
    };
    if (c->hq_insecure_tls)
        log_warning("sync: WARNING: hq_insecure_tls is on; HQ's certificate is not checked "
                    "(tests only)");
    rc = uplink_start(d->loop, &uc, &d->uplink, err);
    if (rc < 0)
        return rc;
    api_set_sync_source(d->api, sync_source, d);
    return 0;
}

/* HTTPS with the node certificate beside the database (tls = auto or on,
 * no tls_cert): made here, once, when the package's install did not make
 * it (outpost cert create) or it was removed. Uses an existing CA if
 * there is one, else makes one for this machine's host name and
 * addresses. Returns 0 or the error with err saying what to do. */
static int ensure_node_cert(const struct outpostd *d, const struct config_tls *tls,
                            struct op_error *err)
{
    if (access(tls->cert, F_OK) == 0 && access(tls->key, F_OK) == 0)
        return 0;
    struct node_cert_hosts hosts;
    int rc = node_cert_local_hosts(d->cfg.listen, &hosts, err);
    struct node_cert_result res;
    if (rc == 0)
        rc = node_cert_create(tls->dir, &hosts, 0, 0, &res, err);
    if (rc < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return op_error_set(err, rc, "tls_cert",
                            "no TLS certificate %s and cannot make one: %s; run 'outpost cert "
                            "create --hosts NAME,ADDRESS --dir %s' as the daemon's user, or set "
                            "tls_cert/tls_key",
                            tls->cert, why, tls->dir);
    }
    char list[NODE_CERT_HOSTS_MAX * 48] = "";
    size_t used = 0;
    for (size_t i = 0; i < hosts.n && used < sizeof list; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? "," : "", hosts.name[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    log_notice("no TLS certificate %s: made one for %s, valid until %s, signed by the local CA "
               "%s/%s (%s; SHA-256 %s)%s",
               tls->cert, list, res.node_not_after, tls->dir, NODE_CERT_CA_PEM,
               res.ca_created ? "new" : "existing", res.ca_fingerprint,
               res.ca_created ? "; install that CA on staff devices (docs/USERS_AND_TLS.md)" : "");
    if (res.ca_unconstrained)
        log_warning("the local CA %s/%s has no name constraints: replace it with 'outpost cert "
                    "create --new-ca' (docs/USERS_AND_TLS.md)",
                    tls->dir, NODE_CERT_CA_PEM);
    return 0;
}

/* Defaults, then the file, then the flags (conf_load). On failure d->cfg
 * is unchanged. */
static int load_config(struct outpostd *d, struct op_error *err)
{
    return config_load(&d->cfg, d->config_path, apply_flags, d, err);
}

/* SIGHUP: the config file and the region policy again. Returns 0 when
 * both were taken, else the first refusal (out says why; daemon.h writes
 * it where `systemctl reload` reads it). */
static int reload(void *ctx, struct op_error *out)
{
    struct outpostd *d = ctx;
    struct op_error err;
    op_error_clear(&err);
    struct outpostd_config before = d->cfg;
    int refused = 0;
    if (load_config(d, &err) != 0) {
        log_err("reload refused, keeping the running config: %s", err.msg);
        refused = op_error_set(out, err.code < 0 ? err.code : -EINVAL, NULL,
                               "configuration refused, the running one stays: %s", err.msg);
    } else {
        if (strcmp(before.listen, d->cfg.listen) || strcmp(before.db, d->cfg.db) ||
            strcmp(before.tls_cert, d->cfg.tls_cert) || strcmp(before.tls, d->cfg.tls) ||
            before.allow_plain_http != d->cfg.allow_plain_http || d->cfg.workers != before.workers)
            log_warning("listen, db, tls and workers changes take effect after a restart");
        if (strcmp(before.hq_credentials, d->cfg.hq_credentials) ||
            strcmp(before.hq_url, d->cfg.hq_url) || strcmp(before.hq_ca_file, d->cfg.hq_ca_file) ||
            strcmp(before.spool_dir, d->cfg.spool_dir) ||
            strcmp(before.sync_window, d->cfg.sync_window) ||
            before.hq_insecure_tls != d->cfg.hq_insecure_tls ||
            before.spool_max_bytes != d->cfg.spool_max_bytes ||
            before.segment_bytes != d->cfg.segment_bytes ||
            before.sync_interval_ms != d->cfg.sync_interval_ms ||
            before.verify_interval != d->cfg.verify_interval ||
            before.sync_bandwidth != d->cfg.sync_bandwidth ||
            before.sync_daily_bytes != d->cfg.sync_daily_bytes ||
            before.sync_first_segment_ms != d->cfg.sync_first_segment_ms ||
            before.sync_hold_ms != d->cfg.sync_hold_ms)
            log_warning("sync settings take effect after a restart");
        if (strcmp(before.outreach_relay, d->cfg.outreach_relay) ||
            strcmp(before.outreach_relay_country, d->cfg.outreach_relay_country) ||
            strcmp(before.outreach_from, d->cfg.outreach_from) ||
            strcmp(before.outreach_public_url, d->cfg.outreach_public_url) ||
            strcmp(before.outreach_postal_address, d->cfg.outreach_postal_address) ||
            strcmp(before.outreach_user, d->cfg.outreach_user) ||
            strcmp(before.outreach_password_file, d->cfg.outreach_password_file) ||
            strcmp(before.outreach_ca_file, d->cfg.outreach_ca_file) ||
            before.outreach_allow_plain != d->cfg.outreach_allow_plain ||
            before.outreach_rate != d->cfg.outreach_rate ||
            before.outreach_daily_cap != d->cfg.outreach_daily_cap ||
            before.outreach_retry_s != d->cfg.outreach_retry_s ||
            before.outreach_max_attempts != d->cfg.outreach_max_attempts ||
            before.outreach_timeout_ms != d->cfg.outreach_timeout_ms)
            log_warning("outreach settings take effect after a restart");
        api_set_options(d->api, d->cfg.session_ttl_s, d->cfg.log_requests);
        log_set_level((enum log_level)d->cfg.log_level);
        log_set_timestamps(d->cfg.log_timestamps);
        log_notice("configuration reloaded");
    }
    op_error_clear(&err);
    if (api_reload_policy(d->api, &err) < 0) {
        log_err("policy reload refused, keeping the running policy: %s", err.msg);
        if (!refused)
            refused = op_error_set(out, err.code < 0 ? err.code : -EINVAL, NULL,
                                   "region policy refused, the running one stays: %s", err.msg);
    } else {
        log_notice("region policy reloaded (sha256 %s)", api_policy_hash(d->api));
        op_error_clear(&err);
        if (policy_voids_spool(d, &err) < 0) {
            log_err("the spool cut under the old policy could not be voided: %s", err.msg);
            if (!refused)
                refused = op_error_set(out, err.code < 0 ? err.code : -EIO, NULL,
                                       "the spool cut under the old policy could not be voided "
                                       "(sync voids it before its next segment): %s",
                                       err.msg);
        }
    }
    uplink_reload_policy(d->uplink);
    outreach_sender_reload(d->outreach);
    return refused;
}

static const struct daemon_hooks hooks = {.reload = reload, .stop = begin_stop};

/* Migrates an existing database's schema here rather than silently inside
 * api_new, so the log says that it happens, from which version to which
 * and how long it took (after an upgrade this is what a slow start is
 * doing). A database that does not exist yet, is newer than this build
 * or is not Outpost's is left to api_new, which creates it or refuses it
 * with its own message. Returns 0 or the failed migration's code (err
 * says why; nothing of that migration is left: each is a transaction). */
static int migrate_logged(const char *path, struct op_error *err)
{
    if (!strcmp(path, ":memory:") || access(path, F_OK) != 0)
        return 0;
    sqlite3 *db = NULL;
    struct op_error ignored;
    op_error_clear(&ignored);
    if (db_open(path, DB_OPEN_NO_MIGRATE, &db, &ignored) < 0)
        return 0;
    int from = 0, latest = db_latest_version(), rc = 0;
    if (db_schema_version(db, &from) < 0 || from >= latest) {
        db_close(db);
        return 0;
    }
    log_notice("database %s: migrating the schema from version %d to %d", path, from, latest);
    uint64_t t0 = uv_hrtime();
    rc = db_migrate(db, -1, err);
    if (rc < 0) {
        db_close(db);
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return op_error_set(err, rc, NULL,
                            "database %s: migrating the schema from version %d failed: %s", path,
                            from, why);
    }
    int to = from;
    (void)db_schema_version(db, &to);
    db_close(db);
    log_notice("database %s: schema migrated from version %d to %d (%d migrations, %.1f s)", path,
               from, to, rc, (double)(uv_hrtime() - t0) / 1e9);
    return 0;
}

/* The database, its -wal and -shm and its directory must be writable by
 * this user before anything is opened: a database made by root (`outpost
 * init` run without `runuser -u outpost`) would otherwise stop the daemon
 * with a bare "attempt to write a readonly database". Restarting cannot
 * fix it, so main exits 2 like a bad configuration (RestartPreventExitStatus
 * in the unit). The unit's pre-start step (outpost-backup --before-upgrade)
 * leaves this to the daemon: systemd retries a failed pre-start step like
 * a crash. Returns 0, or -EACCES with err naming the path and the fix. */
static int check_writable(const char *path, struct op_error *err)
{
    if (!strcmp(path, ":memory:"))
        return 0;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char wal[4096], shm[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    const char *files[] = {path, wal, shm, dir};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (access(files[i], F_OK) != 0 || access(files[i], W_OK) == 0)
            continue;
        char who[64];
        const struct passwd *pw = getpwuid(geteuid());
        if (pw)
            snprintf(who, sizeof who, "%s", pw->pw_name);
        else
            snprintf(who, sizeof who, "uid %u", (unsigned)geteuid());
        return op_error_set(err, -EACCES, NULL,
                            "%s is not writable by %s, so outpostd cannot use database %s; fix: "
                            "chown -R %s: %s (and run admin commands as: runuser -u %s -- "
                            "outpost ...)",
                            files[i], who, path, who, dir, who);
    }
    return 0;
}

/* The web app (docs/WEB_APP.md) at / and /app/, answered at the gate
 * (its files need no body, no credentials and no database); every other
 * path is the API's. */
static void serve_gate(void *ctx, struct http_exchange *x)
{
    if (web_owns(http_path(x)))
        web_serve(x);
    else
        api_gate(((struct outpostd *)ctx)->api, x);
}

static void serve_request(void *ctx, struct http_exchange *x)
{
    if (web_owns(http_path(x)))
        web_serve(x);
    else
        api_handle(((struct outpostd *)ctx)->api, x);
}

/* After each request: the API's log and metrics, and a write that
 * succeeded wakes the uplink, so its changes are cut at once rather than
 * at the next sync_interval (docs/OUTBOX.md, "When a segment is cut"). */
static void on_request_done(void *ctx, const struct http_log_entry *e)
{
    struct outpostd *d = ctx;
    api_log(d->api, e);
    const char *m = e->method ? e->method : "";
    if (d->uplink && e->status >= 200 && e->status < 300 && strcmp(m, "GET") && strcmp(m, "HEAD") &&
        strcmp(m, "OPTIONS"))
        uplink_kick(d->uplink);
}

int main(int argc, char **argv)
{
    daemon_init("outpostd");
    /* The unit's ExecReload: no kill(1) needed, and a refused file fails
     * `systemctl reload`. */
    if (argc >= 2 && !strcmp(argv[1], "--reload")) {
        if (argc != 3) {
            log_err("--reload needs exactly one argument, the daemon's process id (see --help)");
            return 2;
        }
        struct op_error err;
        op_error_clear(&err);
        int rc = daemon_reload_request(argv[2], DAEMON_RELOAD_WAIT_MS, &err);
        if (rc == DAEMON_RELOAD_REFUSED) {
            log_err("reload refused: %s", err.msg);
            return 1;
        }
        if (rc < 0) {
            log_err("reload: %s", err.msg);
            return rc == -EINVAL ? 2 : 1;
        }
        return 0;
    }
    int allow_root = daemon_take_allow_root(&argc, argv);
    struct outpostd d = {.argc = argc, .argv = argv};
    d.config_path = find_config_flag(argc, argv);
    struct op_error err;
    op_error_clear(&err);
    int rc = load_config(&d, &err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        log_err("%s", err.msg);
        return 2;
    }
    if (d.print_config) {
        config_print(stdout, &d.cfg);
        return 0;
    }
    log_set_level((enum log_level)d.cfg.log_level);
    log_set_timestamps(d.cfg.log_timestamps);
    /* Before the database is opened or created. */
    if (daemon_check_user(allow_root) < 0)
        return 2;

    /* The thread pool runs the database work; size it before first use. */
    char threads[16];
    snprintf(threads, sizeof threads, "%u", d.cfg.workers);
    setenv("UV_THREADPOOL_SIZE", threads, 1);

    d.loop = uv_default_loop();
    struct api_options ao = {
        .db_path = d.cfg.db,
        .workers = d.cfg.workers,
        .session_ttl_s = d.cfg.session_ttl_s,
        .log_requests = d.cfg.log_requests,
    };
    if (check_writable(d.cfg.db, &err) < 0) {
        log_err("%s", err.msg);
        return 2;
    }
    rc = migrate_logged(d.cfg.db, &err);
    if (rc == 0)
        rc = api_new(d.loop, &ao, &d.api, &err);
    if (rc < 0) {
        log_err("%s", err.msg);
        /* A database from a newer Outpost or not Outpost's at all will not
         * get better by restarting: exit 2 like a bad config, which the
         * unit lists in RestartPreventExitStatus. */
        return rc == DB_ENEWER || rc == DB_EFOREIGN ? 2 : 1;
    }
    struct config_tls tls;
    rc = config_tls_plan(&d.cfg, &tls, &err);
    if (rc == 0 && tls.node_cert)
        rc = ensure_node_cert(&d, &tls, &err);
    if (rc < 0) {
        log_err("%s", err.msg);
        api_free(d.api);
        return 2;
    }
    if (!tls.tls && !http_tls_listen_is_loopback(d.cfg.listen))
        log_warning("serving plain HTTP on %s (tls = off, allow_plain_http = true): passwords "
                    "and tokens cross the network in clear unless a TLS proxy is in front",
                    d.cfg.listen);
    struct http_server_config hc = {
        .listen = d.cfg.listen,
        .max_header_bytes = d.cfg.max_header_bytes,
        .max_body_bytes = d.cfg.max_body_bytes,
        .max_connections = d.cfg.max_connections,
        .max_connections_per_address = d.cfg.max_connections_per_address,
        .header_timeout_ms = d.cfg.header_timeout_ms,
        .body_timeout_ms = d.cfg.body_timeout_ms,
        .idle_timeout_ms = d.cfg.idle_timeout_ms,
        .tls_cert_file = tls.tls ? tls.cert : NULL,
        .tls_key_file = tls.tls ? tls.key : NULL,
        .gate = serve_gate, /* the default budget of buffered bodies: 64 MiB */
    };
    if (http_server_start(d.loop, &hc, serve_request, on_request_done, &d, &d.server, &err) < 0) {
        log_err("%s", err.msg);
        api_free(d.api);
        return 1;
    }
    api_set_server(d.api, d.server);
    if (start_sync(&d, &err) < 0) {
        log_err("sync: %s", err.msg);
        http_server_stop(d.server, NULL, NULL);
        uv_run(d.loop, UV_RUN_DEFAULT);
        api_free(d.api);
        return 2;
    }
    int64_t unknown = 0;
    char mo_secret[256];
    int mo_rc =
        outreach_sms_read_secret(d.cfg.outreach_sms_mo_secret_file, "outreach_sms_mo_secret_file",
                                 mo_secret, sizeof mo_secret, &err);
    api_outreach_set_mo_secret(mo_rc == 0 ? mo_secret : NULL);
    explicit_bzero(mo_secret, sizeof mo_secret);
    if (mo_rc < 0 || outreach_sender_start(&d.cfg, NULL, &d.outreach, &unknown, &err) < 0) {
        log_err("outreach: %s", err.msg);
        http_server_stop(d.server, NULL, NULL);
        uv_run(d.loop, UV_RUN_DEFAULT);
        api_free(d.api);
        return 2;
    }
    if (unknown)
        log_warning("outreach: %lld message(s) were being sent when outpostd stopped; their "
                    "outcome is unknown and they are not sent again (outpost outreach list "
                    "--state unknown; requeue to send)",
                    (long long)unknown);
    if (d.outreach)
        log_notice("outreach: sending through %s, at most %u a minute and %u a day",
                   d.cfg.outreach_relay, d.cfg.outreach_rate, d.cfg.outreach_daily_cap);

    rc = daemon_start(&d.daemon, d.loop, &hooks, &d);
    if (rc < 0) {
        log_err("cannot watch signals: %s", uv_strerror(rc));
        http_server_stop(d.server, NULL, NULL);
        uv_run(d.loop, UV_RUN_DEFAULT);
        api_free(d.api);
        return 1;
    }
    uv_timer_init(d.loop, &d.retention);
    d.retention.data = &d;
    uv_timer_start(&d.retention, on_retention, RETENTION_FIRST_MS, RETENTION_EVERY_MS);
    watch_override(&d);

    /* The listen address with the port actually bound (port 0 picks one). */
    char host[128];
    daemon_listen_host(d.cfg.listen, host, sizeof host);
    int port = http_server_port(d.server);
    log_notice("serving the API on %s://%s:%d/ (port %d), database %s, %u workers (version %s)",
               tls.tls ? "https" : "http", host, port, port, d.cfg.db, d.cfg.workers,
               OUTPOST_VERSION);
    daemon_ready("serving");

    uv_run(d.loop, UV_RUN_DEFAULT);

    /* Everything has been answered; close the connections, then make the
     * database file self-contained again. */
    api_free(d.api);
    sqlite3 *db = NULL;
    if (db_open(d.cfg.db, DB_OPEN_NO_MIGRATE, &db, &err) == 0) {
        int rcc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (rcc != SQLITE_OK)
            log_warning("checkpoint: %s", sqlite3_errmsg(db));
        db_close(db);
    }
    uv_loop_close(d.loop);
    log_notice("stopped");
    return 0;
}
