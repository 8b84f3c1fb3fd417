/*
 * check_fault.c — allocation failures on the writer path (SQLite's faultsim
 * idea): the commit (ingest_records: journal, db, RRD files, alert decisions),
 * the journal's append and the alert engine's evaluation, with each of their
 * allocations failing in turn.
 *
 * The suite is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=strdup,--wrap=strndup (Makefile): every allocation made by the code
 * of libparkpulse.a and of this file goes through fault_alloc_fails(), which,
 * when armed with n, fails the n-th allocation after arming, once. The loop
 * arms n = 1, 2, … until a commit makes fewer than n allocations.
 *
 * What must hold after each failure: an INGEST_OK commit has every figure in
 * the db and in the journal; a failed one acknowledged nothing, and the db
 * never holds a figure the journal does not (when the journal did not grow,
 * the db shows none of the batch); sending the batch again without a fault
 * is INGEST_OK with every figure in the db. At the end the journal, replayed
 * into a new db, gives the live db's figures. Run under ASan, no allocation
 * that a failure left behind leaks.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "db.h"
#include "ingest.h"
#include "journal.h"
#include "log.h"
#include "test_app.h"
#include "check_main.h"

#define NOW_2021_09_15 1631671200
#define FAULT_MAX_ALLOCS 5000

/* ---- the failing allocator ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static atomic_long fault_target; /* 0: not armed */
static atomic_long fault_count;
static atomic_bool fault_fired;

static bool fault_alloc_fails(void)
{
    long target = atomic_load(&fault_target);
    if (target == 0)
        return false;
    if (atomic_fetch_add(&fault_count, 1) + 1 != target)
        return false;
    atomic_store(&fault_fired, true);
    errno = ENOMEM;
    return true;
}

void *__wrap_malloc(size_t n) { return fault_alloc_fails() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fault_alloc_fails() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fault_alloc_fails() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fault_alloc_fails() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fault_alloc_fails() ? NULL : __real_strndup(s, n); }

/* Fails the n-th allocation from now on (once). */
static void fault_arm(long n)
{
    atomic_store(&fault_count, 0);
    atomic_store(&fault_fired, false);
    atomic_store(&fault_target, n);
}

/* Disarms; true when the armed allocation failed. */
static bool fault_disarm(void)
{
    atomic_store(&fault_target, 0);
    return atomic_load(&fault_fired);
}

/* ---- the fixture: a daemon with an alert engine and targets ---- */

static char test_dir[PATH_MAX];
static pp_app app;

static const char *const SERIES[][2] = { { "pa", "fixed_asset_investment" },
                                         { "pb", "fixed_asset_investment" },
                                         { "pa", "fiscal_revenue" } };
#define N_SERIES (sizeof SERIES / sizeof SERIES[0])

static void setup(void)
{
    log_set_level(getenv("PP_TEST_VERBOSE") ? LOG_LVL_DEBUG : 0);
    test_app_open_with(&app, test_dir, "check_fault", NOW_2021_09_15, true);
    atomic_store(&app.ready, true);
    pp_target tg[N_SERIES];
    memset(tg, 0, sizeof tg);
    for (size_t i = 0; i < N_SERIES; i++) {
        snprintf(tg[i].park, sizeof tg[i].park, "%s", SERIES[i][0]);
        snprintf(tg[i].indicator, sizeof tg[i].indicator, "%s", SERIES[i][1]);
        snprintf(tg[i].source, sizeof tg[i].source, "targets");
        tg[i].year = 2021;
        tg[i].value = 300;
    }
    ingest_result res;
    ck_assert_int_eq(ingest_records(&app, NULL, 0, tg, N_SERIES, &res), INGEST_OK);
    free(res.report);
}

static void teardown(void) { test_app_close(&app, test_dir); }

/* Batch k: every series gets a new August figure, behind its pace on odd k
 * and ahead on even k, from a new source. */
static void batch(long k, pp_obs obs[N_SERIES])
{
    memset(obs, 0, N_SERIES * sizeof *obs);
    for (size_t i = 0; i < N_SERIES; i++) {
        snprintf(obs[i].park, sizeof obs[i].park, "%s", SERIES[i][0]);
        snprintf(obs[i].indicator, sizeof obs[i].indicator, "%s", SERIES[i][1]);
        snprintf(obs[i].source, sizeof obs[i].source, "batch-%ld", k);
        obs[i].period = pp_period_make(2021, 8);
        obs[i].value = (k % 2 ? 1.0 : 299.0) + (double)k / 1024.0;
        obs[i].status = 'A';
    }
}

