/*
 * check_db.c — Check suite for the in-memory state (daemon/db.c): vintages and
 * the value in force, idempotent re-adds, revisions, order of series and of
 * months (also for 100k out-of-order inserts), dense months with gaps and
 * figures before the first month, the accessors, targets per year, version and
 * generation counters, interned sources and deliveries, readers running
 * beside a writer, and values kept bit for bit, as mantissas or as doubles.
 */
#include "db.h"
#include "capture.h"
#include "log.h"
#include "check_main.h"
#include "test_obs.h"

#include <check.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pp_target target(const char *park, const char *ind, int year, double v)
{
    return test_target(park, ind, year, v, "targets.csv", 0);
}

static int add(db *d, pp_obs o) { return db_add_obs(d, &o); }

/* One figure of park's indicator "i" to add, and what db_add_obs must answer. */
typedef struct add_step {
    const char *park;
    int y, m;
    double v;
    char st;
    const char *src;
    int64_t at;
    int rc;
} add_step;

static void add_steps(db *d, const add_step *steps, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const add_step *a = &steps[k];
        int rc = add(d, test_obs(a->park, "i", a->y, a->m, a->v, a->st, a->src, a->at));
        ck_assert_msg(rc == a->rc, "step %zu: %d, want %d", k, rc, a->rc);
    }
}

/* A new db after the steps given as arguments. */
static db *db_with(const add_step *steps, size_t n)
{
    db *d = db_new();
    ck_assert_ptr_nonnull(d);
    add_steps(d, steps, n);
    return d;
}

#define DB_WITH(...) \
    db_with((const add_step[]){__VA_ARGS__}, sizeof((const add_step[]){__VA_ARGS__}) / sizeof(add_step))

/* The vintage in force for (y, m), which must exist. */
static db_vintage latest(const db_series *s, int y, int m)
{
    db_vintage v;
    ck_assert_msg(db_series_latest(s, pp_period_make(y, m), &v), "no figure for %d-%02d", y, m);
    return v;
}

static size_t n_vintages(const db_series *s, int period)
{
    return db_series_vintages(s, period, NULL, 0);
}

static void quiet(void) { log_set_level(getenv("PP_TEST_VERBOSE") ? LOG_LVL_DEBUG : 0); }

/* ---- vintages ------------------------------------------------------------------------ */

START_TEST(test_vintages_and_value_in_force)
{
    db *d = db_new();
    ck_assert_ptr_nonnull(d);
    int p = pp_period_make(2024, 3);
    ck_assert_int_eq(add(d, test_obs("xt", "fai", 2024, 3, 10.5, 'P', "a.csv", 100)), 1);
    ck_assert_int_eq(add(d, test_obs("xt", "fai", 2024, 3, 11.0, 'A', "b.csv", 200)), 1);
    ck_assert_int_eq(add(d, test_obs("xt", "fai", 2024, 3, 11.25, 'R', "c.csv", 300)), 1);

    const db_series *s = db_series_get(d, "xt", "fai");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(db_series_first(s), p);
    ck_assert_int_eq(db_series_last(s), p);
    db_vintage vs[4];
    ck_assert_uint_eq(db_series_vintages(s, p, vs, 4), 3);
    static const struct { double v; char st; const char *src; int64_t at; } want[] = {
        { 10.5, 'P', "a.csv", 100 }, { 11.0, 'A', "b.csv", 200 }, { 11.25, 'R', "c.csv", 300 },
    };
    for (size_t i = 0; i < 3; i++) {
        db_vintage one;
        ck_assert(db_series_vintage(s, p, i, &one));
        for (const db_vintage *v = &vs[i]; v != NULL; v = v == &one ? NULL : &one) {
            ck_assert(v->value == want[i].v);
            ck_assert_int_eq(v->status, want[i].st);
            ck_assert_str_eq(v->source, want[i].src);
            ck_assert_int_eq(v->received_at, want[i].at);
        }
    }
    db_vintage v;
    ck_assert(!db_series_vintage(s, p, 3, &v));
    ck_assert(db_series_latest(s, p, &v));
    ck_assert(v.value == 11.25); /* the value in force */
    ck_assert_int_eq(v.status, 'R');
    ck_assert_str_eq(v.source, "c.csv");
    ck_assert_int_eq(v.received_at, 300);
    ck_assert_int_eq(s->updated_at, 300);
    ck_assert_uint_eq(s->version, 3);
    ck_assert(!db_series_latest(s, p + 1, &v));
    ck_assert(!db_series_latest(s, p - 1, &v));
    ck_assert_uint_eq(n_vintages(s, p + 1), 0);
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
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 5.0, 'A', "f.csv", 10)), 1);
    uint64_t gen = db_generation(d);
    const db_series *s = db_series_get(d, "p", "i");
    uint64_t ver = s->version;

    int rc = add(d, test_obs("p", "i", 2024, 1, readd_cases[_i].v, readd_cases[_i].st,
                        readd_cases[_i].src, 20));
    ck_assert_msg(rc == readd_cases[_i].rc, "%s: %d", readd_cases[_i].name, rc);
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 1)), 1 + (unsigned)rc);
    ck_assert_uint_eq(db_generation(d), gen + (uint64_t)rc);
    ck_assert_uint_eq(s->version, ver + (uint64_t)rc);
    ck_assert_int_eq(s->updated_at, rc ? 20 : 10);
    db_free(d);
}
END_TEST

START_TEST(test_negative_zero_repeat)
{
    db *d = DB_WITH({"p", 2024, 1, 0.0, 'A', "f", 1, 1},
                    {"p", 2024, 1, -0.0, 'A', "f", 2, 0}); /* == */
    db_free(d);
}
END_TEST

START_TEST(test_revision_back_to_old_value)
{
    /* only the latest vintage counts: A, B, A again makes three vintages */
    db *d = DB_WITH({"p", 2024, 1, 1, 'A', "f", 1, 1}, {"p", 2024, 1, 2, 'R', "f", 2, 1},
                    {"p", 2024, 1, 1, 'A', "f", 3, 1}, {"p", 2024, 1, 1, 'A', "f", 4, 0});
    const db_series *s = db_series_get(d, "p", "i");
    db_vintage vs[3];
    ck_assert_uint_eq(db_series_vintages(s, pp_period_make(2024, 1), vs, 3), 3);
    ck_assert(vs[0].value == 1 && vs[1].value == 2 && vs[2].value == 1);
    ck_assert_int_eq(vs[2].received_at, 3); /* the repeat at 4 changed nothing */
    db_free(d);
}
END_TEST

