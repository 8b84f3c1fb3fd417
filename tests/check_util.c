/*
 * check_util.c — Check suite for the small shared containers: hash.h (FNV-1a
 * 64, against the published test vectors), vec.h (the growable array) and
 * the one validation of an observation and a target (model.c), which the CSV
 * reader, the db and the journal share, log_errno (log.c) and the JSON
 * number forms (json.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <unistd.h>

#include "db.h"
#include "capture.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "model.h"
#include "vec.h"
#include "check_main.h"

static const struct {
    const char *s;
    uint64_t h;
} fnv_cases[] = {
    { "", 0xcbf29ce484222325ULL },
    { "a", 0xaf63dc4c8601ec8cULL },
    { "foobar", 0x85944171f73967e8ULL },
};

START_TEST(test_fnv1a_64_vectors)
{
    const char *s = fnv_cases[_i].s;
    ck_assert_uint_eq(pp_hash_str(s), fnv_cases[_i].h);
    ck_assert_uint_eq(pp_hash_bytes(PP_FNV_OFFSET, s, strlen(s)), fnv_cases[_i].h);
}
END_TEST

/* pp_hash_pair(a, sep, b) is the hash of the bytes a, sep, b. */
START_TEST(test_hash_pair)
{
    ck_assert_uint_eq(pp_hash_pair("ab", '\t', "c"), pp_hash_str("ab\tc"));
    ck_assert_uint_ne(pp_hash_pair("ab", 0xff, "c"), pp_hash_pair("a", 0xff, "bc"));
}
END_TEST

START_TEST(test_vec_grows_by_doubling)
{
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(PP_VEC_RESERVE(v, cap, n + 1, 4), 0);
        ck_assert_uint_ge(cap, n + 1);
        v[n++] = i;
    }
    ck_assert_uint_eq(cap, 1024); /* 4, 8, ..., 1024 */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(v[i], i);
    ck_assert_int_eq(PP_VEC_RESERVE(v, cap, 10, 4), 0); /* room already: unchanged */
    ck_assert_uint_eq(cap, 1024);
    free(v);
}
END_TEST

/* A size that cannot be allocated: -ENOMEM, the array and its capacity unchanged. */
START_TEST(test_vec_too_large)
{
    char *v = malloc(8);
    ck_assert_ptr_nonnull(v);
    char *before = v;
    size_t cap = 8;
    ck_assert_int_eq(PP_VEC_RESERVE(v, cap, SIZE_MAX, 8), -ENOMEM);
    ck_assert_ptr_eq(v, before);
    ck_assert_uint_eq(cap, 8);
    double *d = NULL;
    size_t dcap = 0;
    ck_assert_int_eq(PP_VEC_RESERVE(d, dcap, SIZE_MAX / 4, 1), -ENOMEM);
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(dcap, 0);
    free(v);
}
END_TEST

/* ---- validation ---- */

static pp_obs good_obs(void)
{
    pp_obs o;
    memset(&o, 0, sizeof o);
    strcpy(o.park, "pa");
    strcpy(o.indicator, "fixed_asset_investment");
    o.period = pp_period_make(2021, 8);
    o.value = 1.5;
    o.status = 'A';
    return o;
}

static const struct {
    const char *name;
    const char *park;         /* NULL: pa */
    int year, month;          /* 0: 2021-08 */
    double value;
    bool yoy_inf;
    char status;
    bool valid;
} obs_cases[] = {
    { "valid", NULL, 0, 0, 1.5, false, 'A', true },
    { "estimated", NULL, 0, 0, 1.5, false, 'E', true },
    { "upper-case id", "Pa", 0, 0, 1.5, false, 'A', false },
    { "empty id", "", 0, 0, 1.5, false, 'A', false },
    { "1979-12", NULL, 1979, 12, 1.5, false, 'A', false },
    { "2200-01", NULL, 2200, 1, 1.5, false, 'A', false },
    { "NaN", NULL, 0, 0, NAN, false, 'A', false },
    { "infinite yoy", NULL, 0, 0, 1.5, true, 'A', false },
    { "status X", NULL, 0, 0, 1.5, false, 'X', false },
    { "status NUL", NULL, 0, 0, 1.5, false, '\0', false },
};

static pp_obs case_obs(size_t i)
{
    pp_obs o = good_obs();
    if (obs_cases[i].park)
        snprintf(o.park, sizeof o.park, "%s", obs_cases[i].park);
    if (obs_cases[i].year)
        o.period = pp_period_make(obs_cases[i].year, obs_cases[i].month);
    o.value = obs_cases[i].value;
    o.has_yoy = obs_cases[i].yoy_inf;
    o.yoy = obs_cases[i].yoy_inf ? INFINITY : 0;
    o.status = obs_cases[i].status;
    return o;
}

