/*
 * main.c — parkpulsed: start-up order, the main loop and shutdown.
 *
 * Start-up follows SPEC §11: configuration (refused with file:line on error,
 * also for what would fail later: preflight.c),
 * the state directory and its lock, the graph workers (forked while no other
 * thread exists), the HTTP socket (answering 503 "starting" to everything),
 * the journal replayed into memory, RRD files rebuilt if the last stop was
 * not clean, the bus, every status evaluated, the collectors started (each
 * one's init() has returned: the spool's inotify watch exists). Only then is
 * the daemon ready: /healthz answers 200 and systemd hears READY=1. A client
 * that waits for that loses no file to the start-up: whatever reaches the
 * spool from then on is seen by the watch.
 *
 * Signals are blocked in every thread and taken synchronously by
 * the main loop with sigtimedwait(), so no work ever happens in a handler.
 * The locks are taken in the order written down in app.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "app.h"
#include "bus.h"
#include "graph.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "plugin.h"
#include "store.h"
#include "preflight.h"

#define EX_USAGE_ 64
#define EX_DATAERR_ 65
#define EX_SOFTWARE_ 70
#define EX_CANTCREAT_ 73
#define EX_IOERR_ 74
#define EX_CONFIG_ 78

/* ---- the hooks that connect the rooms (ingest → alerts → bus, SSE) ---- */

static void on_journal_event(pp_app *app, void *ud, const char *payload)
{
    alert_replay_event(app->alerts, payload);
}

static void on_figures_changed(pp_app *app, void *ud, const char *const *parks,
                               const char *const *indicators, size_t n)
{
    alert_evaluate(app->alerts, parks, indicators, n, false);
}

static void on_alerts_raised(void *ud) { http_sse_wake(ud, false); }

static const char *bus_clock(char *buf, size_t len, void *ud)
{
    return app_format_time(app_now(ud), buf, len);
}

/* Re-evaluates every series (staleness depends on the date). */
static void evaluate_all(pp_app *app)
{
    pthread_mutex_lock(&app->ingest_lock);
    alert_evaluate(app->alerts, NULL, NULL, 0, true);
    pthread_mutex_unlock(&app->ingest_lock);
}

/* true when an indicator's definition that shapes the RRD `pace` DS changed. */
static bool pace_shape_changed(const pp_config *a, const pp_config *b)
{
    if (a->catalog.n_indicators != b->catalog.n_indicators)
        return true;
    for (size_t i = 0; i < a->catalog.n_indicators; i++) {
        const pp_indicator *x = &a->catalog.indicators[i];
        const pp_indicator *y = pp_catalog_indicator(&b->catalog, x->id);
        if (y == NULL || strcmp(x->id, y->id) != 0 || x->kind != y->kind || x->has_pace != y->has_pace ||
            (x->has_pace && memcmp(x->pace, y->pace, sizeof x->pace) != 0))
            return true;
    }
    return false;
}

static void warn_restart_only(const pp_config *old, const pp_config *cur)
{
    static const struct { const char *name; size_t off; } fields[] = {
        { "state_dir", offsetof(pp_config, state_dir) },
        { "timezone", offsetof(pp_config, timezone) },
        { "http.listen", offsetof(pp_config, http_listen) },
        { "bus.publish", offsetof(pp_config, bus_publish) },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *a = *(char *const *)((const char *)old + fields[i].off);
        const char *b = *(char *const *)((const char *)cur + fields[i].off);
        if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
            log_warn("config", "%s changed: it takes effect at the next restart", fields[i].name);
    }
}

/* SIGHUP: read the configuration anew; swap it in only when it is valid and
 * its collectors start, else keep the running one. */
