/*
 * outpost-hq, the HQ receiver: the daemon (`serve`: the receiver of
 * hq_serve.c with its store, signals and watchdog) and the administration
 * commands on the HQ store (enrolling and revoking
 * nodes, listing nodes, records, receipts and set-aside records, queueing
 * mailbox messages, and the analysts who read aggregates over HTTP). See docs/HQ.md. Every command
 * that changes the store does so in one transaction and checks its input before it writes, so a
 * refused command leaves the store as it was. Exit codes are outpost's
 * (appliance/cli/cli.h): 0 ok, 1 failed, 2 usage, 3 bad input, 4 conflict,
 * 5 not found.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "daemon.h"
#include "entity.h"
#include "hq_config.h"
#include "hq_serve.h"
#include "hq_aggregate.h"
#include "hq_store.h"
#include "hq_store_pg.h"
#include "log.h"
#include "node_credentials.h"
#include "outpost_config.h"
#include "policy.h"
#include "timefmt.h"
#include "uuid7.h"

enum hq_exit {
    EXIT_OK_ = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_BADINPUT = 3,
    EXIT_CONFLICT = 4,
    EXIT_NOTFOUND = 5,
};

/* Global options, found anywhere on the command line. */
struct opts {
    const char *db;
    const char *store;
    const char *config;
    int allow_root; /* --allow-root: serve may run as root */
    struct hq_config cfg;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: outpost-hq [--config FILE] [--db PATH | --store CONNINFO] COMMAND [ARGS]\n\n"
        "The Outpost HQ receiver: takes the nodes' segments and keeps what they sent.\n\n"
        "  serve [--KEY VALUE]...                  run the receiver (see --describe-config)\n"
        "  reload PID                              make the receiver PID reload (SIGHUP)\n"
        "                                          and wait: exit 1 when it refused the file\n"
        "  node add NAME --region CODE [--url URL] [--out FILE]\n"
        "                                          enrol a node; prints its credentials\n"
        "  node revoke NAME                        refuse the node's token from now on\n"
        "  nodes [--json]                          nodes with their sync state\n"
        "  records [--node NAME] [--entity E] [--json|--count]\n"
        "                                          the records HQ holds\n"
        "  receipts NAME [--json]                  a node's receipts\n"
        "  set-aside [--node NAME]                 records HQ could not apply\n"
        "  mailbox post NAME --kind policy|reference|aggregate_request FILE\n"
        "                                          queue a message for a node\n"
        "  aggregate-request NODE AGGREGATE [KEY=VALUE]\n"
        "                                          ask a node for an aggregate (mailbox)\n"
        "  aggregate AGGREGATE [--format text|csv|json] [--max-age SECONDS]\n"
        "                                          the latest answers of every region,\n"
        "                                          combined (docs/AGGREGATES.md)\n"
        "  analyst add NAME                        create an analyst; prints its token once\n"
        "  analyst list [--json]                   analysts, never their tokens\n"
        "  analyst revoke NAME                     refuse the analyst's token from now on\n"
        "  analyst grant-sql NAME                  a PostgreSQL login role reading the\n"
        "                                          analytics views only; prints its password\n\n"
        "  --config FILE      settings ('key = value' lines; the store is its db or store key)\n"
        "  --db PATH          the HQ store's SQLite file (overrides the config)\n"
        "  --store CONNINFO   the HQ store on PostgreSQL (postgresql://... or key=value)\n"
        "  --describe-config  every config key with its default\n"
        "  --allow-root       let serve run as root (a container whose only user is\n"
        "                     root; also OUTPOST_ALLOW_ROOT=1); refused otherwise\n"
        "  --version, --help\n");
}

/* Each command's own usage, for `outpost-hq COMMAND --help` (and `node add
 * --help`): what it takes, without touching the store. */
static const struct {
    const char *name;
    const char *text;
} command_help[] = {
    {"serve", "usage: outpost-hq [--config FILE] [--db PATH] serve [--KEY VALUE]...\n\n"
              "Run the receiver until SIGTERM or SIGINT; SIGHUP re-reads the region profiles\n"
              "and log_level. Every config key can be given as --KEY VALUE (flags override\n"
              "the file); 'outpost-hq --describe-config' lists them with their defaults.\n"},
    {"node add", "usage: outpost-hq [--db PATH] node add NAME --region CODE [--url URL] "
                 "[--out FILE]\n\n"
                 "Enrol a node for a region and print its credentials as JSON, or write\n"
                 "them to FILE (mode 0600) for the node's hq_credentials key.\n"},
    {"node revoke", "usage: outpost-hq [--db PATH] node revoke NAME\n\n"
                    "Refuse the node's token from now on.\n"},
    {"nodes", "usage: outpost-hq [--db PATH] nodes [--json]\n\n"
              "Each node with its region, status, last contact, lag, backlog, segments\n"
              "applied and rejected, and the last anti-entropy check the node reported\n"
              "(VERIFIED: agree, or the result and the records that differed, with the time).\n"},
    {"records", "usage: outpost-hq [--db PATH] records [--node NAME] [--entity E] "
                "[--json|--count]\n\n"
                "The records HQ holds, as the nodes projected them.\n"},
    {"receipts", "usage: outpost-hq [--db PATH] receipts NAME [--json]\n\n"
                 "A node's receipts: segment, status, records applied and set aside.\n"},
    {"set-aside", "usage: outpost-hq [--db PATH] set-aside [--node NAME]\n\n"
                  "Records HQ could not apply, with the reason.\n"},
    {"mailbox post", "usage: outpost-hq [--db PATH] mailbox post NAME --kind "
                     "policy|reference|aggregate_request FILE\n\n"
                     "Queue FILE for the node; it fetches it the next time its link is up.\n"},
    {"analyst add", "usage: outpost-hq [--db PATH] analyst add NAME\n\n"
                    "Create an HQ analyst, who reads the combined aggregates at\n"
                    "GET /api/v1/aggregates with Authorization: Bearer TOKEN. The token is\n"
                    "printed once, on standard output; HQ keeps only its SHA-256.\n"},
    {"analyst list", "usage: outpost-hq [--db PATH] analyst list [--json]\n\n"
                     "Each analyst with status, created and last used; never a token.\n"},
    {"analyst revoke", "usage: outpost-hq [--db PATH] analyst revoke NAME\n\n"
                       "Refuse the analyst's token from now on (401).\n"},
    {"analyst grant-sql",
     "usage: outpost-hq --store CONNINFO analyst grant-sql NAME\n\n"
     "On the PostgreSQL store only: create the login role NAME (a-z 0-9 _) that may\n"
     "read the analytics schema's views (docs/HQ.md, \"Analysts in SQL\") and nothing\n"
     "else. Its password is printed once on standard output; the server gets only\n"
     "its SCRAM verifier. CONNINFO's user must be allowed to create roles.\n"},
    {"reload", "usage: outpost-hq reload PID\n\n"
               "Send SIGHUP to the receiver PID and wait for its answer: exit 0 when it\n"
               "took the configuration, 1 with its reason when it refused the file.\n"},
};

