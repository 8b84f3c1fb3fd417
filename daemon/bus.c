/*
 * bus.c — the alert bus of README, Alerts, over ZeroMQ; the only file that includes
 * zmq.h (libzmq 4.3).
 *
 * ZeroMQ sockets must not be shared between threads, so one bus thread owns
 * the PUB socket and, when CURVE clients are restricted, the ZAP handler (a
 * REP socket at inproc://zeromq.zap.01 in the bus's own context). Publishers
 * in any thread append a copy of their message to a bounded linked queue under
 * a mutex and, when the queue was empty, bump an eventfd. The bus thread
 * zmq_poll()s that eventfd, the PUB socket's monitor (ACCEPTED/DISCONNECTED:
 * the connection cap of bus.h) and the ZAP socket with a timeout that ends at
 * the next heartbeat; it takes the whole queue in one step under the mutex and
 * sends it with ZMQ_DONTWAIT outside it, so publishers wait only for a list
 * append. Heartbeats are sent by the bus thread after draining the queue, so
 * the seq they announce never overtakes its alert.
 *
 * Sockets and keys are all set up in bus_open, in the caller's thread, so that
 * every configuration error comes back as a reason string; the sockets then
 * pass to the bus thread (pthread_create is the full memory barrier ZeroMQ
 * asks for when a socket changes threads) and stay there until bus_close.
 */
#include "bus.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"

#define BUS_SUBSYS "bus"
#define BUS_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define BUS_MONITOR_ENDPOINT "inproc://parkpulse.bus.monitor.%p"
#define BUS_ZAP_DOMAIN "parkpulse"
#define BUS_Z85_KEY_LEN 40
#define BUS_KEY_LEN 32
#define BUS_ENDPOINT_MAX 256
#define BUS_ZAP_MAX_PARTS 8
/* ZMTP-level heartbeats, so a dead TCP peer is noticed and its queue freed. */
#define BUS_ZMTP_HEARTBEAT_IVL_MS 5000
#define BUS_ZMTP_HEARTBEAT_TIMEOUT_MS 15000
#define BUS_ZMTP_HEARTBEAT_TTL_MS 15000

/* One queued message: topic then body, copied into data[]. */
typedef struct bus_msg {
    struct bus_msg *next;
    size_t topic_len;
    size_t body_len;
    char data[];
} bus_msg;

struct bus {
    void *ctx;
    void *pub;
    void *zap;                 /* REP socket of the ZAP handler, or NULL */
    void *mon;                 /* PAIR socket reading the PUB socket's monitor events */
    int max_conns;             /* TCP connections kept at once */
    int *conn_fds;             /* bus thread only: descriptors of the accepted connections */
    bool *conn_refused;        /* ... and whether each was shut down past the limit */
    int n_conn_fds, cap_conn_fds;
    int n_kept;                /* accepted and not refused */
    int bus_port;              /* local port of the PUB socket (0: not tcp) */
    int efd;                   /* wakes the bus thread */
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t lock;      /* guards everything down to `dropped` */
    bool lock_ready;
    bus_msg *head, *tail;
    size_t queued;
    size_t queue_max;
    bool stopping;
    uint64_t seq;              /* greatest alert seq seen by bus_publish_alert */
    uint64_t published;
    uint64_t dropped;

    long heartbeat_ms;
    bus_now_fn now_fn;
    void *now_ud;
    bool warned_clock;         /* bus thread only */

    char endpoint[BUS_ENDPOINT_MAX];
    bool curve;
    char public_key[BUS_Z85_KEY_LEN + 1];
    uint8_t (*client_keys)[BUS_KEY_LEN];
    size_t n_client_keys;
};

/* ---- small helpers -------------------------------------------------------- */

/* The text of an error number: zmq_strerror also knows libzmq's own (ETERM,
 * EFSM, …) and gives strerror's text for the others. */
static const char *bus_errtext(int e)
{
    return zmq_strerror(e < 0 ? -e : e);
}

/* Formats the reason into err; with_errno, ": <text of e>" follows it (e:
 * errno, or -errno). */
static void bus_vseterr(char *err, size_t errlen, bool with_errno, int e, const char *fmt,
                        va_list ap)
{
    if (!err || errlen == 0)
        return;
    int n = vsnprintf(err, errlen, fmt, ap);
    if (n < 0) {
        err[0] = '\0';
        n = 0;
    }
    if (with_errno && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, ": %s", bus_errtext(e));
}

static void bus_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bus_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bus_vseterr(err, errlen, false, 0, fmt, ap);
    va_end(ap);
}

