/*
 * report.c — rankings, the 通报 table, history and metrics (see report.h).
 *
 * A ranking orders the parks of a peer group (README "Peer groups and
 * rankings"; all parks by default) on one criterion, best first: the gap
 * (default; parks without a gap follow, by completion, then by value), the
 * value as published, the 同比, the completion. Ties on the figures as
 * displayed share a rank (1, 2, 2, 4); parks without the figure ranked on are
 * listed unranked. rank_change compares with the previous period's ranking of
 * the same group and criterion; streak_first counts the periods ranked first
 * in a row (1-2月 is one period: report_prev_period). The 通报 table uses
 * the gap order of all parks within each indicator; its 排名 is left empty
 * when fewer than two parks are ranked.
 * Always listed but never ranked ("rank": null, no medal): figures with
 * status E (estimated), series without a gap under by=gap (no target), and
 * parks with a target that sent no figure for the month (no_data, overdue
 * once the month is due: the 通报's 未报送).
 *
 * report_metrics() writes the Prometheus text exposition of GET /metrics:
 * per series (labels park, indicator, unit) the value, target, completion
 * and pace ratios, gap in points, period and update times, status; one
 * parkpulse_series_info per series with the names people read; the
 * daemon's counters; parkpulse_build_info; the process_* metrics.
 */
#include "report.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "bus.h"
#include "ingest.h"
#include "status.h"

#ifndef PARKPULSE_VERSION
#define PARKPULSE_VERSION "0.1"
#endif

int report_latest_period(const pp_view *v, const pp_indicator *ind)
{
    int best = -1;
    const pp_catalog *cat = &v->cfg->catalog;
    if (ind == NULL) {
        for (size_t j = 0; j < cat->n_indicators; j++) {
            int p = report_latest_period(v, &cat->indicators[j]);
            if (p > best)
                best = p;
        }
        return best;
    }
    for (size_t i = 0; i < cat->n_parks; i++) {
        const db_series *s = db_series_get(v->db, cat->parks[i].id, ind->id);
        if (db_series_last(s) > best)
            best = db_series_last(s);
    }
    return best;
}

static bool lower_is_better(const pp_indicator *ind)
{
    return ind->kind == PP_KIND_RANK || (ind->kind == PP_KIND_RATE && ind->direction == PP_DIR_LOWER);
}

static const char *const by_names[] = { "gap", "value", "yoy", "completion" };

int report_by_parse(const char *s, report_by *by)
{
    *by = REPORT_BY_GAP;
    if (s == NULL || *s == '\0')
        return 0;
    for (size_t i = 0; i < sizeof by_names / sizeof by_names[0]; i++)
        if (strcmp(s, by_names[i]) == 0) {
            *by = (report_by)i;
            return 0;
        }
    return -1;
}

const char *report_by_name(report_by by) { return by_names[by]; }

int report_prev_period(int period)
{
    return pp_period_month(period) == 2 ? period - 2 : period - 1; /* 1-2月 is one period */
}

/* Orders x and y (ascending when asc), 0 when equal. */
static int order(double x, double y, bool asc)
{
    if (x == y)
        return 0;
    return (x < y) == asc ? -1 : 1;
}

/* Series listed but not ranked on criterion by: no figure for the month
 * (no_data), an estimated figure (status E), or without the figure ranked on
 * (no 同比; no completion; no gap, i.e. no target, under by=gap). */
static bool rank_unranked(const series_status *st, report_by by)
{
    if (!st->has_figure || st->obs_status == 'E')
        return true;
    switch (by) {
    case REPORT_BY_YOY: return !st->has_yoy;
    case REPORT_BY_COMPLETION: return !st->pace.has_completion;
    case REPORT_BY_GAP: return !st->pace.has_gap;
    case REPORT_BY_VALUE: return false;
    }
    return false;
}

/* <0 when a ranks before b on the figures as displayed (percentages and
 * points to 2 decimals, values as published), 0 when they tie. */
static int key_cmp(const series_status *a, const series_status *b, report_by by)
{
    const pace_result *x = &a->pace, *y = &b->pace;
    bool asc = lower_is_better(a->ind);
    switch (by) {
    case REPORT_BY_VALUE:
        return order(a->value, b->value, asc);
    case REPORT_BY_YOY:
        return order(pace_round2(a->yoy), pace_round2(b->yoy), asc);
    case REPORT_BY_COMPLETION:
        return order(pace_round2(x->completion_pct), pace_round2(y->completion_pct), false);
    case REPORT_BY_GAP:
        break;
    }
    if (x->has_gap != y->has_gap)
        return x->has_gap ? -1 : 1;
    if (x->has_gap)
        return order(pace_round2(x->gap), pace_round2(y->gap), false);
    /* no gap (no target): by completion, then by value */
    if (x->has_completion != y->has_completion)
        return x->has_completion ? -1 : 1;
    if (x->has_completion && pace_round2(x->completion_pct) != pace_round2(y->completion_pct))
        return order(pace_round2(x->completion_pct), pace_round2(y->completion_pct), false);
    return order(a->value, b->value, asc);
}

