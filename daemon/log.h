/*
 * log.h — one logging convention for the daemon, the collectors and the client.
 *
 * Every line carries a level and a subsystem prefix ("spool: …"). In the
 * foreground lines go to stderr; as a service (log_open(false)) they go to
 * syslog, which systemd's journal collects. Thread-safe.
 *
 * A line repeated within a second of its printing is not printed again but
 * counted; the count follows as "<line> (repeated N times)" once the second
 * is over, at the next log call or log_flush().
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <stdbool.h>

enum { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* foreground: stderr; otherwise syslog(ident "parkpulsed"). */
void log_open(bool foreground);
void log_set_level(int level);

void log_msg(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints the counts of repeated lines whose second is over (call it now and then). */
void log_flush(void);

#define log_err(sub, ...)   log_msg(LOG_LVL_ERR, sub, __VA_ARGS__)
#define log_warn(sub, ...)  log_msg(LOG_LVL_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...)  log_msg(LOG_LVL_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_LVL_DEBUG, sub, __VA_ARGS__)

#endif