/* `outpost-hq CMD [SUB] ... --help`: prints the usage of CMD (or of CMD
 * SUB for node, mailbox and analyst; of each of them when SUB is missing) and
 * returns 1; 0 when there is no --help or -h before a "--", or CMD is no
 * command. */
static int command_usage(const char *cmd, int argc, char **argv)
{
    int asked = 0;
    for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
        asked |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (!asked)
        return 0;
    char both[64];
    snprintf(both, sizeof both, "%s %s", cmd, argc > 0 ? argv[0] : "");
    int shown = 0;
    for (size_t i = 0; i < sizeof command_help / sizeof command_help[0]; i++)
        if (!strcmp(command_help[i].name, both)) {
            fputs(command_help[i].text, stdout);
            return 1;
        }
    size_t n = strlen(cmd);
    for (size_t i = 0; i < sizeof command_help / sizeof command_help[0]; i++)
        if (!strncmp(command_help[i].name, cmd, n) &&
            (command_help[i].name[n] == '\0' || command_help[i].name[n] == ' ')) {
            fputs(shown++ ? "\n" : "", stdout);
            fputs(command_help[i].text, stdout);
        }
    return shown > 0; /* an unknown command is refused as one */
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "outpost-hq %s: %s (see outpost-hq --help)\n", cmd, msg);
    return EXIT_USAGE;
}

static int exit_for(int rc)
{
    switch (rc) {
    case -EEXIST:
        return EXIT_CONFLICT;
    case -ENOENT:
        return EXIT_NOTFOUND;
    case -EINVAL:
    case -EFBIG:
    case -EPERM:
        return EXIT_BADINPUT;
    default:
        return EXIT_FAIL;
    }
}

static int failed(const char *cmd, int rc, const struct op_error *err)
{
    fprintf(stderr, "outpost-hq %s: %s\n", cmd, err->msg[0] ? err->msg : strerror(-rc));
    return exit_for(rc);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void iso_time(int64_t ms, char out[32])
{
    if (ms <= 0) {
        snprintf(out, 32, "-");
        return;
    }
    (void)timefmt_iso_s(ms, out, 32);
}

static int open_store(const char *cmd, struct opts *o, struct hq_store *st)
{
    struct op_error err;
    op_error_clear(&err);
    int rc = hq_store_open(hq_config_store(&o->cfg), st, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost-hq %s: %s\n", cmd, err.msg);
        return EXIT_FAIL;
    }
    return 0;
}

/* Opens the store, runs fn on it and closes it again: the command's exit
 * code (a store error is reported naming cmd). */
typedef int (*store_fn)(struct hq_store *st, void *ctx, struct op_error *err);
static int with_store(const char *cmd, struct opts *o, store_fn fn, void *ctx)
{
    struct hq_store st;
    int rc = open_store(cmd, o, &st);
    if (rc)
        return rc;
    struct op_error err;
    op_error_clear(&err);
    rc = fn(&st, ctx, &err);
    hq_store_close(&st);
    return rc < 0 ? failed(cmd, rc, &err) : EXIT_OK_;
}

/* Prints j (taken) as one compact line of JSON; -ENOMEM when j is NULL or
 * cannot be written out. */
static int print_json_line(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s)
        return -ENOMEM;
    printf("%s\n", s);
    free(s);
    return 0;
}

/* ---- node add / revoke ---- */

static int node_add(struct opts *o, int argc, char **argv)
{
    const char *cmd = "node add";
    const char *name = NULL, *region = NULL, *url = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--region") ? &region
                            : !strcmp(a, "--url")  ? &url
                            : !strcmp(a, "--out")  ? &out
                                                   : NULL;
        if (slot) {
            if (i + 1 >= argc)
                return usage_error(cmd, "%s needs a value", a);
            *slot = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return usage_error(cmd, "unknown option '%s'", a);
        } else if (!name) {
            name = a;
        } else {
            return usage_error(cmd, "unexpected argument '%s'", a);
        }
    }
    if (!name || !region)
        return usage_error(cmd, "NAME and --region CODE are required");
    if (!node_id_valid(name)) {
        fprintf(stderr,
                "outpost-hq %s: node name '%s' is not 1-64 of A-Z a-z 0-9 . _ : - ; nothing was "
                "changed\n",
                cmd, name);
        return EXIT_BADINPUT;
    }
    struct op_error err;
    op_error_clear(&err);
    char ppath[1024];
    int rc = policy_find_file(region, ppath, sizeof ppath, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost-hq %s: region %s: %s; nothing was changed\n", cmd, region,
                err.msg);
        return EXIT_BADINPUT;
    }
    struct policy *p = NULL;
    rc = policy_load_file(ppath, &p, &err);
    if (rc < 0) {
        fprintf(stderr, "outpost-hq %s: region %s has no valid profile: %s\n", cmd, region,
                err.msg);
        return EXIT_BADINPUT;
    }
    policy_free(p);
    struct node_credentials c;
    rc = node_credentials_generate(name, region, url, &c, &err);
    if (rc < 0)
        return failed(cmd, rc, &err);
    if (out && access(out, F_OK) == 0) {
        fprintf(stderr, "outpost-hq %s: %s exists; not overwriting credentials\n", cmd, out);
        return EXIT_CONFLICT;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)c.token, strlen(c.token), digest);

    struct hq_store st;
    if ((rc = open_store(cmd, o, &st)))
        return rc;
    int code = EXIT_OK_;
    if ((rc = st.ops->begin(st.impl, &err)) < 0 ||
        (rc = st.ops->node_add(st.impl, name, region, digest, c.hq_key, now_ms(), &err)) < 0) {
        st.ops->rollback(st.impl);
        code = failed(cmd, rc, &err);
        goto done;
    }
    if (out) {
        rc = node_credentials_write(out, &c, &err);
        if (rc < 0) {
            st.ops->rollback(st.impl);
            code = failed(cmd, rc, &err);
            goto done;
        }
    }
    if ((rc = st.ops->commit(st.impl, &err)) < 0) {
        st.ops->rollback(st.impl);
        if (out)
            (void)unlink(out);
        code = failed(cmd, rc, &err);
        goto done;
    }
    if (out) {
        fprintf(stderr, "outpost-hq: node %s (region %s) enrolled; credentials in %s\n", name,
                region, out);
    } else {
        char key[65];
        (void)codec_hex_encode(c.hq_key, sizeof c.hq_key, key, sizeof key);
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "format", NODE_CREDENTIALS_FORMAT, "node_id",
                      c.node_id, "region", c.region, "token", c.token, "hq_key", key);
        if (j && c.hq_url[0])
            json_object_set_new(j, "hq_url", json_string(c.hq_url));
        if (print_json_line(j) < 0) {
            fprintf(stderr, "outpost-hq %s: out of memory printing the credentials\n", cmd);
            code = EXIT_FAIL;
        }
        explicit_bzero(key, sizeof key);
    }
