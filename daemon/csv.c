/*
 * csv.c — the CSV reader of README, Feeding figures: turns the bytes of one input (a spool
 * file, an exec collector's output, a POST body, a workbook sheet turned into
 * CSV) into validated observations or targets, or into a list of errors with
 * line numbers and reasons.
 *
 * The work is done in passes over one buffer: the encoding is settled
 * (UTF-8, BOM stripped, otherwise GB18030 through iconv); an RFC 4180 record
 * reader hands out one record at a time with the physical line it starts on;
 * the header is found and decides the layout (observations, targets or wide)
 * and maps each column to a role; every data record is then checked against
 * the catalogue and turned into pp_obs or pp_target. Bad rows do not stop the
 * reader: it collects every error so that the sender can fix a file in one
 * go. The reader is pure: no file I/O, no global state, nothing logged.
 *
 * Files as Excel leaves them (README "Feeding figures"):
 *  - the header is the first of the first CSV_HEADER_SCAN non-blank records
 *    that names a park column and a period, indicator, value, year or
 *    indicator column; the lines above it (a title, "单位：亿元") are skipped.
 *    When none does, the record with the most cells is taken, so that its
 *    errors ("unknown column '园区名称' (did you mean '园区'?)") are reported.
 *  - a header cell may carry a unit in brackets, full or half width:
 *    固定资产投资（亿元）, 数值(万元), 同比(%): cells of that column without a
 *    unit of their own are in that unit, converted like units in values.
 *  - a record right under the header whose cells say 累计 / 本月累计 / 1-N月 /
 *    累计值 (the value) and 同比 / 增速 / 同比增长 (the yoy) under indicator
 *    cells is the second row of a two-row header: the indicator's cell is
 *    merged across its columns (repeated in each, or in the first only).
 *    本月, 目标, 完成%, 较序时, 状态… under an indicator are ignored.
 *  - yoy: a column 同比 / 同比增长 / 增速 / 增长 / yoy (with or without (%)) in
 *    an observations file; in a wide table `<indicator>同比` /
 *    `<indicator>增速` beside the indicator's column, or a bare 同比 right
 *    after it.
 *  - a park is its id or its name; 园区代码 and 指标代码 (ids) beside 园区 and
 *    指标 (names) are read as the ids, the names not checked.
 *  - rows whose park cell is 合计, 小计, 总计, 全省, 全市 (spaces ignored:
 *    "合  计") and note lines under the table (注：…, 数据来源：…, alone in the
 *    first cell) are skipped and listed in csv_result.skipped.
 *  - the 通报 parkpulse exports (report.c: CSV, and layout=wide) reads back:
 *    its derived columns — 目标, 完成率(%), 序时进度(%), 差距(百分点), 排名,
 *    状态 and status (the pace status, twice), 说明 — are ignored; a header
 *    with 序时进度, 差距 or 完成率 is such a table.
 *
 * Every reason is Chinese first, then English, as "<中文> / <English>"
 * (internally the two halves are kept apart by WHY_SEP until they are
 * written out, so that a reason can be put inside another).
 */
#include "csv.h"

#include "text.h"
#include "vec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reasons are cut to fit (at a character boundary, by text_copy_utf8): every
 * snprintf into a reason may truncate, on purpose. */
#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define WHY_MAX CSV_REASON_MAX /* = sizeof(csv_error.reason) */
#define SHOW_MAX 96            /* bytes of an offending text quoted in a reason */
#define WHY_SEP '\x1f'         /* between the Chinese and the English half, inside */
#define CSV_HEADER_SCAN 20     /* non-blank records looked at for the header */
#define UNIT_MAX 32

/* ======================================================================
 * Small helpers
 * ====================================================================== */

/* Copies s into buf for quoting in a message: at most SHOW_MAX bytes, cut at
 * a character boundary, with "…" when cut; control characters (a newline in
 * a quoted field) become spaces, so that a reason stays on one line. */
static const char *show(const char *s, char *buf, size_t len)
{
    if (s == NULL)
        s = "";
    size_t n = text_copy_utf8(buf, len, s);
    if (s[n] != '\0' && len > 8) {
        n = text_copy_utf8(buf, len - 3, s);
        memcpy(buf + n, "\xE2\x80\xA6", 4);
    }
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return buf;
}

/* Writes zh, WHY_SEP, en into why: two formats of the same arguments, in the
 * same order (the English one is checked by the compiler). */
static void vset_why(char *why, size_t whylen, const char *zh, const char *en, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(why, whylen, zh, ap);
    if (n < 0) {
        why[0] = '\0';
        n = 0;
    }
    if ((size_t)n + 2 < whylen) {
        why[n] = WHY_SEP;
        int m = vsnprintf(why + n + 1, whylen - (size_t)n - 1, en, ap2);
        if (m < 0)
            why[n] = '\0';
    }
    va_end(ap2);
    if (strlen(why) + 1 >= whylen) /* never leave half a UTF-8 character */
        text_copy_utf8(why, whylen, why);
}

static void set_why(char *why, size_t whylen, const char *zh, const char *en, ...)
    __attribute__((format(printf, 4, 5)));

static void set_why(char *why, size_t whylen, const char *zh, const char *en, ...)
{
    if (why == NULL || whylen == 0)
        return;
    va_list ap;
    va_start(ap, en);
    vset_why(why, whylen, zh, en, ap);
    va_end(ap);
}

/* The two halves of an inside reason (English empty when there is none). */
static void why_split(const char *why, char *zh, char *en, size_t len)
{
    const char *sep = strchr(why, WHY_SEP);
    if (sep == NULL) {
        text_copy_utf8(zh, len, why);
        en[0] = '\0';
        return;
    }
    size_t n = (size_t)(sep - why) < len ? (size_t)(sep - why) : len - 1;
    memcpy(zh, why, n);
    zh[n] = '\0';
    text_copy_utf8(zh, len, zh);
    text_copy_utf8(en, len, sep + 1);
}

/* why = zh, WHY_SEP, en: for halves formatted apart. */
static void why_join(char *why, size_t whylen, const char *zh, const char *en)
{
    snprintf(why, whylen, "%s%c%s", zh, WHY_SEP, en);
    text_copy_utf8(why, whylen, why);
}

/* why = zh_prefix + inner's Chinese, WHY_SEP, en_prefix + inner's English. */
static void why_prefix(char *why, size_t whylen, const char *zh_prefix, const char *en_prefix,
                       const char *inner)
{
    char zh[WHY_MAX], en[WHY_MAX], a[WHY_MAX], b[WHY_MAX];
    why_split(inner, zh, en, sizeof zh);
    snprintf(a, sizeof a, "%s%s", zh_prefix, zh);
    snprintf(b, sizeof b, "%s%s", en_prefix, en);
    text_copy_utf8(a, sizeof a, a);
    text_copy_utf8(b, sizeof b, b);
    why_join(why, whylen, a, b);
}

/* An inside reason as people read it: "<中文> / <English>", in place. */
static void why_public(char *why, size_t whylen)
{
    char *sep = strchr(why, WHY_SEP);
    if (sep == NULL)
        return;
    char en[WHY_MAX];
    text_copy_utf8(en, sizeof en, sep + 1);
    snprintf(sep, whylen - (size_t)(sep - why), " / %s", en);
    text_copy_utf8(why, whylen, why);
}

static void ascii_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Copies at most cap-1 bytes of src into dst, folds full-width characters and
 * trims. Returns -1 when src does not fit. */
static int fold_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    text_fold_ascii(dst);
    text_trim(dst);
    return 0;
}

static bool starts(const char *p, const char *prefix)
{
    return strncmp(p, prefix, strlen(prefix)) == 0;
}

static bool ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Levenshtein distance between la and lb elements of w bytes each; row has
 * room for lb + 1 entries. */
static size_t levenshtein(const void *a, size_t la, const void *b, size_t lb, size_t w, size_t *row)
{
    const unsigned char *pa = a, *pb = b;
    if (la == 0)
        return lb;
    if (lb == 0)
        return la;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (memcmp(pa + (i - 1) * w, pb + (j - 1) * w, w) != 0);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

size_t csv_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = malloc((lb + 1) * sizeof *row);
    if (row == NULL)
        return SIZE_MAX;
    size_t d = levenshtein(a, la, b, lb, 1, row);
    free(row);
    return d;
}

#define SUGGEST_CHARS 128 /* longer keys and candidates are compared by their start */

/* Levenshtein distance over characters (a Chinese character is one). */
static size_t char_distance(const uint32_t *a, size_t la, const uint32_t *b, size_t lb)
{
    size_t row[SUGGEST_CHARS + 1];
    return levenshtein(a, la, b, lb, sizeof *a, row);
}

/* The "did you mean" machinery: keeps the closest candidate seen, by
 * characters; a candidate of two characters or more inside the key (园区 in
 * 园区名称) or the key inside a candidate counts as close. */
typedef struct {
    const char *key;
    uint32_t cp[SUGGEST_CHARS];
    size_t n;
    const char *best;
    size_t dist;
} suggester;

static void suggest_init(suggester *sg, const char *key)
{
    char lower[CSV_MAX_FIELD + 1];
    sg->key = key;
    fold_copy(lower, sizeof lower, key) == 0 ? (void)0 : (void)text_copy_utf8(lower, sizeof lower, key);
    ascii_lower(lower);
    sg->n = text_code_points(lower, sg->cp, SUGGEST_CHARS);
    if (sg->n > SUGGEST_CHARS)
        sg->n = SUGGEST_CHARS;
    sg->best = NULL;
    sg->dist = SIZE_MAX;
}

static bool cp_contains(const uint32_t *hay, size_t nh, const uint32_t *needle, size_t nn)
{
    for (size_t i = 0; nn > 0 && i + nn <= nh; i++)
        if (memcmp(hay + i, needle, nn * sizeof *hay) == 0)
            return true;
    return false;
}

static void suggest_try(suggester *sg, const char *cand)
{
    uint32_t cp[SUGGEST_CHARS];
    if (cand == NULL || cand[0] == '\0')
        return;
    size_t n = text_code_points(cand, cp, SUGGEST_CHARS);
    if (n > SUGGEST_CHARS)
        n = SUGGEST_CHARS;
    size_t d = char_distance(sg->n > 0 ? sg->cp : cp, sg->n, cp, n);
    size_t shorter = n < sg->n ? n : sg->n;
    if (shorter >= 2 && (cp_contains(sg->cp, sg->n, cp, n) || cp_contains(cp, n, sg->cp, sg->n)))
        d = 1; /* 园区 in 园区名称, 湘潭经开区 in 湘潭经开区管委会 */
    if (d < sg->dist) {
        sg->dist = d;
        sg->best = cand;
    }
}

/* true when the best candidate is close enough to suggest. */
static bool suggest_close(const suggester *sg)
{
    size_t limit = sg->n / 3 > 2 ? sg->n / 3 : 2;
    return sg->best != NULL && sg->dist <= limit && sg->dist < sg->n;
}

/* Writes "未知<zh>“<key>”（是否应为“<best>”？） / unknown <what> '<key>' (did
 * you mean '<best>'?)", the suggestion when a candidate is close enough. */
static void suggest_why(const suggester *sg, const char *zh, const char *what, char *why,
                        size_t whylen)
{
    char k[SHOW_MAX + 4], a[WHY_MAX], b[WHY_MAX];
    show(sg->key, k, sizeof k);
    if (suggest_close(sg)) {
        snprintf(a, sizeof a, "未知%s“%s”（是否应为“%s”？）", zh, k, sg->best);
        snprintf(b, sizeof b, "unknown %s '%s' (did you mean '%s'?)", what, k, sg->best);
    } else {
        snprintf(a, sizeof a, "未知%s“%s”", zh, k);
        snprintf(b, sizeof b, "unknown %s '%s'", what, k);
    }
    why_join(why, whylen, a, b);
}
/* ======================================================================
 * Periods
 * ====================================================================== */

/* A number 1..99 written in ASCII digits (up to 3 digits, so that "13" and
 * "100" reach the range check) or in Chinese numerals (一 … 十二, 两).
 * Advances *pp; returns -1 when there is no number. */
