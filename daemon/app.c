/*
 * app.c — the daemon's wiring and its read view (app.h).
 *
 * app_open/app_start/app_stop make and undo the daemon in the start-up order
 * of docs/ARCHITECTURE.md; they are the only place that knows which room is
 * made before which. The clean-stop marker lives here too: <state_dir>/rrd/
 * .clean holds the journal's record count, written at a clean stop once the
 * RRD files are durable, and removed (durably) at the next start before any
 * RRD write; without it the RRD files may lag the journal and are rebuilt.
 *
 * view_begin takes cfg_lock, then the db lock (the order of app.h). The
 * configured timezone is put into TZ once at start-up (before any thread
 * starts), so localtime_r is safe from every thread afterwards.
 */
#include "app.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "bus.h"
#include "graph.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "plugin.h"
#include "preflight.h"
#include "silence.h"
#include "store.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void view_begin(pp_app *app, pp_view *v)
{
    pthread_rwlock_rdlock(&app->cfg_lock);
    db_rdlock(app->db);
    v->cfg = app->cfg;
    v->cfg_generation = app->cfg_generation;
    v->db = app->db;
    v->alerts = app->alerts;
    v->now = app_now(app);
    v->held.cfg_lock = &app->cfg_lock;
    v->held.db = app->db;
}

void view_end(pp_view *v)
{
    db_unlock(v->held.db);
    pthread_rwlock_unlock(v->held.cfg_lock);
    v->held.cfg_lock = NULL;
    v->held.db = NULL;
}

int64_t app_now(const pp_app *app)
{
    if (app && app->fixed_now)
        return app->fixed_now;
    return (int64_t)time(NULL);
}

void app_local_date(int64_t t, int *year, int *month, int *day)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    *year = tm.tm_year + 1900;
    *month = tm.tm_mon + 1;
    *day = tm.tm_mday;
}

char *app_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 3600,
             (off % 3600) / 60);
    return buf;
}

int app_parse_time(const char *s, int64_t *t)
{
    if (s == NULL || *s == '\0')
        return -1;
    if (s[0] == '@') {
        char *end;
        long long v = strtoll(s + 1, &end, 10);
        if (*end != '\0' || v < 0)
            return -1;
        *t = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return -1;
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        int n2 = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &se, &n2) != 3)
            return -1;
        p += 1 + n2;
    }
    if (y < 1970 || y > 2199 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        time_t r = mktime(&tm);
        if (r == (time_t)-1)
            return -1;
        *t = r;
        return 0;
    }
    long off = 0;
    if (*p == 'Z' && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 14 || om > 59)
            return -1;
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    time_t r = timegm(&tm);
    if (r == (time_t)-1)
        return -1;
    *t = (int64_t)r - off;
    return 0;
}