static void reload(pp_app *app, const char *file, plugin_set **plugins)
{
    char err[8192] = "";
    notify_send("RELOADING=1");
    pp_config *cur = conf_load(file, err, sizeof err);
    if (cur == NULL) {
        for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
            log_err("config", "%s", line);
        log_err("config", "reload refused: the running configuration stays");
        notify_send("READY=1\nSTATUS=reload refused: configuration errors (see the log)");
        return;
    }
    warn_restart_only(app->cfg, cur);
    plugin_stop_all(*plugins);
    *plugins = NULL;
    pthread_rwlock_wrlock(&app->cfg_lock);
    pp_config *old = app->cfg;
    /* what only a restart can change stays as it runs */
    char **keep[] = { &cur->state_dir, &cur->timezone, &cur->http_listen, &cur->bus_publish };
    char **from[] = { &old->state_dir, &old->timezone, &old->http_listen, &old->bus_publish };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        char *t = *keep[i];
        *keep[i] = *from[i];
        *from[i] = t;
    }
    app->cfg = cur;
    app->cfg_generation++;
    pthread_rwlock_unlock(&app->cfg_lock);

    *plugins = plugin_start_all(app, cur);
    if (*plugins == NULL) {
        log_err("config", "reload refused: a collector of the new configuration failed to start");
        pthread_rwlock_wrlock(&app->cfg_lock);
        for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
            char *t = *keep[i];
            *keep[i] = *from[i];
            *from[i] = t;
        }
        app->cfg = old;
        app->cfg_generation++;
        pthread_rwlock_unlock(&app->cfg_lock);
        conf_free(cur);
        *plugins = plugin_start_all(app, old);
        notify_send("READY=1\nSTATUS=reload refused: a collector failed to start");
        return;
    }
    bool rebuild = pace_shape_changed(old, cur);
    conf_free(old);
    if (rebuild) {
        /* one writer per RRD file: no ingest may interleave with the rebuild */
        pthread_mutex_lock(&app->ingest_lock);
        int failed = ingest_rebuild_all(app);
        pthread_mutex_unlock(&app->ingest_lock);
        log_info("config", "indicator definitions changed: %d RRD file(s) failed to rebuild", failed);
    }
    evaluate_all(app);
    log_info("config", "configuration reloaded: %zu parks, %zu indicators, %zu collectors",
             cur->catalog.n_parks, cur->catalog.n_indicators, cur->n_collectors);
    notify_send("READY=1\nSTATUS=running");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: parkpulsed [-c FILE] [-f] [--now TIME] [--rebuild] [--recover] [-t]\n"
            "  -c, --config FILE  configuration (default /etc/parkpulse/parkpulse.conf)\n"
            "  -f, --foreground   stay in the foreground, log to stderr\n"
            "      --now TIME     fix the clock (YYYY-MM-DD[THH:MM:SS][+HH:MM] or @unix)\n"
            "      --rebuild      regenerate every RRD file from the journal, then exit\n"
            "      --recover      move a damaged journal aside (journal.log.damaged-TIME),\n"
            "                     start a fresh one with its intact records, move the RRD\n"
            "                     files aside (rrd.damaged-TIME, readable with rrdtool),\n"
            "                     rebuild them from what was saved, then exit\n"
            "  -t, --check-config check the configuration and exit\n"
            "  -h, --help         this text\n");
}

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

/* The clean-stop marker: present (with the journal's record count) only
 * between a clean stop and the next start; without it the RRD files may lag
 * the journal and are rebuilt. */
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
        log_err("main", "cannot remove %s durably: %s", path, strerror(errno));
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
        log_warn("main", "cannot raise the open-files limit from %llu to %llu: %s",
                 (unsigned long long)was, (unsigned long long)rl.rlim_max, strerror(errno));
}