/* qsort_r's comparison; ctx points to the criterion. Ranked entries first,
 * best first; a tie keeps a fixed order (completion, value, park id). */
static int cmp_rank(const void *pa, const void *pb, void *ctx)
{
    report_by by = *(const report_by *)ctx;
    const report_rank *ra = pa, *rb = pb;
    const series_status *a = &ra->st, *b = &rb->st;
    bool ua = rank_unranked(a, by), ub = rank_unranked(b, by);
    if (ua != ub)
        return ua ? 1 : -1;
    /* parks that sent no figure (no_data) come last, by park id */
    if (a->has_figure != b->has_figure)
        return a->has_figure ? -1 : 1;
    if (!a->has_figure)
        return strcmp(a->park->id, b->park->id);
    int c = key_cmp(a, b, ua ? REPORT_BY_VALUE : by);
    if (c)
        return c;
    if (a->pace.has_completion && b->pace.has_completion &&
        a->pace.completion_pct != b->pace.completion_pct)
        return a->pace.completion_pct > b->pace.completion_pct ? -1 : 1;
    if ((c = order(a->value, b->value, lower_is_better(a->ind))) != 0)
        return c;
    return strcmp(a->park->id, b->park->id);
}

/* Every park of g with a figure for ind at period, ordered and ranked (ties
 * share a rank: 1, 2, 2, 4); no change or streak. malloc'd, or NULL. */
static report_rank *rank_at(const pp_view *view, const pp_indicator *ind, int period,
                            const conf_group *g, report_by by, size_t *n)
{
    const pp_catalog *cat = &view->cfg->catalog;
    report_rank *v = calloc(cat->n_parks ? cat->n_parks : 1, sizeof *v);
    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < cat->n_parks; i++) {
        if (!conf_group_has(g, i))
            continue;
        const db_series *s = db_series_get(view->db, cat->parks[i].id, ind->id);
        if (status_eval(view, &cat->parks[i], ind, s, period, &v[*n].st) ||
            status_eval_missing(view, &cat->parks[i], ind, period, &v[*n].st)) {
            v[*n].park = i;
            (*n)++;
        }
    }
    qsort_r(v, *n, sizeof *v, cmp_rank, &by);
    for (size_t i = 0; i < *n; i++) {
        if (rank_unranked(&v[i].st, by))
            break;
        v[i].rank = i > 0 && key_cmp(&v[i - 1].st, &v[i].st, by) == 0 ? v[i - 1].rank : (int)i + 1;
    }
    return v;
}

static const report_rank *rank_find(const report_rank *v, size_t n, size_t park)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].park == park)
            return &v[i];
    return NULL;
}

/* How far back a streak of first places is followed (20 years of periods). */
#define STREAK_MAX 240

report_rank *report_ranking(const pp_view *view, const pp_indicator *ind, int period,
                            const conf_group *g, report_by by, size_t *n)
{
    report_rank *v = rank_at(view, ind, period, g, by, n);
    if (v == NULL || *n == 0)
        return v;
    size_t np;
    int prev = report_prev_period(period);
    report_rank *pv = rank_at(view, ind, prev, g, by, &np);
    if (pv == NULL) {
        free(v);
        return NULL;
    }
    size_t firsts = 0;
    for (size_t i = 0; i < *n; i++) {
        const report_rank *o = rank_find(pv, np, v[i].park);
        if (v[i].rank > 0 && o && o->rank > 0) {
            v[i].has_change = true;
            v[i].change = o->rank - v[i].rank; /* positive: moved up */
        }
        if (v[i].rank == 1) {
            v[i].streak_first = 1;
            firsts++;
        }
    }
    /* streak_first: consecutive periods ranked first, ending at this one */
    report_rank *cur = pv;
    size_t ncur = np;
    for (int k = 0; firsts > 0 && k < STREAK_MAX && ncur > 0; k++) {
        firsts = 0;
        for (size_t i = 0; i < *n && v[i].rank == 1; i++) {
            if (v[i].streak_first != k + 1)
                continue; /* its streak has ended */
            const report_rank *o = rank_find(cur, ncur, v[i].park);
            if (o && o->rank == 1) {
                v[i].streak_first++;
                firsts++;
            }
        }
        if (firsts == 0)
            break;
        prev = report_prev_period(prev);
        free(cur);
        if ((cur = rank_at(view, ind, prev, g, by, &ncur)) == NULL) {
            free(v);
            return NULL;
        }
    }
    free(cur);
    return v;
}

