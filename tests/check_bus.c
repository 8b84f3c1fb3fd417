/*
 * check_bus.c — Check suite for daemon/bus.c (README, Alerts: the bus).
 *
 * Every test binds a bus to tcp://127.0.0.1:* (loopback only) and talks to it
 * with real ZeroMQ SUB sockets created inside the test, after Check's fork
 * (a ZeroMQ context does not survive fork()). A subscriber first waits for a
 * heartbeat, which proves its subscription has reached the publisher (the
 * "slow joiner"), and only then does the test publish. The tests check the
 * two-frame message byte for byte, prefix filtering, heartbeat content and
 * ordering, four concurrent publishers, a stuck subscriber that must not hold
 * back anyone else, bad and busy endpoints, the bounded queue, and CURVE with
 * an authorised and an unknown client key.
 */
#include "bus.h"
#include "tmpdir.h"
#include "check_main.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define LOOPBACK_ANY "tcp://127.0.0.1:*"
#define FIXED_TIME "2024-09-15T10:02:03+08:00"

static char test_dir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------ */

static void setup(void)
{
    tmpdir_make(test_dir, sizeof test_dir, "check_bus");
    umask(077); /* key files as an operator should write them */
}

static void teardown(void) { tmpdir_remove(test_dir); }

static const char *fixed_now(char *buf, size_t len, void *ud)
{
    snprintf(buf, len, "%s", (const char *)ud);
    return buf;
}

static bus *open_bus(int hwm, uint64_t seq)
{
    char err[256];
    bus_options o = {.endpoint = LOOPBACK_ANY, .heartbeat_s = 1, .hwm = hwm,
                     .now_fn = fixed_now, .now_ud = (void *)FIXED_TIME, .seq = seq};
    bus *b = bus_open(&o, err, sizeof err);
    ck_assert_msg(b != NULL, "bus_open: %s", err);
    ck_assert_msg(strncmp(bus_endpoint(b), "tcp://127.0.0.1:", 16) == 0, "%s", bus_endpoint(b));
    return b;
}

static void set_int(void *s, int opt, int v)
{
    ck_assert_int_eq(zmq_setsockopt(s, opt, &v, sizeof v), 0);
}

/* A SUB socket connected to b, subscribed to each prefix (and to "hb"). */
static void *sub_open(void *ctx, const bus *b, int rcvhwm, const char *const *prefixes)
{
    void *s = zmq_socket(ctx, ZMQ_SUB);
    ck_assert_ptr_nonnull(s);
    set_int(s, ZMQ_LINGER, 0);
    set_int(s, ZMQ_RCVHWM, rcvhwm);
    set_int(s, ZMQ_RCVTIMEO, 5000);
    for (; prefixes && *prefixes; prefixes++)
        ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, *prefixes, strlen(*prefixes)), 0);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "hb", 2), 0);
    ck_assert_int_eq(zmq_connect(s, bus_endpoint(b)), 0);
    return s;
}

typedef struct rmsg {
    char topic[256];
    char body[4096];
    size_t topic_len, body_len;
} rmsg;

/* Receives one two-frame message. Returns 0, or -1 on timeout. */
static int recv2(void *s, rmsg *m)
{
    int n = zmq_recv(s, m->topic, sizeof m->topic - 1, 0);
    if (n < 0) {
        ck_assert_int_eq(errno, EAGAIN);
        return -1;
    }
    ck_assert_int_lt(n, (int)sizeof m->topic);
    m->topic_len = (size_t)n;
    m->topic[n] = '\0';
    int more = 0;
    size_t ml = sizeof more;
    ck_assert_int_eq(zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml), 0);
    ck_assert_msg(more, "topic frame of %s not followed by a body", m->topic);
    n = zmq_recv(s, m->body, sizeof m->body - 1, 0);
    ck_assert_int_ge(n, 0);
    ck_assert_int_lt(n, (int)sizeof m->body);
    m->body_len = (size_t)n;
    m->body[n] = '\0';
    ck_assert_int_eq(zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml), 0);
    ck_assert_msg(!more, "more than two frames");
    return 0;
}

