/*
 * check_pace.c — Check suite for the pace engine (daemon/pace.c, docs/ARCHITECTURE.md):
 * the expected table of /work/shared/fixtures/README.md, threshold
 * boundaries (also under floating error), month 12, pace profiles, every kind
 * and direction, missing and zero targets, rounding, overdue dates with the
 * January rule and the year boundary (overdue is a flag beside the status: it
 * used to replace it with "stale"), streaks, escalation and the relative rule,
 * and the exact 通报 messages.
 * Table-driven; pure arithmetic, so no files and no network.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pace.h"
#include "text.h"
#include "check_main.h"

#define PARK "湘潭经开区"
#define NONE NAN /* "this field must be absent" in the tables below */

static const double front_loaded[12] = {15, 28, 40, 50, 60, 68, 75, 82, 88, 93, 97, 100};
static const double zero_start[12] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100};

typedef struct ind_spec {
    const char *id, *label, *unit;
    pp_kind kind;
    pp_direction dir;
    const double *profile; /* NULL: linear */
} ind_spec;

static const ind_spec FAI = {"fixed_asset_investment", "固定资产投资", "亿元",
                             PP_KIND_CUMULATIVE, PP_DIR_HIGHER, NULL};
static const ind_spec FISCAL = {"fiscal_revenue", "财税收入", "亿元", PP_KIND_CUMULATIVE,
                                PP_DIR_HIGHER, NULL};
static const ind_spec FDI = {"fdi_actual", "实际利用外资", "万美元", PP_KIND_CUMULATIVE,
                             PP_DIR_HIGHER, NULL};
static const ind_spec DOMESTIC = {"domestic_capital", "实际到位内资", "亿元",
                                  PP_KIND_CUMULATIVE, PP_DIR_HIGHER, NULL};
static const ind_spec GROWTH = {"value_added_growth", "规模以上工业增加值增速", "%",
                                PP_KIND_RATE, PP_DIR_HIGHER, NULL};
static const ind_spec FRONT = {"industrial_investment", "工业投资", "亿元",
                               PP_KIND_CUMULATIVE, PP_DIR_HIGHER, front_loaded};
static const ind_spec ZERO_START = {"industrial_investment", "工业投资", "亿元",
                                    PP_KIND_CUMULATIVE, PP_DIR_HIGHER, zero_start};
static const ind_spec UNEMP = {"unemployment", "调查失业率", "%", PP_KIND_RATE,
                               PP_DIR_LOWER, NULL};
static const ind_spec WAGE = {"avg_wage", "人均月工资", "万元", PP_KIND_RATE, PP_DIR_HIGHER,
                              NULL};
static const ind_spec RANK = {"rank_province", "全省排名", "位", PP_KIND_RANK,
                              PP_DIR_HIGHER, NULL};
static const ind_spec KEYPROJ = {"key_project_completion", "重点项目完成率", "%",
                                 PP_KIND_COMPLETION, PP_DIR_HIGHER, NULL};

static void make_indicator(const ind_spec *s, pp_indicator *ind)
{
    memset(ind, 0, sizeof *ind);
    strcpy(ind->id, s->id);
    ind->label = (char *)s->label;
    ind->unit = (char *)s->unit;
    ind->kind = s->kind;
    ind->direction = s->dir;
    ind->warn = 5;
    ind->crit = 15;
    if (s->profile != NULL) {
        ind->has_pace = true;
        memcpy(ind->pace, s->profile, sizeof ind->pace);
    }
}

/* The input for value of s (made into *ind; pace_evaluate keeps no pointer
 * to it) in month m of 2021: park PARK, warn 5, crit 15, due day 20, no clock. */
static pace_input input_for(const ind_spec *s, pp_indicator *ind, int m, double value,
                            bool has_target, double target)
{
    make_indicator(s, ind);
    return (pace_input){.ind = ind, .park_name = PARK, .warn = 5, .crit = 15,
                        .period = pp_period_make(2021, m), .value = value,
                        .has_target = has_target, .target = target, .due_day = 20};
}

/* ---- pace_evaluate: figures and status ----------------------------------- */

typedef struct eval_case {
    const char *name;
    const ind_spec *ind;
    int month;                 /* of 2021 */
    double value;
    bool has_target;
    double target;
    double warn, crit;
    pp_status status;
    /* expected pace_round2() values, NONE when the field must be absent */
    double completion, pace, gap, projected, needed;
} eval_case;

