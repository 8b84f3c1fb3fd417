/*
 * report.h — the read-only views built from many series at once: the ranking
 * of the parks on one indicator, the monthly 通报 table, a figure's revision
 * history, and the Prometheus exposition. Callers hold a read view (app.h,
 * view_begin) and have validated the ids; these functions only write into a
 * jbuf, and judge every series as of the view's clock.
 */
#ifndef PP_REPORT_H
#define PP_REPORT_H

#include "app.h"
#include "json.h"
#include "status.h"

/* The latest period with a figure for the indicator (NULL: any configured
 * indicator) in any configured park, or -1. */
int report_latest_period(const pp_view *v, const pp_indicator *ind);

/* What a ranking orders by: the gap to pace or target (default), the value as
 * published, the published 同比, the completion of the annual target. */
typedef enum { REPORT_BY_GAP = 0, REPORT_BY_VALUE, REPORT_BY_YOY, REPORT_BY_COMPLETION } report_by;

/* "gap", "value", "yoy", "completion" (NULL or "": gap). 0, or -1 when unknown. */
int report_by_parse(const char *s, report_by *by);
const char *report_by_name(report_by by);

/* The period before `period` in a ranking's history: the month before, but
 * 1-2月 is one period (February's predecessor is December). */
int report_prev_period(int period);

/* One park in a ranking. */
typedef struct report_rank {
    series_status st;        /* the park's figure at the period */
    size_t park;             /* index into catalog.parks */
    int rank;                /* 1…; ties share a rank (1, 2, 2, 4); 0: listed unranked */
    bool has_change;         /* ranked in the previous period too */
    int change;              /* previous rank − this rank: 2 = up two places */
    int streak_first;        /* consecutive periods ranked first ending at this one (0: not first) */
} report_rank;

/* The parks of group g (NULL: all) with a figure for ind at period, best
 * first on criterion by — ties on the figures as displayed (2 decimals for
 * percentages and points, the value as published) share a rank; parks
 * without the figure ranked on follow, unranked. malloc'd (*n entries), or
 * NULL when out of memory. */
report_rank *report_ranking(const pp_view *v, const pp_indicator *ind, int period,
                            const conf_group *g, report_by by, size_t *n);

/* {"indicator","label","unit","period","group","group_label","by","parks":[{"rank",
 * "rank_change","streak_first","name",…series}]} best first. */
void report_ranking_json(const pp_view *v, const pp_indicator *ind, int period,
                         const conf_group *g, report_by by, jbuf *b);

/* The 通报 table for `period` (every park × indicator with a figure that month). */
void report_table_json(const pp_view *v, int period, jbuf *b);
void report_table_csv(const pp_view *v, int period, jbuf *b);

/* The same table wide (layout=wide): a title line, a two-row header — each
 * indicator's "label(unit)" over 累计值, 同比%, 全年目标, 完成%, 较序时(百分点),
 * 状态 — and a row per park with a figure that month. csv.c reads it back
 * (its derived columns ignored). */
void report_table_csv_wide(const pp_view *v, int period, jbuf *b);

/* {"park","indicator","period","vintages":[{"value","status","source","received_at"},…]} oldest first. */
void report_history_json(const pp_view *v, const pp_park *park, const pp_indicator *ind, int period,
                         jbuf *b);

/* One vintage of a history: {"value","status","source","yoy","received_at"}
 * and, for a retraction (status W, value null), "reason". */
void report_vintage_json(jbuf *b, const db_vintage *v);

/* Prometheus text exposition (format 0.0.4) of every series of the view v and
 * of the daemon's counters (app). */
void report_metrics(const pp_view *v, const pp_app *app, jbuf *b);

#endif
