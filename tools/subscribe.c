/*
 * subscribe.c — `parkpulse subscribe`: the alert bus for people and scripts.
 *
 * The order follows the late-joiner recipe of README, Alerts: subscribe first, then read
 * the snapshot over HTTP (GET /api/v1/alerts: the active alerts and the
 * current seq), then drop bus messages the snapshot already covered. Every
 * alert and heartbeat carries the last seq: a jump means alerts were lost (a
 * slow subscriber past its high-water mark, a restart), and the missing ones
 * are fetched from GET /api/v1/alerts?since=N before going on. When no
 * heartbeat arrives for three intervals the daemon is reported silent.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "client.h"
#include "model.h"

#define SUB_MAX_MSG (1 << 20)

static volatile sig_atomic_t sub_stop;
static void on_signal(int sig) { sub_stop = sig; }

typedef struct sub_state {
    cl_ctx *ctx;
    const char *park;       /* filter, or NULL */
    bool json;
    uint64_t last_seq;      /* highest seq printed or covered */
    long count, printed;    /* --count: stop after this many alerts (0: never) */
} sub_state;

/* A status in words: as the new state of an alert ("ok" is a recovery:
 * 恢复正常) or, with previous, as the state it left ("ok" was 正常). */
static const char *status_zh(const char *s, bool previous)
{
    static const char *map[][2] = { { "warning", "预警" },       { "critical", "严重滞后" },
                                    { "no_target", "未设目标" }, { "no_data", "未报送" },
                                    { "overdue", "逾期未报" },   { "received", "已补报" },
                                    { "stale", "逾期未报" },     { "none", "无" } };
    if (s && strcmp(s, "ok") == 0)
        return previous ? "正常" : "恢复正常";
    for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i][0]) == 0)
            return map[i][1];
    return s ? s : "?";
}

/* Prints one alert (a JSON object) unless it belongs to another park; live
 * alerts (not those of the starting snapshot) count towards --count. */
static void print_alert(sub_state *st, json_t *a, const char *raw, bool live)
{
    const char *park = json_string_value(json_object_get(a, "park"));
    if (st->park && (park == NULL || strcmp(park, st->park) != 0))
        return;
    if (st->json) {
        char *line = raw ? NULL : json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", raw ? raw : (line ? line : "{}"));
        free(line);
    } else {
        const char *t = json_string_value(json_object_get(a, "time"));
        const char *msg = json_string_value(json_object_get(a, "message"));
        printf("#%lld %s [%s] %s/%s %s（此前：%s）%s\n",
               (long long)json_integer_value(json_object_get(a, "seq")), t ? t : "",
               status_zh(json_string_value(json_object_get(a, "status")), false), park ? park : "?",
               json_string_value(json_object_get(a, "indicator")) ? json_string_value(json_object_get(a, "indicator")) : "?",
               json_string_value(json_object_get(a, "period")) ? json_string_value(json_object_get(a, "period")) : "",
               status_zh(json_string_value(json_object_get(a, "previous")), true), msg ? msg : "");
    }
    fflush(stdout);
    if (!live)
        return;
    st->printed++;
    if (st->count > 0 && st->printed >= st->count)
        sub_stop = -1;
}

/* The next JSON object of the "alerts" array in the daemon's raw answer,
 * from *p on: its text is [*start, *end). false when there is none. The
 * answer is the daemon's own compact JSON; strings are skipped with their
 * escapes, so braces inside them do not count. */
static bool next_raw_object(const char **p, const char **start, const char **end)
{
    const char *q = *p;
    while (*q && *q != '{' && *q != ']')
        q++;
    if (*q != '{')
        return false;
    *start = q;
    int depth = 0;
    bool in_str = false;
    for (; *q; q++) {
        if (in_str) {
            if (*q == '\\' && q[1])
                q++;
            else if (*q == '"')
                in_str = false;
        } else if (*q == '"') {
            in_str = true;
        } else if (*q == '{') {
            depth++;
        } else if (*q == '}' && --depth == 0) {
            *end = q + 1;
            *p = q + 1;
            return true;
        }
    }
    return false;
}

/* GET /api/v1/alerts[?since=N]; prints the alerts (since: those after last_seq).
 * With --json each alert is printed as the daemon wrote it (never re-encoded:
 * a re-encoded 25.6 came out as 25.600000000000001). Returns 0 or an exit
 * status. */
