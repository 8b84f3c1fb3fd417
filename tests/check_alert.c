/*
 * check_alert.c — Check suite for daemon/alert.c, the alert state machine of
 * README, Alerts.
 *
 * Two kinds of tests. The replay tests feed journal event payloads straight to
 * alert_replay_event (no configuration, db or journal needed) and read the
 * history back through the query functions: the ring of ALERT_HISTORY, the
 * active snapshot, ?since= and the SSE cursor. The evaluation tests build a
 * small daemon state in a fresh mkdtemp() directory — a configuration with two
 * parks and the standard indicator catalogue, a journal and a db, no bus —
 * raise alerts with alert_evaluate, then "restart": a fresh engine replays the
 * journal and must answer exactly as the old one did and raise nothing again.
 */
#include "alert.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOW_2024_09_15 1726365600 /* 2024-09-15T10:00:00+08:00: August is due */
#define NOW_2024_10_15 1728957600 /* 2024-10-15T10:00:00+08:00: September is due */

#include "test_app.h"
#include "check_main.h"
#include "test_obs.h"

static char test_dir[PATH_MAX];
static pp_app app;

/* ---- helpers ------------------------------------------------------------ */

/* A journal payload for alert seq of park/ind/period/status, with a body that
 * is valid JSON and names its seq (what the queries hand back verbatim). */
static void alert_payload(char *buf, size_t len, unsigned seq, const char *park, const char *ind,
                          const char *period, const char *status)
{
    snprintf(buf, len, "alert %u %s %s %s %s {\"seq\":%u,\"id\":\"%s/%s/%s/%s\"}", seq, park, ind,
             period, status, seq, park, ind, period, status);
}

static void replay_alert(alert_engine *e, unsigned seq, const char *park, const char *ind,
                         const char *period, const char *status)
{
    char p[512];
    alert_payload(p, sizeof p, seq, park, ind, period, status);
    ck_assert_int_eq(alert_replay_event(e, p), 0);
}

/* The output of one of the query functions, as a malloc'd string. */
static char *query_active(alert_engine *e)
{
    jbuf b;
    jbuf_init(&b);
    alert_active_json(e, &b);
    ck_assert(!b.failed);
    return jbuf_take(&b, NULL);
}

static char *query_since(alert_engine *e, uint64_t since)
{
    jbuf b;
    jbuf_init(&b);
    alert_since_json(e, since, &b);
    ck_assert(!b.failed);
    return jbuf_take(&b, NULL);
}

/* got (a query's answer, freed here) is want. */
static void expect_json(char *got, const char *want)
{
    ck_assert_str_eq(got, want);
    free(got);
}

/* Occurrences of needle in hay, in one pass (strstr from each match again is
 * quadratic under ASan, whose strstr measures the whole rest each time). */
static size_t count(const char *hay, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (const char *p = hay; *p; p++)
        n += *p == *needle && strncmp(p, needle, nl) == 0;
    return n;
}

/* The number of alerts in a query's answer. */
static size_t n_alerts(const char *answer)
{
    const char *list = strstr(answer, "\"alerts\":[");
    ck_assert_ptr_nonnull(list);
    return count(list, "{\"seq\":");
}

static int listener_calls;
static void listener(void *ud)
{
    ck_assert_ptr_eq(ud, &listener_calls);
    listener_calls++;
}

/* ---- replay tests --------------------------------------------------------- */

