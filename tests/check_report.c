/*
 * check_report.c — Check suite for daemon/report.c: the ranking order, the
 * 通报 table (JSON and CSV), the revision history and the latest period,
 * each read through one read view of a test_app.h daemon (fixed clock
 * 2021-09-15 10:00 +08:00) fed through ingest.
 *
 * The ranking cases are a table: figures and targets of the two parks pa
 * (甲园区) and pb (乙园区) on one indicator, and the order they must come in —
 * by gap, best first; without a gap by completion, then by value (ascending
 * for ranks and lower-is-better rates), then by park id.
 */
#include "report.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

#include "test_app.h"
#include "check_main.h"

#define NOW_2021_09_15 1631671200
#define AUG_2021 (2021 * 12 + 7)
#define METRICS_GOLDEN "tests/fixtures/metrics.golden"

static char test_dir[PATH_MAX];
static pp_app app;

static void setup(void) { test_app_open(&app, test_dir, "check_report", NOW_2021_09_15); }

static void teardown(void) { test_app_close(&app, test_dir); }

static void feed(const char *csv) { test_app_feed(&app, csv); }

/* What a report function wrote, under one read view (malloc'd). */
typedef void (*report_fn)(const pp_view *v, jbuf *b, const void *arg);

static char *under_view(report_fn fn, const void *arg)
{
    pp_view v;
    jbuf b;
    jbuf_init(&b);
    view_begin(&app, &v);
    fn(&v, &b, arg);
    view_end(&v);
    char *s = jbuf_take(&b, NULL);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void ranking_of(const pp_view *v, jbuf *b, const void *ind_id)
{
    report_ranking_json(v, pp_catalog_indicator(&v->cfg->catalog, ind_id), AUG_2021, NULL,
                        REPORT_BY_GAP, b);
}

/* Ranks: a number, or 0 for "rank":null (listed, unranked). Issue 13, point
 * 8: a series without a target is never ranked by gap (these cases ranked
 * them 1, 2 by value before), figures with status E are listed unranked;
 * ties on the gap shown share a rank. */
static const struct {
    const char *ind;
    const char *figures, *targets;
    const char *first, *second; /* park ids, in the order listed */
    int first_rank, second_rank;
} rank_cases[] = {
    /* by gap: pb is ahead of its pace */
    { "fixed_asset_investment",
      "park,indicator,period,value\npa,fixed_asset_investment,2021-08,150\npb,fixed_asset_investment,2021-08,210\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\npb,fixed_asset_investment,2021,300\n",
      "pb", "pa", 1, 2 },
    /* a gap comes before no gap, whatever the values; no gap: no rank */
    { "fixed_asset_investment",
      "park,indicator,period,value\npa,fixed_asset_investment,2021-08,999\npb,fixed_asset_investment,2021-08,1\n",
      "park,indicator,year,target\npb,fixed_asset_investment,2021,300\n", "pb", "pa", 1, 0 },
    /* no targets: listed by value, the higher first, unranked */
    { "tax_revenue", "park,indicator,period,value\npa,tax_revenue,2021-08,10\npb,tax_revenue,2021-08,20\n",
      NULL, "pb", "pa", 0, 0 },
    /* ranks without a target: the lower value first, unranked */
    { "rank_province",
      "park,indicator,period,value\npa,rank_province,2021-08,2\npb,rank_province,2021-08,7\n", NULL,
      "pa", "pb", 0, 0 },
    /* equal: by park id */
    { "tax_revenue", "park,indicator,period,value\npb,tax_revenue,2021-08,10\npa,tax_revenue,2021-08,10\n",
      NULL, "pa", "pb", 0, 0 },
    /* an estimated figure (E) is shown, not ranked, even when it is ahead */
    { "fixed_asset_investment",
      "park,indicator,period,value,status\npa,fixed_asset_investment,2021-08,250,E\npb,fixed_asset_investment,2021-08,150,A\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\npb,fixed_asset_investment,2021,300\n",
      "pb", "pa", 1, 0 },
    /* ties on the gap shown share a rank */
    { "fixed_asset_investment",
      "park,indicator,period,value\npa,fixed_asset_investment,2021-08,150\npb,fixed_asset_investment,2021-08,150\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\npb,fixed_asset_investment,2021,300\n",
      "pa", "pb", 1, 1 },
    /* a park with a target and no figure is listed last, unranked, no_data */
    { "fixed_asset_investment",
      "park,indicator,period,value\npa,fixed_asset_investment,2021-08,150\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\npb,fixed_asset_investment,2021,300\n",
      "pa", "pb", 1, 0 },
};

static void rank_prefix(char *buf, size_t len, const char *park, int rank)
{
    char r[16];
    if (rank > 0)
        snprintf(r, sizeof r, "%d", rank);
    else
        snprintf(r, sizeof r, "null");
    /* one period fed: no change; first place starts a streak of 1 */
    snprintf(buf, len, "{\"rank\":%s,\"rank_change\":null,\"streak_first\":%s,"
             "\"name\":\"%s\",\"park\":\"%s\"", r,
             rank == 1 ? "1" : rank > 1 ? "0" : "null",
             strcmp(park, "pa") == 0 ? "甲园区" : "乙园区", park);
}

START_TEST(test_ranking)
{
    feed(rank_cases[_i].figures);
    feed(rank_cases[_i].targets);
    char *s = under_view(ranking_of, rank_cases[_i].ind);
    char first[160], second[160];
    rank_prefix(first, sizeof first, rank_cases[_i].first, rank_cases[_i].first_rank);
    rank_prefix(second, sizeof second, rank_cases[_i].second, rank_cases[_i].second_rank);
    const char *a = strstr(s, first), *b = strstr(s, second);
    ck_assert_msg(a && b && a < b, "case %d: want %s then %s in %s", _i, first, second, s);
    ck_assert_ptr_nonnull(strstr(s, "\"period\":\"2021-08\",\"group\":\"all\",\"group_label\":"
                                    "\"全部园区\",\"by\":\"gap\",\"parks\":["));
    free(s);
}
END_TEST

/* Issue 13, point 3: a park that never reports is in the ranking and the 通报
 * of a month that is due: no_data, overdue, 未报送. */
#define JUL_2021 (2021 * 12 + 6)
static void ranking_jul(const pp_view *v, jbuf *b, const void *arg)
{
    report_ranking_json(v, pp_catalog_indicator(&v->cfg->catalog, "fixed_asset_investment"), JUL_2021,
                        NULL, REPORT_BY_GAP, b);
}
static void table_csv_jul(const pp_view *v, jbuf *b, const void *arg) { report_table_csv(v, JUL_2021, b); }

START_TEST(test_never_reporting)
{
    feed("park,indicator,period,value\npa,fixed_asset_investment,2021-07,150\n");
    feed("park,indicator,year,target\npa,fixed_asset_investment,2021,300\npb,fixed_asset_investment,2021,300\n");
    char *s = under_view(ranking_jul, NULL);
    ck_assert_msg(strstr(s, "{\"rank\":null,\"rank_change\":null,\"streak_first\":null,"
                         "\"name\":\"乙园区\",\"park\":\"pb\"") &&
                  strstr(s, "\"status\":\"no_data\"") &&
                  strstr(s, "\"overdue\":true,\"overdue_period\":\"2021-07\""), "%s", s);
    free(s);
    s = under_view(table_csv_jul, NULL);
    ck_assert_msg(strstr(s, "pb,乙园区,fixed_asset_investment,固定资产投资,2021-07,,亿元,300,,,,,,未报送,乙园区"),
                  "%s", s);
    free(s);
}
END_TEST

static void table_csv(const pp_view *v, jbuf *b, const void *arg) { report_table_csv(v, AUG_2021, b); }
static void table_json(const pp_view *v, jbuf *b, const void *arg) { report_table_json(v, AUG_2021, b); }

static void history(const pp_view *v, jbuf *b, const void *arg)
{
    report_history_json(v, pp_catalog_park(&v->cfg->catalog, "pa"),
                        pp_catalog_indicator(&v->cfg->catalog, "tax_revenue"), AUG_2021, b);
}

static void latest(const pp_view *v, jbuf *b, const void *arg)
{
    jbuf_printf(b, "%d %d %d", report_latest_period(v, NULL),
                report_latest_period(v, pp_catalog_indicator(&v->cfg->catalog, "tax_revenue")),
                report_latest_period(v, pp_catalog_indicator(&v->cfg->catalog, "rank_province")));
}

static const struct {
    report_fn fn;
    const char *want;
} table_cases[] = {
    { table_csv, "园区代码,园区,指标代码,指标,期间,数值,单位,目标,完成率(%),序时进度(%),差距(百分点),同比(%),排名,状态,说明\r\n" },
    /* no target: listed, no rank (issue 13, point 8; these were ranked 1, 2) */
    { table_csv, "pb,乙园区,tax_revenue,税收收入,2021-08,20,亿元,,,,,,,未设目标,乙园区" },
    { table_csv, "pa,甲园区,tax_revenue,税收收入,2021-08,12,亿元,,,,,,,未设目标,甲园区" },
    { table_json, "{\"period\":\"2021-08\",\"rows\":[{\"rank\":null,\"name\":\"乙园区\",\"park\":\"pb\"" },
    { history, "\"vintages\":[{\"value\":10,\"status\":\"A\",\"source\":\"test\"" },
    { history, "},{\"value\":12,\"status\":\"R\",\"source\":\"修订\"" },
    { latest, "24259 24259 -1" } /* AUG_2021 */,
};

START_TEST(test_tables)
{
    feed("park,indicator,period,value\npa,tax_revenue,2021-07,3\npa,tax_revenue,2021-08,10\n"
         "pb,tax_revenue,2021-08,20\n");
    feed("park,indicator,period,value,status,source\npa,tax_revenue,2021-08,12,R,修订\n");
    char *s = under_view(table_cases[_i].fn, NULL);
    ck_assert_msg(strstr(s, table_cases[_i].want) != NULL, "case %d: no %s in %s", _i,
                  table_cases[_i].want, s);
    free(s);
}
END_TEST

/* ---- peer groups, criteria, ties, rank changes and streaks ---- */

#define MAR_2021 (2021 * 12 + 2)

static const char *const group_parks =
    "group \"g\" { label = \"甲组\" }\n"
    "park \"p1\" { name = \"一园\" groups = {\"g\"} }\n"
    "park \"p2\" { name = \"二园\" groups = {\"g\", \"all\"} }\n"
    "park \"p3\" { name = \"三园\" }\n"
    "park \"p4\" { name = \"四园\" }\n";

static const char *const group_figures =
    "park,indicator,period,value,yoy\n"
    /* fixed_asset_investment: February, then March with a tie on the rounded completion */
    "p1,fixed_asset_investment,2021-02,50,\np2,fixed_asset_investment,2021-02,60,\n"
    "p3,fixed_asset_investment,2021-02,70,\n"
    "p1,fixed_asset_investment,2021-03,100,\np2,fixed_asset_investment,2021-03,90.003,\n"
    "p3,fixed_asset_investment,2021-03,90.012,\np4,fixed_asset_investment,2021-03,80,\n"
    /* tax_revenue: p1 first in December, March and 1-2月; p2 first in January alone */
    "p1,tax_revenue,2020-12,10,\np2,tax_revenue,2020-12,5,\n"
    "p1,tax_revenue,2021-01,1,\np2,tax_revenue,2021-01,9,\n"
    "p1,tax_revenue,2021-02,20,\np2,tax_revenue,2021-02,10,\n"
    "p1,tax_revenue,2021-03,30,\np2,tax_revenue,2021-03,20,\n"
    /* industrial_output: 同比 for two parks out of three */
    "p1,industrial_output,2021-03,10,5\np2,industrial_output,2021-03,20,8\n"
    "p3,industrial_output,2021-03,30,\n"
    /* industrial_investment: one park only */
    "p1,industrial_investment,2021-03,7,\n";

static const char *const group_targets =
    "park,indicator,year,target\n"
    "p1,fixed_asset_investment,2021,300\np2,fixed_asset_investment,2021,300\n"
    "p3,fixed_asset_investment,2021,300\np4,fixed_asset_investment,2021,300\n";

typedef struct rank_query {
    const char *ind, *group;
    report_by by;
} rank_query;

static void ranking_query(const pp_view *v, jbuf *b, const void *arg)
{
    const rank_query *q = arg;
    report_ranking_json(v, pp_catalog_indicator(&v->cfg->catalog, q->ind), MAR_2021,
                        q->group ? conf_group_find(v->cfg, q->group) : NULL, q->by, b);
}

static void table_csv_mar(const pp_view *v, jbuf *b, const void *arg) { report_table_csv(v, MAR_2021, b); }

static const struct {
    rank_query q;
    const char *want[5]; /* in this order in the answer */
    const char *absent;
} group_cases[] = {
    /* by value, as published: 90.012 before 90.003; p1 up two places, p4 new */
    { { "fixed_asset_investment", NULL, REPORT_BY_VALUE },
      { "\"by\":\"value\"",
        "{\"rank\":1,\"rank_change\":2,\"streak_first\":1,\"name\":\"一园\"",
        "{\"rank\":2,\"rank_change\":-1,\"streak_first\":0,\"name\":\"三园\"",
        "{\"rank\":3,\"rank_change\":-1,\"streak_first\":0,\"name\":\"二园\"",
        "{\"rank\":4,\"rank_change\":null,\"streak_first\":0,\"name\":\"四园\"" }, NULL },
    /* by completion: 30.004% and 30.001% are both 30.00 as displayed: 1, 2, 2, 4 */
    { { "fixed_asset_investment", NULL, REPORT_BY_COMPLETION },
      { "\"by\":\"completion\"",
        "{\"rank\":1,\"rank_change\":2,\"streak_first\":1,\"name\":\"一园\"",
        "{\"rank\":2,\"rank_change\":-1,\"streak_first\":0,\"name\":\"三园\"",
        "{\"rank\":2,\"rank_change\":0,\"streak_first\":0,\"name\":\"二园\"",
        "{\"rank\":4,\"rank_change\":null,\"streak_first\":0,\"name\":\"四园\"" }, NULL },
    /* the same by gap (the default): the gap ties as the completion does */
    { { "fixed_asset_investment", NULL, REPORT_BY_GAP },
      { "{\"rank\":1,", "{\"rank\":2,\"rank_change\":-1,\"streak_first\":0,\"name\":\"三园\"",
        "{\"rank\":2,\"rank_change\":0,\"streak_first\":0,\"name\":\"二园\"",
        "{\"rank\":4,", NULL }, NULL },
    /* within the group g: only its parks, ranked and changed among themselves */
    { { "fixed_asset_investment", "g", REPORT_BY_VALUE },
      { "\"group\":\"g\",\"group_label\":\"甲组\"",
        "{\"rank\":1,\"rank_change\":1,\"streak_first\":1,\"name\":\"一园\"",
        "{\"rank\":2,\"rank_change\":-1,\"streak_first\":0,\"name\":\"二园\"", NULL, NULL },
      "三园" },
    /* first in March, 1-2月 and December: three periods (January is part of 1-2月);
     * by value: without a target the series is not ranked by gap */
    { { "tax_revenue", NULL, REPORT_BY_VALUE },
      { "{\"rank\":1,\"rank_change\":0,\"streak_first\":3,\"name\":\"一园\"",
        "{\"rank\":2,\"rank_change\":0,\"streak_first\":0,\"name\":\"二园\"", NULL, NULL, NULL },
      NULL },
    /* by 同比: a park without one is listed, unranked */
    { { "industrial_output", NULL, REPORT_BY_YOY },
      { "{\"rank\":1,\"rank_change\":null,\"streak_first\":1,\"name\":\"二园\"",
        "{\"rank\":2,\"rank_change\":null,\"streak_first\":0,\"name\":\"一园\"",
        "{\"rank\":null,\"rank_change\":null,\"streak_first\":null,\"name\":\"三园\"", NULL, NULL },
      NULL },
};

START_TEST(test_group_ranking)
{
    test_app_reload(&app, test_dir, true, group_parks);
    feed(group_figures);
    feed(group_targets);
    char *s = under_view(ranking_query, &group_cases[_i].q);
    const char *at = s;
    for (size_t k = 0; k < 5 && group_cases[_i].want[k]; k++) {
        const char *hit = strstr(at, group_cases[_i].want[k]);
        ck_assert_msg(hit != NULL, "case %d: no %s after %s", _i, group_cases[_i].want[k], at);
        at = hit + 1;
    }
    if (group_cases[_i].absent)
        ck_assert_msg(strstr(s, group_cases[_i].absent) == NULL, "case %d: %s in %s", _i,
                      group_cases[_i].absent, s);
    free(s);
}
END_TEST

/* The 通报's 排名 is left empty where a park is the only one ranked: "first
 * of one" tells a reader nothing (the issue: 排名 was 1 on every row). */
START_TEST(test_report_rank_needs_two)
{
    test_app_reload(&app, test_dir, true, group_parks);
    feed(group_figures);
    feed(group_targets);
    char *s = under_view(table_csv_mar, NULL);
    ck_assert_msg(strstr(s, "p1,一园,industrial_investment,工业投资,2021-03,7,亿元,,,,,,,"),
                  "%s", s);
    /* four parks ranked on the gap: p1 is 1 (tax_revenue has no target: not ranked) */
    ck_assert_msg(strstr(s, "p1,一园,fixed_asset_investment,固定资产投资,2021-03,100,亿元,300,33.33,25,"
                            "8.33,,1,"), "%s", s);
    ck_assert_msg(strstr(s, "p1,一园,tax_revenue,税收收入,2021-03,30,亿元,,,,,,,"), "%s", s);
    free(s);
}
END_TEST

/* ---- /metrics ---- */

static void metrics_of(const pp_view *v, jbuf *b, const void *arg)
{
    (void)arg;
    report_metrics(v, &app, b);
}

/* The exposition up to the fdatasync seconds and process_* metrics (which change from run to run),
 * byte for byte: metric names, HELP and TYPE lines are read by Prometheus,
 * promtool and the README. */
START_TEST(test_metrics_exposition)
{
    feed("park,indicator,year,target\npa,fixed_asset_investment,2021,300\n");
    feed("park,indicator,period,value\npa,fixed_asset_investment,2021-08,150\n"
         "pb,tax_revenue,2021-07,20\n");
    char *got = under_view(metrics_of, NULL);
    /* the time spent in fdatasync changes from run to run, as process_* do:
     * its line is checked for its form, the text before it byte for byte */
    char *secs = strstr(got, "# HELP parkpulse_journal_sync_seconds_total ");
    ck_assert_ptr_nonnull(secs);
    const char *sample = strstr(secs, "\nparkpulse_journal_sync_seconds_total ");
    ck_assert_ptr_nonnull(sample);
    char *end = NULL;
    double sync_s = strtod(sample + strlen("\nparkpulse_journal_sync_seconds_total "), &end);
    ck_assert_msg(end != NULL && *end == '\n' && sync_s >= 0, "%s", secs);
    char *proc = strstr(got, "# HELP process_");
    ck_assert_ptr_nonnull(proc);
    ck_assert(proc > secs);
    *secs = '\0';
    FILE *f = fopen(METRICS_GOLDEN, "r");
    ck_assert_msg(f != NULL, "cannot read " METRICS_GOLDEN);
    static char want[65536];
    size_t n = fread(want, 1, sizeof want - 1, f);
    fclose(f);
    want[n] = '\0';
    if (strcmp(got, want) != 0) { /* the whole text is too long for a Check message */
        FILE *o = fopen("build/metrics.got", "w");
        if (o) {
            fputs(got, o);
            fclose(o);
        }
    }
    ck_assert_msg(strcmp(got, want) == 0,
                  "/metrics differs from " METRICS_GOLDEN ": see build/metrics.got");
    free(got);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = check_tcase(s, "view", setup, teardown, 30);
    tcase_add_loop_test(tc, test_ranking, 0, sizeof rank_cases / sizeof rank_cases[0]);
    tcase_add_test(tc, test_never_reporting);
    tcase_add_loop_test(tc, test_tables, 0, sizeof table_cases / sizeof table_cases[0]);
    tcase_add_loop_test(tc, test_group_ranking, 0, sizeof group_cases / sizeof group_cases[0]);
    tcase_add_test(tc, test_report_rank_needs_two);
    tcase_add_test(tc, test_metrics_exposition);
    return s;
}

CHECK_MAIN(report_suite)
