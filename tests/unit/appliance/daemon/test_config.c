/* Tests for appliance/daemon/config.c: defaults, files, flags, precise errors,
 * and that a failed load leaves the running config untouched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string.h>

#include "config.h"
#include "log.h"
#include "outreach_sms_sender.h"
#include "policy.h"
#include "fixture.h"
#include "testlib.h"

static void defaults(void)
{
    struct outpostd_config c;
    config_defaults(&c);
    CHECK_STR(c.db, "/var/lib/outpost/node.db");
    CHECK_STR(c.listen, "0.0.0.0:8443");
    CHECK_STR(c.tls, "auto");
    CHECK_EQ(c.allow_plain_http, 0);
    CHECK_EQ(c.max_connections, 512);
    CHECK_EQ(c.max_connections_per_address, 32);
    CHECK_EQ(c.max_body_bytes, 1048576);
    CHECK_EQ(c.workers, 4);
    CHECK_EQ(c.log_requests, 1);
    CHECK_EQ(c.log_level, LOG_LEVEL_INFO);
    CHECK_STR(c.tls_cert, "");
    struct op_error err;
    CHECK_EQ(config_check(&c, &err), 0);
}

static void file_values(void)
{
    struct outpostd_config c;
    config_defaults(&c);
    struct op_error err;
    const char *p = fx_file("ok.conf", "# branch office\n\n  listen = 127.0.0.1:9000  \n"
                                       "workers=2\nlog_requests = no\n"
                                       "max_connections_per_address = 8\n"
                                       "log_level = warning\n"
                                       "db = /srv/outpost/node.db\n");
    CHECK_EQ(config_load_file(&c, p, &err), 0);
    CHECK_STR(c.listen, "127.0.0.1:9000");
    CHECK_EQ(c.workers, 2);
    CHECK_EQ(c.log_requests, 0);
    CHECK_EQ(c.log_level, LOG_LEVEL_WARNING);
    CHECK_STR(c.db, "/srv/outpost/node.db");
    CHECK_EQ(c.max_connections_per_address, 8);
    CHECK_EQ(c.max_connections, 512); /* untouched keys keep their value */
}