static const eval_case eval_cases[] = {
    /* the fixtures README table, 2021-08, pace 66.67 */
    {"fai", &FAI, 8, 192.2, true, 300, 5, 15, PP_STATUS_OK, 64.07, 66.67, -2.60, 96.10, 26.95},
    {"fiscal", &FISCAL, 8, 25.6, true, 42, 5, 15, PP_STATUS_WARNING, 60.95, 66.67, -5.71, 91.43,
     4.10},
    {"fdi", &FDI, 8, 2690, true, 6000, 5, 15, PP_STATUS_CRITICAL, 44.83, 66.67, -21.83, 67.25,
     827.50},
    {"domestic", &DOMESTIC, 8, 89, true, 140, 5, 15, PP_STATUS_OK, 63.57, 66.67, -3.10, 95.36,
     12.75},
    {"growth", &GROWTH, 8, 12.1, true, 10, 5, 15, PP_STATUS_OK, NONE, NONE, 2.10, NONE, NONE},
    /* boundaries: exactly -warn / -crit, and just above them */
    {"rate at warn", &GROWTH, 8, 5, true, 10, 5, 15, PP_STATUS_WARNING, NONE, NONE, -5, NONE,
     NONE},
    {"rate above warn", &GROWTH, 8, 5.01, true, 10, 5, 15, PP_STATUS_OK, NONE, NONE, -4.99, NONE,
     NONE},
    {"rate at crit", &GROWTH, 8, 15, true, 30, 5, 15, PP_STATUS_CRITICAL, NONE, NONE, -15, NONE,
     NONE},
    {"rate above crit", &GROWTH, 8, 15.01, true, 30, 5, 15, PP_STATUS_WARNING, NONE, NONE,
     -14.99, NONE, NONE},
    /* 4.2 - 9.2 == -4.999999999999999 in binary: still exactly -warn */
    {"rate at warn, float error", &GROWTH, 8, 4.2, true, 9.2, 5, 15, PP_STATUS_WARNING, NONE,
     NONE, -5, NONE, NONE},
    {"cumulative at warn", &FAI, 8, 185, true, 300, 5, 15, PP_STATUS_WARNING, 61.67, 66.67, -5,
     92.50, 28.75},
    {"cumulative above warn", &FAI, 8, 185.1, true, 300, 5, 15, PP_STATUS_OK, 61.70, 66.67,
     -4.97, 92.55, 28.73},
    {"cumulative at crit", &FAI, 8, 155, true, 300, 5, 15, PP_STATUS_CRITICAL, 51.67, 66.67, -15,
     77.50, 36.25},
    {"cumulative above crit", &FAI, 8, 155.1, true, 300, 5, 15, PP_STATUS_WARNING, 51.70, 66.67,
     -14.97, 77.55, 36.23},
    {"park override thresholds", &FISCAL, 8, 25.6, true, 42, 10, 20, PP_STATUS_OK, 60.95, 66.67,
     -5.71, 91.43, 4.10},
    /* month 12: pace 100, no needed_per_month */
    {"month 12", &FAI, 12, 310, true, 300, 5, 15, PP_STATUS_OK, 103.33, 100, 3.33, 103.33, NONE},
    {"month 1", &FAI, 1, 20, true, 300, 5, 15, PP_STATUS_OK, 6.67, 8.33, -1.67, 80.00, 25.45},
    /* front-loaded profile: 40% expected by March */
    {"front-loaded", &FRONT, 3, 33, true, 100, 5, 15, PP_STATUS_WARNING, 33, 40, -7, 82.50, 7.44},
    {"front-loaded dec", &FRONT, 12, 100, true, 100, 5, 15, PP_STATUS_OK, 100, 100, 0, 100,
     NONE},
    /* a profile at 0% in January: no projection */
    {"zero pace", &ZERO_START, 1, 2, true, 100, 5, 15, PP_STATUS_OK, 2, 0, 2, NONE, 8.91},
    /* lower is better: gap = target - value */
    {"lower good", &UNEMP, 8, 3.5, true, 4, 5, 15, PP_STATUS_OK, NONE, NONE, 0.5, NONE, NONE},
    {"lower bad", &UNEMP, 8, 9.5, true, 4, 5, 15, PP_STATUS_WARNING, NONE, NONE, -5.5, NONE,
     NONE},
    {"lower far", &UNEMP, 8, 20, true, 4, 5, 15, PP_STATUS_CRITICAL, NONE, NONE, -16, NONE,
     NONE},
    /* rank: gap = target - value in places */
    {"rank better", &RANK, 8, 1, true, 3, 2, 5, PP_STATUS_OK, NONE, NONE, 2, NONE, NONE},
    {"rank equal", &RANK, 8, 3, true, 3, 2, 5, PP_STATUS_OK, NONE, NONE, 0, NONE, NONE},
    {"rank one behind", &RANK, 8, 4, true, 3, 2, 5, PP_STATUS_OK, NONE, NONE, -1, NONE, NONE},
    {"rank worse", &RANK, 8, 6, true, 3, 2, 5, PP_STATUS_WARNING, NONE, NONE, -3, NONE, NONE},
    {"rank crit", &RANK, 8, 8, true, 3, 2, 5, PP_STATUS_CRITICAL, NONE, NONE, -5, NONE, NONE},
    /* completion: the value is already % of the annual target; no target needed */
    {"completion", &KEYPROJ, 12, 118.85, false, 0, 5, 15, PP_STATUS_OK, 118.85, 100, 18.85, NONE,
     NONE},
    {"completion behind", &KEYPROJ, 8, 50, true, 999, 5, 15, PP_STATUS_CRITICAL, 50, 66.67,
     -16.67, NONE, NONE},
    /* no target */
    {"cumulative no target", &FAI, 8, 192.2, false, 300, 5, 15, PP_STATUS_NO_TARGET, NONE, NONE,
     NONE, NONE, NONE},
    {"rate no target", &GROWTH, 8, 12.1, false, 10, 5, 15, PP_STATUS_NO_TARGET, NONE, NONE, NONE,
     NONE, NONE},
    {"rank no target", &RANK, 8, 2, false, 3, 2, 5, PP_STATUS_NO_TARGET, NONE, NONE, NONE, NONE,
     NONE},
    /* target 0 / negative: no completion possible for cumulative, a valid rate target */
    {"cumulative target 0", &FAI, 8, 192.2, true, 0, 5, 15, PP_STATUS_NO_TARGET, NONE, NONE,
     NONE, NONE, NONE},
    {"cumulative target < 0", &FAI, 8, 192.2, true, -5, 5, 15, PP_STATUS_NO_TARGET, NONE, NONE,
     NONE, NONE, NONE},
    {"rate target 0", &GROWTH, 8, -3.1, true, 0, 5, 15, PP_STATUS_OK, NONE, NONE, -3.10, NONE,
     NONE},
    {"rank target 0", &RANK, 8, 2, true, 0, 2, 5, PP_STATUS_NO_TARGET, NONE, NONE, NONE, NONE,
     NONE},
    {"nan target", &FAI, 8, 192.2, true, NAN, 5, 15, PP_STATUS_NO_TARGET, NONE, NONE, NONE, NONE,
     NONE},
};

