/*
 * check_ingest.c — Check suite for daemon/ingest.c's batches (ingest_csv_batch).
 *
 * Each test builds a small daemon state in a fresh mkdtemp() directory: a
 * configuration with two parks and the standard indicator catalogue
 * (config/indicators.conf), a journal, a db and an RRD directory — no HTTP,
 * bus or alerts. It feeds CSV inputs through ingest_csv_batch and reads the
 * outcome back the way the daemon would after a restart: by replaying the
 * journal.
 */
#include "ingest.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#include "test_app.h"

static char test_dir[PATH_MAX];
static pp_app app;

/* ---- fixture ------------------------------------------------------------ */

static void setup(void)
{
    test_app_open(&app, test_dir, "check_ingest", 1700000000);
}

static void teardown(void) { test_app_close(&app, test_dir); }

/* ---- helpers ------------------------------------------------------------ */

static ingest_input input(const char *source, const char *data)
{
    ingest_input in = { .source = source, .data = data, .len = strlen(data) };
    return in;
}

/* What a replay of the journal finds: every observation, in order. */
typedef struct replayed {
    size_t n_obs;
    pp_obs obs[64];
} replayed;

static int replay_cb(const journal_record *r, void *ud)
{
    replayed *rp = ud;
    if (r->type == JREC_OBS && rp->n_obs < sizeof rp->obs / sizeof rp->obs[0])
        rp->obs[rp->n_obs++] = r->obs;
    return 0;
}

/* The value of (park, indicator, period) in force after a replay: the last one. */
static double replayed_value(const replayed *rp, const char *park, const char *ind, int period)
{
    double v = NAN;
    for (size_t i = 0; i < rp->n_obs; i++)
        if (strcmp(rp->obs[i].park, park) == 0 && strcmp(rp->obs[i].indicator, ind) == 0 &&
            rp->obs[i].period == period)
            v = rp->obs[i].value;
    return v;
}

static bool rrd_exists(const char *park, const char *ind)
{
    char path[PATH_MAX];
    struct stat st;
    ck_assert_int_eq(store_path(app.rrd_dir, park, ind, path, sizeof path), 0);
    return stat(path, &st) == 0;
}

/* ---- tests -------------------------------------------------------------- */

/* Good inputs, one refused, and inputs that touch what an earlier one of the
 * same batch touched: each gets what ingest_csv would have given it, in order. */
START_TEST(test_batch_mixed)
{
    /* already in force before the batch: February's 20 */
    ingest_result r;
    const char *pre = "park,indicator,period,value\npa,tax_revenue,2024-02,20\n";
    ck_assert_int_eq(ingest_csv(&app, "pre.csv", pre, strlen(pre), &r), INGEST_OK);
    ck_assert_uint_eq(r.n_obs, 1);

    const ingest_input in[] = {
        input("a.csv", "park,indicator,period,value\n"
                       "pa,tax_revenue,2024-01,10\npa,tax_revenue,2024-02,20\n"),
        input("bad.csv", "park,indicator,period,value\n"
                         "pz,tax_revenue,2024-01,1\n"),
        input("b.csv", "park,indicator,period,value\npb,tax_revenue,2024-01,5\n"),
        /* a revision of February, then back to the 20 in force before the
         * batch: the second must not be taken for "unchanged" */
        input("a2.csv", "park,indicator,period,value\npa,tax_revenue,2024-02,25\n"),
        input("a3.csv", "park,indicator,period,value\npa,tax_revenue,2024-02,20\n"),
        /* b.csv again: nothing new */
        input("b-again.csv", "park,indicator,period,value\npb,tax_revenue,2024-01,5\n"),
    };
    enum { N = sizeof in / sizeof in[0] };
    ingest_status st[N];
    ingest_result res[N];

    ck_assert_int_eq(ingest_csv_batch(&app, N, in, st, res), INGEST_REFUSED);

    static const struct {
        ingest_status st;
        size_t n_obs, n_unchanged;
    } want[N] = {
        { INGEST_OK, 1, 1 },  { INGEST_REFUSED, 0, 0 }, { INGEST_OK, 1, 0 },
        { INGEST_OK, 1, 0 },  { INGEST_OK, 1, 0 },      { INGEST_OK, 0, 1 },
    };
    for (size_t i = 0; i < N; i++) {
        ck_assert_msg(st[i] == want[i].st, "%s: status %d", in[i].source, st[i]);
        ck_assert_msg(res[i].n_obs == want[i].n_obs && res[i].n_unchanged == want[i].n_unchanged,
                      "%s: %zu new, %zu unchanged", in[i].source, res[i].n_obs,
                      res[i].n_unchanged);
        ck_assert_uint_eq(res[i].n_targets, 0);
        if (st[i] == INGEST_OK)
            ck_assert_ptr_null(res[i].report);
    }
    /* the refused one is reported, row by row, and nothing of it is taken */
    ck_assert_ptr_nonnull(res[1].report);
    ck_assert_msg(strncmp(res[1].report, "bad.csv:2: ", 11) == 0, "report: %s", res[1].report);
    ck_assert_ptr_nonnull(strstr(res[1].report, "pz"));
    for (size_t i = 0; i < N; i++)
        free(res[i].report);

    ck_assert_uint_eq(app.n_files_ok, 6);
    ck_assert_uint_eq(app.n_files_refused, 1);
    ck_assert_uint_eq(app.n_obs_accepted, 5);
    ck_assert_uint_eq(app.n_obs_unchanged, 2);

    /* the good ones are in the journal, as the daemon replays it */
    replayed rp = { 0 };
    ck_assert_uint_eq(journal_count(app.journal), 5);
    ck_assert_int_eq(journal_replay(app.journal, replay_cb, &rp), 0);
    ck_assert_uint_eq(rp.n_obs, 5);
    for (size_t i = 0; i < rp.n_obs; i++) {
        ck_assert_str_ne(rp.obs[i].park, "pz");
        ck_assert_int_eq(rp.obs[i].received_at, 1700000000);
    }
    ck_assert_str_eq(rp.obs[0].source, "pre.csv");
    ck_assert_str_eq(rp.obs[1].source, "a.csv");
    ck_assert(replayed_value(&rp, "pa", "tax_revenue", pp_period_make(2024, 1)) == 10);
    ck_assert(replayed_value(&rp, "pa", "tax_revenue", pp_period_make(2024, 2)) == 20);
    ck_assert(replayed_value(&rp, "pb", "tax_revenue", pp_period_make(2024, 1)) == 5);

    /* the db agrees: February's 20 is in force */
    const char *again = "park,indicator,period,value\npa,tax_revenue,2024-02,20\n";
    ck_assert_int_eq(ingest_csv(&app, "check.csv", again, strlen(again), &r), INGEST_OK);
    ck_assert_uint_eq(r.n_unchanged, 1);
    ck_assert_uint_eq(r.n_obs, 0);
    free(r.report);

    ck_assert(rrd_exists("pa", "tax_revenue"));
    ck_assert(rrd_exists("pb", "tax_revenue"));
}
END_TEST

