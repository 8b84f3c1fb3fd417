/*
 * check_db.c — Check suite for the in-memory state (daemon/db.c): vintages and
 * the value in force, idempotent re-adds, revisions, order of series and of
 * points (also for 100k out-of-order inserts), targets per year, version and
 * generation counters, interned sources, and readers running beside a writer.
 */
#include "db.h"
#include "log.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pp_obs obs(const char *park, const char *ind, int y, int m, double v, char st,
                  const char *src, int64_t at)
{
    pp_obs o;
    memset(&o, 0, sizeof o);
    snprintf(o.park, sizeof o.park, "%s", park);
    snprintf(o.indicator, sizeof o.indicator, "%s", ind);
    o.period = pp_period_make(y, m);
    o.value = v;
    o.status = st;
    snprintf(o.source, sizeof o.source, "%s", src);
    o.received_at = at;
    return o;
}

static pp_target target(const char *park, const char *ind, int year, double v)
{
    pp_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.park, sizeof t.park, "%s", park);
    snprintf(t.indicator, sizeof t.indicator, "%s", ind);
    t.year = year;
    t.value = v;
    snprintf(t.source, sizeof t.source, "targets.csv");
    return t;
}

static int add(db *d, pp_obs o) { return db_add_obs(d, &o); }

static void quiet(void) { log_set_level(getenv("PP_TEST_VERBOSE") ? LOG_LVL_DEBUG : 0); }

/* ---- vintages ------------------------------------------------------------------------ */

START_TEST(test_vintages_and_value_in_force)
{
    db *d = db_new();
    ck_assert_ptr_nonnull(d);
    int p = pp_period_make(2024, 3);
    ck_assert_int_eq(add(d, obs("xt", "fai", 2024, 3, 10.5, 'P', "a.csv", 100)), 1);
    ck_assert_int_eq(add(d, obs("xt", "fai", 2024, 3, 11.0, 'A', "b.csv", 200)), 1);
    ck_assert_int_eq(add(d, obs("xt", "fai", 2024, 3, 11.25, 'R', "c.csv", 300)), 1);

    const db_series *s = db_series_get(d, "xt", "fai");
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n_points, 1);
    const db_point *pt = db_series_point(s, p);
    ck_assert_ptr_nonnull(pt);
    ck_assert_int_eq(pt->period, p);
    ck_assert_uint_eq(pt->n_vintages, 3);
    static const struct { double v; char st; const char *src; int64_t at; } want[] = {
        { 10.5, 'P', "a.csv", 100 }, { 11.0, 'A', "b.csv", 200 }, { 11.25, 'R', "c.csv", 300 },
    };
    for (int i = 0; i < 3; i++) {
        ck_assert(pt->vintages[i].value == want[i].v);
        ck_assert_int_eq(pt->vintages[i].status, want[i].st);
        ck_assert_str_eq(pt->vintages[i].source, want[i].src);
        ck_assert_int_eq(pt->vintages[i].received_at, want[i].at);
    }
    ck_assert(pt->vintages[pt->n_vintages - 1].value == 11.25); /* the value in force */
    ck_assert_int_eq(s->updated_at, 300);
    ck_assert_uint_eq(s->version, 3);
    ck_assert_ptr_null(db_series_point(s, p + 1));
    ck_assert_ptr_null(db_series_point(s, p - 1));
    ck_assert_ptr_null(db_series_get(d, "xt", "tax"));
    ck_assert_ptr_null(db_series_get(d, "x", "tfai"));
    db_free(d);
}
END_TEST

/* What a second observation for the same period does, given the first. */
static const struct {
    const char *name;
    double v;
    char st;
    const char *src;
    int rc;
} readd_cases[] = {
    { "exact repeat", 5.0, 'A', "f.csv", 0 },
    { "other value", 5.5, 'A', "f.csv", 1 },
    { "other status", 5.0, 'R', "f.csv", 1 },
    { "other source", 5.0, 'A', "g.csv", 1 },
    { "other value and status", 6.0, 'P', "f.csv", 1 },
};