/* bus_seterr with ": <text of e>" appended (e: errno, or -errno). */
static void bus_seterr_errno(char *err, size_t errlen, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void bus_seterr_errno(char *err, size_t errlen, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bus_vseterr(err, errlen, true, e, fmt, ap);
    va_end(ap);
}

/* log_msg with ": <text of errno>" appended, as log_warn_errno, but with
 * libzmq's texts (bus_errtext) for the calls into libzmq. */
static void bus_log_errno(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bus_log_errno(int level, const char *fmt, ...)
{
    int e = errno;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    log_msg(level, BUS_SUBSYS, "%s: %s", msg, bus_errtext(e));
}

static int64_t bus_mono_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool bus_is_z85_char(int c)
{
    static const char z85[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    return c != '\0' && strchr(z85, c) != NULL;
}

/*
 * Reads the first line of path into a 40-character Z85 key (blanks around it
 * ignored) and, when bin is not NULL, decodes it. Warns about a file others
 * can read when `secret`. Returns 0, or -1 with the reason in err.
 */
static int bus_read_key_file(const char *path, bool secret, char z85[BUS_Z85_KEY_LEN + 1],
                             uint8_t *bin, char *err, size_t errlen)
{
    int rc = -1;
    FILE *f = NULL;
    char line[128];
    uint8_t tmp[BUS_KEY_LEN];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bus_seterr_errno(err, errlen, errno, "cannot open key file %s", path);
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        bus_seterr_errno(err, errlen, errno, "cannot stat key file %s", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        bus_seterr(err, errlen, "key file %s is not a regular file", path);
        goto out;
    }
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
        log_warn(BUS_SUBSYS, "secret key file %s is accessible to group or others (mode %03o)",
                 path, (unsigned)(st.st_mode & 0777));
    f = fdopen(fd, "r");
    if (!f) {
        bus_seterr_errno(err, errlen, errno, "cannot read key file %s", path);
        goto out;
    }
    fd = -1; /* owned by f now */
    if (!fgets(line, sizeof line, f)) {
        bus_seterr(err, errlen, "key file %s is empty or unreadable", path);
        goto out;
    }
    size_t n = strlen(line);
    if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
        bus_seterr(err, errlen, "key file %s: first line too long for a Z85 key", path);
        goto out;
    }
    char *s = line;
    while (*s && isspace((unsigned char)*s))
        s++;
    n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (n != BUS_Z85_KEY_LEN) {
        bus_seterr(err, errlen, "key file %s: expected %d characters of Z85 on the first line, found %zu",
                   path, BUS_Z85_KEY_LEN, n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!bus_is_z85_char((unsigned char)s[i])) {
            bus_seterr(err, errlen, "key file %s: not a Z85 key", path);
            goto out;
        }
    }
    if (!zmq_z85_decode(bin ? bin : tmp, s)) {
        bus_seterr(err, errlen, "key file %s: not a Z85 key", path);
        goto out;
    }
    memcpy(z85, s, BUS_Z85_KEY_LEN + 1);
    rc = 0;
out:
    explicit_bzero(line, sizeof line);
    explicit_bzero(tmp, sizeof tmp);
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    return rc;
}

static bool bus_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Loads every *.key file of dir into b->client_keys. Returns 0 or -1 with err. */
static int bus_load_client_keys(bus *b, const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    DIR *d = opendir(dir);
    if (!d) {
        bus_seterr_errno(err, errlen, errno, "cannot open CURVE clients directory %s", dir);
        return -1;
    }
    size_t cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                bus_seterr_errno(err, errlen, errno, "cannot read CURVE clients directory %s", dir);
                goto out;
            }
            break;
        }
        if (de->d_name[0] == '.' || !bus_has_suffix(de->d_name, ".key"))
            continue;
        if (b->n_client_keys >= BUS_MAX_CLIENT_KEYS) {
            bus_seterr(err, errlen, "CURVE clients directory %s: more than %d keys", dir,
                       BUS_MAX_CLIENT_KEYS);
            goto out;
        }
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (n < 0 || (size_t)n >= sizeof path) {
            bus_seterr(err, errlen, "CURVE clients directory %s: path too long", dir);
            goto out;
        }
        if (b->n_client_keys == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            void *p = realloc(b->client_keys, ncap * sizeof *b->client_keys);
            if (!p) {
                bus_seterr(err, errlen, "out of memory loading CURVE client keys");
                goto out;
            }
            b->client_keys = p;
            cap = ncap;
        }
        char z85[BUS_Z85_KEY_LEN + 1];
        if (bus_read_key_file(path, false, z85, b->client_keys[b->n_client_keys], err, errlen) != 0)
            goto out;
        b->n_client_keys++;
    }
    if (b->n_client_keys == 0)
        log_warn(BUS_SUBSYS, "CURVE clients directory %s holds no *.key file: no subscriber is authorised",
                 dir);
    rc = 0;
out:
    closedir(d);
    return rc;
}

static int bus_setopt_int(void *sock, int opt, int v, const char *name, char *err, size_t errlen)
{
    if (zmq_setsockopt(sock, opt, &v, sizeof v) != 0) {
        bus_seterr_errno(err, errlen, errno, "zmq_setsockopt(%s)", name);
        return -1;
    }
    return 0;
}