/* Writes a <series> object with "rank" and "name" in front (rank ≤ 0: null),
 * and, when r is given, "rank_change" and "streak_first". */
static void ranked_entry_json(jbuf *b, const series_status *st, int rank, const report_rank *r)
{
    jbuf tmp;
    jbuf_init(&tmp);
    status_series_json(&tmp, st);
    jbuf_puts(b, "{");
    json_key(b, "rank", true);
    if (rank > 0)
        json_int(b, rank);
    else
        json_null(b);
    if (r) {
        json_key(b, "rank_change", false);
        if (r->has_change)
            json_int(b, r->change);
        else
            json_null(b);
        json_key(b, "streak_first", false);
        if (r->rank > 0)
            json_int(b, r->streak_first);
        else
            json_null(b);
    }
    json_key(b, "name", false);
    json_str(b, st->park->name);
    if (tmp.data && tmp.len > 2) {
        jbuf_puts(b, ",");
        jbuf_raw(b, tmp.data + 1, tmp.len - 1); /* the series object without its '{' */
    } else {
        jbuf_puts(b, "}");
    }
    if (tmp.failed)
        b->failed = true;
    jbuf_free(&tmp);
}

void report_ranking_json(const pp_view *view, const pp_indicator *ind, int period,
                         const conf_group *g, report_by by, jbuf *b)
{
    char pbuf[16];
    size_t n = 0;
    report_rank *v = period >= 0 ? report_ranking(view, ind, period, g, by, &n) : NULL;
    if (period >= 0 && v == NULL)
        b->failed = true;
    jbuf_puts(b, "{");
    json_key(b, "indicator", true);
    json_str(b, ind->id);
    json_key(b, "label", false);
    json_str(b, ind->label);
    json_key(b, "unit", false);
    json_str(b, ind->unit);
    json_key(b, "period", false);
    if (period >= 0)
        json_str(b, pp_period_format(period, pbuf, sizeof pbuf));
    else
        json_null(b);
    json_key(b, "group", false);
    json_str(b, g ? g->id : "all");
    json_key(b, "group_label", false);
    json_str(b, g ? g->label : "全部园区");
    json_key(b, "by", false);
    json_str(b, report_by_name(by));
    json_key(b, "parks", false);
    jbuf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_puts(b, ",");
        ranked_entry_json(b, &v[i].st, v[i].rank, &v[i]);
    }
    jbuf_puts(b, "]}");
    free(v);
}

static const char *status_zh(pp_status s)
{
    switch (s) {
    case PP_STATUS_OK: return "正常";
    case PP_STATUS_WARNING: return "预警";
    case PP_STATUS_CRITICAL: return "严重滞后";
    case PP_STATUS_NO_TARGET: return "未设目标";
    case PP_STATUS_STALE: return "逾期未报";
    case PP_STATUS_NO_DATA: return "未报送";
    case PP_STATUS_OVERDUE: return "逾期未报";
    case PP_STATUS_RECEIVED: return "已补报";
    }
    return "";
}

typedef void (*row_fn)(jbuf *b, const series_status *st, int rank, bool first);

/* The 排名 of the 通报: a park's place among the parks ranked with it, shown
 * only where it says something — when at least two parks are ranked (a
 * one-park group is not "first of one"); 0 otherwise. */
static int shown_rank(const report_rank *v, size_t n, size_t i)
{
    size_t ranked = 0;
    for (size_t k = 0; k < n; k++)
        ranked += v[k].rank > 0;
    return ranked >= 2 ? v[i].rank : 0;
}

static void table_rows(const pp_view *view, int period, jbuf *b, row_fn fn)
{
    const pp_catalog *cat = &view->cfg->catalog;
    bool first = true;
    for (size_t j = 0; j < cat->n_indicators; j++) {
        size_t n;
        report_rank *v = rank_at(view, &cat->indicators[j], period, NULL, REPORT_BY_GAP, &n);
        if (v == NULL) {
            b->failed = true;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            fn(b, &v[i].st, shown_rank(v, n, i), first);
            first = false;
        }
        free(v);
    }
}

