/*
 * ingest.c — validation, journaling and storing of incoming figures (see
 * ingest.h). The order is the durability guarantee of README, Storage: a batch is
 * parsed and checked whole, then journaled and fsync'd, then applied to the
 * db, then the touched series' RRD files are rewritten — by the commit itself
 * (tools, tests) or, in the daemon, queued for the RRD writer threads (one
 * per CPU, a park's series always on the same one; see "the RRD writers" below
 * and ingest.h), so that the caller's acknowledgement does not wait for
 * librrd. A series is written by one thread at a time, from a copy of the db
 * made under the same per-series lock, so its file never goes back to an
 * older copy. A caller acknowledges only after INGEST_OK, so an
 * acknowledged figure is always in the journal and in the db.
 *
 * An input is CSV or an Excel workbook, told apart by its first bytes
 * (parse_input, workbook.h): a workbook's sheets are read as CSV and refused
 * or taken whole, like one CSV file.
 *
 * Re-ingesting the same figure (the same value and status for the same
 * period) changes nothing and writes nothing. A delivery (an input named as a
 * file by a collector: ingest_input.delivery) is journaled with its identity —
 * name, size and content hash, a D line in the same batch as its figures — and
 * reading the same delivery again is a no-op answered INGEST_OK: a spool file
 * that could not be moved to done/ (or a crash between the fsync and the
 * rename) never puts its old values back over newer ones.
 *
 * Stopping: app->stopping is looked at between pieces of work — before each
 * input, every CSV_STOP_EVERY records while one is parsed, every
 * STOP_EVERY_RECORDS figures compared with the db, right before the journal
 * append, and between two RRD files written. Before the append nothing is
 * taken and every input not yet journaled gets INGEST_ERROR (its collector
 * keeps it and it is read again at the next start); after the append and the
 * db update the inputs are acknowledged and only the remaining RRD writes are
 * left out (marked dirty, store.h: no clean-stop marker, so they are rebuilt
 * at the next start; with the writer threads, app_stop gives their queues a
 * bounded time and marks the rest dirty the same way). Never between the
 * append and the db update.
 *
 * An input whose reading runs out of memory is INGEST_ERROR (read again
 * later), not INGEST_REFUSED: its rows are not at fault.
 */
#include "ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "hash.h"
#include "log.h"
#include "pace.h"
#include "silence.h"
#include "store.h"
#include "workbook.h"
#include "vec.h"

#define STOP_EVERY_RECORDS 4096  /* figures compared with the db between two looks at stopping */
#define LOG_LARGE_INPUT (1u << 20) /* inputs from this size on are logged when they start */
#define STOP_REPORT "正在停止，未接收，下次启动时重新读取 (parkpulsed is stopping: not taken, " \
                    "to be read again at the next start)\n"

#define NOMEM_REPORT "内存不足，未接收，稍后重新读取 (out of memory: not taken, to be read " \
                     "again)\n"

static bool stopping(pp_app *app) { return atomic_load(&app->stopping); }

static bool parse_should_stop(void *ud) { return stopping(ud); }

/* A workbook's figures after max_period refuse it, as a CSV row would be
 * (csv_parse_until): one line per figure in *report. Returns 0 or -1. */
static int refuse_future(const char *source, int max_period, csv_result *cr, char **report)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = NULL;
    for (size_t i = 0; i < cr->n_obs; i++) {
        if (cr->obs[i].period <= max_period)
            continue;
        if (f == NULL && (f = open_memstream(&buf, &size)) == NULL)
            break;
        char why[CSV_REASON_MAX];
        csv_future_why(cr->obs[i].period, max_period, why, sizeof why);
        fprintf(f, "%s: 文件 %s，园区 %s，指标 %s：%s\n", source, source, cr->obs[i].park,
                cr->obs[i].indicator, why);
        cr->n_errors_total++;
    }
    if (f == NULL)
        return cr->n_errors_total > 0 ? -1 : 0;
    fclose(f);
    free(*report);
    *report = buf;
    return -1;
}

/* Reads one input by its format: an Excel workbook by its first bytes (a zip
 * is an .xlsx, an OLE2 file an .xls; workbook.h), anything else as CSV. Takes
 * cfg_lock for reading. When the input is refused (rc != 0 or errors, and not
 * stopped), *report is its report "source:line: reason" — for a workbook
 * "source:sheet!row: reason" — or NULL when out of memory. Sheets of a
 * workbook that were skipped are logged. */
static int parse_input(pp_app *app, const char *source, const char *data, size_t len,
                       csv_result *cr, char **report)
{
    wb_format f = workbook_format(data, len);
    char *notes = NULL;
    int rc;
    *report = NULL;
    /* a period after the current month (the daemon's clock, in the configured
     * timezone) is a bad row (README "Feeding figures") */
    int y, m, d;
    app_local_date(app_now(app), &y, &m, &d);
    const int max_period = pp_period_make(y, m);
    pthread_rwlock_rdlock(&app->cfg_lock);
    if (f == WB_NONE)
        rc = csv_parse_until(data, len, &app->cfg->catalog, max_period, cr, parse_should_stop, app);
    else
        rc = workbook_parse(data, len, source, &app->cfg->catalog, NULL, cr, report, &notes,
                            parse_should_stop, app);
    pthread_rwlock_unlock(&app->cfg_lock);
    if (f != WB_NONE && rc == 0 && !cr->stopped && cr->n_errors_total == 0)
        rc = refuse_future(source, max_period, cr, report);
    if (f == WB_NONE && !cr->stopped && (rc != 0 || cr->n_errors_total > 0))
        *report = csv_errors_report(cr, source);
    for (const char *line = notes; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        log_info("ingest", "%.*s", (int)n, line);
        line += n + (nl ? 1 : 0);
    }
    free(notes);
    return rc;
}

/* qsort_r's order of figures: park, indicator, period. */
static int cmp_obs_key(const void *pa, const void *pb, void *ctx)
{
    const pp_obs *o = ctx;
    const pp_obs *a = &o[*(const size_t *)pa], *b = &o[*(const size_t *)pb];
    int c = strcmp(a->park, b->park);
    if (c == 0)
        c = strcmp(a->indicator, b->indicator);
    if (c == 0)
        c = (a->period > b->period) - (a->period < b->period);
    return c;
}

/* The warnings of README "Feeding figures" for an input about to be committed (ingest
 * lock held): a cumulative figure below the same year's previous figure —
 * in the input itself, else in the db. A malloc'd text, one line each, or
 * NULL when there is nothing to say (or no memory: the figures are taken
 * anyway). */
static char *cumulative_warnings(pp_app *app, const char *source, const csv_result *cr)
{
    if (cr->n_obs == 0)
        return NULL;
    size_t *ix = malloc(cr->n_obs * sizeof *ix);
    if (ix == NULL)
        return NULL;
    for (size_t i = 0; i < cr->n_obs; i++)
        ix[i] = i;
    qsort_r(ix, cr->n_obs, sizeof *ix, cmp_obs_key, cr->obs);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = NULL;
    pthread_rwlock_rdlock(&app->cfg_lock);
    db_rdlock(app->db);
    for (size_t k = 0; k < cr->n_obs; k++) {
        const pp_obs *o = &cr->obs[ix[k]];
        const pp_indicator *ind = pp_catalog_indicator(&app->cfg->catalog, o->indicator);
        if (ind == NULL || ind->kind != PP_KIND_CUMULATIVE || pp_period_month(o->period) == 1)
            continue;
        const int jan = pp_period_make(pp_period_year(o->period), 1);
        int prev = -1;
        double pv = 0;
        if (k > 0) {
            const pp_obs *p = &cr->obs[ix[k - 1]];
            if (strcmp(p->park, o->park) == 0 && strcmp(p->indicator, o->indicator) == 0 &&
                p->period >= jan) {
                prev = p->period;
                pv = p->value;
            }
        }
        const db_series *s = db_series_get(app->db, o->park, o->indicator);
        db_vintage v;
        for (int p = o->period - 1; s != NULL && p >= jan && p > prev; p--) {
            if (db_series_latest(s, p, &v)) {
                prev = p;
                pv = v.value;
                break;
            }
        }
        if (prev < 0 || !(o->value < pv))
            continue;
        if (f == NULL && (f = open_memstream(&buf, &size)) == NULL)
            break;
        char a[16], b[16];
        pp_period_format(o->period, a, sizeof a);
        pp_period_format(prev, b, sizeof b);
        fprintf(f, "%s: 园区 %s，%s %s：累计值%.15g%s低于%s的%.15g%s，已接收，请核实 / "
                "%s %s %s: the year-to-date figure %.15g is below %s's %.15g: accepted, please "
                "check\n", source, o->park, ind->label, a, o->value, ind->unit, b, pv, ind->unit,
                o->park, o->indicator, a, o->value, b, pv);
    }
    db_unlock(app->db);
    pthread_rwlock_unlock(&app->cfg_lock);
    free(ix);
    if (f != NULL && fclose(f) != 0) {
        free(buf);
        buf = NULL;
    }
    return buf;
}

