/*
 * main.c — parkpulse-notify: delivers parkpulsed's alerts to people (README
 * "Notifications", parkpulse-notify(8)).
 *
 *   parkpulse-notify [-c FILE] [-f]
 *
 * It reads the notify section of parkpulse.conf with the daemon's own loader,
 * subscribes to the bus (bus.publish, topics "alert." and "hb") as any third
 * party would, and hands each alert, in seq order, to every route's queue
 * (route.c delivers). The order follows the late-joiner recipe of the bus
 * (parkpulsed(8)): subscribe, then read GET /api/v1/alerts, then go on from
 * its seq. Every alert and heartbeat carries the last seq: when one is ahead
 * of the last alert handed on — a restart of the daemon or of this program, a
 * subscriber past its high-water mark — the missing alerts are read from
 * GET /api/v1/alerts?since=N first, and an alert is never handed on before
 * those ahead of it. While the daemon cannot be reached the reading is tried
 * again every two seconds.
 *
 * Where each route starts: from its state file (route.c) when it has one, so
 * nothing raised while this program was down is lost; a new route starts at
 * the daemon's current seq (it is not sent the past).
 *
 * The state directory (notify.state_dir, default /var/lib/parkpulse-notify)
 * holds a lock file (one notifier per directory), the routes' state files and
 * "metrics", rewritten every second in the Prometheus text format:
 * parkpulse_notify_{delivered,failed_attempts,skipped}_total, _queued,
 * _delivered_seq and _failing per route, _bus_seq and _up. Route names appear
 * there, never URLs.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 64 usage, 78 configuration (also: no
 * route), 73 the state directory, 70 otherwise.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "notify.h"
#include "nt.h"

#define NT_MAX_MSG (1 << 20)
#define NT_RETRY_S 2

static void nt_vsay(int e, const char *fmt, va_list ap)
{
    char msg[8192], why[128]; /* paths of up to PATH_MAX */
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (e != 0)
        fprintf(stderr, "parkpulse-notify: %s: %s\n", msg,
                strerror_r(e < 0 ? -e : e, why, sizeof why)); /* GNU: a text */
    else
        fprintf(stderr, "parkpulse-notify: %s\n", msg);
}

void nt_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nt_vsay(0, fmt, ap);
    va_end(ap);
}

void nt_say_errno(int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nt_vsay(e, fmt, ap);
    va_end(ap);
}

static volatile sig_atomic_t stop_sig;
static void on_signal(int sig) { stop_sig = sig; }

/* ---- reading the daemon's alerts ---------------------------------------- */

typedef struct fetched {
    char *data;
    size_t len;
    bool too_big;
} fetched;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    fetched *f = ud;
    size_t n = size * nmemb;
    if (f->len + n > (size_t)256 << 20) {
        f->too_big = true;
        return 0;
    }
    char *d = realloc(f->data, f->len + n + 1);
    if (d == NULL)
        return 0;
    memcpy(d + f->len, p, n);
    f->len += n;
    d[f->len] = '\0';
    f->data = d;
    return n;
}

