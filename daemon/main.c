/*
 * main.c — parkpulsed: its options, the main loop (signals, the watchdog, the
 * day's change, SIGHUP's reload) and the systemd notifications.
 *
 * The daemon itself is made and undone by app_open/app_start/app_stop
 * (app.c), in the start-up order of docs/ARCHITECTURE.md: configuration
 * (refused with file:line on error, also for what would fail later:
 * preflight.c), the state directory and its lock, the
 * graph workers, the HTTP socket (503 "starting" to everything), the journal
 * replayed, RRD files rebuilt if the last stop was not clean, the journal
 * compacted when it is mostly superseded records, the bus, every
 * status evaluated, the collectors started. Only then is the daemon ready:
 * /healthz answers 200 and systemd hears READY=1.
 *
 * Signals are blocked in every thread and taken synchronously by the main
 * loop with sigtimedwait(), so no work ever happens in a handler. The locks
 * are taken in the order written down in app.h.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "app.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "plugin.h"
#include "preflight.h"
#include "silence.h"

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

static void warn_restart_only(const char *name, void *ud)
{
    log_warn("config", "%s changed: it takes effect at the next restart", name);
}

/* Swaps cur in for the running configuration (what only a restart can
 * change stays as it runs); returns the one it replaced. */
static pp_config *swap_config(pp_app *app, pp_config *cur)
{
    pthread_rwlock_wrlock(&app->cfg_lock);
    pp_config *old = app->cfg;
    conf_restart_only_swap(cur, old);
    app->cfg = cur;
    app->cfg_generation++;
    pthread_rwlock_unlock(&app->cfg_lock);
    return old;
}

/* SIGHUP: read the configuration anew; swap it in only when it is valid and
 * its collectors start, else keep the running one. */
static void reload(pp_app *app, const char *file)
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
    conf_restart_only_diff(app->cfg, cur, warn_restart_only, NULL);
    plugin_stop_all(app->run.plugins);
    app->run.plugins = NULL;
    pp_config *old = swap_config(app, cur);

    app->run.plugins = plugin_start_all(app, cur);
    if (app->run.plugins == NULL) {
        log_err("config", "reload refused: a collector of the new configuration failed to start");
        conf_free(swap_config(app, old));
        app->run.plugins = plugin_start_all(app, old);
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
    ingest_evaluate_all(app);
    log_info("config", "configuration reloaded: %zu parks, %zu indicators, %zu collectors",
             cur->catalog.n_parks, cur->catalog.n_indicators, cur->n_collectors);
    notify_send("READY=1\nSTATUS=running");
}

static int local_day(const pp_app *app)
{
    int y, m, d;
    app_local_date(app_now(app), &y, &m, &d);
    return y * 10000 + m * 100 + d;
}

/* Until SIGTERM or SIGINT: SIGHUP reloads; at least every second the
 * watchdog, the event streams' keep-alives, the alerts the journal could not
 * take, a new day's evaluation and the RRD files that failed. */
