/*
 * notify.h — the systemd service notification protocol (sd_notify) without
 * libsystemd (parkpulsed(8)).
 *
 * systemd passes a datagram socket in $NOTIFY_SOCKET (a path, or an abstract
 * socket written with a leading '@'); a service reports its state by sending
 * one datagram of "KEY=VALUE" lines to it: READY=1, RELOADING=1, STOPPING=1,
 * WATCHDOG=1, STATUS=…. Outside systemd the variable is unset and every call
 * here does nothing.
 */
#ifndef PP_NOTIFY_H
#define PP_NOTIFY_H

#include <stdint.h>

/* Sends state (e.g. "READY=1", or several "K=V" lines separated by '\n') to
 * $NOTIFY_SOCKET. Returns 1 when it was sent, 0 when NOTIFY_SOCKET is unset
 * (nothing to do), or a negative errno when the variable is malformed or the
 * send fails (logged). Safe to call from any thread. */
int notify_send(const char *state);

/* The watchdog interval systemd asked for, in microseconds: WATCHDOG_USEC
 * when it is a positive integer and WATCHDOG_PID is unset or equals
 * getpid(); otherwise 0 (no watchdog). Send "WATCHDOG=1" at least every half
 * of it. */
uint64_t notify_watchdog_usec(void);

#endif
