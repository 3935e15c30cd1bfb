/*
 * Tests for appliance/api/api_reply.c: the problem+json answers to store
 * errors never carry internal text (SQLite's wording and constraint
 * names, file paths, a library's names) but say in product terms what was
 * wrong, naming the field where there is one; the internal text goes to
 * the log, escaped; and 405 answers carry Allow.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_reply.h"
#include "log.h"
#include "op_error.h"
#include "store.h"
#include "testlib.h"

static struct api_response R;
static json_t *J;

static void parse(void)
{
    json_decref(J);
    J = R.body ? json_loadb(R.body, R.body_len, 0, NULL) : NULL;
}

static const char *jstr(const char *key)
{
    return json_string_value(json_object_get(J, key));
}

/* The pointer of errors[0], or NULL. */
static const char *pointer(void)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(J, "errors"), 0), "pointer"));
}

/* Answers rc with err's message msg and returns the status. */
static int store_error(int rc, const char *msg)
{
    struct op_error err;
    op_error_clear(&err);
    op_error_set(&err, rc, NULL, "%s", msg);
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_store_error(&R, rc, &err);
    parse();
    return R.status;
}

/* Nothing of the internal text reaches the client. */
static void clean(void)
{
    CHECK(R.body != NULL);
    if (!R.body)
        return;
    static const char *const leaks[] = {"SQLITE",    "sqlite", "constraint",   "Constraint",
                                        "HPE_",      "/var/",  "/tmp/",        "node.db",
                                        "contacts.", "errno",  "no such table"};
    for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++)
        if (strstr(R.body, leaks[i])) {
            fprintf(stderr, "leak of '%s' in %s\n", leaks[i], R.body);
            CHECK(!"internal text in a client's answer");
        }
    CHECK_STR(R.type, "application/problem+json");
}

static void constraints_in_product_terms(void)
{
    CHECK_EQ(store_error(-EINVAL, "contact refused by the database: NOT NULL constraint failed: "
                                  "contacts.family_name"),
             422);
    clean();
    CHECK_STR(jstr("detail"), "family_name is required");
    CHECK_STR(pointer(), "/family_name");

    CHECK_EQ(store_error(-EINVAL, "contact refused by the database: UNIQUE constraint failed: "
                                  "contacts.email"),
             409);
    clean();
    CHECK_STR(jstr("detail"), "another record already has this email");
    CHECK_STR(pointer(), "/email");

    CHECK_EQ(store_error(-EINVAL, "deal refused by the database: FOREIGN KEY constraint failed"),
             422);
    clean();
    CHECK(strstr(jstr("detail"), "refers to a record that does not exist") != NULL);

    CHECK_EQ(store_error(-EINVAL, "contact refused by the database: CHECK constraint failed: "
                                  "json_valid(custom)"),
             422);
    clean();
    CHECK(strstr(jstr("detail"), "nothing was written") != NULL);

    /* a column name that is not a plain name is not quoted back */
    CHECK_EQ(store_error(-EINVAL, "x refused by the database: NOT NULL constraint failed: t.a\"b"),
             400);
    clean();
}

static void internal_errors(void)
{
    /* a 500 says the node failed, never how */
    CHECK_EQ(store_error(-EIO, "cannot write record: disk I/O error"), 500);
    clean();
    CHECK(strstr(jstr("detail"), "disk") == NULL);
    CHECK(strstr(jstr("detail"), "the node's log") != NULL);
    CHECK_EQ(store_error(-EBADMSG, "cannot read contacts: database disk image is malformed"), 500);
    clean();
    CHECK_EQ(store_error(-EROFS, "cannot write /var/lib/outpost/node.db: attempt to write a "
                                 "readonly database"),
             500);
    clean();
    /* a 404 from a file that cannot be opened */
    CHECK_EQ(store_error(-ENOENT, "cannot open database /var/lib/outpost/node.db: unable to open "
                                  "database file"),
             404);
    clean();
    CHECK_STR(jstr("detail"), "no such record");
    /* a 400 that quotes SQLite */
    CHECK_EQ(store_error(-EINVAL, "list contacts: SQLITE_RANGE: column index out of range"), 400);
    clean();
    /* api_reply_problem itself: any caller's internal detail is replaced */
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_problem(&R, 409, "consent refused: UNIQUE constraint failed: consents.token", NULL);
    parse();
    clean();
    CHECK_EQ(R.status, 409);
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_problem(&R, 400, "HPE_INVALID_METHOD: invalid HTTP method", NULL);
    parse();
    clean();
}