/* Reads until a heartbeat arrives: the subscription is in place. */
static void wait_heartbeat(void *s)
{
    rmsg m;
    for (int i = 0; i < 100; i++) {
        ck_assert_msg(recv2(s, &m) == 0, "no heartbeat within 5 s");
        if (strcmp(m.topic, "hb") == 0)
            return;
    }
    ck_abort_msg("no heartbeat among 100 messages");
}

/* Next message that is not a heartbeat, or -1 on timeout. */
static int recv_alert(void *s, rmsg *m)
{
    for (;;) {
        if (recv2(s, m) != 0)
            return -1;
        if (strcmp(m->topic, "hb") != 0)
            return 0;
    }
}

static void close_ctx(void *ctx)
{
    ck_assert_int_eq(zmq_ctx_term(ctx), 0);
}

/* Waits (up to 10 s) until the bus thread has handed n messages over. */
static void wait_published(bus *b, uint64_t n)
{
    uint64_t p = 0, d = 0;
    for (int i = 0; i < 1000; i++) {
        bus_stats(b, &p, &d);
        if (p + d >= n)
            break;
        usleep(10000);
    }
    ck_assert_uint_eq(p + d, n);
}

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(content, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(test_roundtrip)
{
    void *ctx = zmq_ctx_new();
    bus *b = open_bus(0, 0);
    const char *const pre[] = {"alert.", NULL};
    void *s = sub_open(ctx, b, 1000, pre);
    wait_heartbeat(s);

    const char *topic = "alert.xiangtan-etdz.fixed_asset_investment";
    const char *body =
        "{\"seq\":42,\"id\":\"xiangtan-etdz/fixed_asset_investment/2024-08/warning\","
        "\"park_name\":\"湘潭经开区\",\"label\":\"固定资产投资\",\"unit\":\"亿元\","
        "\"message\":\"低于序时进度(66.7%)2.6个百分点。\"}";
    ck_assert_int_eq(bus_publish_alert(b, topic, body, strlen(body), 42), 0);

    rmsg m;
    ck_assert_int_eq(recv_alert(s, &m), 0);
    ck_assert_uint_eq(m.topic_len, strlen(topic));
    ck_assert_int_eq(memcmp(m.topic, topic, m.topic_len), 0);
    ck_assert_uint_eq(m.body_len, strlen(body));
    ck_assert_int_eq(memcmp(m.body, body, m.body_len), 0);

    /* an empty body is a valid second frame */
    ck_assert_int_eq(bus_publish(b, "alert.x.y", NULL, 0), 0);
    ck_assert_int_eq(recv_alert(s, &m), 0);
    ck_assert_str_eq(m.topic, "alert.x.y");
    ck_assert_uint_eq(m.body_len, 0);

    uint64_t p, d;
    wait_published(b, 2); /* counted after the send, maybe after the receive */
    bus_stats(b, &p, &d);
    ck_assert_uint_eq(p, 2);
    ck_assert_uint_eq(d, 0);

    zmq_close(s);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

static const struct {
    const char *topic;
    bool delivered; /* to a subscriber of "alert.xiangtan-etdz." */
} filter_cases[] = {
    {"alert.xiangtan-etdz.fixed_asset_investment", true},
    {"alert.changsha-etdz.fixed_asset_investment", false},
    {"alert.xiangtan-etdz.industrial_output", true},
    {"alert.xiangtan-etdz2.industrial_output", false},
    {"alert.xiangtan", false},
    {"alerts.xiangtan-etdz.x", false},
    {"alert.xiangtan-etdz.tax_revenue", true},
};

START_TEST(test_prefix_filter)
{
    void *ctx = zmq_ctx_new();
    bus *b = open_bus(0, 0);
    const char *const pre[] = {"alert.xiangtan-etdz.", NULL};
    void *s = sub_open(ctx, b, 1000, pre);
    const char *const all_pre[] = {"alert.", NULL};
    void *all = sub_open(ctx, b, 1000, all_pre);
    wait_heartbeat(s);
    wait_heartbeat(all);

    size_t n = sizeof filter_cases / sizeof filter_cases[0];
    for (size_t i = 0; i < n; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"i\":%zu}", i);
        ck_assert_int_eq(bus_publish(b, filter_cases[i].topic, body, strlen(body)), 0);
    }
    /* the "everything" subscriber gets every alert.* topic, in order */
    rmsg m;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(filter_cases[i].topic, "alert.", 6) != 0)
            continue;
        ck_assert_int_eq(recv_alert(all, &m), 0);
        ck_assert_str_eq(m.topic, filter_cases[i].topic);
    }
    /* the park subscriber gets exactly its park's, in order; a heartbeat
     * after the last message proves nothing else is on its way */
    for (size_t i = 0; i < n; i++) {
        if (!filter_cases[i].delivered)
            continue;
        ck_assert_int_eq(recv_alert(s, &m), 0);
        ck_assert_str_eq(m.topic, filter_cases[i].topic);
        char body[32];
        snprintf(body, sizeof body, "{\"i\":%zu}", i);
        ck_assert_str_eq(m.body, body);
    }
    ck_assert_int_eq(recv2(s, &m), 0);
    ck_assert_str_eq(m.topic, "hb");

    zmq_close(s);
    zmq_close(all);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