static void row_json(jbuf *b, const series_status *st, int rank, bool first)
{
    if (!first)
        jbuf_puts(b, ",");
    ranked_entry_json(b, st, rank, NULL);
}

void report_table_json(const pp_view *v, int period, jbuf *b)
{
    char pbuf[16];
    jbuf_puts(b, "{");
    json_key(b, "period", true);
    json_str(b, pp_period_format(period, pbuf, sizeof pbuf));
    json_key(b, "rows", false);
    jbuf_puts(b, "[");
    table_rows(v, period, b, row_json);
    jbuf_puts(b, "]}");
}

static void csv_num(jbuf *b, bool has, double v, bool round2)
{
    jbuf_puts(b, ",");
    if (!has || !isfinite(v))
        return;
    if (round2)
        json_num2(b, v);
    else
        json_num(b, v);
}

static void row_csv(jbuf *b, const series_status *st, int rank, bool first)
{
    char pbuf[16];
    const pace_result *r = &st->pace;
    csv_put_field(b, st->park->id);
    jbuf_puts(b, ",");
    csv_put_field(b, st->park->name);
    jbuf_puts(b, ",");
    csv_put_field(b, st->ind->id);
    jbuf_puts(b, ",");
    csv_put_field(b, st->ind->label);
    jbuf_puts(b, ",");
    csv_put_field(b, pp_period_format(st->period, pbuf, sizeof pbuf));
    csv_num(b, st->has_figure, st->value, false);
    jbuf_puts(b, ",");
    csv_put_field(b, st->ind->unit);
    csv_num(b, st->has_target, st->target, false);
    csv_num(b, r->has_completion, r->completion_pct, true);
    csv_num(b, r->has_pace, r->pace_pct, true);
    csv_num(b, r->has_gap, r->gap, true);
    csv_num(b, st->has_yoy, st->yoy, false);
    if (rank > 0)
        jbuf_printf(b, ",%d,", rank);
    else
        jbuf_puts(b, ",,");
    char zh[64];
    snprintf(zh, sizeof zh, "%s%s", status_zh(r->status),
             r->overdue && r->status != PP_STATUS_NO_DATA ? "、逾期" : "");
    csv_put_field(b, zh);
    jbuf_puts(b, ",");
    csv_put_field(b, r->message);
    jbuf_puts(b, "\r\n");
}

void report_table_csv(const pp_view *v, int period, jbuf *b)
{
    jbuf_puts(b, "园区代码,园区,指标代码,指标,期间,数值,单位,目标,完成率(%),序时进度(%),"
                 "差距(百分点),同比(%),排名,状态,说明\r\n");
    table_rows(v, period, b, row_csv);
}

void report_table_csv_wide(const pp_view *v, int period, jbuf *b)
{
    static const char *const sub[] = { "累计值", "同比%", "全年目标", "完成%", "较序时(百分点)",
                                       "状态" };
    const size_t nsub = sizeof sub / sizeof sub[0];
    const pp_catalog *cat = &v->cfg->catalog;
    char pbuf[16];
    bool *ind_on = calloc(cat->n_indicators ? cat->n_indicators : 1, sizeof *ind_on);
    bool *park_on = calloc(cat->n_parks ? cat->n_parks : 1, sizeof *park_on);
    if (ind_on == NULL || park_on == NULL) {
        b->failed = true;
        goto out;
    }
    /* the indicators and parks with a figure that month */
    for (size_t i = 0; i < cat->n_parks; i++) {
        for (size_t j = 0; j < cat->n_indicators; j++) {
            db_vintage vin;
            series_status miss;
            if (db_series_latest(db_series_get(v->db, cat->parks[i].id, cat->indicators[j].id),
                                 period, &vin) ||
                status_eval_missing(v, &cat->parks[i], &cat->indicators[j], period, &miss))
                park_on[i] = ind_on[j] = true;
        }
    }
    jbuf_printf(b, "%d年1-%d月 园区主要经济指标通报\r\n", pp_period_year(period),
                pp_period_month(period));
    jbuf_puts(b, "园区代码,园区,期间");
    for (size_t j = 0; j < cat->n_indicators; j++) {
        if (!ind_on[j])
            continue;
        char head[256];
        snprintf(head, sizeof head, "%s(%s)", cat->indicators[j].label, cat->indicators[j].unit);
        jbuf_puts(b, ",");
        csv_put_field(b, head);
        for (size_t k = 1; k < nsub; k++)
            jbuf_puts(b, ",");
    }
    jbuf_puts(b, "\r\n,,");
    for (size_t j = 0; j < cat->n_indicators; j++)
        for (size_t k = 0; ind_on[j] && k < nsub; k++)
            jbuf_printf(b, ",%s", sub[k]);
    jbuf_puts(b, "\r\n");
    pp_period_format(period, pbuf, sizeof pbuf);
    for (size_t i = 0; i < cat->n_parks; i++) {
        const pp_park *pk = &cat->parks[i];
        if (!park_on[i])
            continue;
        csv_put_field(b, pk->id);
        jbuf_puts(b, ",");
        csv_put_field(b, pk->name);
        jbuf_printf(b, ",%s", pbuf);
        for (size_t j = 0; j < cat->n_indicators; j++) {
            const pp_indicator *ind = &cat->indicators[j];
            series_status st;
            if (!ind_on[j])
                continue;
            if (!status_eval(v, pk, ind, db_series_get(v->db, pk->id, ind->id), period, &st)) {
                bool missing = status_eval_missing(v, pk, ind, period, &st);
                for (size_t k = 0; k + 1 < nsub; k++)
                    jbuf_puts(b, ",");
                jbuf_puts(b, ",");
                if (missing) /* a target and no figure: 未报送 */
                    csv_put_field(b, status_zh(PP_STATUS_NO_DATA));
                continue;
            }
            const pace_result *r = &st.pace;
            csv_num(b, true, st.value, false);
            csv_num(b, st.has_yoy, st.yoy, false);
            csv_num(b, st.has_target, st.target, false);
            csv_num(b, r->has_completion, r->completion_pct, true);
            csv_num(b, r->has_gap, r->gap, true);
            jbuf_puts(b, ",");
            csv_put_field(b, status_zh(r->status));
        }
        jbuf_puts(b, "\r\n");
    }
out:
    free(ind_on);
    free(park_on);
}

