/*
 * report.c — rankings, the 通报 table, history and metrics (see report.h).
 *
 * The ranking orders parks by gap, best first, and numbers them; ties on the
 * gap shown (2 decimals) share a rank (1, 2, 2, 4). Listed after them and
 * unranked ("rank": null, no medal): figures with status E (estimated), parks
 * without a gap (no target), ordered by completion, then by value (ascending
 * for ranks and lower-is-better rates), and last the parks with a target that
 * sent no figure for the month (no_data, overdue once the month is due: the
 * 通报's 未报送). The 通报 table uses the same order within each indicator, so
 * its 排名 column is the ranking's.
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

/* A series that takes a rank: a figure, not estimated, with a gap. */
static bool rankable(const series_status *st)
{
    return st->has_figure && st->obs_status != 'E' && st->pace.has_gap;
}

/* qsort_r's comparison; ctx is the indicator ranked on. */
static int cmp_rank(const void *pa, const void *pb, void *ctx)
{
    const pp_indicator *ind = ctx;
    const series_status *a = pa, *b = pb;
    const pace_result *x = &a->pace, *y = &b->pace;
    if (rankable(a) != rankable(b))
        return rankable(a) ? -1 : 1;
    if (a->has_figure != b->has_figure)
        return a->has_figure ? -1 : 1;
    if (!a->has_figure)
        return strcmp(a->park->id, b->park->id);
    if (x->has_gap != y->has_gap)
        return x->has_gap ? -1 : 1;
    if (x->has_gap && pace_round2(x->gap) != pace_round2(y->gap))
        return pace_round2(x->gap) > pace_round2(y->gap) ? -1 : 1;
    if (x->has_completion && y->has_completion && x->completion_pct != y->completion_pct)
        return x->completion_pct > y->completion_pct ? -1 : 1;
    if (a->value != b->value) {
        bool asc = lower_is_better(ind);
        return (a->value < b->value) == asc ? -1 : 1;
    }
    return strcmp(a->park->id, b->park->id);
}

/* Evaluates every park on ind at period, ranked. Returns a malloc'd array (caller frees). */
static series_status *ranked(const pp_view *view, const pp_indicator *ind, int period, size_t *n)
{
    const pp_catalog *cat = &view->cfg->catalog;
    series_status *v = calloc(cat->n_parks ? cat->n_parks : 1, sizeof *v);
    *n = 0;
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < cat->n_parks; i++) {
        const db_series *s = db_series_get(view->db, cat->parks[i].id, ind->id);
        if (status_eval(view, &cat->parks[i], ind, s, period, &v[*n]) ||
            status_eval_missing(view, &cat->parks[i], ind, period, &v[*n]))
            (*n)++;
    }
    qsort_r(v, *n, sizeof *v, cmp_rank, (void *)ind);
    return v;
}

/* The rank of v[i] in a ranked() array: 1, 2, 2, 4 on the gap shown; 0 for
 * an entry that takes none. */
static size_t rank_of(const series_status *v, size_t i)
{
    if (!rankable(&v[i]))
        return 0;
    size_t k = i;
    while (k > 0 && rankable(&v[k - 1]) &&
           pace_round2(v[k - 1].pace.gap) == pace_round2(v[i].pace.gap))
        k--;
    return k + 1;
}