/* The end of the JSON value at p (an object: balanced braces outside strings). */
static const char *object_end(const char *p, const char *end)
{
    int depth = 0;
    bool in_str = false;
    for (; p < end; p++) {
        if (in_str) {
            if (*p == '\\')
                p++;
            else if (*p == '"')
                in_str = false;
        } else if (*p == '"') {
            in_str = true;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

int nt_fetch(const char *api_url, uint64_t since, uint64_t *seq, bool *complete,
             void (*fn)(void *ud, uint64_t seq, const char *id, const char *json), void *ud,
             char *err, size_t errlen)
{
    char url[4200], cerr[CURL_ERROR_SIZE] = "";
    if (since == UINT64_MAX)
        snprintf(url, sizeof url, "%s/api/v1/alerts", api_url);
    else
        snprintf(url, sizeof url, "%s/api/v1/alerts?since=%llu", api_url,
                 (unsigned long long)since);
    fetched f = { 0 };
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(err, errlen, "cannot start libcurl");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 3L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    int rc = -1;
    json_t *root = NULL;
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", api_url, f.too_big ? "answer too large"
                                                   : cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    if (status != 200) {
        snprintf(err, errlen, "%s/api/v1/alerts: HTTP status %ld", api_url, status);
        goto out;
    }
    root = json_loadb(f.data ? f.data : "", f.len, 0, NULL);
    json_t *jseq = json_object_get(root, "seq");
    json_t *alerts = json_object_get(root, "alerts");
    if (!json_is_integer(jseq) || !json_is_array(alerts)) {
        snprintf(err, errlen, "%s/api/v1/alerts: not the expected answer", api_url);
        goto out;
    }
    *seq = (uint64_t)json_integer_value(jseq);
    *complete = !json_is_false(json_object_get(root, "complete"));
    if (since == UINT64_MAX) {
        rc = 0;
        goto out;
    }
    /* each alert's own bytes, as published: find them in the text */
    const char *p = strstr(f.data, "\"alerts\"");
    const char *end = f.data + f.len;
    p = p ? strchr(p, '[') : NULL;
    if (p)
        p++;
    uint64_t last = since;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p >= end || *p != '{')
            break;
        const char *e = object_end(p, end);
        if (e == NULL)
            break;
        char *one = strndup(p, (size_t)(e - p));
        json_t *a = one ? json_loads(one, 0, NULL) : NULL;
        json_t *s = json_object_get(a, "seq");
        const char *id = json_string_value(json_object_get(a, "id"));
        if (json_is_integer(s) && id && (uint64_t)json_integer_value(s) > last) {
            last = (uint64_t)json_integer_value(s);
            fn(ud, last, id, one);
        }
        json_decref(a);
        free(one);
        p = e;
    }
    rc = 0;
out:
    json_decref(root);
    free(f.data);
    return rc;
}

/* ---- the dispatcher ------------------------------------------------------ */

typedef struct notifier {
    nt_route *routes;
    size_t n_routes;
    const char *api_url;
    uint64_t dispatched;    /* every alert up to this seq went to the routes */
    uint64_t bus_seq;       /* the last seq the bus told */
    bool ready;             /* the starting points are known */
    bool need_fill;         /* an alert is missing: read ?since=dispatched */
    time_t last_try, last_fill_log;
} notifier;

static void dispatch(void *ud, uint64_t seq, const char *id, const char *json)
{
    notifier *n = ud;
    if (seq <= n->dispatched)
        return;
    for (size_t i = 0; i < n->n_routes; i++)
        nt_route_push(&n->routes[i], seq, id, json);
    n->dispatched = seq;
}

/* Reads ?since=dispatched. Returns 0 or -1 (then tried again later). */
static int fill(notifier *n)
{
    uint64_t seq = 0, from = n->dispatched;
    bool complete = true;
    char err[512];
    n->last_try = time(NULL);
    if (nt_fetch(n->api_url, from, &seq, &complete, dispatch, n, err, sizeof err) != 0) {
        if (n->last_try - n->last_fill_log >= 60) {
            n->last_fill_log = n->last_try;
            log_warn("notify", "cannot read the alerts after #%llu: %s (tried again every %ds)",
                     (unsigned long long)from, err, NT_RETRY_S);
        }
        n->need_fill = true;
        return -1;
    }
    if (!complete)
        log_warn("notify", "the daemon no longer keeps some alerts after #%llu: they are not "
                 "delivered", (unsigned long long)from);
    if (seq > n->dispatched)
        n->dispatched = seq; /* what the daemon no longer lists (unconfigured, forgotten) */
    if (n->last_fill_log) {
        log_info("notify", "reading the daemon's alerts again: up to #%llu",
                 (unsigned long long)seq);
        n->last_fill_log = 0;
    }
    n->need_fill = false;
    return 0;
}

/* Sets the starting point of the routes without a state file. */
static int start_points(notifier *n)
{
    bool any_new = false;
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < n->n_routes; i++) {
        if (nt_route_has_state(&n->routes[i])) {
            if (n->routes[i].delivered < low)
                low = n->routes[i].delivered;
        } else {
            any_new = true;
        }
    }
    if (any_new) {
        uint64_t seq = 0;
        bool complete;
        char err[512];
        n->last_try = time(NULL);
        if (nt_fetch(n->api_url, UINT64_MAX, &seq, &complete, dispatch, n, err, sizeof err) != 0) {
            if (n->last_try - n->last_fill_log >= 60) {
                n->last_fill_log = n->last_try;
                log_warn("notify", "waiting for parkpulsed: %s", err);
            }
            return -1;
        }
        for (size_t i = 0; i < n->n_routes; i++)
            if (!nt_route_has_state(&n->routes[i]) && nt_route_start_at(&n->routes[i], seq) != 0)
                return -1;
        if (seq < low)
            low = seq;
    }
    n->dispatched = low;
    n->ready = true;
    n->need_fill = true;
    log_info("notify", "%zu route(s) start after alert #%llu", n->n_routes,
             (unsigned long long)low);
    return 0;
}