/* Nothing to do, and a batch of refusals only. */
START_TEST(test_batch_edges)
{
    ingest_status st[2];
    ingest_result res[2];
    ck_assert_int_eq(ingest_csv_batch(&app, 0, NULL, NULL, NULL), INGEST_OK);

    const ingest_input in[] = {
        input("empty.csv", ""),
        input("bad-period.csv", "park,indicator,period,value\npa,tax_revenue,2024-13,1\n"),
    };
    ck_assert_int_eq(ingest_csv_batch(&app, 2, in, st, res), INGEST_REFUSED);
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(st[i], INGEST_REFUSED);
        ck_assert_ptr_nonnull(res[i].report);
        ck_assert_msg(strncmp(res[i].report, in[i].source, strlen(in[i].source)) == 0, "%s",
                      res[i].report);
        free(res[i].report);
    }
    ck_assert_uint_eq(journal_count(app.journal), 0);
}
END_TEST

/* More figures than one commit holds (INGEST_BATCH_RECORDS): several commits,
 * every input taken. */
START_TEST(test_batch_over_bound)
{
    enum { FILES = 3, MONTHS = 1500 }; /* 4500 figures > 4096 */
    static const char *inds[FILES] = { "tax_revenue", "fiscal_revenue", "fdi_actual" };
    char *text[FILES];
    ingest_input in[FILES];
    ingest_status st[FILES];
    ingest_result res[FILES];
    for (int k = 0; k < FILES; k++) {
        size_t cap = 64 + (size_t)MONTHS * 48, used = 0;
        text[k] = malloc(cap);
        ck_assert_ptr_nonnull(text[k]);
        used += (size_t)snprintf(text[k], cap, "park,indicator,period,value\n");
        for (int i = 0; i < MONTHS; i++) {
            int p = pp_period_make(1980, 1) + i;
            used += (size_t)snprintf(text[k] + used, cap - used, "pa,%s,%d-%02d,%d.5\n", inds[k],
                                     pp_period_year(p), pp_period_month(p), i);
        }
        in[k] = (ingest_input){ .source = inds[k], .data = text[k], .len = used };
    }
    ck_assert_int_eq(ingest_csv_batch(&app, FILES, in, st, res), INGEST_OK);
    for (int k = 0; k < FILES; k++) {
        ck_assert_int_eq(st[k], INGEST_OK);
        ck_assert_uint_eq(res[k].n_obs, MONTHS);
        ck_assert_ptr_null(res[k].report);
        ck_assert(rrd_exists("pa", inds[k]));
        free(text[k]);
    }
    ck_assert_uint_eq(journal_count(app.journal), FILES * MONTHS);
}
END_TEST

static Suite *ingest_suite(void)
{
    Suite *s = suite_create("ingest");
    TCase *tc = tcase_create("batch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_batch_mixed);
    tcase_add_test(tc, test_batch_edges);
    tcase_add_test(tc, test_batch_over_bound);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ingest_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? 1 : 0;
}
