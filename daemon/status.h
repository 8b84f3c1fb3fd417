/*
 * status.h — a series' state as users see it: the latest figure, its target
 * and the pace engine's verdict, assembled from the db and the configuration,
 * and written as the <series> JSON object of README, HTTP API, a park's object and a
 * series' points. Used by the HTTP API, the alert bus and the report; every
 * function reads a read view (app.h) its caller holds.
 */
#ifndef PP_STATUS_H
#define PP_STATUS_H

#include "app.h"
#include "json.h"
#include "pace.h"

typedef struct series_status {
    const pp_park *park;
    const pp_indicator *ind;
    const db_series *series;
    bool has_figure;         /* false: no figure yet (status no_data or no_target) */
    char obs_status;         /* the figure's SDMX status: 'A', 'P', 'E', 'R' */
    int period;              /* latest period with a figure; -1 without one */
    double value;
    bool has_yoy;            /* the figure in force came with a 同比 % */
    double yoy;
    bool has_target;
    double target;
    pace_result pace;
    int64_t updated_at;      /* received_at of the figure in force */
    int revision;            /* 0 for the first vintage of that period, 1 after one revision… */
    char note[160];          /* "" or a warning about the figure (a cumulative figure
                                below the same year's previous month) */
} series_status;

/* Evaluates a series of the read view v at its latest period (or at `period`
 * when ≥ 0: the figure in force for that month), as of v->now: the pace
 * engine's verdict, the streak (periods before it judged warning or worse,
 * 1-2月 one period) and, for the latest, overdue. Returns false when the
 * series has no figure at `period`; for the latest (period < 0) a series
 * without any figure is still evaluated (has_figure false, status no_data)
 * when it has a target for the current year or for the year of the month
 * that is due — every series with a target exists from the start. */
bool status_eval(const pp_view *v, const pp_park *park, const pp_indicator *ind,
                 const db_series *s, int period, series_status *out);

/* Writes ,"value","target","completion_pct","pace_pct","gap_pp","yoy" (each
 * with a leading comma): the figures an alert and a <series> object share.
 * yoy is the 同比 % published with the figure in force, null when none was. */
void status_figures_json(jbuf *b, const series_status *st);

/* A series with no figure at `period` in a table of that month (the 通报, a
 * ranking): no_data, overdue when that month is due at v->now. false when the
 * year of `period` has no target (nobody expected a figure). */
bool status_eval_missing(const pp_view *v, const pp_park *park, const pp_indicator *ind,
                         int period, series_status *out);

/* The month before `period` as a series counts periods: January is not a
 * period of its own (1-2月 is one), so the one before February is December. */
int status_prev_period(int period);

/* The latest month whose figures are due at v->now in the configured
 * timezone: the month just ended (January is not reported alone: in February
 * it is December), whose figures come in until the due day. The overview's
 * month (GET /api/v1/status "due_period"); -1 without a clock. A figure is
 * overdue only after its due day (pace_required_period). */
int status_due_period(const pp_view *v);

/* Writes ,"overdue","overdue_period","streak" (each with a leading comma). */
void status_flags_json(jbuf *b, const series_status *st);

/* Writes the <series> object of README, HTTP API. */
void status_series_json(jbuf *b, const series_status *st);

/* Writes a park object: {"id","name","level","type","region","indicators":[…]}. */
void status_park_json(jbuf *b, const pp_view *v, const pp_park *park);

/* Writes a series' figures in force from `from` to `to` (each -1: open):
 * {"park","indicator","label","unit","points":[{"period","value","pace"},…]},
 * pace being the amount the target expects that month (null without a
 * target). Returns when the series last changed (0: no figure yet). */
int64_t status_points_json(jbuf *b, const pp_view *v, const pp_park *park, const pp_indicator *ind,
                           int from, int to);

#endif