START_TEST(test_many_vintages)
{
    /* the older vintages array grows many times; one delivery per vintage */
    db *d = db_new();
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 5, i, 'R', "rev", i)), 1);
    const db_series *s = db_series_get(d, "p", "i");
    int p = pp_period_make(2024, 5);
    db_vintage *vs = malloc(1000 * sizeof *vs);
    ck_assert_ptr_nonnull(vs);
    ck_assert_uint_eq(db_series_vintages(s, p, vs, 1000), 1000);
    for (int i = 0; i < 1000; i++) {
        ck_assert(vs[i].value == i);
        ck_assert_int_eq(vs[i].received_at, i);
    }
    /* a short buffer gets the oldest, the count is still all of them */
    ck_assert_uint_eq(db_series_vintages(s, p, vs, 2), 1000);
    ck_assert(vs[0].value == 0 && vs[1].value == 1);
    free(vs);
    db_free(d);
}
END_TEST

START_TEST(test_updated_at_is_newest)
{
    db *d = db_new();
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 2, 1, 'A', "f", 500)), 1);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 1, 'A', "f", 300)), 1);
    ck_assert_int_eq(db_series_get(d, "p", "i")->updated_at, 500);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2023, 1, 1, 'A', "f", 900)), 1);
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
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 1, 'A', a, 1)), 1);
    ck_assert_int_eq(add(d, test_obs("q", "j", 2024, 2, 2, 'A', b, 2)), 1);
    for (int k = 0; k < 500; k++) { /* enough distinct ones to grow the set */
        char src[32];
        snprintf(src, sizeof src, "src-%d", k);
        ck_assert_int_eq(add(d, test_obs("r", "k", 2000 + k / 12, 1 + k % 12, 1, 'A', src, 3)), 1);
    }
    db_vintage va = latest(db_series_get(d, "p", "i"), 2024, 1);
    db_vintage vb = latest(db_series_get(d, "q", "j"), 2024, 2);
    ck_assert_ptr_eq(va.source, vb.source);
    ck_assert_ptr_ne(va.source, a);
    ck_assert_str_eq(va.source, "spool:file.csv");
    const db_series *r = db_series_get(d, "r", "k");
    ck_assert_int_eq(db_series_first(r), pp_period_make(2000, 1));
    ck_assert_int_eq(db_series_last(r), pp_period_make(2000, 1) + 499);
    ck_assert_str_eq(latest(r, 2041, 8).source, "src-499");
    /* series ids are interned too, and the copies are the db's */
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_str_eq(s->park, "p");
    ck_assert_str_eq(s->indicator, "i");
    ck_assert_ptr_eq(db_series_get(d, "p", "i")->park, s->park);
    db_free(d);
}
END_TEST

START_TEST(test_invalid_refused)
{
    quiet();
    db *d = DB_WITH({"p", 2024, 1, NAN, 'A', "f", 1, -1}, {"p", 2024, 1, INFINITY, 'A', "f", 1, -1},
                    {"p", 2024, 1, 1, 'X', "f", 1, -1}, {"p", 2024, 1, 1, '\0', "f", 1, -1},
                    {"", 2024, 1, 1, 'A', "f", 1, -1});
    pp_target t = target("p", "i", 2024, NAN);
    ck_assert_int_eq(db_add_target(d, &t), -1);
    ck_assert_uint_eq(db_series_count(d), 0);
    ck_assert_uint_eq(db_generation(d), 0);
    db_free(d);
}
END_TEST

/* ---- months, revisions and deliveries ------------------------------------------------ */

START_TEST(test_dense_with_gap)
{
    db *d = DB_WITH({"p", 2024, 1, 1, 'A', "f", 1, 1}, {"p", 2024, 3, 3, 'P', "f", 1, 1},
                    {"p", 2024, 12, 12, 'E', "g", 2, 1}, {"p", 2025, 2, 14, 'A', "g", 2, 1});
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_int_eq(db_series_first(s), pp_period_make(2024, 1));
    ck_assert_int_eq(db_series_last(s), pp_period_make(2025, 2));

    /* the months between hold nothing */
    db_vintage v;
    for (int m = 2; m <= 11; m++)
        if (m != 3) {
            ck_assert(!db_series_latest(s, pp_period_make(2024, m), &v));
            ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, m)), 0);
            ck_assert(!db_series_vintage(s, pp_period_make(2024, m), 0, &v));
        }
    ck_assert(!db_series_latest(s, pp_period_make(2025, 1), &v));
    ck_assert(!db_series_latest(s, pp_period_make(2023, 12), &v));
    ck_assert(!db_series_latest(s, pp_period_make(2025, 3), &v));

    static const struct { int y, m; double v; char st; } want[] = {
        { 2024, 1, 1, 'A' }, { 2024, 3, 3, 'P' }, { 2024, 12, 12, 'E' }, { 2025, 2, 14, 'A' },
    };
    int p = -1;
    for (size_t k = 0; k < 4; k++) {
        p = db_series_next(s, p, &v);
        ck_assert_int_eq(p, pp_period_make(want[k].y, want[k].m));
        ck_assert(v.value == want[k].v);
        ck_assert_int_eq(v.status, want[k].st);
    }
    ck_assert_int_eq(db_series_next(s, p, &v), -1);
    ck_assert_int_eq(db_series_next(s, pp_period_make(2024, 3), NULL), pp_period_make(2024, 12));
    ck_assert_int_eq(db_series_next(s, pp_period_make(2024, 5), NULL), pp_period_make(2024, 12));
    ck_assert_int_eq(db_series_next(s, pp_period_make(1990, 5), NULL), pp_period_make(2024, 1));
    ck_assert_int_eq(db_series_next(s, 2147483647, NULL), -1);

    /* filling the gap changes neither end; a far month extends the series */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 2, 2, 'A', "h", 3)), 1);
    ck_assert(latest(s, 2024, 2).value == 2);
    ck_assert_int_eq(db_series_next(s, pp_period_make(2024, 1), NULL), pp_period_make(2024, 2));
    ck_assert_int_eq(db_series_first(s), pp_period_make(2024, 1));
    ck_assert_int_eq(db_series_last(s), pp_period_make(2025, 2));
    ck_assert_int_eq(add(d, test_obs("p", "i", 2031, 7, 99, 'A', "h", 3)), 1);
    ck_assert_int_eq(db_series_last(s), pp_period_make(2031, 7));
    ck_assert_int_eq(db_series_next(s, pp_period_make(2025, 2), NULL), pp_period_make(2031, 7));
    ck_assert(latest(s, 2025, 2).value == 14);
    ck_assert(latest(s, 2031, 7).value == 99);
    ck_assert_uint_eq(s->version, 6);
    db_free(d);
}
END_TEST

