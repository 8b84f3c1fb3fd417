/*
 * ingest.c — validation, journaling and storing of incoming figures (see
 * ingest.h). The order is the durability guarantee of SPEC §5: a batch is
 * parsed and checked whole, then journaled and fsync'd, then applied to the
 * db, then the touched series' RRD files are rewritten. A caller acknowledges
 * only after INGEST_OK, so an acknowledged figure is always in the journal.
 *
 * Re-ingesting the same figure (the same value and status for the same
 * period) changes nothing and writes nothing: a spool file delivered twice, or
 * re-read after a crash between fsync and rename, is harmless.
 */
#include "ingest.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pace.h"
#include "store.h"

/* A (park, indicator) touched by a batch and the earliest period it changed. */
typedef struct touched {
    const char *park, *indicator;
    int changed_from;
} touched;

static void touch(touched *t, size_t *n, const char *park, const char *ind, int from)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(t[i].park, park) == 0 && strcmp(t[i].indicator, ind) == 0) {
            if (from < t[i].changed_from)
                t[i].changed_from = from;
            return;
        }
    }
    t[*n].park = park;
    t[*n].indicator = ind;
    t[*n].changed_from = from;
    (*n)++;
}

/* true when o repeats the value in force for its period. */
static bool obs_unchanged(const db *d, const pp_obs *o)
{
    const db_series *s = db_series_get(d, o->park, o->indicator);
    const db_point *p = s ? db_series_point(s, o->period) : NULL;
    if (p == NULL || p->n_vintages == 0)
        return false;
    const db_vintage *v = &p->vintages[p->n_vintages - 1];
    return v->value == o->value && v->status == o->status;
}

/* Copies src into dst (size PP_SOURCE_MAX + 1), cut at a UTF-8 character boundary. */
static void copy_source(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > PP_SOURCE_MAX) {
        n = PP_SOURCE_MAX;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool target_unchanged(const db *d, const pp_target *t)
{
    double cur;
    return db_target(d, t->park, t->indicator, t->year, &cur) && cur == t->value;
}

int ingest_write_series(pp_app *app, const char *park, const char *indicator, int changed_from)
{
    int rc = -1;
    double *values = NULL, *paces = NULL;
    const pp_indicator *ind;

    pthread_rwlock_rdlock(&app->cfg_lock);
    db_rdlock(app->db);
    ind = pp_catalog_indicator(&app->cfg->catalog, indicator);
    const db_series *s = db_series_get(app->db, park, indicator);
    if (ind == NULL || s == NULL || s->n_points == 0) {
        rc = 0; /* nothing to write: unknown to the configuration, or only a target */
        goto out;
    }
    int first = s->points[0].period, last = s->points[s->n_points - 1].period;
    size_t n = (size_t)(last - first + 1);
    values = malloc(n * sizeof *values);
    paces = malloc(n * sizeof *paces);
    if (values == NULL || paces == NULL) {
        log_err("ingest", "out of memory writing %s/%s", park, indicator);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        values[i] = NAN;
        double target;
        int period = first + (int)i;
        paces[i] = db_target(app->db, park, indicator, pp_period_year(period), &target)
                       ? pace_expected(ind, period, target) : NAN;
    }
    for (size_t i = 0; i < s->n_points; i++) {
        const db_point *p = &s->points[i];
        if (p->n_vintages > 0)
            values[p->period - first] = p->vintages[p->n_vintages - 1].value;
    }
    store_series ss = { .park = park, .indicator = indicator, .first_period = first, .n = n,
                        .value = values, .pace = paces, .changed_from = changed_from };
    db_unlock(app->db);
    pthread_rwlock_unlock(&app->cfg_lock);
    rc = store_write(app->rrd_dir, &ss);
    free(values);
    free(paces);
    return rc;
out:
    db_unlock(app->db);
    pthread_rwlock_unlock(&app->cfg_lock);
    free(values);
    free(paces);
    return rc;
}

/* Journals, applies and stores. Called with the ingest lock held. */
static ingest_status commit(pp_app *app, pp_obs *obs, size_t n_obs, pp_target *tg, size_t n_tg,
                            ingest_result *res)
{
    ingest_status st = INGEST_ERROR;
    journal_record *recs = NULL;
    touched *tv = NULL;
    size_t n_recs = 0, n_touched = 0;
    int64_t now = app_now(app);

    if (n_obs + n_tg > 0) {
        recs = calloc(n_obs + n_tg, sizeof *recs);
        tv = calloc(n_obs + n_tg, sizeof *tv);
        if (recs == NULL || tv == NULL) {
            log_err("ingest", "out of memory for a batch of %zu records", n_obs + n_tg);
            goto out;
        }
    }
    for (size_t i = 0; i < n_obs; i++) {
        if (obs[i].status == 0)
            obs[i].status = 'A';
        if (obs[i].received_at == 0)
            obs[i].received_at = now;
        if (obs_unchanged(app->db, &obs[i])) {
            res->n_unchanged++;
            continue;
        }
        recs[n_recs].type = JREC_OBS;
        recs[n_recs++].obs = obs[i];
        res->n_obs++;
    }
    for (size_t i = 0; i < n_tg; i++) {
        if (tg[i].received_at == 0)
            tg[i].received_at = now;
        if (target_unchanged(app->db, &tg[i]))
            continue;
        recs[n_recs].type = JREC_TARGET;
        recs[n_recs++].target = tg[i];
        res->n_targets++;
    }
    if (n_recs > 0) {
        int rc = journal_append(app->journal, recs, n_recs);
        if (rc < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "journal: cannot write: %s\n", strerror(-rc));
            res->report = strdup(msg);
            res->n_obs = res->n_targets = 0;
            goto out;
        }
    }
    db_wrlock(app->db);
    for (size_t i = 0; i < n_recs; i++) {
        const journal_record *r = &recs[i];
        if (r->type == JREC_OBS) {
            if (db_add_obs(app->db, &r->obs) < 0)
                log_err("ingest", "out of memory adding %s/%s", r->obs.park, r->obs.indicator);
            touch(tv, &n_touched, r->obs.park, r->obs.indicator, r->obs.period);
        } else {
            if (db_add_target(app->db, &r->target) < 0)
                log_err("ingest", "out of memory adding a target");
            touch(tv, &n_touched, r->target.park, r->target.indicator,
                  pp_period_make(r->target.year, 1));
        }
    }
    db_unlock(app->db);
    /* The journal is the truth: an RRD that fails to write is logged and
     * rebuilt at the next start (no clean marker), the figures stay accepted. */
    for (size_t i = 0; i < n_touched; i++)
        ingest_write_series(app, tv[i].park, tv[i].indicator, tv[i].changed_from);
    app->n_obs_accepted += res->n_obs;
    app->n_obs_unchanged += res->n_unchanged;
    app->n_targets_accepted += res->n_targets;
    if (n_touched > 0 && app->on_change) {
        const char **parks = calloc(n_touched, sizeof *parks);
        const char **inds = calloc(n_touched, sizeof *inds);
        if (parks && inds) {
            for (size_t i = 0; i < n_touched; i++) {
                parks[i] = tv[i].park;
                inds[i] = tv[i].indicator;
            }
            app->on_change(app, app->on_change_ud, parks, inds, n_touched);
        }
        free(parks);
        free(inds);
    }
    st = INGEST_OK;
out:
    free(recs);
    free(tv);
    return st;
}

