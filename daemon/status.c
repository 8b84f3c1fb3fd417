/*
 * status.c — from db figures to the <series> object of README, HTTP API (see status.h).
 */
#include "status.h"

#include <math.h>
#include <string.h>

bool status_eval(const pp_view *view, const pp_park *park, const pp_indicator *ind,
                 const db_series *s, int period, series_status *out)
{
    memset(out, 0, sizeof *out);
    int last = db_series_last(s), at = period < 0 ? last : period;
    db_vintage v;
    if (last < 0 || !db_series_latest(s, at, &v))
        return false;
    out->park = park;
    out->ind = ind;
    out->series = s;
    out->period = at;
    out->value = v.value;
    out->has_yoy = v.has_yoy;
    out->yoy = v.yoy;
    out->updated_at = v.received_at;
    out->revision = (int)db_series_vintages(s, at, NULL, 0) - 1;
    out->has_target = db_target(view->db, park->id, ind->id, pp_period_year(at), &out->target);

    pace_input in = { .ind = ind, .park_name = park->name, .period = at,
                      .value = v.value, .has_target = out->has_target, .target = out->target,
                      .due_day = view->cfg->due_day };
    pp_catalog_thresholds(park, ind, &in.warn, &in.crit);
    if (view->now > 0)
        app_local_date(view->now, &in.today_year, &in.today_month, &in.today_day);
    /* staleness applies to the latest figure only, not to a month looked up in the past */
    if (period >= 0 && last != at)
        in.today_year = 0;
    pace_evaluate(&in, &out->pace);
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
    json_num(b, st->value);
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
    json_str(b, pp_period_format(st->period, buf, sizeof buf));
    status_figures_json(b, st);
    json_key(b, "status", false);
    json_str(b, pp_status_name(r->status));
    opt2(b, "projected_pct", r->has_projected, r->projected_pct);
    json_key(b, "needed_per_month", false);
    if (r->has_needed)
        json_num(b, r->needed_per_month);
    else
        json_null(b);
    json_key(b, "message", false);
    json_str(b, r->message);
    json_key(b, "updated_at", false);
    json_str(b, app_format_time(st->updated_at, buf, sizeof buf));
    json_key(b, "revision", false);
    json_int(b, st->revision);
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
            json_num(b, pace_expected(ind, per, target));
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