static int parse_small_number(const char **pp)
{
    const char *p = *pp;
    if (isdigit((unsigned char)*p)) {
        int v = 0, n = 0;
        while (isdigit((unsigned char)*p) && n < 3) {
            v = v * 10 + (*p - '0');
            p++, n++;
        }
        if (isdigit((unsigned char)*p))
            return -1;
        *pp = p;
        return v;
    }
    static const char *const digits[] = {"一", "二", "三", "四", "五", "六", "七", "八", "九"};
    int tens = -1, units = 0;
    for (int pass = 0; pass < 3; pass++) {
        int d = 0;
        if (starts(p, "两")) {
            d = 2;
        } else {
            for (int i = 0; i < 9; i++)
                if (starts(p, digits[i]))
                    d = i + 1;
        }
        if (d > 0 && units == 0) {
            units = d;
            p += 3;
        } else if (starts(p, "十") && tens < 0) {
            tens = units > 0 ? units : 1;
            units = 0;
            p += 3;
        } else {
            break;
        }
    }
    int v = (tens > 0 ? tens * 10 : 0) + units;
    if (v == 0)
        return -1;
    *pp = p;
    return v;
}

/* Replaces the dashes and tildes people put in ranges by '-' and drops all
 * spaces; out has room for strlen(in)+1 bytes. */