static int fetch(sub_state *st, bool since, uint64_t *seq_out)
{
    char path[64];
    if (since)
        snprintf(path, sizeof path, "/api/v1/alerts?since=%llu", (unsigned long long)st->last_seq);
    else
        snprintf(path, sizeof path, "/api/v1/alerts");
    cl_answer ans;
    int rc = cl_http(st->ctx, "subscribe", "GET", path, NULL, NULL, 0, NULL, &ans);
    if (rc != 0)
        return rc;
    if (ans.status != 200) {
        rc = cl_http_failure("subscribe", "alerts", &ans);
        cl_answer_free(&ans);
        return rc;
    }
    json_t *root = cl_json("subscribe", &ans);
    if (root == NULL) {
        cl_answer_free(&ans);
        return EX_PROTOCOL;
    }
    json_t *alerts = json_object_get(root, "alerts");
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(root, "seq"));
    const char *raw = ans.body ? strstr(ans.body, "\"alerts\":[") : NULL;
    size_t i;
    json_t *a;
    json_array_foreach(alerts, i, a) {
        const char *rs = NULL, *re = NULL;
        char *text = NULL;
        if (raw && next_raw_object(&raw, &rs, &re))
            text = strndup(rs, (size_t)(re - rs));
        else
            raw = NULL;
        uint64_t s = (uint64_t)json_integer_value(json_object_get(a, "seq"));
        if (!(since && s <= st->last_seq))
            print_alert(st, a, text, since);
        free(text);
    }
    cl_answer_free(&ans);
    if (since && json_is_false(json_object_get(root, "complete")))
        fprintf(stderr, "parkpulse subscribe: some alerts after #%llu are no longer kept by the daemon\n",
                (unsigned long long)st->last_seq);
    json_decref(root);
    *seq_out = seq;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: parkpulse subscribe [--park P] [--json] [--endpoint E] [--http URL]\n"
               "                           [--count N]\n"
               "  -p, --park P      only the alerts of park P\n"
               "      --json        print each alert as the JSON published on the bus\n"
               "  -e, --endpoint E  the bus (default: bus.publish of the configuration)\n"
               "      --http URL    the daemon's HTTP endpoint for the snapshot and gaps\n"
               "  -n, --count N     exit after N new alerts (the active ones printed first\n"
               "                    do not count)\n");
}

/* Reads the command line into st and *endpoint (ctx->url_opt from --http).
 * Returns -1 to go on, or the exit status (0 after --help, EX_USAGE). */
