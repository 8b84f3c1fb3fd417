/*
 * status.c — from db figures to the <series> object of README, HTTP API (see status.h).
 */
#include "status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int status_prev_period(int period)
{
    if (pp_period_month(period) > 2)
        return period - 1;
    /* February (1-2月) and a January on its own: the period before is December */
    return pp_period_make(pp_period_year(period) - 1, 12);
}

int status_due_period(const pp_view *v)
{
    int y, m, d;
    if (v->now <= 0)
        return -1;
    app_local_date(v->now, &y, &m, &d);
    /* the month just ended; January is not reported alone: then December */
    int p = pp_period_make(y, m) - 1;
    return pp_period_month(p) == 1 ? p - 1 : p;
}

/* The latest month whose figure is overdue when missing (its due day passed). */
static int overdue_from(const pp_view *v)
{
    int y, m, d;
    if (v->now <= 0)
        return -1;
    app_local_date(v->now, &y, &m, &d);
    return pace_required_period(y, m, d, v->cfg->due_day);
}

/* The status of the figure in force at period p judged alone (no clock, no
 * streak), or PP_STATUS_NO_TARGET when there is none. */
static pp_status judged_at(const pp_view *view, const pp_park *park, const pp_indicator *ind,
                           const db_series *s, int p, double warn, double crit)
{
    db_vintage v;
    if (!db_series_latest(s, p, &v))
        return PP_STATUS_NO_TARGET;
    pace_input in = { .ind = ind, .park_name = park->name, .warn = warn, .crit = crit,
                      .period = p, .value = v.value };
    in.has_target = db_target(view->db, park->id, ind->id, pp_period_year(p), &in.target);
    pace_result r;
    pace_evaluate(&in, &r);
    return r.judged;
}

/* A cumulative figure below the same year's previous figure: the note of README. */
static void cumulative_note(const pp_indicator *ind, const db_series *s, int at, double value,
                            char *note, size_t len)
{
    note[0] = '\0';
    if (ind->kind != PP_KIND_CUMULATIVE)
        return;
    db_vintage pv;
    for (int p = at - 1; p >= pp_period_make(pp_period_year(at), 1); p--) {
        if (!db_series_latest(s, p, &pv))
            continue;
        if (value < pv.value) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%.15g", value);
            snprintf(b, sizeof b, "%.15g", pv.value);
            snprintf(note, len, "累计值%s%s低于%d月的%s%s，请核实 (year-to-date figure below "
                     "the previous month's)", a, ind->unit ? ind->unit : "", pp_period_month(p),
                     b, ind->unit ? ind->unit : "");
        }
        return;
    }
}

bool status_eval(const pp_view *view, const pp_park *park, const pp_indicator *ind,
                 const db_series *s, int period, series_status *out)
{
    memset(out, 0, sizeof *out);
    int last = db_series_last(s), at = period < 0 ? last : period;
    db_vintage v;
    pace_input in = { .ind = ind, .park_name = park->name, .due_day = view->cfg->due_day };
    pp_catalog_thresholds(park, ind, &in.warn, &in.crit);
    if (view->now > 0)
        app_local_date(view->now, &in.today_year, &in.today_month, &in.today_day);
    out->park = park;
    out->ind = ind;
    out->series = s;
    out->period = -1;
    if (last < 0 || !db_series_latest(s, at, &v)) {
        if (period >= 0 || view->now <= 0)
            return false;
        /* no figure yet: listed when a target assesses it (README, no_data) */
        int due = pace_required_period(in.today_year, in.today_month, in.today_day,
                                       in.due_day);
        in.no_figure = true;
        in.has_target = db_target(view->db, park->id, ind->id, in.today_year, &out->target);
        in.has_due_target = due >= 0 && db_target(view->db, park->id, ind->id,
                                                  pp_period_year(due), NULL);
        if (!in.has_target && !in.has_due_target)
            return false;
        out->has_target = in.has_target;
        in.target = out->target;
        out->value = NAN;
        pace_evaluate(&in, &out->pace);
        return true;
    }
    out->has_figure = true;
    out->obs_status = v.status;
    out->period = at;
    out->value = v.value;
    out->has_yoy = v.has_yoy;
    out->yoy = v.yoy;
    out->updated_at = v.received_at;
    out->revision = (int)db_series_vintages(s, at, NULL, 0) - 1;
    out->has_target = db_target(view->db, park->id, ind->id, pp_period_year(at), &out->target);

    in.period = at;
    in.value = v.value;
    in.has_target = out->has_target;
    in.target = out->target;
    /* overdue applies to the latest figure only, not to a month looked up in the past */
    if (period >= 0 && last != at)
        in.today_year = 0;
    /* the streak: the periods before, judged alone, while warning or worse */
    int first = db_series_first(s);
    for (int p = status_prev_period(at); p >= first; p = status_prev_period(p)) {
        pp_status j = judged_at(view, park, ind, s, p, in.warn, in.crit);
        if (j != PP_STATUS_WARNING && j != PP_STATUS_CRITICAL)
            break;
        in.streak_before++;
    }
    pace_evaluate(&in, &out->pace);
    cumulative_note(ind, s, at, v.value, out->note, sizeof out->note);
    return true;
}

