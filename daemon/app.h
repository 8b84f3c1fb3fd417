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

typedef struct pp_app {
    pthread_rwlock_t cfg_lock;   /* guards cfg (swapped on reload) */
    pp_config *cfg;
    uint64_t cfg_generation;     /* bumped at every swap of cfg (under cfg_lock) */
    db *db;
    journal *journal;
    char rrd_dir[4096];
    pthread_mutex_t ingest_lock; /* one ingest at a time: journal appends, db writes, RRD */
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
    struct bus *bus;             /* the alert bus (NULL when not running) */
    struct graph_pool *graphs;   /* graph rendering workers (NULL: none) */
    struct graph_cache *graph_cache;
    /* Set by main.c when the daemon stops (before the collectors are stopped):
     * ingest then gives up between two pieces of work and answers INGEST_ERROR
     * for every input it has not journaled yet (ingest.h). */
    atomic_bool stopping;
    /* An ingest left RRD files unwritten because of stopping: they lag the
     * journal, so no clean-stop marker may vouch for them (under ingest_lock). */
    bool rrd_behind;
    /* counters for /metrics */
    uint64_t n_files_ok, n_files_refused, n_obs_accepted, n_obs_unchanged, n_targets_accepted;
} pp_app;

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