START_TEST(test_replay_queries)
{
    alert_engine *e = alert_new(NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(alert_seq(e), 0);
    expect_json(query_active(e), "{\"seq\":0,\"alerts\":[]}");
    expect_json(query_since(e, 0), "{\"seq\":0,\"alerts\":[],\"complete\":true}");
    uint64_t seq = 99;
    ck_assert_ptr_null(alert_next(e, 0, &seq));

    replay_alert(e, 1, "pa", "tax_revenue", "2024-07", "warning");
    replay_alert(e, 2, "pb", "tax_revenue", "2024-07", "critical");
    ck_assert_int_eq(alert_replay_event(e, "state pb fiscal_revenue 2024-07 ok"), 0);
    replay_alert(e, 3, "pa", "tax_revenue", "2024-08", "ok"); /* pa recovers */
    replay_alert(e, 4, "pb", "fiscal_revenue", "2024-08", "stale");
    /* not an alert event, and malformed ones: ignored, nothing changes */
    ck_assert_int_eq(alert_replay_event(e, "seq 12"), -1);
    ck_assert_int_eq(alert_replay_event(e, "alert 9 pa tax_revenue 2024-08 warning no-json"), -1);
    ck_assert_int_eq(alert_replay_event(e, "alert 9 pa tax_revenue 2024-13 warning {}"), -1);
    ck_assert_int_eq(alert_replay_event(e, "alert 9 pa tax_revenue 2024-08 bad {}"), -1);
    ck_assert_int_eq(alert_replay_event(e, "alert 9 P/A tax_revenue 2024-08 ok {}"), -1);
    ck_assert_int_eq(alert_replay_event(e, "state pa tax_revenue 2024-08"), -1);

    ck_assert_uint_eq(alert_seq(e), 4);
    /* active: the series whose last alert is not ok/no_target, by seq */
    expect_json(query_active(e), "{\"seq\":4,\"alerts\":["
                "{\"seq\":2,\"id\":\"pb/tax_revenue/2024-07/critical\"},"
                "{\"seq\":4,\"id\":\"pb/fiscal_revenue/2024-08/stale\"}]}");
    expect_json(query_since(e, 2), "{\"seq\":4,\"alerts\":["
                "{\"seq\":3,\"id\":\"pa/tax_revenue/2024-08/ok\"},"
                "{\"seq\":4,\"id\":\"pb/fiscal_revenue/2024-08/stale\"}],\"complete\":true}");
    expect_json(query_since(e, 4), "{\"seq\":4,\"alerts\":[],\"complete\":true}");
    char *s = query_since(e, 0);
    ck_assert_uint_eq(n_alerts(s), 4);
    ck_assert_ptr_nonnull(strstr(s, "\"complete\":true}"));
    free(s);

    char *j = alert_next(e, 1, &seq);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(seq, 2);
    ck_assert_str_eq(j, "{\"seq\":2,\"id\":\"pb/tax_revenue/2024-07/critical\"}");
    free(j);
    ck_assert_ptr_null(alert_next(e, 4, &seq));
    alert_free(e);
}
END_TEST

/* More alerts than the ring holds: ?since= reports what was forgotten, and a
 * series whose last alert already left the ring is still in the snapshot. */
START_TEST(test_replay_ring_wraps)
{
    alert_engine *e = alert_new(NULL);
    ck_assert_ptr_nonnull(e);
    const unsigned extra = 100, total = ALERT_HISTORY + extra;
    replay_alert(e, 1, "pa", "tax_revenue", "2024-07", "critical"); /* stays active */
    char park[32], period[8];
    for (unsigned seq = 2; seq <= total; seq++) {
        /* each park raises once per month, status alternating warning/ok */
        unsigned p = seq % 1000, m = seq / 1000 % 12 + 1, y = 2000 + seq / 12000;
        snprintf(park, sizeof park, "p%u", p);
        snprintf(period, sizeof period, "%04u-%02u", y, m);
        replay_alert(e, seq, park, "fiscal_revenue", period, seq / 1000 % 2 ? "ok" : "warning");
    }
    ck_assert_uint_eq(alert_seq(e), total);

    char *s = query_since(e, 0);
    ck_assert_uint_eq(n_alerts(s), ALERT_HISTORY);
    ck_assert_ptr_nonnull(strstr(s, "\"alerts\":[{\"seq\":101,"));
    ck_assert_ptr_nonnull(strstr(s, "\"complete\":false}"));
    free(s);
    s = query_since(e, extra - 1);
    ck_assert_ptr_nonnull(strstr(s, "\"complete\":false}"));
    free(s);
    s = query_since(e, extra);
    ck_assert_uint_eq(n_alerts(s), ALERT_HISTORY);
    ck_assert_ptr_nonnull(strstr(s, "\"complete\":true}"));
    free(s);
    s = query_since(e, total - 2);
    ck_assert_uint_eq(n_alerts(s), 2);
    free(s);

    uint64_t seq = 0;
    char *j = alert_next(e, 0, &seq); /* the oldest still held */
    ck_assert_uint_eq(seq, extra + 1);
    free(j);

    s = query_active(e);
    ck_assert_ptr_nonnull(strstr(s, "\"alerts\":[{\"seq\":1,\"id\":\"pa/tax_revenue/2024-07/critical\"}"));
    /* 1000 parks, each with its last alert: warning (active) or ok */
    size_t n_active = n_alerts(s);
    ck_assert_uint_gt(n_active, 1);
    ck_assert_uint_eq(count(s, "/warning\"}") + 1, n_active);
    ck_assert_uint_eq(count(s, "/ok\"}"), 0);
    free(s);
    alert_free(e);
}
END_TEST

/* ---- evaluation fixture --------------------------------------------------- */

static void setup(void)
{
    test_app_open(&app, test_dir, "check_alert", NOW_2024_09_15);
    listener_calls = 0;
}

static void teardown(void) { test_app_close(&app, test_dir); }

/* The same, with every evaluation of all series judged on several threads
 * (alert_judge_parallel_min): the decisions must be the same. */
static void setup_parallel(void)
{
    alert_judge_parallel_min = 1;
    setup();
}

static void teardown_parallel(void)
{
    teardown();
    alert_judge_parallel_min = 4096;
}

static void set_target(const char *park, const char *ind, int year, double value)
{
    pp_target t = test_target(park, ind, year, value, "", app.fixed_now);
    db_wrlock(app.db);
    ck_assert_int_ge(db_add_target(app.db, &t), 0);
    db_unlock(app.db);
}

static void set_figure(const char *park, const char *ind, int year, int month, double value)
{
    pp_obs o = test_obs(park, ind, year, month, value, 'A', "", app.fixed_now);
    db_wrlock(app.db);
    ck_assert_int_ge(db_add_obs(app.db, &o), 0);
    db_unlock(app.db);
}

/* park's ind: a target of 100 for 2024 and value for August. */
static void set_august(const char *park, const char *ind, double value)
{
    set_target(park, ind, 2024, 100);
    set_figure(park, ind, 2024, 8, value);
}

static int evaluate(alert_engine *e, const char *park, const char *ind)
{
    pthread_mutex_lock(&app.ingest_lock);
    int n = alert_evaluate(e, &park, &ind, 1, false);
    pthread_mutex_unlock(&app.ingest_lock);
    return n;
}

static int evaluate_all(alert_engine *e)
{
    pthread_mutex_lock(&app.ingest_lock);
    int n = alert_evaluate(e, NULL, NULL, 0, true);
    pthread_mutex_unlock(&app.ingest_lock);
    return n;
}

static int replay_cb(const journal_record *r, void *ud)
{
    if (r->type == JREC_EVENT)
        alert_replay_event(ud, r->event);
    return 0;
}

static alert_engine *new_engine(void)
{
    alert_engine *e = alert_new(&app);
    ck_assert_ptr_nonnull(e);
    return e;
}

/* A fresh engine that replayed the journal: the daemon after a restart. */
static alert_engine *restart(void)
{
    alert_engine *e = new_engine();
    ck_assert_int_eq(journal_replay(app.journal, replay_cb, e), 0);
    return e;
}

/* restart() that must find seq as the last one and raise nothing again. */
static alert_engine *restart_at(uint64_t seq)
{
    alert_engine *e = restart();
    ck_assert_uint_eq(alert_seq(e), seq);
    ck_assert_int_eq(evaluate_all(e), 0);
    return e;
}

/* A restart answers as e did: its last seq, ?since=0 as since, and nothing
 * raised again. */
static void expect_restart_alike(alert_engine *e, const char *since)
{
    alert_engine *e2 = restart();
    ck_assert_uint_eq(alert_seq(e2), alert_seq(e));
    char *since2 = query_since(e2, 0);
    ck_assert_str_eq(since2, since);
    free(since2);
    ck_assert_int_eq(evaluate_all(e2), 0);
    alert_free(e2);
}

/* A new August figure of park's fixed_asset_investment raises one alert, seq. */
static void raise_one(alert_engine *e, const char *park, double value, uint64_t seq)
{
    set_figure(park, "fixed_asset_investment", 2024, 8, value);
    ck_assert_int_eq(evaluate(e, park, "fixed_asset_investment"), 1);
    ck_assert_uint_eq(alert_seq(e), seq);
}

static char *last_alert(alert_engine *e)
{
    uint64_t seq = 0;
    char *j = alert_next(e, alert_seq(e) - 1, &seq);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(seq, alert_seq(e));
    return j;
}

/* ---- damage and failure, from outside ------------------------------------ */

/* dir/journal/NAME into buf (PATH_MAX bytes). */
static const char *state_file(char *buf, const char *name)
{
    int n = snprintf(buf, PATH_MAX, "%s/journal/%s", test_dir, name);
    ck_assert(n > 0 && n < PATH_MAX);
    return buf;
}

/* A figure journaled (not applied to the db): a record after the alerts. */
static void journal_one_figure(const char *park, const char *ind, int year, int month, double value)
{
    pp_obs o = test_obs(park, ind, year, month, value, 'A', "check_alert", app.fixed_now);
    ck_assert_int_eq(journal_append_figures(app.journal, &o, 1, NULL, 0), 0);
}

/* Flips one bit in the middle of the line of path that contains needle, a
 * complete line with at least one more after it when not_last. */
static void damage_line(const char *path, const char *needle, bool not_last)
{
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    char *hit = strstr(buf, needle);
    ck_assert_msg(hit != NULL, "no line with '%s' in %s", needle, path);
    char *start = hit;
    while (start > buf && start[-1] != '\n')
        start--;
    char *end = strchr(hit, '\n');
    ck_assert_ptr_nonnull(end);
    if (not_last)
        ck_assert_msg(end[1] != '\0', "the line with '%s' is the last one", needle);
    long mid = (long)(start - buf) + (end - start) / 2;
    ck_assert_int_eq(fseek(f, mid, SEEK_SET), 0);
    ck_assert_int_ne(fputc(buf[mid] ^ 0x01, f), EOF);
    ck_assert_int_eq(fclose(f), 0);
}

/* The journal closed, damaged at the line with needle, and opened again, as a
 * daemon that restarts finds it. */
static void damage_journal_line(const char *needle)
{
    char path[PATH_MAX], dir[PATH_MAX + 16];
    journal_close(app.journal);
    app.journal = NULL;
    damage_line(state_file(path, "journal.log"), needle, true);
    snprintf(dir, sizeof dir, "%s/journal", test_dir);
    ck_assert_int_eq(journal_open(dir, &app.journal), 0);
}

/* A full disk for the journal: RLIMIT_FSIZE at the journal's size (SIGXFSZ
 * ignored: write() fails with EFBIG). Check records every assertion in a file
 * of its own, so no ck_assert may run until lift_file_limit(). */
static struct rlimit saved_fsize;

static void limit_file_size(void)
{
    char path[PATH_MAX];
    struct stat st;
    ck_assert_int_eq(stat(state_file(path, "journal.log"), &st), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = { (rlim_t)st.st_size, saved_fsize.rlim_max };
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
        abort();
}

static void lift_file_limit(void)
{
    if (setrlimit(RLIMIT_FSIZE, &saved_fsize) != 0)
        abort();
}

/* ---- evaluation tests ----------------------------------------------------- */

/* A series falls behind, is reminded next month, recovers, relapses to an
 * alert already raised (quiet), and a restart repeats nothing. */
START_TEST(test_evaluate_lifecycle)
{
    const char *fai = "fixed_asset_investment";
    alert_engine *e = new_engine();
    alert_set_listener(e, listener, &listener_calls);
    set_target("pa", fai, 2024, 100);

    /* 1-8月 50 of 100 against a pace of 66.67%: critical, first status */
    set_figure("pa", fai, 2024, 8, 50);
    ck_assert_int_eq(evaluate(e, "pa", fai), 1);
    ck_assert_int_eq(listener_calls, 1);
    ck_assert_uint_eq(alert_seq(e), 1);
    char *j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":1,\"id\":\"pa/fixed_asset_investment/2024-08/critical\""));
    ck_assert_ptr_nonnull(strstr(j, "\"park_name\":\"甲园区\""));
    ck_assert_ptr_nonnull(strstr(j, "\"previous\":\"none\""));
    free(j);
    ck_assert_int_eq(evaluate(e, "pa", fai), 0); /* nothing new */
    ck_assert_int_eq(listener_calls, 1);

    /* still critical in September: the monthly reminder */
    app.fixed_now = NOW_2024_10_15;
    set_figure("pa", fai, 2024, 9, 55);
    ck_assert_int_eq(evaluate(e, "pa", fai), 1);
    j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":2,\"id\":\"pa/fixed_asset_investment/2024-09/critical\""));
    ck_assert_ptr_nonnull(strstr(j, "\"previous\":\"critical\""));
    free(j);

    /* a revision brings September to 75 (pace 75%): ok, a recovery */
    set_figure("pa", fai, 2024, 9, 75);
    ck_assert_int_eq(evaluate(e, "pa", fai), 1);
    j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":3,\"id\":\"pa/fixed_asset_investment/2024-09/ok\""));
    free(j);
    char *active = query_active(e);
    ck_assert_str_eq(active, "{\"seq\":3,\"alerts\":[]}");
    free(active);

    /* and back to 55: every transition publishes (issue 13, point 1; this was
     * quiet, and the snapshot then showed the stale recovery): the same
     * (period, status) entered again gets the id's fifth segment /2 */
    set_figure("pa", fai, 2024, 9, 55);
    ck_assert_int_eq(evaluate(e, "pa", fai), 1);
    ck_assert_uint_eq(alert_seq(e), 4);
    ck_assert_int_eq(listener_calls, 4);
    j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":4,\"id\":\"pa/fixed_asset_investment/2024-09/critical/2\""));
    ck_assert_ptr_nonnull(strstr(j, "\"previous\":\"ok\""));
    free(j);
    /* the snapshot shows the current state, not the recovery */
    active = query_active(e);
    ck_assert_uint_eq(n_alerts(active), 1);
    ck_assert_ptr_nonnull(strstr(active, "[{\"seq\":4,\"id\":\"pa/fixed_asset_investment/2024-09/critical/2\""));
    free(active);
    /* three ids, all distinct */
    char *hist = query_since(e, 0);
    ck_assert_int_eq(count(hist, "\"pa/fixed_asset_investment/2024-09/critical\""), 1);
    ck_assert_int_eq(count(hist, "\"pa/fixed_asset_investment/2024-09/ok\""), 1);
    ck_assert_int_eq(count(hist, "\"pa/fixed_asset_investment/2024-09/critical/2\""), 1);
    free(hist);

    /* pb falls behind too, with pa unchanged: one alert, seq 5 */
    set_target("pb", fai, 2024, 100);
    set_figure("pb", fai, 2024, 9, 66); /* gap −9: warning */
    ck_assert_int_eq(evaluate_all(e), 1);
    j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":5,\"id\":\"pb/fixed_asset_investment/2024-09/warning\""));
    free(j);

    char *since = query_since(e, 0);
    active = query_active(e);
    ck_assert_uint_eq(n_alerts(since), 5);
    ck_assert_uint_eq(n_alerts(active), 2);

    /* after a restart: the same answers, and nothing is raised again */
    alert_engine *e2 = restart();
    ck_assert_uint_eq(alert_seq(e2), 5);
    char *since2 = query_since(e2, 0), *active2 = query_active(e2);
    ck_assert_str_eq(since2, since);
    ck_assert_str_eq(active2, active);
    free(since2);
    free(active2);
    ck_assert_int_eq(evaluate_all(e2), 0);
    ck_assert_int_eq(evaluate(e2, "pa", fai), 0);

    /* pa recovers again: 2024-09/ok was raised already, so this is ok/2 (the
     * occurrences survive the restart); then a new period's critical is an
     * alert, seq continuing after the restart */
    set_figure("pa", fai, 2024, 9, 75);
    ck_assert_int_eq(evaluate(e2, "pa", fai), 1);
    j = last_alert(e2);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":6,\"id\":\"pa/fixed_asset_investment/2024-09/ok/2\""));
    free(j);
    set_figure("pa", fai, 2024, 10, 60);
    app.fixed_now = NOW_2024_10_15 + 31 * 86400;
    ck_assert_int_eq(evaluate(e2, "pa", fai), 1);
    ck_assert_uint_eq(alert_seq(e2), 7);
    j = last_alert(e2);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":7,\"id\":\"pa/fixed_asset_investment/2024-10/critical\""));
    ck_assert_ptr_nonnull(strstr(j, "\"previous\":\"ok\""));
    free(j);

    free(since);
    free(active);
    alert_free(e2);
    alert_free(e);
}
END_TEST