START_TEST(test_readd)
{
    db *d = db_new();
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 5.0, 'A', "f.csv", 10)), 1);
    uint64_t gen = db_generation(d);
    const db_series *s = db_series_get(d, "p", "i");
    uint64_t ver = s->version;

    int rc = add(d, obs("p", "i", 2024, 1, readd_cases[_i].v, readd_cases[_i].st,
                        readd_cases[_i].src, 20));
    ck_assert_msg(rc == readd_cases[_i].rc, "%s: %d", readd_cases[_i].name, rc);
    const db_point *pt = db_series_point(s, pp_period_make(2024, 1));
    ck_assert_uint_eq(pt->n_vintages, 1 + (unsigned)rc);
    ck_assert_uint_eq(db_generation(d), gen + (uint64_t)rc);
    ck_assert_uint_eq(s->version, ver + (uint64_t)rc);
    ck_assert_int_eq(s->updated_at, rc ? 20 : 10);
    db_free(d);
}
END_TEST

START_TEST(test_negative_zero_repeat)
{
    db *d = db_new();
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 0.0, 'A', "f", 1)), 1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, -0.0, 'A', "f", 2)), 0); /* == */
    db_free(d);
}
END_TEST

START_TEST(test_revision_back_to_old_value)
{
    /* only the latest vintage counts: A, B, A again makes three vintages */
    db *d = db_new();
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', "f", 1)), 1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 2, 'R', "f", 2)), 1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', "f", 3)), 1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', "f", 4)), 0);
    const db_point *pt = db_series_point(db_series_get(d, "p", "i"), pp_period_make(2024, 1));
    ck_assert_uint_eq(pt->n_vintages, 3);
    ck_assert(pt->vintages[2].value == 1);
    db_free(d);
}
END_TEST

START_TEST(test_many_vintages)
{
    /* crosses from arena-backed vintage arrays to malloc'd ones */
    db *d = db_new();
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(add(d, obs("p", "i", 2024, 5, i, 'R', "rev", i)), 1);
    const db_point *pt = db_series_point(db_series_get(d, "p", "i"), pp_period_make(2024, 5));
    ck_assert_uint_eq(pt->n_vintages, 1000);
    ck_assert_uint_ge(pt->cap, 1000);
    for (int i = 0; i < 1000; i++) {
        ck_assert(pt->vintages[i].value == i);
        ck_assert_int_eq(pt->vintages[i].received_at, i);
    }
    db_free(d);
}
END_TEST

START_TEST(test_updated_at_is_newest)
{
    db *d = db_new();
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 2, 1, 'A', "f", 500)), 1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', "f", 300)), 1);
    ck_assert_int_eq(db_series_get(d, "p", "i")->updated_at, 500);
    ck_assert_int_eq(add(d, obs("p", "i", 2023, 1, 1, 'A', "f", 900)), 1);
    ck_assert_int_eq(db_series_get(d, "p", "i")->updated_at, 900);
    db_free(d);
}
END_TEST

START_TEST(test_sources_interned)
{
    db *d = db_new();
    char a[PP_SOURCE_MAX + 1], b[PP_SOURCE_MAX + 1];
    snprintf(a, sizeof a, "spool:%s", "file.csv");
    snprintf(b, sizeof b, "spool:%s", "file.csv");
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', a, 1)), 1);
    ck_assert_int_eq(add(d, obs("q", "j", 2024, 2, 2, 'A', b, 2)), 1);
    for (int k = 0; k < 500; k++) { /* enough distinct ones to grow the set */
        char src[32];
        snprintf(src, sizeof src, "src-%d", k);
        ck_assert_int_eq(add(d, obs("r", "k", 2000 + k / 12, 1 + k % 12, 1, 'A', src, 3)), 1);
    }
    const db_vintage *va = &db_series_point(db_series_get(d, "p", "i"), pp_period_make(2024, 1))->vintages[0];
    const db_vintage *vb = &db_series_point(db_series_get(d, "q", "j"), pp_period_make(2024, 2))->vintages[0];
    ck_assert_ptr_eq(va->source, vb->source);
    ck_assert_ptr_ne(va->source, a);
    ck_assert_str_eq(va->source, "spool:file.csv");
    const db_series *r = db_series_get(d, "r", "k");
    ck_assert_uint_eq(r->n_points, 500);
    ck_assert_str_eq(r->points[499].vintages[0].source, "src-499");
    ck_assert_ptr_eq(r->points[0].vintages[0].source,
                     db_series_point(r, pp_period_make(2000, 1))->vintages[0].source);
    db_free(d);
}
END_TEST