static void normalise_ranges(const char *in, char *out)
{
    static const char *const dashes[] = {"\xE2\x80\x94", /* — em dash */
                                         "\xE2\x80\x93", /* – en dash */
                                         "\xE2\x80\x95", /* ― horizontal bar */
                                         "\xE2\x88\x92", /* − minus sign */
                                         "\xE3\x80\x9C", /* 〜 wave dash */
                                         "\xE8\x87\xB3", /* 至 */
                                         "~"};
    while (*in) {
        size_t k, n = 0;
        if (*in == ' ' || *in == '\t') {
            in++;
            continue;
        }
        for (k = 0; k < sizeof dashes / sizeof dashes[0]; k++) {
            n = strlen(dashes[k]);
            if (strncmp(in, dashes[k], n) == 0)
                break;
        }
        if (k < sizeof dashes / sizeof dashes[0]) {
            *out++ = '-';
            in += n;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

/* A day 1..31 at *pp (one or two digits), advancing it; -1 when there is none. */
static int parse_day(const char **pp)
{
    const char *p = *pp;
    int d = 0, n = 0;
    while (isdigit((unsigned char)*p) && n < 3)
        d = d * 10 + (*p++ - '0'), n++;
    if (n == 0 || n > 2 || d < 1 || d > 31)
        return -1;
    *pp = p;
    return d;
}

/* Cuts a time of day spreadsheets add to a date ("2021/8/1 0:00:00"). */
static void cut_time(char *raw)
{
    char *sp = strrchr(raw, ' ');
    if (sp == NULL)
        return;
    const char *t = sp + 1;
    int digits = 0, colons = 0;
    for (; *t; t++) {
        if (isdigit((unsigned char)*t))
            digits++;
        else if (*t == ':')
            colons++;
        else
            return;
    }
    if (colons >= 1 && colons <= 2 && digits >= 3)
        *sp = '\0', text_trim(raw);
}

/* Splits a "<中文> / <English>" text of model.h into its halves. */
static void split_public(const char *both, char *zh, char *en, size_t len)
{
    const char *sep = strstr(both, " / ");
    if (sep == NULL) {
        snprintf(zh, len, "%s", both);
        snprintf(en, len, "%s", both);
        return;
    }
    snprintf(zh, len, "%.*s", (int)(sep - both), both);
    snprintf(en, len, "%s", sep + 3);
}

/* The reason a period or a year (zh 期间 / en period) written k is refused:
 * range, a "<中文> / <English>" text of model.h, after the thing named. */
static void out_of_range_why(char *why, size_t whylen, const char *zh_what, const char *en_what,
                             const char *k, const char *range)
{
    char zh[WHY_MAX], en[WHY_MAX], a[WHY_MAX], b[WHY_MAX];
    split_public(range, zh, en, sizeof zh);
    snprintf(a, sizeof a, "%s“%s”有误：%s", zh_what, k, zh);
    snprintf(b, sizeof b, "bad %s '%s': %s", en_what, k, en);
    why_join(why, whylen, a, b);
}

/* A period as it is read: its year, and its month or its quarter (-1 until
 * read), and the first month of a range (1 unless written: 2024年3-5月). */
typedef struct {
    int year, month, quarter, first;
} period_parts;

/* The part of a period after its four-figure year, in figures: 11 (202411),
 * -11, /8, .8 or M11 (a date means its month: 2021/8/1, 2021-08-01), Q3.
 * Moves *pp past it; returns -1 when it is none of these. */
static int parse_figure_month(const char **pp, period_parts *pt)
{
    const char *p = *pp;
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) && p[2] == '\0') {
        pt->month = (p[0] - '0') * 10 + (p[1] - '0'); /* 202411 */
        p += 2;
    } else if (*p == '-' || *p == '/' || *p == '.' || *p == 'M' || *p == 'm') {
        char sep = *p++;
        if (!isdigit((unsigned char)*p) || (pt->month = parse_small_number(&p)) < 0)
            return -1;
        /* a date means its month: 2021/8/1, 2021-08-01, 2021.8.1 */
        if (*p == sep && sep != 'M' && sep != 'm') {
            p++;
            if (parse_day(&p) < 0)
                return -1;
        }
    } else if (*p == 'Q' || *p == 'q') {
        p++;
        if (!isdigit((unsigned char)*p) || (pt->quarter = parse_small_number(&p)) < 0)
            return -1;
    } else {
        return -1;
    }
    *pp = p;
    return 0;
}

/* After 年前: N季度, N个月 or N月 (the first N). Moves *pp past it; returns
 * -1 when it is none of these. */
static int parse_zh_first_n(const char **pp, period_parts *pt)
{
    const char *p = *pp;
    int n = parse_small_number(&p);
    if (n < 0)
        return -1;
    if (starts(p, "季度"))
        pt->quarter = n, p += strlen("季度");
    else if (starts(p, "个月"))
        pt->month = n, p += strlen("个月");
    else if (starts(p, "月"))
        pt->month = n, p += strlen("月");
    else
        return -1;
    *pp = p;
    return 0;
}

/* After 年: (第)N季度, N-M月 (a range from month N) or N月 (N月D日 / N月D号:
 * the day means its month). Moves *pp past it; returns -1 when it is none
 * of these. */
static int parse_zh_nth(const char **pp, period_parts *pt)
{
    const char *p = *pp;
    if (starts(p, "第"))
        p += strlen("第");
    int n = parse_small_number(&p);
    if (n < 0)
        return -1;
    if (starts(p, "季度")) {
        pt->quarter = n, p += strlen("季度");
    } else if (*p == '-') {
        p++;
        pt->first = n;
        if ((pt->month = parse_small_number(&p)) < 0 || !starts(p, "月"))
            return -1;
        p += strlen("月");
    } else if (starts(p, "月")) {
        pt->month = n, p += strlen("月");
        /* 2021年8月1日: the day means its month */
        if (isdigit((unsigned char)*p)) {
            if (parse_day(&p) < 0 || !(starts(p, "日") || starts(p, "号")))
                return -1;
            p += strlen("日");
        }
    } else {
        return -1;
    }
    *pp = p;
    return 0;
}

/* The part of a period after its 年: 全年, 上半年, 前…, or (第)N…; then 份
 * and 累计 may follow. Moves *pp past it; returns -1 when it is none of
 * these. */
static int parse_zh_months(const char **pp, period_parts *pt)
{
    const char *p = *pp;
    if (starts(p, "全年")) {
        pt->month = 12, p += strlen("全年");
    } else if (starts(p, "上半年")) {
        pt->month = 6, p += strlen("上半年");
    } else if (starts(p, "前")) {
        p += strlen("前");
        if (parse_zh_first_n(&p, pt) < 0)
            return -1;
    } else if (parse_zh_nth(&p, pt) < 0) {
        return -1;
    }
    if (starts(p, "份"))
        p += strlen("份");
    if (starts(p, "累计"))
        p += strlen("累计");
    *pp = p;
    return 0;
}

/* Checks the period read, pt (k: as written, for the reason): a quarter
 * 1..4 (its last month), a month 1..12, a range from January, inside the
 * range of model.h. Returns 0 with *period set, or -1 with why. */
static int period_check(const period_parts *pt, const char *k, int *period, char *why,
                        size_t whylen)
{
    int month = pt->month;
    if (pt->quarter >= 0) {
        if (pt->quarter < 1 || pt->quarter > 4) {
            set_why(why, whylen, "期间“%s”有误：季度应为1至4", "bad period '%s': quarter must be 1..4",
                    k);
            return -1;
        }
        month = pt->quarter * 3;
    }
    if (month < 1 || month > 12) {
        set_why(why, whylen, "期间“%s”有误：月份应为1至12", "bad period '%s': month must be 1..12", k);
        return -1;
    }
    if (pt->first != 1) {
        set_why(why, whylen, "期间“%s”有误：累计期间应从1月开始",
                "bad period '%s': a range must start at month 1 (figures are cumulative from "
                "January)",
                k);
        return -1;
    }
    /* the range every input and the RRD files share (model.h) */
    const char *range = pp_period_range_why(pp_period_make(pt->year, month));
    if (range != NULL) {
        out_of_range_why(why, whylen, "期间", "period", k, range);
        return -1;
    }
    *period = pp_period_make(pt->year, month);
    return 0;
}

/* The form nearly every row has, "YYYY-MM" alone with a month 01..12 inside
 * the range of model.h: *period set, true. Anything else (other forms,
 * spaces, a bad month, out of range) is false and goes the whole way below,
 * which reads "YYYY-MM" the same (it is a fast path only: in a 10-year file
 * the general way — folding, range dashes, the other forms — was a third of
 * the reading). */
static bool period_parse_plain(const char *s, int *period)
{
    for (int i = 0; i < 7; i++)
        if (i == 4 ? s[i] != '-' : !isdigit((unsigned char)s[i]))
            return false;
    if (s[7] != '\0')
        return false;
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    if (month < 1 || month > 12 || pp_period_range_why(pp_period_make(year, month)) != NULL)
        return false;
    *period = pp_period_make(year, month);
    return true;
}

static int period_parse(const char *s, int *period, char *why, size_t whylen)
{
    char raw[128], buf[128], k[SHOW_MAX + 4];
    period_parts pt = {.year = 0, .month = -1, .quarter = -1, .first = 1};
    const char *p;

    if (s != NULL && period_parse_plain(s, period))
        return 0;
    if (s == NULL || fold_copy(raw, sizeof raw, s) < 0) {
        show(s, k, sizeof k);
        set_why(why, whylen, "期间“%s”太长", "bad period '%s': too long", k);
        return -1;
    }
    show(raw, k, sizeof k);
    if (raw[0] == '\0') {
        set_why(why, whylen, "缺少期间", "missing period");
        return -1;
    }
    cut_time(raw);
    normalise_ranges(raw, buf);
    p = buf;
    for (int i = 0; i < 4; i++, p++) {
        if (!isdigit((unsigned char)*p))
            goto not_period;
        pt.year = pt.year * 10 + (*p - '0');
    }
    if (starts(p, "年")) {
        p += strlen("年");
        if (parse_zh_months(&p, &pt) < 0)
            goto not_period;
    } else if (parse_figure_month(&p, &pt) < 0) {
        goto not_period;
    }
    if (*p != '\0')
        goto not_period;
    return period_check(&pt, k, period, why, whylen);
not_period:
    set_why(why, whylen, "期间“%s”无法识别（应如 2024-11 或 2024年1-11月）",
            "bad period '%s': not a period (e.g. 2024-11 or 2024年1-11月)", k);
    return -1;
}

int csv_parse_period(const char *s, int *period, char *why, size_t whylen)
{
    char w[WHY_MAX];
    int rc = period_parse(s, period, w, sizeof w);
    if (rc < 0 && why != NULL && whylen > 0) {
        why_public(w, sizeof w);
        text_copy_utf8(why, whylen, w);
    }
    return rc;
}

/* ======================================================================
 * Values and units
 * ====================================================================== */

typedef struct {
    const char *name;
    int family; /* 1 renminbi, 2 US dollars */
    double factor;
} money_unit;

static const money_unit money_units[] = {
    {"元", 1, 1.0},     {"千元", 1, 1e3},     {"万元", 1, 1e4},     {"亿元", 1, 1e8},
    {"美元", 2, 1.0}, {"千美元", 2, 1e3}, {"万美元", 2, 1e4}, {"亿美元", 2, 1e8},
};

/* Units that are never converted but are known, so that a typo is told apart
 * from a unit that merely differs from the indicator's. */
static const char *const plain_units[] = {"%", "‰", "个", "位", "项", "家", "人", "户",
                                          "亩", "公顷", "吨", "千瓦时", "万千瓦时", "平方米",
                                          "万平方米", "名", "次"};

static const money_unit *find_money(const char *u)
{
    for (size_t i = 0; i < sizeof money_units / sizeof money_units[0]; i++)
        if (strcmp(money_units[i].name, u) == 0)
            return &money_units[i];
    return NULL;
}

static bool known_plain(const char *u)
{
    for (size_t i = 0; i < sizeof plain_units / sizeof plain_units[0]; i++)
        if (strcmp(plain_units[i], u) == 0)
            return true;
    return false;
}

static bool is_missing_marker(const char *v)
{
    static const char *const markers[] = {"",     "-",  "--", "—", "——", "n/a", "na",
                                          "/",    "…",  "……", "...", "\xE2\x88\x92"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (strcasecmp(v, markers[i]) == 0)
            return true;
    return false;
}

/* Reads the number at the start of v into clean (ASCII, no separators) and
 * returns a pointer past it, or NULL when v does not start with a number or
 * its thousands separators are misplaced. */
static const char *scan_number(const char *v, char *clean, size_t cap, bool *bad_grouping)
{
    const char *p = v;
    size_t n = 0, digits = 0, group = 0, groups = 0;
    bool commas = false;

    *bad_grouping = false;
    if (starts(p, "\xE2\x88\x92")) { /* − U+2212 */
        clean[n++] = '-';
        p += 3;
    } else if (*p == '-' || *p == '+') {
        clean[n++] = *p++;
    }
    while (*p == ' ')
        p++;
    for (; isdigit((unsigned char)*p) || *p == ','; p++) {
        if (*p == ',') {
            /* the first group has 1..3 digits, every later one exactly 3 */
            if (group == 0 || (groups == 0 && group > 3) || (groups > 0 && group != 3))
                *bad_grouping = true;
            commas = true;
            groups++;
            group = 0;
            continue;
        }
        if (n + 2 >= cap)
            return NULL;
        clean[n++] = *p;
        digits++;
        group++;
    }
    if (commas && group != 3)
        *bad_grouping = true;
    if (*p == '.') {
        clean[n++] = *p++;
        for (; isdigit((unsigned char)*p); p++) {
            if (n + 2 >= cap)
                return NULL;
            clean[n++] = *p;
            digits++;
        }
    }
    clean[n] = '\0';
    return digits > 0 ? p : NULL;
}

/* unit_col: the unit column's cell (a unit in the value must agree with it);
 * unit_default: the unit written in the header, for a value without a unit
 * of its own (may be NULL). */
static int value_parse(const char *s, const char *unit_col, const char *unit_default,
                       const char *to_unit, double *value, char *why, size_t whylen)
{
    char v[256], ucol[128], uto[128], clean[128], k[SHOW_MAX + 4];
    bool bad_grouping;
    const char *rest, *unit;

    if (s == NULL)
        return 0;
    if (fold_copy(v, sizeof v, s) < 0) {
        show(s, k, sizeof k);
        set_why(why, whylen, "数值“%s”太长", "bad value '%s': too long", k);
        return -1;
    }
    show(v, k, sizeof k);
    if (is_missing_marker(v))
        return 0;
    rest = scan_number(v, clean, sizeof clean, &bad_grouping);
    if (rest == NULL) {
        set_why(why, whylen, "数值“%s”不是数字", "bad value '%s': not a number", k);
        return -1;
    }
    if (bad_grouping) {
        set_why(why, whylen, "数值“%s”的千位分隔符位置不对", "bad value '%s': misplaced thousands separator", k);
        return -1;
    }
    while (*rest == ' ')
        rest++;
    for (const char *q = rest; *q; q++) {
        if (isdigit((unsigned char)*q) || *q == '.' || *q == ',' || *q == '-' || *q == '+') {
            set_why(why, whylen, "数值“%s”不是数字", "bad value '%s': not a number", k);
            return -1;
        }
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(clean, &end);
    if (end == clean || *end != '\0' || !isfinite(x) || errno == ERANGE) {
        set_why(why, whylen, "数值“%s”超出范围", "bad value '%s': not a finite number", k);
        return -1;
    }

    if (unit_col == NULL)
        unit_col = "";
    if (to_unit == NULL)
        to_unit = "";
    if (fold_copy(ucol, sizeof ucol, unit_col) < 0 || fold_copy(uto, sizeof uto, to_unit) < 0) {
        set_why(why, whylen, "单位太长", "bad unit: too long");
        return -1;
    }
    unit = rest;
    if (unit[0] != '\0' && ucol[0] != '\0' && strcmp(unit, ucol) != 0) {
        char a[SHOW_MAX + 4], b[SHOW_MAX + 4];
        show(unit, a, sizeof a);
        show(ucol, b, sizeof b);
        set_why(why, whylen, "数值中的单位“%s”与单位列“%s”不一致",
                "unit '%s' in the value disagrees with unit column '%s'", a, b);
        return -1;
    }
    if (unit[0] == '\0')
        unit = ucol;
    char udef[128];
    if (unit[0] == '\0' && unit_default != NULL && fold_copy(udef, sizeof udef, unit_default) == 0)
        unit = udef;
    if (unit[0] != '\0' && strcmp(unit, uto) != 0) {
        const money_unit *from = find_money(unit), *to = find_money(uto);
        char a[SHOW_MAX + 4], b[SHOW_MAX + 4];
        show(unit, a, sizeof a);
        show(uto, b, sizeof b);
        if (from == NULL && !known_plain(unit)) {
            set_why(why, whylen, "未知单位“%s”", "unknown unit '%s'", a);
            return -1;
        }
        if (uto[0] == '\0') {
            set_why(why, whylen, "给出了单位“%s”，但该指标没有单位",
                    "unit '%s' given but the indicator has no unit", a);
            return -1;
        }
        if (from == NULL || to == NULL) {
            set_why(why, whylen, "单位“%s”与指标的单位“%s”不符",
                    "unit '%s' does not match the indicator's unit '%s'", a, b);
            return -1;
        }
        if (from->family != to->family) {
            set_why(why, whylen, "单位“%s”不能换算为“%s”（不同币种不换算）",
                    "unit '%s' cannot be converted to '%s' (never converts currencies)", a, b);
            return -1;
        }
        /* factors are exact powers of ten: multiply by an exact integer ratio
         * or divide by one, never multiply by an inexact 1e-4 */
        if (from->factor >= to->factor)
            x *= from->factor / to->factor;
        else
            x /= to->factor / from->factor;
    }
    *value = x;
    return 1;
}

int csv_parse_value(const char *s, const char *unit_col, const char *to_unit, double *value,
                    char *why, size_t whylen)
{
    char w[WHY_MAX];
    w[0] = '\0';
    int rc = value_parse(s, unit_col, NULL, to_unit, value, w, sizeof w);
    if (rc < 0 && why != NULL && whylen > 0) {
        why_public(w, sizeof w);
        text_copy_utf8(why, whylen, w);
    }
    return rc;
}

/* ======================================================================
 * The RFC 4180 record reader
 * ====================================================================== */

typedef struct {
    const char *p, *end;
    int line; /* physical line of p */
} reader;

typedef struct {
    char *buf;
    size_t len, cap;
    size_t off[CSV_MAX_COLUMNS];
    bool quoted[CSV_MAX_COLUMNS];
    size_t n;            /* fields */
    int line;            /* where the record starts */
    char problem[WHY_MAX]; /* first problem of the record, "" if none */
} record;

typedef struct dup_entry {
    int a, b, c; /* park index, indicator index, period or year */
    int line;    /* 0: free slot */
} dup_entry;

typedef struct {
    const pp_catalog *cat;
    csv_result *out;
    size_t cap_obs, cap_targets, cap_errors, cap_skipped;
    dup_entry *dups;
    size_t n_dups, cap_dups;
    bool fatal; /* stop reading: out of memory or a whole-input error */
    int max_period; /* the latest period taken (the current month), or -1: any */
} parser;

/* Keeps one more entry in a capped, growing array of csv_error; NULL when
 * none is kept (the cap, or out of memory: then *fatal is set). */
static csv_error *entry_new(csv_error **v, size_t *n, size_t *cap, bool *fatal)
{
    if (*n >= CSV_MAX_ERRORS)
        return NULL;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        if (nc > CSV_MAX_ERRORS)
            nc = CSV_MAX_ERRORS;
        csv_error *ne = realloc(*v, nc * sizeof *ne);
        if (ne == NULL) {
            *fatal = true;
            return NULL;
        }
        *v = ne;
        *cap = nc;
    }
    return &(*v)[(*n)++];
}

/* Records an error with an inside reason (see set_why). */
static void add_why(parser *ps, int line, const char *why)
{
    csv_result *r = ps->out;
    r->n_errors_total++; /* counted first, so that the input is refused anyway */
    csv_error *e = entry_new(&r->errors, &r->n_errors, &ps->cap_errors, &ps->fatal);
    if (e == NULL)
        return;
    e->line = line;
    text_copy_utf8(e->reason, sizeof e->reason, why);
    why_public(e->reason, sizeof e->reason);
}

static void add_error(parser *ps, int line, const char *zh, const char *en, ...)
    __attribute__((format(printf, 4, 5)));

static void add_error(parser *ps, int line, const char *zh, const char *en, ...)
{
    char why[WHY_MAX];
    va_list ap;
    va_start(ap, en);
    vset_why(why, sizeof why, zh, en, ap);
    va_end(ap);
    add_why(ps, line, why);
}

/* Lists a row skipped on purpose. */
static void add_skip(parser *ps, int line, const char *why)
{
    csv_result *r = ps->out;
    csv_error *e = entry_new(&r->skipped, &r->n_skipped, &ps->cap_skipped, &ps->fatal);
    if (e == NULL)
        return;
    e->line = line;
    text_copy_utf8(e->reason, sizeof e->reason, why);
    why_public(e->reason, sizeof e->reason);
}

static void out_of_memory(parser *ps)
{
    ps->out->out_of_memory = true;
    if (!ps->fatal)
        add_error(ps, 0, "内存不足", "out of memory");
    ps->fatal = true;
}

/* Appends one byte to the record being read; a field over CSV_MAX_FIELD bytes
 * marks the record bad and is cut. Returns -1 when out of memory. */
static int rec_put(parser *ps, record *rec, size_t *flen, char ch)
{
    if (ch != '\0') {
        if (*flen >= CSV_MAX_FIELD) {
            if (rec->problem[0] == '\0')
                set_why(rec->problem, sizeof rec->problem, "第%zu列超过%d字节",
                        "field %zu is longer than %d bytes", rec->n + 1, CSV_MAX_FIELD);
            return 0;
        }
        (*flen)++;
    }
    if (rec->len == rec->cap) {
        size_t nc = rec->cap ? rec->cap * 2 : 1024;
        char *nb = realloc(rec->buf, nc);
        if (nb == NULL) {
            out_of_memory(ps);
            return -1;
        }
        rec->buf = nb;
        rec->cap = nc;
    }
    rec->buf[rec->len++] = ch;
    return 0;
}

/* Reads one record. Returns 1 with the record, 0 at the end of the input,
 * -1 when reading cannot go on (the error is recorded). */
static int read_record(parser *ps, reader *rd, record *rec)
{
    rec->len = 0;
    rec->n = 0;
    rec->problem[0] = '\0';
    if (rd->p >= rd->end)
        return 0;
    rec->line = rd->line;
    for (;;) {
        size_t flen = 0;
        if (rec->n == CSV_MAX_COLUMNS) {
            add_error(ps, 0, "第%d行超过%d列", "line %d has more than %d columns", rec->line,
                      CSV_MAX_COLUMNS);
            ps->fatal = true;
            return -1;
        }
        rec->off[rec->n] = rec->len;
        while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\t'))
            rd->p++;
        rec->quoted[rec->n] = rd->p < rd->end && *rd->p == '"';
        if (rec->quoted[rec->n]) {
            rd->p++;
            for (;;) {
                if (rd->p >= rd->end) {
                    add_error(ps, rec->line, "引号未闭合：引号一直延续到文件末尾",
                              "unterminated quoted field: the quote runs to the end of the input");
                    ps->fatal = true;
                    return -1;
                }
                char ch = *rd->p++;
                if (ch == '"') {
                    if (rd->p < rd->end && *rd->p == '"')
                        rd->p++;
                    else
                        break;
                } else if (ch == '\n' || (ch == '\r' && (rd->p >= rd->end || *rd->p != '\n'))) {
                    rd->line++;
                }
                if (rec_put(ps, rec, &flen, ch) < 0)
                    return -1;
            }
            while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\t'))
                rd->p++;
            if (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n' && *rd->p != '\r') {
                if (rec->problem[0] == '\0')
                    set_why(rec->problem, sizeof rec->problem, "第%zu列在闭合引号之后还有文字",
                            "field %zu has text after its closing quote", rec->n + 1);
                while (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n' && *rd->p != '\r')
                    rd->p++;
            }
        } else {
            while (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n' && *rd->p != '\r')
                if (rec_put(ps, rec, &flen, *rd->p++) < 0)
                    return -1;
        }
        if (rec_put(ps, rec, &flen, '\0') < 0)
            return -1;
        rec->n++;
        if (rd->p >= rd->end)
            return 1; /* last line without a newline */
        char ch = *rd->p++;
        if (ch == ',')
            continue;
        if (ch == '\r' && rd->p < rd->end && *rd->p == '\n')
            rd->p++;
        rd->line++;
        return 1;
    }
}

/* Field i of a complete record; unquoted fields are trimmed. */
static char *field(record *rec, size_t i)
{
    char *f = rec->buf + rec->off[i];
    return rec->quoted[i] ? f : text_trim(f);
}

static bool record_blank(record *rec)
{
    for (size_t i = 0; i < rec->n; i++)
        if (field(rec, i)[0] != '\0')
            return false;
    return true;
}

/* ======================================================================
 * Duplicates: an open-addressing table of (park, indicator, period) → line
 * ====================================================================== */

static size_t dup_hash(int a, int b, int c)
{
    uint64_t h = (uint64_t)(unsigned)a * 0x9E3779B97F4A7C15u;
    h ^= (uint64_t)(unsigned)b * 0xC2B2AE3D27D4EB4Fu;
    h ^= (uint64_t)(unsigned)c * 0x165667B19E3779F9u;
    h ^= h >> 29;
    return (size_t)h;
}

/* Returns the line of an earlier entry with this key, or 0 when there is
 * none (then, with insert, the key is entered with line), -1 when out of
 * memory. */
static int dup_check(parser *ps, int a, int b, int c, int line, bool insert)
{
    if (2 * (ps->n_dups + 1) > ps->cap_dups) {
        size_t nc = ps->cap_dups ? ps->cap_dups * 2 : 256;
        dup_entry *nt = calloc(nc, sizeof *nt);
        if (nt == NULL)
            return -1;
        for (size_t i = 0; i < ps->cap_dups; i++) {
            dup_entry *e = &ps->dups[i];
            if (e->line == 0)
                continue;
            size_t j = dup_hash(e->a, e->b, e->c) & (nc - 1);
            while (nt[j].line != 0)
                j = (j + 1) & (nc - 1);
            nt[j] = *e;
        }
        free(ps->dups);
        ps->dups = nt;
        ps->cap_dups = nc;
    }
    size_t j = dup_hash(a, b, c) & (ps->cap_dups - 1);
    while (ps->dups[j].line != 0) {
        dup_entry *e = &ps->dups[j];
        if (e->a == a && e->b == b && e->c == c)
            return e->line;
        j = (j + 1) & (ps->cap_dups - 1);
    }
    if (!insert)
        return 0;
    ps->dups[j] = (dup_entry){a, b, c, line};
    ps->n_dups++;
    return 0;
}

/* ======================================================================
 * Header
 * ====================================================================== */

typedef enum {
    COL_UNKNOWN = 0,
    COL_EMPTY, /* no name: tolerated while its cells stay empty */
    COL_PARK,
    COL_INDICATOR,
    COL_PERIOD,
    COL_VALUE,
    COL_UNIT,
    COL_STATUS,
    COL_SOURCE,
    COL_NOTE,
    COL_YEAR,
    COL_TARGET,
    COL_YOY,      /* 同比 % of an observations file */
    COL_PARK_ID,  /* 园区代码: the park's id beside its name */
    COL_IND_ID,   /* 指标代码: the indicator's id beside its label */
    COL_DERIVED,  /* a column the 通报 derives (完成率, 序时进度, 差距, 排名, 说明) */
    COL_WIDE,     /* an indicator column of a wide table */
    COL_WIDE_YOY, /* the 同比 % of an indicator column of a wide table */
    COL_IGNORED,  /* read past: derived figures, names beside ids */
    COL_N
} col_role;

typedef struct {
    col_role role;
    const char *english;
    const char *chinese[8];
} col_name;

static const col_name col_names[] = {
    {COL_PARK, "park", {"园区", NULL}},
    {COL_INDICATOR, "indicator", {"指标", NULL}},
    {COL_PERIOD, "period", {"期间", "时间", "月份", NULL}},
    {COL_VALUE, "value", {"数值", "值", "累计值", NULL}},
    {COL_UNIT, "unit", {"单位", NULL}},
    {COL_STATUS, "status", {"状态", NULL}},
    {COL_SOURCE, "source", {"来源", NULL}},
    {COL_NOTE, "note", {"备注", NULL}},
    {COL_YEAR, "year", {"年度", "年份", NULL}},
    {COL_TARGET, "target", {"目标", "全年目标", NULL}},
    {COL_YOY, "yoy", {"同比", "同比增长", "增速", "增长", "同比增速", "同比增幅", "增幅", NULL}},
    {COL_PARK_ID, "park_id", {"园区代码", NULL}},
    {COL_IND_ID, "indicator_id", {"指标代码", NULL}},
    {COL_DERIVED, "completion_pct", {"完成率", "序时进度", "差距", "较序时", NULL}},
};

#define N_COL_NAMES (sizeof col_names / sizeof col_names[0])

static const char *role_name(col_role r)
{
    for (size_t i = 0; i < N_COL_NAMES; i++)
        if (col_names[i].role == r)
            return col_names[i].english;
    return "?";
}

static const char *role_zh(col_role r)
{
    for (size_t i = 0; i < N_COL_NAMES; i++)
        if (col_names[i].role == r)
            return col_names[i].chinese[0];
    return "?";
}

/* Splits a folded, trimmed header name into its base and a unit written
 * after it in brackets — 固定资产投资(亿元), 同比(%), 数值[万元],
 * 增速(单位:%) — or as a bare "%" (同比%). In place: name keeps the base. */
static void split_unit(char *name, char *unit, size_t ulen)
{
    size_t n = strlen(name);
    unit[0] = '\0';
    if (n > 1 && name[n - 1] == '%' ) {
        snprintf(unit, ulen, "%%");
        name[n - 1] = '\0';
        text_trim(name);
        return;
    }
    static const char *const pairs[][2] = {{"(", ")"}, {"[", "]"}, {"【", "】"}, {"〔", "〕"}};
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        if (!ends(name, pairs[k][1]))
            continue;
        char *open = NULL;
        for (char *p = strstr(name, pairs[k][0]); p != NULL; p = strstr(p + 1, pairs[k][0]))
            open = p;
        if (open == NULL || open == name)
            return;
        char *in = open + strlen(pairs[k][0]);
        name[n - strlen(pairs[k][1])] = '\0';
        if (starts(in, "单位:"))
            in += strlen("单位:");
        else if (starts(in, "单位"))
            in += strlen("单位");
        text_copy_utf8(unit, ulen, in);
        text_trim(unit);
        *open = '\0';
        text_trim(name);
        return;
    }
}

/* The role of a base name (folded, unit split off). */
static col_role base_role(const char *name)
{
    if (name[0] == '\0')
        return COL_EMPTY;
    for (size_t i = 0; i < N_COL_NAMES; i++) {
        if (strcasecmp(name, col_names[i].english) == 0)
            return col_names[i].role;
        for (size_t j = 0; col_names[i].chinese[j]; j++)
            if (strcmp(name, col_names[i].chinese[j]) == 0)
                return col_names[i].role;
    }
    return COL_UNKNOWN;
}

/* A header cell: folded, trimmed, split into base and unit. */
typedef struct {
    char base[CSV_MAX_FIELD + 1];
    char unit[UNIT_MAX];
    col_role role;
} head_cell;

static void head_cell_read(const char *raw, head_cell *c)
{
    if (fold_copy(c->base, sizeof c->base, raw) < 0) {
        c->base[0] = '?', c->base[1] = '\0';
        c->unit[0] = '\0';
        c->role = COL_UNKNOWN;
        return;
    }
    split_unit(c->base, c->unit, sizeof c->unit);
    c->role = base_role(c->base);
}

/* The indicator a wide column names by id or label (full-width folded). */
static const pp_indicator *indicator_named(const pp_catalog *cat, const char *name)
{
    if (name[0] == '\0')
        return NULL;
    return pp_catalog_indicator(cat, name);
}

/* `<indicator>同比`, `<indicator>增速`…: the indicator whose yoy a column is. */
static const pp_indicator *yoy_of_named(const pp_catalog *cat, const char *base)
{
    static const char *const suffixes[] = {"同比增长", "同比增速", "同比增幅", "同比", "增速",
                                           "增幅", "增长"};
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
        if (!ends(base, suffixes[k]) || strlen(base) == strlen(suffixes[k]))
            continue;
        char pre[CSV_MAX_FIELD + 1];
        size_t n = strlen(base) - strlen(suffixes[k]);
        memcpy(pre, base, n);
        pre[n] = '\0';
        text_trim(pre);
        const pp_indicator *ind = indicator_named(cat, pre);
        if (ind != NULL)
            return ind;
    }
    return NULL;
}

typedef enum { SUB_NONE = 0, SUB_VALUE, SUB_YOY, SUB_IGNORE } sub_kind;

/* What a cell of a header's second row says about the column. */
static sub_kind sub_word(const char *raw)
{
    static const char *const ignore[] = {"本月", "当月", "本月数", "当月数", "目标", "全年目标",
                                         "年度目标", "完成%", "完成率", "完成目标%",
                                         "较序时", "序时进度", "差距", "状态", "排名", "说明",
                                         "备注", "上年同期", "去年同期"};
    static const char *const value[] = {"累计", "累计值", "本月累计", "本年累计", "累计数",
                                        "数值", "绝对值", "金额", "总量", "总额"};
    static const char *const yoy[] = {"同比", "同比增长", "同比增速", "同比增幅", "增速", "增长",
                                      "增幅", "增长率", "比上年同期增长"};
    head_cell c;
    char folded[CSV_MAX_FIELD + 1];
    if (fold_copy(folded, sizeof folded, raw) < 0 || folded[0] == '\0')
        return SUB_NONE;
    for (size_t k = 0; k < sizeof ignore / sizeof ignore[0]; k++)
        if (strcmp(folded, ignore[k]) == 0)
            return SUB_IGNORE;
    head_cell_read(raw, &c);
    for (size_t k = 0; k < sizeof ignore / sizeof ignore[0]; k++)
        if (strcmp(c.base, ignore[k]) == 0)
            return SUB_IGNORE;
    for (size_t k = 0; k < sizeof yoy / sizeof yoy[0]; k++)
        if (strcmp(c.base, yoy[k]) == 0)
            return SUB_YOY;
    for (size_t k = 0; k < sizeof value / sizeof value[0]; k++)
        if (strcmp(c.base, value[k]) == 0)
            return SUB_VALUE;
    /* 1-8月, 1-8月累计, 1至8月 */
    char buf[CSV_MAX_FIELD + 1];
    normalise_ranges(c.base, buf);
    const char *p = buf;
    if (parse_small_number(&p) == 1 && *p == '-') {
        p++;
        if (parse_small_number(&p) > 0 && starts(p, "月")) {
            p += strlen("月");
            if (starts(p, "份"))
                p += strlen("份");
            if (starts(p, "累计"))
                p += strlen("累计");
            if (*p == '\0')
                return SUB_VALUE;
        }
    }
    return SUB_NONE;
}

typedef struct {
    size_t ncols;
    col_role role[CSV_MAX_COLUMNS];
    const pp_indicator *ind[CSV_MAX_COLUMNS]; /* for COL_WIDE and COL_WIDE_YOY */
    int yoy_col[CSV_MAX_COLUMNS];             /* COL_WIDE: its COL_WIDE_YOY column, or -1 */
    char unit[CSV_MAX_COLUMNS][UNIT_MAX];     /* unit written in the header, or "" */
    char name[CSV_MAX_COLUMNS][SHOW_MAX + 4]; /* for messages */
    int at[COL_N];                            /* column of each role, -1 if absent */
} header;

/* "unknown column 'X'" with a did-you-mean over the known column names (and,
 * with cat, the indicators), written into why (WHY_MAX bytes). */
static const char *unknown_column(const char *raw, const pp_catalog *cat, const char *zh,
                                  const char *what, char *why)
{
    suggester sg;
    suggest_init(&sg, raw);
    for (size_t k = 0; k < N_COL_NAMES; k++) {
        if (col_names[k].role == COL_DERIVED)
            continue;
        suggest_try(&sg, col_names[k].english);
        for (size_t j = 0; col_names[k].chinese[j]; j++)
            suggest_try(&sg, col_names[k].chinese[j]);
    }
    for (size_t i = 0; cat != NULL && i < cat->n_indicators; i++) {
        suggest_try(&sg, cat->indicators[i].id);
        suggest_try(&sg, cat->indicators[i].label);
    }
    suggest_why(&sg, zh, what, why, WHY_MAX);
    return why;
}

/* true when a record can be a header: a park column and a period, indicator,
 * value, year, target or indicator column. */
static bool header_like(const parser *ps, record *rec)
{
    bool park = false, other = false;
    head_cell *c = malloc(sizeof *c);
    if (c == NULL)
        return false;
    for (size_t i = 0; i < rec->n; i++) {
        head_cell_read(field(rec, i), c);
        switch (c->role) {
        case COL_PARK:
        case COL_PARK_ID: park = true; break;
        case COL_INDICATOR:
        case COL_IND_ID:
        case COL_PERIOD:
        case COL_VALUE:
        case COL_YEAR:
        case COL_TARGET: other = true; break;
        case COL_UNKNOWN:
            if (indicator_named(ps->cat, c->base) != NULL)
                other = true;
            break;
        default: break;
        }
    }
    free(c);
    return park && other;
}

/* true when sub, the record under the header top, is the second row of a
 * two-row header: its cells are empty, repeat the cell above (a merged
 * cell), or say 累计 / 同比 / …, and at least one does. */
static bool second_header_row(record *top, record *sub)
{
    size_t words = 0;
    if (sub->problem[0] != '\0')
        return false;
    for (size_t i = 0; i < sub->n; i++) {
        const char *f = field(sub, i);
        if (f[0] == '\0')
            continue;
        if (sub_word(f) != SUB_NONE)
            words++;
        else if (i >= top->n || strcmp(f, field(top, i)) != 0)
            return false;
    }
    return words > 0;
}

/* The error of an unknown column (raw) in the header at line, with the
 * columns such a file has (zh_cols, en_cols) in brackets. */
static void add_unknown_column(parser *ps, int line, const char *raw, const char *zh_cols,
                               const char *en_cols)
{
    char inner[WHY_MAX], zh[WHY_MAX], en[WHY_MAX], a[WHY_MAX], b[WHY_MAX], why[WHY_MAX];
    unknown_column(raw, NULL, "列", "column", inner);
    why_split(inner, zh, en, sizeof zh);
    snprintf(a, sizeof a, "%s（%s）", zh, zh_cols);
    snprintf(b, sizeof b, "%s (%s)", en, en_cols);
    why_join(why, sizeof why, a, b);
    add_why(ps, line, why);
}

/* The merged indicator cell over a two-row header, as the columns are read
 * left to right: the last non-empty cell of the first row (the merged
 * cell's value, in its first column only), and the last one reported
 * unknown, so that the columns of one merged cell give one error. */
typedef struct {
    char last_top[CSV_MAX_FIELD + 1];
    char last_reported[CSV_MAX_FIELD + 1];
} merged_cell;

/* Reads column i of the header (top, and sub: its second row, or NULL) into
 * h: its name for messages, its role and the unit its cell carries; under an
 * indicator, the second row's word (累计, 同比, …) decides the role. c is
 * scratch. Returns 1 after recording an unknown indicator, else 0. */
static int read_header_column(parser *ps, record *top, record *sub, size_t i, header *h,
                              head_cell *c, merged_cell *m)
{
    const char *t = i < top->n ? field(top, i) : "";
    const char *s = sub != NULL && i < sub->n ? field(sub, i) : "";
    sub_kind sk = s[0] != '\0' ? sub_word(s) : SUB_NONE;
    char shown[2 * (SHOW_MAX + 4)], why[WHY_MAX];
    h->ind[i] = NULL;
    h->yoy_col[i] = -1;
    h->unit[i][0] = '\0';
    /* a merged indicator cell: its value in the first column only */
    if (t[0] == '\0' && sk != SUB_NONE)
        t = m->last_top;
    else if (t[0] != '\0')
        text_copy_utf8(m->last_top, sizeof m->last_top, t);
    if (sk != SUB_NONE) {
        char a[SHOW_MAX + 4], b[SHOW_MAX + 4];
        snprintf(shown, sizeof shown, "%s/%s", show(t, a, sizeof a), show(s, b, sizeof b));
    } else {
        show(t, shown, sizeof shown);
    }
    show(shown, h->name[i], sizeof h->name[i]);
    head_cell_read(t, c);
    h->role[i] = c->role;
    text_copy_utf8(h->unit[i], sizeof h->unit[i], c->unit);
    if (sk == SUB_NONE)
        return 0;
    /* the second row of a two-row header: under an indicator */
    const pp_indicator *ind = indicator_named(ps->cat, c->base);
    if (ind == NULL) {
        /* once for the columns of one merged cell */
        if ((c->role == COL_UNKNOWN || c->role == COL_EMPTY) &&
            (i == 0 || strcmp(m->last_reported, t) != 0)) {
            add_why(ps, top->line, unknown_column(c->base, ps->cat, "指标列", "indicator column", why));
            text_copy_utf8(m->last_reported, sizeof m->last_reported, t);
            return 1;
        }
        return 0; /* 园区 over 园区 (merged down), or a known column */
    }
    h->ind[i] = ind;
    head_cell sc;
    head_cell_read(s, &sc);
    if (sk == SUB_VALUE) {
        h->role[i] = COL_WIDE;
        if (sc.unit[0] != '\0')
            text_copy_utf8(h->unit[i], sizeof h->unit[i], sc.unit);
    } else if (sk == SUB_YOY) {
        h->role[i] = COL_WIDE_YOY;
        text_copy_utf8(h->unit[i], sizeof h->unit[i], sc.unit);
    } else {
        h->role[i] = COL_IGNORED;
    }
    return 0;
}

/* The 通报 parkpulse exports (a header with a derived column): its derived
 * columns, its 目标 and 状态, 排名 and 说明 are not read back. c is scratch. */
static void ignore_report_columns(record *top, header *h, head_cell *c)
{
    bool report = false;
    for (size_t i = 0; i < h->ncols; i++)
        report |= h->role[i] == COL_DERIVED;
    for (size_t i = 0; i < h->ncols; i++) {
        col_role ro = h->role[i];
        if (ro == COL_DERIVED || (report && (ro == COL_STATUS || ro == COL_TARGET)))
            h->role[i] = COL_IGNORED;
        if (report && ro == COL_UNKNOWN && i < top->n) {
            head_cell_read(field(top, i), c);
            if (strcmp(c->base, "排名") == 0 || strcmp(c->base, "说明") == 0)
                h->role[i] = COL_IGNORED;
        }
    }
}

/* 园区代码 / 指标代码 beside 园区 / 指标: the ids are read, the names not. */
static void read_ids_not_names(header *h)
{
    for (size_t i = 0; i < h->ncols; i++) {
        if (h->role[i] == COL_PARK_ID || h->role[i] == COL_IND_ID) {
            col_role name = h->role[i] == COL_PARK_ID ? COL_PARK : COL_INDICATOR;
            for (size_t j = 0; j < h->ncols; j++)
                if (h->role[j] == name)
                    h->role[j] = COL_IGNORED;
            h->role[i] = name;
        }
    }
}

/* Sets h->at, the column of each role, from the roles of the header at
 * line; *n_yoy counts the 同比 columns after the first (a wide table's bare
 * 同比 after each indicator). Returns the number of duplicate columns
 * recorded. */
static int place_columns(parser *ps, int line, header *h, size_t *n_yoy)
{
    int bad = 0;
    for (size_t i = 0; i < h->ncols; i++) {
        col_role ro = h->role[i];
        if (ro == COL_UNKNOWN || ro == COL_EMPTY || ro == COL_IGNORED || ro == COL_WIDE ||
            ro == COL_WIDE_YOY)
            continue;
        if (ro == COL_YOY && h->at[ro] >= 0) {
            (*n_yoy)++; /* a bare 同比 after each indicator of a wide table */
            continue;
        }
        if (h->at[ro] >= 0) {
            add_error(ps, line, "列名重复：“%s”（第%d列和第%zu列都是“%s”）",
                      "duplicate column '%s' (columns %d and %zu are both '%s')", h->name[i],
                      h->at[ro] + 1, i + 1, role_name(ro));
            bad++;
            continue;
        }
        h->at[ro] = (int)i;
    }
    return bad;
}

/* Settles the layout (targets, observations or wide) from the columns the
 * header at line has, and checks that it has the ones that layout needs.
 * Returns the number of errors recorded. */
static int settle_layout(parser *ps, int line, const header *h, size_t n_yoy)
{
    static const col_role obs_req[] = {COL_PARK, COL_INDICATOR, COL_PERIOD, COL_VALUE};
    static const col_role tgt_req[] = {COL_PARK, COL_INDICATOR, COL_YEAR, COL_TARGET};
    static const col_role wide_req[] = {COL_PARK, COL_PERIOD};
    csv_result *r = ps->out;
    const col_role *req = NULL;
    size_t nreq = 4, n_wide = 0;
    int bad = 0;
    for (size_t i = 0; i < h->ncols; i++)
        n_wide += h->role[i] == COL_WIDE;
    if (h->at[COL_YEAR] >= 0 || h->at[COL_TARGET] >= 0) {
        r->layout = CSV_LAYOUT_TARGETS;
        req = tgt_req;
    } else if (n_wide == 0 && (h->at[COL_INDICATOR] >= 0 || h->at[COL_VALUE] >= 0 ||
                               h->at[COL_PARK] < 0 || h->at[COL_PERIOD] < 0)) {
        r->layout = CSV_LAYOUT_OBSERVATIONS;
        req = obs_req;
    } else {
        r->layout = CSV_LAYOUT_WIDE;
        req = wide_req;
        nreq = 2;
    }
    if (n_yoy > 0 && r->layout != CSV_LAYOUT_WIDE) {
        add_error(ps, line, "同比列重复", "more than one yoy column");
        bad++;
    }
    for (size_t i = 0; i < nreq; i++) {
        if (h->at[req[i]] < 0) {
            char a[WHY_MAX], b[WHY_MAX], why[WHY_MAX];
            snprintf(a, sizeof a, "表头缺少“%s”列", role_zh(req[i]));
            snprintf(b, sizeof b, "missing column '%s' in the header", role_name(req[i]));
            why_join(why, sizeof why, a, b);
            add_why(ps, line, why);
            bad++;
        }
    }
    return bad;
}

/* Checks column i of a wide table's header at line (base: its name without
 * the unit): no unit, value or indicator column; a bare 同比 right after an
 * indicator's column is that indicator's yoy; an unknown column must name an
 * indicator (or its 同比). Returns 1 after recording an error, else 0. */
static int check_wide_column(parser *ps, int line, header *h, size_t i, const char *base)
{
    col_role ro = h->role[i];
    char why[WHY_MAX];
    if (ro == COL_UNIT) {
        add_error(ps, line, "宽表中的“%s”列含义不明（请把单位写在表头或单元格中）",
                  "column '%s' is ambiguous in a wide table (write the unit in the cells)",
                  h->name[i]);
        return 1;
    }
    if (ro == COL_VALUE || ro == COL_INDICATOR) {
        add_error(ps, line, "宽表中不应有“%s”列", "column '%s' does not belong in a wide table",
                  h->name[i]);
        return 1;
    }
    if (ro == COL_YOY) {
        /* a bare 同比 right after an indicator's column */
        if (i > 0 && h->role[i - 1] == COL_WIDE) {
            h->role[i] = COL_WIDE_YOY;
            h->ind[i] = h->ind[i - 1];
            return 0;
        }
        add_error(ps, line, "同比列“%s”前面不是指标列",
                  "yoy column '%s' does not follow an indicator column", h->name[i]);
        return 1;
    }
    if (ro != COL_UNKNOWN)
        return 0;
    const pp_indicator *ind = indicator_named(ps->cat, base);
    if (ind == NULL && (ind = yoy_of_named(ps->cat, base)) != NULL) {
        h->role[i] = COL_WIDE_YOY;
        h->ind[i] = ind;
        return 0;
    }
    if (ind == NULL) {
        add_why(ps, line, unknown_column(base, ps->cat, "指标列", "indicator column", why));
        return 1;
    }
    h->role[i] = COL_WIDE;
    h->ind[i] = ind;
    return 0;
}

/* Checks column i of the header at line against the layout settled: a
 * column the layout does not have is an error. c is scratch. Returns 1
 * after recording an error, else 0. */
static int check_column(parser *ps, int line, record *top, header *h, size_t i, head_cell *c)
{
    col_role ro = h->role[i];
    csv_layout layout = ps->out->layout;
    head_cell_read(i < top->n ? field(top, i) : "", c);
    if (layout == CSV_LAYOUT_WIDE)
        return check_wide_column(ps, line, h, i, c->base);
    if (layout != CSV_LAYOUT_OBSERVATIONS && layout != CSV_LAYOUT_TARGETS)
        return 0;
    if (ro == COL_UNKNOWN) {
        if (layout == CSV_LAYOUT_OBSERVATIONS)
            add_unknown_column(ps, line, c->base,
                               "观测数据文件的列为 园区、指标、期间、数值、单位、同比、状态、来源、备注",
                               "an observations file has park, indicator, period, value, "
                               "unit, yoy, status, source, note");
        else
            add_unknown_column(ps, line, c->base,
                               "目标文件的列为 园区、指标、年度、目标、单位、来源、备注",
                               "a targets file has park, indicator, year, target, unit, "
                               "source, note");
        return 1;
    }
    if (layout == CSV_LAYOUT_TARGETS &&
        (ro == COL_PERIOD || ro == COL_VALUE || ro == COL_STATUS || ro == COL_YOY)) {
        add_error(ps, line, "“%s”列不属于目标文件", "column '%s' does not belong in a targets file",
                  h->name[i]);
        return 1;
    }
    return 0;
}

/* Records why (a unit's error) as the error of the column named name, in the
 * header at line; returns 1, the error count. */
static int add_column_why(parser *ps, int line, const char *name, const char *cwhy)
{
    char zp[WHY_MAX], ep[WHY_MAX], why[WHY_MAX];
    snprintf(zp, sizeof zp, "“%s”列：", name);
    snprintf(ep, sizeof ep, "column '%s': ", name);
    why_prefix(why, sizeof why, zp, ep, cwhy);
    add_why(ps, line, why);
    return 1;
}

/* Checks the unit written in the header over column i: a yoy's is a
 * percentage, a wide column's converts to its indicator's unit, a value's or
 * target's is known. Returns the number of errors recorded. */
static int check_header_unit(parser *ps, int line, const header *h, size_t i)
{
    col_role ro = h->role[i];
    const char *unit = h->unit[i];
    double one;
    char cwhy[WHY_MAX];
    int bad = 0;
    if (unit[0] == '\0')
        return 0;
    if ((ro == COL_YOY || ro == COL_WIDE_YOY) &&
        value_parse("1", NULL, unit, "%", &one, cwhy, sizeof cwhy) < 0)
        bad += add_column_why(ps, line, h->name[i], cwhy);
    if (ro == COL_WIDE && value_parse("1", NULL, unit, h->ind[i]->unit, &one, cwhy, sizeof cwhy) < 0)
        bad += add_column_why(ps, line, h->name[i], cwhy);
    if ((ro == COL_VALUE || ro == COL_TARGET) && find_money(unit) == NULL && !known_plain(unit)) {
        set_why(cwhy, sizeof cwhy, "未知单位“%s”", "unknown unit '%s'", unit);
        bad += add_column_why(ps, line, h->name[i], cwhy);
    }
    return bad;
}

/* A wide column (value or yoy) whose indicator an earlier column of the same
 * role already has is a duplicate. Returns the number of errors recorded. */
static int check_wide_duplicate(parser *ps, int line, const header *h, size_t i)
{
    col_role ro = h->role[i];
    int bad = 0;
    if (ro != COL_WIDE && ro != COL_WIDE_YOY)
        return 0;
    for (size_t j = 0; j < i; j++) {
        if (h->role[j] == ro && h->ind[j] == h->ind[i]) {
            add_error(ps, line, "列名重复：“%s”（第%zu列也是“%s”）",
                      "duplicate column '%s': column %zu is also '%s'", h->name[i], j + 1,
                      h->ind[i]->id);
            bad++;
        }
    }
    return bad;
}

/* A wide table: each yoy column is paired with its indicator's value column
 * (h->yoy_col), and there is at least one indicator column. Returns the
 * number of errors recorded. */
static int pair_wide_columns(parser *ps, int line, header *h)
{
    size_t n_wide = 0;
    int bad = 0;
    for (size_t i = 0; i < h->ncols; i++) {
        if (h->role[i] != COL_WIDE_YOY)
            continue;
        size_t j = 0;
        while (j < h->ncols && !(h->role[j] == COL_WIDE && h->ind[j] == h->ind[i]))
            j++;
        if (j == h->ncols) {
            char a[WHY_MAX], b[WHY_MAX], why[WHY_MAX];
            snprintf(a, sizeof a, "同比列“%s”没有对应的“%s”数值列", h->name[i], h->ind[i]->label);
            snprintf(b, sizeof b, "yoy column '%s' without a column for '%s' itself", h->name[i],
                     h->ind[i]->id);
            why_join(why, sizeof why, a, b);
            add_why(ps, line, why);
            bad++;
        } else {
            h->yoy_col[j] = (int)i;
        }
    }
    for (size_t i = 0; i < h->ncols; i++)
        n_wide += h->role[i] == COL_WIDE;
    if (n_wide == 0 && bad == 0) {
        add_error(ps, line, "宽表（园区、期间、…）至少要有一个指标列",
                  "a wide table (park, period, …) needs at least one indicator column");
        bad++;
    }
    return bad;
}

/* Reads the header: top, and sub (NULL, or its second row). Each step
 * records every error it finds; a step that found one ends the reading
 * where a later step would only repeat it. Returns 0 when the layout is
 * settled (or after a header record's own problem was recorded), -1 after
 * recording errors. */
static int read_header(parser *ps, record *top, record *sub, header *h)
{
    int line = top->line, bad = 0;
    size_t n_yoy = 0;
    char why[WHY_MAX];
    head_cell *c = malloc(sizeof *c);
    merged_cell *m = malloc(sizeof *m);

    if (c == NULL || m == NULL) {
        free(c);
        free(m);
        out_of_memory(ps);
        return -1;
    }
    m->last_top[0] = '\0';
    m->last_reported[0] = '\0';
    if (top->problem[0] != '\0' || (sub != NULL && sub->problem[0] != '\0')) {
        why_prefix(why, sizeof why, "表头：", "header: ",
                   top->problem[0] ? top->problem : sub->problem);
        add_why(ps, line, why);
        goto done;
    }
    h->ncols = top->n;
    if (sub != NULL && sub->n > h->ncols)
        h->ncols = sub->n;
    for (int i = 0; i < COL_N; i++)
        h->at[i] = -1;
    for (size_t i = 0; i < h->ncols; i++)
        bad += read_header_column(ps, top, sub, i, h, c, m);
    if (bad)
        goto done;
    ignore_report_columns(top, h, c);
    read_ids_not_names(h);
    bad = place_columns(ps, line, h, &n_yoy);
    if (bad)
        goto done;
    bad = settle_layout(ps, line, h, n_yoy);
    for (size_t i = 0; i < h->ncols; i++)
        bad += check_column(ps, line, top, h, i, c);
    /* units written in the header; wide columns: each indicator once */
    for (size_t i = 0; i < h->ncols && bad == 0; i++) {
        bad += check_header_unit(ps, line, h, i);
        bad += check_wide_duplicate(ps, line, h, i);
    }
    if (ps->out->layout == CSV_LAYOUT_WIDE && bad == 0)
        bad = pair_wide_columns(ps, line, h);
done:
    free(c);
    free(m);
    return bad ? -1 : 0;
}
/* ======================================================================
 * Rows
 * ====================================================================== */

/* true when a record the row's checks passed is still invalid by the one
 * validation of model.c (which every reader of the journal and the db uses
 * too): why gets the reason. */
static bool invalid(const char *reason, char *why, size_t len)
{
    if (reason == NULL)
        return false;
    set_why(why, len, "数据无效", "%s", reason);
    return true;
}

static int push_obs(parser *ps, const pp_obs *o, int line)
{
    csv_result *r = ps->out;
    if (ps->max_period >= 0 && o->period > ps->max_period) {
        /* a mistyped year (2102-08) would take over every view: a bad row,
         * once per row of a wide table */
        if (r->n_errors > 0 && r->errors[r->n_errors - 1].line == line && line > 0)
            return 0;
        char why[WHY_MAX];
        csv_future_why(o->period, ps->max_period, why, sizeof why);
        add_why(ps, line, why);
        return 0;
    }
    if (PP_VEC_RESERVE(r->obs, ps->cap_obs, r->n_obs + 1, 64) != 0)
        return -1;
    r->obs[r->n_obs++] = *o;
    return 0;
}

static int push_target(parser *ps, const pp_target *t)
{
    csv_result *r = ps->out;
    if (PP_VEC_RESERVE(r->targets, ps->cap_targets, r->n_targets + 1, 16) != 0)
        return -1;
    r->targets[r->n_targets++] = *t;
    return 0;
}

/* The cell of a role, or "" when the layout has no such column. */
static const char *cell(record *rec, const header *h, col_role ro)
{
    return h->at[ro] >= 0 ? field(rec, (size_t)h->at[ro]) : "";
}

/* ---- parks and indicators ---- */

static const void *catalog_entry(const pp_catalog *cat, bool is_park, const char *key)
{
    return is_park ? (const void *)pp_catalog_park(cat, key)
                   : (const void *)pp_catalog_indicator(cat, key);
}

/* A park (is_park) or an indicator by what the sender typed: its id or its
 * name (label), as written, else folded to ASCII (full-width characters a
 * spreadsheet left; a park's spaces dropped too: 湘潭 经开区). NULL with the
 * reason: missing, or unknown with the nearest id or name. */
static const void *find_entry(const pp_catalog *cat, bool is_park, const char *key, char *why,
                              size_t whylen)
{
    if (key[0] == '\0') {
        if (is_park)
            set_why(why, whylen, "缺少园区", "missing park");
        else
            set_why(why, whylen, "缺少指标", "missing indicator");
        return NULL;
    }
    const void *e = catalog_entry(cat, is_park, key);
    char folded[CSV_MAX_FIELD + 1];
    if (e == NULL && fold_copy(folded, sizeof folded, key) == 0) {
        if (is_park)
            text_squeeze(folded);
        e = catalog_entry(cat, is_park, folded);
    }
    if (e != NULL)
        return e;
    suggester sg;
    suggest_init(&sg, key);
    size_t n = is_park ? cat->n_parks : cat->n_indicators;
    for (size_t i = 0; i < n; i++) {
        suggest_try(&sg, is_park ? cat->parks[i].id : cat->indicators[i].id);
        suggest_try(&sg, is_park ? cat->parks[i].name : cat->indicators[i].label);
    }
    suggest_why(&sg, is_park ? "园区" : "指标", is_park ? "park" : "indicator", why, whylen);
    return NULL;
}

static const pp_park *find_park(const pp_catalog *cat, const char *key, char *why, size_t whylen)
{
    return find_entry(cat, true, key, why, whylen);
}

static const pp_indicator *find_indicator(const pp_catalog *cat, const char *key, char *why,
                                          size_t whylen)
{
    return find_entry(cat, false, key, why, whylen);
}

/* A row skipped on purpose: a total row (its park cell 合计, 小计, 总计, 全省,
 * 全市…, spaces ignored) or a note line (注：…, alone in its row). Returns
 * true after listing it. */
static bool skip_row(parser *ps, record *rec, const header *h)
{
    static const char *const totals[] = {"合计", "小计", "总计", "全省", "全市", "全区", "全县",
                                         "全省合计", "全市合计", "总计数", "合计数"};
    static const char *const notes[] = {"注", "备注", "说明", "数据来源", "资料来源", "填报",
                                        "制表", "审核", "*"};
    char v[CSV_MAX_FIELD + 1], k[SHOW_MAX + 4], why[WHY_MAX];
    int pc = h->at[COL_PARK];
    if (pc >= 0 && (size_t)pc < rec->n && fold_copy(v, sizeof v, field(rec, (size_t)pc)) == 0) {
        text_squeeze(v);
        for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
            if (strcmp(v, totals[i]) == 0) {
                show(field(rec, (size_t)pc), k, sizeof k);
                set_why(why, sizeof why, "已跳过合计行“%s”（不是园区）",
                        "skipped the total row '%s' (not a park)", k);
                add_skip(ps, rec->line, why);
                return true;
            }
        }
    }
    size_t filled = 0, first = 0;
    for (size_t i = 0; i < rec->n; i++) {
        if (field(rec, i)[0] != '\0') {
            if (filled++ == 0)
                first = i;
        }
    }
    if (filled != 1 || fold_copy(v, sizeof v, field(rec, first)) < 0)
        return false;
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) {
        if (starts(v, notes[i]) && (v[strlen(notes[i])] == ':' || starts(v + strlen(notes[i]), "：") ||
                                    (strcmp(notes[i], "注") == 0 && isdigit((unsigned char)v[3])) ||
                                    strcmp(notes[i], "*") == 0)) {
            show(v, k, sizeof k);
            set_why(why, sizeof why, "已跳过注释行“%s”", "skipped the note line '%s'", k);
            add_skip(ps, rec->line, why);
            return true;
        }
    }
    return false;
}