/* A (park, indicator) touched by a batch and the earliest period it changed. */
typedef struct touched {
    const char *park, *indicator;
    int changed_from;
} touched;

static void touch(touched *t, size_t *n, const char *park, const char *ind, int from)
{
    /* a file's rows usually run series by series: the last one first */
    if (*n > 0 && strcmp(t[*n - 1].indicator, ind) == 0 && strcmp(t[*n - 1].park, park) == 0) {
        if (from < t[*n - 1].changed_from)
            t[*n - 1].changed_from = from;
        return;
    }
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
    db_vintage v;
    if (!db_series_latest(s, o->period, &v))
        return false;
    return v.value == o->value && v.status == o->status && v.has_yoy == o->has_yoy &&
           (!o->has_yoy || v.yoy == o->yoy);
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

/*
 * A series is written by one thread at a time, from the copy of the db it
 * made under the same lock: a writer thread, main's retry of the dirty
 * series and a commit's own write may otherwise copy the db one after the
 * other and write in the opposite order, leaving the older copy in the file.
 * One of these locks per series, by a hash of its ids; taken before the read
 * view (the order of app.h: after ingest_lock, before cfg_lock).
 */
#define SERIES_LOCKS 64
static pthread_mutex_t series_lock[SERIES_LOCKS];
static pthread_once_t series_lock_once = PTHREAD_ONCE_INIT;

static void series_lock_init(void)
{
    for (size_t i = 0; i < SERIES_LOCKS; i++)
        pthread_mutex_init(&series_lock[i], NULL);
}

static pthread_mutex_t *series_lock_of(const char *park, const char *indicator)
{
    pthread_once(&series_lock_once, series_lock_init);
    uint64_t h = pp_hash_pair(park, 0xff, indicator);
    return &series_lock[(h ^ (h >> 32)) % SERIES_LOCKS];
}

static int write_series_locked(pp_app *app, const char *park, const char *indicator,
                               int changed_from);

int ingest_write_series(pp_app *app, const char *park, const char *indicator, int changed_from)
{
    pthread_mutex_t *lock = series_lock_of(park, indicator);
    pthread_mutex_lock(lock);
    int rc = write_series_locked(app, park, indicator, changed_from);
    pthread_mutex_unlock(lock);
    return rc;
}

static int write_series_locked(pp_app *app, const char *park, const char *indicator,
                               int changed_from)
{
    int rc = -1;
    double *values = NULL, *paces = NULL;
    const pp_indicator *ind;
    pp_view view; /* the series and its targets are copied under it, written after it */

    view_begin(app, &view);
    ind = pp_catalog_indicator(&view.cfg->catalog, indicator);
    const db_series *s = db_series_get(view.db, park, indicator);
    if (ind == NULL || db_series_last(s) < 0) {
        rc = 0; /* nothing to write: unknown to the configuration, or only a target */
        goto out;
    }
    int first = db_series_first(s), last = db_series_last(s);
    size_t n = (size_t)(last - first + 1);
    values = malloc(n * sizeof *values);
    paces = malloc(n * sizeof *paces);
    if (values == NULL || paces == NULL) {
        log_err("ingest", "out of memory writing %s/%s", park, indicator);
        store_dirty_mark(app->rrd_dir, park, indicator);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        values[i] = NAN;
        double target;
        int period = first + (int)i;
        paces[i] = db_target(view.db, park, indicator, pp_period_year(period), &target)
                       ? pace_expected(ind, period, target) : NAN;
    }
    db_vintage v;
    for (int p = db_series_next(s, -1, &v); p >= 0; p = db_series_next(s, p, &v))
        values[p - first] = v.value;
    store_series ss = { .park = park, .indicator = indicator, .first_period = first, .n = n,
                        .value = values, .pace = paces, .changed_from = changed_from };
    view_end(&view);
    rc = store_write(app->rrd_dir, &ss);
    free(values);
    free(paces);
    return rc;
out:
    view_end(&view);
    free(values);
    free(paces);
    return rc;
}

/* ---- dirty RRD files ------------------------------------------------------ */

/* When main's loop may retry next (CLOCK_MONOTONIC) and the wait after a
 * retry that still fails; under the ingest lock. */
static struct timespec retry_next;
static int retry_wait_s = 1;
#define RETRY_WAIT_MAX_S 60
/* While the daemon stops, a retry gives up after this long: the stop keeps
 * within its 5 s, and what is left stays dirty (no clean-stop marker, so the
 * next start rebuilds it). */
#define RETRY_STOPPING_BUDGET_MS 2000

static int64_t mono_ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Rebuilds every dirty series' file. Called with the ingest lock held.
 * Returns the number still dirty. */
static size_t retry_dirty_locked(pp_app *app)
{
    int64_t give_up = stopping(app) ? mono_ms_now() + RETRY_STOPPING_BUDGET_MS : INT64_MAX;
    size_t n = store_dirty_count(app->rrd_dir);
    if (n == 0)
        return 0;
    store_key *keys = calloc(n, sizeof *keys);
    if (keys == NULL) {
        log_err("ingest", "out of memory retrying %zu RRD file(s)", n);
        return n;
    }
    size_t k = store_dirty_list(app->rrd_dir, keys, n), done = 0;
    for (size_t i = 0; i < k && mono_ms_now() < give_up; i++) {
        if (ingest_write_series(app, keys[i].park, keys[i].indicator,
                                pp_period_make(PP_PERIOD_MIN_YEAR, 1)) == 0) {
            store_dirty_clear(app->rrd_dir, keys[i].park, keys[i].indicator);
            done++;
        }
    }
    free(keys);
    size_t left = store_dirty_count(app->rrd_dir);
    if (done > 0)
        log_info("ingest", "%zu RRD file(s) that had failed are written now", done);
    if (left > 0)
        log_warn("ingest", "%zu RRD file(s) still cannot be written: retried later; the "
                 "clean-stop marker waits for them", left);
    return left;
}

size_t ingest_retry_dirty(pp_app *app, bool force)
{
    if (store_dirty_count(app->rrd_dir) == 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&app->ingest_lock);
    size_t left;
    if (!force && (now.tv_sec < retry_next.tv_sec ||
                   (now.tv_sec == retry_next.tv_sec && now.tv_nsec < retry_next.tv_nsec))) {
        left = store_dirty_count(app->rrd_dir);
    } else {
        left = retry_dirty_locked(app);
        if (left == 0)
            retry_wait_s = 1;
        else if (retry_wait_s < RETRY_WAIT_MAX_S)
            retry_wait_s = 2 * retry_wait_s < RETRY_WAIT_MAX_S ? 2 * retry_wait_s
                                                                : RETRY_WAIT_MAX_S;
        retry_next = now;
        retry_next.tv_sec += retry_wait_s;
    }
    pthread_mutex_unlock(&app->ingest_lock);
    return left;
}

/* ---- the RRD writers (ingest.h) --------------------------------------------- */

/* A series waiting for its RRD write, and the earliest month it changed. */
typedef struct wq_item {
    char park[PP_ID_MAX + 1], ind[PP_ID_MAX + 1];
    int from;
} wq_item;

/*
 * There are n writer threads, each with its own queue (a shard). A series
 * always goes to the same shard (by a hash of its park), so that its writes
 * stay in commit order and never run at the same time, while the files of
 * other parks are written by the other threads: librrd's rrd_create_r2 and
 * rrd_update_r are reentrant on separate files (store.c).
 *
 * A shard's queue is a vector (q, n) with a hash set of its series (slot:
 * index + 1 into q, 0 free; at most half full), so that a series queued again
 * merges into its entry. The thread takes the whole vector at once and
 * writes it outside the lock; a series queued meanwhile goes into the next
 * vector (and is written again: the write reads the db as it is then).
 */
struct wq_shard {
    struct rrd_writer *w;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work, idle, progress;
    const wq_item *batch;     /* what the thread took; batch[k..nb) is not written yet */
    size_t k, nb;
    wq_item *q;
    size_t n, cap;
    size_t *slot;
    size_t n_slots;
    bool busy, quit, abandon, hold;
};

struct rrd_writer {
    pp_app *app;
    unsigned n;               /* threads (shards) running */
    struct wq_shard *shard;
    _Atomic size_t pending;   /* queued + taken by a thread, not yet written (every shard) */
    _Atomic uint64_t written; /* files written by the threads */
};

static uint64_t wq_hash(const char *park, const char *ind) { return pp_hash_pair(park, 0xff, ind); }

/* The thread of a series: by its park, so that the threads create files in
 * different directories (each create or rename holds its directory's lock,
 * and on ext4 the inode is taken near its directory's). */
static struct wq_shard *wq_shard_of(const struct rrd_writer *w, const char *park, const char *ind)
{
    (void)ind;
    uint64_t h = pp_hash_str(park);
    return &w->shard[(h ^ (h >> 32)) % w->n];
}

/* The slot of (park, ind) in the set, or the free slot where it would go. */
static size_t wq_slot(const struct wq_shard *sh, const char *park, const char *ind)
{
    size_t i = (size_t)wq_hash(park, ind) & (sh->n_slots - 1);
    while (sh->slot[i] != 0) {
        const wq_item *it = &sh->q[sh->slot[i] - 1];
        if (strcmp(it->park, park) == 0 && strcmp(it->ind, ind) == 0)
            break;
        i = (i + 1) & (sh->n_slots - 1);
    }
    return i;
}

/* Makes room for one more entry (under mu). 0, or -1 when out of memory. */
static int wq_reserve(struct wq_shard *sh)
{
    if (PP_VEC_RESERVE(sh->q, sh->cap, sh->n + 1, 64) != 0)
        return -1;
    if (2 * (sh->n + 1) <= sh->n_slots)
        return 0;
    size_t ns = sh->n_slots ? 2 * sh->n_slots : 256;
    size_t *slot = calloc(ns, sizeof *slot);
    if (slot == NULL)
        return -1;
    free(sh->slot);
    sh->slot = slot;
    sh->n_slots = ns;
    for (size_t k = 0; k < sh->n; k++)
        sh->slot[wq_slot(sh, sh->q[k].park, sh->q[k].ind)] = k + 1;
    return 0;
}

/* Queues a series on its shard (merged with its entry when queued already).
 * Out of memory, it is marked dirty instead (written by the next retry). */
static void wq_put(struct rrd_writer *w, const char *park, const char *ind, int from)
{
    struct wq_shard *sh = wq_shard_of(w, park, ind);
    pthread_mutex_lock(&sh->mu);
    if (wq_reserve(sh) != 0) {
        pthread_mutex_unlock(&sh->mu);
        log_err("ingest", "out of memory queueing the RRD write of %s/%s: retried later", park, ind);
        store_dirty_mark(w->app->rrd_dir, park, ind);
        return;
    }
    size_t i = wq_slot(sh, park, ind);
    if (sh->slot[i] != 0) {
        wq_item *it = &sh->q[sh->slot[i] - 1];
        if (from < it->from)
            it->from = from;
    } else {
        wq_item *it = &sh->q[sh->n++];
        snprintf(it->park, sizeof it->park, "%s", park);
        snprintf(it->ind, sizeof it->ind, "%s", ind);
        it->from = from;
        sh->slot[i] = sh->n;
        atomic_fetch_add(&w->pending, 1);
        pthread_cond_signal(&sh->work);
    }
    pthread_mutex_unlock(&sh->mu);
}

static void *writer_main(void *arg)
{
    struct wq_shard *sh = arg;
    struct rrd_writer *w = sh->w;
    wq_item *batch = NULL;
    size_t batch_cap = 0;

    pthread_mutex_lock(&sh->mu);
    for (;;) {
        while (!sh->quit && (sh->n == 0 || sh->hold))
            pthread_cond_wait(&sh->work, &sh->mu);
        if (sh->n == 0 || sh->abandon)
            break;
        /* take the whole queue: the next commits fill an empty one */
        wq_item *tq = batch;
        size_t tcap = batch_cap, nb = sh->n;
        batch = sh->q;
        batch_cap = sh->cap;
        sh->q = tq;
        sh->cap = tcap;
        sh->n = 0;
        memset(sh->slot, 0, sh->n_slots * sizeof *sh->slot);
        sh->busy = true;
        sh->batch = batch;
        sh->nb = nb;
        sh->k = 0;
        pthread_mutex_unlock(&sh->mu);
        size_t failed = 0, k = 0;
        for (; k < nb; k++) {
            pthread_mutex_lock(&sh->mu);
            while (sh->hold && !sh->abandon)
                pthread_cond_wait(&sh->work, &sh->mu);
            bool give_up = sh->abandon;
            pthread_mutex_unlock(&sh->mu);
            if (give_up)
                break;
            if (ingest_write_series(w->app, batch[k].park, batch[k].ind, batch[k].from) != 0)
                failed++;
            else
                atomic_fetch_add(&w->written, 1);
            atomic_fetch_sub(&w->pending, 1);
            pthread_mutex_lock(&sh->mu);
            sh->k = k + 1;
            pthread_cond_broadcast(&sh->progress);
            pthread_mutex_unlock(&sh->mu);
        }
        /* stopped past its budget: the rest waits for the next start's rebuild */
        for (size_t r = k; r < nb; r++) {
            store_dirty_mark(w->app->rrd_dir, batch[r].park, batch[r].ind);
            atomic_fetch_sub(&w->pending, 1);
        }
        if (k < nb)
            log_warn("ingest", "stopping: %zu RRD file(s) not written, rebuilt at the next start",
                     nb - k);
        /* these could be written: the ones that failed before may be too */
        if (failed == 0 && k == nb && store_dirty_count(w->app->rrd_dir) > 0)
            ingest_retry_dirty(w->app, false);
        pthread_mutex_lock(&sh->mu);
        sh->busy = false;
        sh->batch = NULL;
        sh->k = sh->nb = 0;
        pthread_cond_broadcast(&sh->idle);
        pthread_cond_broadcast(&sh->progress);
    }
    /* abandoned: what is still queued is dirty (no clean-stop marker) */
    for (size_t r = 0; r < sh->n; r++)
        store_dirty_mark(w->app->rrd_dir, sh->q[r].park, sh->q[r].ind);
    if (sh->n > 0)
        log_warn("ingest", "stopping: %zu queued RRD file(s) not written, rebuilt at the next "
                 "start", sh->n);
    atomic_fetch_sub(&w->pending, sh->n);
    sh->n = 0;
    sh->busy = false;
    sh->batch = NULL;
    sh->k = sh->nb = 0;
    pthread_cond_broadcast(&sh->idle);
    pthread_cond_broadcast(&sh->progress);
    pthread_mutex_unlock(&sh->mu);
    free(batch);
    return NULL;
}

static void shard_destroy(struct wq_shard *sh)
{
    pthread_cond_destroy(&sh->progress);
    pthread_cond_destroy(&sh->idle);
    pthread_cond_destroy(&sh->work);
    pthread_mutex_destroy(&sh->mu);
    free(sh->q);
    free(sh->slot);
}

unsigned ingest_writers_default(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 2)
        return 2; /* one writes while the other waits for the disk */
    return cpus > INGEST_WRITERS_MAX ? INGEST_WRITERS_MAX : (unsigned)cpus;
}

