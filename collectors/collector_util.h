/*
 * collector_util.h — small helpers shared by the collectors shipped with
 * parkpulse (spool.c, exec.c). Not part of the plugin ABI: a third-party
 * collector needs only collector.h. Everything here is static inline, so each
 * shared object keeps its own copy and exports nothing more.
 */
#ifndef PP_COLLECTOR_UTIL_H
#define PP_COLLECTOR_UTIL_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"

/*
 * The collectors' half of the daemon's error convention (daemon/log.h, as
 * OpenBSD's log_warn/log_warnx): host->log says what it is given; the _errno
 * forms below append ": <strerror(e)>" for an error number e, given as errno
 * or as a -errno that a function returned. No call site writes strerror.
 */

/* Formats fmt into buf, then ": <text of e>" (e: errno, or -errno). */
static inline void vformat_errno(char *buf, size_t len, int e, const char *fmt, va_list ap)
{
    if (len == 0)
        return;
    int n = vsnprintf(buf, len, fmt, ap);
    if (n < 0) {
        buf[0] = '\0';
        n = 0;
    }
    char why[128];
    const char *text = strerror_r(e < 0 ? -e : e, why, sizeof why); /* GNU: a text */
    if ((size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ": %s", text);
}

/* snprintf(err, errsz, fmt, …) with ": <text of e>" appended. */
static inline void format_errno(char *err, size_t errsz, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void format_errno(char *err, size_t errsz, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat_errno(err, errsz, e, fmt, ap);
    va_end(ap);
}

/* host->log with ": <text of e>" appended. */
static inline void host_log_errno(const pp_collector_host *host, int level, int e,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline void host_log_errno(const pp_collector_host *host, int level, int e,
                                  const char *fmt, ...)
{
    char line[2048]; /* as log.c's lines */
    va_list ap;
    va_start(ap, fmt);
    vformat_errno(line, sizeof line, e, fmt, ap);
    va_end(ap);
    host->log(host, level, "%s", line);
}

/* Closes *fd if open and marks it closed (-1). */
static inline void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Monotonic clock in milliseconds. */
static inline int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a decimal number in [min, max], with K/M/G (x1024^n) when allowed.
 * Returns 0 and sets *out, or -EINVAL. */
static inline int parse_number(const char *text, unsigned long long min, unsigned long long max,
                               bool suffixes, unsigned long long *out)
{
    if (!text || text[0] < '0' || text[0] > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno)
        return -EINVAL;
    if (suffixes && *end) {
        unsigned shift;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return -EINVAL;
        }
        end++;
        if (v > (ULLONG_MAX >> shift))
            return -EINVAL;
        v <<= shift;
    }
    if (*end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Counts the non-empty lines of a report (the daemon's answer to refused input). */
static inline size_t count_lines(const char *text)
{
    size_t n = 0;
    bool content = false;
    for (const char *p = text; p && *p; p++) {
        if (*p == '\n') {
            n += content;
            content = false;
        } else if (*p != '\r') {
            content = true;
        }
    }
    return n + content;
}

/* What a collector's shutdown() does: sets *stop and writes one byte into the
 * wake-up pipe that run() polls. Async-signal-safe, never blocks (the pipe is
 * non-blocking: EAGAIN means a wake-up is already pending), keeps errno. */
static inline void request_stop(atomic_int *stop, int wake_fd)
{
    int saved = errno;
    atomic_store(stop, 1);
    ssize_t w;
    do
        w = write(wake_fd, "x", 1);
    while (w < 0 && errno == EINTR);
    (void)w;
    errno = saved;
}

/* The end of a shipped collector: its shutdown() (request_stop() on the
 * state's stop flag and wake-up pipe, for a struct NAME with members stop and
 * wake[2]) and the exported definition, whose functions are NAME_init,
 * NAME_run and NAME_destroy. */
#define PP_COLLECTOR_EXPORT(NAME)                                               \
    /* Async-signal-safe and non-blocking: a flag and one byte into the pipe. */ \
    static void NAME##_shutdown(void *state)                                    \
    {                                                                           \
        struct NAME *self = state;                                              \
        if (self)                                                               \
            request_stop(&self->stop, self->wake[1]);                           \
    }                                                                           \
    __attribute__((visibility("default")))                                      \
    const pp_collector_def parkpulse_collector = {                              \
        .abi_version = PP_COLLECTOR_ABI_VERSION,                                \
        .name = #NAME,                                                          \
        .init = NAME##_init,                                                    \
        .run = NAME##_run,                                                      \
        .shutdown = NAME##_shutdown,                                            \
        .destroy = NAME##_destroy,                                              \
    }

#endif