START_TEST(test_before_first)
{
    db *d = db_new();
    for (int m = 6; m <= 8; m++)
        ck_assert_int_eq(add(d, test_obs("p", "i", 2024, m, m, 'A', "f", m)), 1);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 7, 70, 'R', "r", 10)), 1); /* a revision */
    const db_series *s = db_series_get(d, "p", "i");

    /* the month before: room in the cells already (they hold a year) */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 5, 5, 'P', "f", 5)), 1);
    ck_assert_int_eq(db_series_first(s), pp_period_make(2024, 5));
    /* years before: the cells move to a larger array */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2019, 11, -1, 'E', "old", 1)), 1);
    ck_assert_int_eq(db_series_first(s), pp_period_make(2019, 11));
    ck_assert_int_eq(db_series_last(s), pp_period_make(2024, 8));
    /* and after, once more */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2025, 1, 13, 'A', "n", 20)), 1);
    ck_assert_int_eq(db_series_last(s), pp_period_make(2025, 1));

    /* everything survived both moves, revisions included */
    ck_assert(latest(s, 2019, 11).value == -1);
    ck_assert_int_eq(latest(s, 2019, 11).status, 'E');
    ck_assert_str_eq(latest(s, 2019, 11).source, "old");
    ck_assert(latest(s, 2024, 5).value == 5);
    ck_assert_int_eq(latest(s, 2024, 5).status, 'P');
    ck_assert(latest(s, 2024, 6).value == 6);
    ck_assert(latest(s, 2024, 8).value == 8);
    ck_assert_int_eq(latest(s, 2024, 8).received_at, 8);
    db_vintage vs[2];
    ck_assert_uint_eq(db_series_vintages(s, pp_period_make(2024, 7), vs, 2), 2);
    ck_assert(vs[0].value == 7 && vs[0].status == 'A' && vs[0].received_at == 7);
    ck_assert(vs[1].value == 70 && vs[1].status == 'R' && vs[1].received_at == 10);
    ck_assert_str_eq(vs[1].source, "r");
    db_vintage v;
    ck_assert(!db_series_latest(s, pp_period_make(2019, 12), &v));
    ck_assert(!db_series_latest(s, pp_period_make(2024, 4), &v));
    ck_assert_int_eq(db_series_next(s, pp_period_make(2019, 11), NULL), pp_period_make(2024, 5));
    ck_assert_int_eq(s->updated_at, 20);
    db_free(d);
}
END_TEST

START_TEST(test_revisions_interleaved)
{
    db *d = db_new();
    /* three months, then revisions in no particular order */
    static const struct { int m; double v; char st; const char *src; int64_t at; } steps[] = {
        { 1, 10, 'P', "jan.csv", 100 }, { 2, 20, 'P', "feb.csv", 200 }, { 3, 30, 'P', "mar.csv", 300 },
        { 2, 21, 'R', "rev1.csv", 400 }, { 1, 11, 'R', "rev1.csv", 400 }, { 2, 22, 'R', "rev2.csv", 500 },
        { 3, 30, 'A', "rev2.csv", 500 }, /* only the status changes */
        { 2, 20, 'R', "rev3.csv", 600 }, /* back to an older value: still a new vintage */
    };
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++)
        ck_assert_int_eq(add(d, test_obs("p", "i", 2024, steps[k].m, steps[k].v, steps[k].st,
                                    steps[k].src, steps[k].at)), 1);
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_uint_eq(s->version, 8);
    for (int m = 1; m <= 3; m++) {
        /* the steps of month m, in order, are its vintages, oldest first */
        db_vintage vs[8];
        size_t n = db_series_vintages(s, pp_period_make(2024, m), vs, 8), k = 0;
        for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
            if (steps[j].m != m)
                continue;
            ck_assert_uint_lt(k, n);
            ck_assert(vs[k].value == steps[j].v);
            ck_assert_int_eq(vs[k].status, steps[j].st);
            ck_assert_str_eq(vs[k].source, steps[j].src);
            ck_assert_int_eq(vs[k].received_at, steps[j].at);
            db_vintage one;
            ck_assert(db_series_vintage(s, pp_period_make(2024, m), k, &one));
            ck_assert(one.value == vs[k].value && one.received_at == vs[k].received_at);
            k++;
        }
        ck_assert_uint_eq(k, n);
        db_vintage v = latest(s, 2024, m); /* in force: the last */
        ck_assert(v.value == vs[n - 1].value && v.status == vs[n - 1].status);
        ck_assert_ptr_eq(v.source, vs[n - 1].source);
    }
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 1)), 2);
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 2)), 4);
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 3)), 2);
    /* repeating the one in force is ignored, repeating an older one is not */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 2, 20, 'R', "rev3.csv", 700)), 0);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 2, 22, 'R', "rev2.csv", 800)), 1);
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 2)), 5);
    ck_assert_int_eq(latest(s, 2024, 2).received_at, 800);
    db_free(d);
}
END_TEST

