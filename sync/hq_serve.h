/*
 * `outpost-hq serve`: the HQ daemon. One libuv loop runs the HTTP server
 * (TLS when configured), the tus server at /files/ for segment uploads,
 * GET /v1/receipts/N, GET /v1/mailbox?after=SEQ, /healthz and /metrics
 * (requests and answers in docs/SYNC_PROTOCOL.md). A completed upload is
 * verified and applied by hq_apply and then released.
 *
 * Invariants: every request but /healthz and /metrics is authenticated
 * by its bearer token (SHA-256 looked up in the store) before anything
 * else, so an unknown or revoked token gets 401 before a byte is stored;
 * an upload is released only after its outcome is committed (a failure
 * leaves it for redelivery at the next timer tick or start).
 */
#ifndef OUTPOST_HQ_SERVE_H
#define OUTPOST_HQ_SERVE_H

#include "hq_config.h"

/* Runs the daemon until SIGTERM or SIGINT; SIGHUP forgets the cached
 * region profiles (they are read again on next use). Logs to stderr,
 * starting with "outpost-hq: listening on http[s]://ADDR:PORT". Returns
 * a process exit code: 0 after a clean stop, 1 when it cannot start. */
int hq_serve_run(const struct hq_config *cfg);

#endif