/* How many of the batch's figures the db shows as the latest. */
static size_t in_db(const pp_obs obs[N_SERIES])
{
    size_t n = 0;
    db_rdlock(app.db);
    for (size_t i = 0; i < N_SERIES; i++) {
        db_vintage v;
        const db_series *s = db_series_get(app.db, obs[i].park, obs[i].indicator);
        n += s && db_series_latest(s, obs[i].period, &v) && v.value == obs[i].value;
    }
    db_unlock(app.db);
    return n;
}

static int replay_into(const journal_record *r, void *ud)
{
    if (r->type == JREC_OBS)
        return db_add_obs(ud, &r->obs) < 0 ? -ENOMEM : 0;
    if (r->type == JREC_TARGET)
        return db_add_target(ud, &r->target) < 0 ? -ENOMEM : 0;
    return 0;
}

START_TEST(test_commit_allocation_failures)
{
    pp_obs obs[N_SERIES];
    long n = 1;
    size_t failed = 0;
    for (; n < FAULT_MAX_ALLOCS; n++) {
        batch(n, obs);
        uint64_t records = journal_count(app.journal);
        ingest_result res;
        fault_arm(n);
        ingest_status st = ingest_records(&app, obs, N_SERIES, NULL, 0, &res);
        bool fired = fault_disarm();
        free(res.report);
        if (!fired) {
            ck_assert_int_eq(st, INGEST_OK);
            ck_assert_uint_eq(in_db(obs), N_SERIES);
            break;
        }
        if (st == INGEST_OK) {
            ck_assert_msg(in_db(obs) == N_SERIES, "allocation %ld: OK but %zu of %zu in the db", n,
                          in_db(obs), N_SERIES);
            ck_assert_uint_ge(journal_count(app.journal), records + N_SERIES);
            continue;
        }
        failed++;
        ck_assert_int_eq(st, INGEST_ERROR);
        if (journal_count(app.journal) == records)
            ck_assert_msg(in_db(obs) == 0, "allocation %ld: not journaled, yet %zu in the db", n,
                          in_db(obs));
        /* the sender's retry */
        batch(n, obs);
        ck_assert_int_eq(ingest_records(&app, obs, N_SERIES, NULL, 0, &res), INGEST_OK);
        free(res.report);
        ck_assert_msg(in_db(obs) == N_SERIES, "allocation %ld: the retry left %zu of %zu", n,
                      in_db(obs), N_SERIES);
    }
    ck_assert_msg(n < FAULT_MAX_ALLOCS, "a commit made more than %d allocations", FAULT_MAX_ALLOCS);
    ck_assert_msg(n > 10 && failed > 0, "only %ld allocations, %zu failed commits", n, failed);

    /* the journal, replayed, gives the db's figures */
    db *d = db_new();
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(journal_replay(app.journal, replay_into, d), 0);
    db_rdlock(app.db);
    for (size_t i = 0; i < N_SERIES; i++) {
        db_vintage a, b;
        ck_assert(db_series_latest(db_series_get(app.db, SERIES[i][0], SERIES[i][1]),
                                   pp_period_make(2021, 8), &a));
        ck_assert(db_series_latest(db_series_get(d, SERIES[i][0], SERIES[i][1]),
                                   pp_period_make(2021, 8), &b));
        ck_assert(a.value == b.value);
    }
    db_unlock(app.db);
    db_free(d);
}
END_TEST

/* The journal's append alone: a failed append returns an error and leaves
 * the journal as it was (its records and its length). */
START_TEST(test_journal_append_allocation_failures)
{
    pp_obs obs[N_SERIES];
    long n = 1;
    for (; n < FAULT_MAX_ALLOCS; n++) {
        batch(n, obs);
        uint64_t records = journal_count(app.journal);
        fault_arm(n);
        int rc = journal_append_batch(app.journal, obs, N_SERIES, NULL, 0, NULL, 0);
        bool fired = fault_disarm();
        if (rc == 0) {
            ck_assert_uint_eq(journal_count(app.journal), records + N_SERIES);
            if (!fired)
                break;
            continue;
        }
        ck_assert_int_lt(rc, 0);
        ck_assert_msg(fired, "append %ld failed with no fault: %d", n, rc);
        ck_assert_uint_eq(journal_count(app.journal), records);
    }
    ck_assert_msg(n > 1 && n < FAULT_MAX_ALLOCS, "%ld allocations in an append", n);
}
END_TEST

