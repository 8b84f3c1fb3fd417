/*
 * app.h — the daemon's shared state — the configuration in force, the
 * in-memory db, the journal, the alert engine and the clock — and its two
 * doors: the read view (view_begin/view_end, below), through which status,
 * report, the API and the alert evaluation read, and the one writer path,
 * ingest's commit (ingest.h). app_open/app_start/app_stop (app.c) make and
 * undo the whole daemon in its start-up order (docs/ARCHITECTURE.md); main.c
 * and the Check suites' fixture (tests/test_app.h) both use them.
 */
#ifndef PP_APP_H
#define PP_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "journal.h"

struct alert_engine;
struct bus;
struct graph_pool;
struct graph_cache;
struct http_server;
struct plugin_set;

/*
 * Locks and threads (docs/ARCHITECTURE.md "Locks and threads" says who runs
 * where). A thread that holds several locks took them in this order, and
 * never takes one that comes earlier in the list while it holds a later one:
 *
 *   1. ingest_lock (below)      one ingest at a time: ingest_csv/_batch/
 *                               _records, ingest_evaluate_all, a reload's
 *                               RRD rebuild, the clean-stop marker
 *   1b. a series' write lock    ingest_write_series (ingest.c): copying a
 *                               series from the db and writing its file
 *   2. cfg_lock (below)         read: whoever reads cfg; write: the reload
 *                               swap in main.c, holding nothing else
 *   3. the db lock              db_rdlock/db_wrlock (db.c)
 *   4. http's sse_lock          an event stream asks the alert engine
 *   5. the alert engine's lock  (alert.c)
 *   6. leaves, which call out to no lock of this list: the RRD writers'
 *      queue mutexes (ingest.c, one per writer thread; never held while a file
 *      is written), a series' store_write_lock then store_dirs_lock, or
 *      store_rrd_lock (store.c), the bus queue (bus.c), the graph pool and
 *      cache (graph.c), the answer cache (answer.c), config.c's parser lock,
 *      the log.
 *
 * cfg_lock and the db lock prefer writers (so a reload or an ingest is never
 * starved by a stream of readers) and are not recursive: a thread that holds
 * one for reading must not ask for it again — a writer queued in between
 * would deadlock both. So a caller of ingest_*() holds no cfg_lock, and code
 * that holds the db lock calls nothing that takes it.
 *
 * The counters below are written under ingest_lock but read by /metrics
 * without it: C11 atomics, added and read relaxed (app_count, app_counter).
 */
typedef struct pp_app {
    pthread_rwlock_t cfg_lock;   /* guards cfg (swapped on reload); lock 2 above */
    pp_config *cfg;
    uint64_t cfg_generation;     /* bumped at every swap of cfg (under cfg_lock) */
    db *db;
    journal *journal;
    char rrd_dir[4096];
    pthread_mutex_t ingest_lock; /* one ingest at a time: journal appends, db writes, RRD; lock 1 */
    int64_t fixed_now;           /* --now: the clock is fixed at this time (0: real clock) */
    int64_t started_at;
    /* the alert state machine (NULL in tools): ingest's commit has it decide
     * for the series it touched, and the journal's replay feeds it its events */
    struct alert_engine *alerts;
    struct silence_set *silences; /* silence.h (NULL: none) */
    struct bus *bus;             /* the alert bus (NULL when not running) */
    struct graph_pool *graphs;   /* graph rendering workers (NULL: none) */
    struct graph_cache *graph_cache;
    /* writes the RRD files of committed series off the acknowledgement path
     * (ingest.h, ingest_writer_start; NULL: commits write them themselves) */
    struct rrd_writer *rrd_writer;
    /* set once by app_start when the journal is replayed, the statuses evaluated
     * and every collector watches (plugin_start_all returned): until then the
     * HTTP API answers 503 {"error":"starting"} (app_ready) */
    atomic_bool ready;
    /* Set by app_stop when the daemon stops (before the collectors are stopped):
     * ingest then gives up between two pieces of work and answers INGEST_ERROR
     * for every input it has not journaled yet (ingest.h). */
    atomic_bool stopping;
    /* counters for /metrics */
    _Atomic uint64_t n_files_ok, n_files_refused, n_obs_accepted, n_obs_unchanged,
        n_targets_accepted;
    /* what app_open and app_start made, for app_stop (app.c) */
    struct {
        bool locks;                  /* cfg_lock and ingest_lock are initialised */
        int lock_fd;                 /* the state directory's lock (-1: none) */
        struct http_server *http;    /* NULL: not serving */
        struct plugin_set *plugins;  /* the running collectors (NULL: none) */
        int rrd_failed;              /* RRD files app_open's rebuild could not write */
    } run;
} pp_app;

/* Initialises ingest_lock and cfg_lock, the latter writer-preferring (see the
 * lock order above). Returns 0 or -errno. (app_open calls it.) */