/* Writes a <series> object with "rank" and "name" in front. */
static void ranked_entry_json(jbuf *b, const series_status *st, size_t rank)
{
    jbuf tmp;
    jbuf_init(&tmp);
    status_series_json(&tmp, st);
    jbuf_puts(b, "{");
    json_key(b, "rank", true);
    if (rank > 0)
        json_int(b, (int64_t)rank);
    else
        json_null(b);
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

void report_ranking_json(const pp_view *view, const pp_indicator *ind, int period, jbuf *b)
{
    char pbuf[16];
    size_t n = 0;
    series_status *v = period >= 0 ? ranked(view, ind, period, &n) : NULL;
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
    json_key(b, "parks", false);
    jbuf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_puts(b, ",");
        ranked_entry_json(b, &v[i], rank_of(v, i));
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

typedef void (*row_fn)(jbuf *b, const series_status *st, size_t rank, bool first);

static void table_rows(const pp_view *view, int period, jbuf *b, row_fn fn)
{
    const pp_catalog *cat = &view->cfg->catalog;
    bool first = true;
    for (size_t j = 0; j < cat->n_indicators; j++) {
        size_t n;
        series_status *v = ranked(view, &cat->indicators[j], period, &n);
        if (v == NULL) {
            b->failed = true;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            fn(b, &v[i], rank_of(v, i), first);
            first = false;
        }
        free(v);
    }
}

static void row_json(jbuf *b, const series_status *st, size_t rank, bool first)
{
    if (!first)
        jbuf_puts(b, ",");
    ranked_entry_json(b, st, rank);
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

static void row_csv(jbuf *b, const series_status *st, size_t rank, bool first)
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
        jbuf_printf(b, ",%zu,", rank);
    else
        jbuf_puts(b, ",,");
    char zh[64];
    snprintf(zh, sizeof zh, "%s%s", status_zh(r->status),
             r->overdue && r->status != PP_STATUS_NO_DATA ? "、逾期" : "");
    csv_put_field(b, zh);
    jbuf_puts(b, ",");
    csv_put_field(b, pp_status_name(r->status));
    jbuf_puts(b, ",");
    csv_put_field(b, r->message);
    jbuf_puts(b, "\r\n");
}

void report_table_csv(const pp_view *v, int period, jbuf *b)
{
    jbuf_puts(b, "园区代码,园区,指标代码,指标,期间,数值,单位,目标,完成率(%),序时进度(%),"
                 "差距(百分点),同比(%),排名,状态,status,说明\r\n");
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

typedef struct metric_def {
    const char *name, *help;
} metric_def;

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

/* Prometheus conventions (docs/ARCHITECTURE.md has no word on them; the
 * README's HTTP section and parkpulsed(8) list the metrics): counters end in
 * _total, shares are ratios 0..1 named _ratio, times are unix seconds named
 * _timestamp_seconds; the gap stays in percentage points (_pp) because it is
 * a difference of two percentages, not a share. Names and units go into
 * parkpulse_series_info, to be joined on park and indicator. */
void report_metrics(const pp_view *view, const pp_app *app, jbuf *b)
{
    static const metric_def defs[] = {
        { "parkpulse_value", "Latest figure of a series, in its unit (label unit)." },
        { "parkpulse_target", "Annual target of the latest figure's year, in the series' unit." },
        { "parkpulse_completion_ratio", "Completion of the annual target, 0..1 (1 = target met)." },
        { "parkpulse_pace_ratio", "Pace (序时进度) due by the latest month, 0..1 of the annual target." },
        { "parkpulse_gap_pp", "Gap to the pace or target in percentage points: completion minus "
                              "pace, x100 (places for ranks)." },
        { "parkpulse_period_timestamp_seconds", "Start of the latest period of the series (its "
                                                "first day, 00:00 local time), unix seconds." },
        { "parkpulse_updated_timestamp_seconds", "When the figure in force was received, unix seconds." },
    };
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
    jbuf_puts(b, "# HELP parkpulse_build_info The parkpulse version (label version), always 1.\n"
                 "# TYPE parkpulse_build_info gauge\n"
                 "parkpulse_build_info{");
    prom_label(b, "version", PARKPULSE_VERSION, true);
    jbuf_puts(b, "} 1\n"
                 "# HELP parkpulse_series_info Names of a series for legends: park_name, "
                 "indicator_label, unit; always 1.\n"
                 "# TYPE parkpulse_series_info gauge\n");
    for (size_t i = 0; i < n; i++) {
        jbuf_puts(b, "parkpulse_series_info{");
        prom_label(b, "park", all[i].park->id, true);
        prom_label(b, "indicator", all[i].ind->id, false);
        prom_label(b, "park_name", all[i].park->name, false);
        prom_label(b, "indicator_label", all[i].ind->label, false);
        prom_label(b, "unit", all[i].ind->unit, false);
        jbuf_puts(b, "} 1\n");
    }
    for (size_t d = 0; d < sizeof defs / sizeof defs[0]; d++) {
        jbuf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", defs[d].name, defs[d].help, defs[d].name);
        for (size_t i = 0; i < n; i++) {
            const series_status *st = &all[i];
            const pace_result *r = &st->pace;
            double v;
            switch (d) {
            case 0: v = st->value; break;
            case 1: if (!st->has_target) continue; v = st->target; break;
            case 2: if (!r->has_completion) continue; v = r->completion_pct / 100.0; break;
            case 3: if (!r->has_pace) continue; v = r->pace_pct / 100.0; break;
            case 4: if (!r->has_gap) continue; v = r->gap; break;
            case 5: if (!st->has_figure) continue; v = period_start(st->period); break;
            default: if (!st->has_figure) continue; v = (double)st->updated_at; break;
            }
            if (!isfinite(v))
                continue;
            prom_sample(b, defs[d].name, st, v);
        }
    }
    static const pp_status statuses[] = { PP_STATUS_OK, PP_STATUS_WARNING, PP_STATUS_CRITICAL,
                                          PP_STATUS_NO_TARGET, PP_STATUS_NO_DATA };
    jbuf_puts(b, "# HELP parkpulse_status Pace status of a series (1 for the status in force).\n"
                 "# TYPE parkpulse_status gauge\n");
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

    uint64_t published = 0, dropped = 0;
    if (app->bus)
        bus_stats(app->bus, &published, &dropped);
    jbuf_printf(b,
                "# HELP parkpulse_files_total Inputs (files, POSTs) ingested, by result.\n"
                "# TYPE parkpulse_files_total counter\n"
                "parkpulse_files_total{result=\"ok\"} %llu\n"
                "parkpulse_files_total{result=\"refused\"} %llu\n"
                "# HELP parkpulse_observations_total Observations received, by outcome.\n"
                "# TYPE parkpulse_observations_total counter\n"
                "parkpulse_observations_total{outcome=\"accepted\"} %llu\n"
                "parkpulse_observations_total{outcome=\"unchanged\"} %llu\n"
                "# HELP parkpulse_targets_total Targets accepted.\n"
                "# TYPE parkpulse_targets_total counter\n"
                "parkpulse_targets_total %llu\n"
                "# HELP parkpulse_alert_seq Sequence number of the last alert (kept across restarts).\n"
                "# TYPE parkpulse_alert_seq gauge\n"
                "parkpulse_alert_seq %llu\n"
                "# HELP parkpulse_bus_messages_total Alert messages handed to the bus, by outcome.\n"
                "# TYPE parkpulse_bus_messages_total counter\n"
                "parkpulse_bus_messages_total{outcome=\"published\"} %llu\n"
                "parkpulse_bus_messages_total{outcome=\"dropped\"} %llu\n"
                "# HELP parkpulse_series Series with at least one figure or target.\n"
                "# TYPE parkpulse_series gauge\n"
                "parkpulse_series %zu\n"
                "# HELP parkpulse_journal_records Records in the journal.\n"
                "# TYPE parkpulse_journal_records gauge\n"
                "parkpulse_journal_records %llu\n",
                (unsigned long long)app_counter(&app->n_files_ok),
                (unsigned long long)app_counter(&app->n_files_refused),
                (unsigned long long)app_counter(&app->n_obs_accepted),
                (unsigned long long)app_counter(&app->n_obs_unchanged),
                (unsigned long long)app_counter(&app->n_targets_accepted),
                (unsigned long long)(app->alerts ? alert_seq(app->alerts) : 0),
                (unsigned long long)published, (unsigned long long)dropped,
                db_series_count(view->db),
                (unsigned long long)(app->journal ? journal_count(app->journal) : 0));
    process_metrics(b);
}
