/*
 * pace.h — the pace engine (docs/ARCHITECTURE.md): pure arithmetic over plain structs, no
 * I/O and no library. Given an indicator, a park's thresholds, the latest
 * figure of a series, its annual target and today's date, it computes the
 * completion, the pace (序时进度), the gap, the status, the projections and
 * the one-sentence Chinese 通报 message.
 */
#ifndef PP_PACE_H
#define PP_PACE_H

#include "model.h"

typedef struct pace_input {
    const pp_indicator *ind;
    const char *park_name;   /* for the message */
    double warn, crit;       /* from pp_catalog_thresholds() */
    int period;              /* latest period of the series (ignored with no_figure) */
    double value;
    bool has_target;
    double target;           /* annual target for pp_period_year(period); with
                                no_figure: whether the current year has one */
    bool no_figure;          /* the series has no figure yet: no_data (with a target)
                                or no_target, and overdue from the first due month
                                when has_due_target */
    bool has_due_target;     /* no_figure: a target for the year of the month due */
    int streak_before;       /* consecutive periods before `period` in warning or
                                worse (1-2月 one period); 0 when the one before was not */
    /* today's local date in the configured timezone; year 0 disables overdue */
    int today_year, today_month, today_day;
    int due_day;             /* the figure for M is due by this day of M+1 */
} pace_input;

typedef struct pace_result {
    pp_status status;        /* the judgement of the latest figure (never about lateness) */
    pp_status judged;        /* the status from the gap alone, before escalation */
    bool escalated;          /* warning turned critical by the indicator's escalate */
    int streak;              /* consecutive periods ending at this one in warning or worse */
    bool overdue;            /* the figure of overdue_period has not arrived in time */
    int overdue_period;      /* the latest month that is due, when overdue; else -1 */
    bool has_completion;  double completion_pct;   /* cumulative, completion */
    bool has_pace;        double pace_pct;         /* cumulative, completion */
    bool has_gap;         double gap;              /* pp (places for rank) */
    bool has_shortfall;   double shortfall_pct;    /* rule = "relative": 100*(pace-completion)/pace */
    bool has_projected;   double projected_pct;    /* cumulative with a target */
    bool has_needed;      double needed_per_month; /* cumulative with a target, M < 12 */
    char message[512];       /* UTF-8 Chinese sentence, NUL-terminated; cut at a
                                character boundary if the names are very long */
} pace_result;

/* The pace percentage for month 1..12 (linear 100*M/12 or the indicator's
 * profile ind->pace[M-1]); a month outside 1..12 is clamped. ind may be NULL
 * (linear). */
double pace_pct_at(const pp_indicator *ind, int month);

/* The value of the RRD `pace` DS for month `period` given the annual target:
 * the amount expected by pace, target*pace_pct/100 (cumulative), the target
 * (rate, rank), the pace percentage (completion, target unused). The caller
 * writes unknown where there is no target (except for completion). */
double pace_expected(const pp_indicator *ind, int period, double target);

/* The latest period whose figure must have arrived at today's date (a
 * pp_period_make() value): a series whose latest period is before it is overdue.
 * The figure for month M is due by the end of day due_day of month M+1, so on
 * a day after due_day month m-1 is required, else month m-2 (2021-09-15, due
 * 20 -> 2021-07; 2021-09-21 -> 2021-08). due_day is clamped to 1..length of
 * the month. January is not due on its own: a January requirement becomes
 * December of the year before (2021-02-25 -> 2020-12). Returns -1 for an
 * impossible date (year <= 0, month outside 1..12, day outside 1..31). */
int pace_required_period(int today_year, int today_month, int today_day, int due_day);

/* Fills *out (entirely overwritten) for one series; in->ind must not be NULL.
 * Status: critical if gap <= -crit, else warning if gap <= -warn, else ok,
 * judged on the gap rounded to 2 decimals (pace_round2) with a 1e-9 tolerance,
 * so a gap of exactly -warn is a warning whatever the floating error and the
 * colour matches the gap shown. With ind->relative (cumulative, completion)
 * the shortfall 100*(pace-completion)/pace, rounded the same way, is compared
 * with warn/crit instead (a pace of 0 expects nothing yet: ok). no_target when
 * no usable target: no target, a non-finite one, a cumulative target <= 0 (no
 * completion can be computed) or a rank target < 1; completion never needs a
 * target. A non-finite value gives no figures and no_target. With no_figure:
 * no_data when has_target, else no_target, and no figures.
 * streak = streak_before + 1 when the judged status is warning or critical,
 * else 0; with ind->escalate = N > 0 a warning whose streak is >= N is critical
 * (escalated; the message says so).
 * Overdue, beside the status and never changing it: with in->today_year != 0
 * and in->period before pace_required_period(today, due_day) (with no_figure:
 * when has_due_target), overdue is set and overdue_period is that required
 * period; the message then ends "（YYYY年1-M月数据逾期未报）。".
 * Message forms (values with up to 2 decimals, percentages and points with 1):
 *   cumulative: "<park> <label> 1-M月完成<v><unit>，为全年目标的<c>%，低于|高于序时进度(<p>%)<g>个百分点。"
 *               or "…，与序时进度持平。" or "…完成<v><unit>，未设全年目标。"
 *   completion: "<park> <label> 1-M月完成全年目标的<v>%，低于|高于序时进度(<p>%)<g>个百分点。"
 *   rate:       "<park> <label> 1-M月为<v>%，低于|高于目标(<t>%)<g>个百分点。" — with
 *               direction lower "目标上限" instead of "目标" (高于目标上限 is bad);
 *               "与目标(…)持平"; a unit other than % shows the difference in that unit;
 *               "…，未设目标。" without a target.
 *   rank:       "<park> <label> 1-M月排名第<v>位，目标第<t>位，落后|领先<n>位。" / "达到目标。"
 *               / "…，未设目标。"
 *   no figure:  "<park> <label> 尚无报送数据。"
 * Month 1 is written "1月". */
void pace_evaluate(const pace_input *in, pace_result *out);

/* The gap's words of the message pace_evaluate writes for r (value and
 * target being its input's): "低于序时进度(66.7%)2.6个百分点" or "与序时进度持平"
 * (cumulative, completion), "高于目标(5%)1.0个百分点" (rate), "落后2位" or
 * "达到目标" (rank); "" when r has no gap. Cut at a character boundary to
 * fit len. */
void pace_gap_words(const pp_indicator *ind, double value, double target, const pace_result *r,
                    char *out, size_t len);

/* Rounds to 2 decimals half away from zero, as JSON carries percentages and
 * points, robust to binary representation: 2.605 -> 2.61, -2.605 -> -2.61,
 * never -0. Non-finite values are returned as they are. */
double pace_round2(double x);

#endif
