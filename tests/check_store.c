/*
 * check_store.c — Check suite for daemon/store.c (README, Storage: the RRD files).
 *
 * Every test writes into its own mkdtemp() directory and reads the result back
 * with the real `rrdtool` command, as a user would: `rrdtool fetch FILE LAST -s
 * <noon> -e <noon>` for one day, `rrdtool info FILE` for the layout. The
 * helpers below run the command and parse its rows; the tests check the
 * monthly layout (every day of a month holds its value, a gap month is NaN),
 * appends in place, rebuilds for late months and revisions, refused ids and a
 * ten-year round trip; the period range (nothing before 1980-01, the RRA as
 * long as the series); failed writes (a file size limit, which stops root
 * too) logged with the errno and remembered as dirty series, and the ingest
 * side that writes them again (the "dirty" case, on a test_app.h daemon).
 */
#include "store.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h"
#include "log.h"
#include "test_app.h"
#include "capture.h"
#include "check_main.h"

static char test_dir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------ */

static void setup(void)
{
    tmpdir_make(test_dir, sizeof test_dir, "check_store");
    ck_assert_ptr_null(strchr(test_dir, '\'')); /* quoted with '…' in commands */
}

static void teardown(void) { tmpdir_remove(test_dir); }

static time_t utc(int y, int m, int d, int hour)
{
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = hour };
    return timegm(&tm);
}

static int days_in_month(int y, int m)
{
    int ny = m == 12 ? y + 1 : y, nm = m == 12 ? 1 : m + 1;
    return (int)((utc(ny, nm, 1, 0) - utc(y, m, 1, 0)) / 86400);
}

static void series_file(const char *park, const char *ind, char *buf, size_t len)
{
    ck_assert_int_eq(store_path(test_dir, park, ind, buf, len), 0);
}

/* Writes n months of park's tax_revenue from first, all of them changed, and
 * gives its file (PATH_MAX bytes). The series, for what a check writes next. */
static store_series write_tax_series(const char *park, int first, size_t n, const double *value,
                                     const double *pace, char *file)
{
    store_series s = { .park = park, .indicator = "tax_revenue", .first_period = first,
                       .n = n, .value = value, .pace = pace, .changed_from = first };
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    series_file(park, "tax_revenue", file, PATH_MAX);
    return s;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_ino;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* a followed by b into buf, which must hold them. */
static void join(char *buf, size_t len, const char *a, const char *b)
{
    int n = snprintf(buf, len, "%s%s", a, b);
    ck_assert(n > 0 && (size_t)n < len);
}

static int tmp_exists(const char *path)
{
    char tmp[PATH_MAX];
    join(tmp, sizeof tmp, path, ".tmp");
    return exists(tmp);
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* One row of `rrdtool fetch`: the end of its day and the two DS. */
typedef struct fetch_row {
    long t;
    double value, pace;
} fetch_row;

/* Parses a row "1612224000: 1.0010000000e+02 -nan". Returns 0 or -1 (not a row). */
static int parse_fetch_line(const char *line, fetch_row *row)
{
    char *end;
    errno = 0;
    long t = strtol(line, &end, 10);
    if (end == line || *end != ':' || errno != 0)
        return -1;
    const char *p = end + 1;
    row->value = strtod(p, &end); /* glibc reads "nan" and "-nan" as NaN */
    if (end == p)
        return -1;
    p = end;
    row->pace = strtod(p, &end);
    if (end == p)
        return -1;
    row->t = t;
    return 0;
}

/* Runs `rrdtool fetch FILE LAST -s START -e END` and parses up to max rows.
 * Returns the number of rows, or -1. */
static long fetch_rows(const char *file, long start, long end, fetch_row *rows, size_t max)
{
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "rrdtool fetch '%s' LAST -s %ld -e %ld 2>/dev/null", file,
             start, end);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        fetch_row r;
        if (parse_fetch_line(line, &r) == 0 && n < max)
            rows[n++] = r;
    }
    int st = pclose(f);
    return st == 0 ? (long)n : -1;
}

/* The row of day y-m-d, fetched with -s and -e at noon UTC (docs/ARCHITECTURE.md,
 * Facts measured on the libraries). */
static fetch_row fetch_day(const char *file, int y, int m, int d)
{
    fetch_row rows[4];
    long noon = (long)utc(y, m, d, 12);
    long n = fetch_rows(file, noon, noon, rows, 4);
    ck_assert_msg(n == 1, "fetch %d-%02d-%02d: %ld rows", y, m, d, n);
    ck_assert_int_eq(rows[0].t, noon + 43200); /* labelled with the end of its day */
    return rows[0];
}

/* Runs `rrdtool info FILE` into a malloc'ed string. */
static char *info_text(const char *file)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "rrdtool info '%s'", file);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - 1 - len, f)) > 0) {
        len += got;
        if (len == cap - 1) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    return buf;
}

static int same(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    return !isnan(got) && fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want));
}

#define ck_assert_same(got, want, what, y, m, d)                                             \
    ck_assert_msg(same((got), (want)), "%s on %d-%02d-%02d: got %.17g, want %.17g", (what),  \
                  (y), (m), (d), (got), (want))

/* Asserts that days 1, 15 and the last of month `period` hold value and pace. */
static void check_month(const char *file, int period, double value, double pace)
{
    int y = pp_period_year(period), m = pp_period_month(period);
    int days[] = { 1, 15, days_in_month(y, m) };
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        fetch_row r = fetch_day(file, y, m, days[i]);
        ck_assert_same(r.value, value, "value", y, m, days[i]);
        ck_assert_same(r.pace, pace, "pace", y, m, days[i]);
    }
}

/* The sample series: 2021-02 .. 2021-08, March missing, May without a pace. */
enum { SAMPLE_N = 7 };
static const double sample_value[SAMPLE_N] = { 192.2, NAN, 300.25, 412.5, 510.0, 615.75, 0.1 };
static const double sample_pace[SAMPLE_N] = { 26.666666666666668, 40.0, 53.333333333333336, NAN,
                                              80.0, 93.333333333333329, 106.66666666666667 };

static store_series sample_series(const double *value, const double *pace, size_t n,
                                  int changed_from)
{
    store_series s = { .park = "xiangtan-etdz", .indicator = "fixed_asset_investment",
                       .first_period = pp_period_make(2021, 2), .n = n, .value = value,
                       .pace = pace, .changed_from = changed_from };
    return s;
}