/* Several series raising in one evaluation get consecutive seqs in catalogue
 * order, and the journal holds one event per decision. */
START_TEST(test_evaluate_batch)
{
    const char *inds[] = { "tax_revenue", "fiscal_revenue", "fixed_asset_investment" };
    const char *parks[] = { "pb", "pa", "pa" };
    alert_engine *e = new_engine();
    for (size_t i = 0; i < 3; i++) {
        set_target(parks[i], inds[i], 2024, 100);
        set_figure(parks[i], inds[i], 2024, 8, 40);
    }
    pthread_mutex_lock(&app.ingest_lock);
    ck_assert_int_eq(alert_evaluate(e, parks, inds, 3, false), 3);
    pthread_mutex_unlock(&app.ingest_lock);
    char *since = query_since(e, 0);
    ck_assert_ptr_nonnull(strstr(since, "[{\"seq\":1,\"id\":\"pb/tax_revenue/2024-08/critical\""));
    ck_assert_ptr_nonnull(strstr(since, "{\"seq\":2,\"id\":\"pa/fiscal_revenue/2024-08/critical\""));
    ck_assert_ptr_nonnull(strstr(since, "{\"seq\":3,\"id\":\"pa/fixed_asset_investment/2024-08/critical\""));
    /* unknown series are skipped */
    const char *bad_p = "pz", *bad_i = "tax_revenue";
    pthread_mutex_lock(&app.ingest_lock);
    ck_assert_int_eq(alert_evaluate(e, &bad_p, &bad_i, 1, false), 0);
    pthread_mutex_unlock(&app.ingest_lock);

    expect_restart_alike(e, since);
    free(since);
    alert_free(e);
}
END_TEST

