/*
 * log.c — levelled, prefixed log lines to stderr (foreground) or syslog.
 *
 * A line that repeats is printed once per second at most: the same level,
 * subsystem and text again within a second of its first printing is counted
 * instead, and the count is printed as "<text> (repeated N times)" once the
 * second is over (at the next log call or log_flush()). The last
 * LOG_RECENT_SLOTS distinct lines are remembered, so two lines alternating in
 * a spin are both caught. This keeps a library that logs the same failure in
 * a loop (libmicrohttpd's "Too many open files" on accept) from filling the
 * disk.
 */
#include "log.h"
#include "hash.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define LOG_RECENT_SLOTS 16
#define LOG_REPEAT_WINDOW_MS 1000

typedef struct log_recent {
    uint64_t hash;        /* of level, subsystem and text; 0: empty slot */
    int level;
    int64_t since_ms;     /* when it was last printed */
    unsigned repeated;    /* suppressed since then */
    char subsys[24];
    char text[200];       /* the start of the line, for the summary */
} log_recent;

static bool log_foreground = true;
static int log_level = LOG_LVL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static log_recent log_recent_lines[LOG_RECENT_SLOTS];

void log_open(bool foreground)
{
    log_foreground = foreground;
    if (!foreground)
        openlog("parkpulsed", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(int level) { log_level = level; }

static const char *level_name(int level)
{
    switch (level) {
    case LOG_LVL_ERR: return "error";
    case LOG_LVL_WARN: return "warning";
    case LOG_LVL_INFO: return "info";
    default: return "debug";
    }
}

static int64_t log_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints one line; log_lock held. */
static void log_emit(int level, const char *subsys, const char *msg, const char *suffix)
{
    if (!log_foreground) {
        syslog(level, "%s: %s%s", subsys, msg, suffix);
        return;
    }
    fprintf(stderr, "parkpulsed[%s] %s: %s%s\n", level_name(level), subsys, msg, suffix);
    fflush(stderr);
}

/* Prints the count of a slot whose window is over (or all, when force); log_lock held. */
static void log_summarise(log_recent *r, int64_t now, bool force)
{
    if (r->hash == 0 || r->repeated == 0 || (!force && now - r->since_ms < LOG_REPEAT_WINDOW_MS))
        return;
    char suffix[48];
    snprintf(suffix, sizeof suffix, " (repeated %u times)", r->repeated);
    log_emit(r->level, r->subsys, r->text, suffix);
    r->repeated = 0;
}

void log_flush(void)
{
    int64_t now = log_mono_ms();
    pthread_mutex_lock(&log_lock);
    for (size_t i = 0; i < LOG_RECENT_SLOTS; i++)
        log_summarise(&log_recent_lines[i], now, false);
    pthread_mutex_unlock(&log_lock);
}

static void log_line(int level, const char *subsys, const char *msg);

void log_msg(int level, const char *subsys, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_line(level, subsys, msg);
}

void log_msg_errno(int level, const char *subsys, int err, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char msg[2048], why[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1;
    /* strerror_r (GNU): the text, in why or a static string */
    const char *text = strerror_r(err < 0 ? -err : err, why, sizeof why);
    snprintf(msg + n, sizeof msg - (size_t)n, ": %s", text);
    log_line(level, subsys, msg);
}

/* Prints (or counts, when repeated) one line. */
static void log_line(int level, const char *subsys, const char *msg)
{
    if (subsys == NULL)
        subsys = log_foreground ? "main" : "parkpulsed";

    uint64_t h = pp_hash_pair(subsys, 0xff, msg) ^ (uint64_t)level;
    if (h == 0)
        h = 1;

    int64_t now = log_mono_ms();
    pthread_mutex_lock(&log_lock);
    log_recent *slot = NULL, *oldest = &log_recent_lines[0];
    for (size_t i = 0; i < LOG_RECENT_SLOTS; i++) {
        log_recent *r = &log_recent_lines[i];
        log_summarise(r, now, false);
        if (r->hash == h && r->level == level)
            slot = r;
        if (r->since_ms < oldest->since_ms || (oldest->hash != 0 && r->hash == 0))
            oldest = r;
    }
    if (slot != NULL && now - slot->since_ms < LOG_REPEAT_WINDOW_MS) {
        slot->repeated++;
        pthread_mutex_unlock(&log_lock);
        return;
    }
    if (slot == NULL) {
        slot = oldest;
        log_summarise(slot, now, true);
        slot->hash = h;
        slot->level = level;
        snprintf(slot->subsys, sizeof slot->subsys, "%.*s", (int)sizeof slot->subsys - 1, subsys);
        snprintf(slot->text, sizeof slot->text, "%.*s", (int)sizeof slot->text - 1, msg);
        slot->repeated = 0;
    }
    slot->since_ms = now;
    log_emit(level, subsys, msg, "");
    pthread_mutex_unlock(&log_lock);
}
