/*
 * The libcurl setup the node's one-message transports share
 * (docs/ARCHITECTURE.md, sync/net): smtp_client (outreach e-mail) and
 * sms_gateway (SMS over an HTTP gateway). Each sends one message with
 * libcurl's easy interface from a sender thread; this module is what
 * they have in common and must not differ in: curl_global_init once per
 * process, the reading of the host and port of their configured URL, and
 * the options every request of theirs carries (only the transport's own
 * protocols, no redirects, no signals, a total and a connect timeout, the
 * branch's CA file, an error buffer). The invariant: neither transport
 * can reach a protocol, a redirect target or a wait the other is kept
 * from. (The tus client drives libcurl's multi interface on the daemon's
 * loop and keeps its own setup.)
 *
 * Errors: 0 or a negative errno; `err` (may be NULL) says what and why.
 */
#ifndef OUTPOST_NET_CURL_H
#define OUTPOST_NET_CURL_H

#include <curl/curl.h>

#include "op_error.h"

#define NET_CURL_CONNECT_TIMEOUT_MS 10000L

/* curl_global_init, once per process; call it before the sender threads
 * start (libcurl's rule). -ENOMEM when it fails. */
int net_curl_global_init(struct op_error *err);

/* The host of SCHEME://HOST[:PORT]REST for one of `schemes` (a
 * NULL-terminated list, compared in any case): an IPv6 literal is written
 * in brackets and returned without them; a host is refused with spaces,
 * control bytes or any of @?#<>"\ in it. *port is the port given (0 for
 * none; 1 to 65535), *rest what follows host and port, for the caller's
 * own rules about a path. -EINVAL when the URL is not of that form or the
 * host does not fit in cap bytes. */
int net_curl_host(const char *url, const char *const schemes[], char *host, size_t cap, long *port,
                  const char **rest);

/* Sets on h what every request of the transports carries: the URL, the
 * protocols allowed (libcurl's CURLOPT_PROTOCOLS_STR, e.g. "smtp,smtps"),
 * no redirects, no signals, timeout_ms in all (default_ms when 0 or
 * less) and NET_CURL_CONNECT_TIMEOUT_MS to connect, ca_file when given,
 * and errbuf (CURL_ERROR_SIZE bytes, emptied) for libcurl's words on a
 * failure. */
void net_curl_common(CURL *h, const char *url, const char *protocols, long timeout_ms,
                     long default_ms, const char *ca_file, char *errbuf);

#endif
