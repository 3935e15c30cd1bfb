/*
 * The transports' libcurl setup; see net_curl.h.
 */
#include "net_curl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int net_curl_global_init(struct op_error *err)
{
    static int ready;
    if (!ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return op_error_set(err, -ENOMEM, NULL, "curl_global_init failed");
        ready = 1;
    }
    return 0;
}

int net_curl_host(const char *url, const char *const schemes[], char *host, size_t cap, long *port,
                  const char **rest)
{
    const char *p = NULL;
    for (int i = 0; url && schemes[i] && !p; i++) {
        size_t sl = strlen(schemes[i]);
        if (!strncasecmp(url, schemes[i], sl) && !strncmp(url + sl, "://", 3))
            p = url + sl + 3;
    }
    if (!p)
        return -EINVAL;
    size_t n;
    const char *r;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e)
            return -EINVAL;
        n = (size_t)(e - p - 1);
        if (!n || n >= cap)
            return -EINVAL;
        memcpy(host, p + 1, n);
        r = e + 1;
    } else {
        n = strcspn(p, ":/");
        if (!n || n >= cap)
            return -EINVAL;
        memcpy(host, p, n);
        r = p + n;
    }
    host[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)host[i] <= 0x20 || (unsigned char)host[i] == 0x7f ||
            strchr("@?#<>\"\\", host[i]))
            return -EINVAL;
    *port = 0;
    if (*r == ':') {
        char *end;
        long v = strtol(r + 1, &end, 10);
        if (end == r + 1 || v < 1 || v > 65535)
            return -EINVAL;
        *port = v;
        r = end;
    }
    *rest = r;
    return 0;
}

void net_curl_common(CURL *h, const char *url, const char *protocols, long timeout_ms,
                     long default_ms, const char *ca_file, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : default_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, NET_CURL_CONNECT_TIMEOUT_MS);
    if (ca_file && *ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
}