START_TEST(test_idempotent_file)
{
    /* a file of two years ingested, then again (e.g. replayed) a day later */
    db *d = db_new();
    for (int k = 0; k < 24; k++)
        ck_assert_int_eq(add(d, test_obs("p", "i", 2023 + k / 12, 1 + k % 12, k * 1.5, 'A', "f.csv", 1000)), 1);
    const db_series *s = db_series_get(d, "p", "i");
    uint64_t gen = db_generation(d), ver = s->version;
    for (int k = 0; k < 24; k++)
        ck_assert_int_eq(add(d, test_obs("p", "i", 2023 + k / 12, 1 + k % 12, k * 1.5, 'A', "f.csv", 87400)), 0);
    ck_assert_uint_eq(db_generation(d), gen);
    ck_assert_uint_eq(s->version, ver);
    ck_assert_int_eq(s->updated_at, 1000);
    for (int k = 0; k < 24; k++) {
        int p = pp_period_make(2023 + k / 12, 1 + k % 12);
        ck_assert_uint_eq(n_vintages(s, p), 1);
        db_vintage v;
        ck_assert(db_series_latest(s, p, &v));
        ck_assert_int_eq(v.received_at, 1000); /* the first delivery stays */
        ck_assert(v.value == k * 1.5);
    }
    db_free(d);
}
END_TEST

START_TEST(test_deliveries_interned)
{
    db *d = db_new();
    /* one file, two series: one delivery */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 1, 'A', "a.csv", 100)), 1);
    ck_assert_int_eq(add(d, test_obs("q", "j", 2024, 1, 2, 'A', "a.csv", 100)), 1);
    db_vintage v1 = latest(db_series_get(d, "p", "i"), 2024, 1);
    db_vintage v2 = latest(db_series_get(d, "q", "j"), 2024, 1);
    ck_assert_ptr_eq(v1.source, v2.source);
    ck_assert_int_eq(v1.received_at, 100);
    ck_assert_int_eq(v2.received_at, 100);
    /* the same name received again later: another delivery, the same string */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 2, 3, 'A', "a.csv", 200)), 1);
    db_vintage v3 = latest(db_series_get(d, "p", "i"), 2024, 2);
    ck_assert_ptr_eq(v3.source, v1.source);
    ck_assert_int_eq(v3.received_at, 200);
    ck_assert_int_eq(latest(db_series_get(d, "p", "i"), 2024, 1).received_at, 100);

    /* records of deliveries taking turns (the one-entry cache misses each time),
     * and enough deliveries to grow the table several times: every month there is */
    enum { N = (PP_PERIOD_MAX_YEAR - PP_PERIOD_MIN_YEAR + 1) * 12 };
    for (int k = 0; k < N; k++) {
        char src[32];
        snprintf(src, sizeof src, "file-%d.csv", k % 7);
        pp_obs o = test_obs("r", "k", PP_PERIOD_MIN_YEAR, 1, k, k % 2 ? 'P' : 'A', src, 5000 + k / 3);
        o.period += k;
        ck_assert_int_eq(db_add_obs(d, &o), 1);
    }
    const db_series *r = db_series_get(d, "r", "k");
    const char *seen[7] = { 0 };
    int p = -1, k = 0;
    db_vintage v;
    while ((p = db_series_next(r, p, &v)) >= 0) {
        char src[32];
        snprintf(src, sizeof src, "file-%d.csv", k % 7);
        ck_assert_int_eq(p, pp_period_make(PP_PERIOD_MIN_YEAR, 1) + k);
        ck_assert(v.value == k);
        ck_assert_int_eq(v.status, k % 2 ? 'P' : 'A');
        ck_assert_str_eq(v.source, src);
        ck_assert_int_eq(v.received_at, 5000 + k / 3);
        if (seen[k % 7] == NULL)
            seen[k % 7] = v.source;
        ck_assert_ptr_eq(v.source, seen[k % 7]); /* one copy of each name */
        k++;
    }
    ck_assert_int_eq(k, N);
    db_free(d);
}
END_TEST

START_TEST(test_accessors_without_figures)
{
    db *d = db_new();
    db_vintage v, vs[2];
    ck_assert_ptr_null(db_series_get(d, "p", "i"));
    ck_assert_ptr_null(db_series_get(NULL, "p", "i"));
    ck_assert_int_eq(db_series_first(NULL), -1);
    ck_assert_int_eq(db_series_last(NULL), -1);
    ck_assert(!db_series_latest(NULL, pp_period_make(2024, 1), &v));
    ck_assert_int_eq(db_series_next(NULL, -1, &v), -1);
    ck_assert_uint_eq(db_series_vintages(NULL, pp_period_make(2024, 1), vs, 2), 0);
    ck_assert(!db_series_vintage(NULL, pp_period_make(2024, 1), 0, &v));
    ck_assert_uint_eq(db_series_count(NULL), 0);
    ck_assert_ptr_null(db_series_at(NULL, 0));
    ck_assert_uint_eq(db_generation(NULL), 0);
    ck_assert(!db_target(NULL, "p", "i", 2024, NULL));
    db_free(NULL);
    db_free(d);
}
END_TEST

START_TEST(test_period_range)
{
    quiet();
    db *d = db_new();
    ck_assert_int_eq(add(d, test_obs("p", "i", PP_PERIOD_MIN_YEAR - 1, 12, 1, 'A', "f", 1)), -1);
    ck_assert_int_eq(add(d, test_obs("p", "i", PP_PERIOD_MAX_YEAR + 1, 1, 1, 'A', "f", 1)), -1);
    ck_assert_uint_eq(db_series_count(d), 0);
    /* the longest series there can be, from both ends towards the middle */
    ck_assert_int_eq(add(d, test_obs("p", "i", PP_PERIOD_MAX_YEAR, 12, 2, 'A', "f", 1)), 1);
    ck_assert_int_eq(add(d, test_obs("p", "i", PP_PERIOD_MIN_YEAR, 1, 1, 'A', "f", 1)), 1);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 6, 3, 'A', "f", 1)), 1);
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_int_eq(db_series_first(s), pp_period_make(PP_PERIOD_MIN_YEAR, 1));
    ck_assert_int_eq(db_series_last(s), pp_period_make(PP_PERIOD_MAX_YEAR, 12));
    ck_assert(latest(s, PP_PERIOD_MIN_YEAR, 1).value == 1);
    ck_assert(latest(s, 2024, 6).value == 3);
    ck_assert(latest(s, PP_PERIOD_MAX_YEAR, 12).value == 2);
    ck_assert_int_eq(db_series_next(s, pp_period_make(PP_PERIOD_MIN_YEAR, 1), NULL),
                     pp_period_make(2024, 6));
    db_free(d);
}
END_TEST

