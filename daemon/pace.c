/*
 * pace.c — the pace engine (docs/ARCHITECTURE.md). Pure arithmetic over plain structs: no
 * I/O, no globals, no library but libm. For the latest figure of one series it
 * computes the completion of the annual target, the pace (序时进度) at that
 * month, the gap, the status (ok / warning / critical / no_target / no_data),
 * the streak and escalation, whether the next figure is overdue (a flag beside
 * the status, never replacing it), the projections of a cumulative series and
 * a one-sentence Chinese 通报 such as
 *
 *   湘潭经开区 固定资产投资 1-8月完成192.2亿元，为全年目标的64.1%，低于序时进度(66.7%)2.6个百分点。
 *
 * Choices documented here (and in pace.h):
 *  - status is judged on the gap rounded to 2 decimals (the figure JSON and the
 *    通报 table show), compared with the thresholds with a 1e-9 tolerance, so a
 *    gap that is mathematically -5 is "warning" at warn 5 despite floating error,
 *    and a shown gap never disagrees with its colour;
 *  - a cumulative target <= 0 cannot give a completion percentage, so it counts
 *    as no target (status no_target, the message says the target is not
 *    positive); a rank target < 1 is not a place and counts as no target too;
 *  - a non-finite target counts as no target; a non-finite value yields no
 *    figures at all (status no_target);
 *  - a figure is due by the end of day due_day of the next month (overdue
 *    from day due_day + 1), with due_day clamped to the length of the month;
 *  - rule = "relative" judges 100*(pace - completion)/pace, the shortfall as a
 *    share of the pace, with the same rounding and tolerance as the gap.
 */
#include "pace.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PACE_EPS 1e-9
#define PACE_MONTHS 12

/* ---- rounding ------------------------------------------------------------ */

/*
 * Rounds x to `scale` (100 for 2 decimals) half away from zero. The product
 * x*scale is nudged away from zero by a few units in the last place (at least
 * 1e-9) before rounding, so that decimal halves stored slightly below their
 * true value (2.605 is 2.60499999999999998224…) still round up in magnitude:
 * pace_round2(2.605) == 2.61 and pace_round2(-2.605) == -2.61. The nudge is far
 * below 0.005 for any magnitude where 2 decimals are representable at all.
 */
static double round_scaled(double x, double scale)
{
    if (!isfinite(x))
        return x;
    double y = x * scale;
    if (fabs(y) >= 4503599627370496.0) /* 2^52: no fractional part left */
        return x;
    double nudge = fmax(fabs(y) * 8.0 * 2.220446049250313e-16, PACE_EPS);
    double r = round(y + copysign(nudge, y)) / scale;
    return r + 0.0; /* turns -0.0 into 0.0 */
}

double pace_round2(double x)
{
    return round_scaled(x, 100.0);
}

static double round1(double x)
{
    return round_scaled(x, 10.0);
}

/* ---- calendar ------------------------------------------------------------ */

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Month 1..12 of a period; out-of-range periods are clamped rather than trusted. */
static int period_month(int period)
{
    if (period < 0)
        return 1;
    return pp_period_month(period);
}

/* ---- pace ---------------------------------------------------------------- */

double pace_pct_at(const pp_indicator *ind, int month)
{
    month = clamp_int(month, 1, PACE_MONTHS);
    if (ind != NULL && ind->has_pace)
        return ind->pace[month - 1];
    return 100.0 * month / PACE_MONTHS;
}

double pace_expected(const pp_indicator *ind, int period, double target)
{
    int m = period_month(period);
    switch (ind->kind) {
    case PP_KIND_CUMULATIVE:
        return target * pace_pct_at(ind, m) / 100.0;
    case PP_KIND_COMPLETION:
        return pace_pct_at(ind, m);
    case PP_KIND_RATE:
    case PP_KIND_RANK:
    default:
        return target;
    }
}