START_TEST(test_invalid_refused)
{
    quiet();
    db *d = db_new();
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, NAN, 'A', "f", 1)), -1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, INFINITY, 'A', "f", 1)), -1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'X', "f", 1)), -1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, '\0', "f", 1)), -1);
    ck_assert_int_eq(add(d, obs("", "i", 2024, 1, 1, 'A', "f", 1)), -1);
    pp_target t = target("p", "i", 2024, NAN);
    ck_assert_int_eq(db_add_target(d, &t), -1);
    ck_assert_uint_eq(db_series_count(d), 0);
    ck_assert_uint_eq(db_generation(d), 0);
    db_free(d);
}
END_TEST

/* ---- order ------------------------------------------------------------------------------ */

START_TEST(test_series_sorted)
{
    /* park first, then indicator: "a"/"z" sorts before "a-b"/"a" */
    static const char *keys[][2] = {
        { "zz", "a" }, { "a-b", "a" }, { "a", "z" }, { "a", "b" }, { "a_b", "c" },
        { "b", "a" },  { "a", "a" },   { "0", "x" }, { "ab", "a" }, { "a-b", "0" },
    };
    static const char *want[][2] = {
        { "0", "x" }, { "a", "a" },  { "a", "b" }, { "a", "z" },   { "a-b", "0" },
        { "a-b", "a" }, { "a_b", "c" }, { "ab", "a" }, { "b", "a" }, { "zz", "a" },
    };
    size_t n = sizeof keys / sizeof keys[0];
    db *d = db_new();
    for (size_t i = 0; i < n; i++) {
        if (i % 2)
            ck_assert_int_eq(add(d, obs(keys[i][0], keys[i][1], 2024, 1, 1, 'A', "f", 1)), 1);
        else {
            pp_target t = target(keys[i][0], keys[i][1], 2024, 1);
            ck_assert_int_eq(db_add_target(d, &t), 1);
        }
    }
    ck_assert_uint_eq(db_series_count(d), n);
    for (size_t i = 0; i < n; i++) {
        const db_series *s = db_series_at(d, i);
        ck_assert_str_eq(s->park, want[i][0]);
        ck_assert_str_eq(s->indicator, want[i][1]);
        ck_assert_ptr_eq(db_series_get(d, want[i][0], want[i][1]), s);
    }
    ck_assert_ptr_null(db_series_at(d, n));
    db_free(d);
}
END_TEST