/* Runs db_add_obs (o != NULL) or db_add_target with stderr sent to a
 * temporary file; returns its result and the log lines in log (len bytes). */
static int add_logged(db *d, const pp_obs *o, const pp_target *t, char *log, size_t len)
{
    stderr_capture c;
    capture_begin(&c);
    log_set_level(LOG_LVL_INFO);
    int rc = o != NULL ? db_add_obs(d, o) : db_add_target(d, t);
    quiet();
    capture_end(&c, log, len);
    return rc;
}

/* Months before 1980-01 are outside the RRD files' range (issue 10, defect 4;
 * see PP_PERIOD_MIN_YEAR): the db refuses them with the reason, Chinese first,
 * as the CSV reader does. */
START_TEST(test_period_before_1980)
{
    quiet();
    db *d = db_new();
    char log[2048];
    pp_obs o = test_obs("p", "i", 1969, 12, 1, 'A', "f", 1);
    ck_assert_int_eq(add_logged(d, &o, NULL, log, sizeof log), -1);
    ck_assert_msg(strstr(log, "p/i 1969-12: 期间早于1980年1月，无法保存 / period before 1980-01 "
                              "cannot be stored") != NULL, "log: %s", log);
    o = test_obs("p", "i", 1979, 12, 1, 'A', "f", 1);
    ck_assert_int_eq(add_logged(d, &o, NULL, log, sizeof log), -1);
    ck_assert_msg(strstr(log, "p/i 1979-12: 期间早于1980年1月") != NULL, "log: %s", log);
    ck_assert_uint_eq(db_series_count(d), 0);
    pp_target t = target("p", "i", 1979, 5);
    ck_assert_int_eq(add_logged(d, NULL, &t, log, sizeof log), -1);
    ck_assert_msg(strstr(log, "p/i 1979: 年份早于1980年，无法保存 / year before 1980 cannot be "
                              "stored") != NULL, "log: %s", log);
    ck_assert_uint_eq(db_series_count(d), 0);
    double v;
    ck_assert(!db_target(d, "p", "i", 1979, &v));
    t.year = 2200;
    ck_assert_int_eq(add_logged(d, NULL, &t, log, sizeof log), -1);
    ck_assert_msg(strstr(log, "年份晚于2199年") != NULL, "log: %s", log);
    /* the first month there is */
    o = test_obs("p", "i", 1980, 1, 2, 'A', "f", 1);
    ck_assert_int_eq(add_logged(d, &o, NULL, log, sizeof log), 1);
    t.year = 1980;
    ck_assert_int_eq(add_logged(d, NULL, &t, log, sizeof log), 1);
    ck_assert(db_target(d, "p", "i", 1980, &v) && v == 5);
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
            ck_assert_int_eq(add(d, test_obs(keys[i][0], keys[i][1], 2024, 1, 1, 'A', "f", 1)), 1);
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
    int64_t *at = malloc(N * sizeof *at); /* received_at of each (series, month) */
    ck_assert_ptr_nonnull(order);
    ck_assert_ptr_nonnull(at);
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
    int base = pp_period_make(PP_PERIOD_MIN_YEAR, 1);
    for (int i = 0; i < N; i++) {
        int s = order[i] / PERIODS, p = order[i] % PERIODS;
        char park[16], ind[16];
        snprintf(park, sizeof park, "park-%02d", s % 10);
        snprintf(ind, sizeof ind, "ind-%d", s / 10);
        pp_obs o = test_obs(park, ind, 2000, 1, s * 10000.0 + p, 'A', "bulk", i);
        o.period = base + p;
        ck_assert_int_eq(db_add_obs(d, &o), 1);
        at[order[i]] = i;
    }
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
        ck_assert_int_eq(db_series_first(s), base);
        ck_assert_int_eq(db_series_last(s), base + PERIODS - 1);
        ck_assert_uint_eq(s->version, PERIODS);
        int p = -1, k = 0;
        db_vintage v;
        while ((p = db_series_next(s, p, &v)) >= 0) {
            ck_assert_int_eq(p, base + k);
            ck_assert_uint_eq(n_vintages(s, p), 1);
            ck_assert(v.value == sidx * 10000.0 + k);
            ck_assert_int_eq(v.received_at, at[sidx * PERIODS + k]);
            k++;
        }
        ck_assert_int_eq(k, PERIODS);
    }
    free(order);
    free(at);
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
    ck_assert_int_eq(db_series_first(s), -1);
    ck_assert_int_eq(db_series_last(s), -1);
    ck_assert_int_eq(db_series_next(s, -1, NULL), -1);
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
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 5, 'A', "f", 1)), 1);
    ck_assert_ptr_eq(db_series_get(d, "p", "i"), s);
    ck_assert_int_eq(db_series_first(s), pp_period_make(2024, 1));
    ck_assert_int_eq(db_series_last(s), pp_period_make(2024, 1));
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
        pp_target t = target(park, "i", PP_PERIOD_MIN_YEAR + k / 30, k);
        ck_assert_int_eq(db_add_target(d, &t), 1);
    }
    for (int k = 0; k < 3000; k++) {
        char park[16];
        double v;
        snprintf(park, sizeof park, "p%d", k % 30);
        ck_assert(db_target(d, park, "i", PP_PERIOD_MIN_YEAR + k / 30, &v));
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
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 1, 'A', "f", 1)), 1);
    ck_assert_uint_eq(db_generation(d), 1);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 1, 'A', "f", 2)), 0);
    ck_assert_uint_eq(db_generation(d), 1);
    ck_assert_int_eq(add(d, test_obs("p", "j", 2024, 1, 1, 'A', "f", 2)), 1);
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
            int prev = -1, per;
            db_vintage v;
            while ((per = db_series_next(s, prev, &v)) >= 0) {
                if (per <= prev || (prev < 0 && per != db_series_first(s)) || v.status != 'A')
                    a->bad++;
                prev = per;
            }
            if (prev != db_series_last(s))
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
        pp_obs o = test_obs(park, "i", 2000, 1, i, 'A', "f", i);
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

/* ---- values: mantissas and doubles ----------------------------------------------- */