/* The yoy cell of column col (-1: none): 1 and *yoy when it holds one, 0 when
 * empty, -1 with why. */
static int parse_yoy(record *rec, const header *h, int col, double *yoy, char *why, size_t whylen)
{
    char cwhy[WHY_MAX], zp[WHY_MAX], ep[WHY_MAX];
    if (col < 0 || (size_t)col >= rec->n)
        return 0;
    int rc = value_parse(field(rec, (size_t)col), NULL, h->unit[col], "%", yoy, cwhy, sizeof cwhy);
    if (rc < 0) {
        snprintf(zp, sizeof zp, "同比“%s”列：", h->name[col]);
        snprintf(ep, sizeof ep, "yoy column '%s': ", h->name[col]);
        why_prefix(why, whylen, zp, ep, cwhy);
    }
    return rc;
}

static int parse_status(const char *s, char *status, char *why, size_t whylen)
{
    char v[16], k[SHOW_MAX + 4];
    if (fold_copy(v, sizeof v, s) < 0)
        v[0] = '?', v[1] = '\0';
    if (v[0] == '\0') {
        *status = PP_OBS_STATUS_DEFAULT;
        return 0;
    }
    if (v[1] == '\0' && strchr("APERaper", v[0]) != NULL) {
        *status = (char)toupper((unsigned char)v[0]);
        return 0;
    }
    show(s, k, sizeof k);
    set_why(why, whylen, "状态“%s”有误：应为 A、P、E 或 R", "bad status '%s': must be A, P, E or R", k);
    return -1;
}