done:
    explicit_bzero(&c, sizeof c);
    hq_store_close(&st);
    return code;
}

static int revoke_node(struct hq_store *st, void *name, struct op_error *err)
{
    return st->ops->node_revoke(st->impl, name, now_ms(), err);
}

static int node_revoke(struct opts *o, int argc, char **argv)
{
    const char *cmd = "node revoke";
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(cmd, "expected exactly one node NAME");
    int code = with_store(cmd, o, revoke_node, argv[0]);
    if (code != EXIT_OK_)
        return code;
    fprintf(stderr, "outpost-hq: node %s revoked: its token is refused from now on\n", argv[0]);
    return EXIT_OK_;
}

/* ---- nodes ---- */

/* Uploads held in the spool per principal, read from the tus state files
 * (principal and complete lines; docs/TUS.md). -1 when the spool cannot
 * be read. */
static long backlog_of(const char *spool, const char *node)
{
    DIR *d = opendir(spool);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 7 || strcmp(de->d_name + len - 6, ".state"))
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;
        char buf[8192];
        ssize_t got = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (got <= 0)
            continue;
        buf[got] = '\0';
        char want[HQ_NODE_MAX + 16];
        snprintf(want, sizeof want, "\nprincipal %s\n", node);
        if (strstr(buf, want))
            n++;
    }
    closedir(d);
    return n;
}

struct nodes_ctx {
    struct opts *o;
    struct hq_store *st;
    int json;
    int64_t now;
};

static int print_node(void *ctx, const struct hq_node *n)
{
    struct nodes_ctx *c = ctx;
    long backlog = backlog_of(c->o->cfg.spool_dir, n->name);
    int64_t lag = n->has_last_segment && n->last_segment_created_ms > 0
                      ? (c->now - n->last_segment_created_ms) / 1000
                      : -1;
    char contact[32];
    iso_time(n->last_contact_ms, contact);
    /* the last anti-entropy check (docs/SYNC_PROTOCOL.md, "Anti-entropy") */
    struct hq_verify v;
    struct op_error verr;
    int has_v = c->st->ops->verify_get(c->st->impl, n->name, &v, &verr) == 0;
    char vat[32] = "";
    if (has_v)
        iso_time(v.at_ms, vat);
    if (c->json) {
        json_t *vj =
            has_v ? json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "at", vat,
                              "result", v.result, "compared", (json_int_t)v.compared, "hq_records",
                              (json_int_t)v.hq_records, "ranges", (json_int_t)v.ranges, "requests",
                              (json_int_t)v.requests, "bytes", (json_int_t)v.bytes, "drift",
                              (json_int_t)v.drift, "resent", (json_int_t)v.resent, "reported",
                              (json_int_t)v.reported)
                  : json_null();
        json_t *j = json_pack(
            "{s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:I, s:I, s:I, s:s, s:o}", "name", n->name,
            "region", n->region, "status", n->revoked ? "revoked" : "active", "last_contact",
            n->last_contact_ms > 0 ? json_string(contact) : json_null(), "segments_applied",
            (json_int_t)n->segments_applied, "last_segment",
            n->has_last_segment ? json_integer((json_int_t)n->last_segment) : json_null(), "lag_s",
            lag >= 0 ? json_integer(lag) : json_null(), "backlog",
            backlog >= 0 ? json_integer(backlog) : json_null(), "rejected",
            (json_int_t)n->segments_rejected, "refused", (json_int_t)n->segments_refused,
            "set_aside", (json_int_t)n->set_aside, "last_refusal", n->last_refusal, "verify", vj);
        return print_json_line(j);
    }
    char last[24], lags[24], bl[24];
    if (n->has_last_segment)
        snprintf(last, sizeof last, "%" PRIu64, n->last_segment);
    else
        snprintf(last, sizeof last, "-");
    if (lag >= 0)
        snprintf(lags, sizeof lags, "%" PRId64 "s", lag);
    else
        snprintf(lags, sizeof lags, "-");
    if (backlog >= 0)
        snprintf(bl, sizeof bl, "%ld", backlog);
    else
        snprintf(bl, sizeof bl, "?");
    char ver[64] = "-";
    if (has_v && !strcmp(v.result, "agree"))
        snprintf(ver, sizeof ver, "agree %s", vat);
    else if (has_v)
        snprintf(ver, sizeof ver, "%s:%" PRIu64 " %s", v.result, v.drift, vat);
    printf("%-20s %-7s %-8s %-21s %8" PRIu64 " %8s %8s %7s %8" PRIu64 " %7" PRIu64 " %9" PRIu64
           " %s\n",
           n->name, n->region, n->revoked ? "revoked" : "active", contact, n->segments_applied,
           last, lags, bl, n->segments_rejected, n->segments_refused, n->set_aside, ver);
    return 0;
}