/* ---- the metrics file ----------------------------------------------------- */

static void write_metrics(const notifier *n, const char *dir)
{
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/metrics", dir);
    snprintf(tmp, sizeof tmp, "%s/metrics.tmp", dir);
    FILE *f = fopen(tmp, "we");
    if (f == NULL)
        return;
    static const struct {
        const char *name, *help, *type;
    } m[] = {
        { "delivered_total", "Alerts delivered, by route.", "counter" },
        { "failed_attempts_total", "Delivery attempts that failed, by route.", "counter" },
        { "skipped_total", "Alerts a route does not want (filters, silenced).", "counter" },
        { "queued", "Alerts waiting in the route's queue.", "gauge" },
        { "delivered_seq", "The last seq the route handled (durable).", "gauge" },
        { "failing", "1 while the route's last attempt failed.", "gauge" },
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        fprintf(f, "# HELP parkpulse_notify_%s %s\n# TYPE parkpulse_notify_%s %s\n", m[k].name,
                m[k].help, m[k].name, m[k].type);
        for (size_t i = 0; i < n->n_routes; i++) {
            nt_route *r = &n->routes[i];
            unsigned long long v = 0;
            switch (k) {
            case 0: v = atomic_load(&r->n_delivered); break;
            case 1: v = atomic_load(&r->n_failed); break;
            case 2: v = atomic_load(&r->n_skipped); break;
            case 3:
                pthread_mutex_lock(&r->lock);
                v = r->queued;
                pthread_mutex_unlock(&r->lock);
                break;
            case 4: v = atomic_load(&r->shown_delivered); break;
            case 5: v = atomic_load(&r->failing); break;
            }
            fprintf(f, "parkpulse_notify_%s{route=\"%s\"} %llu\n", m[k].name, r->cfg->name, v);
        }
    }
    fprintf(f, "# HELP parkpulse_notify_bus_seq The last seq the bus or the daemon told.\n"
               "# TYPE parkpulse_notify_bus_seq gauge\nparkpulse_notify_bus_seq %llu\n"
               "# HELP parkpulse_notify_up 1 once the routes' starting points are known.\n"
               "# TYPE parkpulse_notify_up gauge\nparkpulse_notify_up %d\n",
            (unsigned long long)(n->bus_seq > n->dispatched ? n->bus_seq : n->dispatched),
            n->ready ? 1 : 0);
    if (fclose(f) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* ---- start --------------------------------------------------------------- */

/* http://host:port of http.listen (a wildcard address becomes loopback). */
static char *url_from_listen(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL)
        return NULL;
    char host[300];
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0 || host[0] == '\0')
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "[::]") == 0)
        snprintf(host, sizeof host, "[::1]");
    char *u = NULL;
    return asprintf(&u, "http://%s:%s", host, colon + 1) < 0 ? NULL : u;
}

static char *trim_slash(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return strndup(s, n);
}

/* The bus endpoint to connect to: a wildcard host becomes loopback. */
static void connect_endpoint(const char *publish, char *out, size_t len)
{
    if (strncmp(publish, "tcp://*:", 8) == 0)
        snprintf(out, len, "tcp://127.0.0.1:%s", publish + 8);
    else if (strncmp(publish, "tcp://0.0.0.0:", 14) == 0)
        snprintf(out, len, "tcp://127.0.0.1:%s", publish + 14);
    else
        snprintf(out, len, "%s", publish);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: parkpulse-notify [-c FILE] [-f]\n"
               "  -c, --config FILE  parkpulse.conf (default /etc/parkpulse/parkpulse.conf)\n"
               "  -f, --foreground   (accepted; the log always goes to stderr)\n"
               "  -h, --help\n"
               "Delivers parkpulsed's alerts to the routes of the notify section;\n"
               "see parkpulse-notify(8).\n");
}

/* Reads the command line: *conf_file from -c. Returns -1 to go on, or the
 * exit status (0 after --help, 64 on a usage error). */
static int read_options(int argc, char **argv, const char **conf_file)
{
    static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
                                          { "foreground", no_argument, NULL, 'f' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *conf_file = optarg; break;
        case 'f': break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 64;
    }
    return -1;
}

/* Creates the state directory dir when needed and takes its lock file
 * (*lock_fd: -1, or the descriptor to close). Returns 0, or 73 (the exit
 * status) after saying why. */
