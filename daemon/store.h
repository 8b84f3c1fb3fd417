/*
 * store.h — the RRD files of README, Storage, the only module that includes rrd.h.
 *
 * One file per series at <rrd_dir>/<park>/<indicator>.rrd: step 86400, DS
 * `value` and DS `pace` (GAUGE, heartbeat 40 days), RRA LAST:0.5:1:N with N =
 * 7400 (over 20 years of days) or, for a longer series, enough rows for all of
 * it (a file is rebuilt longer when a new month would not fit). Months are
 * those of pp_period_valid (from 1980-01). Month M of year Y is written with the timestamp 00:00 UTC of
 * the first day of month M+1, so every day of M holds the month's value; a month
 * without a figure is written as unknown. A series whose new months all follow
 * the last month written is appended in place (one rrd_update_r call for all its
 * months); anything else — a revision, a late month, a changed target — rebuilds
 * the file into <file>.tmp and renames it over the old one, so that a reader
 * never sees half a file. librrd calls are serialised by one mutex.
 */
#ifndef PP_STORE_H
#define PP_STORE_H

#include "model.h"

/* The months of one series to be written: first_period .. first_period+n-1,
 * value[i] and pace[i] NAN where unknown (a NULL array: all unknown). The
 * caller owns every pointer; store_write keeps none after it returns. */
typedef struct store_series {
    const char *park;        /* validated ids */
    const char *indicator;
    int first_period;
    size_t n;
    const double *value;
    const double *pace;
    int changed_from;        /* earliest period whose value or pace changed since the
                                last write; first_period (or less) forces a rebuild */
} store_series;

/* Writes the series under rrd_dir (created as needed). Nothing is fsynced: the
 * journal is the truth, and after anything but a clean stop main.c rebuilds
 * every file from it. Returns 0, or -1 with librrd's and the system's error
 * logged. A series refused as invalid (ids, months outside pp_period_valid)
 * is left as it was; any other failure marks it dirty (below), a success
 * makes it clean. */
int store_write(const char *rrd_dir, const store_series *s);

/* ---- dirty series ----------------------------------------------------------
 * A series whose last write failed (a full disk, a file size limit, ...) may
 * lag the journal: it is "dirty" until a store_write of it succeeds or
 * store_dirty_clear. ingest_retry_dirty (ingest.h) writes the dirty series
 * again, and the clean-stop marker (main.c) is written only while none is.
 * Thread-safe; rrd_dir NULL means every directory. */
typedef struct store_key {
    char park[PP_ID_MAX + 1];
    char indicator[PP_ID_MAX + 1];
} store_key;

/* Dirty series under rrd_dir (also counting any mark lost for want of memory,
 * which never clears: the next start then rebuilds every file). */
size_t store_dirty_count(const char *rrd_dir);

/* Copies up to max dirty series of rrd_dir into keys; returns how many. */
size_t store_dirty_list(const char *rrd_dir, store_key *keys, size_t max);

/* Marks a series dirty (store_write does it itself), or clean again (for a
 * series that has nothing left to write). */
void store_dirty_mark(const char *rrd_dir, const char *park, const char *indicator);
void store_dirty_clear(const char *rrd_dir, const char *park, const char *indicator);

/* The path of a series' file into buf. Returns 0, or -1 if it does not fit. */
int store_path(const char *rrd_dir, const char *park, const char *indicator, char *buf,
               size_t len);

/* 00:00 UTC on the first day of the month after `period`: the timestamp that
 * carries month `period`. */
long store_month_end(int period);

/* One graph of a series (README, HTTP API): the value as a soft area with a line on
 * top, pace (or the target) as a dashed line, the latest value and an
 * optional comment line under the legend. Text is UTF-8 as the caller has it
 * (NULL or "" for none); store_graph makes it safe for rrdtool's argument
 * syntax itself. */
typedef struct store_graph_spec {
    bool svg;                 /* false: PNG */
    int width, height;        /* plot area in pixels (rrdtool -w/-h), 10..4000 */
    long start, end;          /* unix seconds, start < end; month boundaries for
                                 the monthly x axis */
    const char *title;        /* e.g. "湘潭经开区 · 固定资产投资 (亿元)" */
    const char *unit;         /* vertical label and the unit after "最新 …" */
    const char *value_label;  /* legend of the value line */
    const char *pace_label;   /* legend of the dashed line: 序时进度, 目标 */
    const char *comment;      /* e.g. "低于序时进度 2.60 个百分点" */
    const char *latest;       /* the latest figure as published ("192.2"), or NULL/"" */
    const char *yoy;          /* its 同比 % as published ("12.5"), or NULL/"": "同比 +12.5%" */
    const char *target;       /* the year's target, a number ("300"); NULL/"": none, so
                                 no pace line, no target line and no legend for them */
    bool target_line;         /* draw the target as a flat 全年目标 line */
    long last_start, last_end; /* last year's months (unix seconds), drawn dashed and
                                  shifted onto this year's; 0: none */
} store_graph_spec;

/* Renders the graph of the series file rrd_file with librrd (rrd_graph_v,
 * under the module's librrd mutex: not thread-safe in librrd 1.7). Returns 0
 * and sets *out to the image bytes (malloc'd; the caller frees them) and
 * *len; -ENOENT when rrd_file does not exist (not logged); -EINVAL for a bad
 * spec or a file name librrd cannot take (a ':' in it); -ENOMEM; -EIO when
 * librrd fails (logged with its message). */
int store_graph(const char *rrd_file, const store_graph_spec *spec, unsigned char **out,
                size_t *len);

#endif
