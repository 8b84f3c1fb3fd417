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
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

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