/* An engine that replayed many series (its tables grown several times) still
 * knows every alert id it raised: a relapse to one of them stays quiet. */
START_TEST(test_evaluate_after_big_replay)
{
    const char *fai = "fixed_asset_investment";
    const char *inds[] = { "tax_revenue", "fiscal_revenue", "trade_total", "fdi_actual" };
    alert_engine *e = new_engine();
    char park[32];
    unsigned seq = 0;
    for (unsigned p = 0; p < 3000; p++) {
        snprintf(park, sizeof park, "x%u", p);
        for (size_t i = 0; i < 4; i++)
            replay_alert(e, ++seq, park, inds[i], "2024-07", "warning");
        if (p == 1500) {
            replay_alert(e, ++seq, "pa", fai, "2024-08", "critical");
            ck_assert_int_eq(alert_replay_event(e, "state pa fixed_asset_investment 2024-08 ok"), 0);
        }
    }
    ck_assert_uint_eq(alert_seq(e), seq);
    /* the parks x… are configured: alerts of parks the configuration does not
     * know are not listed (test_removed_series_not_listed) */
    jbuf conf;
    jbuf_init(&conf);
    jbuf_puts(&conf, "park \"pa\" { name = \"甲园区\" }\npark \"pb\" { name = \"乙园区\" }\n");
    for (unsigned p = 0; p < 3000; p++)
        jbuf_printf(&conf, "park \"x%u\" { name = \"园区%u\" }\n", p, p);
    ck_assert(!conf.failed);
    char *body = jbuf_take(&conf, NULL);
    test_app_reload(&app, test_dir, true, body);
    free(body);

    set_target("pa", "fixed_asset_investment", 2024, 100);
    raise_one(e, "pa", 50, seq + 1); /* critical again after ok: critical/2 (issue 13) */
    raise_one(e, "pa", 60, seq + 2); /* warning: new */
    char *j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "/2024-08/warning\""));
    ck_assert_ptr_nonnull(strstr(j, "\"previous\":\"critical\""));
    free(j);
    char *active = query_active(e);
    ck_assert_uint_eq(n_alerts(active), 3000 * 4 + 1);
    free(active);
    alert_free(e);
}
END_TEST