/*
 * libzmq 4.3 takes a tcp:// port modulo 65536 (":99999" binds 34463), so the
 * port of a tcp endpoint is checked here: "*" or a decimal 0..65535. Other
 * transports are left to zmq_bind. Returns 0, or -1 with the reason in err.
 */
static int bus_check_endpoint(const char *ep, char *err, size_t errlen)
{
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    const char *colon = strrchr(ep + 6, ':');
    if (!colon || colon == ep + 6) {
        bus_seterr(err, errlen, "cannot bind %s: expected tcp://<address>:<port>", ep);
        return -1;
    }
    const char *port = colon + 1;
    if (strcmp(port, "*") == 0)
        return 0;
    size_t n = strspn(port, "0123456789");
    if (n == 0 || n > 5 || port[n] != '\0' || atol(port) > 65535) {
        bus_seterr(err, errlen, "cannot bind %s: the port must be * or 0..65535", ep);
        return -1;
    }
    return 0;
}

/* ---- sending ---------------------------------------------------------------- */

static int bus_send_frame(void *sock, const void *buf, size_t len, int flags)
{
    for (;;) {
        if (zmq_send(sock, buf, len, flags | ZMQ_DONTWAIT) >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Sends topic + body as one two-frame message. Returns 0 or -1 (errno set). */
static int bus_send2(bus *b, const char *topic, size_t tlen, const char *body, size_t blen)
{
    if (bus_send_frame(b->pub, topic, tlen, ZMQ_SNDMORE) != 0)
        return -1;
    return bus_send_frame(b->pub, body, blen, 0);
}

/* Sends and frees a taken list of messages; updates the counters once. */
static void bus_send_list(bus *b, bus_msg *m)
{
    uint64_t ok = 0, failed = 0;
    while (m) {
        bus_msg *next = m->next;
        if (bus_send2(b, m->data, m->topic_len, m->data + m->topic_len, m->body_len) == 0) {
            ok++;
        } else {
            if (failed == 0)
                bus_log_errno(LOG_LVL_WARN, "send on %s failed", b->endpoint);
            failed++;
        }
        free(m);
        m = next;
    }
    if (ok || failed) {
        pthread_mutex_lock(&b->lock);
        b->published += ok;
        b->dropped += failed;
        pthread_mutex_unlock(&b->lock);
    }
}

/* Takes the whole queue (and the stop flag and seq with it) in one step. */
static bus_msg *bus_take(bus *b, bool *stopping, uint64_t *seq)
{
    pthread_mutex_lock(&b->lock);
    bus_msg *m = b->head;
    b->head = b->tail = NULL;
    b->queued = 0;
    *stopping = b->stopping;
    *seq = b->seq;
    pthread_mutex_unlock(&b->lock);
    return m;
}

/* RFC 3339 local time with offset from the system clock. */
static const char *bus_default_now(char *buf, size_t len, void *ud)
{
    (void)ud;
    time_t t = time(NULL);
    struct tm tm;
    char tmp[64];
    if (!localtime_r(&t, &tm) || strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S%z", &tm) == 0)
        return NULL;
    /* "+0800" -> "+08:00" */
    size_t n = strlen(tmp);
    if (n < 5)
        return NULL;
    int w = snprintf(buf, len, "%.*s:%s", (int)(n - 2), tmp, tmp + n - 2);
    if (w < 0 || (size_t)w >= len)
        return NULL;
    return buf;
}

/* A time string is put into JSON unescaped, so only RFC 3339 characters pass. */
static bool bus_time_ok(const char *s)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= 40 || !strchr("0123456789TZtz:+-.", s[n]))
            return false;
    }
    return true;
}

static void bus_send_heartbeat(bus *b, uint64_t seq)
{
    char tbuf[64];
    const char *t = NULL;
    if (b->now_fn) {
        t = b->now_fn(tbuf, sizeof tbuf, b->now_ud);
        if (!bus_time_ok(t)) {
            if (!b->warned_clock)
                log_warn(BUS_SUBSYS, "clock callback gave no RFC 3339 time; heartbeats use the system clock");
            b->warned_clock = true;
            t = NULL;
        }
    }
    if (!t)
        t = bus_default_now(tbuf, sizeof tbuf, NULL);
    if (!t)
        t = "1970-01-01T00:00:00+00:00";
    char body[128];
    int n = snprintf(body, sizeof body, "{\"seq\":%" PRIu64 ",\"time\":\"%s\"}", seq, t);
    if (n < 0 || (size_t)n >= sizeof body)
        return;
    if (bus_send2(b, "hb", 2, body, (size_t)n) != 0)
        bus_log_errno(LOG_LVL_WARN, "heartbeat on %s failed", b->endpoint);
}

/* ---- ZAP handler (RFC 27) ------------------------------------------------------ */

static bool bus_key_known(const bus *b, const uint8_t *key)
{
    for (size_t i = 0; i < b->n_client_keys; i++)
        if (memcmp(b->client_keys[i], key, BUS_KEY_LEN) == 0)
            return true;
    return false;
}

static bool bus_frame_is(zmq_msg_t *m, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(m) == n && memcmp(zmq_msg_data(m), s, n) == 0;
}

/*
 * Answers one ZAP request: frames version, request id, domain, address,
 * routing id, mechanism, credentials... Only CURVE requests whose client key
 * is listed get 200; everything else 400. A REP socket must answer every
 * request it read, so a malformed one is answered too (when its id is there).
 */
static void bus_zap_serve(bus *b)
{
    zmq_msg_t part[BUS_ZAP_MAX_PARTS];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, b->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (errno == EINTR)
                continue;
            if (n > 0)
                bus_log_errno(LOG_LVL_WARN, "ZAP: truncated request");
            break;
        }
        more = zmq_msg_more(&m);
        if (n < BUS_ZAP_MAX_PARTS)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (more || n < 2)
        goto out; /* nothing complete to answer */

    const char *code = "400", *text = "unknown key";
    char addr[64] = "?";
    if (n >= 4) {
        size_t al = zmq_msg_size(&part[3]);
        const char *ad = zmq_msg_data(&part[3]);
        size_t k = 0;
        for (; k < al && k < sizeof addr - 1; k++)
            addr[k] = isprint((unsigned char)ad[k]) ? ad[k] : '?';
        addr[k] = '\0';
    }
    if (!bus_frame_is(&part[0], "1.0")) {
        text = "unsupported ZAP version";
    } else if (n < 7 || !bus_frame_is(&part[5], "CURVE") || zmq_msg_size(&part[6]) != BUS_KEY_LEN) {
        text = "CURVE required";
        log_warn(BUS_SUBSYS, "refused subscriber from %s: not CURVE", addr);
    } else if (bus_key_known(b, zmq_msg_data(&part[6]))) {
        code = "200";
        text = "OK";
        log_debug(BUS_SUBSYS, "authorised subscriber from %s", addr);
    } else {
        char z85[BUS_Z85_KEY_LEN + 1];
        if (!zmq_z85_encode(z85, zmq_msg_data(&part[6]), BUS_KEY_LEN))
            strcpy(z85, "?");
        log_warn(BUS_SUBSYS, "refused subscriber from %s: unknown CURVE key %s", addr, z85);
    }

    /* version, request id (echoed), status code, status text, user id, metadata */
    if (bus_send_frame(b->zap, "1.0", 3, ZMQ_SNDMORE) != 0 ||
        zmq_msg_send(&part[1], b->zap, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        bus_send_frame(b->zap, code, 3, ZMQ_SNDMORE) != 0 ||
        bus_send_frame(b->zap, text, strlen(text), ZMQ_SNDMORE) != 0 ||
        bus_send_frame(b->zap, "", 0, ZMQ_SNDMORE) != 0 ||
        bus_send_frame(b->zap, "", 0, 0) != 0)
        bus_log_errno(LOG_LVL_WARN, "ZAP: reply failed");
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]); /* a sent message is empty again; closing is safe */
}