static bool same_bits(double a, double b)
{
    uint64_t x, y;
    memcpy(&x, &a, sizeof x);
    memcpy(&y, &b, sizeof y);
    return x == y;
}

#define ck_assert_bits(got, want)                                                            \
    do {                                                                                     \
        double got_ = (got), want_ = (want);                                                 \
        ck_assert_msg(same_bits(got_, want_), "%.17g (%a) read back as %.17g (%a)", want_,   \
                      want_, got_, got_);                                                    \
    } while (0)

static const struct {
    double v;
    bool fits; /* in a mantissa: the series stays narrow */
} value_cases[] = {
    { 0.1, true }, { 192.2, true }, { 1234.5, true }, { 1e-7, true }, { -1e-7, true },
    { 123456789.12, false }, /* 1.2e10 after the point: no int32_t */
    { 2147483647, true }, { -2147483647, true }, { 214.7483647, true }, { -214.7483647, true },
    { 2147483648.0, false }, { -2147483648.0, false },
    { -3.1, true }, { 12.3, true }, { 6000, true }, { 0.0, true }, { 1.2345678, true },
    { 99999.99, true }, { 1e9, true },
    { 0.30000000000000004, false }, /* 0.1 + 0.2: no short decimal gives it */
    { 0.7999999999999999, false }, { 0.12345678, false }, /* eight decimals */
    { 1e-8, false }, { 1e300, false }, { DBL_MAX, false }, { -DBL_MAX, false },
    { DBL_TRUE_MIN, false }, { 1e10, false },
    { -0.0, false }, /* would come back as +0.0 */
};

START_TEST(test_value_round_trip)
{
    double v = value_cases[_i].v;
    int p = pp_period_make(2024, 1);
    db *d = db_new();
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, v, 'A', "f", 1)), 1);
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_msg(s->wide == !value_cases[_i].fits, "%.17g: wide %d", v, s->wide);
    db_vintage one;
    ck_assert_bits(latest(s, 2024, 1).value, v);
    ck_assert_int_eq(db_series_next(s, -1, &one), p);
    ck_assert_bits(one.value, v);
    ck_assert(db_series_vintage(s, p, 0, &one));
    ck_assert_bits(one.value, v);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, v, 'A', "f", 2)), 0); /* a repeat */

    /* revised: the value goes to the older vintages, exactly */
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 2.5, 'R', "g", 3)), 1);
    db_vintage vs[2];
    ck_assert_uint_eq(db_series_vintages(s, p, vs, 2), 2);
    ck_assert_bits(vs[0].value, v);
    ck_assert_bits(vs[1].value, 2.5);
    ck_assert_int_eq(vs[0].status, 'A');
    ck_assert_int_eq(vs[1].status, 'R');

    /* the same value as a revision of a narrow series, and next to others */
    ck_assert_int_eq(add(d, test_obs("q", "i", 2024, 1, 7, 'A', "f", 1)), 1);
    ck_assert_int_eq(add(d, test_obs("q", "i", 2024, 3, 8, 'P', "f", 1)), 1);
    ck_assert_int_eq(add(d, test_obs("q", "i", 2024, 1, v, 'R', "g", 2)), 1);
    const db_series *q = db_series_get(d, "q", "i");
    ck_assert(q->wide == !value_cases[_i].fits);
    ck_assert_uint_eq(db_series_vintages(q, p, vs, 2), 2);
    ck_assert_bits(vs[0].value, 7);
    ck_assert_bits(vs[1].value, v);
    ck_assert_bits(latest(q, 2024, 3).value, 8);
    ck_assert_int_eq(latest(q, 2024, 3).status, 'P');
    db_free(d);
}
END_TEST

/* The k-th of a reproducible run of decimals of at most 9 digits, 7 of them
 * after the point (the generator's state in *r): its text (32 bytes), the
 * park it goes to (16 bytes, 120 months each) and what strtod makes of it. */
static double next_decimal(unsigned *r, int k, char *text, char *park)
{
    *r = *r * 1103515245u + 12345u;
    int m = (int)(*r >> 2) % 1000000000, e = (int)(*r >> 24) % 8;
    snprintf(text, 32, "%s%de-%d", *r & 1 ? "-" : "", m, e);
    snprintf(park, 16, "p%d", k / 120);
    return strtod(text, NULL);
}

START_TEST(test_decimals_stay_narrow)
{
    /* what strtod makes of any decimal of at most 9 digits, 7 of them after the
     * point, is kept as a mantissa and read back as the same double */
    db *d = db_new();
    unsigned r = 12345;
    char park[16], text[32];
    for (int k = 0; k < 100 * 120; k++) {
        double v = next_decimal(&r, k, text, park);
        int y = 2015 + k % 120 / 12;
        ck_assert_int_eq(add(d, test_obs(park, "i", y, 1 + k % 12, v, 'A', "f", 1)), 1);
        const db_series *s = db_series_get(d, park, "i");
        ck_assert_msg(!s->wide, "%s made the series wide", text);
        ck_assert_bits(latest(s, y, 1 + k % 12).value, v);
    }
    /* read again once all are in: nothing overwrote anything */
    r = 12345;
    for (int k = 0; k < 100 * 120; k++) {
        double v = next_decimal(&r, k, text, park);
        ck_assert_bits(latest(db_series_get(d, park, "i"), 2015 + k % 120 / 12, 1 + k % 12).value,
                       v);
    }
    db_free(d);
}
END_TEST

/* The vintages a series should hold, months from 2014-12 on. */
enum { MODEL_MONTHS = 125, MODEL_VINTAGES = 8 };
typedef struct model {
    int n[MODEL_MONTHS];
    double v[MODEL_MONTHS][MODEL_VINTAGES];
    char st[MODEL_MONTHS][MODEL_VINTAGES];
    int64_t at[MODEL_MONTHS][MODEL_VINTAGES];
} model;

static int model_add(db *d, model *mo, int month, double v, char st, int64_t at)
{
    char src[16];
    snprintf(src, sizeof src, "f%d.csv", (int)(at % 3));
    pp_obs o = test_obs("p", "i", 2014, 12, v, st, src, at);
    o.period += month;
    int rc = db_add_obs(d, &o);
    if (rc == 1) {
        int n = mo->n[month]++;
        ck_assert_int_lt(n, MODEL_VINTAGES);
        mo->v[month][n] = v;
        mo->st[month][n] = st;
        mo->at[month][n] = at;
    }
    return rc;
}