void report_history_json(const pp_view *view, const pp_park *park, const pp_indicator *ind, int period,
                         jbuf *b)
{
    char pbuf[16];
    const db_series *s = db_series_get(view->db, park->id, ind->id);
    db_vintage v;
    jbuf_puts(b, "{");
    json_key(b, "park", true);
    json_str(b, park->id);
    json_key(b, "indicator", false);
    json_str(b, ind->id);
    json_key(b, "period", false);
    json_str(b, pp_period_format(period, pbuf, sizeof pbuf));
    json_key(b, "unit", false);
    json_str(b, ind->unit);
    json_key(b, "vintages", false);
    jbuf_puts(b, "[");
    for (size_t i = 0; db_series_vintage(s, period, i, &v); i++) {
        if (i)
            jbuf_puts(b, ",");
        report_vintage_json(b, &v);
    }
    jbuf_puts(b, "]}");
}

void report_vintage_json(jbuf *b, const db_vintage *v)
{
    char st[2] = { v->status, 0 }, tbuf[40];
    jbuf_puts(b, "{");
    json_key(b, "value", true);
    if (v->status == 'W')
        json_null(b);
    else
        json_num(b, v->value);
    json_key(b, "status", false);
    json_str(b, st);
    json_key(b, "source", false);
    json_str(b, v->source);
    json_key(b, "yoy", false);
    if (v->has_yoy)
        json_num(b, v->yoy);
    else
        json_null(b);
    json_key(b, "received_at", false);
    json_str(b, app_format_time(v->received_at, tbuf, sizeof tbuf));
    if (v->status == 'W') {
        json_key(b, "reason", false);
        json_str(b, v->reason ? v->reason : "");
    }
    jbuf_puts(b, "}");
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void prom_label(jbuf *b, const char *key, const char *v, bool first)
{
    jbuf_printf(b, "%s%s=\"", first ? "" : ",", key);
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            jbuf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            jbuf_puts(b, "\\n");
        else
            jbuf_raw(b, p, 1);
    }
    jbuf_puts(b, "\"");
}

static void prom_series_labels(jbuf *b, const series_status *st)
{
    jbuf_puts(b, "{");
    prom_label(b, "park", st->park->id, true);
    prom_label(b, "indicator", st->ind->id, false);
    prom_label(b, "unit", st->ind->unit, false);
    jbuf_puts(b, "}");
}

/* One labelled sample of the series labels: name{park,indicator,unit} v. */
static void prom_sample(jbuf *b, const char *name, const series_status *st, double v)
{
    jbuf_puts(b, name);
    prom_series_labels(b, st);
    jbuf_puts(b, " ");
    json_num(b, v);
    jbuf_puts(b, "\n");
}