/* ---- the connection limit ------------------------------------------------------- */

/* Is fd still a TCP socket of the bus port? Guards shutdown() against a
 * descriptor that was closed and reused since its ACCEPTED event. */
static bool bus_fd_is_ours(const bus *b, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (b->bus_port == 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port) == b->bus_port;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) == b->bus_port;
    return false;
}

static void bus_conn_forget(bus *b, int fd)
{
    for (int i = 0; i < b->n_conn_fds; i++) {
        if (b->conn_fds[i] == fd) {
            if (!b->conn_refused[i])
                b->n_kept--;
            b->n_conn_fds--;
            b->conn_fds[i] = b->conn_fds[b->n_conn_fds];
            b->conn_refused[i] = b->conn_refused[b->n_conn_fds];
            return;
        }
    }
}

static void bus_conn_accepted(bus *b, int fd)
{
    bus_conn_forget(b, fd); /* a stale entry of a reused descriptor */
    if (b->n_conn_fds == b->cap_conn_fds) {
        int cap = b->cap_conn_fds ? b->cap_conn_fds * 2 : 64;
        int *f = realloc(b->conn_fds, (size_t)cap * sizeof *f);
        if (f)
            b->conn_fds = f;
        bool *r = f ? realloc(b->conn_refused, (size_t)cap * sizeof *r) : NULL;
        if (r)
            b->conn_refused = r;
        if (!f || !r) {
            log_warn(BUS_SUBSYS, "out of memory counting connections: a new one is closed");
            if (bus_fd_is_ours(b, fd))
                shutdown(fd, SHUT_RDWR);
            return;
        }
        b->cap_conn_fds = cap;
    }
    b->conn_fds[b->n_conn_fds] = fd;
    b->conn_refused[b->n_conn_fds] = b->n_kept >= b->max_conns;
    if (!b->conn_refused[b->n_conn_fds])
        b->n_kept++;
    b->n_conn_fds++;
}

