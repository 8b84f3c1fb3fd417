/*
 * check_status.c — Check suite for daemon/status.c: a series' state through a
 * read view (status_eval), its <series> object, a park's object and a
 * series' points.
 *
 * Each case feeds a few CSV lines through ingest into a test_app.h daemon
 * (fixed clock 2021-09-15 10:00 +08:00: August 2021 is the latest figure due
 * by the 20th), takes one read view and checks what status.c makes of one
 * series: found or not, the status, and fields of its JSON.
 */
#include "status.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

#include "test_app.h"
#include "check_main.h"

#define NOW_2021_09_15 1631671200
#define NOW_2022_02_15 1644890400

static char test_dir[PATH_MAX];
static pp_app app;

static void setup(void) { test_app_open(&app, test_dir, "check_status", NOW_2021_09_15); }

static void teardown(void) { test_app_close(&app, test_dir); }

static void feed(const char *csv) { test_app_feed(&app, csv); }

#define MAX_WANT 3

static const struct {
    const char *csv;           /* fed before the view is taken */
    const char *targets;       /* fed before it too, or NULL */
    const char *park, *ind;
    int period;                /* -1: the latest */
    bool found;
    const char *status;
    const char *want[MAX_WANT]; /* in the <series> object */
} cases[] = {
    { "park,indicator,period,value\npa,fixed_asset_investment,2021-08,192.2\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\n",
      "pa", "fixed_asset_investment", -1, true, "ok",
      { "\"period\":\"2021-08\",\"value\":192.2,\"target\":300,\"completion_pct\":64.07",
        "\"gap_pp\":-2.6", "低于序时进度(66.7%)2.6个百分点" } },
    { "park,indicator,period,value\npa,fixed_asset_investment,2021-08,100\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\n",
      "pa", "fixed_asset_investment", -1, true, "critical", { "\"gap_pp\":-33.33" } },
    { "park,indicator,period,value\npa,tax_revenue,2021-08,10\n", NULL, "pa", "tax_revenue", -1, true,
      "no_target", { "\"target\":null,\"completion_pct\":null,\"pace_pct\":null,\"gap_pp\":null" } },
    /* overdue is a flag beside the status (issue 13: the status used to become
     * "stale" and hide the judgement) */
    { "park,indicator,period,value\npa,tax_revenue,2021-06,10\n", NULL, "pa", "tax_revenue", -1, true,
      "no_target", { "逾期未报", "\"overdue\":true,\"overdue_period\":\"2021-07\"" } },
    { "park,indicator,period,value\npa,fixed_asset_investment,2021-06,50\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\n",
      "pa", "fixed_asset_investment", -1, true, "critical",
      { "\"overdue\":true,\"overdue_period\":\"2021-07\"", "\"streak\":1", "\"note\":null" } },
    /* a park with a target and no figure: no_data, overdue (issue 13, point 3) */
    { "park,indicator,period,value\npa,tax_revenue,2021-08,10\n",
      "park,indicator,year,target\npb,fixed_asset_investment,2021,300\n",
      "pb", "fixed_asset_investment", -1, true, "no_data",
      { "\"period\":null,\"value\":null,\"target\":300", "\"overdue\":true,\"overdue_period\":\"2021-07\"",
        "尚无报送数据" } },
    /* streak: three months of warning or worse; 1-2月 counts once */
    { "park,indicator,period,value\npa,fixed_asset_investment,2021-01,5\npa,fixed_asset_investment,2021-02,20\n"
      "pa,fixed_asset_investment,2021-03,30\npa,fixed_asset_investment,2021-04,75\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\n",
      "pa", "fixed_asset_investment", -1, true, "warning", { "\"streak\":3" } },
    /* a cumulative figure below the previous month: a note (issue 13, point 6) */
    { "park,indicator,period,value\npa,fixed_asset_investment,2021-07,166.5\npa,fixed_asset_investment,2021-08,150\n",
      "park,indicator,year,target\npa,fixed_asset_investment,2021,300\n",
      "pa", "fixed_asset_investment", -1, true, "critical",
      { "\"note\":\"累计值150亿元低于7月的166.5亿元" } },
    /* a month looked up in the past is judged without staleness */
    { "park,indicator,period,value\npa,tax_revenue,2021-06,10\npa,tax_revenue,2021-08,12\n", NULL,
      "pa", "tax_revenue", 2021 * 12 + 5, true, "no_target", { "\"period\":\"2021-06\",\"value\":10," } },
    { "park,indicator,period,value\npa,rank_province,2021-08,5\n",
      "park,indicator,year,target\npa,rank_province,2021,3\n",
      "pa", "rank_province", -1, true, "warning", { "落后2位" } },
    { "park,indicator,period,value\npa,tax_revenue,2021-08,10\n", NULL, "pb", "tax_revenue", -1, false,
      NULL, { NULL } },
    { "park,indicator,period,value\npa,tax_revenue,2021-08,10\n", NULL, "pa", "tax_revenue", 2021 * 12 + 6,
      false, NULL, { NULL } },
};