static void write_sample(char *file, size_t len)
{
    store_series s = sample_series(sample_value, sample_pace, SAMPLE_N, pp_period_make(2021, 2));
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    series_file("xiangtan-etdz", "fixed_asset_investment", file, len);
}

#define ck_assert_store_dirty(dir, n)                                                        \
    ck_assert_msg(store_dirty_count(dir) == (n), "%zu dirty series, want %d",                \
                  store_dirty_count(dir), (n))

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_month_end)
{
    static const struct {
        int y, m;
        long want;
    } cases[] = {
        { 1970, 1, 2678400L },      /* 1970-02-01 */
        { 2021, 2, 1614556800L },   /* 2021-03-01 */
        { 2021, 12, 1640995200L },  /* 2022-01-01 */
        { 2024, 2, 1709251200L },   /* 2024-03-01, leap year */
        { 2024, 1, 1706745600L },   /* 2024-02-01 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_int_eq(store_month_end(pp_period_make(cases[i].y, cases[i].m)), cases[i].want);
}
END_TEST

/* store_month_end computes without timegm: the same answer for every month. */
START_TEST(test_month_end_all)
{
    for (int y = PP_PERIOD_MIN_YEAR; y <= PP_PERIOD_MAX_YEAR; y++) {
        for (int m = 1; m <= 12; m++) {
            int ny = m == 12 ? y + 1 : y, nm = m == 12 ? 1 : m + 1;
            ck_assert_msg(store_month_end(pp_period_make(y, m)) == (long)utc(ny, nm, 1, 0),
                          "%d-%02d", y, m);
        }
    }
}
END_TEST

START_TEST(test_path)
{
    static const struct {
        const char *park, *ind;
        size_t len;
        int rc;
        const char *want;
    } cases[] = {
        { "p1", "tax_revenue", 64, 0, "/s/rrd/p1/tax_revenue.rrd" },
        { "p1", "tax_revenue", 26, 0, "/s/rrd/p1/tax_revenue.rrd" }, /* exactly fits */
        { "p1", "tax_revenue", 25, -1, NULL },                       /* one byte short */
        { "../x", "tax_revenue", 64, -1, NULL },
        { "p1", "A", 64, -1, NULL },
        { "", "tax_revenue", 64, -1, NULL },
        { NULL, "tax_revenue", 64, -1, NULL },
        { "p1", "a/b", 64, -1, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        ck_assert_int_eq(store_path("/s/rrd", cases[i].park, cases[i].ind, buf, cases[i].len),
                         cases[i].rc);
        if (cases[i].want != NULL)
            ck_assert_str_eq(buf, cases[i].want);
    }
}
END_TEST

START_TEST(test_write_and_fetch)
{
    char file[PATH_MAX];
    write_sample(file, sizeof file);
    ck_assert(!tmp_exists(file));
    for (int i = 0; i < SAMPLE_N; i++)
        check_month(file, pp_period_make(2021, 2) + i, sample_value[i], sample_pace[i]);
    /* nothing before the first month, nothing after the last */
    fetch_row r = fetch_day(file, 2021, 1, 31);
    ck_assert(isnan(r.value) && isnan(r.pace));
    r = fetch_day(file, 2021, 9, 1);
    ck_assert(isnan(r.value) && isnan(r.pace));
}
END_TEST

START_TEST(test_info)
{
    char file[PATH_MAX];
    write_sample(file, sizeof file);
    char *info = info_text(file);
    static const char *lines[] = {
        "step = 86400\n",
        "ds[value].type = \"GAUGE\"\n",
        "ds[value].minimal_heartbeat = 3456000\n",
        "ds[pace].type = \"GAUGE\"\n",
        "ds[pace].minimal_heartbeat = 3456000\n",
        "rra[0].cf = \"LAST\"\n",
        "rra[0].rows = 7400\n",
        "rra[0].pdp_per_row = 1\n",
        "last_update = 1630454400\n", /* 2021-09-01: the end of 2021-08 */
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        ck_assert_msg(strstr(info, lines[i]) != NULL, "missing %s", lines[i]);
    ck_assert_ptr_null(strstr(info, "rra[1]"));
    free(info);
}
END_TEST

/* The n months of value and pace and one more (v, p) into nv and np (n + 1 each). */
static void with_month(double *nv, double *np, const double *value, const double *pace, size_t n,
                       double v, double p)
{
    memcpy(nv, value, n * sizeof *nv);
    memcpy(np, pace, n * sizeof *np);
    nv[n] = v;
    np[n] = p;
}

START_TEST(test_append_in_place)
{
    char file[PATH_MAX];
    write_sample(file, sizeof file);
    ino_t before = inode_of(file);

    double value[SAMPLE_N + 1], pace[SAMPLE_N + 1];
    with_month(value, pace, sample_value, sample_pace, SAMPLE_N, 833.5, 120.0);
    store_series s = sample_series(value, pace, SAMPLE_N + 1, pp_period_make(2021, 9));
    ck_assert_int_eq(store_write(test_dir, &s), 0);

    ck_assert_uint_eq(inode_of(file), before);
    ck_assert(!tmp_exists(file));
    check_month(file, pp_period_make(2021, 9), 833.5, 120.0);
    check_month(file, pp_period_make(2021, 8), sample_value[6], sample_pace[6]);
    check_month(file, pp_period_make(2021, 3), NAN, sample_pace[1]);

    /* writing it again with nothing changed touches nothing */
    s.changed_from = pp_period_make(2021, 10);
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_uint_eq(inode_of(file), before);
    check_month(file, pp_period_make(2021, 9), 833.5, 120.0);
}
END_TEST

/* Cases that must rebuild: the new series and the month it changed from. */
START_TEST(test_rebuilds)
{
    static const struct {
        const char *name;
        int first_y, first_m; /* first month of the new series */
        int changed_y, changed_m;
        int edit;             /* index (in the new series) given a new value, or -1 */
        double new_value;
    } cases[] = {
        { "late month fills the gap", 2021, 2, 2021, 3, 1, 250.5 },
        { "revised value", 2021, 2, 2021, 5, 3, 415.0 },
        { "revised first month", 2021, 2, 2021, 2, 0, 190.0 },
        { "earlier first month", 2021, 1, 2021, 1, 0, 88.25 },
        { "revision with a wrong changed_from", 2021, 2, 2021, 9, 4, 509.5 },
        { "later first month, nothing flagged", 2021, 3, 2021, 9, 0, 251.0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char file[PATH_MAX];
        write_sample(file, sizeof file);
        ino_t before = inode_of(file);

        int first = pp_period_make(cases[c].first_y, cases[c].first_m);
        int offset = first - pp_period_make(2021, 2); /* sample index of new index 0 */
        size_t n = (size_t)(SAMPLE_N - offset);
        double value[SAMPLE_N + 1], pace[SAMPLE_N + 1];
        for (size_t i = 0; i < n; i++) {
            int j = (int)i + offset;
            value[i] = j >= 0 ? sample_value[j] : NAN;
            pace[i] = j >= 0 ? sample_pace[j] : 10.0;
        }
        value[cases[c].edit] = cases[c].new_value;
        store_series s = { .park = "xiangtan-etdz", .indicator = "fixed_asset_investment",
                           .first_period = first, .n = n, .value = value, .pace = pace,
                           .changed_from = pp_period_make(cases[c].changed_y, cases[c].changed_m) };
        ck_assert_int_eq(store_write(test_dir, &s), 0);

        ck_assert_msg(inode_of(file) != before, "%s: not rebuilt", cases[c].name);
        ck_assert_msg(!tmp_exists(file), "%s: .tmp left", cases[c].name);
        for (size_t i = 0; i < n; i++)
            check_month(file, first + (int)i, value[i], pace[i]);
        fetch_row r = fetch_day(file, pp_period_year(first - 1), pp_period_month(first - 1), 28);
        ck_assert_msg(isnan(r.value) && isnan(r.pace), "%s: data before the first month",
                      cases[c].name);
        ck_assert_int_eq(remove(file), 0);
    }
}
END_TEST

START_TEST(test_invalid_ids)
{
    static const struct {
        const char *park, *ind;
    } cases[] = {
        { "../x", "tax_revenue" }, { "A", "tax_revenue" }, { "p1", "../x" }, { "p1", "A" },
        { "", "tax_revenue" },     { NULL, "tax_revenue" }, { "p1", NULL },   { "p1/x", "t" },
    };
    double v[1] = { 1.0 }, p[1] = { NAN };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        store_series s = { .park = cases[i].park, .indicator = cases[i].ind,
                           .first_period = pp_period_make(2021, 1), .n = 1, .value = v, .pace = p,
                           .changed_from = pp_period_make(2021, 1) };
        ck_assert_int_eq(store_write(test_dir, &s), -1);
        ck_assert_uint_eq(dir_entries(test_dir), 0);
    }
    store_series s = { .park = "x", .indicator = "y", .n = 1, .value = v, .pace = p,
                       .first_period = pp_period_make(2021, 1) };
    ck_assert_int_eq(store_write(test_dir, NULL), -1);
    ck_assert_int_eq(store_write(NULL, &s), -1);
    s.first_period = pp_period_make(1899, 12); /* out of the period range */
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    ck_assert_uint_eq(dir_entries(test_dir), 0);
}
END_TEST

START_TEST(test_empty_series)
{
    store_series s = sample_series(sample_value, sample_pace, 0, pp_period_make(2021, 2));
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_uint_eq(dir_entries(test_dir), 0);

    char file[PATH_MAX];
    write_sample(file, sizeof file);
    ino_t before = inode_of(file);
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_uint_eq(inode_of(file), before);
    check_month(file, pp_period_make(2021, 2), sample_value[0], sample_pace[0]);
}
END_TEST

START_TEST(test_garbage_and_stale_tmp)
{
    char dir[PATH_MAX], file[PATH_MAX], tmp[PATH_MAX];
    join(dir, sizeof dir, test_dir, "/xiangtan-etdz");
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    series_file("xiangtan-etdz", "fixed_asset_investment", file, sizeof file);
    join(tmp, sizeof tmp, file, ".tmp");
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not an rrd file\n", f);
    ck_assert_int_eq(fclose(f), 0);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs("half a file from a crash\n", f);
    ck_assert_int_eq(fclose(f), 0);

    /* changed_from past the end: only the garbage itself forces the rebuild */
    store_series s = sample_series(sample_value, sample_pace, SAMPLE_N, pp_period_make(2030, 1));
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert(!exists(tmp));
    for (int i = 0; i < SAMPLE_N; i++)
        check_month(file, pp_period_make(2021, 2) + i, sample_value[i], sample_pace[i]);
}
END_TEST

START_TEST(test_ten_years)
{
    enum { N = 120 };
    double value[N], pace[N];
    for (int i = 0; i < N; i++) {
        value[i] = i % 17 == 5 ? NAN : 1.5 * i + 0.1 + i / 7.0;
        pace[i] = 100.0 * (i % 12 + 1) / 12.0;
    }
    int first = pp_period_make(2015, 1);
    char file[PATH_MAX];
    write_tax_series("p-10y", first, N, value, pace, file);

    /* every day from 2014-12-31 to 2024-12-31 in one fetch, from noon to noon */
    long start = (long)utc(2014, 12, 31, 12), end = (long)utc(2024, 12, 31, 12);
    size_t max = 3660;
    fetch_row *rows = calloc(max, sizeof *rows);
    ck_assert_ptr_nonnull(rows);
    long n = fetch_rows(file, start, end, rows, max);
    ck_assert_int_eq(n, 3654);
    ck_assert_int_eq(rows[0].t, (long)utc(2015, 1, 1, 0));
    ck_assert_int_eq(rows[n - 1].t, (long)utc(2025, 1, 1, 0));
    size_t days = 0;
    for (long r = 0; r < n; r++) {
        time_t day = (time_t)(rows[r].t - 86400); /* the row covers the day starting here */
        struct tm tm;
        ck_assert_ptr_nonnull(gmtime_r(&day, &tm));
        int period = pp_period_make(tm.tm_year + 1900, tm.tm_mon + 1);
        int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
        if (period < first) {
            ck_assert(isnan(rows[r].value) && isnan(rows[r].pace));
            continue;
        }
        int i = period - first;
        ck_assert_same(rows[r].value, value[i], "value", y, m, tm.tm_mday);
        ck_assert_same(rows[r].pace, pace[i], "pace", y, m, tm.tm_mday);
        days++;
    }
    ck_assert_uint_eq(days, 3653); /* 2015..2024: three leap years */
    free(rows);

    /* and the noon fetch (docs/ARCHITECTURE.md) on the first and the last month */
    check_month(file, first, value[0], pace[0]);
    check_month(file, first + N - 1, value[N - 1], pace[N - 1]);
}
END_TEST

/* Numbers reach librrd as short decimals where they are exactly such (192.2),
 * else as the shortest of %.15g/%.17g that reads back: both must arrive. */
START_TEST(test_number_forms)
{
    static const double values[] = {
        192.2, -3.25, 0.0, -0.0, 0.1, 1e-7, 123456789012.5, 1.0 / 3.0, 2.0 / 3.0 * 1e6,
        999999999999999.0, 1e15, 12345.678901, 0.000123, 1e300, -7.0 / 11.0,
    };
    enum { N = sizeof values / sizeof values[0] };
    double pace[N];
    for (size_t i = 0; i < N; i++)
        pace[i] = -values[i] / 3.0;
    int first = pp_period_make(2020, 1);
    char file[PATH_MAX];
    write_tax_series("p-num", first, N, values, pace, file);
    for (size_t i = 0; i < N; i++) {
        int y = pp_period_year(first + (int)i), m = pp_period_month(first + (int)i);
        fetch_row r = fetch_day(file, y, m, 15);
        /* rrdtool fetch prints 11 significant digits */
        ck_assert_msg(fabs(r.value - values[i]) <= 1e-10 * fabs(values[i]),
                      "value %.17g: got %.17g", values[i], r.value);
        ck_assert_msg(fabs(r.pace - pace[i]) <= 1e-10 * fabs(pace[i]), "pace %.17g: got %.17g",
                      pace[i], r.pace);
    }
}
END_TEST

/* A park directory removed behind the store's back (it remembers the ones it
 * made) is made again by the next write into it; missing parents are made too. */
START_TEST(test_directory_removed)
{
    char file[PATH_MAX], dir[PATH_MAX];
    write_sample(file, sizeof file);
    join(dir, sizeof dir, test_dir, "/xiangtan-etdz");
    ck_assert_int_eq(remove(file), 0);
    ck_assert_int_eq(rmdir(dir), 0);

    write_sample(file, sizeof file);
    ck_assert(exists(file));
    check_month(file, pp_period_make(2021, 2), sample_value[0], sample_pace[0]);

    /* and a new park next to it */
    store_series s = sample_series(sample_value, sample_pace, SAMPLE_N, pp_period_make(2021, 2));
    s.park = "another-park";
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    series_file("another-park", "fixed_asset_investment", file, sizeof file);
    ck_assert(exists(file));

    /* an rrd_dir whose parents are missing as well */
    char deep[PATH_MAX];
    join(deep, sizeof deep, test_dir, "/a/b");
    ck_assert_int_eq(store_write(deep, &s), 0);
    ck_assert_int_eq(store_path(deep, "another-park", "fixed_asset_investment", file, sizeof file),
                     0);
    ck_assert(exists(file));
}
END_TEST


/* ---- the period range and the RRA's length (issue 10, defect 4) -------- */

/* Months before 1980-01 are refused like every other input refuses them (see
 * PP_PERIOD_MIN_YEAR: librrd misreads negative times, `rrdtool fetch` and
 * graphs take nothing before 1980), and no file is made. */
START_TEST(test_before_1980_refused)
{
    double v[24], p[24];
    for (int i = 0; i < 24; i++) {
        v[i] = i + 1;
        p[i] = NAN;
    }
    store_series s = { .park = "p-old", .indicator = "tax_revenue",
                       .first_period = pp_period_make(1969, 12), .n = 1, .value = v, .pace = p,
                       .changed_from = pp_period_make(1969, 12) };
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    s.first_period = s.changed_from = pp_period_make(1979, 12);
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    s.first_period = s.changed_from = pp_period_make(1979, 1); /* into 1980 */
    s.n = 24;
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    ck_assert_uint_eq(dir_entries(test_dir), 0);
    ck_assert_store_dirty(test_dir, 0);
}
END_TEST

/* The first month there is, read back with `rrdtool fetch`. */
START_TEST(test_from_1980_01)
{
    double v[3] = { 5.5, 6.5, 7.5 }, p[3] = { 10, 20, 30 };
    int first = pp_period_make(1980, 1);
    char file[PATH_MAX];
    store_series s = write_tax_series("p-1980", first, 3, v, p, file);
    for (int i = 0; i < 3; i++)
        check_month(file, first + i, v[i], p[i]);
    /* and a month appended in place */
    double v4[4] = { 5.5, 6.5, 7.5, 8.5 }, p4[4] = { 10, 20, 30, 40 };
    ino_t before = inode_of(file);
    s.n = 4;
    s.value = v4;
    s.pace = p4;
    s.changed_from = first + 3;
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_uint_eq(inode_of(file), before);
    check_month(file, first, 5.5, 10);
    check_month(file, first + 3, 8.5, 40);
}
END_TEST

/* rra[0].rows from `rrdtool info`. */
static long info_rows(const char *file)
{
    char *info = info_text(file);
    const char *r = strstr(info, "rra[0].rows = ");
    ck_assert_ptr_nonnull(r);
    long rows = strtol(r + strlen("rra[0].rows = "), NULL, 10);
    free(info);
    return rows;
}

/* A series longer than the default RRA (7400 days, about 20 years) keeps its
 * oldest months: the RRA is made as long as the series. */
START_TEST(test_55_years)
{
    enum { N = 55 * 12 }; /* 1980-01 .. 2034-12 */
    double *value = malloc(N * sizeof *value), *pace = malloc(N * sizeof *pace);
    ck_assert(value != NULL && pace != NULL);
    for (int i = 0; i < N; i++) {
        value[i] = 1000.0 + i;
        pace[i] = 100.0 * (i % 12 + 1) / 12.0;
    }
    int first = pp_period_make(1980, 1);
    char file[PATH_MAX];
    write_tax_series("p-55y", first, N, value, pace, file);
    check_month(file, first, value[0], pace[0]);              /* 1980-01, not NaN */
    check_month(file, first + 12 * 20, value[240], pace[240]); /* 2000-01 */
    check_month(file, first + N - 1, value[N - 1], pace[N - 1]);
    long span = (store_month_end(first + N - 1) - store_month_end(first - 1)) / 86400;
    ck_assert_int_ge(info_rows(file), span);
    free(value);
    free(pace);
}
END_TEST

/* Months appended one by one past the default RRA: the file is rebuilt with a
 * longer RRA when the next month would push the first one out, and appended
 * in place again afterwards. */
START_TEST(test_append_past_rra)
{
    enum { N = 21 * 12 }; /* 1990-01 .. 2010-12: 7670 days */
    double value[N], pace[N];
    for (int i = 0; i < N; i++) {
        value[i] = 0.5 + i;
        pace[i] = i % 12 + 1;
    }
    int first = pp_period_make(1990, 1);
    char file[PATH_MAX];
    /* 1990-01 .. 2009-12: 7305 days */
    store_series s = write_tax_series("p-grow", first, 240, value, pace, file);
    ck_assert_int_eq(info_rows(file), 7400);
    for (size_t n = 241; n <= N; n++) {
        s.n = n;
        s.changed_from = first + (int)n - 1;
        ck_assert_int_eq(store_write(test_dir, &s), 0);
    }
    check_month(file, first, value[0], pace[0]);
    check_month(file, first + N - 1, value[N - 1], pace[N - 1]);
    long span = (store_month_end(first + N - 1) - store_month_end(first - 1)) / 86400;
    ck_assert_int_ge(info_rows(file), span);
    /* and the next month goes in place */
    ino_t before = inode_of(file);
    double v2[N + 1], p2[N + 1];
    with_month(v2, p2, value, pace, N, 9999.0, 1.0);
    s.value = v2;
    s.pace = p2;
    s.n = N + 1;
    s.changed_from = first + N;
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_uint_eq(inode_of(file), before);
    check_month(file, first + N, 9999.0, 1.0);
    check_month(file, first, value[0], pace[0]);
}
END_TEST

/* ---- failed writes (issue 10, defects 3 and 11) ------------------------ */

/* Files of more than `bytes` cannot be written (EFBIG, as root too); 0 lifts
 * the limit again. Each Check test runs in a process of its own. */
static void limit_file_size(rlim_t bytes)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = bytes ? bytes : rl.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

/* Runs store_write with the log (stderr) captured into log. */
static int write_logged(const char *rrd_dir, const store_series *s, char *log, size_t len)
{
    stderr_capture c;
    capture_begin(&c);
    int rc = store_write(rrd_dir, s);
    capture_end(&c, log, len);
    return rc;
}

/* librrd says nothing (or "Cannot create temporary file") when the file
 * cannot be written: the log names the system's reason. */
START_TEST(test_create_error_has_errno)
{
    char log[8192];
    store_series s = sample_series(sample_value, sample_pace, SAMPLE_N, pp_period_make(2021, 2));
    limit_file_size(16384);
    ck_assert_int_eq(write_logged(test_dir, &s, log, sizeof log), -1);
    limit_file_size(0);
    ck_assert_msg(strstr(log, "rrd_create") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, strerror(EFBIG)) != NULL, "no errno text in the log: %s", log);
    ck_assert_msg(strstr(log, "unknown librrd error") == NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "fixed_asset_investment.rrd") != NULL, "no file in the log: %s", log);
}
END_TEST

/* A failed write leaves the series dirty, a later successful one clears it;
 * refused input (bad ids, months out of range) never makes a series dirty. */
START_TEST(test_failed_write_is_dirty)
{
    char file[PATH_MAX], other[PATH_MAX];
    store_series s = sample_series(sample_value, sample_pace, SAMPLE_N, pp_period_make(2021, 2));
    join(other, sizeof other, test_dir, "/other");
    limit_file_size(16384);
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    limit_file_size(0);
    ck_assert_store_dirty(test_dir, 1);
    ck_assert_store_dirty(other, 0);
    store_key keys[4];
    ck_assert_uint_eq(store_dirty_list(test_dir, keys, 4), 1);
    ck_assert_str_eq(keys[0].park, "xiangtan-etdz");
    ck_assert_str_eq(keys[0].indicator, "fixed_asset_investment");

    /* written now: clean again, and the file holds the series */
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_store_dirty(test_dir, 0);
    series_file("xiangtan-etdz", "fixed_asset_investment", file, sizeof file);
    check_month(file, pp_period_make(2021, 2), sample_value[0], sample_pace[0]);

    /* an append that fails (the file grows past the limit only when rebuilt,
     * so the limit is below its size now) */
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    store_series t = sample_series(sample_value, sample_pace, SAMPLE_N, pp_period_make(2021, 2));
    t.changed_from = pp_period_make(2021, 2); /* a revision: a rebuild into .tmp */
    limit_file_size((rlim_t)st.st_size / 2);
    ck_assert_int_eq(store_write(test_dir, &t), -1);
    limit_file_size(0);
    ck_assert_store_dirty(test_dir, 1);
    ck_assert(!tmp_exists(file));
    store_dirty_clear(test_dir, "xiangtan-etdz", "fixed_asset_investment");
    ck_assert_store_dirty(test_dir, 0);

    /* refused input is not dirty */
    s.first_period = pp_period_make(1969, 12);
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    s.first_period = pp_period_make(2021, 2);
    s.park = "../x";
    ck_assert_int_eq(store_write(test_dir, &s), -1);
    ck_assert_store_dirty(test_dir, 0);
}
END_TEST

/* ---- the ingest side: dirty series written again ------------------------ */

static pp_app app;
static char app_dir[PATH_MAX];

static void app_setup(void)
{
    log_set_level(getenv("PP_TEST_VERBOSE") ? LOG_LVL_DEBUG : 0);
    test_app_open(&app, app_dir, "check_store", 1707962400); /* 2024-02-15: its figures are not in the future */
}

static void app_teardown(void) { test_app_close(&app, app_dir); }

static ingest_status ingest_str(const char *csv)
{
    ingest_result r;
    ingest_status st = ingest_csv(&app, "test.csv", csv, strlen(csv), &r);
    free(r.report);
    free(r.warnings);
    return st;
}

/* Figures are accepted (journaled) while their RRD file cannot be written;
 * the series stays dirty until a retry writes it — the next ingest of
 * anything, or ingest_retry_dirty (main's loop, and before the clean-stop
 * marker, which is written only when nothing is dirty). */
START_TEST(test_ingest_retries_dirty)
{
    char file[PATH_MAX], other[PATH_MAX];
    ck_assert_int_eq(store_path(app.rrd_dir, "pa", "tax_revenue", file, sizeof file), 0);
    ck_assert_int_eq(store_path(app.rrd_dir, "pb", "tax_revenue", other, sizeof other), 0);

    limit_file_size(16384);
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-01,10\n"
                                "pa,tax_revenue,2024-02,20\n"), INGEST_OK);
    ck_assert_store_dirty(app.rrd_dir, 1);
    ck_assert(!exists(file));
    ck_assert_uint_eq(ingest_retry_dirty(&app, true), 1); /* still failing */
    ck_assert_store_dirty(app.rrd_dir, 1);
    limit_file_size(0);

    /* the next ingest, of another series, writes the dirty one too */
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npb,tax_revenue,2024-01,5\n"),
                     INGEST_OK);
    ck_assert_store_dirty(app.rrd_dir, 0);
    check_month(file, pp_period_make(2024, 1), 10, NAN);
    check_month(file, pp_period_make(2024, 2), 20, NAN);
    check_month(other, pp_period_make(2024, 1), 5, NAN);

    /* a revision that fails, then the retry alone */
    limit_file_size(16384);
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-01,11\n"),
                     INGEST_OK);
    ck_assert_store_dirty(app.rrd_dir, 1);
    check_month(file, pp_period_make(2024, 1), 10, NAN); /* the old file, still there */
    limit_file_size(0);
    ck_assert_uint_eq(ingest_retry_dirty(&app, true), 0);
    ck_assert_store_dirty(app.rrd_dir, 0);
    check_month(file, pp_period_make(2024, 1), 11, NAN);
    check_month(file, pp_period_make(2024, 2), 20, NAN);
    /* nothing dirty: nothing to do */
    ck_assert_uint_eq(ingest_retry_dirty(&app, false), 0);
}
END_TEST