/* Reads every pending monitor event, then shuts down the connections past
 * the limit that are still open: reading all events first means a descriptor
 * whose DISCONNECTED is already queued is never touched. */
static void bus_monitor_serve(bus *b)
{
    bool any_refused = false;
    for (;;) {
        zmq_msg_t ev, ep;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, b->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            if (errno == EINTR)
                continue;
            break;
        }
        bool more = zmq_msg_more(&ev);
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), sizeof event);
            memcpy(&value, (char *)zmq_msg_data(&ev) + 2, sizeof value);
        }
        zmq_msg_close(&ev);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&ep);
            if (zmq_msg_recv(&ep, b->mon, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&ep);
                if (errno == EINTR)
                    continue;
                break;
            }
            more = zmq_msg_more(&ep);
            zmq_msg_close(&ep);
        }
        if (event == ZMQ_EVENT_ACCEPTED) {
            bus_conn_accepted(b, (int)value);
            any_refused |= b->n_conn_fds > 0 && b->conn_refused[b->n_conn_fds - 1];
        } else if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_CLOSED) {
            bus_conn_forget(b, (int)value);
        }
    }
    if (!any_refused)
        return;
    int refused = 0;
    for (int i = 0; i < b->n_conn_fds; i++) {
        if (b->conn_refused[i] && b->conn_fds[i] >= 0 && bus_fd_is_ours(b, b->conn_fds[i])) {
            shutdown(b->conn_fds[i], SHUT_RDWR);
            refused++;
        }
    }
    if (refused)
        log_warn(BUS_SUBSYS, "refusing new bus connections on %s: %d bus connections open, the limit",
                 b->endpoint, b->max_conns);
}

/* ---- the bus thread ------------------------------------------------------------ */

static void *bus_thread(void *arg)
{
    bus *b = arg;
    zmq_pollitem_t items[3] = {
        {.socket = NULL, .fd = b->efd, .events = ZMQ_POLLIN},
        {.socket = b->mon, .fd = -1, .events = ZMQ_POLLIN},
        {.socket = b->zap, .fd = -1, .events = ZMQ_POLLIN},
    };
    int nitems = b->zap ? 3 : 2;
    int64_t next_hb = bus_mono_ms() + b->heartbeat_ms;
    bool stopping = false;
    uint64_t seq = 0;

    while (!stopping) {
        int64_t now = bus_mono_ms();
        if (now >= next_hb) {
            bus_send_list(b, bus_take(b, &stopping, &seq));
            if (stopping)
                break;
            bus_send_heartbeat(b, seq);
            next_hb += b->heartbeat_ms;
            if (next_hb <= now)
                next_hb = now + b->heartbeat_ms;
            continue;
        }
        int rc = zmq_poll(items, nitems, (long)(next_hb - now));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            bus_log_errno(LOG_LVL_ERR, "zmq_poll failed, the bus thread stops");
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            uint64_t v;
            if (read(b->efd, &v, sizeof v) < 0 && errno != EAGAIN && errno != EINTR)
                log_warn_errno(BUS_SUBSYS, "eventfd read");
        }
        bus_send_list(b, bus_take(b, &stopping, &seq));
        if (items[1].revents & ZMQ_POLLIN)
            bus_monitor_serve(b);
        if (nitems > 2 && (items[2].revents & ZMQ_POLLIN))
            bus_zap_serve(b);
    }
    return NULL;
}

/* ---- public API ------------------------------------------------------------------ */

static void bus_free(bus *b)
{
    if (b->pub)
        zmq_close(b->pub);
    if (b->zap)
        zmq_close(b->zap);
    if (b->mon)
        zmq_close(b->mon);
    if (b->ctx) {
        while (zmq_ctx_term(b->ctx) != 0 && errno == EINTR)
            ;
    }
    if (b->efd >= 0)
        close(b->efd);
    bus_msg *m = b->head;
    while (m) {
        bus_msg *next = m->next;
        free(m);
        m = next;
    }
    if (b->lock_ready)
        pthread_mutex_destroy(&b->lock);
    free(b->client_keys);
    free(b->conn_fds);
    free(b->conn_refused);
    explicit_bzero(b, sizeof *b);
    free(b);
}

/* Checks the options bus_open needs before anything is made: an endpoint of
 * a usable form, and a secret key when client keys are given. Returns 0, or
 * -1 with err set. */
