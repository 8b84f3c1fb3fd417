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

#define NOW_2021_09_15 1631671200
#define AUG_2021 (2021 * 12 + 7)

static char test_dir[PATH_MAX];
static pp_app app;

static void setup(void) { test_app_open(&app, test_dir, "check_report", NOW_2021_09_15); }

static void teardown(void) { test_app_close(&app, test_dir); }

static void feed(const char *csv)
{
    if (csv == NULL)
        return;
    ingest_result res;
    ingest_status st = ingest_csv(&app, "test", csv, strlen(csv), &res);
    ck_assert_msg(st == INGEST_OK, "ingest: %s", res.report ? res.report : "?");
    free(res.report);
    free(res.warnings);
}

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
    report_ranking_json(v, pp_catalog_indicator(&v->cfg->catalog, ind_id), AUG_2021, b);
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
    snprintf(buf, len, "{\"rank\":%s,\"name\":\"%s\",\"park\":\"%s\"", r,
             strcmp(park, "pa") == 0 ? "甲园区" : "乙园区", park);
}

START_TEST(test_ranking)
{
    feed(rank_cases[_i].figures);
    feed(rank_cases[_i].targets);
    char *s = under_view(ranking_of, rank_cases[_i].ind);
    char first[96], second[96];
    rank_prefix(first, sizeof first, rank_cases[_i].first, rank_cases[_i].first_rank);
    rank_prefix(second, sizeof second, rank_cases[_i].second, rank_cases[_i].second_rank);
    const char *a = strstr(s, first), *b = strstr(s, second);
    ck_assert_msg(a && b && a < b, "case %d: want %s then %s in %s", _i, first, second, s);
    ck_assert_ptr_nonnull(strstr(s, "\"period\":\"2021-08\",\"parks\":["));
    free(s);
}
END_TEST

/* Issue 13, point 3: a park that never reports is in the ranking and the 通报
 * of a month that is due: no_data, overdue, 未报送. */
#define JUL_2021 (2021 * 12 + 6)
static void ranking_jul(const pp_view *v, jbuf *b, const void *arg)
{
    report_ranking_json(v, pp_catalog_indicator(&v->cfg->catalog, "fixed_asset_investment"), JUL_2021, b);
}
static void table_csv_jul(const pp_view *v, jbuf *b, const void *arg) { report_table_csv(v, JUL_2021, b); }

START_TEST(test_never_reporting)
{
    feed("park,indicator,period,value\npa,fixed_asset_investment,2021-07,150\n");
    feed("park,indicator,year,target\npa,fixed_asset_investment,2021,300\npb,fixed_asset_investment,2021,300\n");
    char *s = under_view(ranking_jul, NULL);
    ck_assert_msg(strstr(s, "{\"rank\":null,\"name\":\"乙园区\",\"park\":\"pb\"") &&
                  strstr(s, "\"status\":\"no_data\"") &&
                  strstr(s, "\"overdue\":true,\"overdue_period\":\"2021-07\""), "%s", s);
    free(s);
    s = under_view(table_csv_jul, NULL);
    ck_assert_msg(strstr(s, "pb,乙园区,fixed_asset_investment,固定资产投资,2021-07,,亿元,300,,,,,,未报送,no_data,"),
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
    { table_csv, "园区代码,园区,指标代码,指标,期间,数值,单位,目标,完成率(%),序时进度(%),差距(百分点),同比(%),排名,状态,status,说明\r\n" },
    /* no target: listed, no rank (issue 13, point 8; these were ranked 1, 2) */
    { table_csv, "pb,乙园区,tax_revenue,税收收入,2021-08,20,亿元,,,,,,,未设目标,no_target," },
    { table_csv, "pa,甲园区,tax_revenue,税收收入,2021-08,12,亿元,,,,,,,未设目标,no_target," },
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

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("view");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_ranking, 0, sizeof rank_cases / sizeof rank_cases[0]);
    tcase_add_test(tc, test_never_reporting);
    tcase_add_loop_test(tc, test_tables, 0, sizeof table_cases / sizeof table_cases[0]);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(report_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