static void check_field(const char *name, const char *field, bool has, double got,
                        double want)
{
    if (isnan(want)) {
        ck_assert_msg(!has, "%s: %s should be absent, got %g", name, field, got);
        return;
    }
    ck_assert_msg(has, "%s: %s missing", name, field);
    ck_assert_msg(fabs(pace_round2(got) - want) < 1e-9, "%s: %s = %.6f, want %.2f", name, field,
                  got, want);
}

START_TEST(test_evaluate)
{
    const eval_case *c = &eval_cases[_i];
    pp_indicator ind;
    pace_input in = input_for(c->ind, &ind, c->month, c->value, c->has_target, c->target);
    in.warn = c->warn;
    in.crit = c->crit;
    pace_result r;
    pace_evaluate(&in, &r);
    ck_assert_msg(r.status == c->status, "%s: status %s, want %s", c->name,
                  pp_status_name(r.status), pp_status_name(c->status));
    ck_assert_msg(r.judged == c->status, "%s: judged differs", c->name);
    ck_assert(!r.overdue);
    check_field(c->name, "completion_pct", r.has_completion, r.completion_pct, c->completion);
    check_field(c->name, "pace_pct", r.has_pace, r.pace_pct, c->pace);
    check_field(c->name, "gap", r.has_gap, r.gap, c->gap);
    check_field(c->name, "projected_pct", r.has_projected, r.projected_pct, c->projected);
    check_field(c->name, "needed_per_month", r.has_needed, r.needed_per_month, c->needed);
    ck_assert_msg(r.message[0] != '\0', "%s: empty message", c->name);
}
END_TEST

/* ---- messages ------------------------------------------------------------ */

typedef struct msg_case {
    const ind_spec *ind;
    int month;
    double value;
    bool has_target;
    double target;
    const char *message;
} msg_case;