static int bus_check_options(const bus_options *o, char *err, size_t errlen)
{
    if (!o || !o->endpoint || !o->endpoint[0]) {
        bus_seterr(err, errlen, "no bus endpoint given");
        return -1;
    }
    if (strlen(o->endpoint) >= BUS_ENDPOINT_MAX) {
        bus_seterr(err, errlen, "bus endpoint too long");
        return -1;
    }
    if (bus_check_endpoint(o->endpoint, err, errlen) != 0)
        return -1;
    if (o->curve_clients_dir && !o->curve_secret_key_file) {
        bus_seterr(err, errlen, "CURVE clients directory given without a CURVE secret key");
        return -1;
    }
    return 0;
}

/* The connections kept at once: o's max_connections (or the default),
 * lowered with a warning when it and the descriptors the rest of the daemon
 * keeps (o->reserve_fds) do not fit under RLIMIT_NOFILE. */
static int bus_max_connections(const bus_options *o)
{
    int max_conns = o->max_connections > 0 ? o->max_connections : BUS_DEFAULT_MAX_CONNECTIONS;
    struct rlimit rl;
    if (o->reserve_fds > 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)o->reserve_fds + (rlim_t)max_conns > rl.rlim_cur) {
        long room = (long)rl.rlim_cur - o->reserve_fds;
        int lowered = room < 8 ? 8 : (int)room;
        log_warn(BUS_SUBSYS, "max_connections %d lowered to %d: the descriptor limit is %llu and "
                 "%d are kept for the journal, the spool and HTTP (raise LimitNOFILE)",
                 max_conns, lowered, (unsigned long long)rl.rlim_cur, o->reserve_fds);
        max_conns = lowered;
    }
    return max_conns;
}

/* CURVE: reads the secret key of o->curve_secret_key_file into secret
 * (BUS_Z85_KEY_LEN + 1 bytes), derives b's public key and loads the clients'
 * keys. Returns 0, or -1 with err set. */
static int bus_load_curve(bus *b, const bus_options *o, char *secret, char *err, size_t errlen)
{
    if (!zmq_has("curve")) {
        bus_seterr(err, errlen, "CURVE requested but this libzmq has no CURVE support");
        return -1;
    }
    if (bus_read_key_file(o->curve_secret_key_file, true, secret, NULL, err, errlen) != 0)
        return -1;
    if (zmq_curve_public(b->public_key, secret) != 0) {
        bus_seterr_errno(err, errlen, errno, "cannot derive the CURVE public key from %s",
                         o->curve_secret_key_file);
        return -1;
    }
    b->curve = true;
    if (o->curve_clients_dir && bus_load_client_keys(b, o->curve_clients_dir, err, errlen) != 0)
        return -1;
    return 0;
}

/* The ZAP handler's socket, bound in b's context. Returns 0, or -1 with err
 * set. */
static int bus_open_zap(bus *b, char *err, size_t errlen)
{
    b->zap = zmq_socket(b->ctx, ZMQ_REP);
    if (!b->zap) {
        bus_seterr_errno(err, errlen, errno, "zmq_socket(REP)");
        return -1;
    }
    if (bus_setopt_int(b->zap, ZMQ_LINGER, 0, "ZMQ_LINGER", err, errlen) != 0)
        return -1;
    if (zmq_bind(b->zap, BUS_ZAP_ENDPOINT) != 0) {
        bus_seterr_errno(err, errlen, errno, "cannot bind the ZAP handler");
        return -1;
    }
    return 0;
}

/* The PUB socket with its options: high-water mark hwm, no linger, ZMTP
 * heartbeats, TCP keepalive, the handshake time and the largest inbound
 * message. Returns 0, or -1 with err set. */