int ingest_writer_start_n(pp_app *app, unsigned n)
{
    if (app->rrd_writer != NULL)
        return 0;
    if (n < 1)
        n = 1;
    if (n > INGEST_WRITERS_MAX)
        n = INGEST_WRITERS_MAX;
    struct rrd_writer *w = calloc(1, sizeof *w);
    struct wq_shard *shard = calloc(n, sizeof *shard);
    if (w == NULL || shard == NULL) {
        free(w);
        free(shard);
        return -ENOMEM;
    }
    w->app = app;
    w->shard = shard;
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        struct wq_shard *sh = &shard[i];
        sh->w = w;
        pthread_mutex_init(&sh->mu, NULL);
        pthread_cond_init(&sh->work, NULL);
        pthread_cond_init(&sh->idle, NULL);
        pthread_cond_init(&sh->progress, NULL);
        rc = pthread_create(&sh->thread, NULL, writer_main, sh);
        if (rc != 0) {
            shard_destroy(sh);
            break;
        }
        char name[16];
        snprintf(name, sizeof name, "pp-rrd-%u", i);
        pthread_setname_np(sh->thread, name); /* top -H, perf: which thread writes */
        w->n++;
    }
    if (w->n == 0) {
        log_err_rc("ingest", rc, "cannot start the RRD writer threads: RRD files are written "
                   "before each acknowledgement");
        free(shard);
        free(w);
        return -rc;
    }
    if (w->n < n)
        log_err_rc("ingest", rc, "only %u of %u RRD writer threads started", w->n, n);
    app->rrd_writer = w;
    return 0;
}

int ingest_writer_start(pp_app *app)
{
    return ingest_writer_start_n(app, ingest_writers_default());
}

