/*
 * SMTP over libcurl's easy interface; see smtp_client.h.
 */
#include "smtp_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_curl.h"

int smtp_client_global_init(struct op_error *err)
{
    return net_curl_global_init(err);
}

/* The host of smtp[s]://host[:port][/], into host; 0 or -EINVAL. */
static int relay_host(const char *relay, char *host, size_t cap, long *port)
{
    static const char *const schemes[] = {"smtp", "smtps", NULL};
    const char *rest;
    if (net_curl_host(relay, schemes, host, cap, port, &rest) < 0)
        return -EINVAL;
    if (*rest == '/')
        rest++;
    return *rest ? -EINVAL : 0;
}

int smtp_client_check_relay(const char *relay, const char *key, struct op_error *err)
{
    char host[256];
    long port;
    if (relay_host(relay, host, sizeof host, &port) < 0)
        return op_error_set(err, -EINVAL, key,
                            "%s: '%.128s' is not smtp://HOST[:PORT] (STARTTLS) or "
                            "smtps://HOST[:PORT]",
                            key, relay ? relay : "");
    return 0;
}

int smtp_client_relay_is_loopback(const char *relay)
{
    char host[256];
    long port;
    if (relay_host(relay, host, sizeof host, &port) < 0)
        return 0;
    return !strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strncmp(host, "127.", 4);
}

struct reader {
    const char *data;
    size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t n, void *ctx)
{
    struct reader *r = ctx;
    size_t want = size * n, left = r->len - r->off;
    size_t take = want < left ? want : left;
    memcpy(buf, r->data + r->off, take);
    r->off += take;
    return take;
}

int smtp_client_send(const struct smtp_message *m, struct smtp_result *r)
{
    memset(r, 0, sizeof *r);
    r->outcome = SMTP_TEMPORARY;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(r->detail, sizeof r->detail, "cannot start an SMTP transaction (out of memory)");
        return -EIO;
    }
    char from[400], to[400];
    snprintf(from, sizeof from, "<%s>", m->from);
    snprintf(to, sizeof to, "<%s>", m->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    struct reader rd = {m->data, m->len, 0};
    int is_smtps = !strncasecmp(m->relay, "smtps://", 8);
    char ebuf[CURL_ERROR_SIZE] = "";
    net_curl_common(h, m->relay, "smtp,smtps", m->timeout_ms, 60000L, m->ca_file, ebuf);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, &rd);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    if (!is_smtps)
        curl_easy_setopt(h, CURLOPT_USE_SSL,
                         m->allow_plain ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
    if (m->user && *m->user) {
        curl_easy_setopt(h, CURLOPT_USERNAME, m->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, m->password ? m->password : "");
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    r->code = code;
    int handed_over = rd.off == rd.len;
    if (rc == CURLE_OK) {
        r->outcome = SMTP_SENT;
        snprintf(r->detail, sizeof r->detail, "accepted (%ld)", code);
    } else if (rc == CURLE_LOGIN_DENIED) {
        /* the node's configuration, not the message: it waits for a fix */
        r->outcome = SMTP_TEMPORARY;
        snprintf(r->detail, sizeof r->detail,
                 "the relay refused the login (%ld): check outreach_user and "
                 "outreach_password_file",
                 code);
    } else if (code >= 500 && code < 600) {
        r->outcome = SMTP_PERMANENT;
        snprintf(r->detail, sizeof r->detail, "the relay refused the message: %ld %s", code,
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else if (code >= 400 && code < 500) {
        r->outcome = SMTP_TEMPORARY;
        snprintf(r->detail, sizeof r->detail, "the relay deferred the message: %ld %s", code,
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else if (handed_over && m->len > 0 &&
               (rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
                rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SEND_ERROR)) {
        /* the whole message went and no answer came back */
        r->outcome = SMTP_UNKNOWN;
        snprintf(r->detail, sizeof r->detail,
                 "the connection was lost after the message was handed over: %s",
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else if (rc == CURLE_USE_SSL_FAILED) {
        r->outcome = SMTP_TEMPORARY;
        snprintf(r->detail, sizeof r->detail,
                 "the relay does not offer STARTTLS, which is required (%s)",
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    } else {
        r->outcome = SMTP_TEMPORARY;
        snprintf(r->detail, sizeof r->detail, "cannot reach the relay: %s",
                 ebuf[0] ? ebuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    return r->outcome == SMTP_SENT ? 0 : -EIO;
}