/* ---- the RRD writer thread (ingest.h) ----------------------------------- */

/* Waits (bounded: 30 s) until the writer has nothing queued. */
static void wait_written(void)
{
    for (int i = 0; i < 3000 && ingest_rrd_pending(&app) > 0; i++)
        usleep(10000);
    ck_assert_uint_eq(ingest_rrd_pending(&app), 0);
}

/* A series committed twice while its write waits is written once, with the
 * figures of the second commit; the commit returns before the file exists. */
START_TEST(test_writer_merges_queued)
{
    char file[PATH_MAX];
    ck_assert_int_eq(store_path(app.rrd_dir, "pa", "tax_revenue", file, sizeof file), 0);
    ck_assert_int_eq(ingest_writer_start(&app), 0);
    ingest_writer_hold(&app, true);
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-01,10\n"),
                     INGEST_OK);
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-01,11\n"
                                "pa,tax_revenue,2024-02,20\n"), INGEST_OK);
    ck_assert_uint_eq(ingest_rrd_pending(&app), 1);
    ck_assert(!exists(file)); /* acknowledged before the write */
    /* a reader of the file (the graph route) is told to wait for it */
    ck_assert(!ingest_rrd_wait_series(&app, "pa", "tax_revenue", 50));
    ck_assert(ingest_rrd_wait_series(&app, "pb", "tax_revenue", 50));
    ingest_writer_hold(&app, false);
    ck_assert(ingest_rrd_wait_series(&app, "pa", "tax_revenue", 30000));
    ck_assert(exists(file));
    wait_written();
    ck_assert_uint_eq(ingest_rrd_written(&app), 1);
    check_month(file, pp_period_make(2024, 1), 11, NAN);
    check_month(file, pp_period_make(2024, 2), 20, NAN);
    ck_assert_store_dirty(app.rrd_dir, 0);
    /* a later commit of the same series is written again */
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-02,21\n"),
                     INGEST_OK);
    wait_written();
    ck_assert_uint_eq(ingest_rrd_written(&app), 2);
    check_month(file, pp_period_make(2024, 2), 21, NAN);
    ingest_writer_stop(&app, 1000);
    ck_assert_ptr_null(app.rrd_writer);
}
END_TEST