/* Issue 13, point 2: overdue is a flag beside the status with alerts of its
 * own — "overdue" for the missing month, "received" when it arrives — and the
 * status keeps saying what the latest figure is (it used to become "stale").
 * A park that never reports is overdue too (point 3). */
#define NOW_2024_10_25 (NOW_2024_10_15 + 10 * 86400) /* past the due day: September due */
START_TEST(test_overdue_alerts)
{
    const char *fai = "fixed_asset_investment";
    alert_engine *e = new_engine();
    set_target("pa", fai, 2024, 100);
    set_target("pb", fai, 2024, 100); /* pb never reports */
    set_figure("pa", fai, 2024, 8, 50);
    /* pa critical; pb no_data, and July is due: overdue */
    ck_assert_int_eq(evaluate_all(e), 2);
    char *since = query_since(e, 0);
    ck_assert_int_eq(count(since, "\"id\":\"pb/fixed_asset_investment/2024-07/overdue\""), 1);
    free(since);

    /* past the due day of October: September is overdue for both */
    app.fixed_now = NOW_2024_10_25;
    ck_assert_int_eq(evaluate_all(e), 2);
    since = query_since(e, 2);
    ck_assert_int_eq(count(since, "\"id\":\"pa/fixed_asset_investment/2024-09/overdue\""), 1);
    ck_assert_int_eq(count(since, "\"id\":\"pb/fixed_asset_investment/2024-09/overdue\""), 1);
    ck_assert_int_eq(count(since, "\"status\":\"overdue\""), 2);
    ck_assert_int_eq(count(since, "\"overdue\":true"), 2);
    free(since);
    char *active = query_active(e);
    ck_assert_uint_eq(n_alerts(active), 3); /* pa critical, pa overdue, pb overdue */
    ck_assert_int_eq(count(active, "\"status\":\"critical\""), 1);
    free(active);
    ck_assert_int_eq(evaluate_all(e), 0); /* nothing new */

    /* September arrives for pa, still critical: the reminder and "received" */
    set_figure("pa", fai, 2024, 9, 55);
    ck_assert_int_eq(evaluate(e, "pa", fai), 2);
    since = query_since(e, 4);
    ck_assert_int_eq(count(since, "\"id\":\"pa/fixed_asset_investment/2024-09/critical\""), 1);
    ck_assert_int_eq(count(since, "\"id\":\"pa/fixed_asset_investment/2024-09/received\""), 1);
    free(since);
    active = query_active(e);
    ck_assert_uint_eq(n_alerts(active), 2); /* pa critical (September), pb overdue */
    ck_assert_int_eq(count(active, "received"), 0);
    free(active);

    /* a restart raises nothing again */
    alert_engine *e2 = restart();
    ck_assert_int_eq(evaluate_all(e2), 0);
    active = query_active(e2);
    ck_assert_uint_eq(n_alerts(active), 2);
    free(active);
    alert_free(e2);
    alert_free(e);
}
END_TEST