static uint32_t lcg(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

START_TEST(test_100k_out_of_order)
{
    enum { SERIES = 50, PERIODS = 2000, N = SERIES * PERIODS };
    int *order = malloc(N * sizeof *order);
    ck_assert_ptr_nonnull(order);
    for (int i = 0; i < N; i++)
        order[i] = i;
    uint32_t seed = 12345;
    for (int i = N - 1; i > 0; i--) {
        int k = (int)(lcg(&seed) % (uint32_t)(i + 1));
        int t = order[i];
        order[i] = order[k];
        order[k] = t;
    }
    db *d = db_new();
    int base = pp_period_make(1950, 1);
    for (int i = 0; i < N; i++) {
        int s = order[i] / PERIODS, p = order[i] % PERIODS;
        char park[16], ind[16];
        snprintf(park, sizeof park, "park-%02d", s % 10);
        snprintf(ind, sizeof ind, "ind-%d", s / 10);
        pp_obs o = obs(park, ind, 2000, 1, s * 10000.0 + p, 'A', "bulk", i);
        o.period = base + p;
        ck_assert_int_eq(db_add_obs(d, &o), 1);
    }
    free(order);
    ck_assert_uint_eq(db_series_count(d), SERIES);
    ck_assert_uint_eq(db_generation(d), N);
    for (size_t i = 0; i < SERIES; i++) {
        const db_series *s = db_series_at(d, i);
        if (i > 0) {
            const db_series *prev = db_series_at(d, i - 1);
            int c = strcmp(prev->park, s->park);
            ck_assert(c < 0 || (c == 0 && strcmp(prev->indicator, s->indicator) < 0));
        }
        int sidx = (s->park[6] - '0') + 10 * (s->indicator[4] - '0');
        ck_assert_uint_eq(s->n_points, PERIODS);
        ck_assert_uint_eq(s->version, PERIODS);
        for (int p = 0; p < PERIODS; p++) {
            ck_assert_int_eq(s->points[p].period, base + p);
            ck_assert_uint_eq(s->points[p].n_vintages, 1);
            ck_assert(s->points[p].vintages[0].value == sidx * 10000.0 + p);
        }
        ck_assert_ptr_eq(db_series_point(s, base + 1234), &s->points[1234]);
    }
    db_free(d);
}
END_TEST

/* ---- targets ---------------------------------------------------------------------------- */

START_TEST(test_targets_per_year)
{
    db *d = db_new();
    double v = -1;
    ck_assert(!db_target(d, "p", "i", 2024, &v));
    pp_target t23 = target("p", "i", 2023, 100), t24 = target("p", "i", 2024, 120);
    ck_assert_int_eq(db_add_target(d, &t23), 1);
    /* a target alone makes an empty series */
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n_points, 0);
    ck_assert_uint_eq(s->version, 1);
    ck_assert_uint_eq(db_series_count(d), 1);
    ck_assert_int_eq(db_add_target(d, &t24), 1);
    ck_assert_uint_eq(s->version, 2);

    ck_assert(db_target(d, "p", "i", 2023, &v));
    ck_assert(v == 100);
    ck_assert(db_target(d, "p", "i", 2024, &v));
    ck_assert(v == 120);
    ck_assert(db_target(d, "p", "i", 2024, NULL));
    ck_assert(!db_target(d, "p", "i", 2025, &v));
    ck_assert(!db_target(d, "p", "j", 2024, &v));
    ck_assert(!db_target(d, "q", "i", 2024, &v));

    uint64_t gen = db_generation(d);
    ck_assert_int_eq(db_add_target(d, &t24), 0); /* identical */
    ck_assert_uint_eq(db_generation(d), gen);
    ck_assert_uint_eq(s->version, 2);
    t24.value = 130;
    ck_assert_int_eq(db_add_target(d, &t24), 1); /* changed */
    ck_assert_uint_eq(db_generation(d), gen + 1);
    ck_assert_uint_eq(s->version, 3);
    ck_assert(db_target(d, "p", "i", 2024, &v));
    ck_assert(v == 130);
    ck_assert(db_target(d, "p", "i", 2023, &v));
    ck_assert(v == 100);

    /* figures then join the same series */
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 5, 'A', "f", 1)), 1);
    ck_assert_ptr_eq(db_series_get(d, "p", "i"), s);
    ck_assert_uint_eq(s->n_points, 1);
    ck_assert_uint_eq(s->version, 4);
    db_free(d);
}
END_TEST