/* Every vintage of every month, through every accessor, bit for bit. */
static void model_check(const db_series *s, const model *mo)
{
    int base = pp_period_make(2014, 12), p = -1;
    db_vintage v, vs[MODEL_VINTAGES];
    for (int month = 0; month < MODEL_MONTHS; month++) {
        int n = mo->n[month];
        ck_assert_uint_eq(db_series_vintages(s, base + month, vs, MODEL_VINTAGES), (size_t)n);
        for (int j = 0; j < n; j++) {
            char src[16];
            snprintf(src, sizeof src, "f%d.csv", (int)(mo->at[month][j] % 3));
            ck_assert_bits(vs[j].value, mo->v[month][j]);
            ck_assert_int_eq(vs[j].status, mo->st[month][j]);
            ck_assert_int_eq(vs[j].received_at, mo->at[month][j]);
            ck_assert_str_eq(vs[j].source, src);
        }
        if (n == 0)
            continue;
        ck_assert(db_series_latest(s, base + month, &v));
        ck_assert_bits(v.value, mo->v[month][n - 1]);
        ck_assert_int_eq(v.received_at, mo->at[month][n - 1]);
        p = db_series_next(s, p, &v);
        ck_assert_int_eq(p, base + month);
        ck_assert_bits(v.value, mo->v[month][n - 1]);
        ck_assert_int_eq(v.status, mo->st[month][n - 1]);
    }
    ck_assert_int_eq(db_series_next(s, p, NULL), -1);
}

START_TEST(test_widen_midway)
{
    static model mo;
    memset(&mo, 0, sizeof mo);
    db *d = db_new();
    /* ten years of decimals of every exponent, months 1..120 */
    int64_t at = 100;
    for (int month = 1; month <= 120; month++) {
        char text[32];
        snprintf(text, sizeof text, "%de-%d", month * 7919 % 2000000 - 1000000, month % 8);
        ck_assert_int_eq(model_add(d, &mo, month, strtod(text, NULL), "APER"[month % 4], at++), 1);
    }
    /* revisions while narrow */
    ck_assert_int_eq(model_add(d, &mo, 15, 192.2, 'R', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 15, 1234.5, 'R', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 67, -3.1, 'R', at++), 1);
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert(!s->wide);
    model_check(s, &mo);

    /* a revision that does not fit: the series turns wide, and keeps everything */
    ck_assert_int_eq(model_add(d, &mo, 54, 0.1 + 0.2, 'R', at++), 1);
    ck_assert(s->wide);
    model_check(s, &mo);

    /* revisions across the conversion, of narrow and of wide values */
    ck_assert_int_eq(model_add(d, &mo, 15, 1e300, 'R', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 67, 12.3, 'A', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 54, 0.1, 'A', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 54, 0.1 + 0.2, 'R', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 90, 123456789.12, 'E', at++), 1);
    /* a month after the last and one before the first: the wide cells grow and shift */
    ck_assert_int_eq(model_add(d, &mo, 124, 7.5, 'P', at++), 1);
    ck_assert_int_eq(model_add(d, &mo, 0, -0.0, 'E', at++), 1);
    ck_assert_int_eq(db_series_first(s), pp_period_make(2014, 12));
    ck_assert_int_eq(db_series_last(s), pp_period_make(2014, 12) + 124);
    ck_assert(signbit(latest(s, 2014, 12).value));
    model_check(s, &mo);

    /* repeats of what is in force change nothing, narrow-born values included */
    uint64_t ver = s->version;
    ck_assert_int_eq(model_add(d, &mo, 1, mo.v[1][0], mo.st[1][0], mo.at[1][0]), 0);
    ck_assert_int_eq(model_add(d, &mo, 15, 1e300, 'R', mo.at[15][3]), 0);
    ck_assert_uint_eq(s->version, ver);
    model_check(s, &mo);
    db_free(d);
}
END_TEST

START_TEST(test_widen_random)
{
    /* series of decimals hit by an arbitrary double at a random moment, with
     * revisions and months out of order on both sides of it */
    unsigned r = 777;
    for (int round = 0; round < 50; round++) {
        static model mo;
        memset(&mo, 0, sizeof mo);
        db *d = db_new();
        int64_t at = 1;
        for (int k = 0; k < 300; k++) {
            r = r * 1103515245u + 12345u;
            int month = 1 + (int)(r >> 8) % 123;
            double v;
            if ((r >> 4) % 97 == 0) {
                uint64_t bits = ((uint64_t)r << 32) ^ (r * 2654435761u);
                memcpy(&v, &bits, sizeof v);
                if (!isfinite(v))
                    v = -1e-300;
            } else {
                char text[32];
                snprintf(text, sizeof text, "%de-%u", (int)(r >> 3) % 10000000 - 5000000,
                         (r >> 20) % 8);
                v = strtod(text, NULL);
            }
            if (mo.n[month] == MODEL_VINTAGES)
                continue;
            model_add(d, &mo, month, v, "APER"[r % 4], at++);
        }
        model_check(db_series_get(d, "p", "i"), &mo);
        db_free(d);
    }
}
END_TEST

START_TEST(test_widen_target_only)
{
    /* a series a target created has no cells yet: it turns wide without any */
    db *d = db_new();
    pp_target t = target("p", "i", 2024, 100);
    ck_assert_int_eq(db_add_target(d, &t), 1);
    const db_series *s = db_series_get(d, "p", "i");
    ck_assert_int_eq(db_series_first(s), -1);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 2, 1e300, 'A', "f", 1)), 1);
    ck_assert(s->wide);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 1, 1.5, 'A', "f", 1)), 1);
    ck_assert_int_eq(add(d, test_obs("p", "i", 2024, 3, 0.1, 'A', "f", 1)), 1);
    ck_assert_bits(latest(s, 2024, 1).value, 1.5);
    ck_assert_bits(latest(s, 2024, 2).value, 1e300);
    ck_assert_bits(latest(s, 2024, 3).value, 0.1);
    double tv;
    ck_assert(db_target(d, "p", "i", 2024, &tv) && tv == 100);
    db_free(d);
}
END_TEST