static void errors_name_file_line_key(void)
{
    struct outpostd_config c;
    config_defaults(&c);
    c.workers = 3; /* the "running" config */
    struct op_error err;
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        {"listen = 127.0.0.1:1\nworkers = many\n",
         "bad.conf:2: workers: expected a whole number from 1 "
         "to 64, got 'many'"},
        {"listen = 127.0.0.1:1\ncolour = blue\n", "bad.conf:2: unknown key 'colour'"},
        {"workers = 2\nworkers = 3\n", "bad.conf:2: workers: set twice"},
        {"just words\n", "bad.conf:1: expected 'key = value'"},
        {"max_connections = 0\n", "bad.conf:1: max_connections: expected a whole number from 1"},
        {"max_connections = -5\n", "max_connections: expected a whole number"},
        {"max_connections_per_address = 0\n",
         "bad.conf:1: max_connections_per_address: expected a whole number from 1"},
        {"log_requests = perhaps\n", "bad.conf:1: log_requests: expected true or false"},
        {"log_level = verbose\n",
         "bad.conf:1: log_level: expected err, warning, notice, info or debug, got 'verbose'"},
        {"db = relative/node.db\n", "bad.conf:1: db: must be an absolute path"},
        {"tls_cert = /etc/outpost/node.pem\n", "tls_cert and tls_key must be set together"},
        {"listen = not-an-address\n", "listen: bad listen address \"not-an-address\""},
        {"listen = 127.0.0.1:65536\n", "listen: bad listen address \"127.0.0.1:65536\""},
        {"listen = branch.example:8443\n", "expected IPV4:PORT or [IPV6]:PORT"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = fx_file("bad.conf", cases[i].text);
        op_error_clear(&err);
        CHECK(config_load_file(&c, p, &err) < 0);
        CHECK_CONTAINS(err.msg, cases[i].expect);
        CHECK_EQ(c.workers, 3);
    }
    char missing[320];
    snprintf(missing, sizeof missing, "%s/missing.conf", fx_dir);
    CHECK_EQ(config_load_file(&c, missing, &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "missing.conf");
}

static void flags(void)
{
    struct outpostd_config c;
    config_defaults(&c);
    struct op_error err;
    CHECK_EQ(config_set(&c, "listen", "[::1]:0", "--listen", &err), 0);
    CHECK_STR(c.listen, "[::1]:0");
    CHECK_EQ(config_set(&c, "nope", "1", "--nope", &err), -ENOENT);
    CHECK_CONTAINS(err.msg, "--nope: unknown key 'nope'");
    CHECK_EQ(config_set(&c, "workers", "65", "--workers", &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "--workers: workers: expected a whole number from 1 to 64");
}

static void describe_is_loadable(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/described.conf", fx_dir);
    FILE *f = fopen(path, "w");
    config_describe(f);
    fclose(f);
    struct outpostd_config a, b;
    config_defaults(&a);
    config_defaults(&b);
    struct op_error err;
    CHECK_EQ(config_load_file(&b, path, &err), 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
}

/* The sync keys: sizes and rates with units, the window, hq_url. */
static void sync_keys(void)
{
    struct outpostd_config c;
    config_defaults(&c);
    CHECK_EQ(c.spool_max_bytes, 268435456);
    CHECK_EQ(c.segment_bytes, 480000);
    CHECK_EQ(c.sync_interval_ms, 10000);
    CHECK_EQ(c.sync_bandwidth, 0);
    CHECK_EQ(c.sync_daily_bytes, 0);
    CHECK_EQ(c.sync_uploads_in_flight, 2);
    CHECK_EQ(c.hq_insecure_tls, 0);
    CHECK_STR(c.hq_credentials, "");
    struct op_error err;
    const char *p = fx_file("sync.conf", "hq_credentials = /etc/outpost/hq.json\n"
                                         "hq_url = https://hq.example:8443\n"
                                         "sync_bandwidth = 64kbit\n"
                                         "sync_window = 22:00-06:00\n"
                                         "sync_daily_bytes = 50MB\n"
                                         "sync_uploads_in_flight = 1\n"
                                         "segment_bytes = 64KiB\n");
    CHECK_EQ(config_load_file(&c, p, &err), 0);
    CHECK_EQ(c.sync_bandwidth, 8000);
    CHECK_STR(c.sync_window, "22:00-06:00");
    CHECK_EQ(c.sync_daily_bytes, 50000000);
    CHECK_EQ(c.segment_bytes, 65536);
    CHECK_EQ(c.sync_uploads_in_flight, 1);
    CHECK_STR(c.hq_url, "https://hq.example:8443");
    struct outpostd_config before = c;
    static const struct {
        const char *name, *text, *msg;
    } bad[] = {
        {"bad1.conf", "sync_window = 25:00-06:00\n",
         "bad1.conf:1: sync_window: expected HH:MM-HH:MM"},
        {"bad2.conf", "\nsegment_bytes = 64kbit\n", "bad2.conf:2: segment_bytes: expected a size"},
        {"bad3.conf", "spool_max_bytes = 10KB\n",
         "bad3.conf:1: spool_max_bytes: expected 65536 to"},
        {"bad5.conf", "\n\nsync_uploads_in_flight = 3\n",
         "bad5.conf:3: sync_uploads_in_flight: expected a whole number from 1 to 2, got '3'"},
        {"bad6.conf", "sync_uploads_in_flight = two\n", "bad6.conf:1: sync_uploads_in_flight:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = fx_file(bad[i].name, bad[i].text);
        CHECK_EQ(config_load_file(&c, p, &err), -EINVAL);
        CHECK_CONTAINS(err.msg, bad[i].msg);
    }
    p = fx_file("bad4.conf", "hq_url = ftp://hq\n");
    CHECK_EQ(config_load_file(&c, p, &err), -EINVAL);
    CHECK_STR(err.field, "hq_url");
    CHECK_EQ(memcmp(&c, &before, sizeof c), 0); /* untouched */
    CHECK_EQ(config_set(&c, "sync_bandwidth", "1Mbit/s", "--sync-bandwidth", &err), 0);
    CHECK_EQ(c.sync_bandwidth, 125000);
}

/* Loads text over the defaults and returns config_tls_plan's result. */
static int plan_of(const char *text, struct config_tls *plan, struct op_error *err)
{
    struct outpostd_config c;
    config_defaults(&c);
    const char *p = fx_file("tls.conf", text);
    op_error_clear(err);
    int rc = config_load_file(&c, p, err);
    if (rc < 0)
        return rc;
    return config_tls_plan(&c, plan, err);
}

/* HTTPS by default; plain HTTP only on loopback or when the admin says
 * so twice (tls = off and allow_plain_http). */
static void plain_http_only_on_loopback(void)
{
    struct config_tls t;
    struct op_error err;

    /* The shipped defaults: HTTPS with the node certificate beside the
     * database. */
    CHECK_EQ(plan_of("", &t, &err), 0);
    CHECK_EQ(t.tls, 1);
    CHECK_EQ(t.node_cert, 1);
    CHECK_STR(t.cert, "/var/lib/outpost/node.pem");
    CHECK_STR(t.key, "/var/lib/outpost/node.key");
    CHECK_STR(t.dir, "/var/lib/outpost");
    CHECK_EQ(plan_of("listen = 0.0.0.0:8080\ndb = /srv/o/node.db\n", &t, &err), 0);
    CHECK_EQ(t.tls, 1);
    CHECK_STR(t.cert, "/srv/o/node.pem");
    CHECK_EQ(plan_of("listen = [::]:8443\n", &t, &err), 0);
    CHECK_EQ(t.tls, 1);

    /* Loopback: plain HTTP unless asked for TLS. */
    static const char *plain[] = {
        "listen = 127.0.0.1:8080\n",
        "listen = [::1]:0\n",
        "listen = 127.0.0.1:0\ntls = off\n",
        "listen = 0.0.0.0:8080\ntls = off\nallow_plain_http = true\n",
        "listen = 192.168.1.10:80\ntls = off\nallow_plain_http = yes\n",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        int rc = plan_of(plain[i], &t, &err);
        if (rc)
            fprintf(stderr, "%s: %s\n", plain[i], err.msg);
        CHECK_EQ(rc, 0);
        CHECK_EQ(t.tls, 0);
    }
    CHECK_EQ(plan_of("listen = 127.0.0.1:0\ntls = on\n", &t, &err), 0);
    CHECK_EQ(t.tls, 1);
    CHECK_EQ(t.node_cert, 1);
    CHECK_EQ(plan_of("listen = 127.0.0.1:0\ntls_cert = /e/c.pem\ntls_key = /e/k.pem\n", &t, &err),
             0);
    CHECK_EQ(t.tls, 1);
    CHECK_EQ(t.node_cert, 0);
    CHECK_STR(t.cert, "/e/c.pem");
    CHECK_STR(t.key, "/e/k.pem");
    /* allow_plain_http alone does not turn TLS off. */
    CHECK_EQ(plan_of("allow_plain_http = true\n", &t, &err), 0);
    CHECK_EQ(t.tls, 1);

    /* Refused, naming the key and the ways out. */
    static const struct {
        const char *text, *field, *msg;
    } bad[] = {
        {"listen = 0.0.0.0:8080\ntls = off\n", "listen",
         "listen 0.0.0.0:8080 is plain HTTP on a non-loopback address; set tls = auto"},
        {"listen = [::]:8080\ntls = off\n", "listen", "allow_plain_http"},
        {"listen = 10.0.0.2:8080\ntls = off\n", "listen", "tls_cert/tls_key"},
        {"tls = maybe\n", "tls", "tls: expected auto, on or off, got 'maybe'"},
        {"tls = off\ntls_cert = /e/c.pem\ntls_key = /e/k.pem\n", "tls", "tls = off but"},
        {"tls_key = /e/k.pem\n", "tls_cert", "set together"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(plan_of(bad[i].text, &t, &err), -EINVAL);
        CHECK_CONTAINS(err.msg, bad[i].msg);
        CHECK_STR(err.field, bad[i].field);
    }
    /* A refused file leaves the running config as it was. */
    struct outpostd_config c;
    config_defaults(&c);
    snprintf(c.listen, sizeof c.listen, "127.0.0.1:1");
    const char *p = fx_file("off.conf", "listen = 0.0.0.0:8080\ntls = off\n");
    CHECK_EQ(config_load_file(&c, p, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "off.conf");
    CHECK_STR(c.listen, "127.0.0.1:1");
}

/* The outreach keys across each other: nothing is checked while the relay
 * is empty; otherwise each rule names its key. */
static void outreach_keys(void)
{
    struct outpostd_config c;
    struct op_error err;
    config_defaults(&c);
    CHECK_STR(c.outreach_relay, "");
    CHECK_EQ(c.outreach_rate, 60);
    CHECK_EQ(c.outreach_daily_cap, 1000);
    CHECK_EQ(c.outreach_allow_plain, 0);
    CHECK_EQ(config_check_outreach(&c, &err), 0);

    struct {
        const char *relay, *country, *from, *url;
        int plain;
        const char *field, *msg;
    } cases[] = {
        {"http://127.0.0.1:25", "", "a@b.example", "https://x", 1, "outreach_relay",
         "is not smtp://HOST[:PORT]"},
        {"smtp://127.0.0.1:25/extra", "", "a@b.example", "https://x", 1, "outreach_relay", ""},
        {"smtp://relay.example:587", "", "a@b.example", "https://x", 0, "outreach_relay_country",
         "required for a relay that is not on this host"},
        {"smtp://relay.example:587", "de", "a@b.example", "https://x", 0, "outreach_relay_country",
         "two capital letters"},
        {"smtp://relay.example:587", "DE", "a@b.example", "https://x", 1, "outreach_allow_plain",
         "only a relay on loopback may be plain"},
        {"smtp://[::1]:25", "", "a b@c.example", "https://x", 1, "outreach_from", "plain e-mail"},
        {"smtp://localhost", "", "a@b.example", "", 1, "outreach_public_url", "https://"},
        {"smtp://relay.example", "DE", "a@b.example", "http://crm.example", 0,
         "outreach_public_url", "https://"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_defaults(&c);
        snprintf(c.outreach_relay, sizeof c.outreach_relay, "%s", cases[i].relay);
        snprintf(c.outreach_relay_country, sizeof c.outreach_relay_country, "%s", cases[i].country);
        snprintf(c.outreach_from, sizeof c.outreach_from, "%s", cases[i].from);
        snprintf(c.outreach_public_url, sizeof c.outreach_public_url, "%s", cases[i].url);
        c.outreach_allow_plain = cases[i].plain;
        op_error_clear(&err);
        CHECK_EQ(config_check_outreach(&c, &err), -EINVAL);
        CHECK_STR(err.field, cases[i].field);
        CHECK_CONTAINS(err.msg, cases[i].msg);
    }
    /* good: a loopback relay in plain, a relay abroad over STARTTLS */
    config_defaults(&c);
    snprintf(c.outreach_relay, sizeof c.outreach_relay, "smtp://127.0.0.1:2525");
    snprintf(c.outreach_from, sizeof c.outreach_from, "news@branch.example");
    snprintf(c.outreach_public_url, sizeof c.outreach_public_url, "http://127.0.0.1:8080");
    c.outreach_allow_plain = 1;
    CHECK_EQ(config_check_outreach(&c, &err), 0);
    snprintf(c.outreach_relay, sizeof c.outreach_relay, "smtps://relay.example");
    snprintf(c.outreach_relay_country, sizeof c.outreach_relay_country, "DE");
    snprintf(c.outreach_public_url, sizeof c.outreach_public_url, "https://crm.example");
    c.outreach_allow_plain = 0;
    CHECK_EQ(config_check_outreach(&c, &err), 0);
}

/* The SMS keys across each other and the gateway's residency: each
 * refusal names its key; nothing is checked while no gateway is set. */
static void sms_keys(void)
{
    struct outpostd_config c;
    struct op_error err;
    config_defaults(&c);
    CHECK_STR(c.outreach_sms_gateway, "");
    CHECK_EQ(c.outreach_sms_max_segments, 6);
    CHECK_STR(c.outreach_sms_json_id, "id");
    CHECK_EQ(config_check_sms(&c, &err), 0);
    struct {
        const char *gateway, *country, *callback, *tmpl, *key, *words;
    } cases[] = {
        {"https://sms.example/cgi-bin/sendsms", "", "", "", "outreach_sms_gateway",
         "is not kannel:URL or json:URL"},
        {"kannel:http://sms.example:13013/cgi-bin/sendsms", "KE", "", "", "outreach_sms_gateway",
         "only a gateway on loopback may be plain http://"},
        {"kannel:https://sms.example/cgi-bin/sendsms", "", "", "", "outreach_sms_gateway_country",
         "required for a gateway that is not on this host"},
        {"kannel:https://sms.example/cgi-bin/sendsms", "ke", "", "", "outreach_sms_gateway_country",
         "two capital letters"},
        {"kannel:http://127.0.0.1:13013/cgi-bin/sendsms", "", "http://127.0.0.1:8443/?x=1", "",
         "outreach_sms_callback_url", "without a query"},
        {"kannel:http://127.0.0.1:13013/cgi-bin/sendsms", "", "ftp://node", "",
         "outreach_sms_callback_url", "expected http(s)://"},
        {"json:http://127.0.0.1:9000/sms", "", "", "{\"text\":\"{text}\"}",
         "outreach_sms_json_template", "must be JSON with"},
        {"json:http://127.0.0.1:9000/sms", "", "", "{\"to\":{to},\"text\":\"{text}\"}",
         "outreach_sms_json_template", "must be JSON with"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_defaults(&c);
        snprintf(c.outreach_sms_gateway, sizeof c.outreach_sms_gateway, "%s", cases[i].gateway);
        snprintf(c.outreach_sms_gateway_country, sizeof c.outreach_sms_gateway_country, "%s",
                 cases[i].country);
        snprintf(c.outreach_sms_callback_url, sizeof c.outreach_sms_callback_url, "%s",
                 cases[i].callback);
        if (cases[i].tmpl[0])
            snprintf(c.outreach_sms_json_template, sizeof c.outreach_sms_json_template, "%s",
                     cases[i].tmpl);
        op_error_clear(&err);
        CHECK_EQ(config_check_sms(&c, &err), -EINVAL);
        CHECK_STR(err.field, cases[i].key);
        CHECK_CONTAINS(err.msg, cases[i].words);
        /* config_check runs it too */
        CHECK_EQ(config_check(&c, &err), -EINVAL);
    }
    config_defaults(&c);
    snprintf(c.outreach_sms_gateway, sizeof c.outreach_sms_gateway,
             "kannel:https://sms.example.ru/cgi-bin/sendsms");
    snprintf(c.outreach_sms_gateway_country, sizeof c.outreach_sms_gateway_country, "DE");
    snprintf(c.outreach_sms_callback_url, sizeof c.outreach_sms_callback_url,
             "https://crm.branch.example:8443");
    CHECK_EQ(config_check_sms(&c, &err), 0);

    /* Residency: a region keeping personal data in the country refuses a
     * gateway elsewhere; the same gateway in the country, or on loopback,
     * is allowed. */
    static const char ru[] = "format: outpost-region-policy/1\n"
                             "region: RU\n"
                             "country: RU\n"
                             "name: Russia (test)\n"
                             "transfer: {allowed: false, basis: \"152-FZ Art. 18(5)\"}\n"
                             "default_class: local_only\n"
                             "default_basis: \"design: test\"\n";
    struct policy *p = NULL;
    op_error_clear(&err);
    CHECK_EQ(policy_load_buffer("RU.yaml", ru, strlen(ru), &p, &err), 0);
    if (!p)
        return;
    op_error_clear(&err);
    CHECK_EQ(outreach_sms_sender_check(&c, p, &err), -EINVAL);
    CHECK_STR(err.field, "outreach_sms_gateway_country");
    CHECK_CONTAINS(err.msg, "the gateway is in DE, but the region profile RU keeps personal data "
                            "in RU (transfer.allowed: false); use a gateway in RU");
    snprintf(c.outreach_sms_gateway_country, sizeof c.outreach_sms_gateway_country, "RU");
    CHECK_EQ(outreach_sms_sender_check(&c, p, &err), 0);
    snprintf(c.outreach_sms_gateway, sizeof c.outreach_sms_gateway,
             "kannel:http://127.0.0.1:13013/cgi-bin/sendsms");
    snprintf(c.outreach_sms_gateway_country, sizeof c.outreach_sms_gateway_country, "DE");
    CHECK_EQ(outreach_sms_sender_check(&c, p, &err), 0);
    CHECK_EQ(outreach_sms_sender_check(&c, NULL, &err), -EINVAL);
    policy_free(p);
}

int main(void)
{
    fx_tmpdir("config");
    RUN(sync_keys);
    RUN(defaults);
    RUN(file_values);
    RUN(errors_name_file_line_key);
    RUN(flags);
    RUN(describe_is_loadable);
    RUN(plain_http_only_on_loopback);
    RUN(outreach_keys);
    RUN(sms_keys);
    return fx_finish();
}