START_TEST(test_heartbeat)
{
    void *ctx = zmq_ctx_new();
    bus *b = open_bus(0, 41);
    const char *const pre[] = {"alert.", NULL};
    void *s = sub_open(ctx, b, 1000, pre);

    rmsg m;
    wait_heartbeat(s);
    /* three more heartbeats, each within the 5 s receive timeout, spaced
     * roughly heartbeat_s apart, carrying the start seq and the caller's clock */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(recv2(s, &m), 0);
        ck_assert_str_eq(m.topic, "hb");
        ck_assert_str_eq(m.body, "{\"seq\":41,\"time\":\"" FIXED_TIME "\"}");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(dt > 1.5, "3 heartbeats in %.2f s with heartbeat_s = 1", dt);

    /* an alert moves the heartbeat's seq, and arrives before that heartbeat */
    const char *body = "{\"seq\":42}";
    ck_assert_int_eq(bus_publish_alert(b, "alert.p.i", body, strlen(body), 42), 0);
    ck_assert_int_eq(recv2(s, &m), 0);
    if (strcmp(m.topic, "hb") == 0) { /* one sent before the alert was queued */
        ck_assert_str_eq(m.body, "{\"seq\":41,\"time\":\"" FIXED_TIME "\"}");
        ck_assert_int_eq(recv2(s, &m), 0);
    }
    ck_assert_str_eq(m.topic, "alert.p.i");
    ck_assert_int_eq(recv2(s, &m), 0);
    ck_assert_str_eq(m.topic, "hb");
    ck_assert_str_eq(m.body, "{\"seq\":42,\"time\":\"" FIXED_TIME "\"}");

    /* a smaller seq (an older alert republished) does not move it back */
    ck_assert_int_eq(bus_publish_alert(b, "alert.p.i", body, strlen(body), 7), 0);
    ck_assert_int_eq(recv_alert(s, &m), 0);
    ck_assert_int_eq(recv2(s, &m), 0);
    ck_assert_str_eq(m.topic, "hb");
    ck_assert_str_eq(m.body, "{\"seq\":42,\"time\":\"" FIXED_TIME "\"}");

    zmq_close(s);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

static const char *bad_clock(char *buf, size_t len, void *ud)
{
    snprintf(buf, len, "%s", "\"}, evil");
    return buf;
}

/* Without a clock callback (or with one giving garbage) the system's local
 * time is used, in RFC 3339 with a numeric offset. */
START_TEST(test_heartbeat_default_clock)
{
    static const bus_now_fn clocks[] = {NULL, bad_clock};
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^\\{\"seq\":0,\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
                             "[0-9]{2}[+-][0-9]{2}:[0-9]{2}\"\\}$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    void *ctx = zmq_ctx_new();
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        char err[256];
        bus_options o = {.endpoint = LOOPBACK_ANY, .heartbeat_s = 1, .now_fn = clocks[i]};
        bus *b = bus_open(&o, err, sizeof err);
        ck_assert_msg(b != NULL, "bus_open: %s", err);
        void *s = sub_open(ctx, b, 1000, NULL);
        rmsg m;
        ck_assert_int_eq(recv2(s, &m), 0);
        ck_assert_str_eq(m.topic, "hb");
        ck_assert_msg(regexec(&re, m.body, 0, NULL, 0) == 0, "heartbeat body %s", m.body);
        zmq_close(s);
        bus_close(b);
    }
    regfree(&re);
    close_ctx(ctx);
}
END_TEST

#define N_THREADS 4
#define PER_THREAD 5000

typedef struct pub_arg {
    bus *b;
    int t;
    int failures;
} pub_arg;

static void *publisher(void *arg)
{
    pub_arg *a = arg;
    char topic[64], body[64];
    snprintf(topic, sizeof topic, "alert.park%d.indicator", a->t);
    for (int i = 0; i < PER_THREAD; i++) {
        int n = snprintf(body, sizeof body, "{\"t\":%d,\"i\":%d}", a->t, i);
        if (bus_publish(a->b, topic, body, (size_t)n) != 0)
            a->failures++;
    }
    return NULL;
}

START_TEST(test_concurrent_publishers)
{
    void *ctx = zmq_ctx_new();
    bus *b = open_bus(N_THREADS * PER_THREAD * 2, 0);
    const char *const pre[] = {"alert.", NULL};
    void *s = sub_open(ctx, b, 0, pre); /* RCVHWM 0: no limit */
    wait_heartbeat(s);

    pthread_t th[N_THREADS];
    pub_arg args[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        args[t] = (pub_arg){.b = b, .t = t};
        ck_assert_int_eq(pthread_create(&th[t], NULL, publisher, &args[t]), 0);
    }

    static unsigned char seen[N_THREADS][PER_THREAD];
    memset(seen, 0, sizeof seen);
    int last[N_THREADS] = {-1, -1, -1, -1};
    rmsg m;
    for (int k = 0; k < N_THREADS * PER_THREAD; k++) {
        ck_assert_msg(recv_alert(s, &m) == 0, "timeout after %d messages", k);
        int t, i;
        ck_assert_int_eq(sscanf(m.body, "{\"t\":%d,\"i\":%d}", &t, &i), 2);
        ck_assert(t >= 0 && t < N_THREADS && i >= 0 && i < PER_THREAD);
        char topic[64];
        snprintf(topic, sizeof topic, "alert.park%d.indicator", t);
        ck_assert_str_eq(m.topic, topic);
        ck_assert_msg(!seen[t][i], "message %d/%d twice", t, i);
        seen[t][i] = 1;
        ck_assert_int_gt(i, last[t]); /* one thread's messages keep their order */
        last[t] = i;
    }
    for (int t = 0; t < N_THREADS; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_int_eq(args[t].failures, 0);
        ck_assert_int_eq(last[t], PER_THREAD - 1);
    }
    /* and nothing more than those: the next message is a heartbeat */
    ck_assert_int_eq(recv2(s, &m), 0);
    ck_assert_str_eq(m.topic, "hb");
    uint64_t p, d;
    wait_published(b, N_THREADS * PER_THREAD);
    bus_stats(b, &p, &d);
    ck_assert_uint_eq(p, N_THREADS * PER_THREAD);
    ck_assert_uint_eq(d, 0);

    zmq_close(s);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

#define N_FLOOD 50000

/* A subscriber that stops reading (small RCVHWM, never read after its first
 * heartbeat) holds back neither bus_publish nor a subscriber that reads. */
START_TEST(test_stuck_subscriber)
{
    void *ctx = zmq_ctx_new();
    bus *b = open_bus(N_FLOOD * 2, 0);
    const char *const pre[] = {"alert.", NULL};
    void *stuck = sub_open(ctx, b, 10, pre);
    void *reader = sub_open(ctx, b, 0, pre);
    wait_heartbeat(stuck);
    wait_heartbeat(reader);

    char pad[201];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char body[300];
    for (int i = 0; i < N_FLOOD; i++) {
        int n = snprintf(body, sizeof body, "{\"i\":%d,\"pad\":\"%s\"}", i, pad);
        ck_assert_int_eq(bus_publish(b, "alert.p.i", body, (size_t)n), 0);
    }
    rmsg m;
    int next = 0;
    while (next < N_FLOOD) {
        ck_assert_msg(recv_alert(reader, &m) == 0, "reader stalled at %d", next);
        int i;
        ck_assert_int_eq(sscanf(m.body, "{\"i\":%d", &i), 1);
        ck_assert_int_eq(i, next);
        next++;
    }
    wait_published(b, N_FLOOD);
    uint64_t p, d;
    bus_stats(b, &p, &d);
    ck_assert_uint_eq(p, N_FLOOD);
    ck_assert_uint_eq(d, 0);

    zmq_close(stuck);
    zmq_close(reader);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

/* Past its hwm a subscriber that does not read loses messages (README, Alerts: it
 * sees a gap in seq); publishing still succeeds. 20,000 bodies of 2 KB are
 * far more than the hwm (100) plus loopback socket buffers hold. */
START_TEST(test_stuck_subscriber_drops)
{
    void *ctx = zmq_ctx_new();
    bus *b = open_bus(100, 0);
    const char *const pre[] = {"alert.", NULL};
    void *stuck = sub_open(ctx, b, 10, pre);
    set_int(stuck, ZMQ_RCVTIMEO, 1500);
    wait_heartbeat(stuck);
    /* no more heartbeats, so that reading the backlog ends in a timeout */
    ck_assert_int_eq(zmq_setsockopt(stuck, ZMQ_UNSUBSCRIBE, "hb", 2), 0);

    enum { N = 20000, BODY = 2048 };
    char *body = malloc(BODY);
    ck_assert_ptr_nonnull(body);
    memset(body, ' ', BODY);
    for (int i = 0; i < N; i++) {
        int n = snprintf(body, 32, "{\"i\":%d", i);
        body[n] = ' ';
        body[BODY - 1] = '}';
        ck_assert_int_eq(bus_publish(b, "alert.p.i", body, BODY), 0);
    }
    free(body);
    wait_published(b, N);

    rmsg m;
    int got = 0;
    while (recv_alert(stuck, &m) == 0)
        got++;
    ck_assert_int_gt(got, 0);
    ck_assert_int_lt(got, N);

    zmq_close(stuck);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

static const struct {
    const char *endpoint;
    const char *reason; /* a substring of the error */
} bad_endpoints[] = {
    {NULL, "no bus endpoint"},
    {"", "no bus endpoint"},
    {"bogus://127.0.0.1:5556", "cannot bind"},
    {"tcp://127.0.0.1", "cannot bind"},
    {"tcp://127.0.0.1:99999", "cannot bind"},
    {"tcp://300.1.1.1:5556", "cannot bind"},
    {"tcp:127.0.0.1:5556", "cannot bind"},
    {"tcp://127.0.0.1:", "port must be"},
    {"tcp://127.0.0.1:-1", "port must be"},
    {"tcp://127.0.0.1:80a", "port must be"},
    {"tcp://:5556", "expected tcp://"},
    {"ipc:///nonexistent-dir/x/bus.sock", "cannot bind"},
};

START_TEST(test_bad_endpoint)
{
    for (size_t i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; i++) {
        char err[256] = "";
        bus_options o = {.endpoint = bad_endpoints[i].endpoint};
        bus *b = bus_open(&o, err, sizeof err);
        ck_assert_msg(b == NULL, "%s was accepted", bad_endpoints[i].endpoint);
        ck_assert_msg(strstr(err, bad_endpoints[i].reason) != NULL, "%s: %s",
                      bad_endpoints[i].endpoint, err);
    }
    char err[256] = "";
    ck_assert_ptr_null(bus_open(NULL, err, sizeof err));
    ck_assert_str_ne(err, "");
    char longep[400];
    memset(longep, 'a', sizeof longep - 1);
    longep[sizeof longep - 1] = '\0';
    bus_options o = {.endpoint = longep};
    ck_assert_ptr_null(bus_open(&o, err, sizeof err));
    ck_assert_str_eq(err, "bus endpoint too long");
}
END_TEST

START_TEST(test_endpoint_in_use)
{
    bus *b = open_bus(0, 0);
    char err[256] = "";
    bus_options o = {.endpoint = bus_endpoint(b)};
    bus *b2 = bus_open(&o, err, sizeof err);
    ck_assert_ptr_null(b2);
    ck_assert_msg(strstr(err, "in use") != NULL, "%s", err);
    ck_assert_msg(strstr(err, bus_endpoint(b)) != NULL, "%s", err);
    bus_close(b);
}
END_TEST

START_TEST(test_invalid_publish)
{
    bus *b = open_bus(0, 0);
    char longtopic[300];
    memset(longtopic, 't', sizeof longtopic - 1);
    longtopic[sizeof longtopic - 1] = '\0';
    char *big = calloc(1, BUS_MAX_BODY + 1);
    ck_assert_ptr_nonnull(big);

    errno = 0;
    ck_assert_int_eq(bus_publish(b, "", "{}", 2), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(bus_publish(b, NULL, "{}", 2), -1);
    ck_assert_int_eq(bus_publish(b, longtopic, "{}", 2), -1);
    ck_assert_int_eq(bus_publish(b, "alert.a.b", NULL, 2), -1);
    ck_assert_int_eq(bus_publish(b, "alert.a.b", big, BUS_MAX_BODY + 1), -1);
    ck_assert_int_eq(bus_publish(NULL, "alert.a.b", "{}", 2), -1);
    /* the limits themselves pass */
    longtopic[BUS_MAX_TOPIC] = '\0';
    ck_assert_int_eq(bus_publish(b, longtopic, big, BUS_MAX_BODY), 0);
    free(big);
    wait_published(b, 1);
    uint64_t p, d;
    bus_stats(b, &p, &d);
    ck_assert_uint_eq(p, 1);
    ck_assert_uint_eq(d, 0);
    bus_stats(NULL, &p, NULL);
    ck_assert_uint_eq(p, 0);
    bus_close(b);
    bus_close(NULL);
}
END_TEST

/* A queue of one: whatever the bus thread's speed, every refused publish is
 * counted as a drop, and every accepted one is sent. */
START_TEST(test_queue_bound)
{
    char err[256];
    bus_options o = {.endpoint = LOOPBACK_ANY, .queue_max = 1};
    bus *b = bus_open(&o, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    enum { N = 20000 };
    uint64_t refused = 0;
    for (int i = 0; i < N; i++) {
        errno = 0;
        int rc = bus_publish(b, "alert.a.b", "{}", 2);
        if (rc != 0) {
            ck_assert_int_eq(rc, -1);
            ck_assert_int_eq(errno, ENOBUFS);
            refused++;
        }
    }
    wait_published(b, N);
    uint64_t p, d;
    bus_stats(b, &p, &d);
    ck_assert_uint_eq(d, refused);
    ck_assert_uint_eq(p, N - refused);
    bus_close(b);
}
END_TEST

START_TEST(test_close_clean)
{
    /* close right after open, and with messages still queued */
    for (int k = 0; k < 5; k++) {
        bus *b = open_bus(0, 0);
        for (int i = 0; i < k * 1000; i++)
            ck_assert_int_eq(bus_publish(b, "alert.a.b", "{\"x\":1}", 7), 0);
        bus_close(b);
    }
    /* the port is free again after close */
    bus *b = open_bus(0, 0);
    char ep[256];
    snprintf(ep, sizeof ep, "%s", bus_endpoint(b));
    bus_close(b);
    char err[256];
    bus_options o = {.endpoint = ep};
    b = bus_open(&o, err, sizeof err);
    ck_assert_msg(b != NULL, "rebind %s: %s", ep, err);
    bus_close(b);
}
END_TEST

/* ---- CURVE ----------------------------------------------------------------- */

static void *curve_sub(void *ctx, const bus *b, const char *pub, const char *sec)
{
    void *s = zmq_socket(ctx, ZMQ_SUB);
    ck_assert_ptr_nonnull(s);
    set_int(s, ZMQ_LINGER, 0);
    set_int(s, ZMQ_RCVTIMEO, 5000);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, bus_curve_public_key(b), 40), 0);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40), 0);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40), 0);
    ck_assert_int_eq(zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0), 0);
    ck_assert_int_eq(zmq_connect(s, bus_endpoint(b)), 0);
    return s;
}