int pace_required_period(int today_year, int today_month, int today_day, int due_day)
{
    if (today_year <= 0 || today_month < 1 || today_month > 12 || today_day < 1 ||
        today_day > 31)
        return -1;
    int due = clamp_int(due_day, 1, days_in_month(today_year, today_month));
    /* Past the due day of this month: last month's figure is due; else the one before. */
    int req = pp_period_make(today_year, today_month) - (today_day > due ? 1 : 2);
    /* January is published with February: its requirement falls back to December. */
    if (pp_period_month(req) == 1)
        req -= 1;
    return req;
}

/* status from a gap: see the top of the file for the rounding rule. */
static pp_status judge_gap(double gap, double warn, double crit)
{
    double g = pace_round2(gap);
    if (g <= -crit + PACE_EPS)
        return PP_STATUS_CRITICAL;
    if (g <= -warn + PACE_EPS)
        return PP_STATUS_WARNING;
    return PP_STATUS_OK;
}

/* ---- message ------------------------------------------------------------- */

typedef struct msgbuf {
    char *p;
    size_t cap; /* bytes available including the NUL */
    size_t len;
} msgbuf;

/* Cuts a truncated string back to the last complete UTF-8 character. */
static void utf8_trim_tail(char *s, size_t *len)
{
    size_t n = *len;
    size_t i = n;
    /* walk back over at most 3 continuation bytes to the lead byte */
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0) {
        *len = n;
        return;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : (lead >= 0xF0 ? 4 : (lead >= 0xE0 ? 3 : 2));
    if (n - (i - 1) < need) {
        n = i - 1;
        s[n] = '\0';
    }
    *len = n;
}

__attribute__((format(printf, 2, 3))) static void msg_add(msgbuf *b, const char *fmt, ...)
{
    if (b->len + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->p[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        b->len = b->cap - 1;
        utf8_trim_tail(b->p, &b->len);
        return;
    }
    b->len += (size_t)n;
}

/* A value with up to 2 decimals and no trailing zeros: 192.2, 2690, 89, -3.15. */
static const char *fmt_value(double v, char *buf, size_t len)
{
    if (!isfinite(v) || fabs(v) >= 1e15) {
        snprintf(buf, len, "%g", v);
        return buf;
    }
    snprintf(buf, len, "%.2f", pace_round2(v));
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *end = buf + strlen(buf);
        while (end > dot + 1 && end[-1] == '0')
            *--end = '\0';
        if (end == dot + 1)
            *dot = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, len, "0");
    return buf;
}

/* A percentage or a number of points with exactly one decimal: 64.1, 2.6. */
static const char *fmt_pct(double v, char *buf, size_t len)
{
    if (!isfinite(v) || fabs(v) >= 1e15)
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "%.1f", round1(v));
    return buf;
}

/* "1月" or "1-M月" */
static void msg_period(msgbuf *b, int m)
{
    if (m == 1)
        msg_add(b, "1月");
    else
        msg_add(b, "1-%d月", m);
}

static bool unit_is_percent(const char *unit)
{
    return strcmp(unit, "%") == 0 || strcmp(unit, "％") == 0;
}

/* "<gap in points>个百分点" for % units, "<gap><unit>" for levels. */
static void msg_rate_amount(msgbuf *b, double amount, const char *unit)
{
    char g[64];
    if (unit_is_percent(unit))
        msg_add(b, "%s个百分点", fmt_pct(amount, g, sizeof g));
    else
        msg_add(b, "%s%s", fmt_value(amount, g, sizeof g), unit);
}

/* "低于序时进度(66.7%)2.6个百分点", "高于…", or "与序时进度持平" when it shows as 0.0. */
static void msg_pace_words(msgbuf *b, const pace_result *r)
{
    char p[64], g[64];
    if (round1(fabs(r->gap)) == 0.0)
        msg_add(b, "与序时进度持平");
    else
        msg_add(b, "%s序时进度(%s%%)%s个百分点", r->gap < 0 ? "低于" : "高于",
                fmt_pct(r->pace_pct, p, sizeof p), fmt_pct(fabs(r->gap), g, sizeof g));
}

/* The gap's words of the message: msg_pace_words for cumulative and
 * completion, "低于|高于目标(t%)g个百分点" or "与目标(t%)持平" for rates,
 * "落后|领先n位" or "达到目标" for ranks; nothing without a gap. */