/* The start of month p (its first day, 00:00) in the daemon's time zone. */
static double period_start(int p)
{
    struct tm tm = { .tm_year = pp_period_year(p) - 1900, .tm_mon = pp_period_month(p) - 1,
                     .tm_mday = 1, .tm_isdst = -1 };
    return (double)mktime(&tm);
}

/* What the kernel says about this process: resident and virtual memory,
 * CPU time, open descriptors and the start time — on the real clock, never
 * the fixed --now one. A field that cannot be read is left out. */
static void process_metrics(jbuf *b)
{
    long page = sysconf(_SC_PAGESIZE), tick = sysconf(_SC_CLK_TCK);
    unsigned long long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsz, &rss) == 2 && page > 0)
            jbuf_printf(b,
                        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                        "# TYPE process_resident_memory_bytes gauge\n"
                        "process_resident_memory_bytes %llu\n"
                        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                        "# TYPE process_virtual_memory_bytes gauge\n"
                        "process_virtual_memory_bytes %llu\n",
                        rss * (unsigned long long)page, vsz * (unsigned long long)page);
        fclose(f);
    }
    /* /proc/self/stat: the command may hold spaces; fields count from its ')' */
    char line[1024];
    unsigned long long utime = 0, stime = 0, start = 0, btime = 0;
    bool have_stat = false;
    if ((f = fopen("/proc/self/stat", "r")) != NULL) {
        if (fgets(line, sizeof line, f)) {
            char *p = strrchr(line, ')');
            /* after ") ": state(3) ppid … utime(14) stime(15) … starttime(22) */
            have_stat = p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                                           "%*d %*d %*d %*d %*d %*d %llu", &utime, &stime, &start) == 3;
        }
        fclose(f);
    }
    if ((f = fopen("/proc/stat", "r")) != NULL) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "btime %llu", &btime) == 1)
                break;
        fclose(f);
    }
    if (have_stat && tick > 0) {
        jbuf_printf(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                       "# TYPE process_cpu_seconds_total counter\n"
                       "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)tick);
        if (btime > 0)
            jbuf_printf(b, "# HELP process_start_time_seconds Start time of the process since unix "
                           "epoch in seconds.\n"
                           "# TYPE process_start_time_seconds gauge\n"
                           "process_start_time_seconds %.2f\n",
                        (double)btime + (double)start / (double)tick);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = -1; /* the directory's own descriptor */
        while (readdir(d))
            n++;
        closedir(d);
        jbuf_printf(b, "# HELP process_open_fds Number of open file descriptors.\n"
                       "# TYPE process_open_fds gauge\n"
                       "process_open_fds %ld\n", n - 2); /* . and .. */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        jbuf_printf(b, "# HELP process_max_fds Maximum number of open file descriptors.\n"
                       "# TYPE process_max_fds gauge\n"
                       "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
}

/* ---- the metrics, as tables ----------------------------------------------
 *
 * A metric is a row: its name, HELP text, TYPE and a getter. The getters of a
 * series metric read one series' state and say whether the series has that
 * figure at all; the getters of a daemon metric read the counters. Rows of the
 * same name in a row are the labelled samples of one metric (one HELP/TYPE).
 */

typedef bool series_getter(const series_status *st, double *v);

static bool get_value(const series_status *st, double *v) { *v = st->value; return true; }
static bool get_target(const series_status *st, double *v)
{
    *v = st->target;
    return st->has_target;
}
static bool get_completion(const series_status *st, double *v)
{
    *v = st->pace.completion_pct / 100.0;
    return st->pace.has_completion;
}
static bool get_pace(const series_status *st, double *v)
{
    *v = st->pace.pace_pct / 100.0;
    return st->pace.has_pace;
}
static bool get_gap(const series_status *st, double *v)
{
    *v = st->pace.gap;
    return st->pace.has_gap;
}
static bool get_period(const series_status *st, double *v)
{
    *v = period_start(st->period);
    return true;
}
static bool get_updated(const series_status *st, double *v)
{
    *v = (double)st->updated_at;
    return true;
}

static const struct {
    const char *name, *help, *type;
    series_getter *get;
} series_metrics[] = {
    { "parkpulse_value", "Latest figure of a series, in its unit (label unit).", "gauge", get_value },
    { "parkpulse_target", "Annual target of the latest figure's year, in the series' unit.", "gauge",
      get_target },
    { "parkpulse_completion_ratio", "Completion of the annual target, 0..1 (1 = target met).", "gauge",
      get_completion },
    { "parkpulse_pace_ratio", "Pace (序时进度) due by the latest month, 0..1 of the annual target.",
      "gauge", get_pace },
    { "parkpulse_gap_pp", "Gap to the pace or target in percentage points: completion minus "
                          "pace, x100 (places for ranks).", "gauge", get_gap },
    { "parkpulse_period_timestamp_seconds", "Start of the latest period of the series (its "
                                            "first day, 00:00 local time), unix seconds.", "gauge",
      get_period },
    { "parkpulse_updated_timestamp_seconds", "When the figure in force was received, unix seconds.",
      "gauge", get_updated },
};

typedef uint64_t daemon_getter(const pp_view *view, const pp_app *app);

static uint64_t get_files_ok(const pp_view *v, const pp_app *a)
{
    return app_counter(&a->n_files_ok);
}
static uint64_t get_files_refused(const pp_view *v, const pp_app *a)
{
    return app_counter(&a->n_files_refused);
}
static uint64_t get_obs_accepted(const pp_view *v, const pp_app *a)
{
    return app_counter(&a->n_obs_accepted);
}
static uint64_t get_obs_unchanged(const pp_view *v, const pp_app *a)
{
    return app_counter(&a->n_obs_unchanged);
}
static uint64_t get_targets(const pp_view *v, const pp_app *a)
{
    return app_counter(&a->n_targets_accepted);
}
static uint64_t get_alert_seq(const pp_view *v, const pp_app *a)
{
    return a->alerts ? alert_seq(a->alerts) : 0;
}
static uint64_t get_series(const pp_view *v, const pp_app *a) { return db_series_count(v->db); }
static uint64_t get_records(const pp_view *v, const pp_app *a)
{
    return a->journal ? journal_count(a->journal) : 0;
}

static uint64_t get_syncs(const pp_view *v, const pp_app *a)
{
    uint64_t n, ns;
    journal_sync_stats(a->journal, &n, &ns);
    return n;
}
static uint64_t get_rrd_pending(const pp_view *v, const pp_app *a)
{
    return ingest_rrd_pending(a);
}

static uint64_t get_bus(const pp_app *a, bool dropped)
{
    uint64_t published = 0, lost = 0;
    if (a->bus)
        bus_stats(a->bus, &published, &lost);
    return dropped ? lost : published;
}
static uint64_t get_published(const pp_view *v, const pp_app *a) { return get_bus(a, false); }
static uint64_t get_dropped(const pp_view *v, const pp_app *a) { return get_bus(a, true); }

static const struct {
    const char *name, *help, *type;
    const char *labels; /* "" or {k="v"} */
    daemon_getter *get;
} daemon_metrics[] = {
    { "parkpulse_files_total", "Inputs (files, POSTs) ingested, by result.", "counter",
      "{result=\"ok\"}", get_files_ok },
    { "parkpulse_files_total", NULL, NULL, "{result=\"refused\"}", get_files_refused },
    { "parkpulse_observations_total", "Observations received, by outcome.", "counter",
      "{outcome=\"accepted\"}", get_obs_accepted },
    { "parkpulse_observations_total", NULL, NULL, "{outcome=\"unchanged\"}", get_obs_unchanged },
    { "parkpulse_targets_total", "Targets accepted.", "counter", "", get_targets },
    { "parkpulse_alert_seq", "Sequence number of the last alert (kept across restarts).", "gauge",
      "", get_alert_seq },
    { "parkpulse_bus_messages_total", "Alert messages handed to the bus, by outcome.", "counter",
      "{outcome=\"published\"}", get_published },
    { "parkpulse_bus_messages_total", NULL, NULL, "{outcome=\"dropped\"}", get_dropped },
    { "parkpulse_series", "Series with at least one figure or target.", "gauge", "", get_series },
    { "parkpulse_journal_records", "Records in the journal.", "gauge", "", get_records },
    { "parkpulse_journal_syncs_total", "fdatasync calls of journal appends.", "counter", "",
      get_syncs },
    { "parkpulse_rrd_pending", "Series whose RRD file waits to be written (acknowledged, "
      "journaled, not yet in its file).", "gauge", "", get_rrd_pending },
};

static void prom_head(jbuf *b, const char *name, const char *help, const char *type)
{
    jbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prometheus conventions (docs/ARCHITECTURE.md has no word on them; the
 * README's HTTP section and parkpulsed(8) list the metrics): counters end in
 * _total, shares are ratios 0..1 named _ratio, times are unix seconds named
 * _timestamp_seconds; the gap stays in percentage points (_pp) because it is
 * a difference of two percentages, not a share. Names and units go into
 * parkpulse_series_info, to be joined on park and indicator. */
void report_metrics(const pp_view *view, const pp_app *app, jbuf *b)
{
    const pp_catalog *cat = &view->cfg->catalog;
    size_t cap = cat->n_parks * cat->n_indicators;
    series_status *all = calloc(cap ? cap : 1, sizeof *all);
    size_t n = 0;
    if (all == NULL) {
        b->failed = true;
        return;
    }
    for (size_t i = 0; i < cat->n_parks; i++)
        for (size_t j = 0; j < cat->n_indicators; j++)
            if (status_eval(view, &cat->parks[i], &cat->indicators[j],
                            db_series_get(view->db, cat->parks[i].id, cat->indicators[j].id), -1,
                            &all[n]))
                n++;
    prom_head(b, "parkpulse_build_info", "The parkpulse version (label version), always 1.", "gauge");
    jbuf_puts(b, "parkpulse_build_info{");
    prom_label(b, "version", PARKPULSE_VERSION, true);
    jbuf_puts(b, "} 1\n");
    prom_head(b, "parkpulse_series_info", "Names of a series for legends: park_name, "
              "indicator_label, unit; always 1.", "gauge");
    for (size_t i = 0; i < n; i++) {
        jbuf_puts(b, "parkpulse_series_info{");
        prom_label(b, "park", all[i].park->id, true);
        prom_label(b, "indicator", all[i].ind->id, false);
        prom_label(b, "park_name", all[i].park->name, false);
        prom_label(b, "indicator_label", all[i].ind->label, false);
        prom_label(b, "unit", all[i].ind->unit, false);
        jbuf_puts(b, "} 1\n");
    }
    for (size_t d = 0; d < sizeof series_metrics / sizeof series_metrics[0]; d++) {
        prom_head(b, series_metrics[d].name, series_metrics[d].help, series_metrics[d].type);
        for (size_t i = 0; i < n; i++) {
            double v;
            if (series_metrics[d].get(&all[i], &v) && isfinite(v))
                prom_sample(b, series_metrics[d].name, &all[i], v);
        }
    }
    static const pp_status statuses[] = { PP_STATUS_OK, PP_STATUS_WARNING, PP_STATUS_CRITICAL,
                                          PP_STATUS_NO_TARGET, PP_STATUS_NO_DATA };
    prom_head(b, "parkpulse_status", "Pace status of a series (1 for the status in force).", "gauge");
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
            jbuf_puts(b, "parkpulse_status{");
            prom_label(b, "park", all[i].park->id, true);
            prom_label(b, "indicator", all[i].ind->id, false);
            prom_label(b, "status", pp_status_name(statuses[k]), false);
            jbuf_printf(b, "} %d\n", all[i].pace.status == statuses[k]);
        }
    }
    jbuf_puts(b, "# HELP parkpulse_overdue 1 when the figure of the month due has not arrived in time.\n"
                 "# TYPE parkpulse_overdue gauge\n");
    for (size_t i = 0; i < n; i++) {
        jbuf_puts(b, "parkpulse_overdue{");
        prom_label(b, "park", all[i].park->id, true);
        prom_label(b, "indicator", all[i].ind->id, false);
        jbuf_printf(b, "} %d\n", all[i].pace.overdue);
    }
    jbuf_puts(b, "# HELP parkpulse_streak Consecutive periods, ending at the latest, in warning or worse.\n"
                 "# TYPE parkpulse_streak gauge\n");
    for (size_t i = 0; i < n; i++) {
        jbuf_puts(b, "parkpulse_streak{");
        prom_label(b, "park", all[i].park->id, true);
        prom_label(b, "indicator", all[i].ind->id, false);
        jbuf_printf(b, "} %d\n", all[i].pace.streak);
    }
    free(all);
    for (size_t d = 0; d < sizeof daemon_metrics / sizeof daemon_metrics[0]; d++) {
        if (daemon_metrics[d].help != NULL)
            prom_head(b, daemon_metrics[d].name, daemon_metrics[d].help, daemon_metrics[d].type);
        jbuf_printf(b, "%s%s %llu\n", daemon_metrics[d].name, daemon_metrics[d].labels,
                    (unsigned long long)daemon_metrics[d].get(view, app));
    }
    uint64_t n_syncs, sync_ns;
    journal_sync_stats(app->journal, &n_syncs, &sync_ns);
    prom_head(b, "parkpulse_journal_sync_seconds_total",
              "Seconds spent in the fdatasync calls of journal appends.", "counter");
    jbuf_printf(b, "parkpulse_journal_sync_seconds_total %.6f\n", (double)sync_ns / 1e9);
    process_metrics(b);
}