static const msg_case msg_cases[] = {
    /* the example of docs/ARCHITECTURE.md, verbatim */
    {&FAI, 8, 192.2, true, 300,
     "湘潭经开区 固定资产投资 1-8月完成192.2亿元，为全年目标的64.1%，低于序时进度(66.7%)2.6个百分点。"},
    {&FDI, 8, 2690, true, 6000,
     "湘潭经开区 实际利用外资 1-8月完成2690万美元，为全年目标的44.8%，低于序时进度(66.7%)21.8个百分点。"},
    {&DOMESTIC, 8, 89, true, 140,
     "湘潭经开区 实际到位内资 1-8月完成89亿元，为全年目标的63.6%，低于序时进度(66.7%)3.1个百分点。"},
    {&FAI, 12, 310, true, 300,
     "湘潭经开区 固定资产投资 1-12月完成310亿元，为全年目标的103.3%，高于序时进度(100.0%)3.3个百分点。"},
    {&FAI, 8, 200, true, 300,
     "湘潭经开区 固定资产投资 1-8月完成200亿元，为全年目标的66.7%，与序时进度持平。"},
    {&FAI, 1, 20.25, true, 300,
     "湘潭经开区 固定资产投资 1月完成20.25亿元，为全年目标的6.8%，低于序时进度(8.3%)1.6个百分点。"},
    {&FAI, 8, 192.2, false, 0, "湘潭经开区 固定资产投资 1-8月完成192.2亿元，未设全年目标。"},
    {&FAI, 8, 192.2, true, 0,
     "湘潭经开区 固定资产投资 1-8月完成192.2亿元，全年目标(0亿元)不是正数，无法计算完成进度。"},
    {&KEYPROJ, 12, 118.85, false, 0,
     "湘潭经开区 重点项目完成率 1-12月完成全年目标的118.85%，高于序时进度(100.0%)18.9个百分点。"},
    {&KEYPROJ, 8, 50, false, 0,
     "湘潭经开区 重点项目完成率 1-8月完成全年目标的50%，低于序时进度(66.7%)16.7个百分点。"},
    {&GROWTH, 8, 12.1, true, 10,
     "湘潭经开区 规模以上工业增加值增速 1-8月为12.1%，高于目标(10%)2.1个百分点。"},
    {&GROWTH, 8, 5, true, 10, "湘潭经开区 规模以上工业增加值增速 1-8月为5%，低于目标(10%)5.0个百分点。"},
    {&GROWTH, 8, 10, true, 10, "湘潭经开区 规模以上工业增加值增速 1-8月为10%，与目标(10%)持平。"},
    {&GROWTH, 8, 12.1, false, 0, "湘潭经开区 规模以上工业增加值增速 1-8月为12.1%，未设目标。"},
    {&UNEMP, 8, 3.5, true, 4, "湘潭经开区 调查失业率 1-8月为3.5%，低于目标上限(4%)0.5个百分点。"},
    {&UNEMP, 8, 9.5, true, 4, "湘潭经开区 调查失业率 1-8月为9.5%，高于目标上限(4%)5.5个百分点。"},
    {&UNEMP, 8, 4, true, 4, "湘潭经开区 调查失业率 1-8月为4%，与目标上限(4%)持平。"},
    {&WAGE, 8, 12.5, true, 10, "湘潭经开区 人均月工资 1-8月为12.5万元，高于目标(10万元)2.5万元。"},
    {&RANK, 8, 6, true, 3, "湘潭经开区 全省排名 1-8月排名第6位，目标第3位，落后3位。"},
    {&RANK, 8, 1, true, 3, "湘潭经开区 全省排名 1-8月排名第1位，目标第3位，领先2位。"},
    {&RANK, 8, 3, true, 3, "湘潭经开区 全省排名 1-8月排名第3位，目标第3位，达到目标。"},
    {&RANK, 8, 2, false, 0, "湘潭经开区 全省排名 1-8月排名第2位，未设目标。"},
};

START_TEST(test_message)
{
    const msg_case *c = &msg_cases[_i];
    pp_indicator ind;
    pace_input in = input_for(c->ind, &ind, c->month, c->value, c->has_target, c->target);
    pace_result r;
    pace_evaluate(&in, &r);
    ck_assert_str_eq(r.message, c->message);
}
END_TEST

/* ---- staleness ----------------------------------------------------------- */

typedef struct stale_case {
    int y, m, d, due;
    int req_y, req_m; /* req_y 0: -1 expected */
} stale_case;

static const stale_case stale_cases[] = {
    {2021, 9, 15, 20, 2021, 7},
    {2021, 9, 20, 20, 2021, 7},  /* the due day itself is still in time */
    {2021, 9, 21, 20, 2021, 8},
    {2021, 2, 25, 20, 2020, 12}, /* January is not due on its own */
    {2021, 3, 20, 20, 2020, 12}, /* still January's turn: falls back to December */
    {2021, 3, 21, 20, 2021, 2},
    {2022, 1, 25, 20, 2021, 12}, /* year boundary */
    {2022, 1, 10, 20, 2021, 11},
    {2022, 2, 10, 20, 2021, 12},
    {2021, 12, 31, 20, 2021, 11},
    {2021, 2, 28, 31, 2020, 12}, /* due day clamped to the 28th: not yet past */
    {2021, 5, 1, 31, 2021, 3},
    {2021, 5, 31, 31, 2021, 3},
    {2021, 7, 1, 30, 2021, 5},
    {2021, 7, 2, 1, 2021, 6},
    {2021, 7, 1, 0, 2021, 5},    /* due day below 1 clamped to 1 */
    {2021, 13, 1, 20, 0, 0},
    {2021, 0, 1, 20, 0, 0},
    {2021, 5, 0, 20, 0, 0},
    {2021, 5, 32, 20, 0, 0},
    {0, 5, 1, 20, 0, 0},
};