static int lock_state_dir(const char *dir, int *lock_fd)
{
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        nt_say_errno(errno, "cannot create %s", dir);
        return 73;
    }
    char lock_path[4200];
    snprintf(lock_path, sizeof lock_path, "%s/lock", dir);
    *lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX | LOCK_NB) != 0) {
        nt_say_errno(errno, "%s is in use by another parkpulse-notify (or unwritable)", dir);
        return 73;
    }
    return 0;
}

/* Sets up n's routes from the notify section nc (n->n_routes counts those
 * to stop and free, also on failure). Returns 0, or the exit status: 70 out
 * of memory, 78 a route that cannot be set up. */
static int open_routes(notifier *n, const conf_notify *nc, const char *base_url,
                       const char *api_url)
{
    n->routes = calloc(nc->n_routes, sizeof *n->routes);
    if (n->routes == NULL)
        return 70;
    n->api_url = api_url;
    for (size_t i = 0; i < nc->n_routes; i++) {
        int rc = nt_route_init(&n->routes[i], &nc->routes[i], nc->state_dir, base_url, api_url,
                               nc->retry_max);
        n->n_routes = i + 1;
        if (rc != 0)
            return 78;
    }
    return 0;
}

static void catch_signals(void)
{
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- the bus subscription ------------------------------------------------ */

typedef struct subscription {
    void *zctx, *sock;
    char *buf;          /* a message's body: NT_MAX_MSG + 1 bytes */
    char endpoint[300]; /* where it is connected */
} subscription;

/* Subscribes s to the topics "alert." and "hb" of the bus publishing at
 * publish. Returns 0, or -1 after logging why (unsubscribe frees what was
 * made). */
static int subscribe(subscription *s, const char *publish)
{
    int linger = 0;
    connect_endpoint(publish, s->endpoint, sizeof s->endpoint);
    s->zctx = zmq_ctx_new();
    s->sock = s->zctx ? zmq_socket(s->zctx, ZMQ_SUB) : NULL;
    s->buf = malloc(NT_MAX_MSG + 1);
    if (s->sock == NULL || s->buf == NULL ||
        zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, "alert.", 6) != 0 ||
        zmq_setsockopt(s->sock, ZMQ_SUBSCRIBE, "hb", 2) != 0 ||
        zmq_connect(s->sock, s->endpoint) != 0) {
        log_errno("notify", "cannot subscribe to %s", s->endpoint);
        return -1;
    }
    return 0;
}

static void unsubscribe(subscription *s)
{
    if (s->sock)
        zmq_close(s->sock);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    free(s->buf);
}

/* Receives one message waiting on s: its topic into topic (len bytes), its
 * body into s->buf, both NUL-terminated; frames beyond the second are
 * dropped. Returns 0, or -1 when there is nothing to handle (no message, no
 * body, or a body too long: the heartbeat's seq will tell, and ?since=
 * fills it). */
static int receive(subscription *s, char *topic, size_t len)
{
    int more = 0;
    size_t ml = sizeof more;
    int tl = zmq_recv(s->sock, topic, len - 1, ZMQ_DONTWAIT);
    if (tl < 0)
        return -1;
    topic[tl < (int)len - 1 ? tl : (int)len - 1] = '\0';
    zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &ml);
    if (!more)
        return -1;
    int bl = zmq_recv(s->sock, s->buf, NT_MAX_MSG, 0);
    zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &ml);
    while (more) { /* frames beyond the second are not ours */
        zmq_recv(s->sock, NULL, 0, 0);
        zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &ml);
    }
    if (bl < 0 || bl > NT_MAX_MSG)
        return -1;
    s->buf[bl] = '\0';
    return 0;
}

/* An alert or a heartbeat (topic, body json) from the bus: its seq is
 * noted; an alert right after the last one handed on goes to the routes, and
 * one further ahead (or a heartbeat ahead) has the missing ones read first. */
static void on_message(notifier *n, const char *topic, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    json_t *js = json_object_get(j, "seq");
    uint64_t seq = json_is_integer(js) ? (uint64_t)json_integer_value(js) : 0;
    const char *id = json_string_value(json_object_get(j, "id"));
    bool is_hb = strcmp(topic, "hb") == 0;
    if (seq > n->bus_seq)
        n->bus_seq = seq;
    if (n->ready && seq > n->dispatched) {
        if (is_hb || seq > n->dispatched + 1 || n->need_fill) {
            fill(n); /* the missing ones first; this one comes with them */
        } else if (id && strncmp(topic, "alert.", 6) == 0) {
            dispatch(n, seq, id, json);
        }
    }
    json_decref(j);
}

/* ---- running ------------------------------------------------------------- */

