/*
 * The systemd readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram to the socket named by $NOTIFY_SOCKET. Outside systemd (no
 * NOTIFY_SOCKET) every call is a no-op that succeeds.
 */
#ifndef OUTPOST_SD_NOTIFY_H
#define OUTPOST_SD_NOTIFY_H

#include <stdint.h>

/* Sends `state` ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."),
 * newline-separated assignments. Returns 0 (also when not under systemd)
 * or a negative errno. */
int sd_notify_send(const char *state);

/* The watchdog interval systemd expects pings within, in microseconds, or
 * 0 when no watchdog is set for this process ($WATCHDOG_USEC and
 * $WATCHDOG_PID). */
uint64_t sd_notify_watchdog_usec(void);

#endif
