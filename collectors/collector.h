/*
 * collector.h — the collector plugin ABI of parkpulse (SPEC §4).
 *
 * A collector is a shared object in the daemon's plugin_dir that brings
 * figures into parkpulse. It includes only this header and exports one symbol:
 *
 *     const pp_collector_def parkpulse_collector = {
 *         .abi_version = PP_COLLECTOR_ABI_VERSION,
 *         .name = "myfeed",
 *         .init = myfeed_init, .run = myfeed_run, .shutdown = myfeed_shutdown,
 *     };
 *
 * For each `collector "NAME" { plugin = "myfeed" … }` section of the
 * configuration the daemon dlopens <plugin_dir>/myfeed.so once and, per
 * section:
 *
 *   1. calls init(host, &state) in the main thread. The collector reads its
 *      settings with host->option(host, "key"), checks them, allocates its
 *      state and returns 0 — or logs why and returns -1 (the daemon then
 *      refuses to start, or keeps the old configuration on reload).
 *   2. calls run(state) in a thread of its own. run() collects — reading a
 *      directory, running a command, listening on something — and hands what
 *      it finds to host->submit_csv() (CSV text as in SPEC §3) or
 *      host->submit_obs() (parsed figures). It returns when shutdown() asks it to.
 *   3. calls shutdown(state) from another thread to stop: it must make run()
 *      return promptly (e.g. by writing to a pipe run() polls), and must not
 *      block. After run() returned the daemon calls destroy(state), which frees
 *      everything.
 *
 * submit_* are thread-safe and synchronous: when they return PP_SUBMIT_OK the
 * figures are journaled and fsync'd to disk (the collector may now delete or
 * move its input); PP_SUBMIT_REFUSED means the input had bad rows and nothing
 * of it was taken (the report names each row and reason); PP_SUBMIT_ERROR
 * means the daemon could not store it now (full disk, shutting down): keep the
 * input and try again later.
 *
 * Everything a collector submits is untrusted: the daemon validates every
 * row against its configuration. Collectors never write parkpulse's state.
 */
#ifndef PP_COLLECTOR_H
#define PP_COLLECTOR_H

#include <stddef.h>

#define PP_COLLECTOR_ABI_VERSION 1

enum { PP_SUBMIT_OK = 0, PP_SUBMIT_REFUSED = 1, PP_SUBMIT_ERROR = -1 };
enum { PP_LOG_ERR = 3, PP_LOG_WARN = 4, PP_LOG_INFO = 6, PP_LOG_DEBUG = 7 };

/* A parsed figure for submit_obs(). Strings are copied by the daemon. */
typedef struct pp_collector_obs {
    const char *park;       /* park id (or name) */
    const char *indicator;  /* indicator id (or label) */
    const char *period;     /* any period form of SPEC §3, e.g. "2024-08" */
    double value;           /* in `unit`, or in the indicator's unit when unit is NULL */
    const char *unit;       /* may be NULL */
    char status;            /* 'A', 'P', 'E', 'R', or 0 for 'A' */
    const char *source;     /* may be NULL */
} pp_collector_obs;

typedef struct pp_collector_host pp_collector_host;
struct pp_collector_host {
    int abi_version;        /* PP_COLLECTOR_ABI_VERSION of the daemon */
    const char *name;       /* the instance name: collector "NAME" */

    /* The value of `key` in this collector's configuration section, or NULL.
     * Valid until destroy(). Common keys: interval, timeout, user; the rest are
     * the collector's own (path, command, …). */
    const char *(*option)(const pp_collector_host *host, const char *key);

    /* Hands len bytes of CSV to the daemon. source names the input in logs and
     * reports (e.g. a file name). On PP_SUBMIT_REFUSED and PP_SUBMIT_ERROR,
     * *report (if report is not NULL) receives a malloc'd text, one line per
     * problem ("source:line: reason"), which the collector frees with free(). */
    int (*submit_csv)(const pp_collector_host *host, const char *source, const char *data,
                      size_t len, char **report);

    /* Hands n parsed figures to the daemon; same results and report as submit_csv. */
    int (*submit_obs)(const pp_collector_host *host, const char *source,
                      const pp_collector_obs *obs, size_t n, char **report);

    /* Logs one line, prefixed with the collector's name. */
    void (*log)(const pp_collector_host *host, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    void *daemon_data;      /* the daemon's; collectors leave it alone */
};

typedef struct pp_collector_def {
    int abi_version;        /* PP_COLLECTOR_ABI_VERSION the collector was built against */
    const char *name;       /* plugin name, e.g. "spool" */
    int (*init)(const pp_collector_host *host, void **state);
    int (*run)(void *state);          /* returns 0 after shutdown, -1 on a fatal error */
    void (*shutdown)(void *state);    /* thread-safe, non-blocking: ask run() to return */
    void (*destroy)(void *state);     /* after run() returned: free the state */
} pp_collector_def;

/* The one symbol a collector exports. */
#define PP_COLLECTOR_SYMBOL "parkpulse_collector"

#endif