static int parse_year(const char *s, int *year, char *why, size_t whylen)
{
    char v[32], k[SHOW_MAX + 4];
    int y = 0, n = 0;
    show(s, k, sizeof k);
    if (s[0] == '\0') {
        set_why(why, whylen, "缺少年度", "missing year");
        return -1;
    }
    if (fold_copy(v, sizeof v, s) < 0)
        goto bad;
    const char *p = v;
    for (; isdigit((unsigned char)*p); p++, n++)
        if (n < 4) /* more digits are refused below; never overflow y */
            y = y * 10 + (*p - '0');
    if (starts(p, "年"))
        p += strlen("年");
    if (n != 4 || *p != '\0')
        goto bad;
    const char *range = pp_year_range_why(y);
    if (range != NULL) {
        out_of_range_why(why, whylen, "年度", "year", k, range);
        return -1;
    }
    *year = y;
    return 0;
bad:
    set_why(why, whylen, "年度“%s”有误：应如 2021 或 2021年", "bad year '%s': expected e.g. 2021 or 2021年", k);
    return -1;
}

/* Fields of a record against the header's columns: returns -1 with a reason
 * when the counts differ (an extra empty cell is tolerated), or a value in an
 * unnamed column. */
static int check_shape(record *rec, const header *h, char *why, size_t whylen)
{
    if (rec->problem[0] != '\0') {
        text_copy_utf8(why, whylen, rec->problem);
        return -1;
    }
    size_t n = rec->n;
    while (n > h->ncols && field(rec, n - 1)[0] == '\0')
        n--;
    if (n != h->ncols) {
        set_why(why, whylen, "本行有%zu列，表头有%zu列", "the row has %zu fields, the header has %zu",
                rec->n, h->ncols);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (h->role[i] == COL_EMPTY && field(rec, i)[0] != '\0') {
            set_why(why, whylen, "第%zu列有数据，但表头中该列没有列名",
                    "a value in column %zu, which has no name in the header", i + 1);
            return -1;
        }
    }
    return 0;
}