bool status_eval_missing(const pp_view *view, const pp_park *park, const pp_indicator *ind,
                         int period, series_status *out)
{
    memset(out, 0, sizeof *out);
    out->park = park;
    out->ind = ind;
    out->series = db_series_get(view->db, park->id, ind->id);
    out->period = period; /* the month of the table */
    out->value = NAN;
    pace_input in = { .ind = ind, .park_name = park->name, .no_figure = true };
    pp_catalog_thresholds(park, ind, &in.warn, &in.crit);
    in.has_target = db_target(view->db, park->id, ind->id, pp_period_year(period), &out->target);
    if (!in.has_target)
        return false;
    out->has_target = true;
    in.target = out->target;
    pace_evaluate(&in, &out->pace);
    int due = overdue_from(view);
    if (due >= 0 && period <= due) {
        out->pace.overdue = true;
        out->pace.overdue_period = period;
    }
    return true;
}

/* A number rounded to 2 decimals, or null when the pace engine has none. */
static void opt2(jbuf *b, const char *key, bool has, double v)
{
    json_key(b, key, false);
    if (has)
        json_num2(b, v);
    else
        json_null(b);
}

void status_figures_json(jbuf *b, const series_status *st)
{
    const pace_result *r = &st->pace;
    json_key(b, "value", false);
    if (st->has_figure)
        json_num(b, st->value);
    else
        json_null(b);
    json_key(b, "target", false);
    if (st->has_target)
        json_num(b, st->target);
    else
        json_null(b);
    opt2(b, "completion_pct", r->has_completion, r->completion_pct);
    opt2(b, "pace_pct", r->has_pace, r->pace_pct);
    opt2(b, "gap_pp", r->has_gap, r->gap);
    json_key(b, "yoy", false);
    if (st->has_yoy)
        json_num(b, st->yoy);
    else
        json_null(b);
}

void status_flags_json(jbuf *b, const series_status *st)
{
    char buf[16];
    json_key(b, "overdue", false);
    json_bool(b, st->pace.overdue);
    json_key(b, "overdue_period", false);
    if (st->pace.overdue)
        json_str(b, pp_period_format(st->pace.overdue_period, buf, sizeof buf));
    else
        json_null(b);
    json_key(b, "streak", false);
    json_int(b, st->pace.streak);
}