START_TEST(test_required_period)
{
    const stale_case *c = &stale_cases[_i];
    int got = pace_required_period(c->y, c->m, c->d, c->due);
    int want = c->req_y == 0 ? -1 : pp_period_make(c->req_y, c->req_m);
    ck_assert_msg(got == want, "%04d-%02d-%02d due %d: got %d-%02d, want %d-%02d", c->y, c->m,
                  c->d, c->due, got < 0 ? -1 : pp_period_year(got),
                  got < 0 ? 0 : pp_period_month(got), c->req_y, c->req_m);
}
END_TEST

static void eval_today(const ind_spec *s, int y, int m, double value, double target, int ty,
                       int tm, int td, pace_result *r)
{
    pp_indicator ind;
    pace_input in = input_for(s, &ind, m, value, true, target);
    in.period = pp_period_make(y, m);
    in.today_year = ty;
    in.today_month = tm;
    in.today_day = td;
    pace_evaluate(&in, r);
}

START_TEST(test_overdue_evaluate)
{
    pace_result r;

    /* 2021-10-20: August is the latest due -> not overdue */
    eval_today(&FAI, 2021, 8, 192.2, 300, 2021, 10, 20, &r);
    ck_assert(!r.overdue);
    ck_assert_int_eq(r.overdue_period, -1);
    ck_assert_int_eq(r.status, PP_STATUS_OK);

    /* 2021-10-21: September overdue; the status stays the figure's (it was
     * "stale" before overdue became a flag of its own) */
    eval_today(&FAI, 2021, 8, 192.2, 300, 2021, 10, 21, &r);
    ck_assert(r.overdue);
    ck_assert_int_eq(r.overdue_period, pp_period_make(2021, 9));
    ck_assert_int_eq(r.status, PP_STATUS_OK);
    ck_assert_int_eq(r.judged, PP_STATUS_OK);
    ck_assert(r.has_gap);
    ck_assert_double_eq_tol(pace_round2(r.gap), -2.60, 1e-9);
    ck_assert_str_eq(r.message, "湘潭经开区 固定资产投资 1-8月完成192.2亿元，为全年目标的64.1%，"
                                "低于序时进度(66.7%)2.6个百分点（2021年1-9月数据逾期未报）。");

    /* a warning that is also overdue stays warning */
    eval_today(&FISCAL, 2021, 8, 25.6, 42, 2021, 11, 1, &r);
    ck_assert(r.overdue);
    ck_assert_int_eq(r.status, PP_STATUS_WARNING);
    ck_assert_int_eq(r.judged, PP_STATUS_WARNING);

    /* a critical one (实际利用外资 −21.83 pp) past the due day keeps critical */
    eval_today(&FDI, 2021, 8, 2690, 6000, 2021, 10, 25, &r);
    ck_assert(r.overdue);
    ck_assert_int_eq(r.overdue_period, pp_period_make(2021, 9));
    ck_assert_int_eq(r.status, PP_STATUS_CRITICAL);

    /* December 2021 is enough until 2022-03-20 (January is not due alone) */
    eval_today(&FAI, 2021, 12, 310, 300, 2022, 3, 20, &r);
    ck_assert(!r.overdue);
    eval_today(&FAI, 2021, 12, 310, 300, 2022, 3, 21, &r);
    ck_assert(r.overdue);
    ck_assert_int_eq(r.overdue_period, pp_period_make(2022, 2));
    ck_assert_str_eq(r.message, "湘潭经开区 固定资产投资 1-12月完成310亿元，为全年目标的103.3%，"
                                "高于序时进度(100.0%)3.3个百分点（2022年1-2月数据逾期未报）。");

    /* November 2021 on 2022-01-25: December is due */
    eval_today(&FAI, 2021, 11, 290, 300, 2022, 1, 25, &r);
    ck_assert(r.overdue);
    ck_assert(strstr(r.message, "（2021年1-12月数据逾期未报）。") != NULL);

    /* today_year 0 disables overdue */
    eval_today(&FAI, 2019, 1, 10, 300, 0, 0, 0, &r); /* gap 3.33 - 8.33 = -5 */
    ck_assert(!r.overdue);
    ck_assert_int_eq(r.status, PP_STATUS_WARNING);
    ck_assert_int_eq(r.judged, PP_STATUS_WARNING);

    /* no target and overdue: no_target stays */
    pp_indicator ind;
    pace_input in = input_for(&GROWTH, &ind, 6, 12.1, false, 0);
    in.today_year = 2021;
    in.today_month = 9;
    in.today_day = 1;
    pace_evaluate(&in, &r);
    ck_assert(r.overdue);
    ck_assert_int_eq(r.status, PP_STATUS_NO_TARGET);
    ck_assert_int_eq(r.judged, PP_STATUS_NO_TARGET);
    ck_assert_str_eq(r.message,
                     "湘潭经开区 规模以上工业增加值增速 1-6月为12.1%，未设目标（2021年1-7月数据逾期未报）。");
}
END_TEST

