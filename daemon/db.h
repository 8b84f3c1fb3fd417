/*
 * db.h — the in-memory state: every series' figures with all their vintages,
 * and every target, as replayed from the journal and extended by ingest.
 *
 * One writer at a time (ingest holds db_wrlock), many readers (HTTP, bus, pace
 * evaluation hold db_rdlock). Pointers returned by look-ups stay valid while
 * the lock is held. Strings here are ids already validated against the
 * configuration by ingest or replay.
 */
#ifndef PP_DB_H
#define PP_DB_H

#include "model.h"

typedef struct db_vintage {
    double value;
    int64_t received_at;
    char status;          /* 'A', 'P', 'E', 'R' */
    const char *source;   /* interned, owned by the db */
} db_vintage;

typedef struct db_point {
    int period;
    uint32_t n_vintages;
    uint32_t cap;
    db_vintage *vintages; /* oldest first; the last is the value in force */
} db_point;

typedef struct db_series {
    char park[PP_ID_MAX + 1];
    char indicator[PP_ID_MAX + 1];
    db_point *points;     /* sorted by period, one per period */
    size_t n_points, cap;
    uint64_t version;     /* bumped on every change of a figure or a target */
    int64_t updated_at;   /* received_at of the newest vintage */
} db_series;

typedef struct db db;

/* An empty db, or NULL on ENOMEM (logged). db_free releases everything,
 * including the interned sources every db_vintage points to. */
db *db_new(void);
void db_free(db *d);

void db_rdlock(db *d);
void db_wrlock(db *d);
void db_unlock(db *d);

/* Adds an observation as a new vintage. Returns 1 when it changed the value in
 * force (new period or different value/status/source), 0 when it repeats the
 * latest vintage exactly (ignored: re-ingesting a file is idempotent), -1 on
 * ENOMEM or an invalid observation (non-finite value, status not A/P/E/R; logged).
 * On -1 nothing changed. The db keeps its own copy of o->source. */
int db_add_obs(db *d, const pp_obs *o);

/* Sets a target. Returns 1 when new or changed, 0 when identical (same value),
 * -1 on ENOMEM or a non-finite value. On 1 the series' version and the
 * generation are bumped (creating an empty series if needed). */
int db_add_target(db *d, const pp_target *t);

/* Look-ups; NULL / false when absent. */
const db_series *db_series_get(const db *d, const char *park, const char *indicator);
const db_point *db_series_point(const db_series *s, int period);
bool db_target(const db *d, const char *park, const char *indicator, int year, double *value);

/* All series, in a stable order (park id, then indicator id). */
size_t db_series_count(const db *d);
const db_series *db_series_at(const db *d, size_t i);

/* A counter bumped on every change: readers use it to invalidate caches. */
uint64_t db_generation(const db *d);

#endif
