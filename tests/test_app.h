/*
 * test_app.h — a pp_app for Check suites that drive ingest or the alert engine:
 * a temporary state directory, a configuration with the standard indicator
 * catalogue and two parks (pa 甲园区, pb 乙园区), an open journal, an empty db,
 * an rrd/ directory, and a fixed clock; test_app_reload() swaps in another set
 * of parks as SIGHUP does. Header-only: each suite is one file.
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
#include "journal.h"

static inline int test_app_rm_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Fills app; dir (PATH_MAX bytes) receives the temporary directory, named after
 * the suite. The tests run from the project root (for config/indicators.conf). */
static inline void test_app_open(pp_app *app, char *dir, const char *suite, int64_t now)
{
    char cwd[PATH_MAX], conf[PATH_MAX + 16], journal_dir[PATH_MAX + 16], err[4096];
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    int n = snprintf(dir, PATH_MAX, "%s/%s.XXXXXX", base, suite);
    ck_assert(n > 0 && n < PATH_MAX);
    ck_assert_ptr_nonnull(mkdtemp(dir));
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

    memset(app, 0, sizeof *app);
    ck_assert_int_eq(app_locks_init(app), 0); /* the daemon's locks, writer-preferring */
    app->fixed_now = now;
    app->cfg = conf_load(conf, err, sizeof err);
    ck_assert_msg(app->cfg != NULL, "%s", err);
    snprintf(journal_dir, sizeof journal_dir, "%s/journal", dir);
    ck_assert_int_eq(journal_open(journal_dir, &app->journal), 0);
    app->db = db_new();
    ck_assert_ptr_nonnull(app->db);
    n = snprintf(app->rrd_dir, sizeof app->rrd_dir, "%.4000s/rrd", dir);
    ck_assert(n > 0 && (size_t)n < sizeof app->rrd_dir);
    ck_assert_int_eq(mkdir(app->rrd_dir, 0755), 0);
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

/* Frees what test_app_open made and removes dir. */
static inline void test_app_close(pp_app *app, const char *dir)
{
    journal_close(app->journal);
    db_free(app->db);
    conf_free(app->cfg);
    pthread_mutex_destroy(&app->ingest_lock);
    pthread_rwlock_destroy(&app->cfg_lock);
    nftw(dir, test_app_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