static bool app_stopped;

static void writer_teardown(void)
{
    if (!app_stopped)
        app_stop(&app, false);
    app_stopped = false;
    tmpdir_remove(app_dir);
}

/* Starts app's RRD writers holding their writes; file: pa/tax_revenue's RRD
 * file, marker: the clean-stop marker. */
static void writer_held(char *file, size_t file_len, char *marker, size_t marker_len)
{
    ck_assert_int_eq(store_path(app.rrd_dir, "pa", "tax_revenue", file, file_len), 0);
    snprintf(marker, marker_len, "%s/.clean", app.rrd_dir);
    ck_assert_int_eq(ingest_writer_start(&app), 0);
    ingest_writer_hold(&app, true);
}

/* A stop whose budget runs out with writes queued marks their series dirty;
 * while they cannot be written, no clean-stop marker is written, so the next
 * start rebuilds them from the journal. */
START_TEST(test_writer_stop_marks_dirty)
{
    char file[PATH_MAX], marker[PATH_MAX + 16];
    writer_held(file, sizeof file, marker, sizeof marker);
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-01,10\n"
                                "pb,tax_revenue,2024-01,5\n"), INGEST_OK);
    ck_assert_uint_eq(ingest_rrd_pending(&app), 2);
    ingest_writer_stop(&app, 0); /* no time left: nothing written */
    ck_assert_uint_eq(ingest_rrd_pending(&app), 0);
    ck_assert_store_dirty(app.rrd_dir, 2);
    ck_assert(!exists(file));
    /* the stop's own retry fails too (files limited to 16 KiB): no marker */
    limit_file_size(16384);
    app_stop(&app, true);
    app_stopped = true;
    limit_file_size(0);
    ck_assert(!exists(marker));
}
END_TEST

