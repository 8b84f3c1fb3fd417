/*
 * check_csv.c — Check suite for daemon/csv.c and daemon/text.c (README, Feeding figures).
 *
 * The catalogue is built by hand: the three parks of tests/fixtures/parks.conf
 * and the standard indicators of config/indicators.conf with their Chinese
 * labels and units.
 * Table-driven cases cover every period and value form (good and bad), the
 * RFC 4180 record reader (quotes, embedded commas and newlines, CRLF, BOM,
 * blank lines, line numbers), the three layouts with English and Chinese
 * headers, unit conversion and refusal across currencies, duplicates, bounds,
 * encodings (GB18030 produced with iconv in the test) and the shipped
 * fixtures, read from tests/fixtures (or $PP_FIXTURE_DIR).
 */
#include "csv.h"
#include "text.h"
#include "check_main.h"
#include "test_file.h"

#include <check.h>
#include <iconv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the catalogue -------------------------------------------------------- */

#include "test_catalog.h"

static const pp_catalog cat = TEST_CATALOG;

/* ---- helpers ---------------------------------------------------------------- */

static int parse_str(const char *s, csv_result *r)
{
    return csv_parse(s, strlen(s), &cat, r);
}

static bool close_to(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static const pp_obs *find_obs(const csv_result *r, const char *park, const char *ind, int y,
                              int m)
{
    for (size_t i = 0; i < r->n_obs; i++)
        if (strcmp(r->obs[i].park, park) == 0 && strcmp(r->obs[i].indicator, ind) == 0 &&
            r->obs[i].period == pp_period_make(y, m))
            return &r->obs[i];
    return NULL;
}

/* The figure park/ind/y-m of r: it is there, with value (to 1e-9). */
static const pp_obs *expect_obs(const csv_result *r, const char *park, const char *ind, int y,
                                int m, double value)
{
    const pp_obs *o = find_obs(r, park, ind, y, m);
    ck_assert_msg(o != NULL, "no %s %s %d-%02d", park, ind, y, m);
    ck_assert_msg(close_to(o->value, value), "%s %s = %.17g, want %.17g", park, ind, o->value,
                  value);
    return o;
}

/* Parses in; the errors report named name (caller frees) once rc is as wanted. */
static char *parse_reported(const char *name, const char *in, int want_rc, csv_result *r)
{
    int rc = parse_str(in, r);
    char *rep = csv_errors_report(r, name);
    ck_assert_ptr_nonnull(rep);
    ck_assert_msg(rc == want_rc, "%s: rc %d\n%s", name, rc, rep);
    return rep;
}

/* Parses the shipped fixture name into r; csv_parse returns rc. */
static void parse_fixture(const char *name, int rc, csv_result *r)
{
    size_t len;
    char *data = test_fixture(name, &len);
    ck_assert_int_eq(csv_parse(data, len, &cat, r), rc);
    free(data);
}

/* Converts UTF-8 to GB18030 with iconv, as a spreadsheet on Windows would save it. */
static char *to_gb18030(const char *utf8, size_t len, size_t *outlen)
{
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    ck_assert(cd != (iconv_t)-1);
    size_t cap = len * 2 + 16, left = cap;
    char *buf = malloc(cap), *in = (char *)utf8, *out = buf;
    size_t inleft = len;
    ck_assert_ptr_nonnull(buf);
    ck_assert(iconv(cd, &in, &inleft, &out, &left) != (size_t)-1);
    iconv_close(cd);
    *outlen = cap - left;
    return buf;
}

/* The English half of a reason: reasons are "<中文> / <English>", Chinese
 * first (the people who send figures read Chinese). */
static const char *en_half(const char *why)
{
    const char *sep = strstr(why, " / ");
    ck_assert_msg(sep != NULL && sep > why, "no '<中文> / <English>' in '%s'", why);
    ck_assert_msg((unsigned char)why[0] >= 0x80, "not Chinese first: '%s'", why);
    return sep + 3;
}

/* e is at line, its English half is want ('*' at the end: a prefix of it). */
static void expect_reason(const csv_error *e, int line, const char *want)
{
    size_t wl = strlen(want);
    ck_assert_int_eq(e->line, line);
    const char *en = en_half(e->reason);
    if (want[wl - 1] == '*')
        ck_assert_msg(strncmp(en, want, wl - 1) == 0, "%s", e->reason);
    else
        ck_assert_str_eq(en, want);
}

/* ---- periods ------------------------------------------------------------------ */

static const struct {
    const char *in;
    int year, month;
} good_periods[] = {
    {"2024-11", 2024, 11},
    {"2024-1", 2024, 1},
    {"2024-01", 2024, 1},
    {"2024/11", 2024, 11},
    {"202411", 2024, 11},
    {"202401", 2024, 1},
    {"2024M11", 2024, 11},
    {"2024m3", 2024, 3},
    {"2024年11月", 2024, 11},
    {"2024年1-11月", 2024, 11},
    {"2024年1—11月份", 2024, 11},
    {"2024年1～11月", 2024, 11},
    {"2024年1〜11月", 2024, 11},
    {"2024年1–11月", 2024, 11},
    {"2024年1~11月", 2024, 11},
    {"2024年1-2月", 2024, 2},
    {"2024年1-1月", 2024, 1},
    {"2024年3月份", 2024, 3},
    {"2024年前11个月", 2024, 11},
    {"2024年前两个月", 2024, 2},
    {"2024年一季度", 2024, 3},
    {"2024年二季度", 2024, 6},
    {"2024年三季度", 2024, 9},
    {"2024年四季度", 2024, 12},
    {"2024年第一季度", 2024, 3},
    {"2024年1季度", 2024, 3},
    {"2024年上半年", 2024, 6},
    {"2024年前三季度", 2024, 9},
    {"2024年全年", 2024, 12},
    {"2024年十一月", 2024, 11},
    {"2024年1-11月累计", 2024, 11},
    {"２０２４年１－１１月", 2024, 11},
    {"２０２４－１１", 2024, 11},
    {"  2024-11  ", 2024, 11},
    {"\xE3\x80\x80" "2024年 1-8 月\xE3\x80\x80", 2024, 8},
    {"1980-01", 1980, 1},
    {"1980年1月", 1980, 1},
    {"2199-12", 2199, 12},
    {"2024Q3", 2024, 9},
    /* Excel habits: a date means its month; a dot */
    {"2021/8/1", 2021, 8},
    {"2021/8/31", 2021, 8},
    {"2021-08-01", 2021, 8},
    {"2024-11-05", 2024, 11},
    {"2021/8/1 0:00:00", 2021, 8},
    {"2021-08-01 00:00", 2021, 8},
    {"2021.8", 2021, 8},
    {"2024.11", 2024, 11},
    {"2021.08.01", 2021, 8},
    {"2021年8月", 2021, 8},
    {"2021年8月1日", 2021, 8},
};

START_TEST(test_period_good)
{
    int p = -1;
    char why[320] = "";
    int rc = csv_parse_period(good_periods[_i].in, &p, why, sizeof why);
    ck_assert_msg(rc == 0, "'%s' refused: %s", good_periods[_i].in, why);
    ck_assert_int_eq(pp_period_year(p), good_periods[_i].year);
    ck_assert_int_eq(pp_period_month(p), good_periods[_i].month);
}
END_TEST

/* the English halves of model.h's reasons (the Chinese ones are checked too) */
#define PERIOD_TOO_EARLY "period before 1980-01 cannot be stored"
#define PERIOD_TOO_LATE "period after 2199-12 cannot be stored"

static const struct {
    const char *in;
    const char *why; /* expected reason, exactly */
} bad_periods[] = {
    {"2021-13", "bad period '2021-13': month must be 1..12"},
    {"2021-0", "bad period '2021-0': month must be 1..12"},
    {"202100", "bad period '202100': month must be 1..12"},
    {"2024年13月", "bad period '2024年13月': month must be 1..12"},
    /* the range is the RRD files' (see PP_PERIOD_MIN_YEAR): nothing before 1980-01 */
    {"1979-12", "bad period '1979-12': " PERIOD_TOO_EARLY},
    {"1969-12", "bad period '1969-12': " PERIOD_TOO_EARLY},
    {"1969年1-12月", "bad period '1969年1-12月': " PERIOD_TOO_EARLY},
    {"1900-01", "bad period '1900-01': " PERIOD_TOO_EARLY},
    {"1899-12", "bad period '1899-12': " PERIOD_TOO_EARLY},
    {"2200-01", "bad period '2200-01': " PERIOD_TOO_LATE},
    {"2024年3-5月",
     "bad period '2024年3-5月': a range must start at month 1 (figures are cumulative from "
     "January)"},
    {"2024年五季度", "bad period '2024年五季度': quarter must be 1..4"},
    {"", "missing period"},
    {"2024", "bad period '2024': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"24-11", "bad period '24-11': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2024-11-32", "bad period '2024-11-32': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2021/8/0", "bad period '2021/8/0': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2021/13/1", "bad period '2021/13/1': month must be 1..12"},
    {"2021-08/01", "bad period '2021-08/01': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2021年8月1", "bad period '2021年8月1': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2021/8/1 0:00x", "bad period '2021/8/1 0:00x': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2024年下半年", "bad period '2024年下半年': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2024年11", "bad period '2024年11': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"abc", "bad period 'abc': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2024-11x", "bad period '2024-11x': not a period (e.g. 2024-11 or 2024年1-11月)"},
    {"2024M", "bad period '2024M': not a period (e.g. 2024-11 or 2024年1-11月)"},
};

START_TEST(test_period_bad)
{
    int p = 12345;
    char why[320] = "";
    ck_assert_int_eq(csv_parse_period(bad_periods[_i].in, &p, why, sizeof why), -1);
    ck_assert_str_eq(en_half(why), bad_periods[_i].why);
    if (strstr(bad_periods[_i].why, "cannot be stored"))
        ck_assert_ptr_nonnull(strstr(why, "无法保存 / ")); /* model.h's Chinese half first */
    ck_assert_int_eq(p, 12345); /* untouched */
}
END_TEST

/* "YYYY-MM" has a fast path (csv.c): it reads every such text as the
 * general way reads "YYYY/MM" — the same period, or a refusal with the same
 * reason (but for the period as written). */
START_TEST(test_period_plain_as_general)
{
    static const int years[] = { 0, 1, 999, 1000, 1899, 2999, 9999 };
    for (int yi = -(2202 - 1978); yi < (int)(sizeof years / sizeof years[0]); yi++) {
        int y = yi < 0 ? 2202 + yi : years[yi]; /* 1978..2201, then the others */
        for (int m = 0; m < 100; m++) {
            char dash[32], slash[32], why_d[320] = "", why_s[320] = "";
            snprintf(dash, sizeof dash, "%04d-%02d", y, m);
            snprintf(slash, sizeof slash, "%04d/%02d", y, m);
            int pd = -1, ps = -1;
            int rd = csv_parse_period(dash, &pd, why_d, sizeof why_d);
            int rs = csv_parse_period(slash, &ps, why_s, sizeof why_s);
            ck_assert_msg(rd == rs && pd == ps, "%s: %d %d, %s: %d %d", dash, rd, pd, slash, rs, ps);
            if (rd != 0) {
                int n = 0;
                for (char *at = why_s; (at = strstr(at, slash)) != NULL; at++, n++)
                    at[4] = '-'; /* the period as written, in both halves */
                ck_assert_int_gt(n, 0);
                ck_assert_str_eq(why_d, why_s);
            }
        }
    }
}
END_TEST

START_TEST(test_period_long_and_small_why)
{
    char big[300];
    memset(big, '9', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    int p;
    char why[320];
    ck_assert_int_eq(csv_parse_period(big, &p, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "too long"));
    char tiny[12];
    ck_assert_int_eq(csv_parse_period("2021-13", &p, tiny, sizeof tiny), -1);
    ck_assert_str_eq(tiny, "期间“20"); /* cut at a character boundary */
    ck_assert_int_eq(csv_parse_period("2021-13", &p, NULL, 0), -1);
}
END_TEST

/* ---- values -------------------------------------------------------------------- */

static const struct {
    const char *in, *unit_col, *to;
    double want;
} good_values[] = {
    {"192.2", NULL, "亿元", 192.2},
    {"1,234.5", NULL, "亿元", 1234.5},
    {"1,234,567", "", "亿元", 1234567},
    {"1，234.5", NULL, "亿元", 1234.5},
    {"-3.1", NULL, "%", -3.1},
    {"+3.1", NULL, "%", 3.1},
    {"−3.1", NULL, "%", -3.1},
    {"１９２．２", NULL, "亿元", 192.2},
    {"12.3%", NULL, "%", 12.3},
    {"12.3％", NULL, "%", 12.3},
    {"12.3", "%", "%", 12.3},
    {"12.3", "％", "%", 12.3},
    {"192.2亿元", NULL, "亿元", 192.2},
    {"192.2 亿元", "亿元", "亿元", 192.2},
    {"192.2亿元", NULL, "万元", 1922000},
    {"192.2", "亿元", "万元", 1922000},
    {"1922000万元", NULL, "亿元", 192.2},
    {"1922000", "万元", "亿元", 192.2},
    {"5000000元", NULL, "万元", 500},
    {"3.5亿美元", NULL, "万美元", 35000},
    {"2690万美元", NULL, "万美元", 2690},
    {"2690", "万美元", "万美元", 2690},
    {"12000美元", NULL, "万美元", 1.2},
    {"26个", NULL, "个", 26},
    {"1位", NULL, "位", 1},
    {"  42 ", NULL, "个", 42},
    {"0", NULL, "亿元", 0},
    {"0.0", NULL, "亿元", 0},
    {".5", NULL, "亿元", 0.5},
    {"7", NULL, NULL, 7},
};

START_TEST(test_value_good)
{
    double v = -999;
    char why[320] = "";
    int rc = csv_parse_value(good_values[_i].in, good_values[_i].unit_col, good_values[_i].to, &v,
                             why, sizeof why);
    ck_assert_msg(rc == 1, "'%s' gave %d: %s", good_values[_i].in, rc, why);
    ck_assert_msg(close_to(v, good_values[_i].want), "'%s' -> %.17g, want %.17g",
                  good_values[_i].in, v, good_values[_i].want);
}
END_TEST

static const char *const missing_values[] = {"", "   ", "-", "—", "——", "N/A", "n/a", "NA",
                                             "na", "/", "…", "……", "－", "\xE3\x80\x80"};

START_TEST(test_value_missing)
{
    double v = -999;
    char why[320] = "";
    ck_assert_int_eq(csv_parse_value(missing_values[_i], "亿元", "亿元", &v, why, sizeof why), 0);
    ck_assert(v == -999); /* untouched: never zero */
}
END_TEST

static const struct {
    const char *in, *unit_col, *to, *why;
} bad_values[] = {
    {"abc", NULL, "亿元", "bad value 'abc': not a number"},
    {"inf", NULL, "亿元", "bad value 'inf': not a number"},
    {"nan", NULL, "亿元", "bad value 'nan': not a number"},
    {"0x1A", NULL, "亿元", "bad value '0x1A': not a number"},
    {"1e5", NULL, "亿元", "bad value '1e5': not a number"},
    {"12.3.4", NULL, "亿元", "bad value '12.3.4': not a number"},
    {"1-2", NULL, "亿元", "bad value '1-2': not a number"},
    {"--5", NULL, "亿元", "bad value '--5': not a number"},
    {"1,5", NULL, "亿元", "bad value '1,5': misplaced thousands separator"},
    {"1234,567", NULL, "亿元", "bad value '1234,567': misplaced thousands separator"},
    {",123", NULL, "亿元", "bad value ',123': misplaced thousands separator"},
    {"0.3", "亿元", "万美元", "unit '亿元' cannot be converted to '万美元' (never converts currencies)"},
    {"0.3亿元", NULL, "万美元", "unit '亿元' cannot be converted to '万美元' (never converts currencies)"},
    {"2690万美元", NULL, "亿元", "unit '万美元' cannot be converted to '亿元' (never converts currencies)"},
    {"12%", NULL, "亿元", "unit '%' does not match the indicator's unit '亿元'"},
    {"12亿元", NULL, "%", "unit '亿元' does not match the indicator's unit '%'"},
    {"26个", NULL, "位", "unit '个' does not match the indicator's unit '位'"},
    {"12", "furlongs", "亿元", "unknown unit 'furlongs'"},
    {"12abc", NULL, "亿元", "unknown unit 'abc'"},
    {"12亿元", "万元", "万元", "unit '亿元' in the value disagrees with unit column '万元'"},
    {"12%", NULL, "", "unit '%' given but the indicator has no unit"},
    {"1" "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
     NULL, "亿元", NULL},
};

START_TEST(test_value_bad)
{
    double v = -999;
    char why[320] = "";
    ck_assert_int_eq(csv_parse_value(bad_values[_i].in, bad_values[_i].unit_col, bad_values[_i].to,
                                     &v, why, sizeof why),
                     -1);
    if (bad_values[_i].why)
        ck_assert_str_eq(en_half(why), bad_values[_i].why);
    else
        ck_assert(why[0] != '\0');
    ck_assert(v == -999);
}
END_TEST

/* ---- edit distance and text helpers --------------------------------------------- */

static const struct {
    const char *a, *b;
    size_t d;
} distances[] = {
    {"", "", 0},          {"abc", "", 3},         {"", "abc", 3},
    {"kitten", "sitting", 3}, {"xiangtan-etd", "xiangtan-etdz", 1},
    {"fixed_asset_investmnt", "fixed_asset_investment", 1}, {"same", "same", 0},
    {"flaw", "lawn", 2},
};

START_TEST(test_edit_distance)
{
    ck_assert_uint_eq(csv_edit_distance(distances[_i].a, distances[_i].b), distances[_i].d);
    ck_assert_uint_eq(csv_edit_distance(distances[_i].b, distances[_i].a), distances[_i].d);
}
END_TEST

START_TEST(test_text_helpers)
{
    char s[64];
    strcpy(s, "１９２．２％\xE3\x80\x80ＡＺａｚ～！");
    ck_assert_uint_eq(text_fold_ascii(s), strlen("192.2% AZaz~!"));
    ck_assert_str_eq(s, "192.2% AZaz~!");
    strcpy(s, "固定资产投资（亿元）");
    text_fold_ascii(s);
    ck_assert_str_eq(s, "固定资产投资(亿元)");

    strcpy(s, " \t\xC2\xA0\xE3\x80\x80 a b \xE3\x80\x80\r\n");
    ck_assert_str_eq(text_trim(s), "a b");
    strcpy(s, "   ");
    ck_assert_str_eq(text_trim(s), "");

    ck_assert(text_utf8_valid("abc 湘潭", strlen("abc 湘潭"), NULL));
    size_t off = 99;
    ck_assert(!text_utf8_valid("ab\xC0\x80", 4, &off)); /* overlong NUL */
    ck_assert_uint_eq(off, 2);
    ck_assert(!text_utf8_valid("\xED\xA0\x80", 3, &off)); /* surrogate */
    ck_assert(!text_utf8_valid("\xF4\x90\x80\x80", 4, &off)); /* > U+10FFFF */
    ck_assert(!text_utf8_valid("\xE6\xB9", 2, &off)); /* cut */
    ck_assert_uint_eq(off, 0);
    ck_assert(!text_utf8_valid("\xB9", 1, &off));

    char d[8];
    ck_assert_uint_eq(text_copy_utf8(d, sizeof d, "ab湘潭"), 5); /* 2 + 3, not half of 潭 */
    ck_assert_str_eq(d, "ab湘");
    ck_assert_uint_eq(text_copy_utf8(d, sizeof d, "abcd湘"), 7);
    ck_assert_uint_eq(text_copy_utf8(d, sizeof d, "abcde湘"), 5);
    ck_assert_str_eq(d, "abcde");

    char *u = NULL;
    size_t n = 0;
    ck_assert_int_eq(text_gb18030_to_utf8("\xCF\xE6\xCC\xB6", 4, &u, &n), 0); /* 湘潭 */
    ck_assert_str_eq(u, "湘潭");
    ck_assert_uint_eq(n, 6);
    free(u);
    ck_assert_int_lt(text_gb18030_to_utf8("\xFF\xFF", 2, &u, &n), 0);
    ck_assert_ptr_null(u);
}
END_TEST

/* ---- whole inputs, table-driven --------------------------------------------------- */

static const struct {
    const char *name;
    const char *in;
    int rc;
    csv_layout layout;
    size_t n_obs, n_targets, n_errors, n_rows;
    int line;          /* of the first error */
    const char *why;   /* first error's reason, or a prefix of it ending in '*' */
} inputs[] = {
    {"lf", "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-08,192.2\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 1, 0, NULL},
    {"crlf", "park,indicator,period,value\r\nxiangtan-etdz,fixed_asset_investment,2021-08,192.2\r\n"
             "xiangtan-etdz,fixed_asset_investment,2021-07,166.5\r\n",
     0, CSV_LAYOUT_OBSERVATIONS, 2, 0, 0, 2, 0, NULL},
    {"no final newline", "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,25.6",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 1, 0, NULL},
    {"bom", "\xEF\xBB\xBFpark,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,25.6\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 1, 0, NULL},
    {"blank lines and spaces",
     "\n  \npark , Indicator,PERIOD, Value \n\n xiangtan-etdz ,\t fiscal_revenue , 2021-08 , 25.6 \n"
     "\r\n,,,\n\nxiangtan-etdz,fiscal_revenue,2021-07,zz\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 2, 9, "bad value 'zz': not a number"},
    {"quoted comma and newline",
     "park,indicator,period,value,note\n"
     "\"xiangtan-etdz\",\"fixed_asset_investment\",\"2021-08\",\"1,234.5\",\"a, b\nc \"\"q\"\"\"\n"
     "xiangtan-etdz,fixed_asset_investment,2021-13,1,\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 2, 4, "bad period '2021-13': month must be 1..12"},
    {"chinese header", "园区,指标,时间,值,单位,状态,来源,备注\n湘潭经开区,固定资产投资,2021年1-8月,1922000,万元,p,统计局,\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 1, 0, NULL},
    {"chinese header 2", "园区,指标,期间,数值\nxiangtan-etdz,实际利用外资,2021年1-8月,2690万美元\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 1, 0, NULL},
    {"missing value is no observation",
     "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,—\n"
     "xiangtan-etdz,fiscal_revenue,2021-07,N/A\nxiangtan-etdz,fiscal_revenue,2021-06,\n"
     "xiangtan-etdz,fiscal_revenue,2021-05,1\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 4, 0, NULL},
    {"only missing values: no figures",
     "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,—\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 1, 0, "no figures in the input"},
    {"bad status", "park,indicator,period,value,status\nxiangtan-etdz,fiscal_revenue,2021-08,1,X\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 1, 2, "bad status 'X': must be A, P, E or R"},
    {"duplicate obs",
     "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1\n"
     "湘潭经开区,财税收入,2021年1-8月,2\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 2, 3, "duplicate of line 2"},
    {"missing column", "park,indicator,value\nxiangtan-etdz,fiscal_revenue,1\n", -1,
     CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 0, 1, "missing column 'period' in the header"},
    {"duplicate column", "park,indicator,period,value,时间\n", -1, CSV_LAYOUT_NONE, 0, 0, 1, 0, 1,
     "duplicate column '时间' (columns 3 and 5 are both 'period')"},
    {"unknown column", "park,indicator,period,value,comment\n", -1, CSV_LAYOUT_OBSERVATIONS, 0, 0,
     1, 0, 1,
     "unknown column 'comment' (an observations file has park, indicator, period, value, unit, "
     "yoy, status, source, note)"},
    {"targets unknown column", "park,indicator,year,target,comment\n", -1, CSV_LAYOUT_TARGETS, 0, 0,
     1, 0, 1,
     "unknown column 'comment' (a targets file has park, indicator, year, target, unit, source, "
     "note)"},
    {"unknown column suggestion", "park,indicator,period,value,sourse\n", -1,
     CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 0, 1, "unknown column 'sourse' (did you mean 'source'?)*"},
    {"targets", "park,indicator,year,target,unit\nxiangtan-etdz,fixed_asset_investment,2021,300,\n"
                "xiangtan-etdz,fdi_actual,２０２１年,0.6亿美元,\n"
                "xiangtan-etdz,fiscal_revenue,2021,,\n",
     -1, CSV_LAYOUT_TARGETS, 0, 2, 1, 3, 4, "missing target value"},
    {"targets duplicate", "园区,指标,年度,目标\nxiangtan-etdz,固定资产投资,2021,300\n"
                          "xiangtan-etdz,fixed_asset_investment,2021年,310\n"
                          "xiangtan-etdz,fixed_asset_investment,21,310\n",
     -1, CSV_LAYOUT_TARGETS, 0, 1, 2, 3, 3, "duplicate of line 2"},
    {"targets with period", "park,indicator,year,target,period\n", -1, CSV_LAYOUT_TARGETS, 0, 0, 1,
     0, 1, "column 'period' does not belong in a targets file"},
    {"wide", "园区,期间,固定资产投资,fdi_actual,source\n"
             "xiangtan-etdz,2021年1-8月,192.2,2690,published\n"
             "xiangtan-etdz,2021年1-7月,,,\n"
             "xiangtan-etdz,2021-08,1,,\n",
     -1, CSV_LAYOUT_WIDE, 2, 0, 1, 3, 4, "column '固定资产投资': duplicate of line 2"},
    {"wide bad cell adds nothing", "park,period,固定资产投资,fdi_actual\n"
                                   "xiangtan-etdz,2021-08,192.2,0.3亿元\n",
     -1, CSV_LAYOUT_WIDE, 0, 0, 1, 1, 2,
     "column 'fdi_actual': unit '亿元' cannot be converted to '万美元' (never converts currencies)"},
    {"wide unknown indicator", "park,period,固定资产投,fdi_actual\n", -1, CSV_LAYOUT_WIDE, 0, 0, 1,
     0, 1, "unknown indicator column '固定资产投' (did you mean '固定资产投资'?)"},
    {"wide far indicator", "park,period,population\n", -1, CSV_LAYOUT_WIDE, 0, 0, 1, 0, 1,
     "unknown indicator column 'population'"},
    {"wide same indicator twice", "park,period,固定资产投资,fixed_asset_investment\n", -1,
     CSV_LAYOUT_WIDE, 0, 0, 1, 0, 1,
     "duplicate column 'fixed_asset_investment': column 3 is also 'fixed_asset_investment'"},
    {"wide unit column", "park,period,固定资产投资,unit\n", -1, CSV_LAYOUT_WIDE, 0, 0, 1, 0, 1,
     "column 'unit' is ambiguous in a wide table (write the unit in the cells)"},
    {"unknown park far", "park,indicator,period,value\nshanghai,fiscal_revenue,2021-08,1\n", -1,
     CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 1, 2, "unknown park 'shanghai'"},
    {"unknown park by name", "park,indicator,period,value\n湘潭经开,fiscal_revenue,2021-08,1\n", -1,
     CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 1, 2, "unknown park '湘潭经开' (did you mean '湘潭经开区'?)"},
    {"short row", "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08\n", -1,
     CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 1, 2, "the row has 3 fields, the header has 4"},
    {"extra empty cells", "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1,,\n"
                          "xiangtan-etdz,fiscal_revenue,2021-07,1,x\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 2, 3, "the row has 5 fields, the header has 4"},
    {"text after quote", "park,indicator,period,value\n\"xiangtan-etdz\"x,fiscal_revenue,2021-08,1\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 1, 2, "field 1 has text after its closing quote"},
    {"unterminated quote", "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1\n"
                           "xiangtan-etdz,\"fiscal_revenue,2021-07,1\nmore\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 1, 3,
     "unterminated quoted field: the quote runs to the end of the input"},
    {"empty", "", -1, CSV_LAYOUT_NONE, 0, 0, 1, 0, 0, "empty input: no header"},
    {"header only", "park,indicator,period,value\n", -1, CSV_LAYOUT_OBSERVATIONS, 0, 0, 1, 0, 0,
     "no figures in the input"},
    {"not utf8 nor gb18030", "park,indicator,period,value\n\xFF\xFF\n", -1, CSV_LAYOUT_NONE, 0, 0,
     1, 0, 0, "the input is neither UTF-8 (bad byte at offset 28) nor GB18030"},
    {"full-width row", "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,２０２１年１－８月,１９２．２亿元\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 1, 0, NULL},
    {"period before 1980", "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,1980-01,1\n"
                           "xiangtan-etdz,fiscal_revenue,1969-12,1\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 2, 3, "bad period '1969-12': " PERIOD_TOO_EARLY},
    {"wide period before 1980", "park,period,固定资产投资\nxiangtan-etdz,1969年1-12月,1\n", -1,
     CSV_LAYOUT_WIDE, 0, 0, 1, 1, 2, "bad period '1969年1-12月': " PERIOD_TOO_EARLY},
    {"target year before 1980", "park,indicator,year,target\nxiangtan-etdz,fiscal_revenue,1980,1\n"
                                "xiangtan-etdz,fiscal_revenue,1979,1\n",
     -1, CSV_LAYOUT_TARGETS, 0, 1, 1, 2, 3,
     "bad year '1979': year before 1980 cannot be stored"},
    {"target year after 2199", "park,indicator,year,target\nxiangtan-etdz,fiscal_revenue,2200,1\n",
     -1, CSV_LAYOUT_TARGETS, 0, 0, 1, 1, 2,
     "bad year '2200': year after 2199 cannot be stored"},
    {"unnamed column", "park,indicator,period,value,\nxiangtan-etdz,fiscal_revenue,2021-08,1,\n"
                       "xiangtan-etdz,fiscal_revenue,2021-07,1,x\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 0, 1, 2, 3,
     "a value in column 5, which has no name in the header"},
};

START_TEST(test_inputs)
{
    csv_result r;
    char *rep = parse_reported(inputs[_i].name, inputs[_i].in, inputs[_i].rc, &r);
    ck_assert_int_eq(r.layout, inputs[_i].layout);
    ck_assert_uint_eq(r.n_obs, inputs[_i].n_obs);
    ck_assert_uint_eq(r.n_targets, inputs[_i].n_targets);
    ck_assert_msg(r.n_errors == inputs[_i].n_errors, "%s: %zu errors\n%s", inputs[_i].name,
                  r.n_errors, rep);
    ck_assert_uint_eq(r.n_errors_total, r.n_errors);
    ck_assert_uint_eq(r.n_rows, inputs[_i].n_rows);
    ck_assert_str_eq(r.encoding, "UTF-8");
    if (inputs[_i].why)
        expect_reason(&r.errors[0], inputs[_i].line, inputs[_i].why);
    free(rep);
    csv_result_free(&r);
    ck_assert_ptr_null(r.obs);
}
END_TEST

START_TEST(test_row_contents)
{
    csv_result r;
    const char *in =
        "park,indicator,period,value,unit,status,source,note\n"
        "xiangtan-etdz,fixed_asset_investment,\"2021年1-8月\",\"192.2\",亿元,r,\"bureau, monthly\","
        "\"line one\nline two\"\n"
        "浏阳经开区,projects_signed,2023年全年,66,个,,,\n"
        "xiangtan-etdz,value_added_growth,2021-08,12.1%,,e,,\n";
    ck_assert_int_eq(parse_str(in, &r), 0);
    ck_assert_uint_eq(r.n_obs, 3);
    const pp_obs *o = &r.obs[0];
    ck_assert_str_eq(o->park, "xiangtan-etdz");
    ck_assert_str_eq(o->indicator, "fixed_asset_investment");
    ck_assert_int_eq(o->period, pp_period_make(2021, 8));
    ck_assert(close_to(o->value, 192.2));
    ck_assert_int_eq(o->status, 'R');
    ck_assert_str_eq(o->source, "bureau, monthly");
    ck_assert_str_eq(o->note, "line one\nline two");
    ck_assert_int_eq(o->received_at, 0);
    o = &r.obs[1];
    ck_assert_str_eq(o->park, "liuyang-etdz");
    ck_assert_int_eq(o->period, pp_period_make(2023, 12));
    ck_assert(close_to(o->value, 66));
    ck_assert_int_eq(o->status, 'A');
    ck_assert_str_eq(o->source, "");
    ck_assert_int_eq(r.obs[2].status, 'E');
    ck_assert(close_to(r.obs[2].value, 12.1));
    csv_result_free(&r);

    /* line numbers count the physical lines of a quoted field */
    in = "park,indicator,period,value,note\n"
         "xiangtan-etdz,fiscal_revenue,2021-08,1,\"a\nb\r\nc\"\n"
         "\n"
         "xiangtan-etdz,fiscal_revenue,2021-13,1,\n";
    ck_assert_int_eq(parse_str(in, &r), -1);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_int_eq(r.errors[0].line, 6);
    csv_result_free(&r);
}
END_TEST

START_TEST(test_truncation)
{
    char in[8192];
    char src[200] = "a", note[600] = "";
    for (int i = 0; i < 30; i++)
        strcat(src, "湘");
    for (int i = 0; i < 100; i++)
        strcat(note, "浏");
    snprintf(in, sizeof in, "park,indicator,period,value,source,note\n"
                            "xiangtan-etdz,fiscal_revenue,2021-08,1,%s,%s\n", src, note);
    csv_result r;
    ck_assert_int_eq(parse_str(in, &r), 0);
    ck_assert_uint_eq(r.n_obs, 1);
    ck_assert_uint_eq(strlen(r.obs[0].source), 61); /* 1 + 20·3 ≤ 63 */
    ck_assert_uint_eq(strlen(r.obs[0].note), 255);  /* 85·3 */
    ck_assert(text_utf8_valid(r.obs[0].source, strlen(r.obs[0].source), NULL));
    ck_assert(strncmp(r.obs[0].note, note, 255) == 0);
    csv_result_free(&r);
}
END_TEST

START_TEST(test_bounds)
{
    csv_result r;

    /* a NUL byte refuses the whole input */
    static const char nul[] = "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1\0\n";
    ck_assert_int_eq(csv_parse(nul, sizeof nul - 1, &cat, &r), -1);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_int_eq(r.errors[0].line, 0);
    ck_assert_ptr_nonnull(strstr(r.errors[0].reason, "NUL"));
    ck_assert_uint_eq(r.n_obs, 0);
    csv_result_free(&r);

    /* too large */
    size_t big = (size_t)CSV_MAX_BYTES + 1;
    char *buf = malloc(big);
    ck_assert_ptr_nonnull(buf);
    memset(buf, 'a', big);
    ck_assert_int_eq(csv_parse(buf, big, &cat, &r), -1);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_int_eq(r.errors[0].line, 0);
    ck_assert_ptr_nonnull(strstr(r.errors[0].reason, "larger than"));
    csv_result_free(&r);
    free(buf);

    /* too many columns */
    char cols[4096] = "park,indicator,period,value";
    for (int i = 0; i < CSV_MAX_COLUMNS; i++)
        strcat(cols, ",");
    ck_assert_int_eq(parse_str(cols, &r), -1);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_int_eq(r.errors[0].line, 0);
    ck_assert_str_eq(r.errors[0].reason, "第1行超过256列 / line 1 has more than 256 columns");
    csv_result_free(&r);

    /* an overlong field is an error for its row only */
    size_t n = CSV_MAX_FIELD + 200;
    buf = malloc(n + 256);
    ck_assert_ptr_nonnull(buf);
    strcpy(buf, "park,indicator,period,value,note\nxiangtan-etdz,fiscal_revenue,2021-08,1,");
    size_t at = strlen(buf);
    memset(buf + at, 'x', CSV_MAX_FIELD + 1);
    strcpy(buf + at + CSV_MAX_FIELD + 1, "\nxiangtan-etdz,fiscal_revenue,2021-07,1,ok\n");
    ck_assert_int_eq(parse_str(buf, &r), -1);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_int_eq(r.errors[0].line, 2);
    ck_assert_str_eq(r.errors[0].reason, "第5列超过4096字节 / field 5 is longer than 4096 bytes");
    ck_assert_uint_eq(r.n_obs, 1);
    csv_result_free(&r);
    /* exactly CSV_MAX_FIELD is fine */
    memset(buf + at, 'x', CSV_MAX_FIELD);
    strcpy(buf + at + CSV_MAX_FIELD, "\n");
    ck_assert_int_eq(parse_str(buf, &r), 0);
    csv_result_free(&r);
    free(buf);
}
END_TEST

/* A year of many digits is refused as a bad year, without overflowing an
 * int on the way (found while writing tests/fuzz/fuzz_csv.c; UBSan reported
 * "signed integer overflow" in parse_year). */
START_TEST(test_year_digits)
{
    static const char *const years[] = {"99999999999999999999", "2147483648", "12345年",
                                        "0000000000000000000002021"};
    for (size_t i = 0; i < sizeof years / sizeof years[0]; i++) {
        char buf[256];
        csv_result r;
        snprintf(buf, sizeof buf, "park,indicator,year,target\nxiangtan-etdz,tax_revenue,%s,5\n",
                 years[i]);
        ck_assert_int_eq(parse_str(buf, &r), -1);
        ck_assert_uint_eq(r.n_errors, 1);
        ck_assert_int_eq(r.errors[0].line, 2);
        ck_assert_msg(strstr(r.errors[0].reason, "bad year") != NULL, "%s: %s", years[i],
                      r.errors[0].reason);
        ck_assert_uint_eq(r.n_targets, 0);
        csv_result_free(&r);
    }
}
END_TEST

START_TEST(test_error_cap_and_report)
{
    size_t rows = CSV_MAX_ERRORS + 5;
    size_t cap = 64 + rows * 48;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t at = (size_t)snprintf(buf, cap, "park,indicator,period,value\n");
    for (size_t i = 0; i < rows; i++)
        at += (size_t)snprintf(buf + at, cap - at, "nowhere,fiscal_revenue,2021-08,1\n");
    csv_result r;
    ck_assert_int_eq(csv_parse(buf, at, &cat, &r), -1);
    ck_assert_uint_eq(r.n_errors, CSV_MAX_ERRORS);
    ck_assert_uint_eq(r.n_errors_total, rows);
    ck_assert_uint_eq(r.n_rows, rows);
    ck_assert_int_eq(r.errors[CSV_MAX_ERRORS - 1].line, CSV_MAX_ERRORS + 1);
    char *rep = csv_errors_report(&r, "x.csv");
    ck_assert_ptr_nonnull(rep);
    const char *head = "x.csv:2: 文件 x.csv，第2行：未知园区“nowhere” / unknown park 'nowhere'\n"
                       "x.csv:3: ";
    ck_assert(strncmp(rep, head, strlen(head)) == 0);
    const char *tail = "x.csv:1001: 文件 x.csv，第1001行：未知园区“nowhere” / unknown park 'nowhere'\n"
                       "x.csv: 另有5处错误未列出 / 5 more errors not shown\n";
    ck_assert_str_eq(rep + strlen(rep) - strlen(tail), tail);
    free(rep);
    csv_result_free(&r);
    free(buf);

    /* a good input reports nothing */
    ck_assert_int_eq(parse_str("park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1\n", &r), 0);
    rep = csv_errors_report(&r, "y.csv");
    ck_assert_str_eq(rep, "");
    free(rep);
    csv_result_free(&r);
}
END_TEST


/* ---- files as Excel leaves them (issue 15) ------------------------------------------ */

typedef struct {
    const char *park, *ind;
    int y, m;
    double value;
    int yoy_set; /* 0: no yoy, 1: yoy */
    double yoy;
} want_obs;

static const struct {
    const char *name;
    const char *in;
    int rc;
    csv_layout layout;
    size_t n_obs, n_errors, n_skipped;
    int line;            /* of the first error (or the first skipped row when no error) */
    const char *en;      /* English half of the first error / skipped reason, '*' = prefix */
    const char *zh;      /* a piece of its Chinese half, or NULL */
    want_obs o[3];       /* figures that must be there */
} excel[] = {
    {"title and note lines above the header",
     "湘潭市园区主要经济指标\n单位：亿元\n,,\n园区,指标,期间,数值\n"
     "xiangtan-etdz,固定资产投资,2021年1-8月,192.2\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 0, 0}}},
    {"unit in the header, full-width brackets",
     "园区,期间,固定资产投资（亿元）,实际利用外资(万美元)\nxiangtan-etdz,2021-08,1922000万元,2690\n",
     0, CSV_LAYOUT_WIDE, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 0, 0},
      {"xiangtan-etdz", "fdi_actual", 2021, 8, 2690, 0, 0}}},
    {"unit in the header converted",
     "园区,期间,固定资产投资(万元),实际利用外资【亿美元】\nxiangtan-etdz,2021-08,1922000,0.269\n",
     0, CSV_LAYOUT_WIDE, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 0, 0},
      {"xiangtan-etdz", "fdi_actual", 2021, 8, 2690, 0, 0}}},
    {"unit in the header of another family",
     "园区,期间,固定资产投资(万美元)\nxiangtan-etdz,2021-08,1\n",
     -1, CSV_LAYOUT_WIDE, 0, 1, 0, 1,
     "column '固定资产投资(万美元)': unit '万美元' cannot be converted to '亿元' (never converts currencies)",
     "不同币种不换算", {{0}}},
    {"unit of the value column in the header",
     "园区,指标,期间,数值（万元）\nxiangtan-etdz,固定资产投资,2021-08,1922000\n"
     "xiangtan-etdz,实际利用外资,2021-08,2690\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 1, 1, 0, 3,
     "unit '万元' cannot be converted to '万美元' (never converts currencies)", NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 0, 0}}},
    {"total rows skipped and listed",
     "园区,期间,固定资产投资\nxiangtan-etdz,2021-08,192.2\n合计,2021-08,500\n合  计,2021-08,500\n"
     "小计,2021-08,1\n总计,2021-08,1\n全省,2021-08,1\n\xE3\x80\x80全 市,2021-08,1\n",
     0, CSV_LAYOUT_WIDE, 1, 0, 6, 3, "skipped the total row '合计' (not a park)", "已跳过合计行",
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 0, 0}}},
    {"note lines under the table skipped",
     "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1\n"
     "注：数据来源于统计局,,,\n数据来源：湘潭市统计局\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 2, 3, "skipped the note line '注:数据来源于统计局'",
     "已跳过注释行", {{"xiangtan-etdz", "fiscal_revenue", 2021, 8, 1, 0, 0}}},
    {"all rows skipped: no figures",
     "园区,期间,固定资产投资\n合计,2021-08,500\n",
     -1, CSV_LAYOUT_WIDE, 0, 1, 1, 0, "no figures in the input (1 total or note rows skipped)",
     "文件中没有任何数据", {{0}}},
    {"yoy column, observations",
     "园区,指标,期间,数值,同比(%)\nxiangtan-etdz,固定资产投资,2021-08,192.2,12.5\n"
     "xiangtan-etdz,财税收入,2021-08,25.6,-3.1%\nxiangtan-etdz,工业投资,2021-08,80,\n",
     0, CSV_LAYOUT_OBSERVATIONS, 3, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fiscal_revenue", 2021, 8, 25.6, 1, -3.1},
      {"xiangtan-etdz", "industrial_investment", 2021, 8, 80, 0, 0}}},
    {"yoy column names",
     "park,indicator,period,value,增速\nxiangtan-etdz,fiscal_revenue,2021-08,1,2\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fiscal_revenue", 2021, 8, 1, 1, 2}}},
    {"yoy english, 同比增长%",
     "park,indicator,period,value,yoy\nxiangtan-etdz,fiscal_revenue,2021-08,1,2\n",
     0, CSV_LAYOUT_OBSERVATIONS, 1, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fiscal_revenue", 2021, 8, 1, 1, 2}}},
    {"bad yoy", "park,indicator,period,value,同比增长\nxiangtan-etdz,fiscal_revenue,2021-08,1,abc\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 1, 0, 2, "yoy column '同比增长': bad value 'abc': not a number",
     "数值“abc”不是数字", {{0}}},
    {"yoy without a value", "park,indicator,period,value,yoy\nxiangtan-etdz,fiscal_revenue,2021-08,,2\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 1, 0, 2, "a yoy without a value", "有同比而没有数值", {{0}}},
    {"wide <indicator>同比 and <indicator>增速",
     "园区,期间,固定资产投资,固定资产投资同比,财税收入（亿元）,财税收入增速(%),规模以上工业增加值增速\n"
     "xiangtan-etdz,2021-08,192.2,12.5,25.6,-1,8.1\n",
     0, CSV_LAYOUT_WIDE, 3, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fiscal_revenue", 2021, 8, 25.6, 1, -1},
      {"xiangtan-etdz", "value_added_growth", 2021, 8, 8.1, 0, 0}}},
    {"wide bare 同比 after its indicator",
     "园区,期间,固定资产投资,同比,财税收入,同比\nxiangtan-etdz,2021-08,192.2,12.5,25.6,\n",
     0, CSV_LAYOUT_WIDE, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fiscal_revenue", 2021, 8, 25.6, 0, 0}}},
    {"wide yoy without its amount column",
     "园区,期间,固定资产投资,财税收入同比\nxiangtan-etdz,2021-08,192.2,1\n",
     -1, CSV_LAYOUT_WIDE, 0, 1, 0, 1,
     "yoy column '财税收入同比' without a column for 'fiscal_revenue' itself", NULL, {{0}}},
    {"parks by Chinese name, spaces and full width",
     "园区,指标,期间,数值\n湘潭经开区,固定资产投资,2021-08,1\n湘潭 高新区,固定资产投资,2021-08,2\n",
     0, CSV_LAYOUT_OBSERVATIONS, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 1, 0, 0},
      {"xiangtan-hitech", "fixed_asset_investment", 2021, 8, 2, 0, 0}}},
    {"park name near miss",
     "园区,指标,期间,数值\n湘潭经济开发区,固定资产投资,2021-08,1\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 1, 0, 2,
     "unknown park '湘潭经济开发区' (did you mean '湘潭经开区'?)", "是否应为“湘潭经开区”", {{0}}},
    {"indicator label near miss",
     "园区,指标,期间,数值\nxiangtan-etdz,固定资产投资额,2021-08,1\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 1, 0, 2,
     "unknown indicator '固定资产投资额' (did you mean '固定资产投资'?)", "未知指标", {{0}}},
    {"header name near miss: 园区名称",
     "2021年园区指标\n园区名称,指标,期间,数值\nxiangtan-etdz,固定资产投资,2021-08,1\n",
     -1, CSV_LAYOUT_OBSERVATIONS, 0, 2, 0, 2, "missing column 'park' in the header", "表头缺少“园区”列",
     {{0}}},
    {"periods as Excel writes them",
     "园区,指标,期间,数值\nxiangtan-etdz,固定资产投资,2021/8/1,1\nxiangtan-etdz,固定资产投资,2021-07-01,2\n"
     "xiangtan-etdz,固定资产投资,2021年6月,3\nxiangtan-etdz,固定资产投资,2021.5,4\n",
     0, CSV_LAYOUT_OBSERVATIONS, 4, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 1, 0, 0},
      {"xiangtan-etdz", "fixed_asset_investment", 2021, 7, 2, 0, 0},
      {"xiangtan-etdz", "fixed_asset_investment", 2021, 5, 4, 0, 0}}},
    {"two-row header, indicator repeated across its columns",
     "2021年1-8月 园区经济指标\n园区,期间,固定资产投资,固定资产投资,实际利用外资(万美元),实际利用外资(万美元)\n"
     "园区,期间,1-8月累计,同比增长(%),累计,同比\n"
     "xiangtan-etdz,2021-08,192.2,12.5,2690,-3\n合计,2021-08,192.2,12.5,2690,-3\n",
     0, CSV_LAYOUT_WIDE, 2, 0, 1, 5, "skipped the total row '合计' (not a park)", NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fdi_actual", 2021, 8, 2690, 1, -3}}},
    {"two-row header, indicator in the first cell only",
     "园区,期间,固定资产投资（亿元）,,,财税收入,\n,,本月,本月累计,增速,累计值,同比%\n"
     "湘潭经开区,2021年1-8月,20,192.2,12.5,25.6,\n",
     0, CSV_LAYOUT_WIDE, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fiscal_revenue", 2021, 8, 25.6, 0, 0}}},
    {"two-row header, unknown indicator over 累计",
     "园区,期间,固定资产投,\n,,累计,同比\nxiangtan-etdz,2021-08,1,2\n",
     -1, CSV_LAYOUT_NONE, 0, 1, 0, 1, "unknown indicator column '固定资产投' (did you mean '固定资产投资'?)",
     NULL, {{0}}},
    {"the 通报 CSV parkpulse exports reads back",
     "园区代码,园区,指标代码,指标,期间,数值,单位,目标,完成率(%),序时进度(%),差距(百分点),同比(%),排名,状态,status,说明\r\n"
     "xiangtan-etdz,湘潭经开区,fixed_asset_investment,固定资产投资,2021-08,192.2,亿元,300,64.07,66.67,-2.6,12.5,1,正常,ok,\"湘潭经开区 固定资产投资 1-8月完成192.2亿元，为全年目标的64.1%\"\r\n"
     "xiangtan-etdz,湘潭经开区,fdi_actual,实际利用外资,2021-08,2690,万美元,6000,44.83,66.67,-21.83,,1,严重滞后,critical,\r\n",
     0, CSV_LAYOUT_OBSERVATIONS, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fdi_actual", 2021, 8, 2690, 0, 0}}},
    {"the wide 通报 parkpulse exports reads back",
     "2021年1-8月 园区主要经济指标通报\r\n"
     "园区代码,园区,期间,固定资产投资(亿元),,,,,,实际利用外资(万美元),,,,,\r\n"
     ",,,累计值,同比%,全年目标,完成%,较序时(百分点),状态,累计值,同比%,全年目标,完成%,较序时(百分点),状态\r\n"
     "xiangtan-etdz,湘潭经开区,2021-08,192.2,12.5,300,64.07,-2.6,正常,2690,,6000,44.83,-21.83,严重滞后\r\n",
     0, CSV_LAYOUT_WIDE, 2, 0, 0, 0, NULL, NULL,
     {{"xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2, 1, 12.5},
      {"xiangtan-etdz", "fdi_actual", 2021, 8, 2690, 0, 0}}},
    {"a column named 说明 is not a report", "park,indicator,period,value,说明\n", -1,
     CSV_LAYOUT_OBSERVATIONS, 0, 1, 0, 1, "unknown column '说明'*", NULL, {{0}}},
    {"targets with a title and a unit in the header",
     "2021年目标\n园区,指标,年度,目标(万元)\nxiangtan-etdz,固定资产投资,2021,3000000\n",
     0, CSV_LAYOUT_TARGETS, 0, 0, 0, 0, NULL, NULL, {{0}}},
};

START_TEST(test_excel)
{
    csv_result r;
    char *rep = parse_reported(excel[_i].name, excel[_i].in, excel[_i].rc, &r);
    ck_assert_msg(r.layout == excel[_i].layout, "%s: layout %d", excel[_i].name, r.layout);
    ck_assert_msg(r.n_obs == excel[_i].n_obs, "%s: %zu figures\n%s", excel[_i].name, r.n_obs, rep);
    ck_assert_msg(r.n_errors == excel[_i].n_errors, "%s: %zu errors\n%s", excel[_i].name,
                  r.n_errors, rep);
    ck_assert_msg(r.n_skipped == excel[_i].n_skipped, "%s: %zu skipped", excel[_i].name,
                  r.n_skipped);
    if (excel[_i].en) {
        const csv_error *e = r.n_errors > 0 ? &r.errors[0] : &r.skipped[0];
        expect_reason(e, excel[_i].line, excel[_i].en);
        if (excel[_i].zh)
            ck_assert_msg(strstr(e->reason, excel[_i].zh) != NULL, "%s", e->reason);
    }
    for (size_t k = 0; k < 3 && excel[_i].o[k].park; k++) {
        const want_obs *w = &excel[_i].o[k];
        const pp_obs *o = expect_obs(&r, w->park, w->ind, w->y, w->m, w->value);
        ck_assert_int_eq(o->has_yoy, w->yoy_set);
        if (w->yoy_set)
            ck_assert_msg(close_to(o->yoy, w->yoy), "%s: yoy %.17g", excel[_i].name, o->yoy);
    }
    free(rep);
    csv_result_free(&r);
}
END_TEST

/* The error report is for the person who sent the figures: file, sheet and
 * row in Chinese first, the location prefix first on each line; the skipped
 * rows are listed the same way. */
START_TEST(test_reports_chinese_first)
{
    csv_result r;
    ck_assert_int_eq(parse_str("园区,期间,固定资产投资\nxiangtan-etd,2021-08,1\n合计,2021-08,2\n", &r), -1);
    char *rep = csv_errors_report_at(&r, "figures.xlsx", "Sheet1");
    ck_assert_str_eq(rep, "figures.xlsx:Sheet1!2: 文件 figures.xlsx，工作表 Sheet1，第2行："
                          "未知园区“xiangtan-etd”（是否应为“xiangtan-etdz”？） / "
                          "unknown park 'xiangtan-etd' (did you mean 'xiangtan-etdz'?)\n");
    free(rep);
    rep = csv_skipped_report_at(&r, "f.csv", NULL);
    ck_assert_str_eq(rep, "f.csv:3: 文件 f.csv，第3行：已跳过合计行“合计”（不是园区） / "
                          "skipped the total row '合计' (not a park)\n");
    free(rep);
    csv_result_free(&r);
    ck_assert_int_eq(parse_str("", &r), -1);
    rep = csv_errors_report(&r, "e.csv");
    ck_assert_str_eq(rep, "e.csv:0: 文件 e.csv：文件为空：没有表头 / empty input: no header\n");
    free(rep);
    csv_result_free(&r);
    /* a newline inside a quoted cell does not break a report line */
    ck_assert_int_eq(parse_str("park,indicator,period,value\n\"a\nb\",fiscal_revenue,2021-08,1\n", &r), -1);
    rep = csv_errors_report(&r, "n.csv");
    ck_assert_uint_eq(strchr(rep, '\n') - rep + 1, strlen(rep));
    free(rep);
    csv_result_free(&r);
}
END_TEST

/* ---- the shipped fixtures -------------------------------------------------------------- */

START_TEST(test_fixture_long)
{
    csv_result r;
    parse_fixture("xiangtan-etdz-2021.csv", 0, &r);
    ck_assert_int_eq(r.layout, CSV_LAYOUT_OBSERVATIONS);
    ck_assert_uint_eq(r.n_obs, 31);
    ck_assert_uint_eq(r.n_rows, 31);
    const pp_obs *o = expect_obs(&r, "xiangtan-etdz", "fixed_asset_investment", 2021, 8, 192.2);
    ck_assert_str_eq(o->source, "published");
    expect_obs(&r, "xiangtan-etdz", "fdi_actual", 2021, 8, 2690);
    o = expect_obs(&r, "xiangtan-etdz", "value_added_growth", 2021, 8, 12.1);
    ck_assert_int_eq(o->status, 'A');
    csv_result_free(&r);
}
END_TEST

static const struct {
    const char *ind;
    double target;
} fixture_targets[] = {
    {"fixed_asset_investment", 300}, {"fiscal_revenue", 42}, {"fdi_actual", 6000},
    {"domestic_capital", 140},       {"value_added_growth", 10},
};

/* data (len bytes) is targets-2021.csv in encoding: its five targets. */
static void check_targets(const char *data, size_t len, const char *encoding)
{
    csv_result r;
    ck_assert_int_eq(csv_parse(data, len, &cat, &r), 0);
    ck_assert_str_eq(r.encoding, encoding);
    ck_assert_int_eq(r.layout, CSV_LAYOUT_TARGETS);
    ck_assert_uint_eq(r.n_targets, 5);
    ck_assert_uint_eq(r.n_obs, 0);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(r.targets[i].park, "xiangtan-etdz");
        ck_assert_str_eq(r.targets[i].indicator, fixture_targets[i].ind);
        ck_assert_int_eq(r.targets[i].year, 2021);
        ck_assert(close_to(r.targets[i].value, fixture_targets[i].target));
    }
    csv_result_free(&r);
}

START_TEST(test_fixture_targets)
{
    size_t len;
    char *data = test_fixture("targets-2021.csv", &len);
    check_targets(data, len, "UTF-8");

    /* the same file saved as GB18030 by a spreadsheet */
    size_t glen;
    char *gb = to_gb18030(data, len, &glen);
    ck_assert(!text_utf8_valid(gb, glen, NULL));
    check_targets(gb, glen, "GB18030");
    free(gb);

    /* with a BOM and CRLF line ends */
    char *crlf = malloc(len * 2 + 4);
    ck_assert_ptr_nonnull(crlf);
    size_t n = 0;
    memcpy(crlf, "\xEF\xBB\xBF", 3);
    n = 3;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n')
            crlf[n++] = '\r';
        crlf[n++] = data[i];
    }
    check_targets(crlf, n, "UTF-8");
    free(crlf);
    free(data);
}
END_TEST

START_TEST(test_fixture_wide)
{
    static const want_obs want[] = {
        {"xiangtan-etdz", "value_added_growth", 2024, 11, 33.6, 0, 0},
        {"xiangtan-etdz", "rank_province", 2024, 2, 1, 0, 0},
        {"xiangtan-etdz", "key_project_completion", 2024, 12, 118.85, 0, 0},
        {"xiangtan-hitech", "projects_signed", 2024, 11, 26, 0, 0},
        {"liuyang-etdz", "projects_signed", 2023, 12, 66, 0, 0},
    };
    csv_result r;
    parse_fixture("wide-2024.csv", 0, &r);
    ck_assert_int_eq(r.layout, CSV_LAYOUT_WIDE);
    ck_assert_uint_eq(r.n_rows, 7);
    /* the non-empty cells: 4 rows × 2, then 118.85, 26 and 66 */
    ck_assert_uint_eq(r.n_obs, 11);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        expect_obs(&r, want[i].park, want[i].ind, want[i].y, want[i].m, want[i].value);
    ck_assert_ptr_null(find_obs(&r, "xiangtan-etdz", "projects_signed", 2024, 2));
    csv_result_free(&r);
}
END_TEST

START_TEST(test_fixture_bad_rows)
{
    static const struct {
        int line;
        const char *why;
    } want[] = {
        {3, "unknown park 'xiangtan-etd' (did you mean 'xiangtan-etdz'?)"},
        {4, "unknown indicator 'fixed_asset_investmnt' (did you mean 'fixed_asset_investment'?)"},
        {5, "bad period '2021-13': month must be 1..12"},
        {6, "bad value 'abc': not a number"},
        {7, "unit '亿元' cannot be converted to '万美元' (never converts currencies)"},
    };
    csv_result r;
    parse_fixture("bad-rows.csv", -1, &r);
    ck_assert_uint_eq(r.n_errors, 5);
    ck_assert_uint_eq(r.n_errors_total, 5);
    ck_assert_uint_eq(r.n_rows, 6);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(r.errors[i].line, want[i].line);
        ck_assert_str_eq(en_half(r.errors[i].reason), want[i].why);
    }
    /* line 2 is good (the caller refuses the file anyway) */
    ck_assert_uint_eq(r.n_obs, 1);
    ck_assert(close_to(r.obs[0].value, 210.5));
    char *rep = csv_errors_report(&r, "bad-rows.csv");
    ck_assert_ptr_nonnull(rep);
    const char *head = "bad-rows.csv:3: 文件 bad-rows.csv，第3行：未知园区“xiangtan-etd”（是否应为"
                       "“xiangtan-etdz”？） / unknown park 'xiangtan-etd' (did you mean "
                       "'xiangtan-etdz'?)\nbad-rows.csv:4: ";
    ck_assert_msg(strncmp(rep, head, strlen(head)) == 0, "%s", rep);
    ck_assert_ptr_null(strstr(rep, "more errors"));
    free(rep);
    csv_result_free(&r);
}
END_TEST

/* ---- suite ----------------------------------------------------------------------------- */

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Issue 13, point 4: a period after the current month is a bad row, named
 * with its line, Chinese first; the current month itself is taken. */
static const struct {
    const char *csv;
    int line;             /* of the bad row, 0: none */
} future_rows[] = {
    { "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-08,192.2\n"
      "xiangtan-etdz,fiscal_revenue,2102-08,3\n", 3 },
    { "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-10,192.2\n", 0 },
    { "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-11,192.2\n", 2 },
    { "园区,期间,固定资产投资,财税收入\nxiangtan-etdz,2022年1-2月,10,2\n", 2 },
};

START_TEST(test_future_period)
{
    csv_result r;
    const int oct_2021 = pp_period_make(2021, 10);
    int rc = csv_parse_until(future_rows[_i].csv, strlen(future_rows[_i].csv), &cat, oct_2021, &r,
                             NULL, NULL);
    if (future_rows[_i].line == 0) {
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(r.n_obs, 1);
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_uint_eq(r.n_errors_total, 1); /* once per row, also in a wide table */
        ck_assert_int_eq(r.errors[0].line, future_rows[_i].line);
        ck_assert_msg(strncmp(r.errors[0].reason, "期间", 6) == 0 &&
                      strstr(r.errors[0].reason, "晚于当前月份（2021-10）") &&
                      strstr(r.errors[0].reason, "is after the current month (2021-10)"),
                      "%s", r.errors[0].reason);
    }
    csv_result_free(&r);
    /* without a limit (csv_parse) the same rows are read */
    ck_assert_int_eq(parse_str(future_rows[_i].csv, &r), 0);
    csv_result_free(&r);
}
END_TEST

static Suite *csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = check_tcase(s, "pieces", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_period_good, 0, N(good_periods));
    tcase_add_test(tc, test_period_plain_as_general);
    tcase_add_loop_test(tc, test_period_bad, 0, N(bad_periods));
    tcase_add_test(tc, test_period_long_and_small_why);
    tcase_add_loop_test(tc, test_value_good, 0, N(good_values));
    tcase_add_loop_test(tc, test_value_missing, 0, N(missing_values));
    tcase_add_loop_test(tc, test_value_bad, 0, N(bad_values));
    tcase_add_loop_test(tc, test_edit_distance, 0, N(distances));
    tcase_add_test(tc, test_text_helpers);

    tc = check_tcase(s, "inputs", NULL, NULL, 30);
    tcase_add_loop_test(tc, test_inputs, 0, N(inputs));
    tcase_add_test(tc, test_row_contents);
    tcase_add_loop_test(tc, test_future_period, 0, N(future_rows));
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_bounds);
    tcase_add_test(tc, test_year_digits);
    tcase_add_test(tc, test_error_cap_and_report);
    tcase_add_loop_test(tc, test_excel, 0, N(excel));
    tcase_add_test(tc, test_reports_chinese_first);

    tc = check_tcase(s, "fixtures", NULL, NULL, 0);
    tcase_add_test(tc, test_fixture_long);
    tcase_add_test(tc, test_fixture_targets);
    tcase_add_test(tc, test_fixture_wide);
    tcase_add_test(tc, test_fixture_bad_rows);
    return s;
}

CHECK_MAIN(csv_suite)