/* Messages written for the client pass unchanged. */
static void product_messages_pass(void)
{
    CHECK_EQ(store_error(-ENOENT, "no contact with id 0190a1b2"), 404);
    CHECK_STR(jstr("detail"), "no contact with id 0190a1b2");
    CHECK_EQ(store_error(STORE_EVERSION, "version 3 is not the current version 4"), 412);
    CHECK_STR(jstr("detail"), "version 3 is not the current version 4");
    struct op_error err;
    op_error_clear(&err);
    op_error_set(&err, -EINVAL, "email", "email: not an address (expected name@domain)");
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_store_error(&R, -EINVAL, &err);
    parse();
    CHECK_EQ(R.status, 422);
    CHECK_STR(jstr("detail"), "email: not an address (expected name@domain)");
    CHECK_STR(pointer(), "/email");
    static const char *const fine[] = {
        "the database is busy; retry shortly",
        "send the body as application/json",
        "all database connections are busy",
        "name/email/phone: one is needed",
        "a / b",
        "JSON pointer /custom",
        "send Authorization: Bearer TOKEN (POST /api/v1/session to get one)"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        if (api_reply_detail_is_internal(fine[i])) {
            fprintf(stderr, "taken for internal: %s\n", fine[i]);
            CHECK(!"a product message taken for internal");
        }
    /* a path in a message written for the client: the rest stays */
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_problem(&R, 422,
                      "custom.shoe: not a custom field of a contact in EU-DE (see the region "
                      "policy /etc/outpost/policy/EU-DE.yaml)",
                      "custom.shoe");
    parse();
    clean();
    CHECK_STR(jstr("detail"), "custom.shoe: not a custom field of a contact in EU-DE (see the "
                              "region policy on the node)");
    CHECK_STR(pointer(), "/custom/shoe");
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_problem(&R, 400, "/tmp/a/b and '/var/x/y', then /srv/z/w", NULL);
    parse();
    clean();
    CHECK_STR(jstr("detail"), "on the node and 'on the node', then on the node");
    CHECK(api_reply_detail_is_internal("cannot open /srv/outpost/x.db"));
    CHECK(api_reply_detail_is_internal("path '/etc/outpost/outpostd.conf'"));
    CHECK(api_reply_detail_is_internal("/var/lib/outpost/node.db: busy"));
}

/* The internal text goes to the log, escaped, in one line. */
static void internal_text_is_logged(void)
{
    log_init("test", LOG_LEVEL_INFO);
    fflush(stderr);
    FILE *sink = tmpfile();
    int saved = dup(STDERR_FILENO);
    CHECK(sink && saved >= 0);
    if (!sink || saved < 0)
        return;
    dup2(fileno(sink), STDERR_FILENO);
    store_error(-EIO, "cannot write record: disk I/O error\n<3>forged");
    dup2(saved, STDERR_FILENO);
    close(saved);
    char line[512] = "";
    rewind(sink);
    size_t n = fread(line, 1, sizeof line - 1, sink);
    line[n] = '\0';
    fclose(sink);
    CHECK_STR(line, "<4>test: answered 500: cannot write record: disk I/O error\\n<3>forged\n");
}

static void allow_on_405(void)
{
    api_reply_done(&R);
    memset(&R, 0, sizeof R);
    api_reply_method_not_allowed(&R, "PUT", "GET, HEAD, POST");
    parse();
    CHECK_EQ(R.status, 405);
    CHECK_STR(jstr("detail"), "method PUT not allowed here (allowed: GET, HEAD, POST)");
    struct api_header h[API_REPLY_HEADERS_MAX];
    unsigned nh = api_reply_headers(&R, h);
    int found = 0;
    for (unsigned i = 0; i < nh; i++)
        if (!strcmp(h[i].name, "Allow")) {
            CHECK_STR(h[i].value, "GET, HEAD, POST");
            found = 1;
        }
    CHECK(found);
    /* every header at once still fits */
    snprintf(R.etag, sizeof R.etag, "\"1\"");
    snprintf(R.location, sizeof R.location, "/x");
    snprintf(R.retry_after, sizeof R.retry_after, "1");
    R.www_authenticate = 1;
    R.no_store = 1;
    R.replayed = 1;
    CHECK_EQ(api_reply_headers(&R, h), API_REPLY_HEADERS_MAX);
    CHECK_STR(h[API_REPLY_HEADERS_MAX - 1].name, "Idempotency-Replayed");
}

int main(void)
{
    log_init("test_api_reply", LOG_LEVEL_ERR); /* the warnings are checked once, below */
    RUN(constraints_in_product_terms);
    RUN(internal_errors);
    RUN(product_messages_pass);
    RUN(internal_text_is_logged);
    RUN(allow_on_405);
    api_reply_done(&R);
    json_decref(J);
    return tl_report();
}