/* Starts the routes' threads, says where they deliver, tells systemd, then
 * finds the starting points and reads what is missing. Returns 0 or -1. */
static int start_routes(notifier *n, const char *endpoint, const char *api_url)
{
    for (size_t i = 0; i < n->n_routes; i++)
        if (nt_route_start(&n->routes[i]) != 0)
            return -1;
    log_info("notify", "parkpulse-notify: %zu route(s), bus %s, daemon %s", n->n_routes, endpoint,
             api_url);
    for (size_t i = 0; i < n->n_routes; i++)
        log_info("notify", "route %s: %s", n->routes[i].cfg->name, n->routes[i].shown);
    notify_send("READY=1\nSTATUS=subscribed");
    start_points(n);
    if (n->ready)
        fill(n);
    return 0;
}

/* Between messages: the starting points or the missing alerts are tried
 * again every NT_RETRY_S seconds, and the metrics file is rewritten once a
 * second (*last_metrics: when it last was). */
static void tick(notifier *n, const char *state_dir, struct timespec *last_metrics)
{
    time_t now = time(NULL);
    if (!n->ready && now - n->last_try >= NT_RETRY_S)
        start_points(n);
    if (n->ready && n->need_fill && now - n->last_try >= NT_RETRY_S)
        fill(n);
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    if (mono.tv_sec != last_metrics->tv_sec) {
        write_metrics(n, state_dir);
        *last_metrics = mono;
        log_flush();
    }
}

/* Hands the bus's alerts to the routes until a signal (or the bus fails). */
static void serve(notifier *n, subscription *s, const char *state_dir)
{
    struct timespec last_metrics;
    clock_gettime(CLOCK_MONOTONIC, &last_metrics);
    while (!stop_sig) {
        zmq_pollitem_t it = { .socket = s->sock, .events = ZMQ_POLLIN };
        int pr = zmq_poll(&it, 1, 250);
        if (pr < 0 && zmq_errno() != EINTR) {
            log_errno("notify", "bus");
            break;
        }
        tick(n, state_dir, &last_metrics);
        if (pr <= 0 || !(it.revents & ZMQ_POLLIN))
            continue;
        char topic[300];
        if (receive(s, topic, sizeof topic) == 0)
            on_message(n, topic, s->buf);
    }
}

int main(int argc, char **argv)
{
    const char *conf_file = "/etc/parkpulse/parkpulse.conf";
    int rc = read_options(argc, argv, &conf_file);
    if (rc >= 0)
        return rc;
    rc = 70;
    log_open(true);
    char err[8192];
    pp_config *cfg = conf_load(conf_file, err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "%s", err);
        return 78;
    }
    notifier n = { 0 };
    subscription s = { 0 };
    char *base_url = NULL, *api_url = NULL;
    int lock_fd = -1, st;
    const conf_notify *nc = &cfg->notify;
    if (nc->n_routes == 0) {
        nt_say("%s has no notify { route \"NAME\" { … } }: nothing to deliver to", conf_file);
        rc = 78;
        goto out;
    }
    api_url = nc->api_url ? trim_slash(nc->api_url) : url_from_listen(cfg->http_listen);
    base_url = nc->base_url ? trim_slash(nc->base_url) : url_from_listen(cfg->http_listen);
    if (api_url == NULL || base_url == NULL)
        goto out;
    if ((st = lock_state_dir(nc->state_dir, &lock_fd)) != 0) {
        rc = st;
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto out;
    if ((st = open_routes(&n, nc, base_url, api_url)) != 0) {
        rc = st;
        goto out;
    }
    catch_signals();
    if (subscribe(&s, cfg->bus_publish) != 0 || start_routes(&n, s.endpoint, api_url) != 0)
        goto out;
    write_metrics(&n, nc->state_dir);
    serve(&n, &s, nc->state_dir);
    if (stop_sig)
        log_info("notify", "stopping (signal %d)", (int)stop_sig);
    notify_send("STOPPING=1");
    rc = 0;
out:
    for (size_t i = 0; i < n.n_routes; i++)
        nt_route_stop(&n.routes[i]);
    for (size_t i = 0; i < n.n_routes; i++)
        nt_route_free(&n.routes[i]);
    if (n.routes && rc == 0)
        write_metrics(&n, nc->state_dir);
    free(n.routes);
    unsubscribe(&s);
    free(api_url);
    free(base_url);
    if (lock_fd >= 0)
        close(lock_fd);
    curl_global_cleanup();
    conf_free(cfg);
    log_flush();
    return rc;
}