static void msg_gap(msgbuf *b, const pp_indicator *ind, double value, double target,
                    const pace_result *r)
{
    const char *unit = ind->unit ? ind->unit : "";
    char t[64], g[64];
    if (!r->has_gap)
        return;
    switch (ind->kind) {
    case PP_KIND_CUMULATIVE:
    case PP_KIND_COMPLETION:
        msg_pace_words(b, r);
        break;
    case PP_KIND_RATE: {
        const char *shown_unit = unit_is_percent(unit) ? "%" : unit;
        fmt_value(target, t, sizeof t);
        /* Compare at the shown precision so "持平" matches what is printed. */
        double diff = value - target;
        bool even = unit_is_percent(unit) ? round1(fabs(diff)) == 0.0
                                          : pace_round2(fabs(diff)) == 0.0;
        const char *goal = ind->direction == PP_DIR_LOWER ? "目标上限" : "目标";
        if (even) {
            msg_add(b, "与%s(%s%s)持平", goal, t, shown_unit);
            break;
        }
        msg_add(b, "%s%s(%s%s)", diff < 0 ? "低于" : "高于", goal, t, shown_unit);
        msg_rate_amount(b, fabs(diff), shown_unit);
        break;
    }
    case PP_KIND_RANK:
        if (pace_round2(r->gap) == 0.0)
            msg_add(b, "达到目标");
        else
            msg_add(b, "%s%s位", r->gap < 0 ? "落后" : "领先", fmt_value(fabs(r->gap), g, sizeof g));
        break;
    default:
        break;
    }
}

void pace_gap_words(const pp_indicator *ind, double value, double target, const pace_result *r,
                    char *out, size_t len)
{
    msgbuf b = { out, len, 0 };
    if (len == 0)
        return;
    out[0] = '\0';
    msg_gap(&b, ind, value, target, r);
}

static void build_message(const pace_input *in, const pace_result *r, int required,
                          char *out, size_t outlen)
{
    const pp_indicator *ind = in->ind;
    const char *park = in->park_name ? in->park_name : "";
    const char *label = ind->label ? ind->label : ind->id;
    const char *unit = ind->unit ? ind->unit : "";
    int m = period_month(in->period);
    char v[64], t[64], c[64];
    msgbuf b = {out, outlen, 0};
    out[0] = '\0';

    msg_add(&b, "%s %s ", park, label);
    if (in->no_figure) {
        msg_add(&b, "尚无报送数据");
        goto tail;
    }
    msg_period(&b, m);
    if (!isfinite(in->value)) {
        msg_add(&b, "数据无效");
        goto tail;
    }
    fmt_value(in->value, v, sizeof v);

    switch (ind->kind) {
    case PP_KIND_CUMULATIVE:
        msg_add(&b, "完成%s%s，", v, unit);
        if (!r->has_gap) {
            if (in->has_target && isfinite(in->target))
                msg_add(&b, "全年目标(%s%s)不是正数，无法计算完成进度",
                        fmt_value(in->target, t, sizeof t), unit);
            else
                msg_add(&b, "未设全年目标");
            break;
        }
        msg_add(&b, "为全年目标的%s%%，", fmt_pct(r->completion_pct, c, sizeof c));
        msg_gap(&b, ind, in->value, in->target, r);
        break;
    case PP_KIND_COMPLETION:
        msg_add(&b, "完成全年目标的%s%%，", v);
        msg_gap(&b, ind, in->value, in->target, r);
        break;
    case PP_KIND_RATE: {
        const char *shown_unit = unit_is_percent(unit) ? "%" : unit;
        msg_add(&b, "为%s%s，", v, shown_unit);
        if (!r->has_gap) {
            msg_add(&b, "未设目标");
            break;
        }
        msg_gap(&b, ind, in->value, in->target, r);
        break;
    }
    case PP_KIND_RANK:
        msg_add(&b, "排名第%s位，", v);
        if (!r->has_gap) {
            msg_add(&b, "未设目标");
            break;
        }
        msg_add(&b, "目标第%s位，", fmt_value(in->target, t, sizeof t));
        msg_gap(&b, ind, in->value, in->target, r);
        break;
    default:
        msg_add(&b, "为%s%s", v, unit);
        break;
    }

    if (r->escalated)
        msg_add(&b, "，连续%d期预警，升为严重", r->streak);
tail:
    if (r->overdue) {
        msg_add(&b, "（%d年", pp_period_year(required));
        msg_period(&b, pp_period_month(required));
        msg_add(&b, "数据逾期未报）");
    }
    msg_add(&b, "。");
}