static int dup_or_oom(parser *ps, int a, int b, int c, int line, bool insert, char *why,
                      size_t whylen)
{
    int prev = dup_check(ps, a, b, c, line, insert);
    if (prev < 0) {
        out_of_memory(ps);
        return -1;
    }
    if (prev > 0) {
        set_why(why, whylen, "与第%d行重复", "duplicate of line %d", prev);
        return -1;
    }
    return 0;
}

/* What the reading of one row of the long layouts knows: its series, its
 * value, and why it is bad. */
typedef struct row_ctx {
    char why[WHY_MAX];
    const pp_park *pk;
    const pp_indicator *ind;
    double v;
} row_ctx;

/* Starts a row of the long layouts: 1 when it names a configured series
 * (r->pk, r->ind), 0 for a row skipped on purpose, -1 when it is bad (r->why). */
static int row_begin(parser *ps, record *rec, const header *h, row_ctx *r)
{
    r->v = 0;
    if (skip_row(ps, rec, h))
        return 0;
    if (check_shape(rec, h, r->why, sizeof r->why) < 0 ||
        (r->pk = find_park(ps->cat, cell(rec, h, COL_PARK), r->why, sizeof r->why)) == NULL ||
        (r->ind = find_indicator(ps->cat, cell(rec, h, COL_INDICATOR), r->why, sizeof r->why)) == NULL)
        return -1;
    return 1;
}