static void main_loop(pp_app *app, const char *conf_file, const sigset_t *sigs)
{
    uint64_t wd_usec = notify_watchdog_usec();
    int last_day = local_day(app);
    for (;;) {
        /* wake at least twice per watchdog interval, and every second for the clock */
        struct timespec ts = { 1, 0 };
        if (wd_usec && wd_usec / 2 < 1000000)
            ts = (struct timespec){ 0, (long)(wd_usec / 2 * 1000) };
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            log_info("main", "stopping (signal %d)", sig);
            return;
        }
        if (sig == SIGHUP)
            reload(app, conf_file);
        if (wd_usec)
            notify_send("WATCHDOG=1");
        http_sse_wake(app->run.http, true);
        alert_retry_pending(app->alerts); /* alerts the journal could not take (a full disk) */
        if (local_day(app) != last_day) {
            last_day = local_day(app);
            ingest_evaluate_all(app); /* a new day: figures may have become overdue */
        }
        ingest_retry_dirty(app, false); /* RRD files that failed; nothing when none did */
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: parkpulsed [-c FILE] [-f] [--now TIME] [--rebuild] [--recover]\n"
            "                 [--compact] [-t]\n"
            "  -c, --config FILE  configuration (default /etc/parkpulse/parkpulse.conf)\n"
            "  -f, --foreground   stay in the foreground, log to stderr\n"
            "      --now TIME     fix the clock (YYYY-MM-DD[THH:MM:SS][+HH:MM] or @unix)\n"
            "      --rebuild      regenerate every RRD file from the journal, then exit\n"
            "      --recover      move a damaged journal aside (journal.log.damaged-TIME),\n"
            "                     start a fresh one with its intact records, move the RRD\n"
            "                     files aside (rrd.damaged-TIME, readable with rrdtool),\n"
            "                     rebuild them from what was saved, then exit\n"
            "      --compact      rewrite the journal without its superseded records, then\n"
            "                     exit (done at start-up anyway when they are the most)\n"
            "  -t, --check-config check the configuration and exit\n"
            "  -h, --help         this text\n");
}

/* Parses the command line into o; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, app_options *o, bool *check_only)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "foreground", no_argument, NULL, 'f' },
        { "now", required_argument, NULL, 'N' },    { "rebuild", no_argument, NULL, 'R' },
        { "check-config", no_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { "recover", no_argument, NULL, 'V' },      { "compact", no_argument, NULL, 'K' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:fth", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o->conf_file = optarg; break;
        case 'f': o->foreground = true; break;
        case 'N': o->now = optarg; break;
        case 'R': o->rebuild = true; break;
        case 'V': o->recover = o->rebuild = true; break;
        case 'K': o->compact = true; break;
        case 't': *check_only = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return APP_EX_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return APP_EX_USAGE;
    }
    return -1;
}

/* -t: loads the configuration, says what it holds. */
static int check_config(const char *file, bool foreground)
{
    char err[8192] = "";
    pp_config *cfg = conf_load(file, err, sizeof err);
    if (cfg == NULL || preflight_check(cfg, err, sizeof err, NULL, 0) > 0) {
        fprintf(stderr, "%s", err); /* once: -t runs in the foreground */
        conf_free(cfg);
        return APP_EX_CONFIG;
    }
    printf("%s: configuration OK (%zu parks, %zu indicators, %zu collectors)\n", file,
           cfg->catalog.n_parks, cfg->catalog.n_indicators, cfg->n_collectors);
    conf_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    app_options o = { .conf_file = "/etc/parkpulse/parkpulse.conf", .alerts = true };
    bool check_only = false;
    pp_app app;

    /* Large transient buffers (a CSV file being read, a status answer being
     * built) are mapped and unmapped rather than left in the heap: glibc's
     * default raises this threshold after the first such free, after which a
     * 5 MB answer stays in the RSS for good. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);

    int rc = parse_args(argc, argv, &o, &check_only);
    if (rc >= 0)
        return rc;
    log_open(o.foreground || o.rebuild || o.compact || check_only);
    if (check_only)
        return check_config(o.conf_file, o.foreground);
    o.serve = !o.rebuild && !o.compact;

    /* Signals: blocked here, before any thread exists, so every thread inherits it. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    bool clean = false; /* the clean-stop marker is refused anyway while an RRD file is dirty */
    rc = app_open(&app, &o);
    if (rc == 0 && (o.rebuild || o.compact)) {
        rc = app.run.rrd_failed ? APP_EX_IOERR : 0;
        clean = true;
    } else if (rc == 0 && (rc = app_start(&app)) == 0) {
        notify_send("READY=1\nSTATUS=running");
        main_loop(&app, o.conf_file, &sigs);
        clean = true;
    }
    notify_send("STOPPING=1");
    app_stop(&app, clean);
    return rc;
}