/* ---- evaluation ---------------------------------------------------------- */

void pace_evaluate(const pace_input *in, pace_result *out)
{
    memset(out, 0, sizeof *out);
    const pp_indicator *ind = in->ind;
    int m = period_month(in->period);
    bool value_ok = isfinite(in->value);
    bool target_ok = in->has_target && isfinite(in->target);
    double target = in->target;

    out->status = PP_STATUS_NO_TARGET;
    switch (ind->kind) {
    case PP_KIND_CUMULATIVE:
        /* A target <= 0 cannot give a completion percentage: not assessed. */
        if (!value_ok || !target_ok || target <= 0.0)
            break;
        out->has_completion = true;
        out->completion_pct = 100.0 * in->value / target;
        out->has_pace = true;
        out->pace_pct = pace_pct_at(ind, m);
        out->has_gap = true;
        out->gap = out->completion_pct - out->pace_pct;
        if (out->pace_pct > 0.0) {
            out->has_projected = true;
            out->projected_pct = out->completion_pct * 100.0 / out->pace_pct;
        }
        if (m < PACE_MONTHS) {
            out->has_needed = true;
            out->needed_per_month = (target - in->value) / (PACE_MONTHS - m);
        }
        break;
    case PP_KIND_COMPLETION:
        /* The value already is a percentage of the annual target: no target needed. */
        if (!value_ok)
            break;
        out->has_completion = true;
        out->completion_pct = in->value;
        out->has_pace = true;
        out->pace_pct = pace_pct_at(ind, m);
        out->has_gap = true;
        out->gap = in->value - out->pace_pct;
        break;
    case PP_KIND_RATE:
        if (!value_ok || !target_ok)
            break;
        out->has_gap = true;
        out->gap = ind->direction == PP_DIR_LOWER ? target - in->value : in->value - target;
        break;
    case PP_KIND_RANK:
        /* Places start at 1: a target below that is not a target. */
        if (!value_ok || !target_ok || target < 1.0)
            break;
        out->has_gap = true;
        out->gap = target - in->value;
        break;
    default:
        break;
    }
    if (out->has_gap) {
        double g = out->gap;
        if (ind->relative && out->has_pace && out->has_completion) {
            out->has_shortfall = out->pace_pct > 0.0;
            out->shortfall_pct = out->has_shortfall
                                     ? 100.0 * (out->pace_pct - out->completion_pct) / out->pace_pct
                                     : 0.0;
            g = -out->shortfall_pct;
        }
        out->status = judge_gap(g, in->warn, in->crit);
    }
    if (in->no_figure) {
        memset(out, 0, sizeof *out);
        out->status = in->has_target ? PP_STATUS_NO_DATA : PP_STATUS_NO_TARGET;
    }
    out->judged = out->status;
    if (out->status == PP_STATUS_WARNING || out->status == PP_STATUS_CRITICAL)
        out->streak = (in->streak_before > 0 ? in->streak_before : 0) + 1;
    if (ind->escalate > 0 && out->status == PP_STATUS_WARNING && out->streak >= ind->escalate) {
        out->status = PP_STATUS_CRITICAL;
        out->escalated = true;
    }

    int required = -1;
    out->overdue_period = -1;
    if (in->today_year != 0) {
        required = pace_required_period(in->today_year, in->today_month, in->today_day,
                                        in->due_day);
        if (required >= 0 && (in->no_figure ? in->has_due_target : in->period < required)) {
            out->overdue = true;
            out->overdue_period = required;
        }
    }
    build_message(in, out, required, out->message, sizeof out->message);
}