START_TEST(test_many_targets)
{
    db *d = db_new();
    for (int k = 0; k < 3000; k++) {
        char park[16];
        snprintf(park, sizeof park, "p%d", k % 30);
        pp_target t = target(park, "i", 1900 + k / 30, k);
        ck_assert_int_eq(db_add_target(d, &t), 1);
    }
    for (int k = 0; k < 3000; k++) {
        char park[16];
        double v;
        snprintf(park, sizeof park, "p%d", k % 30);
        ck_assert(db_target(d, park, "i", 1900 + k / 30, &v));
        ck_assert(v == k);
    }
    ck_assert_uint_eq(db_series_count(d), 30);
    db_free(d);
}
END_TEST

START_TEST(test_generation)
{
    db *d = db_new();
    ck_assert_uint_eq(db_generation(d), 0);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', "f", 1)), 1);
    ck_assert_uint_eq(db_generation(d), 1);
    ck_assert_int_eq(add(d, obs("p", "i", 2024, 1, 1, 'A', "f", 2)), 0);
    ck_assert_uint_eq(db_generation(d), 1);
    ck_assert_int_eq(add(d, obs("p", "j", 2024, 1, 1, 'A', "f", 2)), 1);
    ck_assert_uint_eq(db_generation(d), 2);
    pp_target t = target("p", "i", 2024, 9);
    ck_assert_int_eq(db_add_target(d, &t), 1);
    ck_assert_uint_eq(db_generation(d), 3);
    ck_assert_uint_eq(db_series_get(d, "p", "i")->version, 2);
    ck_assert_uint_eq(db_series_get(d, "p", "j")->version, 1);
    db_free(d);
}
END_TEST

/* ---- readers beside a writer ------------------------------------------------------------ */

typedef struct reader_arg {
    db *d;
    atomic_int *stop;
    int bad;
    long rounds;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    while (!atomic_load(a->stop) || a->rounds == 0) {
        db_rdlock(a->d);
        size_t n = db_series_count(a->d);
        for (size_t i = 0; i < n; i++) {
            const db_series *s = db_series_at(a->d, i);
            if (i > 0 && strcmp(db_series_at(a->d, i - 1)->park, s->park) > 0)
                a->bad++;
            for (size_t k = 1; k < s->n_points; k++)
                if (s->points[k - 1].period >= s->points[k].period)
                    a->bad++;
        }
        db_unlock(a->d);
        a->rounds++;
    }
    return NULL;
}

START_TEST(test_concurrent_readers)
{
    db *d = db_new();
    atomic_int stop = 0;
    reader_arg args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (reader_arg){ .d = d, .stop = &stop };
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    uint32_t seed = 7;
    for (int i = 0; i < 20000; i++) {
        char park[16];
        snprintf(park, sizeof park, "p%u", lcg(&seed) % 40);
        pp_obs o = obs(park, "i", 2000, 1, i, 'A', "f", i);
        o.period += (int)(lcg(&seed) % 300);
        db_wrlock(d);
        ck_assert_int_ge(db_add_obs(d, &o), 0);
        db_unlock(d);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(args[i].bad, 0);
        ck_assert_int_gt(args[i].rounds, 0);
    }
    ck_assert_uint_eq(db_series_count(d), 40);
    db_free(d);
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("figures");
    tcase_add_test(tc, test_vintages_and_value_in_force);
    tcase_add_loop_test(tc, test_readd, 0, sizeof readd_cases / sizeof readd_cases[0]);
    tcase_add_test(tc, test_negative_zero_repeat);
    tcase_add_test(tc, test_revision_back_to_old_value);
    tcase_add_test(tc, test_many_vintages);
    tcase_add_test(tc, test_updated_at_is_newest);
    tcase_add_test(tc, test_sources_interned);
    tcase_add_test(tc, test_invalid_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_series_sorted);
    tcase_add_test(tc, test_100k_out_of_order);
    tcase_add_test(tc, test_concurrent_readers);
    suite_add_tcase(s, tc);

    tc = tcase_create("targets");
    tcase_add_test(tc, test_targets_per_year);
    tcase_add_test(tc, test_many_targets);
    tcase_add_test(tc, test_generation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(db_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? 1 : 0;
}