/* The same verdict from model.c, the db and the journal's writer. */
START_TEST(test_obs_validation)
{
    pp_obs o = case_obs((size_t)_i);
    bool valid = obs_cases[_i].valid;
    ck_assert_msg((pp_obs_invalid(&o) == NULL) == valid, "%s: model.c", obs_cases[_i].name);
    db *d = db_new();
    ck_assert_ptr_nonnull(d);
    int rc = db_add_obs(d, &o);
    ck_assert_msg(valid ? rc == 1 : rc == -1, "%s: db_add_obs %d", obs_cases[_i].name, rc);
    db_free(d);
}
END_TEST

START_TEST(test_target_validation)
{
    pp_target t;
    memset(&t, 0, sizeof t);
    strcpy(t.park, "pa");
    strcpy(t.indicator, "fiscal_revenue");
    t.year = 2021;
    t.value = 300;
    ck_assert_ptr_null(pp_target_invalid(&t));
    db *d = db_new();
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(db_add_target(d, &t), 1);
    t.year = 1979;
    ck_assert_ptr_nonnull(pp_target_invalid(&t));
    ck_assert_int_eq(db_add_target(d, &t), -1);
    t.year = 2021;
    strcpy(t.park, "P A");
    ck_assert_ptr_nonnull(pp_target_invalid(&t));
    ck_assert_int_eq(db_add_target(d, &t), -1);
    strcpy(t.park, "pa");
    t.value = INFINITY;
    ck_assert_ptr_nonnull(pp_target_invalid(&t));
    ck_assert_int_eq(db_add_target(d, &t), -1);
    db_free(d);
}
END_TEST

/* ---- log_errno ---- */

/* What one log call printed on stderr (the foreground log), NUL-terminated. */
static void logged(void (*call)(void), char *out, size_t len)
{
    stderr_capture c;
    capture_begin(&c);
    log_open(true);
    call();
    capture_end(&c, out, len);
}

static void call_errno(void)
{
    errno = ENOENT;
    log_errno("journal", "cannot open %s", "/x/journal.log");
}

static void call_rc(void) { log_warn_rc("store", -EACCES, "cannot write %s", "a.rrd"); }

START_TEST(test_log_errno)
{
    char out[1024];
    logged(call_errno, out, sizeof out);
    ck_assert_msg(strstr(out, "journal: cannot open /x/journal.log: No such file or directory\n"),
                  "%s", out);
    logged(call_rc, out, sizeof out);
    ck_assert_msg(strstr(out, "store: cannot write a.rrd: Permission denied\n"), "%s", out);
}
END_TEST

/* json_num keeps every bit of a figure as sent; json_num_computed drops the
 * binary noise of arithmetic (a gap divided by the months left); json_num2
 * rounds a percentage. */
static const struct {
    double v;
    const char *num, *computed, *num2;
} json_cases[] = {
    { (320.0 - 185.8) / (12 - 7), "26.839999999999996", "26.84", "26.84" },
    { 0.1 + 0.2, "0.30000000000000004", "0.3", "0.3" },
    { 192.2, "192.2", "192.2", "192.2" },
    { 1.0 / 3.0, "0.3333333333333333", "0.333333333333333", "0.33" },
    { -0.0, "-0", "0", "0" },
    { 1234.5678, "1234.5678", "1234.5678", "1234.57" },
    { NAN, "null", "null", "null" },
};

static void json_one(void (*put)(jbuf *, double), double v, const char *want)
{
    jbuf b;
    jbuf_init(&b);
    put(&b, v);
    ck_assert_msg(b.data != NULL && strcmp(b.data, want) == 0, "%.17g: got %s, want %s", v,
                  b.data ? b.data : "(null)", want);
    jbuf_free(&b);
}

START_TEST(test_json_numbers)
{
    json_one(json_num, json_cases[_i].v, json_cases[_i].num);
    json_one(json_num_computed, json_cases[_i].v, json_cases[_i].computed);
    json_one(json_num2, json_cases[_i].v, json_cases[_i].num2);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = check_tcase(s, "hash", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_fnv1a_64_vectors, 0, sizeof fnv_cases / sizeof fnv_cases[0]);
    tcase_add_test(tc, test_hash_pair);
    tc = check_tcase(s, "vec", NULL, NULL, 0);
    tcase_add_test(tc, test_vec_grows_by_doubling);
    tcase_add_test(tc, test_vec_too_large);
    tc = check_tcase(s, "validation", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_obs_validation, 0, sizeof obs_cases / sizeof obs_cases[0]);
    tcase_add_test(tc, test_target_validation);
    tc = check_tcase(s, "log", NULL, NULL, 0);
    tcase_add_test(tc, test_log_errno);
    tc = check_tcase(s, "json", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_json_numbers, 0, sizeof json_cases / sizeof json_cases[0]);
    return s;
}

CHECK_MAIN(util_suite)
