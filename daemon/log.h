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
 *
 * Two kinds of line, as OpenBSD's log_warn/log_warnx: log_err/log_warn say
 * what they are given; log_errno/log_warn_errno add ": <strerror(errno)>" for
 * the call that just failed, and log_err_rc/log_warn_rc the text of an error
 * number given (a -errno as functions of parkpulse return it, or a positive
 * one, as pthread's and getaddrinfo's callers hold it).
 */
#ifndef PP_LOG_H
#define PP_LOG_H

#include <errno.h>
#include <stdbool.h>

enum { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* foreground: stderr; otherwise syslog(ident "parkpulsed"). */
void log_open(bool foreground);
void log_set_level(int level);

void log_msg(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_msg with ": <strerror(err)>" appended; err may be negative (-errno). */
void log_msg_errno(int level, const char *subsys, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prints the counts of repeated lines whose second is over (call it now and then). */
void log_flush(void);

#define log_err(sub, ...)   log_msg(LOG_LVL_ERR, sub, __VA_ARGS__)
#define log_warn(sub, ...)  log_msg(LOG_LVL_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...)  log_msg(LOG_LVL_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_LVL_DEBUG, sub, __VA_ARGS__)

#define log_errno(sub, ...)          log_msg_errno(LOG_LVL_ERR, sub, errno, __VA_ARGS__)
#define log_warn_errno(sub, ...)     log_msg_errno(LOG_LVL_WARN, sub, errno, __VA_ARGS__)
#define log_err_rc(sub, rc, ...)     log_msg_errno(LOG_LVL_ERR, sub, rc, __VA_ARGS__)
#define log_warn_rc(sub, rc, ...)    log_msg_errno(LOG_LVL_WARN, sub, rc, __VA_ARGS__)

#endif