int main(int argc, char **argv)
{
    const char *conf_file = "/etc/parkpulse/parkpulse.conf";
    const char *now_arg = NULL;
    bool foreground = false, rebuild = false, recover = false, check_only = false;
    int rc = EX_SOFTWARE_, lock_fd = -1;
    pp_app app;
    http_server *http = NULL;
    plugin_set *plugins = NULL;
    char err[8192];

    /* Large transient buffers (a CSV file being read, a status answer being
     * built) are mapped and unmapped rather than left in the heap: glibc's
     * default raises this threshold after the first such free, after which a
     * 5 MB answer stays in the RSS for good. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "foreground", no_argument, NULL, 'f' },
        { "now", required_argument, NULL, 'N' },    { "rebuild", no_argument, NULL, 'R' },
        { "check-config", no_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { "recover", no_argument, NULL, 'V' },      { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:fth", opts, NULL)) != -1) {
        switch (c) {
        case 'c': conf_file = optarg; break;
        case 'f': foreground = true; break;
        case 'N': now_arg = optarg; break;
        case 'R': rebuild = true; break;
        case 'V': recover = rebuild = true; break;
        case 't': check_only = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE_;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EX_USAGE_;
    }

    memset(&app, 0, sizeof app);
    log_open(foreground || rebuild || check_only);
    int lrc = app_locks_init(&app);
    if (lrc != 0) {
        log_err("main", "cannot initialise the locks: %s", strerror(-lrc));
        return EX_SOFTWARE_;
    }
    raise_nofile();

    err[0] = '\0';
    app.cfg = conf_load(conf_file, err, sizeof err);
    if (app.cfg == NULL || (!rebuild && preflight_check(app.cfg, err, sizeof err, NULL, 0) > 0)) {
        /* once: on stderr, and in the system log only when logging goes there */
        fprintf(stderr, "%s", err);
        if (!(foreground || rebuild || check_only))
            for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
                log_err("config", "%s", line);
        conf_free(app.cfg);
        return EX_CONFIG_;
    }
    if (check_only) {
        printf("%s: configuration OK (%zu parks, %zu indicators, %zu collectors)\n", conf_file,
               app.cfg->catalog.n_parks, app.cfg->catalog.n_indicators, app.cfg->n_collectors);
        conf_free(app.cfg);
        return 0;
    }
    setenv("TZ", app.cfg->timezone, 1);
    tzset();
    if (now_arg && app_parse_time(now_arg, &app.fixed_now) != 0) {
        fprintf(stderr, "parkpulsed: bad --now '%s'\n", now_arg);
        conf_free(app.cfg);
        return EX_USAGE_;
    }
    app.started_at = app_now(&app);

    /* Signals: blocked here, before any thread exists, so every thread inherits it. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The pages are built in; a dashboard_dir written in the configuration
     * overrides or adds files and must exist (the compiled-in default may not). */
    struct stat dd;
    const char *ddir = app.cfg->dashboard_dir;
    int dd_err = ddir == NULL || ddir[0] == '\0' ? 0
                 : stat(ddir, &dd) != 0 ? errno : !S_ISDIR(dd.st_mode) ? ENOTDIR : 0;
    if (dd_err != 0) {
        if (app.cfg->dashboard_dir_set) {
            log_err("config", "dashboard_dir %s: %s; remove the line to serve the pages built into "
                    "parkpulsed", ddir, strerror(dd_err));
            rc = EX_CONFIG_;
            goto out;
        }
        log_info("main", "dashboard_dir %s does not exist: serving the pages built into parkpulsed",
                 ddir);
    }
    char journal_dir[4200], lock_path[4200];
    snprintf(journal_dir, sizeof journal_dir, "%s/journal", app.cfg->state_dir);
    snprintf(app.rrd_dir, sizeof app.rrd_dir, "%s/rrd", app.cfg->state_dir);
    snprintf(lock_path, sizeof lock_path, "%s/parkpulsed.lock", app.cfg->state_dir);
    if (mkdir_p(app.cfg->state_dir, 0750) != 0 || mkdir_p(journal_dir, 0750) != 0 ||
        mkdir_p(app.rrd_dir, 0755) != 0) {
        log_err("main", "cannot create the state directory %s: %s", app.cfg->state_dir,
                strerror(errno));
        rc = EX_CANTCREAT_;
        goto out;
    }
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        log_err("main", "%s is in use by another parkpulsed (or unwritable): %s", app.cfg->state_dir,
                strerror(errno));
        rc = EX_CANTCREAT_;
        goto out;
    }
    if (!rebuild) {
        /* graph workers are forked now, while this process has no other thread */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        app.graphs = graph_pool_start(app.rrd_dir, ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu);
        app.graph_cache = graph_cache_new(32u << 20);
        if (app.graphs == NULL || app.graph_cache == NULL)
            log_warn("graph", "no graph workers: graphs are rendered in-process, one at a time");
        /* early, so that a supervisor sees 503 "starting" rather than nothing
         * while the journal is replayed; app.ready is still false */
        http = http_start(&app);
        if (http == NULL) {
            rc = EX_SOFTWARE_;
            goto out;
        }
    }
    /* a journal emptied in a used state directory is damage, not a new start */
    int jc = recover ? journal_recover(journal_dir, app.rrd_dir)
                     : journal_check(journal_dir, app.rrd_dir, err, sizeof err);
    if (jc != 0) {
        if (jc > 0) {
            log_err("main", "refusing to start: %s", err);
            if (!foreground)
                fprintf(stderr, "parkpulsed: refusing to start: %s\n", err);
        }
        rc = jc > 0 ? EX_DATAERR_ : EX_IOERR_;
        goto out;
    }
    if (journal_open(journal_dir, &app.journal) != 0) {
        rc = EX_IOERR_;
        goto out;
    }
    app.db = db_new();
    app.alerts = alert_new(&app);
    app.on_event = on_journal_event;
    if (app.db == NULL || app.alerts == NULL || ingest_replay(&app) != 0) {
        rc = EX_IOERR_;
        goto out;
    }
    uint64_t count = journal_count(app.journal);
    log_info("main", "journal replayed: %llu records, %zu series", (unsigned long long)count,
             db_series_count(app.db));
    /* the marker goes first, also for --rebuild: a crash amid the rebuild must
     * not leave it vouching for half-written files */
    if (!clean_marker_matches(app.rrd_dir, count) || rebuild) {
        int failed = ingest_rebuild_all(&app);
        log_info("main", "RRD files rebuilt from the journal (%d failed)", failed);
        if (rebuild) {
            write_clean_marker(app.rrd_dir, count);
            rc = failed ? EX_IOERR_ : 0;
            goto out;
        }
    }

    bus_options bo = {
        .endpoint = app.cfg->bus_publish, .heartbeat_s = app.cfg->bus_heartbeat,
        .hwm = app.cfg->bus_hwm, .curve_secret_key_file = app.cfg->bus_curve_secret_key,
        .curve_clients_dir = app.cfg->bus_curve_clients, .now_fn = bus_clock, .now_ud = &app,
        .seq = alert_seq(app.alerts), .max_connections = app.cfg->bus_max_connections,
        .reserve_fds = HTTP_FD_RESERVE + app.cfg->http_max_connections + app.cfg->http_max_streams,
    };
    app.bus = bus_open(&bo, err, sizeof err);
    if (app.bus == NULL) {
        log_err("bus", "alert bus %s: %s", app.cfg->bus_publish, err);
        rc = EX_SOFTWARE_;
        goto out;
    }
    log_info("bus", "publishing alerts on %s", bus_endpoint(app.bus));
    if (bus_curve_public_key(app.bus))
        log_info("bus", "CURVE on: subscribers need the server public key %s",
                 bus_curve_public_key(app.bus));
    alert_set_bus(app.alerts, app.bus);
    alert_set_listener(app.alerts, on_alerts_raised, http);
    app.on_change = on_figures_changed;
    evaluate_all(&app); /* what changed while we were down, and staleness */
    malloc_trim(0);     /* hand back what the replay's temporaries left free */
    int last_day = 0;
    {
        int y, m, d;
        app_local_date(app_now(&app), &y, &m, &d);
        last_day = y * 10000 + m * 100 + d;
    }
    plugins = plugin_start_all(&app, app.cfg);
    if (plugins == NULL) {
        rc = EX_CONFIG_;
        goto out;
    }
    /* ready: journal replayed, statuses evaluated, every collector watching */
    atomic_store_explicit(&app.ready, true, memory_order_release);
    log_info("main", "parkpulsed ready: http port %d, %zu collector(s)", http_port(http),
             plugin_count(plugins));
    notify_send("READY=1\nSTATUS=running");
    uint64_t wd_usec = notify_watchdog_usec();

    for (;;) {
        /* wake at least twice per watchdog interval, and every second for the clock */
        struct timespec ts = { 1, 0 };
        if (wd_usec && wd_usec / 2 < 1000000)
            ts = (struct timespec){ 0, (long)(wd_usec / 2 * 1000) };
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("main", "stopping (signal %d)", sig);
            break;
        }
        if (sig == SIGHUP)
            reload(&app, conf_file, &plugins);
        if (wd_usec)
            notify_send("WATCHDOG=1");
        http_sse_wake(http, true);
        alert_retry_pending(app.alerts); /* alerts the journal could not take (a full disk) */
        int y, m, d;
        app_local_date(app_now(&app), &y, &m, &d);
        if (y * 10000 + m * 100 + d != last_day) {
            last_day = y * 10000 + m * 100 + d;
            evaluate_all(&app); /* a new day: figures may have become overdue */
        }
        ingest_retry_dirty(&app, false); /* RRD files that failed; nothing when none did */
    }
    rc = 0;
out:
    notify_send("STOPPING=1");
    atomic_store(&app.stopping, true); /* ingest gives up between pieces of work */
    plugin_stop_all(plugins);
    app.on_change = NULL;
    http_stop(http);
    api_cache_clear();
    bus_close(app.bus);
    graph_pool_stop(app.graphs);
    graph_cache_free(app.graph_cache);
    if (app.journal) {
        /* the marker waits for every RRD file; the retry is bounded while
         * stopping, and what is left dirty is rebuilt at the next start */
        if (rc == 0)
            ingest_retry_dirty(&app, true);
        pthread_mutex_lock(&app.ingest_lock);
        if (rc == 0)
            write_clean_marker(app.rrd_dir, journal_count(app.journal));
        journal_close(app.journal);
        pthread_mutex_unlock(&app.ingest_lock);
    }
    alert_free(app.alerts);
    db_free(app.db);
    conf_free(app.cfg);
    if (lock_fd >= 0)
        close(lock_fd);
    pthread_mutex_destroy(&app.ingest_lock);
    pthread_rwlock_destroy(&app.cfg_lock);
    return rc;
}
