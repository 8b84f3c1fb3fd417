/*
 * log.c — levelled, prefixed log lines to stderr (foreground) or syslog.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static bool log_foreground = true;
static int log_level = LOG_LVL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

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

void log_msg(int level, const char *subsys, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!log_foreground) {
        syslog(level, "%s: %s", subsys ? subsys : "parkpulsed", msg);
        return;
    }
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "parkpulsed[%s] %s: %s\n", level_name(level), subsys ? subsys : "main", msg);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