/* ---- a series with no figure yet (README no_data) ---------------------- */

typedef struct nofig_case {
    const char *name;
    bool has_target, has_due_target;
    int ty, tm, td;          /* today */
    pp_status status;
    bool overdue;
    int od_y, od_m;
    const char *message;
} nofig_case;

static const nofig_case nofig_cases[] = {
    {"target, not due yet (2021-02-10: only 2020-12 is due, no target for it)", true, false,
     2021, 2, 10, PP_STATUS_NO_DATA, false, 0, 0, "湘潭经开区 财税收入 尚无报送数据。"},
    {"target, 1-2月 due", true, true, 2021, 3, 21, PP_STATUS_NO_DATA, true, 2021, 2,
     "湘潭经开区 财税收入 尚无报送数据（2021年1-2月数据逾期未报）。"},
    {"target, September due", true, true, 2021, 10, 25, PP_STATUS_NO_DATA, true, 2021, 9,
     "湘潭经开区 财税收入 尚无报送数据（2021年1-9月数据逾期未报）。"},
    {"only last year's target, December due", false, true, 2021, 1, 21, PP_STATUS_NO_TARGET,
     true, 2020, 12, "湘潭经开区 财税收入 尚无报送数据（2020年1-12月数据逾期未报）。"},
    {"no clock", true, true, 0, 0, 0, PP_STATUS_NO_DATA, false, 0, 0,
     "湘潭经开区 财税收入 尚无报送数据。"},
};

START_TEST(test_no_figure)
{
    const nofig_case *c = &nofig_cases[_i];
    pp_indicator ind;
    make_indicator(&FISCAL, &ind);
    pace_input in = {.ind = &ind, .park_name = PARK, .warn = 5, .crit = 15, .no_figure = true,
                     .has_target = c->has_target, .target = 42, .has_due_target = c->has_due_target,
                     .today_year = c->ty, .today_month = c->tm, .today_day = c->td, .due_day = 20};
    pace_result r;
    pace_evaluate(&in, &r);
    ck_assert_msg(r.status == c->status, "%s: status %s", c->name, pp_status_name(r.status));
    ck_assert_msg(r.overdue == c->overdue, "%s: overdue %d", c->name, r.overdue);
    if (c->overdue)
        ck_assert_int_eq(r.overdue_period, pp_period_make(c->od_y, c->od_m));
    ck_assert(!r.has_gap && !r.has_completion && !r.has_pace);
    ck_assert_int_eq(r.streak, 0);
    ck_assert_str_eq(r.message, c->message);
}
END_TEST

/* ---- streaks, escalation and the relative rule (README) ----------------- */

typedef struct judge_case {
    const char *name;
    const ind_spec *spec;
    bool relative;
    int escalate;
    int m;                   /* month of 2021 */
    double value, target;
    int streak_before;
    pp_status status, judged;
    int streak;
    double shortfall;        /* NONE: no shortfall */
} judge_case;