static void path_in(char *buf, size_t len, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", test_dir, name);
    ck_assert(n > 0 && (size_t)n < len);
}

START_TEST(test_curve)
{
    char keyfile[PATH_MAX], clients[PATH_MAX], path[PATH_MAX], err[256];
    path_in(keyfile, sizeof keyfile, "server.secret");
    path_in(clients, sizeof clients, "clients");
    ck_assert_int_eq(mkdir(clients, 0700), 0);

    if (!zmq_has("curve")) {
        write_file(keyfile, "0000000000000000000000000000000000000000\n");
        bus_options o = {.endpoint = LOOPBACK_ANY, .curve_secret_key_file = keyfile};
        ck_assert_ptr_null(bus_open(&o, err, sizeof err));
        ck_assert_msg(strstr(err, "CURVE") != NULL, "%s", err);
        return;
    }

    char spub[41], ssec[41], apub[41], asec[41], upub[41], usec[41], line[64];
    ck_assert_int_eq(zmq_curve_keypair(spub, ssec), 0);
    ck_assert_int_eq(zmq_curve_keypair(apub, asec), 0);
    ck_assert_int_eq(zmq_curve_keypair(upub, usec), 0);
    snprintf(line, sizeof line, "%s\n", ssec);
    write_file(keyfile, line);
    ck_assert_int_eq(chmod(keyfile, 0600), 0);
    snprintf(line, sizeof line, "  %s  \n# analyst A\n", apub);
    path_in(path, sizeof path, "clients/analyst-a.key");
    write_file(path, line);
    /* not *.key: ignored, so the unknown client stays unknown */
    snprintf(line, sizeof line, "%s\n", upub);
    path_in(path, sizeof path, "clients/unknown.pub");
    write_file(path, line);

    bus_options o = {.endpoint = LOOPBACK_ANY, .heartbeat_s = 1, .now_fn = fixed_now,
                     .now_ud = (void *)FIXED_TIME, .curve_secret_key_file = keyfile,
                     .curve_clients_dir = clients};
    bus *b = bus_open(&o, err, sizeof err);
    ck_assert_msg(b != NULL, "bus_open: %s", err);
    ck_assert_str_eq(bus_curve_public_key(b), spub);

    void *ctx = zmq_ctx_new();
    void *known = curve_sub(ctx, b, apub, asec);
    void *unknown = curve_sub(ctx, b, upub, usec);
    set_int(unknown, ZMQ_RCVTIMEO, 2500);
    void *plain = sub_open(ctx, b, 1000, NULL); /* no CURVE at all */
    set_int(plain, ZMQ_RCVTIMEO, 100);

    wait_heartbeat(known);
    const char *body = "{\"seq\":1,\"park_name\":\"湘潭经开区\"}";
    ck_assert_int_eq(bus_publish_alert(b, "alert.xiangtan-etdz.x", body, strlen(body), 1), 0);
    rmsg m;
    ck_assert_int_eq(recv_alert(known, &m), 0);
    ck_assert_str_eq(m.topic, "alert.xiangtan-etdz.x");
    ck_assert_str_eq(m.body, body);
    /* over 2 heartbeat periods the refused clients got nothing at all */
    ck_assert_int_eq(recv2(unknown, &m), -1);
    ck_assert_int_eq(recv2(plain, &m), -1);

    zmq_close(known);
    zmq_close(unknown);
    zmq_close(plain);
    bus_close(b);
    close_ctx(ctx);

    /* CURVE without a clients directory: any client knowing the server key */
    o.curve_clients_dir = NULL;
    b = bus_open(&o, err, sizeof err);
    ck_assert_msg(b != NULL, "bus_open: %s", err);
    ctx = zmq_ctx_new();
    unknown = curve_sub(ctx, b, upub, usec);
    wait_heartbeat(unknown);
    zmq_close(unknown);
    bus_close(b);
    close_ctx(ctx);
}
END_TEST

