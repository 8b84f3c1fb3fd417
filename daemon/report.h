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

/* The latest period with a figure for the indicator (NULL: any configured
 * indicator) in any configured park, or -1. */
int report_latest_period(const pp_view *v, const pp_indicator *ind);

/* {"indicator","label","unit","period","parks":[{"rank","park","name",…series}]} best first. */
void report_ranking_json(const pp_view *v, const pp_indicator *ind, int period, jbuf *b);

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