void status_series_json(jbuf *b, const series_status *st)
{
    const pace_result *r = &st->pace;
    char buf[40];
    jbuf_puts(b, "{");
    json_key(b, "park", true);
    json_str(b, st->park->id);
    json_key(b, "indicator", false);
    json_str(b, st->ind->id);
    json_key(b, "label", false);
    json_str(b, st->ind->label);
    json_key(b, "unit", false);
    json_str(b, st->ind->unit);
    json_key(b, "kind", false);
    json_str(b, pp_kind_name(st->ind->kind));
    json_key(b, "period", false);
    if (st->period >= 0)
        json_str(b, pp_period_format(st->period, buf, sizeof buf));
    else
        json_null(b);
    status_figures_json(b, st);
    json_key(b, "status", false);
    json_str(b, pp_status_name(r->status));
    opt2(b, "projected_pct", r->has_projected, r->projected_pct);
    json_key(b, "needed_per_month", false);
    if (r->has_needed)
        json_num_computed(b, r->needed_per_month);
    else
        json_null(b);
    json_key(b, "message", false);
    json_str(b, r->message);
    json_key(b, "updated_at", false);
    if (st->has_figure)
        json_str(b, app_format_time(st->updated_at, buf, sizeof buf));
    else
        json_null(b);
    json_key(b, "revision", false);
    if (st->has_figure)
        json_int(b, st->revision);
    else
        json_null(b);
    status_flags_json(b, st);
    json_key(b, "note", false);
    if (st->note[0])
        json_str(b, st->note);
    else
        json_null(b);
    jbuf_puts(b, "}");
}

void status_park_json(jbuf *b, const pp_view *v, const pp_park *park)
{
    const pp_catalog *cat = &v->cfg->catalog;
    jbuf_puts(b, "{");
    json_key(b, "id", true);
    json_str(b, park->id);
    json_key(b, "name", false);
    json_str(b, park->name);
    json_key(b, "level", false);
    json_str(b, park->level);
    json_key(b, "type", false);
    json_str(b, park->type);
    json_key(b, "region", false);
    json_str(b, park->region);
    json_key(b, "indicators", false);
    jbuf_puts(b, "[");
    bool first = true;
    for (size_t i = 0; i < cat->n_indicators; i++) {
        const pp_indicator *ind = &cat->indicators[i];
        series_status st;
        if (!status_eval(v, park, ind, db_series_get(v->db, park->id, ind->id), -1, &st))
            continue;
        if (!first)
            jbuf_puts(b, ",");
        first = false;
        status_series_json(b, &st);
    }
    jbuf_puts(b, "]}");
}

int64_t status_points_json(jbuf *b, const pp_view *v, const pp_park *park, const pp_indicator *ind,
                           int from, int to)
{
    const db_series *s = db_series_get(v->db, park->id, ind->id);
    char buf[16];
    jbuf_puts(b, "{");
    json_key(b, "park", true);
    json_str(b, park->id);
    json_key(b, "indicator", false);
    json_str(b, ind->id);
    json_key(b, "label", false);
    json_str(b, ind->label);
    json_key(b, "unit", false);
    json_str(b, ind->unit);
    json_key(b, "points", false);
    jbuf_puts(b, "[");
    bool first = true;
    db_vintage vin;
    for (int per = db_series_next(s, -1, &vin); per >= 0; per = db_series_next(s, per, &vin)) {
        if ((from >= 0 && per < from) || (to >= 0 && per > to))
            continue;
        if (!first)
            jbuf_puts(b, ",");
        first = false;
        double target;
        bool has_t = db_target(v->db, park->id, ind->id, pp_period_year(per), &target);
        jbuf_puts(b, "{");
        json_key(b, "period", true);
        json_str(b, pp_period_format(per, buf, sizeof buf));
        json_key(b, "value", false);
        json_num(b, vin.value);
        json_key(b, "pace", false);
        if (has_t)
            json_num_computed(b, pace_expected(ind, per, target));
        else
            json_null(b);
        json_key(b, "target", false); /* that year's target, for the pages' charts */
        if (has_t)
            json_num(b, target);
        else
            json_null(b);
        json_key(b, "yoy", false);
        if (vin.has_yoy)
            json_num(b, vin.yoy);
        else
            json_null(b);
        jbuf_puts(b, "}");
    }
    jbuf_puts(b, "]}");
    return s ? s->updated_at : 0;
}
