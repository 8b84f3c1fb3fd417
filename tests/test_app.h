/*
 * test_app.h — a pp_app for Check suites that drive ingest, the alert engine
 * or the read-view rooms (status, report, api): app_open() of daemon/app.c on
 * a temporary state directory with a configuration of the standard indicator
 * catalogue and two parks (pa 甲园区, pb 乙园区) — an open journal, an empty
 * db, an rrd/ directory, a fixed clock, and an alert engine when asked —
 * undone by app_stop(); test_app_feed() ingests CSV text into it;
 * test_app_reload() swaps in another set of parks as SIGHUP does. Header-only: each suite is one file.
 */
#ifndef PP_TEST_APP_H
#define PP_TEST_APP_H

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "config.h"
#include "db.h"
#include "ingest.h"
#include "journal.h"
#include "tmpdir.h"

/* Writes a configuration with the two parks into a new temporary directory
 * dir (PATH_MAX bytes), named after the suite, and opens app on it with
 * app_open, as parkpulsed does but without serving (no graph workers, no
 * HTTP socket, no bus, no collectors) and with a fixed clock; alerts: with an
 * alert engine. The tests run from the project root (for
 * config/indicators.conf). */
static inline void test_app_open_with(pp_app *app, char *dir, const char *suite, int64_t now,
                                      bool alerts)
{
    char cwd[PATH_MAX], conf[PATH_MAX + 16];
    tmpdir_make(dir, PATH_MAX, suite);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));

    snprintf(conf, sizeof conf, "%s/parkpulse.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "timezone = \"Asia/Shanghai\"\n"
               "state_dir = \"%s\"\n"
               "include(\"%s/config/indicators.conf\")\n"
               "park \"pa\" { name = \"甲园区\" }\n"
               "park \"pb\" { name = \"乙园区\" }\n", dir, cwd);
    ck_assert_int_eq(fclose(f), 0);

    app_options o = { .conf_file = conf, .fixed_now = now, .foreground = true, .alerts = alerts };
    ck_assert_int_eq(app_open(app, &o), 0);
}

/* test_app_open_with, without an alert engine (ingest and store suites). */
static inline void test_app_open(pp_app *app, char *dir, const char *suite, int64_t now)
{
    test_app_open_with(app, dir, suite, now, false);
}

/* Feeds csv (NULL: nothing) through ingest as source "test"; it must be taken. */
static inline void test_app_feed(pp_app *app, const char *csv)
{
    if (csv == NULL)
        return;
    ingest_result res;
    ingest_status st = ingest_csv(app, "test", csv, strlen(csv), &res);
    ck_assert_msg(st == INGEST_OK, "ingest: %s", res.report ? res.report : "?");
    free(res.report);
    free(res.warnings);
}

/* SIGHUP as the daemon does it: loads a configuration of dir made of body
 * (park and indicator sections), after the standard catalogue when catalogue
 * is true, swaps it in under the write lock and bumps the generation. */
static inline void test_app_reload(pp_app *app, const char *dir, bool catalogue, const char *body)
{
    char cwd[PATH_MAX], conf[PATH_MAX + 16], err[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(conf, sizeof conf, "%s/reloaded.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "timezone = \"Asia/Shanghai\"\nstate_dir = \"%s\"\n", dir);
    if (catalogue)
        fprintf(f, "include(\"%s/config/indicators.conf\")\n", cwd);
    fputs(body, f);
    ck_assert_int_eq(fclose(f), 0);
    pp_config *cur = conf_load(conf, err, sizeof err);
    ck_assert_msg(cur != NULL, "%s", err);
    pthread_rwlock_wrlock(&app->cfg_lock);
    pp_config *old = app->cfg;
    app->cfg = cur;
    app->cfg_generation++;
    pthread_rwlock_unlock(&app->cfg_lock);
    conf_free(old);
}

/* Frees what test_app_open made (app_stop) and removes dir. */
static inline void test_app_close(pp_app *app, const char *dir)
{
    app_stop(app, false);
    tmpdir_remove(dir);
}

#endif