/* The CLOCK_REALTIME time ms milliseconds from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

void ingest_writer_stop(pp_app *app, int budget_ms)
{
    struct rrd_writer *w = app->rrd_writer;
    if (w == NULL)
        return;
    /* one budget for every thread: they work on their queues side by side */
    struct timespec until = deadline_in(budget_ms);
    if (budget_ms > 0) {
        for (unsigned i = 0; i < w->n; i++) {
            struct wq_shard *sh = &w->shard[i];
            pthread_mutex_lock(&sh->mu);
            sh->hold = false;
            pthread_cond_broadcast(&sh->work);
            pthread_mutex_unlock(&sh->mu);
        }
        for (unsigned i = 0; i < w->n; i++) {
            struct wq_shard *sh = &w->shard[i];
            pthread_mutex_lock(&sh->mu);
            while ((sh->n > 0 || sh->busy) &&
                   pthread_cond_timedwait(&sh->idle, &sh->mu, &until) != ETIMEDOUT) {
            }
            pthread_mutex_unlock(&sh->mu);
        }
    }
    for (unsigned i = 0; i < w->n; i++) {
        struct wq_shard *sh = &w->shard[i];
        pthread_mutex_lock(&sh->mu);
        sh->quit = true;
        sh->abandon = sh->n > 0 || sh->busy; /* the budget is spent: stop after the file in hand */
        pthread_cond_broadcast(&sh->work);
        pthread_mutex_unlock(&sh->mu);
    }
    for (unsigned i = 0; i < w->n; i++)
        pthread_join(w->shard[i].thread, NULL);
    app->rrd_writer = NULL;
    for (unsigned i = 0; i < w->n; i++)
        shard_destroy(&w->shard[i]);
    free(w->shard);
    free(w);
}

/* true when the series waits for its write (under its shard's mu): queued,
 * or taken by the thread and not written yet. */
static bool wq_has(const struct wq_shard *sh, const char *park, const char *ind)
{
    if (sh->n_slots > 0 && sh->slot[wq_slot(sh, park, ind)] != 0)
        return true;
    for (size_t i = sh->k; sh->batch != NULL && i < sh->nb; i++)
        if (strcmp(sh->batch[i].park, park) == 0 && strcmp(sh->batch[i].ind, ind) == 0)
            return true;
    return false;
}

bool ingest_rrd_wait_series(pp_app *app, const char *park, const char *indicator, int timeout_ms)
{
    struct rrd_writer *w = app->rrd_writer;
    if (w == NULL || atomic_load(&w->pending) == 0)
        return true;
    struct wq_shard *sh = wq_shard_of(w, park, indicator);
    struct timespec until = deadline_in(timeout_ms);
    bool ok = true;
    pthread_mutex_lock(&sh->mu);
    while (wq_has(sh, park, indicator)) {
        if (pthread_cond_timedwait(&sh->progress, &sh->mu, &until) == ETIMEDOUT) {
            ok = !wq_has(sh, park, indicator);
            break;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return ok;
}

size_t ingest_rrd_pending(const pp_app *app)
{
    return app->rrd_writer ? atomic_load(&app->rrd_writer->pending) : 0;
}

uint64_t ingest_rrd_written(const pp_app *app)
{
    return app->rrd_writer ? atomic_load(&app->rrd_writer->written) : 0;
}

unsigned ingest_rrd_writers(const pp_app *app)
{
    return app->rrd_writer ? app->rrd_writer->n : 0;
}

int ingest_rrd_writer_of(const pp_app *app, const char *park, const char *indicator)
{
    const struct rrd_writer *w = app->rrd_writer;
    return w ? (int)(wq_shard_of(w, park, indicator) - w->shard) : -1;
}

static void shard_hold(struct wq_shard *sh, bool hold)
{
    pthread_mutex_lock(&sh->mu);
    sh->hold = hold;
    pthread_cond_broadcast(&sh->work);
    pthread_mutex_unlock(&sh->mu);
}

void ingest_writer_hold(pp_app *app, bool hold)
{
    struct rrd_writer *w = app->rrd_writer;
    for (unsigned i = 0; w != NULL && i < w->n; i++)
        shard_hold(&w->shard[i], hold);
}

void ingest_writer_hold_one(pp_app *app, int which, bool hold)
{
    struct rrd_writer *w = app->rrd_writer;
    if (w != NULL && which >= 0 && (unsigned)which < w->n)
        shard_hold(&w->shard[which], hold);
}

/* The alert decisions for the series a commit touched (ingest lock held): the
 * alert engine journals them after the figures and publishes them. */
static void evaluate_touched(pp_app *app, const touched *tv, size_t n)
{
    const char **parks = calloc(n, sizeof *parks);
    const char **inds = calloc(n, sizeof *inds);
    if (parks && inds) {
        for (size_t i = 0; i < n; i++) {
            parks[i] = tv[i].park;
            inds[i] = tv[i].indicator;
        }
        alert_evaluate(app->alerts, parks, inds, n, false);
    } else {
        alert_evaluate(app->alerts, NULL, NULL, 0, true); /* out of memory: every series */
    }
    free(parks);
    free(inds);
}

/* Journals (with the n_dl deliveries they came from, in the same batch),
 * applies, stores and evaluates the alerts of what changed: the one writer
 * path of the daemon (app.h). Called with the ingest lock held. What is new is moved
 * to the front of obs and tg (their order kept), so the arrays are the
 * caller's scratch afterwards. INGEST_ERROR with nothing taken when stopping
 * (see the top of the file). */
static ingest_status commit(pp_app *app, pp_obs *obs, size_t n_obs, pp_target *tg, size_t n_tg,
                            journal_delivery *dl, size_t n_dl, ingest_result *res)
{
    ingest_status st = INGEST_ERROR;
    touched *tv = NULL;
    size_t n_new = 0, n_tg_new = 0, n_touched = 0;
    int64_t now = app_now(app);

    if (n_obs + n_tg > 0) {
        tv = calloc(n_obs + n_tg, sizeof *tv);
        if (tv == NULL) {
            log_err("ingest", "out of memory for a batch of %zu records", n_obs + n_tg);
            goto out;
        }
    }
    /* what is new moves to the front of obs and tg, in order */
    for (size_t i = 0; i < n_obs; i++) {
        if (i % STOP_EVERY_RECORDS == STOP_EVERY_RECORDS - 1 && stopping(app))
            goto stop;
        obs[i].status = pp_obs_status_or_default(obs[i].status);
        if (obs[i].received_at == 0)
            obs[i].received_at = now;
        if (obs_unchanged(app->db, &obs[i])) {
            res->n_unchanged++;
            continue;
        }
        if (n_new != i)
            obs[n_new] = obs[i];
        n_new++;
    }
    for (size_t i = 0; i < n_tg; i++) {
        if (tg[i].received_at == 0)
            tg[i].received_at = now;
        if (target_unchanged(app->db, &tg[i]))
            continue;
        if (n_tg_new != i)
            tg[n_tg_new] = tg[i];
        n_tg_new++;
    }
    for (size_t i = 0; i < n_dl; i++)
        dl[i].received_at = now;
    /* the last look before the append: from here on the batch is taken whole */
    if (stopping(app))
        goto stop;
    res->n_obs += n_new;
    res->n_targets += n_tg_new;
    if (n_new + n_tg_new + n_dl > 0) {
        int rc = journal_append_batch(app->journal, obs, n_new, tg, n_tg_new, dl, n_dl);
        if (rc < 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "journal: cannot write: %s\n", strerror(-rc));
            res->report = strdup(msg);
            res->n_obs = res->n_targets = 0;
            goto out;
        }
    }
    /* A record the db cannot take (out of memory) is journaled all the same:
     * the batch is answered INGEST_ERROR, so that nothing missing from the db
     * is acknowledged; the sender's retry finds it new and applies it (the
     * journal then holds it twice, which replay takes as once). */
    size_t db_failed = 0;
    size_t n_touched_written; /* the RRD files this commit writes itself */
    db_wrlock(app->db);
    for (size_t i = 0; i < n_new; i++) {
        if (db_add_obs(app->db, &obs[i]) < 0)
            db_failed++;
        /* a retraction may shorten the series: its RRD file is rebuilt whole */
        touch(tv, &n_touched, obs[i].park, obs[i].indicator,
              obs[i].status == 'W' ? pp_period_make(PP_PERIOD_MIN_YEAR, 1) : obs[i].period);
    }
    for (size_t i = 0; i < n_tg_new; i++) {
        if (db_add_target(app->db, &tg[i]) < 0)
            db_failed++;
        touch(tv, &n_touched, tg[i].park, tg[i].indicator, pp_period_make(tg[i].year, 1));
    }
    db_unlock(app->db);
    n_touched_written = n_touched;
    /* The journal is the truth: an RRD file that fails to write is logged and
     * its series left dirty (store.h), the figures stay accepted. When these
     * files could be written, the dirty ones of earlier commits are retried
     * too; until they are, app_stop writes no clean-stop marker. When stopping,
     * the files not yet written are marked dirty the same way, so the next
     * start rebuilds them. */
    size_t rrd_failed = 0;
    if (app->rrd_writer != NULL) { /* the writer thread writes them (see ingest.h) */
        for (size_t i = 0; i < n_touched; i++)
            wq_put(app->rrd_writer, tv[i].park, tv[i].indicator, tv[i].changed_from);
        n_touched_written = 0;
    }
    for (size_t i = 0; i < n_touched_written; i++) {
        if (stopping(app)) {
            for (size_t k = i; k < n_touched; k++)
                store_dirty_mark(app->rrd_dir, tv[k].park, tv[k].indicator);
            log_warn("ingest", "stopping: %zu RRD file(s) not written, rebuilt at the next start",
                     n_touched - i);
            rrd_failed += n_touched - i;
            break;
        }
        if (ingest_write_series(app, tv[i].park, tv[i].indicator, tv[i].changed_from) != 0)
            rrd_failed++;
    }
    if (n_touched_written > 0 && rrd_failed == 0)
        retry_dirty_locked(app);
    if (db_failed > 0) {
        log_err("ingest", "out of memory adding %zu record(s) to the db: answered as an error, "
                "to be sent again", db_failed);
        res->report = strdup("out of memory: send again\n");
        res->n_obs = res->n_unchanged = res->n_targets = 0;
    }
    app_count(&app->n_obs_accepted, res->n_obs);
    app_count(&app->n_obs_unchanged, res->n_unchanged);
    app_count(&app->n_targets_accepted, res->n_targets);
    if (n_touched > 0 && app->alerts)
        evaluate_touched(app, tv, n_touched);
    st = db_failed > 0 ? INGEST_ERROR : INGEST_OK;
out:
    free(tv);
    return st;
stop:
    res->n_obs = res->n_unchanged = res->n_targets = 0;
    res->report = strdup(STOP_REPORT);
    goto out;
}

ingest_status ingest_records(pp_app *app, pp_obs *obs, size_t n_obs, pp_target *tg, size_t n_tg,
                             ingest_result *res)
{
    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&app->ingest_lock);
    ingest_status st = commit(app, obs, n_obs, tg, n_tg, NULL, 0, res);
    pthread_mutex_unlock(&app->ingest_lock);
    return st;
}