/* The same with a budget: the stop waits for the queue, writes the files and
 * the marker. */
START_TEST(test_writer_stop_waits)
{
    char file[PATH_MAX], marker[PATH_MAX + 16];
    writer_held(file, sizeof file, marker, sizeof marker);
    ck_assert_int_eq(ingest_str("park,indicator,period,value\npa,tax_revenue,2024-01,10\n"),
                     INGEST_OK);
    app_stop(&app, true); /* releases the hold, waits up to 2 s */
    app_stopped = true;
    ck_assert(exists(file));
    ck_assert(exists(marker));
    check_month(file, pp_period_make(2024, 1), 10, NAN);
}
END_TEST

/* ---- several writer threads --------------------------------------------- */

static const char *const all_inds[] = {
    "industrial_output", "above_scale_output", "value_added_growth", "fixed_asset_investment",
    "industrial_investment", "tax_revenue", "fiscal_revenue", "fdi_actual", "domestic_capital",
    "trade_total", "high_tech_revenue", "key_project_completion", "projects_signed",
    "rank_province",
};
#define N_INDS (sizeof all_inds / sizeof all_inds[0])

/* true when (park, ind) is among app's dirty series. */
static bool dirty_has(const char *park, const char *ind)
{
    store_key keys[4 * N_INDS];
    size_t n = store_dirty_list(app.rrd_dir, keys, sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].park, park) == 0 && strcmp(keys[i].indicator, ind) == 0)
            return true;
    return false;
}

