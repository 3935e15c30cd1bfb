/* Tests for sync/net/sms_gateway.c against a tiny HTTP server double on
 * loopback (a thread that answers one scripted reply per connection):
 * Kannel's sendsms query with every parameter escaped (UTF-8 text, coding
 * for UCS-2, dlr-mask and dlr-url), the JSON gateway's body, header and
 * message id, and the outcome classes the queue relies on: 2xx sent, 4xx
 * failed with the gateway's words, 5xx and a refused connection retried,
 * a connection closed after the request was written unknown. Also the
 * gateway spec's refusals. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sms_gateway.h"
#include "testlib.h"
#include "testsock.h"

struct double_srv {
    int fd, port;
    const char *reply; /* whole HTTP answer, or NULL: close without answering */
    char request[16384];
    pthread_t th;
};

static void *serve_one(void *arg)
{
    struct double_srv *d = arg;
    int c = accept(d->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(c, d->request + got, sizeof d->request - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        d->request[got] = '\0';
        char *end = strstr(d->request, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(d->request, "Content-Length:");
        size_t want = cl ? (size_t)atol(cl + 15) : 0;
        if (got >= (size_t)(end + 4 - d->request) + want)
            break;
    }
    if (d->reply)
        (void)!send(c, d->reply, strlen(d->reply), 0);
    close(c);
    return NULL;
}

static void srv_start(struct double_srv *d, const char *reply)
{
    memset(d, 0, sizeof *d);
    d->reply = reply;
    d->fd = tcp_listen_loopback(&d->port);
    CHECK(d->fd >= 0);
    pthread_create(&d->th, NULL, serve_one, d);
}

static void srv_join(struct double_srv *d)
{
    pthread_join(d->th, NULL);
    close(d->fd);
}

static void kannel_msg(struct sms_message *m, char *url, int port)
{
    snprintf(url, 128, "http://127.0.0.1:%d/cgi-bin/sendsms", port);
    memset(m, 0, sizeof *m);
    m->kind = SMS_GATEWAY_KANNEL;
    m->url = url;
    m->user = "outpost";
    m->password = "p&ss=w rd";
    m->from = "Outpost";
    m->to = "+254712345678";
    m->text = "Habari & karibu 100%";
    m->dlr_url = "http://127.0.0.1:8443/o/sms/dlr?t=TOKEN&type=%d&smsc=%A";
    m->timeout_ms = 5000;
}

#define ACCEPTED "HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\n0: Accepted for delivery"

static void kannel_query(void)
{
    struct double_srv d;
    srv_start(&d, ACCEPTED);
    struct sms_message m;
    char url[128];
    kannel_msg(&m, url, d.port);
    struct sms_result r;
    CHECK_EQ(sms_gateway_send(&m, &r), 0);
    srv_join(&d);
    CHECK_EQ(r.outcome, SMS_SENT);
    CHECK_EQ(r.status, 202);
    CHECK_CONTAINS(r.detail, "0: Accepted for delivery");
    CHECK_CONTAINS(d.request, "GET /cgi-bin/sendsms?username=outpost&password=p%26ss%3Dw%20rd&");
    CHECK_CONTAINS(d.request, "&from=Outpost&to=%2B254712345678&");
    CHECK_CONTAINS(d.request, "&text=Habari%20%26%20karibu%20100%25&charset=UTF-8&");
    CHECK_CONTAINS(d.request, "&dlr-mask=19&dlr-url=http%3A%2F%2F127.0.0.1%3A8443%2Fo%2Fsms%2Fdlr"
                              "%3Ft%3DTOKEN%26type%3D%25d%26smsc%3D%25A ");
    CHECK(strstr(d.request, "coding=") == NULL);

    /* Cyrillic: coding=2 and the UTF-8 bytes escaped. */
    srv_start(&d, ACCEPTED);
    kannel_msg(&m, url, d.port);
    m.text = "Привет";
    m.ucs2 = 1;
    m.dlr_url = "";
    CHECK_EQ(sms_gateway_send(&m, &r), 0);
    srv_join(&d);
    CHECK_CONTAINS(d.request, "&text=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82&charset=UTF-8&coding=2");
    CHECK(strstr(d.request, "dlr-") == NULL);
}

static void outcomes(void)
{
    struct {
        const char *reply;
        enum sms_outcome outcome;
        long status;
        const char *words;
    } cases[] = {
        {"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\n3: Queued for later delivery", SMS_SENT,
         202, "3: Queued for later delivery"},
        {"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\nAuthorization failed\n", SMS_PERMANENT,
         403, "the gateway refused the message: 403 Authorization failed"},
        {"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nNot routable. Do not try again "
         "later.",
         SMS_PERMANENT, 400, "400 Not routable. Do not try again later."},
        {"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n"
         "Sending failed.\r\nTemporary failure.\x01",
         SMS_TEMPORARY, 503, "the gateway deferred the message: 503 Sending failed.  Temporary"},
        {NULL, SMS_UNKNOWN, 0, "the connection was lost after the request was written"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct double_srv d;
        srv_start(&d, cases[i].reply);
        struct sms_message m;
        char url[128];
        kannel_msg(&m, url, d.port);
        struct sms_result r;
        int rc = sms_gateway_send(&m, &r);
        srv_join(&d);
        CHECK_EQ(rc, cases[i].outcome == SMS_SENT ? 0 : -EIO);
        CHECK_EQ(r.outcome, cases[i].outcome);
        CHECK_EQ(r.status, cases[i].status);
        CHECK_CONTAINS(r.detail, cases[i].words);
        CHECK(strchr(r.detail, '\n') == NULL && strchr(r.detail, '\x01') == NULL);
    }
    /* Nobody listening: retried later. */
    struct double_srv d;
    srv_start(&d, NULL);
    int port = d.port;
    pthread_cancel(d.th);
    pthread_join(d.th, NULL);
    close(d.fd);
    struct sms_message m;
    char url[128];
    kannel_msg(&m, url, port);
    struct sms_result r;
    CHECK_EQ(sms_gateway_send(&m, &r), -EIO);
    CHECK_EQ(r.outcome, SMS_TEMPORARY);
    CHECK_CONTAINS(r.detail, "cannot reach the gateway");
}

static void json_gateway(void)
{
    char *b = sms_gateway_json_body("{\"to\":\"{to}\",\"text\":\"{text}\",\"ref\":\"{ref}\"}",
                                    "+4915112345678", "Er sagte \"Hallo\"\n\\ ü", "r1");
    CHECK_STR(b, "{\"to\":\"+4915112345678\",\"text\":\"Er sagte \\\"Hallo\\\"\\n\\\\ ü\","
                 "\"ref\":\"r1\"}");
    free(b);
    CHECK(sms_gateway_json_body("{\"text\":\"{text}\"}", "+1", "x", "r") == NULL);

    struct double_srv d;
    srv_start(&d, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  "\r\n{\"message\":{\"id\":\"gw-77 x\"},\"status\":\"ok\"}  ");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/sms", d.port);
    struct sms_message m = {
        .kind = SMS_GATEWAY_JSON,
        .url = url,
        .to = "+4915112345678",
        .text = "Grüße",
        .auth = "Bearer s3cret",
        .json_body = "{\"to\":\"{to}\",\"text\":\"{text}\",\"ref\":\"{ref}\"}",
        .json_id = "message.id",
        .ref = "REF1",
        .timeout_ms = 5000,
    };
    struct sms_result r;
    CHECK_EQ(sms_gateway_send(&m, &r), 0);
    srv_join(&d);
    CHECK_EQ(r.outcome, SMS_SENT);
    CHECK_STR(r.gateway_id, "gw-77_x");
    CHECK_CONTAINS(d.request, "POST /v1/sms HTTP/1.1\r\n");
    CHECK_CONTAINS(d.request, "Authorization: Bearer s3cret\r\n");
    CHECK_CONTAINS(d.request, "Content-Type: application/json\r\n");
    CHECK_CONTAINS(d.request,
                   "\r\n\r\n{\"to\":\"+4915112345678\",\"text\":\"Grüße\",\"ref\":\"REF1\"}");

    /* A 422 with a JSON error: failed, the gateway's words kept. */
    srv_start(&d, "HTTP/1.1 422 Unprocessable\r\nConnection: close\r\n\r\n{\"error\":\"invalid "
                  "number\"}\n\n");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/sms", d.port);
    CHECK_EQ(sms_gateway_send(&m, &r), -EIO);
    srv_join(&d);
    CHECK_EQ(r.outcome, SMS_PERMANENT);
    CHECK_CONTAINS(r.detail, "422 {\"error\":\"invalid number\"}");
}

static void specs(void)
{
    enum sms_gateway_kind k;
    char url[SMS_GATEWAY_URL_MAX];
    struct op_error err;
    CHECK_EQ(sms_gateway_parse("kannel:https://sms.example.co.ke:13013/cgi-bin/sendsms", &k, url,
                               "outreach_sms_gateway", &err),
             0);
    CHECK_EQ(k, SMS_GATEWAY_KANNEL);
    CHECK_STR(url, "https://sms.example.co.ke:13013/cgi-bin/sendsms");
    CHECK(!sms_gateway_is_loopback(url));
    CHECK_EQ(sms_gateway_parse("json:http://127.0.0.1:9/x", &k, url, "outreach_sms_gateway", &err),
             0);
    CHECK_EQ(k, SMS_GATEWAY_JSON);
    CHECK(sms_gateway_is_loopback(url));
    static const char *const bad[] = {"",
                                      "https://sms.example/x",
                                      "smpp:sms.example:2775",
                                      "kannel:ftp://sms.example/",
                                      "kannel:https://user@sms.example/",
                                      "kannel:https://sms.example/sendsms?user=x",
                                      "json:https://:80/",
                                      "json:https://sms.example:99999/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_error_clear(&err);
        CHECK_EQ(sms_gateway_parse(bad[i], &k, url, "outreach_sms_gateway", &err), -EINVAL);
        CHECK_STR(err.field, "outreach_sms_gateway");
        CHECK_CONTAINS(err.msg, "outreach_sms_gateway: '");
        CHECK_CONTAINS(err.msg, "is not kannel:URL or json:URL");
    }
}

int main(void)
{
    struct op_error err;
    if (sms_gateway_global_init(&err) < 0)
        return 1;
    RUN(kannel_query);
    RUN(outcomes);
    RUN(json_gateway);
    RUN(specs);
    return tl_report();
}