/* Column col of a row as a value in ind's unit: 1, 0 when empty, -1 (why). */
static int row_value(record *rec, const header *h, col_role col, const pp_indicator *ind,
                     double *v, char *why, size_t len)
{
    return value_parse(cell(rec, h, col), cell(rec, h, COL_UNIT),
                       h->at[col] >= 0 ? h->unit[h->at[col]] : NULL, ind->unit, v, why, len);
}

/* Checks that the row's record (pk, ind, when) is not a duplicate and names
 * it: 0, or -1 (why, or the parser's fatal error when out of memory). */
static int row_name(parser *ps, const record *rec, const pp_park *pk, const pp_indicator *ind,
                    int when, char park[PP_ID_MAX + 1], char indicator[PP_ID_MAX + 1], char *why,
                    size_t len)
{
    if (dup_or_oom(ps, (int)(pk - ps->cat->parks), (int)(ind - ps->cat->indicators), when,
                   rec->line, true, why, len) < 0)
        return -1;
    snprintf(park, PP_ID_MAX + 1, "%s", pk->id);
    snprintf(indicator, PP_ID_MAX + 1, "%s", ind->id);
    return 0;
}

/* The rest of an observation row once its series is named (r): its period,
 * status, value and yoy. 0 (taken, or no value: no figure), -1 (why). */
static int row_observation(parser *ps, record *rec, const header *h, row_ctx *r, char *why,
                           size_t whylen)
{
    pp_obs o = {0};
    if (period_parse(cell(rec, h, COL_PERIOD), &o.period, why, whylen) < 0)
        return -1;
    if (parse_status(cell(rec, h, COL_STATUS), &o.status, why, whylen) < 0)
        return -1;
    int rc = row_value(rec, h, COL_VALUE, r->ind, &r->v, why, whylen);
    if (rc < 0)
        return -1;
    int yrc = parse_yoy(rec, h, h->at[COL_YOY], &o.yoy, why, whylen);
    if (yrc < 0)
        return -1;
    if (rc == 0 && yrc > 0) {
        set_why(why, whylen, "有同比而没有数值", "a yoy without a value");
        return -1;
    }
    if (rc == 0)
        return 0; /* missing: no observation, never zero */
    o.has_yoy = yrc > 0;
    if (row_name(ps, rec, r->pk, r->ind, o.period, o.park, o.indicator, why, whylen) < 0)
        return -1;
    o.value = r->v;
    text_copy_utf8(o.source, sizeof o.source, cell(rec, h, COL_SOURCE));
    text_copy_utf8(o.note, sizeof o.note, cell(rec, h, COL_NOTE));
    if (invalid(pp_obs_invalid(&o), why, whylen))
        return -1;
    if (push_obs(ps, &o, rec->line) < 0)
        out_of_memory(ps);
    return 0;
}

/* The rest of a target row once its series is named (r): its year and
 * target. 0 (taken), -1 (why). */
static int row_target(parser *ps, record *rec, const header *h, row_ctx *r, char *why,
                      size_t whylen)
{
    pp_target t = {0};
    if (parse_year(cell(rec, h, COL_YEAR), &t.year, why, whylen) < 0)
        return -1;
    int rc = row_value(rec, h, COL_TARGET, r->ind, &r->v, why, whylen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        set_why(why, whylen, "缺少目标值", "missing target value");
        return -1;
    }
    if (row_name(ps, rec, r->pk, r->ind, t.year, t.park, t.indicator, why, whylen) < 0)
        return -1;
    t.value = r->v;
    text_copy_utf8(t.source, sizeof t.source, cell(rec, h, COL_SOURCE));
    if (invalid(pp_target_invalid(&t), why, whylen))
        return -1;
    if (push_target(ps, &t) < 0)
        out_of_memory(ps);
    return 0;
}