/* One CSV with month 2024-01 of every series of both parks, value base + k
 * for the k-th series (the caller frees it). */
static char *every_series_csv(int base)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    ck_assert_ptr_nonnull(f);
    fprintf(f, "park,indicator,period,value\n");
    for (size_t k = 0; k < 2 * N_INDS; k++)
        fprintf(f, "%s,%s,2024-01,%d\n", k < N_INDS ? "pa" : "pb", all_inds[k % N_INDS],
                base + (int)k);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* With two writer threads, a series of a held thread does not hold up the
 * series of the other one: they are written side by side. A park's series
 * all go to one thread (its directory); pa and pb go to different ones. */
START_TEST(test_writers_side_by_side)
{
    char held_file[PATH_MAX], other_file[PATH_MAX], csv[256];
    ck_assert_int_eq(ingest_writer_start_n(&app, 2), 0);
    ck_assert_uint_eq(ingest_rrd_writers(&app), 2);
    const char *held = all_inds[0], *other = all_inds[1];
    int w0 = ingest_rrd_writer_of(&app, "pa", held);
    for (size_t k = 0; k < N_INDS; k++)
        ck_assert_int_eq(ingest_rrd_writer_of(&app, "pa", all_inds[k]), w0);
    ck_assert_int_ne(ingest_rrd_writer_of(&app, "pb", other), w0);
    ck_assert_int_eq(store_path(app.rrd_dir, "pa", held, held_file, sizeof held_file), 0);
    ck_assert_int_eq(store_path(app.rrd_dir, "pb", other, other_file, sizeof other_file), 0);

    ingest_writer_hold_one(&app, w0, true);
    snprintf(csv, sizeof csv, "park,indicator,period,value\npa,%s,2024-01,10\npb,%s,2024-01,7\n",
             held, other);
    ck_assert_int_eq(ingest_str(csv), INGEST_OK);
    ck_assert(ingest_rrd_wait_series(&app, "pb", other, 30000));
    check_month(other_file, pp_period_make(2024, 1), 7, NAN);
    ck_assert(!exists(held_file));
    ck_assert_uint_eq(ingest_rrd_pending(&app), 1);
    ck_assert(!ingest_rrd_wait_series(&app, "pa", held, 50));

    ingest_writer_hold_one(&app, w0, false);
    ck_assert(ingest_rrd_wait_series(&app, "pa", held, 30000));
    check_month(held_file, pp_period_make(2024, 1), 10, NAN);
    wait_written();
    ck_assert_uint_eq(ingest_rrd_written(&app), 2);
    ck_assert_store_dirty(app.rrd_dir, 0);
    ingest_writer_stop(&app, 1000);
    ck_assert_ptr_null(app.rrd_writer);
}
END_TEST