/* The active alerts' JSON (malloc'd). */
static char *active_json(void)
{
    pp_view v;
    jbuf b;
    jbuf_init(&b);
    view_begin(&app, &v);
    alert_active_json(app.alerts, &b);
    view_end(&v);
    char *json = jbuf_take(&b, NULL);
    ck_assert_ptr_nonnull(json);
    return json;
}

/* Figures behind their pace go in without the alert engine; then one
 * evaluation of every series with the n-th allocation failing (none when n
 * is 0), and a clean one. Returns whether the fault fired. */
static bool evaluate_with_fault(long n)
{
    pp_obs obs[N_SERIES];
    batch(1, obs);
    ingest_result res;
    alert_engine *alerts = app.alerts;
    app.alerts = NULL;
    ck_assert_int_eq(ingest_records(&app, obs, N_SERIES, NULL, 0, &res), INGEST_OK);
    free(res.report);
    app.alerts = alerts;
    pthread_mutex_lock(&app.ingest_lock);
    fault_arm(n);
    alert_evaluate(alerts, NULL, NULL, 0, true);
    bool fired = fault_disarm();
    uint64_t seq = alert_seq(alerts);
    int rc = alert_evaluate(alerts, NULL, NULL, 0, true);
    pthread_mutex_unlock(&app.ingest_lock);
    ck_assert_int_ge(rc, 0);
    ck_assert_uint_ge(alert_seq(alerts), seq);
    return fired;
}

/* The alert decisions alone, each time on a fresh daemon: a failed
 * evaluation keeps its series for the next one, and takes no seq; after a
 * clean one the active alerts are, byte for byte, those of an evaluation
 * without a fault. */
START_TEST(test_alert_allocation_failures)
{
    evaluate_with_fault(0);
    char *want = active_json();
    ck_assert_ptr_nonnull(strstr(want, "\"seq\":"));
    long n = 1;
    for (; n < FAULT_MAX_ALLOCS; n++) {
        teardown();
        setup();
        bool fired = evaluate_with_fault(n);
        char *got = active_json();
        ck_assert_msg(strcmp(got, want) == 0, "allocation %ld:\n%s\nwanted\n%s", n, got, want);
        free(got);
        if (!fired)
            break;
    }
    free(want);
    ck_assert_msg(n > 1 && n < FAULT_MAX_ALLOCS, "%ld allocations in an evaluation", n);
}
END_TEST

/* Reading an input that runs out of memory is the daemon's failure, not the
 * sender's: INGEST_ERROR (sent again later), never INGEST_REFUSED (which moves
 * a good file to failed/ and tells its sender the rows are bad). */
START_TEST(test_parse_allocation_failures)
{
    long n = 1;
    size_t failed = 0;
    for (; n < FAULT_MAX_ALLOCS; n++) {
        char csv[512];
        snprintf(csv, sizeof csv, "园区,指标,期间,数值\n"
                 "pa,fixed_asset_investment,2021-08,%ld.5\n"
                 "pb,fixed_asset_investment,2021-08,%ld.25\n"
                 "pa,fiscal_revenue,2021-07,%ld\n", n, n, n);
        ingest_result res;
        fault_arm(n);
        ingest_status st = ingest_csv(&app, "oom.csv", csv, strlen(csv), &res);
        bool fired = fault_disarm();
        ck_assert_msg(st != INGEST_REFUSED, "allocation %ld failed: answered REFUSED: %s", n,
                      res.report ? res.report : "(no report)");
        free(res.report);
        free(res.warnings);
        if (!fired) {
            ck_assert_int_eq(st, INGEST_OK);
            break;
        }
        if (st == INGEST_ERROR)
            failed++;
    }
    ck_assert_msg(n < FAULT_MAX_ALLOCS, "an ingest made more than %d allocations", FAULT_MAX_ALLOCS);
    ck_assert_msg(failed > 0, "no allocation failure gave INGEST_ERROR");
}
END_TEST

static Suite *fault_suite(void)
{
    Suite *s = suite_create("fault");
    TCase *tc = check_tcase(s, "allocation", setup, teardown, 120);
    tcase_add_test(tc, test_commit_allocation_failures);
    tcase_add_test(tc, test_journal_append_allocation_failures);
    tcase_add_test(tc, test_alert_allocation_failures);
    tcase_add_test(tc, test_parse_allocation_failures);
    return s;
}

CHECK_MAIN(fault_suite)