static int list_nodes(struct hq_store *st, void *ctx, struct op_error *err)
{
    struct nodes_ctx *c = ctx;
    c->st = st;
    if (!c->json)
        printf("%-20s %-7s %-8s %-21s %8s %8s %8s %7s %8s %7s %9s %s\n", "NAME", "REGION", "STATUS",
               "LAST CONTACT", "APPLIED", "LAST", "LAG", "BACKLOG", "REJECTED", "REFUSED",
               "SET-ASIDE", "VERIFIED");
    return st->ops->node_list(st->impl, print_node, c, err);
}

static int nodes_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "nodes";
    struct nodes_ctx c = {.o = o, .now = now_ms()};
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            c.json = 1;
        else
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
    }
    return with_store(cmd, o, list_nodes, &c);
}

/* ---- records ---- */

struct records_ctx {
    const char *node, *entity;
    int json, count;
    uint64_t total;
};

static int print_record(void *ctx, const struct hq_record_row *r)
{
    struct records_ctx *c = ctx;
    if (!c->json) {
        printf("%s\t%s\t%s\t%" PRId64 "\t%s\n", r->node, r->entity, r->id, r->version, r->op);
        return 0;
    }
    json_t *rec = json_loads(r->json, 0, NULL);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}", "node", r->node, "entity", r->entity,
                          "id", r->id, "version", (json_int_t)r->version, "op", r->op, "record",
                          rec ? rec : json_null());
    return print_json_line(j);
}

static int print_count(void *ctx, const char *entity, uint64_t count)
{
    struct records_ctx *c = ctx;
    printf("%s %" PRIu64 "\n", entity, count);
    c->total += count;
    return 0;
}

static int list_records(struct hq_store *st, void *ctx, struct op_error *err)
{
    struct records_ctx *c = ctx;
    if (!c->count)
        return st->ops->records_list(st->impl, c->node, c->entity, print_record, c, err);
    int rc = st->ops->records_count(st->impl, c->node, c->entity, print_count, c, err);
    if (rc == 0)
        printf("total %" PRIu64 "\n", c->total);
    return rc;
}

static int records_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "records";
    const char *node = NULL, *entity = NULL;
    int json = 0, count = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--count")) {
            count = 1;
        } else if (!strcmp(argv[i], "--node") || !strcmp(argv[i], "--entity")) {
            if (i + 1 >= argc)
                return usage_error(cmd, "%s needs a value", argv[i]);
            *(argv[i][2] == 'n' ? &node : &entity) = argv[i + 1];
            i++;
        } else {
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (json && count)
        return usage_error(cmd, "--json and --count exclude each other");
    if (entity) {
        const struct entity_def *e = entity_by_name(entity);
        if (!e) {
            fprintf(stderr, "outpost-hq %s: unknown entity '%s'\n", cmd, entity);
            return EXIT_BADINPUT;
        }
        entity = e->name;
    }
    struct records_ctx c = {.node = node, .entity = entity, .json = json, .count = count};
    return with_store(cmd, o, list_records, &c);
}

/* ---- receipts, set-aside ---- */

static int print_receipt(void *ctx, const struct hq_receipt *r)
{
    int json = *(int *)ctx;
    char at[32];
    iso_time(r->received_ms, at);
    if (json) {
        json_t *j = json_pack(
            "{s:s, s:I, s:s, s:{s:I, s:I}, s:I, s:I, s:I, s:s, s:s}", "node", r->node, "segment",
            (json_int_t)r->segment, "status", hq_receipt_status_name(r->status), "to", "urgent",
            (json_int_t)r->to_urgent, "ordinary", (json_int_t)r->to_ordinary, "records",
            (json_int_t)r->records, "applied", (json_int_t)r->applied, "set_aside",
            (json_int_t)r->set_aside, "reason", r->reason, "received_at", at);
        return print_json_line(j);
    }
    printf("%" PRIu64 "\t%s\t%s\tto %" PRIu64 "/%" PRIu64 "\t%" PRIu64 " records, %" PRIu64
           " changed, %" PRIu64 " set aside%s%s\n",
           r->segment, hq_receipt_status_name(r->status), at, r->to_urgent, r->to_ordinary,
           r->records, r->applied, r->set_aside, r->reason[0] ? "\t" : "", r->reason);
    return 0;
}

struct receipts_ctx {
    const char *node;
    int json;
};

/* A node's receipts; an unknown node is -ENOENT, not an empty list. */
static int list_receipts(struct hq_store *st, void *ctx, struct op_error *err)
{
    struct receipts_ctx *c = ctx;
    struct hq_node n;
    int rc = st->ops->node_get(st->impl, c->node, &n, err);
    return rc < 0 ? rc : st->ops->receipts_list(st->impl, c->node, print_receipt, &c->json, err);
}

static int receipts_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "receipts";
    const char *node = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] != '-' && !node)
            node = argv[i];
        else
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
    }
    if (!node)
        return usage_error(cmd, "expected a node NAME");
    struct receipts_ctx c = {node, json};
    return with_store(cmd, o, list_receipts, &c);
}

static int print_set_aside(void *ctx, const struct hq_set_aside_row *r)
{
    (void)ctx;
    printf("%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\t%s\n", r->node, r->segment, r->line, r->entity,
           r->id[0] ? r->id : "-", r->reason);
    return 0;
}

static int list_set_aside(struct hq_store *st, void *node, struct op_error *err)
{
    return st->ops->set_aside_list(st->impl, node, print_set_aside, NULL, err);
}

static int set_aside_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "set-aside";
    const char *node = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--node") && i + 1 < argc)
            node = argv[++i];
        else
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
    }
    return with_store(cmd, o, list_set_aside, (void *)node);
}

/* ---- mailbox ---- */