/* Issue 10, defect 7: an alert line of the journal damaged (a flipped bit in a
 * complete line, not the last) is skipped at replay; the seq it carried must
 * not be handed out again, nor its id published again. */
START_TEST(test_damaged_alert_line_keeps_seq_and_id)
{
    const char *fai = "fixed_asset_investment";
    alert_engine *e = new_engine();
    set_august("pa", fai, 50);
    ck_assert_int_eq(evaluate(e, "pa", fai), 1);
    set_august("pb", fai, 50);
    ck_assert_int_eq(evaluate(e, "pb", fai), 1);
    ck_assert_uint_eq(alert_seq(e), 2);
    journal_one_figure("pa", "tax_revenue", 2024, 8, 1); /* the damaged line is not the last */
    alert_free(e);

    damage_journal_line("alert 2 pb ");
    e = restart();
    uint64_t seq = alert_seq(e);
    int again = evaluate_all(e);
    char *since = query_since(e, 0);
    ck_assert_msg(seq == 2 && again == 0 && count(since, "pb/fixed_asset_investment/2024-08/critical") == 0,
                  "after the damage: last seq %llu (want 2), %d alert(s) raised again (want 0): %s",
                  (unsigned long long)seq, again, since);
    free(since);
    /* the next alert continues after every seq ever published */
    raise_one(e, "pa", 75, 3);
    char *j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":3,\"id\":\"pa/fixed_asset_investment/2024-08/ok\""));
    free(j);
    alert_free(e);

    e = restart_at(3);
    alert_free(e);
}
END_TEST