START_TEST(test_eval)
{
    feed(cases[_i].csv);
    if (cases[_i].targets)
        feed(cases[_i].targets);
    pp_view v;
    view_begin(&app, &v);
    const pp_park *park = pp_catalog_park(&v.cfg->catalog, cases[_i].park);
    const pp_indicator *ind = pp_catalog_indicator(&v.cfg->catalog, cases[_i].ind);
    ck_assert(park && ind);
    series_status st;
    bool found = status_eval(&v, park, ind, db_series_get(v.db, park->id, ind->id), cases[_i].period,
                             &st);
    ck_assert_msg(found == cases[_i].found, "case %d: found %d", _i, found);
    if (found) {
        jbuf b;
        jbuf_init(&b);
        status_series_json(&b, &st);
        char *s = jbuf_take(&b, NULL);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(pp_status_name(st.pace.status), cases[_i].status);
        for (int k = 0; k < MAX_WANT && cases[_i].want[k]; k++)
            ck_assert_msg(strstr(s, cases[_i].want[k]) != NULL, "case %d: no %s in %s", _i,
                          cases[_i].want[k], s);
        free(s);
    }
    view_end(&v);
}
END_TEST

/* A park's object lists the indicators with a figure, in catalogue order. */
START_TEST(test_park_json)
{
    feed("park,indicator,period,value\npa,tax_revenue,2021-08,10\npa,fixed_asset_investment,2021-08,5\n");
    pp_view v;
    view_begin(&app, &v);
    jbuf b;
    jbuf_init(&b);
    status_park_json(&b, &v, pp_catalog_park(&v.cfg->catalog, "pa"));
    view_end(&v);
    char *s = jbuf_take(&b, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(strstr(s, "{\"id\":\"pa\",\"name\":\"甲园区\","));
    const char *fai = strstr(s, "\"indicator\":\"fixed_asset_investment\"");
    const char *tax = strstr(s, "\"indicator\":\"tax_revenue\"");
    ck_assert(fai && tax && fai < tax);
    ck_assert_ptr_null(strstr(s, "fiscal_revenue"));
    free(s);
}
END_TEST

/* A series' points, with the pace the target expects, and the from/to bounds. */
static const struct {
    int from, to;
    const char *want;
} point_cases[] = {
    { -1, -1, "\"points\":[{\"period\":\"2021-01\",\"value\":10,\"pace\":25,\"target\":300,\"yoy\":null},"
              "{\"period\":\"2021-02\",\"value\":30,\"pace\":50,\"target\":300,\"yoy\":null},"
              "{\"period\":\"2022-01\",\"value\":5,\"pace\":null,\"target\":null,\"yoy\":null}]}" },
    { 2021 * 12 + 1, -1, "\"points\":[{\"period\":\"2021-02\",\"value\":30,\"pace\":50,\"target\":300,\"yoy\":null},"
                         "{\"period\":\"2022-01\",\"value\":5,\"pace\":null,\"target\":null,\"yoy\":null}]}" },
    { -1, 2021 * 12, "\"points\":[{\"period\":\"2021-01\",\"value\":10,\"pace\":25,\"target\":300,\"yoy\":null}]}" },
    { 2023 * 12, -1, "\"points\":[]}" },
};

START_TEST(test_points_json)
{
    app.fixed_now = NOW_2022_02_15; /* 2022-01 is not a future month (issue 13) */
    feed("park,indicator,period,value\npa,tax_revenue,2021-01,10\npa,tax_revenue,2021-02,30\n"
         "pa,tax_revenue,2022-01,5\n");
    feed("park,indicator,year,target\npa,tax_revenue,2021,300\n");
    pp_view v;
    view_begin(&app, &v);
    jbuf b;
    jbuf_init(&b);
    int64_t updated = status_points_json(&b, &v, pp_catalog_park(&v.cfg->catalog, "pa"),
                                         pp_catalog_indicator(&v.cfg->catalog, "tax_revenue"),
                                         point_cases[_i].from, point_cases[_i].to);
    view_end(&v);
    char *s = jbuf_take(&b, NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(updated, NOW_2022_02_15); /* when the figures were received */
    ck_assert_msg(strstr(s, point_cases[_i].want) != NULL, "case %d: %s", _i, s);
    ck_assert_ptr_nonnull(strstr(s, "{\"park\":\"pa\",\"indicator\":\"tax_revenue\",\"label\":\"税收收入\""));
    free(s);
}
END_TEST

static Suite *status_suite(void)
{
    Suite *s = suite_create("status");
    TCase *tc = check_tcase(s, "view", setup, teardown, 30);
    tcase_add_loop_test(tc, test_eval, 0, sizeof cases / sizeof cases[0]);
    tcase_add_test(tc, test_park_json);
    tcase_add_loop_test(tc, test_points_json, 0, sizeof point_cases / sizeof point_cases[0]);
    return s;
}

CHECK_MAIN(status_suite)