static const judge_case judge_cases[] = {
    /* streak: warning or worse counts, ok resets */
    {"ok resets the streak", &FAI, false, 0, 8, 200, 300, 3, PP_STATUS_OK, PP_STATUS_OK, 0, NONE},
    {"first warning", &FISCAL, false, 0, 8, 25.6, 42, 0, PP_STATUS_WARNING, PP_STATUS_WARNING, 1, NONE},
    {"third warning, no escalation", &FISCAL, false, 0, 8, 25.6, 42, 2, PP_STATUS_WARNING,
     PP_STATUS_WARNING, 3, NONE},
    {"critical counts too", &FDI, false, 0, 8, 2690, 6000, 1, PP_STATUS_CRITICAL,
     PP_STATUS_CRITICAL, 2, NONE},
    /* escalate = 3 */
    {"escalate 3: second warning stays", &FISCAL, false, 3, 8, 25.6, 42, 1, PP_STATUS_WARNING,
     PP_STATUS_WARNING, 2, NONE},
    {"escalate 3: third warning is critical", &FISCAL, false, 3, 8, 25.6, 42, 2,
     PP_STATUS_CRITICAL, PP_STATUS_WARNING, 3, NONE},
    {"escalate 3: ok after warnings", &FISCAL, false, 3, 8, 28, 42, 5, PP_STATUS_OK, PP_STATUS_OK,
     0, NONE},
    {"escalate 1: every warning critical", &FISCAL, false, 1, 8, 25.6, 42, 0, PP_STATUS_CRITICAL,
     PP_STATUS_WARNING, 1, NONE},
    /* relative: 100*(pace - completion)/pace against warn 5 / crit 15 */
    {"relative: 64.07 of 66.67 is 3.9% short: ok (points: -2.6)", &FAI, true, 0, 8, 192.2, 300, 0,
     PP_STATUS_OK, PP_STATUS_OK, 0, 3.9},
    {"relative: 60 of 66.67 is 10% short: warning (points: -6.67 warning)", &FAI, true, 0, 8, 180,
     300, 0, PP_STATUS_WARNING, PP_STATUS_WARNING, 1, 10.0},
    {"relative: exactly 5% short is a warning", &FAI, true, 0, 6, 142.5, 300, 0,
     PP_STATUS_WARNING, PP_STATUS_WARNING, 1, 5.0},
    {"relative: 1-2月 pace 16.67, completion 13.33 -> 20% short: critical (points -3.3 ok)", &FAI,
     true, 0, 2, 40, 300, 0, PP_STATUS_CRITICAL, PP_STATUS_CRITICAL, 1, 20.0},
    {"relative: ahead of pace is ok", &FAI, true, 0, 8, 250, 300, 0, PP_STATUS_OK, PP_STATUS_OK, 0,
     -25.0},
    {"relative on completion kind: 50 of 66.67 -> 25% short: critical", &KEYPROJ, true, 0, 8, 50,
     0, 0, PP_STATUS_CRITICAL, PP_STATUS_CRITICAL, 1, 25.0},
    {"relative with pace 0 (zero-start profile, January): ok", &ZERO_START, true, 0, 1, 0, 300, 0,
     PP_STATUS_OK, PP_STATUS_OK, 0, NONE},
    {"relative and escalate together", &FAI, true, 2, 8, 180, 300, 1, PP_STATUS_CRITICAL,
     PP_STATUS_WARNING, 2, 10.0},
};

START_TEST(test_judge)
{
    const judge_case *c = &judge_cases[_i];
    pp_indicator ind;
    pace_input in = input_for(c->spec, &ind, c->m, c->value, true, c->target);
    ind.relative = c->relative;
    ind.escalate = c->escalate;
    in.streak_before = c->streak_before;
    in.due_day = 0; /* no clock anyway */
    pace_result r;
    pace_evaluate(&in, &r);
    ck_assert_msg(r.status == c->status, "%s: status %s", c->name, pp_status_name(r.status));
    ck_assert_msg(r.judged == c->judged, "%s: judged %s", c->name, pp_status_name(r.judged));
    ck_assert_msg(r.streak == c->streak, "%s: streak %d", c->name, r.streak);
    ck_assert_msg(r.escalated == (c->status != c->judged), "%s: escalated", c->name);
    if (isnan(c->shortfall))
        ck_assert_msg(!r.has_shortfall, "%s: has a shortfall", c->name);
    else
        ck_assert_msg(r.has_shortfall && fabs(pace_round2(r.shortfall_pct) - c->shortfall) < 0.01,
                      "%s: shortfall %g", c->name, r.shortfall_pct);
    if (r.escalated)
        ck_assert_msg(strstr(r.message, "连续") != NULL, "%s: %s", c->name, r.message);
}
END_TEST

/* ---- rounding, pace, expected -------------------------------------------- */

typedef struct round_case {
    double in, want;
} round_case;

static const round_case round_cases[] = {
    {2.605, 2.61},   {-2.605, -2.61}, {1.005, 1.01},     {-1.005, -1.01}, {0.125, 0.13},
    {0.285, 0.29},   {1.115, 1.12},   {2.6049, 2.60},    {-2.6049, -2.60}, {64.0666667, 64.07},
    {2.0999999999999996, 2.10},       {-4.999999999999999, -5.00},         {0, 0},
    {123456789.125, 123456789.13},    {1e17, 1e17},      {-1e17, -1e17},
};

START_TEST(test_round2)
{
    const round_case *c = &round_cases[_i];
    double got = pace_round2(c->in);
    ck_assert_msg(got == c->want, "pace_round2(%.17g) = %.17g, want %.17g", c->in, got, c->want);
}
END_TEST

START_TEST(test_round2_special)
{
    double z = pace_round2(-0.001);
    ck_assert(z == 0.0);
    ck_assert(!signbit(z));
    ck_assert(isnan(pace_round2(NAN)));
    ck_assert(isinf(pace_round2(INFINITY)));
    ck_assert(pace_round2(-INFINITY) < 0);
}
END_TEST

