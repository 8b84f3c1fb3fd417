/*
 * app.h — the daemon's shared state, handed to every room of SPEC's data
 * flow: the configuration in force, the in-memory db, the journal, and the
 * clock. main.c owns it; ingest writes through it; http, bus and status read.
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

/*
 * Locks and threads (docs/ARCHITECTURE.md "Locks and threads" says who runs
 * where). A thread that holds several locks took them in this order, and
 * never takes one that comes earlier in the list while it holds a later one:
 *
 *   1. ingest_lock (below)      one ingest at a time: ingest_csv/_batch/
 *                               _records, main's evaluate_all, a reload's
 *                               RRD rebuild, the clean-stop marker
 *   2. cfg_lock (below)         read: whoever reads cfg; write: the reload
 *                               swap in main.c, holding nothing else
 *   3. the db lock              db_rdlock/db_wrlock (db.c)
 *   4. http's sse_lock          an event stream asks the alert engine
 *   5. the alert engine's lock  (alert.c)
 *   6. leaves, which call out to no lock of this list: store_write_lock then
 *      store_rrd_lock (store.c), the bus queue (bus.c), the graph pool and
 *      cache (graph.c), the answer cache (api.c), config.c's parser lock,
 *      report.c's sort lock, the log.
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
    /* called (with the ingest lock held) after the figures or targets of the n
     * series (parks[i], indicators[i]) changed; may be NULL */
    void (*on_change)(struct pp_app *app, void *ud, const char *const *parks,
                      const char *const *indicators, size_t n);
    void *on_change_ud;
    /* called for each journal event record during replay; may be NULL */
    void (*on_event)(struct pp_app *app, void *ud, const char *payload);
    void *on_event_ud;
    struct alert_engine *alerts; /* the alert state machine (NULL in tools) */
    struct silence_set *silences; /* silence.h (NULL: none) */
    struct bus *bus;             /* the alert bus (NULL when not running) */
    struct graph_pool *graphs;   /* graph rendering workers (NULL: none) */
    struct graph_cache *graph_cache;
    /* set once by main.c when the journal is replayed, the statuses evaluated
     * and every collector watches (plugin_start_all returned): until then the
     * HTTP API answers 503 {"error":"starting"} (app_ready) */
    atomic_bool ready;
    /* Set by main.c when the daemon stops (before the collectors are stopped):
     * ingest then gives up between two pieces of work and answers INGEST_ERROR
     * for every input it has not journaled yet (ingest.h). */
    atomic_bool stopping;
    /* counters for /metrics */
    _Atomic uint64_t n_files_ok, n_files_refused, n_obs_accepted, n_obs_unchanged,
        n_targets_accepted;
} pp_app;

/* Initialises ingest_lock and cfg_lock, the latter writer-preferring (see the
 * lock order above). Returns 0 or -errno. */
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