static inline int app_locks_init(pp_app *app)
{
    pthread_rwlockattr_t attr;
    int rc = pthread_rwlockattr_init(&attr);
    if (rc != 0)
        return -rc;
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&app->cfg_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0)
        return -rc;
    rc = pthread_mutex_init(&app->ingest_lock, NULL);
    if (rc != 0) {
        pthread_rwlock_destroy(&app->cfg_lock);
        return -rc;
    }
    return 0;
}

/*
 * The read view: what a reader (status, report, the API's GET routes, an
 * alert evaluation) sees for the length of one request or one evaluation —
 * the configuration in force, the db, the alert engine, and the clock read
 * once. view_begin() takes cfg_lock for reading, then the db's read lock
 * (locks 2 and 3 above, in that order); view_end() releases both. While a
 * view is held its owner calls nothing that takes cfg_lock or the db lock
 * again (ingest_*() in particular), and nothing writes cfg or the db.
 */
typedef struct pp_view {
    const pp_config *cfg;
    uint64_t cfg_generation;     /* of cfg (pp_app.cfg_generation) */
    const db *db;
    struct alert_engine *alerts; /* NULL when there is none (tools, some tests) */
    int64_t now;                 /* app_now() at view_begin */
    struct {                     /* what view_end releases (NULL: nothing held) */
        pthread_rwlock_t *cfg_lock;
        db *db;
    } held;
} pp_view;

/* Takes the read view of app (cfg_lock, then the db lock, both for reading). */
void view_begin(pp_app *app, pp_view *v);

/* Releases what view_begin took (the db lock, then cfg_lock). */
void view_end(pp_view *v);

/* Adds n to one of the /metrics counters; reads one. */
static inline void app_count(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static inline uint64_t app_counter(const _Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

/* true once the daemon is ready (see pp_app.ready). */
static inline bool app_ready(const pp_app *app)
{
    return atomic_load_explicit(&app->ready, memory_order_acquire);
}

/* ---- making and undoing the daemon (app.c) ---- */

/* Exit statuses of parkpulsed(8) (sysexits.h values). */
#define APP_EX_USAGE 64
#define APP_EX_DATAERR 65
#define APP_EX_SOFTWARE 70
#define APP_EX_CANTCREAT 73
#define APP_EX_IOERR 74
#define APP_EX_CONFIG 78

typedef struct app_options {
    const char *conf_file;
    const char *now;        /* --now as given (parsed in the configured timezone), or NULL */
    int64_t fixed_now;      /* when now is NULL: a fixed clock (0: the real one) */
    bool foreground;        /* errors to stderr too (logged where the log goes) */
    bool serve;             /* fork the graph workers and open the HTTP socket */
    bool alerts;            /* an alert engine, fed by the replay */
    bool rebuild;           /* --rebuild: every RRD file from the journal */
    bool recover;           /* --recover: move a damaged journal aside first */
    bool compact;           /* --compact: compact the journal whatever it holds */
} app_options;

/* Makes the daemon up to its replayed state, in the start-up order of
 * docs/ARCHITECTURE.md: the locks, the configuration (TZ set from it), the
 * clock, the state directory and its lock, [serve: the graph workers, forked
 * before any thread exists, and the HTTP socket, answering 503 "starting"],
 * the journal checked (or recovered) and opened, the db, [alerts: the alert
 * engine], the replay, the RRD files rebuilt when the last stop was not
 * clean (or rebuild; app->run.rrd_failed counts the files that failed), and
 * the journal compacted when it holds mostly superseded records (or compact).
 * Returns 0, or the exit status for what failed (logged); then
 * app_stop(app, false) undoes what was made. */
int app_open(pp_app *app, const app_options *o);

/* Makes an opened daemon ready: the bus, every status evaluated, the
 * collectors started (each one's init() has returned), then app->ready.
 * Returns 0 or an exit status (logged). */
int app_start(pp_app *app);

/* Stops and frees everything app_open and app_start made, in reverse: sets
 * app->stopping, stops the collectors and the HTTP server, closes the bus,
 * then — when clean — writes the clean-stop marker before closing the
 * journal. app may be partly opened. */
void app_stop(pp_app *app, bool clean);

/* The daemon's clock: --now when given, else time(NULL). */
int64_t app_now(const pp_app *app);

/* Local calendar date of t in the configured timezone (TZ is set at start-up). */
void app_local_date(int64_t t, int *year, int *month, int *day);

/* RFC 3339 local time with offset, e.g. 2024-09-15T10:02:03+08:00, into buf (≥ 32 bytes). */
char *app_format_time(int64_t t, char *buf, size_t len);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS" (local), with "Z" or "+HH:MM", or
 * "@<unix seconds>". Returns 0 and sets *t, or -1. */
int app_parse_time(const char *s, int64_t *t);

#endif
