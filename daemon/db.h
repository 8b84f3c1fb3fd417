/*
 * db.h — the in-memory state: every series' figures with all their vintages,
 * and every target, as replayed from the journal and extended by ingest.
 *
 * One writer at a time (ingest holds db_wrlock), many readers (HTTP, bus, pace
 * evaluation hold db_rdlock). Pointers returned by look-ups, and the views the
 * accessors fill, stay valid while the lock is held; the strings they point to
 * stay valid until db_free. Strings here are ids already validated against the
 * configuration by ingest or replay.
 */
#ifndef PP_DB_H
#define PP_DB_H

#include "model.h"

/* One vintage of a figure: a view filled by the accessors below. */
typedef struct db_vintage {
    double value;
    int64_t received_at;
    char status;          /* 'A', 'P', 'E', 'R', or 'W': a retraction (value NaN) */
    const char *source;   /* interned, owned by the db */
    const char *reason;   /* a retraction's reason (interned), NULL for a figure */
    bool has_yoy;         /* a 同比 % was given with it */
    double yoy;           /* that 同比 %, when has_yoy */
} db_vintage;

typedef struct db db;
typedef struct db_older db_older;

typedef struct db_series {
    const char *park;       /* interned, owned by the db */
    const char *indicator;  /* interned, owned by the db */
    uint64_t version;       /* bumped on every change of a figure or a target */
    int64_t updated_at;     /* received_at of the newest vintage */

    /* The rest is db.c's: read the figures through the accessors below. */
    const db *owner;        /* resolves the deliveries the cells refer to */
    void *cells;            /* cap values (int32_t mantissas, or doubles when wide),
                               then cap uint32_t metas: one per month */
    db_older *older;        /* replaced vintages, or NULL */
    double *yoy;            /* cap 同比 % (NaN: none), or NULL while no figure has one */
    int first;              /* period of the first cell */
    uint16_t n, cap;        /* months in use (first..last figure), allocated */
    bool wide;              /* the values are doubles: one did not fit a mantissa */
} db_series;

/* An empty db, or NULL on ENOMEM (logged). db_free releases everything,
 * including the interned strings every db_series and db_vintage points to. */
db *db_new(void);
void db_free(db *d);

void db_rdlock(db *d);
void db_wrlock(db *d);
void db_unlock(db *d);

/* An observation with status 'W' is a retraction (README): it withdraws the
 * figure in force for its period (o->note is the reason, o->source and
 * o->received_at who and when; o->value is ignored). Returns 1 when there was
 * a figure (the period then has none: db_series_latest is false, and the
 * retraction is the newest of db_series_vintages), 0 when there was none
 * (nothing changed), -1 on ENOMEM.
 *
 * Adds an observation as a new vintage. Returns 1 when it changed the value in
 * force (new period or different value/status/source/yoy), 0 when it repeats the
 * latest vintage exactly (ignored: re-ingesting a file is idempotent), -1 on
 * ENOMEM or an invalid observation (non-finite value, status not A/P/E/R,
 * period outside PP_PERIOD_MIN_YEAR..PP_PERIOD_MAX_YEAR, logged with the reason
 * of pp_period_range_why). On -1 nothing changed. The db keeps its own copy of
 * o->source. */
int db_add_obs(db *d, const pp_obs *o);

/* Sets a target. Returns 1 when new or changed, 0 when identical (same value),
 * -1 on ENOMEM, a non-finite value or a year outside the period range (logged
 * with the reason of pp_year_range_why). On 1 the series' version and the
 * generation are bumped (creating an empty series if needed). */
int db_add_target(db *d, const pp_target *t);

/* A hint for a db_add_obs of (park, indicator, period) a few calls later
 * (replay): brings what it will read into the cache — stage 0 the series'
 * hash slot, 1 the series, 2 its cells for period, each stage finding the
 * previous one cached. Changes nothing; the caller holds the write lock. */
void db_prefetch(const db *d, const char *park, const char *indicator, int period, int stage);

/* Look-ups; NULL / false when absent. */
const db_series *db_series_get(const db *d, const char *park, const char *indicator);
bool db_target(const db *d, const char *park, const char *indicator, int year, double *value);

/* The figures of a series (s may be NULL: no figures). */

/* The earliest / latest period holding a figure (not retracted), or -1 when
 * there is none. */
int db_series_first(const db_series *s);
int db_series_last(const db_series *s);

/* Fills *out with the vintage in force for period; false when there is none. */
bool db_series_latest(const db_series *s, int period, db_vintage *out);

/* The next period after `after` holding a figure, with its vintage in force in
 * *out (may be NULL), or -1 when there is none. after = -1 starts at the first:
 *   for (int p = db_series_next(s, -1, &v); p >= 0; p = db_series_next(s, p, &v)) */
int db_series_next(const db_series *s, int after, db_vintage *out);

/* Every vintage of period, oldest first (the last is the one in force): writes
 * at most max of them to out and returns how many there are (0: no figure), so
 * db_series_vintages(s, p, NULL, 0) counts them. */
size_t db_series_vintages(const db_series *s, int period, db_vintage *out, size_t max);

/* The i-th vintage of period, oldest first; false when there are i or fewer.
 * Walks the vintages without a buffer: for one period's history. */
bool db_series_vintage(const db_series *s, int period, size_t i, db_vintage *out);

/* All series, in a stable order (park id, then indicator id). */
size_t db_series_count(const db *d);
const db_series *db_series_at(const db *d, size_t i);

/* A counter bumped on every change: readers use it to invalidate caches. */
uint64_t db_generation(const db *d);

#endif
