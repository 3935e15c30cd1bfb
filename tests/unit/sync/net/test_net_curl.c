/* Tests for sync/net/net_curl.c, the libcurl setup smtp_client and
 * sms_gateway share: the host and port of their URLs (schemes in any
 * case, IPv6 literals, refused characters, ports out of range, what
 * follows for the caller); and, against loopback sockets, the options on
 * a handle: a protocol outside the transport's list is refused before
 * any connection, a redirect is not followed (the target never hears
 * from us), a silent peer is given up after the timeout (and after the
 * default when the caller gives none), and libcurl's words land in the
 * error buffer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net_curl.h"
#include "testlib.h"
#include "testsock.h"

static const char *const http[] = {"http", "https", NULL};
static const char *const smtp[] = {"smtp", "smtps", NULL};

static void hosts(void)
{
    char host[64];
    long port = -1;
    const char *rest = NULL;
    CHECK_EQ(net_curl_host("HTTPS://gw.example:8443/send?x", http, host, sizeof host, &port, &rest),
             0);
    CHECK_STR(host, "gw.example");
    CHECK_EQ(port, 8443);
    CHECK_STR(rest, "/send?x"); /* the path's rules are the caller's */
    CHECK_EQ(net_curl_host("smtp://[::1]:2525/", smtp, host, sizeof host, &port, &rest), 0);
    CHECK_STR(host, "::1");
    CHECK_EQ(port, 2525);
    CHECK_STR(rest, "/");
    CHECK_EQ(net_curl_host("smtps://relay.example", smtp, host, sizeof host, &port, &rest), 0);
    CHECK_EQ(port, 0);
    CHECK_STR(rest, "");

    /* refusals */
    CHECK_EQ(net_curl_host("ftp://a.example/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("smtp://a.example", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("httpx://a.example", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http:/a.example", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host(NULL, http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://user@evil.example/", http, host, sizeof host, &port, &rest),
             -EINVAL);
    CHECK_EQ(net_curl_host("http://a\\b/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://a b/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://[::1/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://[]/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://a:0/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://a:65536/", http, host, sizeof host, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://a:/", http, host, sizeof host, &port, &rest), -EINVAL);
    char small[4];
    CHECK_EQ(net_curl_host("http://abcd/", http, small, sizeof small, &port, &rest), -EINVAL);
    CHECK_EQ(net_curl_host("http://abc/", http, small, sizeof small, &port, &rest), 0);
}

/* A loopback listener; it accepts only when told (serve_one). */
static int listener(int *port)
{
    int fd = tcp_listen_loopback(port);
    CHECK(fd >= 0);
    return fd;
}

struct one {
    int fd;
    const char *reply;
    pthread_t th;
};

static void *serve_one(void *arg)
{
    struct one *o = arg;
    int c = accept(o->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = recv(c, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    (void)!send(c, o->reply, strlen(o->reply), 0);
    close(c);
    return NULL;
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void options(void)
{
    struct op_error err;
    op_error_clear(&err);
    CHECK_EQ(net_curl_global_init(&err), 0);
    CHECK_EQ(net_curl_global_init(&err), 0); /* once a process; again is nothing */
    char ebuf[CURL_ERROR_SIZE] = "stale";

    /* a protocol outside the transport's list: refused, nothing sent */
    CURL *h = curl_easy_init();
    net_curl_common(h, "ftp://127.0.0.1:9/x", "http,https", 2000, 30000, NULL, ebuf);
    CHECK_EQ(curl_easy_perform(h), CURLE_UNSUPPORTED_PROTOCOL);
    CHECK_CONTAINS(ebuf, "ftp");
    curl_easy_cleanup(h);

    /* a redirect is the answer, not an instruction: its target is never
     * connected to */
    int tport, rport;
    int target = listener(&tport);
    struct one o = {.fd = listener(&rport)};
    char reply[200], url[64];
    snprintf(reply, sizeof reply,
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/\r\nContent-Length: 0\r\n"
             "Connection: close\r\n\r\n",
             tport);
    o.reply = reply;
    pthread_create(&o.th, NULL, serve_one, &o);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/send", rport);
    h = curl_easy_init();
    net_curl_common(h, url, "http,https", 5000, 30000, NULL, ebuf);
    CHECK_STR(ebuf, ""); /* emptied */
    CHECK_EQ(curl_easy_perform(h), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    CHECK_EQ(code, 302);
    curl_easy_cleanup(h);
    pthread_join(o.th, NULL);
    close(o.fd);
    fcntl(target, F_SETFL, O_NONBLOCK);
    int c = accept(target, NULL, NULL);
    CHECK_EQ(c, -1); /* nobody came */
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    close(target);

    /* a peer that takes the connection and never answers: given up after
     * the caller's timeout, and after the default when none is given */
    int port;
    int silent = listener(&port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/send", port);
    for (int i = 0; i < 2; i++) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        h = curl_easy_init();
        if (i == 0)
            net_curl_common(h, url, "http,https", 300, 60000, NULL, ebuf);
        else
            net_curl_common(h, url, "http,https", 0, 300, NULL, ebuf);
        CHECK_EQ(curl_easy_perform(h), CURLE_OPERATION_TIMEDOUT);
        long ms = elapsed_ms(&t0);
        CHECK(ms >= 250 && ms < 5000);
        CHECK(ebuf[0] != '\0');
        curl_easy_cleanup(h);
    }
    close(silent);
}

int main(void)
{
    RUN(hosts);
    RUN(options);
    curl_global_cleanup();
    return tl_report();
}