/* The second copy (journal/alert-ids.log) is damaged too, in other places: a
 * damaged line, and a last line cut before its newline. Whatever one copy
 * lost, the other has; appends after the cut start on a line of their own. */
START_TEST(test_alert_ids_survive_damage_of_either_copy)
{
    const char *fai = "fixed_asset_investment";
    char ids[PATH_MAX];
    state_file(ids, "alert-ids.log");
    alert_engine *e = new_engine();
    set_august("pa", fai, 50);
    set_august("pb", fai, 50);
    ck_assert_int_eq(evaluate_all(e), 2);
    alert_free(e);

    /* 1. the id file's line of seq 2 damaged: the journal still has it */
    damage_line(ids, "2 pb/", false);
    e = restart_at(2);
    raise_one(e, "pa", 75, 3); /* recovery */
    journal_one_figure("pa", "tax_revenue", 2024, 8, 1);
    alert_free(e);

    /* 2. the id file's last line loses its newline, and the journal's line
     * of seq 3 is damaged: the cut line still counts */
    struct stat st;
    ck_assert_int_eq(stat(ids, &st), 0);
    ck_assert_int_eq(truncate(ids, st.st_size - 1), 0);
    damage_journal_line("alert 3 pa ");
    e = restart_at(3); /* pa/…/ok is not raised again */
    raise_one(e, "pb", 60, 4); /* warning */
    journal_one_figure("pa", "tax_revenue", 2024, 8, 2);
    alert_free(e);

    /* 3. the journal's line of seq 4 damaged: the id file's line for 4 (written
     * after the cut line was repaired) is intact */
    damage_journal_line("alert 4 pb ");
    e = restart_at(4);
    raise_one(e, "pb", 75, 5); /* recovery */
    alert_free(e);
}
END_TEST

/* Issue 10, defect 9: an alert whose decision could not be journaled (the
 * disk full) is retried when space returns, without a new figure: by
 * alert_retry_pending() (the daemon's 1-s tick) and by the next evaluation of
 * any series. seq is assigned when journaled: no gap, no repeat. */
START_TEST(test_unjournaled_alert_is_retried)
{
    const char *fai = "fixed_asset_investment";
    alert_engine *e = new_engine();
    alert_set_listener(e, listener, &listener_calls);
    set_august("pa", fai, 50); /* critical */

    limit_file_size();
    int r1 = evaluate(e, "pa", fai);
    int r2 = alert_retry_pending(e); /* still full */
    uint64_t seq1 = alert_seq(e);
    int calls = listener_calls;
    lift_file_limit();
    ck_assert_int_eq(r1, -1);
    ck_assert_uint_eq(seq1, 0);
    ck_assert_int_eq(calls, 0);

    /* space is back: the next tick publishes it */
    int n = alert_retry_pending(e);
    ck_assert_msg(n == 1 && alert_seq(e) == 1 && listener_calls == 1,
                  "retry after the disk full: %d alert(s), seq %llu, %d listener call(s) (want 1, 1, 1)",
                  n, (unsigned long long)alert_seq(e), listener_calls);
    char *j = last_alert(e);
    ck_assert_ptr_nonnull(strstr(j, "{\"seq\":1,\"id\":\"pa/fixed_asset_investment/2024-08/critical\""));
    free(j);
    ck_assert_int_eq(r2, -1);                    /* the retry while full failed, */
    ck_assert_int_eq(alert_retry_pending(e), 0); /* and now nothing is left */
    ck_assert_int_eq(evaluate(e, "pa", fai), 0);

    /* full again for pb's alert; then a figure of another series arrives */
    set_august("pb", fai, 50);
    limit_file_size();
    r1 = evaluate(e, "pb", fai);
    lift_file_limit();
    ck_assert_int_eq(r1, -1);
    set_august("pa", "tax_revenue", 40);
    n = evaluate(e, "pa", "tax_revenue");
    ck_assert_msg(n == 2, "the next evaluation raised %d alert(s) (want 2: pb's pending one too)", n);
    ck_assert_uint_eq(alert_seq(e), 3);
    char *since = query_since(e, 0);
    ck_assert_ptr_nonnull(strstr(since, "{\"seq\":2,\"id\":\"pb/fixed_asset_investment/2024-08/critical\""));
    ck_assert_ptr_nonnull(strstr(since, "{\"seq\":3,\"id\":\"pa/tax_revenue/2024-08/critical\""));
    ck_assert_uint_eq(n_alerts(since), 3);

    /* and nothing of it again after a restart */
    expect_restart_alike(e, since);
    free(since);
    alert_free(e);
}
END_TEST