/* Commits of every series, one after another while the threads write: each
 * series' file ends with its last commit's figure (a series' writes never
 * overtake each other), and the series are spread over both threads. */
START_TEST(test_writers_keep_series_order)
{
    enum { ROUNDS = 20 };
    ck_assert_int_eq(ingest_writer_start_n(&app, 2), 0);
    size_t per_thread[2] = { 0, 0 };
    for (size_t k = 0; k < 2 * N_INDS; k++) {
        int w = ingest_rrd_writer_of(&app, k < N_INDS ? "pa" : "pb", all_inds[k % N_INDS]);
        ck_assert(w == 0 || w == 1);
        per_thread[w]++;
    }
    ck_assert_uint_gt(per_thread[0], 0);
    ck_assert_uint_gt(per_thread[1], 0);
    for (int r = 1; r <= ROUNDS; r++) {
        char *csv = every_series_csv(100 * r);
        ck_assert_int_eq(ingest_str(csv), INGEST_OK);
        free(csv);
    }
    wait_written();
    ck_assert_store_dirty(app.rrd_dir, 0);
    for (size_t k = 0; k < 2 * N_INDS; k++) {
        char file[PATH_MAX];
        ck_assert_int_eq(store_path(app.rrd_dir, k < N_INDS ? "pa" : "pb", all_inds[k % N_INDS],
                                    file, sizeof file), 0);
        check_month(file, pp_period_make(2024, 1), 100 * ROUNDS + (double)k, NAN);
    }
    ingest_writer_stop(&app, 1000);
}
END_TEST

/* A stop without budget, one thread held and the other done: the held
 * thread's series are marked dirty (rebuilt at the next start), the other's
 * are written and clean; the pending count covers both threads. */
