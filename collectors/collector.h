/*
 * collector.h — the collector plugin ABI of parkpulse (README, Adding a collector).
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
 *      it finds to host->submit_csv() (CSV text as in README, Feeding figures), to
 *      host->submit_csv_batch() (many CSV inputs at once; ABI 2) or to
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
 * Versions: ABI 2 appended submit_csv_batch() to pp_collector_host, which
 * hands many inputs over with one fsync instead of one each. The daemon loads
 * collectors built for ABI 1 or 2 and sets host->abi_version to the lower of
 * its own version and the collector's def.abi_version: a field marked
 * "ABI 2" exists only when host->abi_version >= 2, so a collector that uses it
 * checks that first and falls back to submit_csv() otherwise.
 *
 * Everything a collector submits is untrusted: the daemon validates every
 * row against its configuration. Collectors never write parkpulse's state.
 */
#ifndef PP_COLLECTOR_H
#define PP_COLLECTOR_H

#include <stddef.h>

#define PP_COLLECTOR_ABI_VERSION 2

enum { PP_SUBMIT_OK = 0, PP_SUBMIT_REFUSED = 1, PP_SUBMIT_ERROR = -1 };
enum { PP_LOG_ERR = 3, PP_LOG_WARN = 4, PP_LOG_INFO = 6, PP_LOG_DEBUG = 7 };

/* A parsed figure for submit_obs(). Strings are copied by the daemon. */
typedef struct pp_collector_obs {
    const char *park;       /* park id (or name) */
    const char *indicator;  /* indicator id (or label) */
    const char *period;     /* any period form of README, Feeding figures, e.g. "2024-08" */
    double value;           /* in `unit`, or in the indicator's unit when unit is NULL */
    const char *unit;       /* may be NULL */
    char status;            /* 'A', 'P', 'E', 'R', or 0 for 'A' */
    const char *source;     /* may be NULL */
} pp_collector_obs;

/* One CSV input for submit_csv_batch(). Nothing is kept after the call returns. */
typedef struct pp_collector_input {
    const char *source;     /* names the input in logs and reports, as for submit_csv */
    const char *data;       /* len bytes of CSV */
    size_t len;
} pp_collector_input;

typedef struct pp_collector_host pp_collector_host;
struct pp_collector_host {
    int abi_version;        /* the ABI the daemon speaks to this collector: the lower of
                               its PP_COLLECTOR_ABI_VERSION and def.abi_version */
    const char *name;       /* the instance name: collector "NAME" */

    /* The value of `key` in this collector's configuration section, or NULL.
     * Valid until destroy(). Common keys: interval, timeout, user; the rest are
     * the collector's own (path, command, …). */
    const char *(*option)(const pp_collector_host *host, const char *key);

    /* Hands len bytes of CSV to the daemon. source names the input in logs and
     * reports (e.g. a file name). On PP_SUBMIT_REFUSED and PP_SUBMIT_ERROR,
     * *report (if report is not NULL) receives a malloc'd text, one line per
     * problem ("source:line: reason"), which the collector frees with free().
     * On PP_SUBMIT_OK *report is NULL, or the daemon's warnings about figures
     * it accepted (a year-to-date figure below the month before), one per
     * line: also the collector's to free (the spool writes them to
     * done/<name>.warnings). */
    int (*submit_csv)(const pp_collector_host *host, const char *source, const char *data,
                      size_t len, char **report);

    /* Hands n parsed figures to the daemon; same results and report as submit_csv. */
    int (*submit_obs)(const pp_collector_host *host, const char *source,
                      const pp_collector_obs *obs, size_t n, char **report);

    /* Logs one line, prefixed with the collector's name. */
    void (*log)(const pp_collector_host *host, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    void *daemon_data;      /* the daemon's; collectors leave it alone */

    /* ABI 2 — fields from here on exist only when abi_version >= 2. */

    /* Hands n CSV inputs to the daemon at once. Each is accepted or refused on
     * its own, with the outcome of n submit_csv calls in that order: results[i] receives its
     * PP_SUBMIT_* code and, if reports is not NULL, reports[i] its report as
     * submit_csv's *report (a malloc'd text for REFUSED and ERROR, NULL or
     * warnings for OK; the collector frees each). Every accepted input is journaled and
     * fsync'd before the call returns, together with the others: one fsync
     * per 256 inputs, 64 MiB of CSV or 4096 figures, whichever comes first,
     * so a burst of small files costs a few disk flushes, not one each. Returns
     * the worst of the results: PP_SUBMIT_ERROR if any, else
     * PP_SUBMIT_REFUSED if any, else PP_SUBMIT_OK (also for n == 0). */
    int (*submit_csv_batch)(const pp_collector_host *host, size_t n,
                            const pp_collector_input *in, int *results, char **reports);
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