ingest_status ingest_retract(pp_app *app, const char *park, const char *indicator, int period,
                             const char *source, const char *reason, ingest_result *res)
{
    memset(res, 0, sizeof *res);
    pp_obs o;
    memset(&o, 0, sizeof o);
    snprintf(o.park, sizeof o.park, "%s", park);
    snprintf(o.indicator, sizeof o.indicator, "%s", indicator);
    o.period = period;
    o.status = 'W';
    copy_source(o.source, source ? source : "");
    /* the reason, cut at a character boundary to fit */
    const char *r = reason ? reason : "";
    size_t n = strlen(r);
    if (n > PP_NOTE_MAX) {
        n = PP_NOTE_MAX;
        while (n > 0 && ((unsigned char)r[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(o.note, r, n);
    o.note[n] = '\0';
    pthread_mutex_lock(&app->ingest_lock);
    db_rdlock(app->db);
    db_vintage v;
    bool has = db_series_latest(db_series_get(app->db, park, indicator), period, &v);
    db_unlock(app->db);
    ingest_status st;
    if (!has) {
        char per[16];
        pp_period_format(period, per, sizeof per);
        if (asprintf(&res->report, "%s %s %s 没有可撤回的数据 / no figure to retract\n", park,
                     indicator, per) < 0)
            res->report = NULL;
        st = INGEST_REFUSED;
    } else {
        st = commit(app, &o, 1, NULL, 0, NULL, 0, res);
        if (st == INGEST_OK)
            log_info("ingest", "%s/%s %04d-%02d retracted by %s: %s", park, indicator,
                     pp_period_year(period), pp_period_month(period), o.source, o.note);
    }
    pthread_mutex_unlock(&app->ingest_lock);
    return st;
}

/* Logs the rows an input skipped on purpose (total and note rows, csv.h). */
static void log_skipped(const char *source, const csv_result *cr)
{
    if (cr->n_skipped == 0)
        return;
    char *rep = csv_skipped_report_at(cr, source, NULL);
    log_info("ingest", "%s: %zu row(s) skipped:\n%s", source, cr->n_skipped, rep ? rep : "");
    free(rep);
}

/* ---- batches ------------------------------------------------------------ */

/*
 * ingest_csv_batch gathers the accepted inputs into a chunk and commits the
 * chunk as one: its figures and targets concatenated for commit(). Two inputs
 * of one chunk never touch the same figure (park, indicator, period) or target
 * (park, indicator, year): commit() compares each record with the db as it was
 * before the commit, so a second file that puts back the value a first one
 * changed would be dropped as unchanged. Such an input starts a new chunk,
 * which keeps the outcome of ingesting the inputs one by one. The chunk knows
 * its keys by 64-bit hashes only: a collision merely starts a chunk early.
 * Within one input the CSV reader already refuses duplicates.
 */
#define INGEST_CHUNK_SLOTS (2 * INGEST_BATCH_RECORDS) /* hash slots: at most half full */

typedef struct ingest_chunk {
    pp_obs *obs;
    size_t n_obs, cap_obs;
    pp_target *tg;
    size_t n_tg, cap_tg;
    size_t idx[INGEST_BATCH_FILES];          /* the inputs, by index */
    const char *enc[INGEST_BATCH_FILES];     /* their encodings (static strings) */
    size_t n_files;
    journal_delivery *dl;                    /* the deliveries among them (INGEST_BATCH_FILES) */
    size_t n_dl;
    size_t bytes;
    uint64_t *keys;                          /* INGEST_CHUNK_SLOTS; 0 is a free slot */
} ingest_chunk;

/* FNV-1a of a record's key; never 0. kind is 'O' (period) or 'T' (year). */
static uint64_t chunk_key(const char *park, const char *ind, char kind, int when)
{
    uint64_t h = pp_hash_byte(pp_hash_pair(park, 0xff, ind), (unsigned char)kind);
    for (int i = 0; i < 4; i++)
        h = pp_hash_byte(h, ((unsigned)when >> (8 * i)) & 0xffu);
    return h ? h : 1;
}

/* Looks key up; with add, inserts it when missing. Returns true when it was there. */
static bool chunk_key_seen(ingest_chunk *ch, uint64_t key, bool add)
{
    size_t i = (size_t)(key ^ (key >> 29)) & (INGEST_CHUNK_SLOTS - 1);
    while (ch->keys[i] != 0) {
        if (ch->keys[i] == key)
            return true;
        i = (i + 1) & (INGEST_CHUNK_SLOTS - 1);
    }
    if (add)
        ch->keys[i] = key;
    return false;
}

/* true when cr touches a figure or target that the chunk already holds. */
static bool chunk_overlaps(ingest_chunk *ch, const csv_result *cr)
{
    for (size_t i = 0; i < cr->n_obs; i++) {
        const pp_obs *o = &cr->obs[i];
        if (chunk_key_seen(ch, chunk_key(o->park, o->indicator, 'O', o->period), false))
            return true;
    }
    for (size_t i = 0; i < cr->n_targets; i++) {
        const pp_target *t = &cr->targets[i];
        if (chunk_key_seen(ch, chunk_key(t->park, t->indicator, 'T', t->year), false))
            return true;
    }
    return false;
}

/* Adds input idx's records to the chunk (and its delivery, when d is not
 * NULL), counting into *r what commit() will find new and unchanged (the
 * same: the chunk holds no other record with the same key, and the db changes
 * only at the commit). Returns 0, or -1 when out of memory (the chunk is then
 * as it was). */
static int chunk_add(pp_app *app, ingest_chunk *ch, size_t idx, size_t len, csv_result *cr,
                     const journal_delivery *d, ingest_result *r)
{
    if (PP_VEC_RESERVE(ch->obs, ch->cap_obs, ch->n_obs + cr->n_obs, 256) != 0 ||
        PP_VEC_RESERVE(ch->tg, ch->cap_tg, ch->n_tg + cr->n_targets, 256) != 0)
        return -1;
    for (size_t i = 0; i < cr->n_obs; i++) {
        cr->obs[i].status = pp_obs_status_or_default(cr->obs[i].status);
        if (obs_unchanged(app->db, &cr->obs[i]))
            r->n_unchanged++;
        else
            r->n_obs++;
    }
    for (size_t i = 0; i < cr->n_targets; i++)
        if (!target_unchanged(app->db, &cr->targets[i]))
            r->n_targets++;
    if (cr->n_obs > 0)
        memcpy(ch->obs + ch->n_obs, cr->obs, cr->n_obs * sizeof *cr->obs);
    if (cr->n_targets > 0)
        memcpy(ch->tg + ch->n_tg, cr->targets, cr->n_targets * sizeof *cr->targets);
    ch->n_obs += cr->n_obs;
    ch->n_tg += cr->n_targets;
    /* A chunk above the record bound takes no further input: its keys are not needed. */
    if (ch->n_obs + ch->n_tg <= INGEST_BATCH_RECORDS) {
        for (size_t i = 0; i < cr->n_obs; i++) {
            const pp_obs *o = &cr->obs[i];
            chunk_key_seen(ch, chunk_key(o->park, o->indicator, 'O', o->period), true);
        }
        for (size_t i = 0; i < cr->n_targets; i++) {
            const pp_target *t = &cr->targets[i];
            chunk_key_seen(ch, chunk_key(t->park, t->indicator, 'T', t->year), true);
        }
    }
    ch->idx[ch->n_files] = idx;
    ch->enc[ch->n_files++] = cr->encoding;
    ch->bytes += len;
    if (d != NULL)
        ch->dl[ch->n_dl++] = *d;
    return 0;
}

/* true when the chunk holds a delivery of this identity. */
static bool chunk_has_delivery(const ingest_chunk *ch, const journal_delivery *d)
{
    for (size_t i = 0; i < ch->n_dl; i++)
        if (ch->dl[i].hash == d->hash && ch->dl[i].size == d->size &&
            strcmp(ch->dl[i].name, d->name) == 0)
            return true;
    return false;
}

/* Fills d with the identity of input in (a delivery). */
static void delivery_of(const ingest_input *in, journal_delivery *d)
{
    memset(d, 0, sizeof *d);
    d->hash = journal_hash(in->data, in->len);
    d->size = in->len;
    size_t n = strlen(in->delivery);
    if (n > JOURNAL_NAME_MAX) { /* cut at a UTF-8 character boundary */
        n = JOURNAL_NAME_MAX;
        while (n > 0 && ((unsigned char)in->delivery[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(d->name, in->delivery, n);
    d->name[n] = '\0';
}

/* true when an input of len bytes read into cr must start a new chunk. */
static bool chunk_full(ingest_chunk *ch, size_t len, const csv_result *cr)
{
    return ch->n_files > 0 &&
           (ch->n_files == INGEST_BATCH_FILES || ch->bytes + len > INGEST_BATCH_BYTES ||
            ch->n_obs + ch->n_tg + cr->n_obs + cr->n_targets > INGEST_BATCH_RECORDS ||
            chunk_overlaps(ch, cr));
}

/* Commits the chunk, gives each of its inputs its status and log line, and
 * empties the chunk. Called with the ingest lock held. */
static void chunk_commit(pp_app *app, ingest_chunk *ch, const ingest_input *in, ingest_status *st,
                         ingest_result *res)
{
    ingest_result all;
    memset(&all, 0, sizeof all);
    ingest_status cst = commit(app, ch->obs, ch->n_obs, ch->tg, ch->n_tg, ch->dl, ch->n_dl, &all);
    for (size_t k = 0; k < ch->n_files; k++) {
        size_t i = ch->idx[k];
        ingest_result *r = &res[i];
        if (cst == INGEST_OK) {
            st[i] = INGEST_OK;
            app_count(&app->n_files_ok, 1);
            log_info("ingest", "%s: %zu figure(s) and %zu target(s) accepted, %zu unchanged (%s)",
                     in[i].source, r->n_obs, r->n_targets, r->n_unchanged, ch->enc[k]);
        } else {
            st[i] = INGEST_ERROR;
            r->n_obs = r->n_unchanged = r->n_targets = 0;
            free(r->warnings); /* nothing was taken: nothing to warn about */
            r->warnings = NULL;
            r->report = all.report ? strdup(all.report) : NULL;
            log_err("ingest", "%s: not stored: %s", in[i].source,
                    all.report ? all.report : "error");
        }
    }
    free(all.report);
    ch->n_obs = ch->n_tg = ch->n_files = ch->bytes = ch->n_dl = 0;
    memset(ch->keys, 0, INGEST_CHUNK_SLOTS * sizeof *ch->keys);
}

/*
 * The chunk of the last batch is kept for the next one (one, for whichever
 * thread ingests next): its arrays are then already in memory, where a new
 * chunk's — a spool batch's figures are about 15 MB — were faulted in page by
 * page at every batch and handed back to the system at its end, a tenth of
 * the spool thread's time. One whose figures array grew past twice a
 * commit's bound (an input above the bound alone) is not kept.
 */
static pthread_mutex_t chunk_spare_lock = PTHREAD_MUTEX_INITIALIZER;
static ingest_chunk *chunk_spare;

static void chunk_free(ingest_chunk *ch)
{
    if (ch == NULL)
        return;
    free(ch->obs);
    free(ch->tg);
    free(ch->keys);
    free(ch->dl);
    free(ch);
}

/* An empty chunk (the spare one, or a new one); NULL when out of memory. */
static ingest_chunk *chunk_get(void)
{
    pthread_mutex_lock(&chunk_spare_lock);
    ingest_chunk *ch = chunk_spare;
    chunk_spare = NULL;
    pthread_mutex_unlock(&chunk_spare_lock);
    if (ch != NULL)
        return ch;
    ch = calloc(1, sizeof *ch);
    if (ch != NULL) {
        ch->keys = calloc(INGEST_CHUNK_SLOTS, sizeof *ch->keys);
        ch->dl = calloc(INGEST_BATCH_FILES, sizeof *ch->dl);
    }
    if (ch == NULL || ch->keys == NULL || ch->dl == NULL) {
        chunk_free(ch);
        return NULL;
    }
    return ch;
}

/* Keeps ch as the spare chunk, emptied, or frees it. */
static void chunk_put(ingest_chunk *ch)
{
    if (ch == NULL)
        return;
    if (ch->cap_obs > 2 * INGEST_BATCH_RECORDS || ch->cap_tg > 2 * INGEST_BATCH_RECORDS) {
        chunk_free(ch);
        return;
    }
    if (ch->n_files > 0) /* not committed (cannot be: chunk_commit empties it) */
        memset(ch->keys, 0, INGEST_CHUNK_SLOTS * sizeof *ch->keys);
    ch->n_obs = ch->n_tg = ch->n_files = ch->bytes = ch->n_dl = 0;
    pthread_mutex_lock(&chunk_spare_lock);
    ingest_chunk *old = chunk_spare;
    chunk_spare = ch;
    pthread_mutex_unlock(&chunk_spare_lock);
    chunk_free(old);
}

/* Gives input i the answer for "not taken: stopping". */
static void not_taken(ingest_status *st, ingest_result *res, size_t i)
{
    free(res[i].report);
    free(res[i].warnings);
    memset(&res[i], 0, sizeof res[i]);
    st[i] = INGEST_ERROR;
    res[i].report = strdup(STOP_REPORT);
}

ingest_status ingest_csv_batch(pp_app *app, size_t n, const ingest_input *in, ingest_status *st,
                               ingest_result *res)
{
    ingest_chunk *ch = NULL;
    ingest_status worst = INGEST_OK;

    if (n == 0)
        return INGEST_OK;
    if (in == NULL || st == NULL || res == NULL)
        return INGEST_ERROR;
    memset(res, 0, n * sizeof *res);
    ch = chunk_get();
    if (ch == NULL) {
        log_err("ingest", "out of memory for a batch of %zu input(s)", n);
        for (size_t i = 0; i < n; i++) {
            st[i] = INGEST_ERROR;
            res[i].report = strdup("out of memory\n");
        }
        worst = INGEST_ERROR;
        goto out;
    }

    pthread_mutex_lock(&app->ingest_lock);
    size_t i = 0;
    for (; i < n && !stopping(app); i++) {
        csv_result cr;
        const char *source = in[i].source;
        journal_delivery d;
        int64_t at;
        if (in[i].delivery != NULL) {
            delivery_of(&in[i], &d);
            if (journal_delivery_known(app->journal, d.name, d.size, d.hash, &at) ||
                chunk_has_delivery(ch, &d)) {
                char when[40] = "now, in this batch";
                if (!chunk_has_delivery(ch, &d))
                    app_format_time(at, when, sizeof when);
                st[i] = INGEST_OK;
                app_count(&app->n_files_ok, 1);
                log_info("ingest", "%s: already ingested, nothing to do (%s, %zu bytes, "
                         "journaled at %s)", source, d.name, in[i].len, when);
                continue;
            }
        }
        if (in[i].len >= LOG_LARGE_INPUT)
            log_info("ingest", "%s: reading %zu bytes", source, in[i].len);
        char *report = NULL;
        int prc = parse_input(app, source, in[i].data, in[i].len, &cr, &report);
        if (cr.stopped) {
            log_warn("ingest", "%s: not taken: stopping", source);
            free(report);
            csv_result_free(&cr);
            break;
        }
        if (cr.out_of_memory) {
            /* not the sender's fault: not taken, read again later */
            free(report);
            res[i].report = strdup(NOMEM_REPORT);
            log_err("ingest", "%s: not taken: out of memory while reading it", source);
            st[i] = INGEST_ERROR;
            csv_result_free(&cr);
            continue;
        }
        if (prc != 0 || cr.n_errors_total > 0) {
            res[i].report = report;
            app_count(&app->n_files_refused, 1);
            log_warn("ingest", "refused %s: %zu bad row(s)", source, cr.n_errors_total);
            st[i] = INGEST_REFUSED;
            csv_result_free(&cr);
            continue;
        }
        log_skipped(source, &cr);
        for (size_t k = 0; k < cr.n_obs; k++)
            if (cr.obs[k].source[0] == '\0')
                copy_source(cr.obs[k].source, source);
        for (size_t k = 0; k < cr.n_targets; k++)
            if (cr.targets[k].source[0] == '\0')
                copy_source(cr.targets[k].source, source);
        if (chunk_full(ch, in[i].len, &cr))
            chunk_commit(app, ch, in, st, res);
        char *warnings = cumulative_warnings(app, source, &cr);
        if (chunk_add(app, ch, i, in[i].len, &cr, in[i].delivery ? &d : NULL, &res[i]) != 0) {
            memset(&res[i], 0, sizeof res[i]);
            res[i].report = strdup("out of memory\n");
            st[i] = INGEST_ERROR;
            log_err("ingest", "%s: not stored: out of memory", source);
            free(warnings);
        } else {
            res[i].warnings = warnings;
            if (warnings)
                log_warn("ingest", "%s: accepted with warnings:\n%s", source, warnings);
        }
        csv_result_free(&cr);
    }
    /* stopping: what the chunk holds is refused by commit() as a whole */
    if (ch->n_files > 0)
        chunk_commit(app, ch, in, st, res);
    if (i < n)
        log_warn("ingest", "stopping: %zu input(s) not taken, read again at the next start",
                 n - i);
    for (; i < n; i++)
        not_taken(st, res, i);
    pthread_mutex_unlock(&app->ingest_lock);

    for (size_t k = 0; k < n; k++)
        if (st[k] == INGEST_ERROR || (st[k] == INGEST_REFUSED && worst == INGEST_OK))
            worst = st[k];
out:
    chunk_put(ch);
    return worst;
}

/* One input is a batch of one: the same parsing, refusal, commit and log. */
ingest_status ingest_csv(pp_app *app, const char *source, const char *data, size_t len,
                         ingest_result *res)
{
    ingest_input in = { .source = source, .data = data, .len = len, .delivery = NULL };
    ingest_status st;
    ingest_csv_batch(app, 1, &in, &st, res);
    return st;
}

/* The target in force per (series, year) while replaying: which T record set
 * it, so that a later one that replaces it marks it superseded. */
typedef struct tkey {
    const db_series *s;  /* NULL: free slot */
    int year;
    uint64_t record;
} tkey;

/* The last alert-engine line per (series, kind) while replaying (kind: the
 * status, or the overdue flag — alert.c keeps them apart): a "state" line
 * followed by another line of the same series and kind is superseded. */
typedef struct ekey {
    char *key;           /* "park indicator k" (k: s status, o overdue flag); NULL: free */
    uint64_t record;
    bool is_state;       /* a quiet "state" line (an "alert" line is never dropped) */
} ekey;

typedef struct replay_ctx {
    pp_app *app;
    ingest_superseded *sup; /* NULL: nothing noted (ingest_replay) */
    tkey *tk;
    size_t tk_cap, tk_n;
    ekey *ek;
    size_t ek_cap, ek_n;
} replay_ctx;

static int sup_mark(ingest_superseded *sup, uint64_t i)
{
    if (i / 8 >= sup->cap) {
        size_t cap = sup->cap ? sup->cap * 2 : 4096;
        while (i / 8 >= cap)
            cap *= 2;
        uint8_t *b = realloc(sup->bits, cap);
        if (b == NULL)
            return -ENOMEM;
        memset(b + sup->cap, 0, cap - sup->cap);
        sup->bits = b;
        sup->cap = cap;
    }
    sup->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    sup->n_superseded++;
    return 0;
}

static size_t tkey_slot(const tkey *tab, size_t cap, const db_series *s, int year)
{
    uint64_t h = ((uint64_t)(uintptr_t)s ^ ((uint64_t)(uint32_t)year << 40)) * 0x9e3779b97f4a7c15u;
    size_t i = (size_t)(h >> 20) & (cap - 1);
    while (tab[i].s != NULL && !(tab[i].s == s && tab[i].year == year))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Notes that record i set the target of (s, year); marks the one it replaced. */
static int tkey_set(replay_ctx *c, const db_series *s, int year, uint64_t i)
{
    if ((c->tk_n + 1) * 2 > c->tk_cap) {
        size_t cap = c->tk_cap ? c->tk_cap * 2 : 1024;
        tkey *tab = calloc(cap, sizeof *tab);
        if (tab == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < c->tk_cap; k++)
            if (c->tk[k].s != NULL)
                tab[tkey_slot(tab, cap, c->tk[k].s, c->tk[k].year)] = c->tk[k];
        free(c->tk);
        c->tk = tab;
        c->tk_cap = cap;
    }
    tkey *k = &c->tk[tkey_slot(c->tk, c->tk_cap, s, year)];
    if (k->s != NULL) {
        uint64_t replaced = k->record;
        k->record = i;
        return sup_mark(c->sup, replaced);
    }
    *k = (tkey){ .s = s, .year = year, .record = i };
    c->tk_n++;
    return 0;
}

static size_t ekey_slot(const ekey *tab, size_t cap, const char *key)
{
    size_t i = (size_t)pp_hash_str(key) & (cap - 1);
    while (tab[i].key != NULL && strcmp(tab[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

/*
 * An event line as the alert engine reads it (alert.c, alert_replay_event):
 *   state <park> <indicator> <period> <status>
 *   alert <seq> <park> <indicator> <period> <status>[/N] {…}
 * Only a line it takes (valid ids, period and status) counts: for every
 * other line (silences, malformed lines) key is left empty. od: the status is
 * the overdue flag's (overdue, received).
 */
static bool event_key(const char *ev, char *key, size_t len, bool *is_state)
{
    static const pp_status known[] = { PP_STATUS_OK, PP_STATUS_WARNING, PP_STATUS_CRITICAL,
                                       PP_STATUS_NO_TARGET, PP_STATUS_STALE, PP_STATUS_NO_DATA,
                                       PP_STATUS_OVERDUE, PP_STATUS_RECEIVED };
    char park[PP_ID_MAX + 2], ind[PP_ID_MAX + 2], per[16], st[24];
    unsigned long long seq;
    int period, n = 0;
    *is_state = strncmp(ev, "state ", 6) == 0;
    if (*is_state) {
        if (sscanf(ev, "state %65s %65s %15s %23s%n", park, ind, per, st, &n) != 4 || ev[n] != '\0')
            return false;
    } else if (strncmp(ev, "alert ", 6) == 0) {
        if (sscanf(ev, "alert %llu %65s %65s %15s %23s %n", &seq, park, ind, per, st, &n) != 5 ||
            n == 0 || ev[n] != '{')
            return false;
        char *slash = strchr(st, '/');
        if (slash != NULL)
            *slash = '\0'; /* the occurrence: the same status as far as the state goes */
    } else {
        return false;
    }
    if (!pp_id_valid(park) || !pp_id_valid(ind) || pp_period_parse_canonical(per, &period) != 0)
        return false;
    size_t k = 0;
    while (k < sizeof known / sizeof known[0] && strcmp(pp_status_name(known[k]), st) != 0)
        k++;
    if (k == sizeof known / sizeof known[0])
        return false;
    bool od = known[k] == PP_STATUS_OVERDUE || known[k] == PP_STATUS_RECEIVED;
    return (size_t)snprintf(key, len, "%s %s %c", park, ind, od ? 'o' : 's') < len;
}

/* Notes event record i; marks the "state" line it replaces. */
static int ekey_note(replay_ctx *c, const char *ev, uint64_t i)
{
    char key[2 * PP_ID_MAX + 8];
    bool is_state;
    if (!event_key(ev, key, sizeof key, &is_state))
        return 0;
    if ((c->ek_n + 1) * 2 > c->ek_cap) {
        size_t cap = c->ek_cap ? c->ek_cap * 2 : 1024;
        ekey *tab = calloc(cap, sizeof *tab);
        if (tab == NULL)
            return -ENOMEM;
        for (size_t k = 0; k < c->ek_cap; k++)
            if (c->ek[k].key != NULL)
                tab[ekey_slot(tab, cap, c->ek[k].key)] = c->ek[k];
        free(c->ek);
        c->ek = tab;
        c->ek_cap = cap;
    }
    ekey *e = &c->ek[ekey_slot(c->ek, c->ek_cap, key)];
    if (e->key == NULL) {
        if ((e->key = strdup(key)) == NULL)
            return -ENOMEM;
        c->ek_n++;
    } else if (e->is_state && sup_mark(c->sup, e->record) < 0) {
        return -ENOMEM;
    }
    e->record = i;
    e->is_state = is_state;
    return 0;
}

static void replay_ctx_free(replay_ctx *c)
{
    for (size_t k = 0; k < c->ek_cap; k++)
        free(c->ek[k].key);
    free(c->ek);
    free(c->tk);
}

static int replay_one(const journal_record *r, void *ud)
{
    replay_ctx *c = ud;
    pp_app *app = c->app;
    uint64_t i = c->sup ? c->sup->n_records++ : 0;
    if (r->type == JREC_OBS) {
        int rc = db_add_obs(app->db, &r->obs);
        if (rc < 0)
            return -ENOMEM;
        if (c->sup) {
            c->sup->n_switches += !r->same_series; /* see ingest_scattered */
            if (rc == 0 && sup_mark(c->sup, i) < 0)
                return -ENOMEM;
        }
    } else if (r->type == JREC_TARGET) {
        int rc = db_add_target(app->db, &r->target);
        if (rc < 0)
            return -ENOMEM;
        if (c->sup) {
            c->sup->n_switches += !r->same_series;
            if (rc == 0)
                rc = sup_mark(c->sup, i);
            else
                rc = tkey_set(c, db_series_get(app->db, r->target.park, r->target.indicator),
                              r->target.year, i);
            if (rc < 0)
                return -ENOMEM;
        }
    } else if (r->type == JREC_EVENT) {
        /* a silence (silence.c), else an alert decision; anything else is ignored */
        if (silence_replay_event(app->silences, r->event) != 0 && app->alerts)
            alert_replay_event(app->alerts, r->event);
        if (c->sup && ekey_note(c, r->event, i) < 0)
            return -ENOMEM;
    } /* JREC_DELIVERY: the journal itself remembers them (journal_delivery_known) */
    return 0;
}

int ingest_replay(pp_app *app)
{
    replay_ctx c = { .app = app };
    db_wrlock(app->db);
    int rc = journal_replay(app->journal, replay_one, &c);
    db_unlock(app->db);
    if (rc != 0)
        log_err_rc("ingest", rc < 0 ? -rc : EIO, "journal replay failed");
    return rc;
}

/* The figure replay_one will add a few records later: its series' slot,
 * series and cells into the cache (db_prefetch). */
static void replay_ahead(const journal_record *r, int stage, void *ud)
{
    const replay_ctx *c = ud;
    if (r->type == JREC_OBS && !r->same_series) /* else the series replay_one adds to now */
        db_prefetch(c->app->db, r->obs.park, r->obs.indicator, r->obs.period, stage);
}

int ingest_open_replay(pp_app *app, const char *dir, ingest_superseded *sup)
{
    replay_ctx c = { .app = app, .sup = sup };
    db_wrlock(app->db);
    int rc = journal_open_replay(dir, replay_one, replay_ahead, &c, &app->journal);
    db_unlock(app->db);
    replay_ctx_free(&c);
    if (rc != 0)
        log_err_rc("ingest", rc < 0 ? -rc : EIO, "journal replay failed");
    return rc;
}

uint64_t ingest_scattered(const ingest_superseded *sup, size_t n_series)
{
    return sup->n_switches > n_series ? sup->n_switches - n_series : 0;
}

bool ingest_compact_due(const ingest_superseded *sup, size_t n_series)
{
    uint64_t live = sup->n_records - sup->n_superseded;
    uint64_t scattered = ingest_scattered(sup, n_series);
    return (sup->n_superseded >= INGEST_COMPACT_MIN && sup->n_superseded >= live) ||
           (scattered >= INGEST_COMPACT_SCATTERED_MIN &&
            scattered >= sup->n_records / INGEST_COMPACT_SCATTERED_PART);
}

int ingest_compact(pp_app *app, const ingest_superseded *sup, bool force, uint64_t *dropped)
{
    if (dropped != NULL)
        *dropped = 0;
    size_t n_series = db_series_count(app->db);
    if (!force && !ingest_compact_due(sup, n_series)) {
        if (sup->n_superseded > 0 || ingest_scattered(sup, n_series) > 0)
            log_info("ingest", "journal: %" PRIu64 " of %" PRIu64 " records superseded, %" PRIu64
                     " out of series order: not compacted yet", sup->n_superseded,
                     sup->n_records, ingest_scattered(sup, n_series));
        return 0;
    }
    pthread_mutex_lock(&app->ingest_lock);
    if (journal_count(app->journal) != sup->n_records) {
        pthread_mutex_unlock(&app->ingest_lock);
        log_err("ingest", "the journal grew since its replay: not compacted");
        return -EAGAIN;
    }
    int rc = journal_compact(app->journal, sup->bits, (uint64_t)sup->cap * 8, dropped);
    pthread_mutex_unlock(&app->ingest_lock);
    return rc;
}

void ingest_superseded_free(ingest_superseded *sup)
{
    free(sup->bits);
    *sup = (ingest_superseded){ 0 };
}

/* A rebuild's series, sorted by park, taken one park at a time by the
 * rebuilding threads: each thread writes in its own park's directory, as
 * the RRD writers do (creating files in one directory is serialised by the
 * kernel). */
typedef char rebuild_key[2][PP_ID_MAX + 1];

struct rebuild {
    pp_app *app;
    rebuild_key *keys;
    size_t n;
    size_t next;             /* the first key not taken yet; under mu */
    pthread_mutex_t mu;
    atomic_int failed;
};

static int rebuild_key_cmp(const void *a, const void *b)
{
    const rebuild_key *x = a, *y = b;
    int c = strcmp((*x)[0], (*y)[0]);
    return c ? c : strcmp((*x)[1], (*y)[1]);
}

static void *rebuild_main(void *arg)
{
    struct rebuild *rb = arg;
    for (;;) {
        pthread_mutex_lock(&rb->mu);
        size_t from = rb->next, to = from;
        while (to < rb->n && strcmp(rb->keys[to][0], rb->keys[from][0]) == 0)
            to++;
        rb->next = to;
        pthread_mutex_unlock(&rb->mu);
        if (from == to)
            return NULL;
        for (size_t i = from; i < to; i++)
            if (ingest_write_series(rb->app, rb->keys[i][0], rb->keys[i][1],
                                    pp_period_make(PP_PERIOD_MIN_YEAR, 1)) != 0)
                atomic_fetch_add(&rb->failed, 1);
    }
}

int ingest_rebuild_all(pp_app *app)
{
    struct rebuild rb = { .app = app };
    db_rdlock(app->db);
    rb.n = db_series_count(app->db);
    rb.keys = calloc(rb.n ? rb.n : 1, sizeof *rb.keys);
    if (rb.keys == NULL) {
        db_unlock(app->db);
        return -1;
    }
    for (size_t i = 0; i < rb.n; i++) {
        const db_series *s = db_series_at(app->db, i);
        snprintf(rb.keys[i][0], sizeof rb.keys[i][0], "%s", s->park);
        snprintf(rb.keys[i][1], sizeof rb.keys[i][1], "%s", s->indicator);
    }
    db_unlock(app->db);
    qsort(rb.keys, rb.n, sizeof *rb.keys, rebuild_key_cmp);
    pthread_mutex_init(&rb.mu, NULL);
    atomic_init(&rb.failed, 0);

    /* the threads of the RRD writers' count; this thread is one of them */
    pthread_t threads[INGEST_WRITERS_MAX];
    unsigned started = 0, want = ingest_writers_default();
    for (unsigned i = 1; i < want; i++) {
        int rc = pthread_create(&threads[started], NULL, rebuild_main, &rb);
        if (rc != 0) {
            log_err_rc("ingest", rc, "cannot start a rebuilding thread: fewer write at once");
            break;
        }
        started++;
    }
    rebuild_main(&rb);
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&rb.mu);
    free(rb.keys);
    return atomic_load(&rb.failed);
}

void ingest_evaluate_all(pp_app *app)
{
    if (app->alerts == NULL)
        return;
    pthread_mutex_lock(&app->ingest_lock);
    alert_evaluate(app->alerts, NULL, NULL, 0, true);
    pthread_mutex_unlock(&app->ingest_lock);
}