START_TEST(test_writers_stop_marks_dirty)
{
    ck_assert_int_eq(ingest_writer_start_n(&app, 2), 0);
    ingest_writer_hold(&app, true);
    char *csv = every_series_csv(1);
    ck_assert_int_eq(ingest_str(csv), INGEST_OK);
    free(csv);
    ck_assert_uint_eq(ingest_rrd_pending(&app), 2 * N_INDS);
    size_t held = 0;
    bool of_0[2 * N_INDS]; /* written by thread 0 */
    for (size_t k = 0; k < 2 * N_INDS; k++) {
        of_0[k] = ingest_rrd_writer_of(&app, k < N_INDS ? "pa" : "pb", all_inds[k % N_INDS]) == 0;
        held += of_0[k];
    }
    ck_assert_uint_gt(held, 0);
    ck_assert_uint_lt(held, 2 * N_INDS);
    ingest_writer_hold_one(&app, 1, false);
    for (size_t k = 0; k < 2 * N_INDS; k++) {
        const char *park = k < N_INDS ? "pa" : "pb";
        if (ingest_rrd_writer_of(&app, park, all_inds[k % N_INDS]) == 1)
            ck_assert(ingest_rrd_wait_series(&app, park, all_inds[k % N_INDS], 30000));
    }
    ck_assert_uint_eq(ingest_rrd_pending(&app), held);
    /* thread 1 may retry the dirty series after its batch: let that fail */
    limit_file_size(16384);
    ingest_writer_stop(&app, 0); /* no time left: thread 0 writes nothing */
    limit_file_size(0);
    ck_assert_uint_eq(ingest_rrd_pending(&app), 0);
    ck_assert_uint_eq(store_dirty_count(app.rrd_dir), held);
    for (size_t k = 0; k < 2 * N_INDS; k++) {
        char file[PATH_MAX];
        const char *park = k < N_INDS ? "pa" : "pb";
        ck_assert_int_eq(store_path(app.rrd_dir, park, all_inds[k % N_INDS], file, sizeof file), 0);
        /* thread 1's series are written and clean, thread 0's dirty and not written */
        ck_assert_msg(exists(file) == !of_0[k], "%s/%s", park, all_inds[k % N_INDS]);
        ck_assert_msg(dirty_has(park, all_inds[k % N_INDS]) == of_0[k], "%s/%s", park,
                      all_inds[k % N_INDS]);
    }
}
END_TEST

/* ingest_rebuild_all writes every series again, its threads taking one park
 * at a time: every file holds its figure afterwards, and the series of a
 * park whose directory cannot be made are counted as failed and left dirty,
 * the others written all the same. */
START_TEST(test_rebuild_all)
{
    enum { PARKS = 6, INDS = 3, BAD = 3 };
    char csv[4096], file[PATH_MAX], park[16], parks[512] = "";
    for (int p = 0; p < PARKS; p++)
        snprintf(parks + strlen(parks), sizeof parks - strlen(parks), "park \"p%d\" { name = \"园区%d\" }\n", p, p);
    test_app_reload(&app, app_dir, true, parks);
    int len = snprintf(csv, sizeof csv, "park,indicator,period,value\n");
    for (int p = 0; p < PARKS; p++)
        for (int k = 0; k < INDS; k++)
            len += snprintf(csv + len, sizeof csv - (size_t)len, "p%d,%s,2024-01,%d\n", p,
                            all_inds[k], 10 * p + k + 1);
    ck_assert_int_eq(ingest_str(csv), INGEST_OK);
    for (int p = 0; p < PARKS; p++) {
        snprintf(park, sizeof park, "p%d", p);
        for (int k = 0; k < INDS; k++) {
            ck_assert_int_eq(store_path(app.rrd_dir, park, all_inds[k], file, sizeof file), 0);
            ck_assert_int_eq(unlink(file), 0);
        }
    }
    char bad_dir[PATH_MAX];
    ck_assert_int_eq(store_path(app.rrd_dir, "p3", all_inds[0], bad_dir, sizeof bad_dir), 0);
    *strrchr(bad_dir, '/') = '\0';
    ck_assert_msg(rmdir(bad_dir) == 0, "rmdir %s: %s", bad_dir, strerror(errno));
    FILE *f = fopen(bad_dir, "w"); /* a file where p3's directory must be */
    ck_assert_ptr_nonnull(f);
    fclose(f);

    ck_assert_int_eq(ingest_rebuild_all(&app), INDS);
    for (int p = 0; p < PARKS; p++) {
        snprintf(park, sizeof park, "p%d", p);
        for (int k = 0; k < INDS; k++) {
            ck_assert_msg(dirty_has(park, all_inds[k]) == (p == BAD), "%s/%s", park, all_inds[k]);
            if (p == BAD)
                continue;
            ck_assert_int_eq(store_path(app.rrd_dir, park, all_inds[k], file, sizeof file), 0);
            check_month(file, pp_period_make(2024, 1), 10 * p + k + 1, NAN);
        }
    }
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = check_tcase(s, "rrd", setup, teardown, 60);
    tcase_add_test(tc, test_month_end);
    tcase_add_test(tc, test_month_end_all);
    tcase_add_test(tc, test_path);
    tcase_add_test(tc, test_write_and_fetch);
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_append_in_place);
    tcase_add_test(tc, test_rebuilds);
    tcase_add_test(tc, test_invalid_ids);
    tcase_add_test(tc, test_empty_series);
    tcase_add_test(tc, test_garbage_and_stale_tmp);
    tcase_add_test(tc, test_ten_years);
    tcase_add_test(tc, test_number_forms);
    tcase_add_test(tc, test_directory_removed);
    tcase_add_test(tc, test_before_1980_refused);
    tcase_add_test(tc, test_from_1980_01);
    tcase_add_test(tc, test_55_years);
    tcase_add_test(tc, test_append_past_rra);
    tcase_add_test(tc, test_create_error_has_errno);
    tcase_add_test(tc, test_failed_write_is_dirty);

    tc = check_tcase(s, "dirty", app_setup, app_teardown, 60);
    tcase_add_test(tc, test_ingest_retries_dirty);
    tcase_add_test(tc, test_writer_merges_queued);

    tc = check_tcase(s, "writer", app_setup, writer_teardown, 60);
    tcase_add_test(tc, test_writer_stop_marks_dirty);
    tcase_add_test(tc, test_writer_stop_waits);
    tcase_add_test(tc, test_writers_stop_marks_dirty);

    tc = check_tcase(s, "writers", app_setup, app_teardown, 60);
    tcase_add_test(tc, test_writers_side_by_side);
    tcase_add_test(tc, test_writers_keep_series_order);
    tcase_add_test(tc, test_rebuild_all);
    return s;
}

CHECK_MAIN(store_suite)