/* Key files that must make bus_open fail, with the reason naming the problem. */
START_TEST(test_curve_bad_keys)
{
    if (!zmq_has("curve"))
        return; /* test_curve checks the refusal */
    char keyfile[PATH_MAX], badkey[PATH_MAX], clients[PATH_MAX], path[PATH_MAX], err[256];
    char spub[41], ssec[41], line[64];
    ck_assert_int_eq(zmq_curve_keypair(spub, ssec), 0);
    path_in(keyfile, sizeof keyfile, "server.secret");
    snprintf(line, sizeof line, "%s\n", ssec);
    write_file(keyfile, line);
    path_in(clients, sizeof clients, "clients");
    ck_assert_int_eq(mkdir(clients, 0700), 0);

    static const struct {
        const char *content; /* of the secret key file; NULL: no such file */
        const char *reason;
    } secrets[] = {
        {NULL, "cannot open key file"},
        {"", "empty"},
        {"short\n", "expected 40 characters"},
        {"0000000000000000000000000000000000000000000\n", "expected 40 characters"},
        {"000000000000000000000000000000000000000\"\n", "not a Z85 key"},
        {"000000000000000000000000000000000000000 0\n", "expected 40 characters"},
    };
    path_in(badkey, sizeof badkey, "bad.secret");
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        unlink(badkey);
        if (secrets[i].content)
            write_file(badkey, secrets[i].content);
        bus_options o = {.endpoint = LOOPBACK_ANY, .curve_secret_key_file = badkey};
        ck_assert_ptr_null(bus_open(&o, err, sizeof err));
        ck_assert_msg(strstr(err, secrets[i].reason) != NULL, "case %zu: %s", i, err);
    }
    /* a directory instead of a key file */
    bus_options o = {.endpoint = LOOPBACK_ANY, .curve_secret_key_file = clients};
    ck_assert_ptr_null(bus_open(&o, err, sizeof err));
    ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);

    /* clients directory: missing, then one malformed *.key */
    o.curve_secret_key_file = keyfile;
    path_in(path, sizeof path, "no-such-dir");
    o.curve_clients_dir = path;
    ck_assert_ptr_null(bus_open(&o, err, sizeof err));
    ck_assert_msg(strstr(err, "cannot open CURVE clients directory") != NULL, "%s", err);
    path_in(path, sizeof path, "clients/broken.key");
    write_file(path, "not a key\n");
    o.curve_clients_dir = clients;
    ck_assert_ptr_null(bus_open(&o, err, sizeof err));
    ck_assert_msg(strstr(err, "broken.key") != NULL, "%s", err);

    /* a clients directory without CURVE makes no sense */
    bus_options o2 = {.endpoint = LOOPBACK_ANY, .curve_clients_dir = clients};
    ck_assert_ptr_null(bus_open(&o2, err, sizeof err));
    ck_assert_msg(strstr(err, "without a CURVE secret key") != NULL, "%s", err);

    /* the good secret key alone works */
    o.curve_clients_dir = NULL;
    bus *b = bus_open(&o, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_str_eq(bus_curve_public_key(b), spub);
    bus_close(b);
}
END_TEST