/* ---- yoy (同比 %) ----------------------------------------------------------------- */

static pp_obs obs_yoy(const char *park, const char *ind, int y, int m, double v, double yoy,
                      const char *src, int64_t at)
{
    pp_obs o = test_obs(park, ind, y, m, v, 'A', src, at);
    o.has_yoy = true;
    o.yoy = yoy;
    return o;
}

/* yoy is kept with its figure, null for the months without one; a change of
 * yoy alone is a revision (the old vintage keeps its own yoy); repeating it
 * is not; the yoy array follows the cells when they grow and shift. */
START_TEST(test_yoy)
{
    db *d = db_new();
    ck_assert_int_eq(add(d, test_obs("xt", "fai", 2024, 5, 50, 'A', "a.csv", 100)), 1);
    const db_series *s = db_series_get(d, "xt", "fai");
    ck_assert_ptr_null(s->yoy); /* no room taken while no figure has one */
    db_vintage v = latest(s, 2024, 5);
    ck_assert(!v.has_yoy);
    ck_assert_int_eq(add(d, obs_yoy("xt", "fai", 2024, 6, 60, 12.5, "b.csv", 200)), 1);
    ck_assert_ptr_nonnull(s->yoy);
    v = latest(s, 2024, 6);
    ck_assert(v.has_yoy);
    ck_assert(v.yoy == 12.5);
    ck_assert(!latest(s, 2024, 5).has_yoy);
    /* the same again: unchanged; the same value with another yoy: a revision */
    ck_assert_int_eq(add(d, obs_yoy("xt", "fai", 2024, 6, 60, 12.5, "b.csv", 300)), 0);
    ck_assert_int_eq(add(d, obs_yoy("xt", "fai", 2024, 6, 60, -3.25, "b.csv", 400)), 1);
    ck_assert(latest(s, 2024, 6).yoy == -3.25);
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 6)), 2);
    db_vintage vs[2];
    db_series_vintages(s, pp_period_make(2024, 6), vs, 2);
    ck_assert(vs[0].has_yoy && vs[0].yoy == 12.5);
    ck_assert(vs[1].has_yoy && vs[1].yoy == -3.25);
    /* dropping the yoy is a revision too */
    ck_assert_int_eq(add(d, test_obs("xt", "fai", 2024, 6, 60, 'A', "b.csv", 500)), 1);
    ck_assert(!latest(s, 2024, 6).has_yoy);
    /* before the first month (a shift) and years later (a new allocation) */
    ck_assert_int_eq(add(d, obs_yoy("xt", "fai", 2020, 1, 1, 7.5, "c.csv", 600)), 1);
    ck_assert_int_eq(add(d, test_obs("xt", "fai", 2027, 12, 2, 'A', "c.csv", 600)), 1);
    ck_assert(latest(s, 2020, 1).has_yoy && latest(s, 2020, 1).yoy == 7.5);
    ck_assert(!latest(s, 2027, 12).has_yoy);
    ck_assert(!latest(s, 2024, 5).has_yoy);
    ck_assert(!latest(s, 2024, 6).has_yoy);
    ck_assert_uint_eq(n_vintages(s, pp_period_make(2024, 6)), 3);
    db_series_vintages(s, pp_period_make(2024, 6), vs, 2);
    ck_assert(vs[0].yoy == 12.5 && vs[1].yoy == -3.25);
    int n = 0;
    for (int p = db_series_next(s, -1, &v); p >= 0; p = db_series_next(s, p, &v))
        n += v.has_yoy;
    ck_assert_int_eq(n, 1);
    /* a non-finite yoy is refused */
    pp_obs bad = obs_yoy("xt", "fai", 2024, 7, 1, NAN, "d.csv", 700);
    ck_assert_int_eq(db_add_obs(d, &bad), -1);
    /* a series that starts with a yoy, in a wide series */
    ck_assert_int_eq(add(d, obs_yoy("xt", "fdi", 2024, 3, 0.30000000000000004, 1, "e.csv", 800)), 1);
    ck_assert(latest(db_series_get(d, "xt", "fdi"), 2024, 3).yoy == 1);
    db_free(d);
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = check_tcase(s, "figures", NULL, NULL, 0);
    tcase_add_test(tc, test_vintages_and_value_in_force);
    tcase_add_loop_test(tc, test_readd, 0, sizeof readd_cases / sizeof readd_cases[0]);
    tcase_add_test(tc, test_negative_zero_repeat);
    tcase_add_test(tc, test_revision_back_to_old_value);
    tcase_add_test(tc, test_many_vintages);
    tcase_add_test(tc, test_updated_at_is_newest);
    tcase_add_test(tc, test_sources_interned);
    tcase_add_test(tc, test_invalid_refused);

    tc = check_tcase(s, "months", NULL, NULL, 0);
    tcase_add_test(tc, test_dense_with_gap);
    tcase_add_test(tc, test_before_first);
    tcase_add_test(tc, test_revisions_interleaved);
    tcase_add_test(tc, test_idempotent_file);
    tcase_add_test(tc, test_deliveries_interned);
    tcase_add_test(tc, test_accessors_without_figures);
    tcase_add_test(tc, test_period_range);
    tcase_add_test(tc, test_period_before_1980);

    tc = check_tcase(s, "values", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_value_round_trip, 0, sizeof value_cases / sizeof value_cases[0]);
    tcase_add_test(tc, test_decimals_stay_narrow);
    tcase_add_test(tc, test_widen_midway);
    tcase_add_test(tc, test_widen_random);
    tcase_add_test(tc, test_widen_target_only);
    tcase_add_test(tc, test_yoy);

    tc = check_tcase(s, "order", NULL, NULL, 60);
    tcase_add_test(tc, test_series_sorted);
    tcase_add_test(tc, test_100k_out_of_order);
    tcase_add_test(tc, test_concurrent_readers);

    tc = check_tcase(s, "targets", NULL, NULL, 0);
    tcase_add_test(tc, test_targets_per_year);
    tcase_add_test(tc, test_many_targets);
    tcase_add_test(tc, test_generation);
    return s;
}

CHECK_MAIN(db_suite)