/* Reads at most cap bytes of path into a new NUL-terminated buffer. */
static int read_small_file(const char *path, size_t cap, char **out, size_t *len,
                           struct op_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return op_error_set(err, -errno, NULL, "cannot read %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return op_error_set(err, -EINVAL, NULL, "%s is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > cap) {
        close(fd);
        return op_error_set(err, -EFBIG, NULL, "%s: %lld bytes, over the %zu-byte message cap",
                            path, (long long)sb.st_size, cap);
    }
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        close(fd);
        return op_error_set(err, -ENOMEM, NULL, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)sb.st_size) {
        free(buf);
        return op_error_set(err, -EIO, NULL, "cannot read all of %s", path);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int mailbox_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "mailbox post";
    if (argc < 1 || strcmp(argv[0], "post"))
        return usage_error("mailbox", "expected 'post NAME --kind KIND FILE'");
    const char *node = NULL, *kind = NULL, *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--kind")) {
            if (i + 1 >= argc)
                return usage_error(cmd, "--kind needs a value");
            kind = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(cmd, "unknown option '%s'", argv[i]);
        } else if (!node) {
            node = argv[i];
        } else if (!file) {
            file = argv[i];
        } else {
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!node || !kind || !file)
        return usage_error(cmd, "NAME, --kind KIND and FILE are required");
    if (strcmp(kind, "policy") && strcmp(kind, "reference") && strcmp(kind, "aggregate_request"))
        return usage_error(cmd, "--kind must be policy, reference or aggregate_request, not '%s'",
                           kind);
    struct op_error err;
    op_error_clear(&err);
    char *body = NULL;
    size_t len = 0;
    int rc = read_small_file(file, HQ_MAILBOX_BODY_MAX, &body, &len, &err);
    if (rc < 0)
        return failed(cmd, rc, &err);
    long bad = entity_utf8_bad_offset(body, len);
    if (bad >= 0) {
        fprintf(stderr, "outpost-hq %s: %s: byte %ld is not UTF-8 text; a message body is text\n",
                cmd, file, bad);
        free(body);
        return EXIT_BADINPUT;
    }
    struct hq_store st;
    if ((rc = open_store(cmd, o, &st))) {
        free(body);
        return rc;
    }
    int code = EXIT_OK_;
    struct hq_node n;
    rc = st.ops->node_get(st.impl, node, &n, &err);
    if (rc < 0) {
        code = failed(cmd, rc, &err);
        goto done;
    }
    char hash[POLICY_HASH_HEX] = "";
    if (!strcmp(kind, "policy")) {
        /* any file name: the node's region is what it must be for */
        struct policy *p = NULL;
        rc = policy_load_buffer_for(file, n.region, body, len, &p, &err);
        if (rc < 0) {
            fprintf(stderr, "outpost-hq %s: not a valid policy for node %s (region %s): %s\n", cmd,
                    node, n.region, err.msg);
            code = EXIT_BADINPUT;
            goto done;
        }
        snprintf(hash, sizeof hash, "%s", p->hash);
        policy_free(p);
    }
    uint64_t seq = 0;
    rc = st.ops->mailbox_post(st.impl, node, kind, body, len, now_ms(), &seq, &err);
    if (rc < 0) {
        code = failed(cmd, rc, &err);
        goto done;
    }
    printf("%" PRIu64 "\n", seq);
    fprintf(stderr, "outpost-hq: %s message %" PRIu64 " queued for node %s%s%s\n", kind, seq, node,
            hash[0] ? "; policy sha256 " : "", hash);
done:
    free(body);
    hq_store_close(&st);
    return code;
}

/* ---- aggregates ---- */

static int aggregate_request_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "aggregate-request";
    if (argc < 2 || argc > 3)
        return usage_error(cmd, "expected NODE AGGREGATE [KEY=VALUE]");
    for (const char *q = argv[1]; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_') ||
            q - argv[1] >= 64)
            return usage_error(cmd, "'%.64s' is not an aggregate name ([a-z0-9_], at most 64)",
                               argv[1]);
    if (argc == 3 && (!strchr(argv[2], '=') || strlen(argv[2]) > 64))
        return usage_error(cmd, "'%.64s' is not KEY=VALUE (at most 64 bytes)", argv[2]);
    json_t *b = json_pack("{s:s, s:[]}", "aggregate", argv[1], "params");
    if (b && argc == 3)
        json_array_append_new(json_object_get(b, "params"), json_string(argv[2]));
    char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (!body) {
        fprintf(stderr, "outpost-hq %s: out of memory\n", cmd);
        return EXIT_FAIL;
    }
    struct hq_store st;
    int rc;
    if ((rc = open_store(cmd, o, &st))) {
        free(body);
        return rc;
    }
    struct op_error err;
    op_error_clear(&err);
    struct hq_node n;
    uint64_t seq = 0;
    int code = EXIT_OK_;
    rc = st.ops->node_get(st.impl, argv[0], &n, &err);
    if (rc == 0)
        rc = st.ops->mailbox_post(st.impl, argv[0], "aggregate_request", body, strlen(body),
                                  now_ms(), &seq, &err);
    if (rc < 0) {
        code = failed(cmd, rc, &err);
    } else {
        printf("%" PRIu64 "\n", seq);
        fprintf(stderr,
                "outpost-hq: aggregate request %" PRIu64 " (%s) queued for node %s; it answers "
                "in its next segment\n",
                seq, body, argv[0]);
    }
    free(body);
    hq_store_close(&st);
    return code;
}

/* One row of the combined table: its label, key and cells, a suppressed
 * cell printed as such (never a number made up for it). */
static void print_cells_row(const char *label, const json_t *r)
{
    size_t j;
    const json_t *c;
    printf("%-10s %-24.24s", label, json_string_value(json_object_get(r, "key")));
    json_array_foreach(json_object_get(r, "cells"), j, c)
    {
        const json_t *n = json_object_get(c, "n");
        if (json_is_integer(n))
            printf(" %12" JSON_INTEGER_FORMAT, json_integer_value(n));
        else
            printf(" %12s", "suppressed");
    }
    printf("\n");
}

static void print_combined(const json_t *t)
{
    const json_t *cols = json_object_get(t, "cols");
    printf("%s, combined at %s (answers older than %" JSON_INTEGER_FORMAT " s are stale)\n",
           json_string_value(json_object_get(t, "aggregate")),
           json_string_value(json_object_get(t, "generated_at")),
           json_integer_value(json_object_get(t, "max_age_s")));
    size_t i, j;
    const json_t *r, *c;
    json_array_foreach(json_object_get(t, "regions"), i, r)
    {
        const char *st = json_string_value(json_object_get(r, "status"));
        printf("  %-10s %-24s %-9s", json_string_value(json_object_get(r, "region")),
               json_string_value(json_object_get(r, "node")), st);
        if (json_is_integer(json_object_get(r, "age_s")))
            printf(" age %" JSON_INTEGER_FORMAT " s",
                   json_integer_value(json_object_get(r, "age_s")));
        if (json_object_get(r, "reason"))
            printf(": %s", json_string_value(json_object_get(r, "reason")));
        printf("\n");
    }
    printf("%-10s %-24s", "region", json_string_value(json_object_get(t, "rows_label")));
    json_array_foreach(cols, j, c) printf(" %12.12s", json_string_value(c));
    printf("\n");
    json_array_foreach(json_object_get(t, "rows"), i, r)
        print_cells_row(json_string_value(json_object_get(r, "region")), r);
    json_array_foreach(json_object_get(t, "combined"), i, r) print_cells_row("(all)", r);
}