static int bus_open_pub(bus *b, int hwm, char *err, size_t errlen)
{
    b->pub = zmq_socket(b->ctx, ZMQ_PUB);
    if (!b->pub) {
        bus_seterr_errno(err, errlen, errno, "zmq_socket(PUB)");
        return -1;
    }
    if (bus_setopt_int(b->pub, ZMQ_SNDHWM, hwm, "ZMQ_SNDHWM", err, errlen) != 0 ||
        bus_setopt_int(b->pub, ZMQ_LINGER, 0, "ZMQ_LINGER", err, errlen) != 0 ||
        bus_setopt_int(b->pub, ZMQ_HEARTBEAT_IVL, BUS_ZMTP_HEARTBEAT_IVL_MS, "ZMQ_HEARTBEAT_IVL",
                       err, errlen) != 0 ||
        bus_setopt_int(b->pub, ZMQ_HEARTBEAT_TIMEOUT, BUS_ZMTP_HEARTBEAT_TIMEOUT_MS,
                       "ZMQ_HEARTBEAT_TIMEOUT", err, errlen) != 0 ||
        bus_setopt_int(b->pub, ZMQ_HEARTBEAT_TTL, BUS_ZMTP_HEARTBEAT_TTL_MS, "ZMQ_HEARTBEAT_TTL",
                       err, errlen) != 0 ||
        bus_setopt_int(b->pub, ZMQ_TCP_KEEPALIVE, 1, "ZMQ_TCP_KEEPALIVE", err, errlen) != 0 ||
        bus_setopt_int(b->pub, ZMQ_HANDSHAKE_IVL, BUS_HANDSHAKE_MS, "ZMQ_HANDSHAKE_IVL", err,
                       errlen) != 0)
        return -1;
    int64_t maxmsg = BUS_MAX_INBOUND;
    if (zmq_setsockopt(b->pub, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        bus_seterr_errno(err, errlen, errno, "zmq_setsockopt(ZMQ_MAXMSGSIZE)");
        return -1;
    }
    return 0;
}

/* The connection count: the PUB socket's monitor and the socket b->mon that
 * reads it. The monitor must see every ACCEPTED, so this comes before the
 * bind. Returns 0, or -1 with err set. */
static int bus_open_monitor(bus *b, char *err, size_t errlen)
{
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, BUS_MONITOR_ENDPOINT, (void *)b);
    if (zmq_socket_monitor(b->pub, mon_ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
        bus_seterr_errno(err, errlen, errno, "zmq_socket_monitor");
        return -1;
    }
    b->mon = zmq_socket(b->ctx, ZMQ_PAIR);
    if (!b->mon || bus_setopt_int(b->mon, ZMQ_LINGER, 0, "ZMQ_LINGER", err, errlen) != 0 ||
        zmq_connect(b->mon, mon_ep) != 0) {
        bus_seterr_errno(err, errlen, errno, "cannot read the bus monitor");
        return -1;
    }
    return 0;
}

/* Makes the PUB socket a CURVE server with the secret key secret, its
 * clients checked by the ZAP handler's domain. Returns 0, or -1 with err
 * set. */
static int bus_pub_curve(bus *b, const char *secret, char *err, size_t errlen)
{
    if (bus_setopt_int(b->pub, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER", err, errlen) != 0)
        return -1;
    if (zmq_setsockopt(b->pub, ZMQ_CURVE_SECRETKEY, secret, BUS_Z85_KEY_LEN) != 0) {
        bus_seterr_errno(err, errlen, errno, "zmq_setsockopt(ZMQ_CURVE_SECRETKEY)");
        return -1;
    }
    if (zmq_setsockopt(b->pub, ZMQ_ZAP_DOMAIN, BUS_ZAP_DOMAIN, strlen(BUS_ZAP_DOMAIN)) != 0) {
        bus_seterr_errno(err, errlen, errno, "zmq_setsockopt(ZMQ_ZAP_DOMAIN)");
        return -1;
    }
    return 0;
}

/* Binds the PUB socket to endpoint and keeps the endpoint it got (a tcp
 * port 0 becomes the real one) and, for tcp, its port. Returns 0, or -1
 * with err set. */
static int bus_bind(bus *b, const char *endpoint, char *err, size_t errlen)
{
    if (zmq_bind(b->pub, endpoint) != 0) {
        bus_seterr_errno(err, errlen, errno, "cannot bind %s", endpoint);
        return -1;
    }
    size_t elen = sizeof b->endpoint;
    if (zmq_getsockopt(b->pub, ZMQ_LAST_ENDPOINT, b->endpoint, &elen) != 0) {
        bus_seterr_errno(err, errlen, errno, "zmq_getsockopt(ZMQ_LAST_ENDPOINT)");
        return -1;
    }
    b->endpoint[sizeof b->endpoint - 1] = '\0';
    if (strncmp(b->endpoint, "tcp://", 6) == 0) {
        const char *colon = strrchr(b->endpoint, ':');
        b->bus_port = colon ? atoi(colon + 1) : 0;
    }
    return 0;
}

/* Starts the bus thread and the eventfd that wakes it. Returns 0, or -1
 * with err set. */
static int bus_start_thread(bus *b, char *err, size_t errlen)
{
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0) {
        bus_seterr_errno(err, errlen, errno, "eventfd");
        return -1;
    }
    /* The bus thread takes no signals: the daemon's main loop handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int prc = pthread_create(&b->thread, NULL, bus_thread, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        bus_seterr_errno(err, errlen, prc, "pthread_create");
        return -1;
    }
    b->thread_started = true;
    return 0;
}

bus *bus_open(const bus_options *o, char *err, size_t errlen)
{
    bus_seterr(err, errlen, "%s", "");
    if (bus_check_options(o, err, errlen) != 0)
        return NULL;
    bus *b = calloc(1, sizeof *b);
    if (!b) {
        bus_seterr(err, errlen, "out of memory");
        return NULL;
    }
    b->efd = -1;
    b->queue_max = o->queue_max > 0 ? (size_t)o->queue_max : BUS_DEFAULT_QUEUE_MAX;
    b->heartbeat_ms = 1000L * (o->heartbeat_s > 0 ? o->heartbeat_s : BUS_DEFAULT_HEARTBEAT_S);
    b->now_fn = o->now_fn;
    b->now_ud = o->now_ud;
    b->seq = o->seq;
    int hwm = o->hwm > 0 ? o->hwm : BUS_DEFAULT_HWM;
    b->max_conns = bus_max_connections(o);
    char secret[BUS_Z85_KEY_LEN + 1] = "";

    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        bus_seterr(err, errlen, "pthread_mutex_init failed");
        goto fail;
    }
    b->lock_ready = true;
    if (o->curve_secret_key_file && bus_load_curve(b, o, secret, err, errlen) != 0)
        goto fail;
    b->ctx = zmq_ctx_new();
    if (!b->ctx) {
        bus_seterr_errno(err, errlen, errno, "zmq_ctx_new");
        goto fail;
    }
    /* The ZAP handler must be bound before any client can connect. */
    if ((o->curve_clients_dir && bus_open_zap(b, err, errlen) != 0) ||
        bus_open_pub(b, hwm, err, errlen) != 0 || bus_open_monitor(b, err, errlen) != 0 ||
        (b->curve && bus_pub_curve(b, secret, err, errlen) != 0) ||
        bus_bind(b, o->endpoint, err, errlen) != 0 || bus_start_thread(b, err, errlen) != 0)
        goto fail;
    explicit_bzero(secret, sizeof secret);
    return b;

fail:
    explicit_bzero(secret, sizeof secret);
    bus_free(b);
    return NULL;
}

static int bus_enqueue(bus *b, const char *topic, const char *json, size_t len, bool has_seq,
                       uint64_t seq)
{
    if (!b || !topic || (!json && len > 0) || len > BUS_MAX_BODY) {
        errno = EINVAL;
        return -1;
    }
    size_t tlen = strnlen(topic, BUS_MAX_TOPIC + 1);
    if (tlen == 0 || tlen > BUS_MAX_TOPIC) {
        errno = EINVAL;
        return -1;
    }
    bus_msg *m = malloc(sizeof *m + tlen + len);
    if (!m) {
        pthread_mutex_lock(&b->lock);
        b->dropped++;
        if (has_seq && seq > b->seq)
            b->seq = seq;
        pthread_mutex_unlock(&b->lock);
        errno = ENOMEM;
        return -1;
    }
    m->next = NULL;
    m->topic_len = tlen;
    m->body_len = len;
    memcpy(m->data, topic, tlen);
    if (len)
        memcpy(m->data + tlen, json, len);

    bool wake = false, full = false;
    pthread_mutex_lock(&b->lock);
    if (has_seq && seq > b->seq)
        b->seq = seq;
    if (b->stopping || b->queued >= b->queue_max) {
        full = true;
        b->dropped++;
    } else {
        wake = b->head == NULL;
        if (b->tail)
            b->tail->next = m;
        else
            b->head = m;
        b->tail = m;
        b->queued++;
    }
    pthread_mutex_unlock(&b->lock);

    if (full) {
        free(m);
        errno = ENOBUFS;
        return -1;
    }
    if (wake) {
        uint64_t one = 1;
        /* EAGAIN means the counter is already non-zero: the thread will wake. */
        if (write(b->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_warn_errno(BUS_SUBSYS, "eventfd write");
    }
    return 0;
}

int bus_publish(bus *b, const char *topic, const char *json, size_t len)
{
    return bus_enqueue(b, topic, json, len, false, 0);
}

int bus_publish_alert(bus *b, const char *topic, const char *json, size_t len, uint64_t seq)
{
    return bus_enqueue(b, topic, json, len, true, seq);
}

const char *bus_endpoint(const bus *b)
{
    return b ? b->endpoint : NULL;
}

const char *bus_curve_public_key(const bus *b)
{
    return b && b->curve ? b->public_key : NULL;
}

void bus_stats(bus *b, uint64_t *published, uint64_t *dropped)
{
    uint64_t p = 0, d = 0;
    if (b) {
        pthread_mutex_lock(&b->lock);
        p = b->published;
        d = b->dropped;
        pthread_mutex_unlock(&b->lock);
    }
    if (published)
        *published = p;
    if (dropped)
        *dropped = d;
}

void bus_close(bus *b)
{
    if (!b)
        return;
    if (b->thread_started) {
        pthread_mutex_lock(&b->lock);
        b->stopping = true;
        pthread_mutex_unlock(&b->lock);
        uint64_t one = 1;
        if (write(b->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_errno(BUS_SUBSYS, "eventfd write at close");
        int rc = pthread_join(b->thread, NULL);
        if (rc != 0)
            log_err_rc(BUS_SUBSYS, rc, "pthread_join");
    }
    bus_free(b);
}