/* A reason that comes from a failed call ends with the errno text, once
 * (bus_seterr_errno: log.h's convention for the errors bus_open returns). */
START_TEST(test_errno_text_ends_the_reason)
{
    char err[512], path[PATH_MAX], want[PATH_MAX + 128];
    bus_options o = {.endpoint = "ipc:///nonexistent-dir/x/bus.sock"};
    ck_assert_ptr_null(bus_open(&o, err, sizeof err));
    ck_assert_str_eq(err,
                     "cannot bind ipc:///nonexistent-dir/x/bus.sock: No such file or directory");
    if (!zmq_has("curve"))
        return; /* test_curve checks the refusal */
    path_in(path, sizeof path, "no-such.secret");
    bus_options c = {.endpoint = LOOPBACK_ANY, .curve_secret_key_file = path};
    ck_assert_ptr_null(bus_open(&c, err, sizeof err));
    snprintf(want, sizeof want, "cannot open key file %s: No such file or directory", path);
    ck_assert_str_eq(err, want);
    /* cut to the buffer, never past it */
    char small[16];
    ck_assert_ptr_null(bus_open(&c, small, sizeof small));
    ck_assert_str_eq(small, "cannot open key");
}
END_TEST

static Suite *bus_suite(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = check_tcase(s, "zmq", setup, teardown, 60);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_prefix_filter);
    tcase_add_test(tc, test_heartbeat);
    tcase_add_test(tc, test_heartbeat_default_clock);
    tcase_add_test(tc, test_concurrent_publishers);
    tcase_add_test(tc, test_stuck_subscriber);
    tcase_add_test(tc, test_stuck_subscriber_drops);
    tcase_add_test(tc, test_bad_endpoint);
    tcase_add_test(tc, test_endpoint_in_use);
    tcase_add_test(tc, test_invalid_publish);
    tcase_add_test(tc, test_queue_bound);
    tcase_add_test(tc, test_close_clean);
    tcase_add_test(tc, test_curve);
    tcase_add_test(tc, test_curve_bad_keys);
    tcase_add_test(tc, test_errno_text_ends_the_reason);
    return s;
}

CHECK_MAIN(bus_suite)