START_TEST(test_pace_at_and_expected)
{
    pp_indicator lin, front, rate, rank, compl;
    make_indicator(&FAI, &lin);
    make_indicator(&FRONT, &front);
    make_indicator(&GROWTH, &rate);
    make_indicator(&RANK, &rank);
    make_indicator(&KEYPROJ, &compl);

    for (int m = 1; m <= 12; m++) {
        ck_assert_double_eq_tol(pace_pct_at(&lin, m), 100.0 * m / 12, 1e-12);
        ck_assert_double_eq_tol(pace_pct_at(&front, m), front_loaded[m - 1], 1e-12);
    }
    ck_assert_double_eq_tol(pace_pct_at(NULL, 6), 50, 1e-12);
    ck_assert_double_eq_tol(pace_pct_at(&lin, 0), pace_pct_at(&lin, 1), 1e-12);
    ck_assert_double_eq_tol(pace_pct_at(&lin, 13), 100, 1e-12);

    int aug = pp_period_make(2021, 8);
    ck_assert_double_eq_tol(pace_expected(&lin, aug, 300), 200, 1e-9);
    ck_assert_double_eq_tol(pace_expected(&lin, pp_period_make(2021, 12), 300), 300, 1e-9);
    ck_assert_double_eq_tol(pace_expected(&front, pp_period_make(2021, 3), 250), 100, 1e-9);
    ck_assert_double_eq_tol(pace_expected(&rate, aug, 10), 10, 1e-12);
    ck_assert_double_eq_tol(pace_expected(&rank, aug, 3), 3, 1e-12);
    ck_assert_double_eq_tol(pace_expected(&compl, aug, 12345), 200.0 / 3, 1e-9);
}
END_TEST

/* ---- robustness ---------------------------------------------------------- */

START_TEST(test_long_names_truncated)
{
    /* 3-byte characters with a 1-byte shift so the cut falls mid-character */
    for (int shift = 0; shift < 3; shift++) {
        char name[1200];
        size_t n = 0;
        for (int i = 0; i < shift; i++)
            name[n++] = 'x';
        while (n + 3 < sizeof name) {
            memcpy(name + n, "园", 3);
            n += 3;
        }
        name[n] = '\0';
        pp_indicator ind;
        pace_input in = input_for(&FAI, &ind, 8, 192.2, true, 300);
        in.park_name = name;
        pace_result r;
        pace_evaluate(&in, &r);
        size_t len = strlen(r.message);
        ck_assert_uint_lt(len, sizeof r.message);
        ck_assert_uint_ge(len + 3, sizeof r.message - 1);
        ck_assert(text_utf8_valid(r.message, strlen(r.message), NULL));
        ck_assert_int_eq(r.status, PP_STATUS_OK);
    }
}
END_TEST

START_TEST(test_null_names_and_bad_value)
{
    pp_indicator ind;
    pace_input in = input_for(&FAI, &ind, 8, 192.2, true, 300);
    ind.label = NULL;
    ind.unit = NULL;
    in.park_name = NULL;
    pace_result r;
    pace_evaluate(&in, &r);
    ck_assert_str_eq(r.message, " fixed_asset_investment 1-8月完成192.2，为全年目标的64.1%，"
                                "低于序时进度(66.7%)2.6个百分点。");

    in.value = NAN;
    pace_evaluate(&in, &r);
    ck_assert_int_eq(r.status, PP_STATUS_NO_TARGET);
    ck_assert(!r.has_gap && !r.has_completion && !r.has_pace);
    ck_assert(!r.has_projected && !r.has_needed);
    ck_assert_str_eq(r.message, " fixed_asset_investment 1-8月数据无效。");
}
END_TEST

static Suite *pace_suite(void)
{
    Suite *s = suite_create("pace");
    TCase *tc = check_tcase(s, "core", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_evaluate, 0, (int)(sizeof eval_cases / sizeof eval_cases[0]));
    tcase_add_loop_test(tc, test_message, 0, (int)(sizeof msg_cases / sizeof msg_cases[0]));
    tcase_add_loop_test(tc, test_required_period, 0,
                        (int)(sizeof stale_cases / sizeof stale_cases[0]));
    tcase_add_test(tc, test_overdue_evaluate);
    tcase_add_loop_test(tc, test_no_figure, 0, (int)(sizeof nofig_cases / sizeof nofig_cases[0]));
    tcase_add_loop_test(tc, test_judge, 0, (int)(sizeof judge_cases / sizeof judge_cases[0]));
    tcase_add_loop_test(tc, test_round2, 0, (int)(sizeof round_cases / sizeof round_cases[0]));
    tcase_add_test(tc, test_round2_special);
    tcase_add_test(tc, test_pace_at_and_expected);
    tcase_add_test(tc, test_long_names_truncated);
    tcase_add_test(tc, test_null_names_and_bad_value);
    return s;
}

CHECK_MAIN(pace_suite)