ingest_status ingest_records(pp_app *app, pp_obs *obs, size_t n_obs, pp_target *tg, size_t n_tg,
                             ingest_result *res)
{
    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&app->ingest_lock);
    ingest_status st = commit(app, obs, n_obs, tg, n_tg, res);
    pthread_mutex_unlock(&app->ingest_lock);
    return st;
}

ingest_status ingest_csv(pp_app *app, const char *source, const char *data, size_t len,
                         ingest_result *res)
{
    csv_result cr;
    ingest_status st;

    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&app->ingest_lock);
    pthread_rwlock_rdlock(&app->cfg_lock);
    int prc = csv_parse(data, len, &app->cfg->catalog, &cr);
    pthread_rwlock_unlock(&app->cfg_lock);
    if (prc != 0 || cr.n_errors_total > 0) {
        res->report = csv_errors_report(&cr, source);
        app->n_files_refused++;
        log_warn("ingest", "refused %s: %zu bad row(s)", source, cr.n_errors_total);
        st = INGEST_REFUSED;
        goto out;
    }
    for (size_t i = 0; i < cr.n_obs; i++)
        if (cr.obs[i].source[0] == '\0')
            copy_source(cr.obs[i].source, source);
    for (size_t i = 0; i < cr.n_targets; i++)
        if (cr.targets[i].source[0] == '\0')
            copy_source(cr.targets[i].source, source);
    st = commit(app, cr.obs, cr.n_obs, cr.targets, cr.n_targets, res);
    if (st == INGEST_OK) {
        app->n_files_ok++;
        log_info("ingest", "%s: %zu figure(s) and %zu target(s) accepted, %zu unchanged (%s)",
                 source, res->n_obs, res->n_targets, res->n_unchanged, cr.encoding);
    } else {
        log_err("ingest", "%s: not stored: %s", source, res->report ? res->report : "error");
    }
out:
    pthread_mutex_unlock(&app->ingest_lock);
    csv_result_free(&cr);
    return st;
}

static int replay_one(const journal_record *r, void *ud)
{
    pp_app *app = ud;
    if (r->type == JREC_OBS) {
        if (db_add_obs(app->db, &r->obs) < 0)
            return -ENOMEM;
    } else if (r->type == JREC_TARGET) {
        if (db_add_target(app->db, &r->target) < 0)
            return -ENOMEM;
    } else if (r->type == JREC_EVENT && app->on_event) {
        app->on_event(app, app->on_event_ud, r->event);
    }
    return 0;
}

int ingest_replay(pp_app *app)
{
    db_wrlock(app->db);
    int rc = journal_replay(app->journal, replay_one, app);
    db_unlock(app->db);
    if (rc != 0)
        log_err("ingest", "journal replay failed: %s", strerror(rc < 0 ? -rc : EIO));
    return rc;
}

int ingest_rebuild_all(pp_app *app)
{
    int failed = 0;
    size_t n;
    db_rdlock(app->db);
    n = db_series_count(app->db);
    char (*keys)[2][PP_ID_MAX + 1] = calloc(n ? n : 1, sizeof *keys);
    if (keys == NULL) {
        db_unlock(app->db);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const db_series *s = db_series_at(app->db, i);
        snprintf(keys[i][0], sizeof keys[i][0], "%s", s->park);
        snprintf(keys[i][1], sizeof keys[i][1], "%s", s->indicator);
    }
    db_unlock(app->db);
    for (size_t i = 0; i < n; i++)
        if (ingest_write_series(app, keys[i][0], keys[i][1], pp_period_make(PP_PERIOD_MIN_YEAR, 1)) != 0)
            failed++;
    free(keys);
    return failed;
}