/* ---- the state directory ---- */

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* true when the clean-stop marker (see the top) holds count; removes it. */
static bool clean_marker_matches(const char *rrd_dir, uint64_t count)
{
    char path[4200], buf[64];
    snprintf(path, sizeof path, "%s/.clean", rrd_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool ok = fgets(buf, sizeof buf, f) != NULL && strtoull(buf, NULL, 10) == count;
    fclose(f);
    /* Gone for good before any RRD write: store.c does not fsync the files, so
     * a crash from here on must find no marker and rebuild them all. */
    int dfd = open(rrd_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (unlink(path) != 0 || dfd < 0 || fsync(dfd) != 0) {
        log_errno("main", "cannot remove %s durably", path);
        ok = false;
    }
    if (dfd >= 0)
        close(dfd);
    return ok;
}

static void write_clean_marker(const char *rrd_dir, uint64_t count)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.clean", rrd_dir);
    /* a series whose RRD write failed (store.h) is not in its file yet */
    size_t dirty = store_dirty_count(rrd_dir);
    if (dirty > 0) {
        log_warn("main", "%zu RRD file(s) could not be written: no clean-stop marker, they are "
                 "rebuilt at the next start", dirty);
        return;
    }
    /* The RRD files are written without fsync (store.c): make them durable
     * first, so that the marker never vouches for what is only in memory. */
    int dfd = open(rrd_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || syncfs(dfd) != 0) {
        log_err("main", "cannot sync the RRD files in %s: %s; they are rebuilt at the next start",
                rrd_dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return;
    }
    close(dfd);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fprintf(f, "%llu\n", (unsigned long long)count);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
}

/* Raises the soft limit of open descriptors to the hard one (the unit's
 * LimitNOFILE): connections are bounded by configuration, not by the default
 * soft limit of 1,024. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn_errno("main", "cannot raise the open-files limit from %llu to %llu",
                 (unsigned long long)was, (unsigned long long)rl.rlim_max);
}

/* ---- app_open: up to the replayed state ---- */

static int open_config(pp_app *app, const app_options *o)
{
    char err[8192] = "";
    app->cfg = conf_load(o->conf_file, err, sizeof err);
    /* a daemon that serves is refused for what start-up would refuse later
     * (preflight.c: state_dir, plugins, exec commands, ports) */
    if (app->cfg == NULL ||
        (o->serve && !o->rebuild && preflight_check(app->cfg, err, sizeof err, NULL, 0) > 0)) {
        /* once: on stderr, and in the system log only when logging goes there */
        fprintf(stderr, "%s", err);
        if (!o->foreground)
            for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
                log_err("config", "%s", line);
        return APP_EX_CONFIG;
    }
    setenv("TZ", app->cfg->timezone, 1);
    tzset();
    app->fixed_now = o->fixed_now;
    if (o->now && app_parse_time(o->now, &app->fixed_now) != 0) {
        fprintf(stderr, "parkpulsed: bad --now '%s'\n", o->now);
        return APP_EX_USAGE;
    }
    app->started_at = app_now(app);
    return 0;
}

/* The state directory, its journal/ and rrd/, and its lock. */
static int open_state_dir(pp_app *app)
{
    const char *dir = app->cfg->state_dir;
    char journal_dir[4200], lock_path[4200];
    snprintf(journal_dir, sizeof journal_dir, "%s/journal", dir);
    snprintf(app->rrd_dir, sizeof app->rrd_dir, "%s/rrd", dir);
    snprintf(lock_path, sizeof lock_path, "%s/parkpulsed.lock", dir);
    if (mkdir_p(dir, 0750) != 0 || mkdir_p(journal_dir, 0750) != 0 || mkdir_p(app->rrd_dir, 0755) != 0) {
        log_errno("main", "cannot create the state directory %s", dir);
        return APP_EX_CANTCREAT;
    }
    app->run.lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (app->run.lock_fd < 0 || flock(app->run.lock_fd, LOCK_EX | LOCK_NB) != 0) {
        log_errno("main", "%s is in use by another parkpulsed (or unwritable)", dir);
        return APP_EX_CANTCREAT;
    }
    return 0;
}

/* The graph workers (forked now, while this process has no other thread) and
 * the HTTP socket, early, so that a supervisor sees 503 "starting" rather
 * than nothing while the journal is replayed (app->ready is still false). */
static int open_serving(pp_app *app)
{
    raise_nofile();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    app->graphs = graph_pool_start(app->rrd_dir, ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu);
    app->graph_cache = graph_cache_new(32u << 20);
    if (app->graphs == NULL || app->graph_cache == NULL)
        log_warn("graph", "no graph workers: graphs are rendered in-process, one at a time");
    app->run.http = http_start(app);
    return app->run.http ? 0 : APP_EX_SOFTWARE;
}

/* The journal checked (a journal emptied in a used state directory is damage,
 * not a new start) or recovered, opened and replayed into the db and the
 * alert engine. */
static int open_journal(pp_app *app, const app_options *o, ingest_superseded *sup)
{
    char journal_dir[4200], err[8192] = "";
    snprintf(journal_dir, sizeof journal_dir, "%s/journal", app->cfg->state_dir);
    int jc = o->recover ? journal_recover(journal_dir, app->rrd_dir)
                        : journal_check(journal_dir, app->rrd_dir, err, sizeof err);
    if (jc != 0) {
        if (jc > 0) {
            log_err("main", "refusing to start: %s", err);
            if (!o->foreground)
                fprintf(stderr, "parkpulsed: refusing to start: %s\n", err);
        }
        return jc > 0 ? APP_EX_DATAERR : APP_EX_IOERR;
    }
    app->db = db_new();
    if (app->db == NULL)
        return APP_EX_IOERR;
    if (o->alerts && (app->alerts = alert_new(app)) == NULL)
        return APP_EX_IOERR;
    if ((app->silences = silence_new()) == NULL)
        return APP_EX_IOERR;
    double t0 = mono_s();
    if (ingest_open_replay(app, journal_dir, sup) != 0)
        return APP_EX_IOERR;
    log_info("main", "journal replayed: %llu records (%llu superseded), %zu series, in %.3f s",
             (unsigned long long)journal_count(app->journal),
             (unsigned long long)sup->n_superseded, db_series_count(app->db), mono_s() - t0);
    return 0;
}

/* Compaction (README, Storage): after the clean-stop marker was read (it
 * counted the records before) and the RRD files rebuilt if need be — the
 * RRD files do not change, and the marker written at the next clean stop
 * counts the compacted journal. */
static int compact_journal(pp_app *app, const app_options *o, const ingest_superseded *sup)
{
    uint64_t before = journal_count(app->journal), dropped = 0;
    uint64_t scattered = ingest_scattered(sup, db_series_count(app->db));
    bool due = o->compact || ingest_compact_due(sup, db_series_count(app->db));
    double t0 = mono_s();
    int rc = ingest_compact(app, sup, o->compact, &dropped);
    if (rc < 0) {
        log_err_rc("main", -rc, "journal compaction failed: the journal is unchanged");
        return o->compact ? APP_EX_IOERR : 0; /* the daemon runs on the journal as it is */
    }
    if (due)
        log_info("main", "journal compacted: %llu records → %llu (%llu superseded dropped, %llu "
                 "put back in series order) in %.3f s", (unsigned long long)before,
                 (unsigned long long)journal_count(app->journal), (unsigned long long)dropped,
                 (unsigned long long)scattered, mono_s() - t0);
    return 0;
}

int app_open(pp_app *app, const app_options *o)
{
    memset(app, 0, sizeof *app);
    app->run.lock_fd = -1;
    int rc = app_locks_init(app);
    if (rc != 0) {
        log_err_rc("main", rc, "cannot initialise the locks");
        return APP_EX_SOFTWARE;
    }
    app->run.locks = true;
    ingest_superseded sup = { 0 };
    if ((rc = open_config(app, o)) != 0 || (rc = open_state_dir(app)) != 0 ||
        (o->serve && (rc = open_serving(app)) != 0) || (rc = open_journal(app, o, &sup)) != 0) {
        ingest_superseded_free(&sup);
        return rc;
    }
    /* the marker goes first, also for --rebuild: a crash amid the rebuild must
     * not leave it vouching for half-written files */
    if (!clean_marker_matches(app->rrd_dir, journal_count(app->journal)) || o->rebuild) {
        double t0 = mono_s();
        app->run.rrd_failed = ingest_rebuild_all(app);
        log_info("main", "RRD files rebuilt from the journal (%zu series, %d failed) in %.3f s",
                 db_series_count(app->db), app->run.rrd_failed, mono_s() - t0);
    }
    rc = compact_journal(app, o, &sup);
    ingest_superseded_free(&sup);
    return rc;
}

/* ---- app_start: ready ---- */

static void on_alerts_raised(void *ud) { http_sse_wake(ud, false); }

static const char *bus_clock(char *buf, size_t len, void *ud)
{
    return app_format_time(app_now(ud), buf, len);
}

static int start_bus(pp_app *app)
{
    const pp_config *cfg = app->cfg;
    char err[1024] = "";
    bus_options bo = {
        .endpoint = cfg->bus_publish, .heartbeat_s = cfg->bus_heartbeat,
        .hwm = cfg->bus_hwm, .curve_secret_key_file = cfg->bus_curve_secret_key,
        .curve_clients_dir = cfg->bus_curve_clients, .now_fn = bus_clock, .now_ud = app,
        .seq = app->alerts ? alert_seq(app->alerts) : 0, .max_connections = cfg->bus_max_connections,
        .reserve_fds = HTTP_FD_RESERVE + cfg->http_max_connections + cfg->http_max_streams,
    };
    app->bus = bus_open(&bo, err, sizeof err);
    if (app->bus == NULL) {
        log_err("bus", "alert bus %s: %s", cfg->bus_publish, err);
        return APP_EX_SOFTWARE;
    }
    log_info("bus", "publishing alerts on %s", bus_endpoint(app->bus));
    if (bus_curve_public_key(app->bus))
        log_info("bus", "CURVE on: subscribers need the server public key %s",
                 bus_curve_public_key(app->bus));
    return 0;
}

int app_start(pp_app *app)
{
    int rc = start_bus(app);
    if (rc != 0)
        return rc;
    if (app->alerts) {
        alert_set_bus(app->alerts, app->bus);
        alert_set_listener(app->alerts, on_alerts_raised, app->run.http);
    }
    double t0 = mono_s();
    ingest_evaluate_all(app); /* what changed while we were down, and staleness */
    log_info("main", "statuses evaluated: %zu series in %.3f s", db_series_count(app->db),
             mono_s() - t0);
    malloc_trim(0);           /* hand back what the replay's temporaries left free */
    /* RRD files are written off the acknowledgement path from here on (a
     * failure leaves commits writing them themselves, as before) */
    ingest_writer_start(app);
    app->run.plugins = plugin_start_all(app, app->cfg);
    if (app->run.plugins == NULL)
        return APP_EX_CONFIG;
    /* ready: journal replayed, statuses evaluated, every collector watching */
    atomic_store_explicit(&app->ready, true, memory_order_release);
    log_info("main", "parkpulsed ready: http port %d, %zu collector(s)", http_port(app->run.http),
             plugin_count(app->run.plugins));
    return 0;
}

/* ---- app_stop ---- */

/* How long a stop waits for the queued RRD writes (within the 5 s of a stop,
 * with the 2 s of the dirty retry that follows). */
#define RRD_WRITER_STOP_MS 2000

void app_stop(pp_app *app, bool clean)
{
    atomic_store(&app->stopping, true); /* ingest gives up between pieces of work */
    plugin_stop_all(app->run.plugins);
    app->run.plugins = NULL;
    http_stop(app->run.http);
    app->run.http = NULL;
    api_cache_clear();
    if (app->alerts)
        alert_set_bus(app->alerts, NULL);
    bus_close(app->bus);
    app->bus = NULL;
    graph_pool_stop(app->graphs);
    graph_cache_free(app->graph_cache);
    app->graphs = NULL;
    app->graph_cache = NULL;
    /* nothing ingests any more: the queued RRD writes get RRD_WRITER_STOP_MS,
     * what is left is marked dirty (no marker, rebuilt at the next start) */
    ingest_writer_stop(app, RRD_WRITER_STOP_MS);
    if (app->journal) {
        /* the marker waits for every RRD file; the retry is bounded while
         * stopping, and what is left dirty is rebuilt at the next start */
        if (clean)
            ingest_retry_dirty(app, true);
        pthread_mutex_lock(&app->ingest_lock);
        if (clean)
            write_clean_marker(app->rrd_dir, journal_count(app->journal));
        journal_close(app->journal);
        app->journal = NULL;
        pthread_mutex_unlock(&app->ingest_lock);
    }
    alert_free(app->alerts);
    app->alerts = NULL;
    silence_free(app->silences);
    app->silences = NULL;
    db_free(app->db);
    app->db = NULL;
    conf_free(app->cfg);
    app->cfg = NULL;
    if (app->run.lock_fd >= 0)
        close(app->run.lock_fd);
    app->run.lock_fd = -1;
    if (app->run.locks) {
        pthread_mutex_destroy(&app->ingest_lock);
        pthread_rwlock_destroy(&app->cfg_lock);
        app->run.locks = false;
    }
}