static int aggregate_cmd(struct opts *o, int argc, char **argv)
{
    const char *cmd = "aggregate";
    const char *name = NULL, *format = "text";
    int64_t max_age_s = HQ_AGGREGATE_MAX_AGE_MS / 1000;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            format = argv[++i];
        } else if (!strcmp(argv[i], "--max-age") && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            long long v = strtoll(argv[++i], &end, 10);
            if (errno || !end || *end || v < 1 || v > 3650LL * 86400)
                return usage_error(cmd, "--max-age: expected 1 to %lld seconds", 3650LL * 86400);
            max_age_s = v;
        } else if (argv[i][0] == '-') {
            return usage_error(cmd, "unknown option '%s' or it needs a value", argv[i]);
        } else if (!name) {
            name = argv[i];
        } else {
            return usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!name)
        return usage_error(cmd, "expected an AGGREGATE name");
    if (strcmp(format, "text") && strcmp(format, "csv") && strcmp(format, "json"))
        return usage_error(cmd, "--format must be text, csv or json, not '%s'", format);
    struct hq_store st;
    int rc;
    if ((rc = open_store(cmd, o, &st)))
        return rc;
    struct op_error err;
    op_error_clear(&err);
    json_t *t = NULL;
    rc = hq_aggregate_combine(&st, name, now_ms(), max_age_s * 1000, &t, &err);
    hq_store_close(&st);
    if (rc < 0)
        return failed(cmd, rc, &err);
    if (!strcmp(format, "json")) {
        char *text = json_dumps(t, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (text)
            printf("%s\n", text);
        free(text);
    } else if (!strcmp(format, "csv")) {
        (void)hq_aggregate_csv(t, stdout);
    } else {
        print_combined(t);
    }
    json_decref(t);
    return EXIT_OK_;
}

/* ---- analysts ---- */

static int analyst_add(struct opts *o, int argc, char **argv)
{
    const char *cmd = "analyst add";
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(cmd, "expected exactly one analyst NAME");
    const char *name = argv[0];
    if (!node_id_valid(name)) {
        fprintf(stderr,
                "outpost-hq %s: analyst name '%s' is not 1-64 of A-Z a-z 0-9 . _ : - ; nothing "
                "was changed\n",
                cmd, name);
        return EXIT_BADINPUT;
    }
    unsigned char raw[32];
    char token[65];
    int rc = uuid7_os_random(NULL, raw, sizeof raw);
    if (rc < 0) {
        fprintf(stderr, "outpost-hq %s: no random bytes for the token: %s\n", cmd, strerror(-rc));
        return EXIT_FAIL;
    }
    (void)codec_hex_encode(raw, sizeof raw, token, sizeof token);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), digest);
    struct hq_store st;
    if ((rc = open_store(cmd, o, &st))) {
        explicit_bzero(token, sizeof token);
        explicit_bzero(raw, sizeof raw);
        return rc;
    }
    struct op_error err;
    op_error_clear(&err);
    rc = st.ops->analyst_add(st.impl, name, digest, now_ms(), &err);
    hq_store_close(&st);
    int code = EXIT_OK_;
    if (rc < 0) {
        code = failed(cmd, rc, &err);
    } else {
        printf("%s\n", token);
        fprintf(stderr,
                "outpost-hq: analyst %s created; the token above is shown only now (HQ keeps "
                "its hash): send it as Authorization: Bearer TOKEN to /api/v1/aggregates\n",
                name);
    }
    explicit_bzero(token, sizeof token);
    explicit_bzero(raw, sizeof raw);
    return code;
}

static int print_analyst(void *ctx, const struct hq_analyst *a)
{
    int json = *(int *)ctx;
    char created[32], used[32], revoked[32];
    iso_time(a->created_ms, created);
    iso_time(a->last_used_ms, used);
    iso_time(a->revoked_ms, revoked);
    if (json)
        return print_json_line(
            json_pack("{s:s, s:s, s:s, s:o, s:o}", "name", a->name, "status",
                      a->revoked ? "revoked" : "active", "created", created, "last_used",
                      a->last_used_ms > 0 ? json_string(used) : json_null(), "revoked",
                      a->revoked && a->revoked_ms > 0 ? json_string(revoked) : json_null()));
    printf("%-24s %-8s %-21s %-21s\n", a->name, a->revoked ? "revoked" : "active", created, used);
    return 0;
}

static int list_analysts(struct hq_store *st, void *ctx, struct op_error *err)
{
    if (!*(int *)ctx)
        printf("%-24s %-8s %-21s %-21s\n", "NAME", "STATUS", "CREATED", "LAST USED");
    return st->ops->analyst_list(st->impl, print_analyst, ctx, err);
}

static int revoke_analyst(struct hq_store *st, void *name, struct op_error *err)
{
    return st->ops->analyst_revoke(st->impl, name, now_ms(), err);
}

/* analyst grant-sql NAME: a PostgreSQL login role that reads the
 * analytics views only (docs/HQ.md, "Analysts in SQL"); its password is
 * made here, printed once, and only its SCRAM verifier reaches the
 * server. */