static int read_options(sub_state *st, int argc, char **argv, const char **endpoint)
{
    static const struct option opts[] = {
        { "park", required_argument, NULL, 'p' }, { "json", no_argument, NULL, 'j' },
        { "endpoint", required_argument, NULL, 'e' }, { "http", required_argument, NULL, 'u' },
        { "count", required_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:e:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': st->park = optarg; break;
        case 'j': st->json = true; break;
        case 'e': *endpoint = optarg; break;
        case 'u': st->ctx->url_opt = optarg; break;
        case 'n': st->count = strtol(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind != argc || st->count < 0) {
        usage(stderr);
        return EX_USAGE;
    }
    if (st->park && !pp_id_valid(st->park)) {
        cl_err("subscribe", "'%s' is not a park id", st->park);
        return EX_USAGE;
    }
    return -1;
}

/* A park the daemon does not know would wait for ever: asks the daemon
 * about park first. Returns 0, or the exit status (65, as status does). */
static int check_park(cl_ctx *ctx, const char *park)
{
    char path[PP_ID_MAX + 32];
    cl_answer pa;
    int rc;
    snprintf(path, sizeof path, "/api/v1/parks/%s", park);
    if ((rc = cl_http(ctx, "subscribe", "GET", path, NULL, NULL, 0, NULL, &pa)) != 0)
        return rc;
    if (pa.status != 200)
        rc = cl_http_failure("subscribe", park, &pa);
    cl_answer_free(&pa);
    return rc;
}

/* The bus subscription: its socket and a message's body. */
typedef struct sub_bus {
    void *zctx, *sock;
    char *buf; /* SUB_MAX_MSG + 1 bytes, once subscribed */
} sub_bus;

/* Subscribes b at endpoint to the alerts (of park, or all) and the
 * heartbeats. Returns 0, or EX_UNAVAILABLE after saying why. */
static int sub_connect(sub_bus *b, const char *endpoint, const char *park)
{
    char topic[PP_ID_MAX + 16];
    int linger = 0;
    snprintf(topic, sizeof topic, park ? "alert.%s." : "alert.", park);
    b->zctx = zmq_ctx_new();
    b->sock = b->zctx ? zmq_socket(b->zctx, ZMQ_SUB) : NULL;
    if (b->sock == NULL || zmq_setsockopt(b->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(b->sock, ZMQ_SUBSCRIBE, topic, strlen(topic)) != 0 ||
        zmq_setsockopt(b->sock, ZMQ_SUBSCRIBE, "hb", 2) != 0 || zmq_connect(b->sock, endpoint) != 0) {
        cl_err("subscribe", "cannot subscribe to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return EX_UNAVAILABLE;
    }
    return 0;
}

static void sub_close(sub_bus *b)
{
    free(b->buf);
    if (b->sock)
        zmq_close(b->sock);
    if (b->zctx)
        zmq_ctx_term(b->zctx);
}

/* Receives one message waiting on b: its topic into topic (len bytes), its
 * body into b->buf, both NUL-terminated; a message of more than two frames
 * is drained. Returns the body's length, or -1 when there is nothing to
 * handle. */
static int sub_receive(sub_bus *b, char *topic, size_t len)
{
    int tl = zmq_recv(b->sock, topic, len - 1, 0);
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(b->sock, ZMQ_RCVMORE, &more, &ml);
    if (tl < 0 || !more)
        return -1;
    topic[tl < (int)len - 1 ? tl : (int)len - 1] = '\0';
    int bl = zmq_recv(b->sock, b->buf, SUB_MAX_MSG, 0);
    zmq_getsockopt(b->sock, ZMQ_RCVMORE, &more, &ml);
    while (more) { /* a message of more than two frames is not ours: drain it */
        zmq_recv(b->sock, NULL, 0, 0);
        zmq_getsockopt(b->sock, ZMQ_RCVMORE, &more, &ml);
    }
    if (bl < 0 || bl > SUB_MAX_MSG)
        return -1;
    b->buf[bl] = '\0';
    return bl;
}

/* An alert or a heartbeat (topic, body json of len bytes): a seq past the
 * next one means alerts were lost, fetched over HTTP first; a new alert is
 * printed. */
static void on_message(sub_state *st, const char *topic, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *m = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (m == NULL || !json_is_object(m)) {
        fprintf(stderr, "parkpulse subscribe: a message on %s is not JSON: %s\n", topic, jerr.text);
        json_decref(m);
        return;
    }
    uint64_t s = (uint64_t)json_integer_value(json_object_get(m, "seq"));
    if (s > st->last_seq + (strcmp(topic, "hb") == 0 ? 0 : 1)) {
        /* a gap: fetch what we missed (up to this message) over HTTP */
        uint64_t cur;
        if (fetch(st, true, &cur) == 0)
            st->last_seq = s > cur ? s - (strcmp(topic, "hb") != 0) : cur;
    }
    if (strcmp(topic, "hb") != 0 && s > st->last_seq) {
        print_alert(st, m, st->json ? json : NULL, true);
        st->last_seq = s;
    } else if (strcmp(topic, "hb") == 0 && s > st->last_seq) {
        st->last_seq = s;
    }
    json_decref(m);
}

/* Prints the bus's alerts until a signal or --count; says when no
 * heartbeat came from endpoint for three intervals (heartbeat seconds), and
 * when they come again. Returns 0, or EX_IOERR when the bus fails. */
static int sub_listen(sub_state *st, sub_bus *b, const char *endpoint, int heartbeat)
{
    time_t last_heard = time(NULL);
    bool silent = false;
    while (!sub_stop) {
        zmq_pollitem_t it = { .socket = b->sock, .events = ZMQ_POLLIN };
        int n = zmq_poll(&it, 1, 500);
        if (n < 0 && zmq_errno() == EINTR)
            continue;
        if (n < 0) {
            cl_err("subscribe", "bus: %s", zmq_strerror(zmq_errno()));
            return EX_IOERR;
        }
        if (n == 0) {
            if (!silent && time(NULL) - last_heard > 3 * heartbeat) {
                fprintf(stderr, "parkpulse subscribe: no heartbeat from %s for %lds: is parkpulsed running?\n",
                        endpoint, (long)(time(NULL) - last_heard));
                silent = true;
            }
            continue;
        }
        char topic[PP_ID_MAX * 2 + 16];
        int bl = sub_receive(b, topic, sizeof topic);
        if (bl < 0)
            continue;
        last_heard = time(NULL);
        if (silent) {
            fprintf(stderr, "parkpulse subscribe: heartbeats from %s again\n", endpoint);
            silent = false;
        }
        on_message(st, topic, b->buf, (size_t)bl);
    }
    return 0;
}

int cl_cmd_subscribe(cl_ctx *ctx, int argc, char **argv)
{
    sub_state st = { .ctx = ctx };
    sub_bus b = { 0 };
    const char *endpoint = NULL;
    int heartbeat = 5, rc = read_options(&st, argc, argv, &endpoint);

    if (rc >= 0)
        return rc;
    const pp_config *cfg = NULL;
    if (endpoint == NULL || ctx->url_opt == NULL) {
        if ((rc = cl_config(ctx, "subscribe", &cfg)) != 0)
            return rc;
    }
    if (st.park && (rc = check_park(ctx, st.park)) != 0)
        return rc;
    if (endpoint == NULL)
        endpoint = cfg && cfg->bus_publish ? cfg->bus_publish : "tcp://127.0.0.1:5556";
    if (cfg && cfg->bus_heartbeat > 0)
        heartbeat = cfg->bus_heartbeat;
    if ((rc = sub_connect(&b, endpoint, st.park)) != 0)
        goto out;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* subscribed: now the snapshot; bus messages up to its seq are dropped */
    uint64_t seq;
    if ((rc = fetch(&st, false, &seq)) != 0)
        goto out;
    st.last_seq = seq;
    if (!st.json)
        fprintf(stderr, "parkpulse subscribe: %s, from alert #%llu on (Ctrl-C to stop)\n", endpoint,
                (unsigned long long)seq);
    b.buf = malloc(SUB_MAX_MSG + 1);
    if (b.buf == NULL) {
        rc = EX_OSERR;
        goto out;
    }
    rc = sub_listen(&st, &b, endpoint, heartbeat);
out:
    sub_close(&b);
    return rc;
}
