/* Tests for sync/hq/hq_config.c: the defaults pass their own check,
 * plain HTTP is served only on a loopback listen unless allow_plain_http
 * says the admin put a TLS-terminating proxy in front, and `store` takes
 * a PostgreSQL connection string or nothing (the SQLite file at db). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "hq_config.h"
#include "testlib.h"

static void defaults(void)
{
    struct hq_config c;
    hq_config_defaults(&c);
    CHECK_STR(c.listen, "127.0.0.1:8443");
    CHECK_STR(c.tls_cert, "");
    CHECK_EQ(c.allow_plain_http, 0);
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(hq_config_check(&c, &err), 0);
}

static void plain_http_only_on_loopback(void)
{
    struct hq_config c;
    hq_config_defaults(&c);
    c.log_level = 1; /* the "running" config */
    struct op_error err;
    static const char *refused[] = {"listen = 0.0.0.0:8443\n", "listen = [::]:8443\n",
                                    "listen = 203.0.113.7:443\n"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *p = fx_file("public.conf", refused[i]);
        op_error_clear(&err);
        CHECK_EQ(hq_config_load_file(&c, p, &err), -EINVAL);
        CHECK_CONTAINS(err.msg, "is plain HTTP on a non-loopback address");
        CHECK_CONTAINS(err.msg, "tls_cert/tls_key");
        CHECK_CONTAINS(err.msg, "allow_plain_http");
        CHECK_STR(err.field, "listen");
        CHECK_STR(c.listen, "127.0.0.1:8443"); /* untouched */
    }
    /* Not an address at all: said so (not as plain HTTP), even with TLS. */
    static const char *bad[] = {"listen = not-an-address\nallow_plain_http = true\n",
                                "listen = 127.0.0.1\n", "listen = hq.example:8443\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = fx_file("bad.conf", bad[i]);
        op_error_clear(&err);
        CHECK_EQ(hq_config_load_file(&c, p, &err), -EINVAL);
        CHECK_CONTAINS(err.msg, "listen: bad listen address");
        CHECK_STR(err.field, "listen");
        CHECK_STR(c.listen, "127.0.0.1:8443");
    }
    static const char *accepted[] = {
        "listen = 127.0.0.1:0\n",
        "listen = [::1]:8443\n",
        "listen = 0.0.0.0:8080\nallow_plain_http = true\n",
        "listen = 0.0.0.0:8443\ntls_cert = /etc/hq/cert.pem\ntls_key = /etc/hq/key.pem\n",
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        struct hq_config d;
        hq_config_defaults(&d);
        const char *p = fx_file("ok.conf", accepted[i]);
        op_error_clear(&err);
        int rc = hq_config_load_file(&d, p, &err);
        if (rc)
            fprintf(stderr, "%s: %s\n", accepted[i], err.msg);
        CHECK_EQ(rc, 0);
    }
    /* The same rule for a flag on top of the defaults. */
    struct hq_config d;
    hq_config_defaults(&d);
    CHECK_EQ(hq_config_set(&d, "listen", "0.0.0.0:8443", "--listen", &err), 0);
    op_error_clear(&err);
    CHECK_EQ(hq_config_check(&d, &err), -EINVAL);
    CHECK_CONTAINS(err.msg, "listen 0.0.0.0:8443 is plain HTTP");
}

static void store_key(void)
{
    struct hq_config c;
    hq_config_defaults(&c);
    struct op_error err;
    op_error_clear(&err);
    CHECK_STR(c.store, "");
    CHECK_STR(hq_config_store(&c), "/var/lib/outpost-hq/hq.db");
    static const char *taken[] = {"postgresql://hq@db.example/outpost_hq", "postgres:///outpost_hq",
                                  "host=/run/postgresql dbname=hq", "service=outpost_hq"};
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        CHECK_EQ(hq_config_set(&c, "store", taken[i], "--store", &err), 0);
        CHECK_EQ(hq_config_check(&c, &err), 0);
        CHECK_STR(hq_config_store(&c), taken[i]);
    }
    /* a path, or a typo of the scheme, is not taken for PostgreSQL */
    static const char *refused[] = {"/var/lib/outpost-hq/hq.db", "postgresq://db/hq",
                                    "mysql://db/hq", "Host=db"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CHECK_EQ(hq_config_set(&c, "store", refused[i], "--store", &err), 0);
        CHECK_EQ(hq_config_check(&c, &err), -EINVAL);
        CHECK_STR(err.field, "store");
        CHECK_CONTAINS(err.msg, "is not a PostgreSQL connection string");
    }
}

int main(void)
{
    fx_tmpdir("hq-config");
    RUN(defaults);
    RUN(plain_http_only_on_loopback);
    RUN(store_key);
    return fx_finish();
}