static int analyst_grant_sql(struct opts *o, int argc, char **argv)
{
    const char *cmd = "analyst grant-sql";
    if (argc != 1 || argv[0][0] == '-')
        return usage_error(cmd, "expected exactly one role NAME");
    const char *spec = hq_config_store(&o->cfg);
    if (!hq_store_is_pg(spec)) {
        fprintf(stderr,
                "outpost-hq %s: the store is the SQLite file %s; SQL access for analysts needs "
                "the PostgreSQL store (store = postgresql://...); nothing was changed\n",
                cmd, spec);
        return EXIT_USAGE;
    }
    unsigned char raw[24];
    char password[49];
    int rc = uuid7_os_random(NULL, raw, sizeof raw);
    if (rc < 0) {
        fprintf(stderr, "outpost-hq %s: no random bytes for the password: %s\n", cmd,
                strerror(-rc));
        return EXIT_FAIL;
    }
    (void)codec_hex_encode(raw, sizeof raw, password, sizeof password);
    struct op_error err;
    op_error_clear(&err);
    rc = hq_store_pg_grant_analyst(spec, argv[0], password, &err);
    int code = EXIT_OK_;
    if (rc == -EINVAL && !strcmp(err.field, "name")) {
        fprintf(stderr, "outpost-hq %s: %s; nothing was changed\n", cmd, err.msg);
        code = EXIT_BADINPUT;
    } else if (rc < 0) {
        code = failed(cmd, rc, &err);
    } else {
        printf("%s\n", password);
        fprintf(stderr,
                "outpost-hq: role %s may log in to HQ's database with the password above "
                "(shown only now) and read the analytics schema's views, nothing else\n",
                argv[0]);
    }
    explicit_bzero(password, sizeof password);
    explicit_bzero(raw, sizeof raw);
    return code;
}

static int analyst_cmd(struct opts *o, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "add"))
        return analyst_add(o, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "grant-sql"))
        return analyst_grant_sql(o, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "list")) {
        int json = 0;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--json"))
                json = 1;
            else
                return usage_error("analyst list", "unexpected argument '%s'", argv[i]);
        }
        return with_store("analyst list", o, list_analysts, &json);
    }
    if (argc >= 1 && !strcmp(argv[0], "revoke")) {
        const char *cmd = "analyst revoke";
        if (argc != 2 || argv[1][0] == '-')
            return usage_error(cmd, "expected exactly one analyst NAME");
        int code = with_store(cmd, o, revoke_analyst, argv[1]);
        if (code == EXIT_OK_)
            fprintf(stderr, "outpost-hq: analyst %s revoked: its token is refused from now on\n",
                    argv[1]);
        return code;
    }
    return usage_error("analyst", "expected 'add', 'list', 'revoke' or 'grant-sql'");
}

/* ---- serve ---- */

static int set_db(struct hq_config *c, const struct opts *o, struct op_error *err)
{
    if (o->store && hq_config_set(c, "store", o->store, "--store", err) < 0)
        return err ? err->code : -EINVAL;
    return o->db ? hq_config_set(c, "db", o->db, "--db", err) : 0;
}

/* The administration commands' command line over the file: --db. */
static int db_overlay(void *conf, void *ctx, struct op_error *err)
{
    return set_db(conf, ctx, err);
}

/* serve's command line, kept for SIGHUP. */
struct serve_line {
    const struct opts *o;
    int argc;
    char **argv;
    int print; /* --print-config */
};

/* Puts "serve: " before err's message (and suffix after it): the
 * daemon's command line, told in the journal. */
static int serve_error(struct op_error *err, int rc, const char *suffix)
{
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return op_error_set(err, rc, NULL, "serve: %s%s", why, suffix);
}

/* serve's command line over the file: --db, then --KEY VALUE flags, then
 * the cross-key check. */
static int serve_overlay(void *conf, void *ctx, struct op_error *err)
{
    struct serve_line *l = ctx;
    int rc = set_db(conf, l->o, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < l->argc; i++) {
        if (!strcmp(l->argv[i], "--print-config")) {
            l->print = 1;
            continue;
        }
        struct conf_flag f;
        if ((rc = conf_flag_read(l->argc, l->argv, &i, &f, err)) < 0)
            return serve_error(err, rc, " (see outpost-hq --help)");
        if ((rc = hq_config_set(conf, f.key, f.value, f.where, err)) < 0)
            return serve_error(err, rc, "");
    }
    if ((rc = hq_config_check(conf, err)) < 0)
        return serve_error(err, rc, "");
    return 0;
}

/* The daemon: the receiver (hq_serve.h) on the default loop, with the
 * store and the start-up both daemons share (daemon.h). */
struct hq_daemon {
    struct daemon daemon;
    const struct hq_config *cfg;
    struct serve_line *line;
    struct hq_serve *hq;
};

static void serve_stopped(void *arg)
{
    struct hq_daemon *d = arg;
    d->hq = NULL;
    daemon_close(&d->daemon);
}

static void serve_stop(void *ctx)
{
    struct hq_daemon *d = ctx;
    hq_serve_stop(d->hq, serve_stopped, d);
}

/* SIGHUP: the region profiles are read again on next use, and the config
 * is read again for its log_level (the rest takes a restart: the listener,
 * spool and store are open). The line is logged before the new level
 * applies, so it shows even when that level leaves notices out. */
static int serve_reload(void *ctx, struct op_error *out)
{
    struct hq_daemon *d = ctx;
    hq_serve_reload(d->hq);
    struct hq_config next;
    struct op_error err;
    op_error_clear(&err);
    if (hq_config_load(&next, d->line->o->config, serve_overlay, d->line, &err) < 0) {
        log_err("reload refused, keeping the running config: %s", err.msg);
        log_notice("SIGHUP: region profiles will be read again on next use");
        return op_error_set(out, err.code < 0 ? err.code : -EINVAL, NULL,
                            "configuration refused, the running one stays: %s", err.msg);
    }
    log_notice("SIGHUP: log_level %s; region profiles will be read again on next use "
               "(other settings take effect after a restart)",
               log_level_name((enum log_level)next.log_level));
    log_set_level((enum log_level)next.log_level);
    log_set_timestamps(next.log_timestamps);
    return 0;
}

static const struct daemon_hooks serve_hooks = {.reload = serve_reload, .stop = serve_stop};

static int open_spec(void *ctx, struct hq_store *out, struct op_error *err)
{
    return hq_store_open(ctx, out, err);
}

/* Runs until SIGTERM or SIGINT: 0 after a clean stop, 1 when it cannot
 * start. Logs "listening on http[s]://ADDR:PORT" once serving. */