/* A row of the long layouts: row_begin, then read_row (row_observation or
 * row_target), which returns -1 with the reason in why (r->why) for a bad
 * row (listed unless the parser stopped), 0 otherwise. */
static void row_long(parser *ps, record *rec, const header *h,
                     int (*read_row)(parser *, record *, const header *, row_ctx *, char *,
                                     size_t))
{
    row_ctx r;
    int begun = row_begin(ps, rec, h, &r);
    if (begun == 0)
        return;
    if ((begun < 0 || read_row(ps, rec, h, &r, r.why, sizeof r.why) < 0) && !ps->fatal)
        add_why(ps, rec->line, r.why);
}

static void row_wide(parser *ps, record *rec, const header *h)
{
    const pp_catalog *cat = ps->cat;
    char why[WHY_MAX], cwhy[WHY_MAX];
    pp_obs o;
    memset(&o, 0, sizeof o);

    if (skip_row(ps, rec, h))
        return;
    if (check_shape(rec, h, why, sizeof why) < 0)
        goto bad;
    const pp_park *pk = find_park(cat, cell(rec, h, COL_PARK), why, sizeof why);
    if (pk == NULL)
        goto bad;
    if (period_parse(cell(rec, h, COL_PERIOD), &o.period, why, sizeof why) < 0)
        goto bad;
    if (parse_status(cell(rec, h, COL_STATUS), &o.status, why, sizeof why) < 0)
        goto bad;
    snprintf(o.park, sizeof o.park, "%s", pk->id);
    text_copy_utf8(o.source, sizeof o.source, cell(rec, h, COL_SOURCE));
    text_copy_utf8(o.note, sizeof o.note, cell(rec, h, COL_NOTE));

    /* every cell is checked (values, then duplicates) before any is added:
     * a bad row adds nothing */
    double vals[CSV_MAX_COLUMNS], yoys[CSV_MAX_COLUMNS];
    bool have[CSV_MAX_COLUMNS], have_yoy[CSV_MAX_COLUMNS];
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < h->ncols; i++) {
            if (h->role[i] != COL_WIDE)
                continue;
            const pp_indicator *ind = h->ind[i];
            int rc = 0;
            if (pass == 0) {
                rc = i < rec->n ? value_parse(field(rec, i), NULL, h->unit[i], ind->unit, &vals[i],
                                              cwhy, sizeof cwhy)
                                : 0;
                have[i] = rc > 0;
                have_yoy[i] = false;
                if (rc >= 0) {
                    int yrc = parse_yoy(rec, h, h->yoy_col[i], &yoys[i], why, sizeof why);
                    if (yrc < 0)
                        goto bad;
                    if (yrc > 0 && !have[i]) {
                        set_why(cwhy, sizeof cwhy, "有同比而没有数值", "a yoy without a value");
                        rc = -1;
                    }
                    have_yoy[i] = yrc > 0;
                }
            } else if (have[i]) {
                rc = dup_or_oom(ps, (int)(pk - cat->parks), (int)(ind - cat->indicators),
                                o.period, rec->line, pass == 2, cwhy, sizeof cwhy);
            }
            if (rc < 0) {
                char zp[WHY_MAX], ep[WHY_MAX];
                snprintf(zp, sizeof zp, "“%s”列：", h->name[i]);
                snprintf(ep, sizeof ep, "column '%s': ", h->name[i]);
                why_prefix(why, sizeof why, zp, ep, cwhy);
                goto bad;
            }
            if (pass == 2 && have[i]) {
                snprintf(o.indicator, sizeof o.indicator, "%s", ind->id);
                o.value = vals[i];
                o.has_yoy = have_yoy[i];
                o.yoy = have_yoy[i] ? yoys[i] : 0;
                if (invalid(pp_obs_invalid(&o), why, sizeof why))
                    goto bad;
                if (push_obs(ps, &o, rec->line) < 0) {
                    out_of_memory(ps);
                    return;
                }
            }
        }
    }
    return;
bad:
    if (!ps->fatal)
        add_why(ps, rec->line, why);
}

/* ======================================================================
 * Entry points
 * ====================================================================== */

/* Settles the encoding: returns the UTF-8 text to read (data itself or a
 * converted copy in *owned), or NULL after recording a whole-input error. */
static const char *settle_encoding(parser *ps, const char *data, size_t len, size_t *outlen,
                                   char **owned)
{
    size_t bad_off = 0;
    *owned = NULL;
    if (memchr(data, '\0', len) != NULL) {
        add_error(ps, 0, "文件中有 NUL 字节，不是文本文件（CSV）",
                  "the input contains a NUL byte: not a text file");
        return NULL;
    }
    if (text_utf8_valid(data, len, &bad_off)) {
        if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
            data += 3, len -= 3;
        *outlen = len;
        return data;
    }
    size_t n = 0;
    int rc = text_gb18030_to_utf8(data, len, owned, &n);
    if (rc == -ENOMEM) {
        out_of_memory(ps);
        return NULL;
    }
    if (rc < 0) {
        add_error(ps, 0, "文件既不是 UTF-8 编码（第%zu字节有误）也不是 GB18030 编码",
                  "the input is neither UTF-8 (bad byte at offset %zu) nor GB18030", bad_off);
        return NULL;
    }
    ps->out->encoding = "GB18030";
    const char *t = *owned;
    if (n >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0) /* a GB18030 BOM (84 31 95 33) */
        t += 3, n -= 3;
    *outlen = n;
    return t;
}

/* Finds the header among the first CSV_HEADER_SCAN non-blank records (see
 * the top of this file), reads it (with its second row, if it has one) and
 * leaves rd just past it. Returns 0, or -1 after recording errors. */
static int find_header(parser *ps, reader *rd, record *rec, record *sub, header *h)
{
    reader at = *rd, best_at = *rd;
    size_t best_cells = 0, seen = 0;
    int rc;
    bool found = false;
    for (;;) {
        at = *rd;
        rc = read_record(ps, rd, rec);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (record_blank(rec))
            continue;
        if (header_like(ps, rec)) {
            found = true;
            ps->out->header_recognised = true;
            best_at = at;
            break;
        }
        size_t cells = 0;
        for (size_t i = 0; i < rec->n; i++)
            cells += field(rec, i)[0] != '\0';
        if (cells > best_cells) {
            best_cells = cells;
            best_at = at;
        }
        if (++seen == CSV_HEADER_SCAN)
            break;
    }
    if (!found && best_cells == 0) {
        add_error(ps, 0, "文件为空：没有表头", "empty input: no header");
        return -1;
    }
    /* read the header again from where it starts */
    *rd = best_at;
    if (read_record(ps, rd, rec) <= 0)
        return -1;
    ps->out->header_line = rec->line;
    /* a second header row right under it? */
    reader after = *rd;
    bool two = false;
    rc = read_record(ps, rd, sub);
    if (rc < 0)
        return -1;
    if (rc > 0 && !record_blank(sub) && second_header_row(rec, sub))
        two = true;
    else
        *rd = after;
    return read_header(ps, rec, two ? sub : NULL, h);
}

int csv_parse(const char *data, size_t len, const pp_catalog *cat, csv_result *out)
{
    return csv_parse_stoppable(data, len, cat, out, NULL, NULL);
}

int csv_parse_stoppable(const char *data, size_t len, const pp_catalog *cat, csv_result *out,
                        bool (*stop)(void *ud), void *ud)
{
    return csv_parse_until(data, len, cat, -1, out, stop, ud);
}

void csv_future_why(int period, int max_period, char *why, size_t len)
{
    char a[16], b[16];
    pp_period_format(period, a, sizeof a);
    pp_period_format(max_period, b, sizeof b);
    snprintf(why, len, "期间%s晚于当前月份（%s），不能接收 / period %s is after the current month (%s)",
             a, b, a, b);
}

int csv_parse_until(const char *data, size_t len, const pp_catalog *cat, int max_period,
                    csv_result *out, bool (*stop)(void *ud), void *ud)
{
    parser ps;
    record *rec = NULL, *sub = NULL;
    header *h = NULL;
    char *owned = NULL;
    const char *text;
    size_t tlen = 0;

    memset(out, 0, sizeof *out);
    memset(&ps, 0, sizeof ps);
    ps.max_period = max_period;
    out->encoding = "UTF-8";
    ps.cat = cat;
    ps.out = out;
    if (data == NULL && len > 0) {
        add_error(&ps, 0, "没有输入", "no input");
        goto done;
    }
    if (len > CSV_MAX_BYTES) {
        add_error(&ps, 0, "文件超过%u字节", "the input is larger than %u bytes", CSV_MAX_BYTES);
        goto done;
    }
    if (cat == NULL) {
        add_error(&ps, 0, "没有园区和指标目录", "no catalogue");
        goto done;
    }
    text = settle_encoding(&ps, data ? data : "", len, &tlen, &owned);
    if (text == NULL)
        goto done;
    rec = calloc(1, sizeof *rec);
    sub = calloc(1, sizeof *sub);
    h = calloc(1, sizeof *h);
    if (rec == NULL || sub == NULL || h == NULL) {
        out_of_memory(&ps);
        goto done;
    }

    reader rd = {text, text + tlen, 1};
    int rc = find_header(&ps, &rd, rec, sub, h);
    if (rc < 0)
        goto done;
    for (size_t n_read = 0; !ps.fatal && (rc = read_record(&ps, &rd, rec)) > 0;) {
        if (stop != NULL && ++n_read % CSV_STOP_EVERY == 0 && stop(ud)) {
            out->stopped = true;
            break;
        }
        if (record_blank(rec))
            continue;
        out->n_rows++;
        switch (out->layout) {
        case CSV_LAYOUT_OBSERVATIONS: row_long(&ps, rec, h, row_observation); break;
        case CSV_LAYOUT_TARGETS: row_long(&ps, rec, h, row_target); break;
        case CSV_LAYOUT_WIDE: row_wide(&ps, rec, h); break;
        default: break;
        }
    }
    if (!out->stopped && !ps.fatal && out->n_errors_total == 0 && out->n_obs == 0 &&
        out->n_targets == 0) {
        if (out->n_skipped > 0)
            add_error(&ps, 0, "文件中没有任何数据（%zu行合计或注释行已跳过）",
                      "no figures in the input (%zu total or note rows skipped)", out->n_skipped);
        else
            add_error(&ps, 0, "文件中没有任何数据", "no figures in the input");
    }
done:
    if (rec)
        free(rec->buf);
    if (sub)
        free(sub->buf);
    free(rec);
    free(sub);
    free(h);
    free(owned);
    free(ps.dups);
    return out->n_errors_total > 0 || out->stopped ? -1 : 0;
}

void csv_result_free(csv_result *r)
{
    if (r == NULL)
        return;
    free(r->obs);
    free(r->targets);
    free(r->errors);
    free(r->skipped);
    memset(r, 0, sizeof *r);
}

/* Writes each entry as "<name>:<line>: 文件 <name>，第<line>行：<what><reason>". */
static char *entries_report(const csv_error *v, size_t n, size_t n_total, const char *name,
                            const char *sheet, const char *what)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return NULL;
    if (name == NULL)
        name = "input";
    for (size_t i = 0; i < n; i++) {
        int line = v[i].line;
        if (sheet != NULL)
            fprintf(f, "%s:%s!%d: 文件 %s，工作表 %s", name, sheet, line, name, sheet);
        else
            fprintf(f, "%s:%d: 文件 %s", name, line, name);
        if (line > 0)
            fprintf(f, "，第%d行", line);
        fprintf(f, "：%s%s\n", what, v[i].reason);
    }
    if (n_total > n)
        fprintf(f, "%s: 另有%zu处错误未列出 / %zu more errors not shown\n", name, n_total - n,
                n_total - n);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return NULL;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *csv_errors_report(const csv_result *r, const char *name)
{
    return csv_errors_report_at(r, name, NULL);
}

char *csv_errors_report_at(const csv_result *r, const char *name, const char *sheet)
{
    return entries_report(r->errors, r->n_errors, r->n_errors_total, name, sheet, "");
}

char *csv_skipped_report_at(const csv_result *r, const char *name, const char *sheet)
{
    return entries_report(r->skipped, r->n_skipped, r->n_skipped, name, sheet, "");
}