/* Issue 10, defect 10: after a reload removes a park (or an indicator), its
 * alerts are listed by no route — the active list, ?since= and the SSE
 * cursor — as every other route answers "unknown park"; seq stays. When the
 * park comes back, so do its alerts. */
START_TEST(test_removed_series_not_listed)
{
    alert_engine *e = new_engine();
    replay_alert(e, 1, "pa", "tax_revenue", "2024-07", "warning");
    replay_alert(e, 2, "pb", "tax_revenue", "2024-07", "critical");
    replay_alert(e, 3, "pa", "fiscal_revenue", "2024-07", "critical");
    char *s = query_active(e);
    ck_assert_uint_eq(n_alerts(s), 3);
    free(s);

    test_app_reload(&app, test_dir, true, "park \"pa\" { name = \"甲园区\" }\n");
    expect_json(query_active(e), "{\"seq\":3,\"alerts\":["
                "{\"seq\":1,\"id\":\"pa/tax_revenue/2024-07/warning\"},"
                "{\"seq\":3,\"id\":\"pa/fiscal_revenue/2024-07/critical\"}]}");
    expect_json(query_since(e, 0), "{\"seq\":3,\"alerts\":["
                "{\"seq\":1,\"id\":\"pa/tax_revenue/2024-07/warning\"},"
                "{\"seq\":3,\"id\":\"pa/fiscal_revenue/2024-07/critical\"}],\"complete\":true}");
    uint64_t seq = 0;
    char *j = alert_next(e, 1, &seq); /* the SSE cursor after 1 skips pb's 2 */
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(seq, 3);
    free(j);
    ck_assert_uint_eq(alert_seq(e), 3);

    /* pb back, fiscal_revenue gone from the catalogue */
    test_app_reload(&app, test_dir, false,
                    "indicator \"tax_revenue\" { label = \"税收收入\" unit = \"亿元\" kind = \"cumulative\" }\n"
                    "park \"pa\" { name = \"甲园区\" }\npark \"pb\" { name = \"乙园区\" }\n");
    expect_json(query_active(e), "{\"seq\":3,\"alerts\":["
                "{\"seq\":1,\"id\":\"pa/tax_revenue/2024-07/warning\"},"
                "{\"seq\":2,\"id\":\"pb/tax_revenue/2024-07/critical\"}]}");
    j = alert_next(e, 2, &seq);
    ck_assert_ptr_null(j);
    j = alert_next(e, 1, &seq);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(seq, 2);
    free(j);
    alert_free(e);
}
END_TEST

static Suite *alert_suite(void)
{
    Suite *s = suite_create("alert");
    TCase *tc = check_tcase(s, "replay", NULL, NULL, 0);
    tcase_add_test(tc, test_replay_queries);
    tcase_add_test(tc, test_replay_ring_wraps);
    tcase_set_timeout(tc, 30);
    /* the evaluate tests, with one thread judging and with every evaluation
     * of all series judged in parallel */
    const TTest *const evaluate_tests[] = {
        test_evaluate_lifecycle, test_evaluate_batch, test_evaluate_after_big_replay,
        test_overdue_alerts, test_damaged_alert_line_keeps_seq_and_id,
        test_alert_ids_survive_damage_of_either_copy, test_unjournaled_alert_is_retried,
        test_removed_series_not_listed,
    };
    const struct {
        const char *name;
        SFun setup, teardown;
    } evaluate_cases[] = {
        { "evaluate", setup, teardown },
        { "evaluate in parallel", setup_parallel, teardown_parallel },
    };
    for (size_t c = 0; c < sizeof evaluate_cases / sizeof evaluate_cases[0]; c++) {
        tc = check_tcase(s, evaluate_cases[c].name, evaluate_cases[c].setup,
                         evaluate_cases[c].teardown, 0);
        for (size_t t = 0; t < sizeof evaluate_tests / sizeof evaluate_tests[0]; t++)
            tcase_add_test(tc, evaluate_tests[t]);
        tcase_set_timeout(tc, 30);
    }
    return s;
}

CHECK_MAIN(alert_suite)