static int serve_run(const struct hq_config *cfg, struct serve_line *line)
{
    struct hq_daemon d = {.cfg = cfg, .line = line};
    struct hq_store store;
    struct op_error err;
    op_error_clear(&err);
    int rc = hq_store_open(hq_config_store(cfg), &store, &err);
    if (rc < 0) {
        log_err("%s", err.msg);
        return EXIT_FAIL;
    }
    uv_loop_t *loop = uv_default_loop();
    /* The apply pool's threads each open their own connection. */
    struct hq_store_opener opener = {.open = open_spec, .ctx = (void *)hq_config_store(cfg)};
    rc = hq_serve_start_pool(loop, cfg, &store, &opener, NULL, &d.hq, &err);
    if (rc < 0) {
        log_err("%s", err.msg);
        uv_run(loop, UV_RUN_DEFAULT); /* a pool already started ends */
        hq_store_close(&store);
        return EXIT_FAIL;
    }
    rc = daemon_start(&d.daemon, loop, &serve_hooks, &d);
    if (rc < 0) {
        log_err("cannot watch signals: %s", uv_strerror(rc));
        hq_serve_stop(d.hq, NULL, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        hq_store_close(&store);
        return EXIT_FAIL;
    }
    char host[128];
    daemon_listen_host(cfg->listen, host, sizeof host);
    /* never the conninfo: it may hold a password */
    log_info("store %s, upload spool %s", cfg->store[0] ? "on PostgreSQL (store)" : cfg->db,
             cfg->spool_dir);
    log_notice("listening on %s://%s:%d", cfg->tls_cert[0] ? "https" : "http", host,
               hq_serve_port(d.hq));
    daemon_ready("serving");

    uv_run(loop, UV_RUN_DEFAULT);

    hq_store_close(&store);
    uv_loop_close(loop);
    log_notice("stopped");
    return EXIT_OK_;
}

static int serve_cmd(struct opts *o, int argc, char **argv)
{
    struct serve_line line = {.o = o, .argc = argc, .argv = argv};
    struct op_error err;
    op_error_clear(&err);
    if (hq_config_load(&o->cfg, o->config, serve_overlay, &line, &err) < 0) {
        log_err("%s", err.msg);
        return EXIT_USAGE;
    }
    if (line.print) {
        hq_config_print(stdout, &o->cfg);
        return EXIT_OK_;
    }
    log_set_level((enum log_level)o->cfg.log_level);
    log_set_timestamps(o->cfg.log_timestamps);
    /* Before the store is opened or created. */
    if (daemon_check_user(o->allow_root) < 0)
        return EXIT_USAGE;
    return serve_run(&o->cfg, &line);
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    /* Every file outpost-hq creates (hq.db holds every node's key, the
     * credentials file a node's token) is its user's alone. */
    umask(077);
    o.allow_root = daemon_take_allow_root(&argc, argv);
    /* Global options anywhere: take them out of argv. */
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--db") || !strcmp(a, "--config")) && i + 1 < argc) {
            *(a[2] == 'd' ? &o.db : &o.config) = argv[++i];
        } else if (!strcmp(a, "--store") && i + 1 < argc) {
            o.store = argv[++i];
        } else if (!strncmp(a, "--store=", 8)) {
            o.store = a + 8;
        } else if (!strncmp(a, "--db=", 5)) {
            o.db = a + 5;
        } else if (!strncmp(a, "--config=", 9)) {
            o.config = a + 9;
        } else if (!strcmp(a, "--db") || !strcmp(a, "--config") || !strcmp(a, "--store")) {
            fprintf(stderr, "outpost-hq: %s needs a value\n", a);
            return EXIT_USAGE;
        } else {
            argv[++n] = argv[i];
        }
    }
    argc = n + 1;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK_;
    }
    if (!strcmp(cmd, "--version")) {
        printf("outpost-hq %s\n", OUTPOST_VERSION);
        return EXIT_OK_;
    }
    if (!strcmp(cmd, "--describe-config")) {
        hq_config_describe(stdout);
        return EXIT_OK_;
    }
    int sub = argc - 2;
    char **sv = argv + 2;
    struct op_error err;
    if (command_usage(cmd, sub, sv))
        return EXIT_OK_;
    /* serve is the daemon: its lines go to the journal with a priority
     * (log.h); the other commands talk to a person at a terminal. */
    if (!strcmp(cmd, "serve")) {
        daemon_init("outpost-hq");
        return serve_cmd(&o, sub, sv);
    }
    /* The unit's ExecReload: SIGHUP without kill(1), and a refused file
     * fails `systemctl reload`. */
    if (!strcmp(cmd, "reload")) {
        daemon_init("outpost-hq");
        if (sub != 1)
            return usage_error("reload", "expected one argument, the daemon's process id");
        op_error_clear(&err);
        int rc = daemon_reload_request(sv[0], DAEMON_RELOAD_WAIT_MS, &err);
        if (rc == DAEMON_RELOAD_REFUSED) {
            log_err("reload refused: %s", err.msg);
            return EXIT_FAIL;
        }
        if (rc < 0) {
            log_err("reload: %s", err.msg);
            return rc == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
        }
        return EXIT_OK_;
    }
    op_error_clear(&err);
    if (hq_config_load(&o.cfg, o.config, db_overlay, &o, &err) < 0) {
        fprintf(stderr, "outpost-hq: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (!strcmp(cmd, "node")) {
        if (sub >= 1 && !strcmp(sv[0], "add"))
            return node_add(&o, sub - 1, sv + 1);
        if (sub >= 1 && !strcmp(sv[0], "revoke"))
            return node_revoke(&o, sub - 1, sv + 1);
        return usage_error("node", "expected 'add' or 'revoke'");
    }
    if (!strcmp(cmd, "nodes"))
        return nodes_cmd(&o, sub, sv);
    if (!strcmp(cmd, "records"))
        return records_cmd(&o, sub, sv);
    if (!strcmp(cmd, "receipts"))
        return receipts_cmd(&o, sub, sv);
    if (!strcmp(cmd, "set-aside"))
        return set_aside_cmd(&o, sub, sv);
    if (!strcmp(cmd, "mailbox"))
        return mailbox_cmd(&o, sub, sv);
    if (!strcmp(cmd, "aggregate-request"))
        return aggregate_request_cmd(&o, sub, sv);
    if (!strcmp(cmd, "aggregate"))
        return aggregate_cmd(&o, sub, sv);
    if (!strcmp(cmd, "analyst"))
        return analyst_cmd(&o, sub, sv);
    fprintf(stderr, "outpost-hq: unknown command '%s' (see outpost-hq --help)\n", cmd);
    return EXIT_USAGE;
}
