/*
 * http.c — libmicrohttpd wrapper (see http.h).
 *
 * Two measured pitfalls of libmicrohttpd 0.9.75 shape the handler (docs/ARCHITECTURE.md,
 * Facts measured on the libraries): the response is queued on the second call of the access
 * handler, never the first (the first makes MHD send Connection: close); and
 * the URL is unescaped by our own callback, which turns an encoded '/', NUL
 * or control byte into 0x01 so that api.c can refuse it instead of seeing a
 * path it never sent.
 *
 * An answer a route defers (api.h: a graph to draw, which waits for its
 * series' RRD write and a graph worker) is not run on the HTTP thread, which
 * could not serve its other connections meanwhile: the connection is
 * suspended, one of HTTP_DRAWERS drawer threads runs the work, leaves the
 * response in the request's state and resumes the connection, and the
 * handler, called again, queues it. http_stop lets the drawers finish their
 * queue (each resumes its connection) before stopping libmicrohttpd; a
 * request deferred after that is drawn on its HTTP thread.
 *
 * Each connection gets HTTP_CONN_MEMORY bytes of libmicrohttpd's pool (the
 * request header, the answer's header): MHD clears the pool between two
 * requests of a connection, so every byte more costs every request.
 *
 * Limits against hostile clients (parkpulse.conf(5), HTTP SECTION and LIMITS):
 *   - every connection is tracked from libmicrohttpd's connection notifier:
 *     one that has not sent a complete request header within
 *     http.header_timeout seconds of opening (or of its previous answer) is
 *     closed by a sweep thread, and so is a request not answered within
 *     http.timeout seconds of its header (event streams excepted);
 *   - http.max_connections and http.max_per_ip count connections other than
 *     event streams; when a new connection would pass either, the oldest
 *     connection of that scope still waiting for its header is closed to make
 *     room (a slow-header attacker loses its own connections first), and
 *     1/16 of max_connections is kept free that way so that a new client can
 *     always be accepted;
 *   - event streams have their own slots (http.max_streams in total,
 *     http.max_streams_per_ip per address); a suspended stream whose client
 *     has gone is noticed by the sweep (the socket reads EOF) and ended;
 *   - a write's Authorization is checked on the first call of the access
 *     handler, before a byte of body is read; a refusal is queued at once, so
 *     MHD answers with Connection: close and never reads the body. After
 *     AUTH_FAIL_MAX wrong tokens within AUTH_FAIL_WINDOW_S seconds an address
 *     gets 429 with Retry-After until the window ends; wrong tokens are
 *     logged with the address, once per window;
 *   - bodies are only buffered for a route that takes one (api.h:
 *     api_route_takes_body, POST /api/v1/observations), at most
 *     http.max_body each (a larger one is read and dropped, then 413) and
 *     http.max_buffered for all connections together (past it: 503 with
 *     Retry-After, at once when Content-Length tells); any other body is
 *     read and dropped;
 *   - an HTTP/1.1 request without Host, or with both Content-Length and
 *     Transfer-Encoding (RFC 9112 6.3: a smuggling attempt), is refused with
 *     400 and the connection closed;
 *   - the descriptor budget: HTTP needs max_connections + max_streams
 *     descriptors plus HTTP_FD_RESERVE for the rest of the daemon; with a
 *     lower RLIMIT_NOFILE the stream slots are lowered at start (logged).
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "hash.h"
#include "log.h"
#include "vec.h"

#define SSE_KEEPALIVE_S 15   /* a comment line this often keeps proxies and browsers content */
#define SWEEP_MS 250         /* how often slow connections and gone streams are looked for */
#define AUTH_FAIL_MAX 10     /* wrong tokens from one address ... */
#define AUTH_FAIL_WINDOW_S 60 /* ... within this many seconds: 429 until the window ends */
#define AUTH_SLOTS 256
#define RETRY_AFTER_BUSY_S 5 /* Retry-After of a 503 for the body budget or stream slots */
#define HTTP_CONN_MEMORY (32 * 1024) /* per connection: MHD_OPTION_CONNECTION_MEMORY_LIMIT */
#define HTTP_DRAWERS 8       /* threads that finish deferred answers (graphs being drawn) */

/* A client address as a comparable key: family byte + 16 bytes. */
typedef struct addr_key {
    unsigned char b[17];
} addr_key;

/* One TCP connection, from libmicrohttpd's STARTED to its CLOSED notice. */
typedef struct http_peer {
    struct MHD_Connection *conn;
    int fd;
    addr_key addr;
    char addr_text[INET6_ADDRSTRLEN];
    int64_t opened_ms;
    int64_t deadline_ms;         /* closed past it; 0: none (an event stream) */
    bool waiting;                /* no request header yet (evictable) */
    bool stream;                 /* an event stream: counted apart */
    bool closing;                /* shut down by us; not counted any more */
    struct http_peer *prev, *next;
} http_peer;

typedef struct auth_slot {
    addr_key addr;
    int64_t window_start;        /* monotonic seconds; 0: empty */
    int fails;
} auth_slot;

/* One Server-Sent Events stream. While it has nothing to send, its connection
 * is suspended (no thread, no polling); http_sse_wake() resumes it when an
 * alert is raised or its keep-alive is due. */
typedef struct sse_stream {
    struct http_server *srv;
    struct MHD_Connection *conn;
    int fd;
    addr_key addr;
    bool gone;                   /* the client closed: end the stream */
    uint64_t last_seq;
    bool suspended;
    int64_t next_keepalive;      /* monotonic seconds */
    char *pending;               /* bytes not yet handed to MHD */
    size_t pending_len, pending_off;
    struct sse_stream *prev, *next;
} sse_stream;

struct http_server {
    struct MHD_Daemon *mhd;
    pp_app *app;
    long max_body;
    size_t max_buffered;
    _Atomic size_t buffered;     /* bytes reserved for bodies by all connections */
    int max_conns, max_per_ip, headroom, max_streams, max_streams_per_ip;
    int header_timeout_ms, request_timeout_ms;
    int port;
    pthread_mutex_t sse_lock;
    sse_stream *streams;
    int n_streams;
    bool stopping;

    pthread_mutex_t peer_lock;   /* guards the peers, their counts and auth[] */
    http_peer *peers_head, *peers_tail; /* oldest first */
    int n_plain;                 /* counted connections that are not streams */
    auth_slot auth[AUTH_SLOTS];

    /* deferred answers (api.h): their connections are suspended meanwhile */
    pthread_mutex_t defer_lock;
    pthread_cond_t defer_cond;
    struct http_deferred *defer_head, *defer_tail;
    bool defer_stop;             /* no more are taken; the drawers finish the queue */
    pthread_t drawers[HTTP_DRAWERS];
    int n_drawers;

    pthread_t sweeper;
    bool sweeper_started;
    pthread_mutex_t sweep_lock;
    pthread_cond_t sweep_cond;
    bool sweep_stop;
};

/* Per-request state, kept in *req_cls between calls of the access handler. */
typedef struct http_conn {
    char *body;
    size_t len, cap;
    size_t reserved;             /* of srv->buffered */
    bool buffer;                 /* the body is wanted (POST /api/v1/observations) */
    bool too_large;
    bool over_budget;            /* srv->max_buffered reached: 503 */
    bool stream;                 /* GET of the event stream (matched on the first call) */
    bool finished;               /* a deferred answer is in `answer`: send it */
    api_response answer;
} http_conn;

/* One deferred answer on its way: run by a drawer thread, which then puts
 * the response into the connection's http_conn and resumes it. */
typedef struct http_deferred {
    api_deferred *work;
    struct MHD_Connection *conn;
    http_conn *hc;
    struct http_deferred *next;
} http_deferred;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t http_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int hi, lo;
        if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            unsigned char v = (unsigned char)(hi * 16 + lo);
            *w++ = (v == '/' || v < 0x20 || v == '\\') ? '\x01' : (char)v;
            r += 2;
        } else if (*r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static const char *query_lookup(void *ctx, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)ctx, MHD_GET_ARGUMENT_KIND, key);
}

/* An HTTP date; the last one each thread formatted is kept, as most answers
 * in a row carry the same Last-Modified (a cached graph under load). */
static void http_date(int64_t t, char *buf, size_t len)
{
    static _Thread_local int64_t last_t = -1;
    static _Thread_local char last[64];
    if (t != last_t) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        if (strftime(last, sizeof last, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
            last[0] = '\0';
        last_t = t;
    }
    snprintf(buf, len, "%s", last);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, api_response *r)
{
    struct MHD_Response *resp;
    if (r->shared != NULL) /* a cached body: MHD holds one reference until it is sent */
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            r->len, (void *)api_blob_data(r->shared), api_blob_release, r->shared);
    else
        resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"",
                                               r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        api_response_free(r);
        return MHD_NO;
    }
    r->body = NULL; /* now owned by MHD */
    r->shared = NULL;
    if (r->content_type && r->status != 304)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->last_modified > 0) {
        char d[64];
        http_date(r->last_modified, d, sizeof d);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, d);
    }
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->disposition[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, r->disposition);
    if (r->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (r->has_rrd_pending) {
        char n[24];
        snprintf(n, sizeof n, "%zu", r->rrd_pending);
        MHD_add_response_header(resp, "X-RRD-Pending", n);
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_of(const struct sockaddr *sa, addr_key *k, char *text, size_t tlen)
{
    memset(k, 0, sizeof *k);
    if (text && tlen)
        snprintf(text, tlen, "?");
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        k->b[0] = 4;
        memcpy(k->b + 1, &a->sin_addr, 4);
        if (text)
            inet_ntop(AF_INET, &a->sin_addr, text, (socklen_t)tlen);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        k->b[0] = 6;
        memcpy(k->b + 1, &a->sin6_addr, 16);
        if (text)
            inet_ntop(AF_INET6, &a->sin6_addr, text, (socklen_t)tlen);
    }
}

static http_peer *peer_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Closes a connection from outside libmicrohttpd: the socket is shut down,
 * MHD reads EOF and closes it itself. peer_lock held; p's descriptor is valid
 * until its CLOSED notice, which takes the same lock. */
static void peer_close(http_server *srv, http_peer *p)
{
    if (p->closing)
        return;
    p->closing = true;
    if (!p->stream)
        srv->n_plain--;
    shutdown(p->fd, SHUT_RDWR);
}

/* The oldest connection still waiting for its request header, of one
 * address or of any (addr NULL). peer_lock held. */
static http_peer *oldest_waiting(http_server *srv, const addr_key *addr, const http_peer *not)
{
    for (http_peer *p = srv->peers_head; p; p = p->next)
        if (p != not && p->waiting && !p->closing && !p->stream &&
            (addr == NULL || memcmp(&p->addr, addr, sizeof *addr) == 0))
            return p;
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_peer *p = *socket_context;
        if (p == NULL)
            return;
        pthread_mutex_lock(&srv->peer_lock);
        if (!p->closing && !p->stream)
            srv->n_plain--;
        if (p->prev)
            p->prev->next = p->next;
        else
            srv->peers_head = p->next;
        if (p->next)
            p->next->prev = p->prev;
        else
            srv->peers_tail = p->prev;
        pthread_mutex_unlock(&srv->peer_lock);
        free(p);
        *socket_context = NULL;
        return;
    }
    http_peer *p = calloc(1, sizeof *p);
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (p == NULL || fi == NULL) {
        if (fi)
            shutdown(fi->connect_fd, SHUT_RDWR); /* cannot track it: refuse it */
        free(p);
        *socket_context = NULL;
        return;
    }
    p->conn = conn;
    p->fd = fi->connect_fd;
    addr_of(ai ? ai->client_addr : NULL, &p->addr, p->addr_text, sizeof p->addr_text);
    p->opened_ms = mono_ms();
    p->deadline_ms = p->opened_ms + srv->header_timeout_ms;
    p->waiting = true;
    *socket_context = p;

    pthread_mutex_lock(&srv->peer_lock);
    p->prev = srv->peers_tail;
    if (srv->peers_tail)
        srv->peers_tail->next = p;
    else
        srv->peers_head = p;
    srv->peers_tail = p;
    srv->n_plain++;
    int same = 0;
    for (http_peer *q = srv->peers_head; q; q = q->next)
        if (!q->closing && !q->stream && memcmp(&q->addr, &p->addr, sizeof p->addr) == 0)
            same++;
    if (same > srv->max_per_ip) {
        http_peer *v = oldest_waiting(srv, &p->addr, p);
        peer_close(srv, v ? v : p);
    }
    if (!p->closing && srv->n_plain > srv->max_conns - srv->headroom) {
        http_peer *v = oldest_waiting(srv, NULL, p);
        if (v)
            peer_close(srv, v);
        else if (srv->n_plain > srv->max_conns)
            peer_close(srv, p);
    }
    pthread_mutex_unlock(&srv->peer_lock);
}

/* A request's header is complete: the connection is no longer evictable and
 * has request_timeout to be answered. */
static void peer_request_started(http_server *srv, http_peer *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&srv->peer_lock);
    p->waiting = false;
    p->deadline_ms = mono_ms() + srv->request_timeout_ms;
    pthread_mutex_unlock(&srv->peer_lock);
}

/* Answered: the next request's header is waited for. */
static void peer_request_done(http_server *srv, http_peer *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&srv->peer_lock);
    if (!p->stream) {
        p->waiting = true;
        p->deadline_ms = mono_ms() + srv->header_timeout_ms;
    }
    pthread_mutex_unlock(&srv->peer_lock);
}

/* The connection carries an event stream from now on: no deadline, and it
 * leaves the count of ordinary connections. */
static void peer_became_stream(http_server *srv, http_peer *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&srv->peer_lock);
    if (!p->stream && !p->closing)
        srv->n_plain--;
    p->stream = true;
    p->waiting = false;
    p->deadline_ms = 0;
    pthread_mutex_unlock(&srv->peer_lock);
}

/* ---- wrong tokens ---- */

static auth_slot *auth_slot_of(http_server *srv, const addr_key *a)
{
    return &srv->auth[pp_hash_bytes(PP_FNV_OFFSET, a->b, sizeof a->b) % AUTH_SLOTS];
}

/* Seconds this address must wait (it failed too often), or 0. */
static int auth_blocked(http_server *srv, const addr_key *a)
{
    int64_t now = mono_ms() / 1000;
    int wait = 0;
    pthread_mutex_lock(&srv->peer_lock);
    auth_slot *s = auth_slot_of(srv, a);
    if (s->window_start && memcmp(&s->addr, a, sizeof *a) == 0 &&
        now < s->window_start + AUTH_FAIL_WINDOW_S && s->fails >= AUTH_FAIL_MAX)
        wait = (int)(s->window_start + AUTH_FAIL_WINDOW_S - now);
    pthread_mutex_unlock(&srv->peer_lock);
    return wait < 1 && wait != 0 ? 1 : wait;
}

/* Counts a wrong token; logs the first of a window and the start of 429s. */
static void auth_failed(http_server *srv, const addr_key *a, const char *text)
{
    int64_t now = mono_ms() / 1000;
    int fails;
    pthread_mutex_lock(&srv->peer_lock);
    auth_slot *s = auth_slot_of(srv, a);
    if (s->window_start == 0 || memcmp(&s->addr, a, sizeof *a) != 0 ||
        now >= s->window_start + AUTH_FAIL_WINDOW_S) {
        s->addr = *a;
        s->window_start = now;
        s->fails = 0;
    }
    fails = ++s->fails;
    pthread_mutex_unlock(&srv->peer_lock);
    if (fails == 1)
        log_warn("http", "wrong or missing bearer token from %s", text);
    else if (fails == AUTH_FAIL_MAX)
        log_warn("http", "%d wrong bearer tokens from %s within %d s: its writes are answered "
                 "429 until the %d s are over", fails, text, AUTH_FAIL_WINDOW_S, AUTH_FAIL_WINDOW_S);
}

/* ---- the sweep: slow headers, slow requests, gone streams ---- */

static void sweep_streams(http_server *srv)
{
    pthread_mutex_lock(&srv->sse_lock);
    for (sse_stream *s = srv->streams; s; s = s->next) {
        if (!s->suspended || s->gone)
            continue;
        /* an event stream's client sends nothing after its request: a
         * readable socket is an EOF or an error, i.e. the client is gone */
        struct pollfd pfd = { .fd = s->fd, .events = POLLIN | POLLRDHUP };
        if (poll(&pfd, 1, 0) == 1) {
            char c;
            ssize_t n = recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
                (pfd.revents & (POLLHUP | POLLERR | POLLRDHUP))) {
                s->gone = true;
                s->suspended = false;
                MHD_resume_connection(s->conn);
            }
        }
    }
    pthread_mutex_unlock(&srv->sse_lock);
}

static void *sweeper(void *arg)
{
    http_server *srv = arg;
    pthread_mutex_lock(&srv->sweep_lock);
    while (!srv->sweep_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SWEEP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->sweep_cond, &srv->sweep_lock, &until);
        if (srv->sweep_stop)
            break;
        pthread_mutex_unlock(&srv->sweep_lock);

        int64_t now = mono_ms();
        int slow = 0;
        pthread_mutex_lock(&srv->peer_lock);
        for (http_peer *p = srv->peers_head; p; p = p->next) {
            if (!p->closing && p->deadline_ms && now >= p->deadline_ms) {
                peer_close(srv, p);
                slow++;
            }
        }
        pthread_mutex_unlock(&srv->peer_lock);
        if (slow)
            log_info("http", "closed connections too slow to send a request");
        sweep_streams(srv);
        log_flush();

        pthread_mutex_lock(&srv->sweep_lock);
    }
    pthread_mutex_unlock(&srv->sweep_lock);
    return NULL;
}

static enum MHD_Result refuse(struct MHD_Connection *conn, int status, const char *msg, int retry_after)
{
    api_response r;
    memset(&r, 0, sizeof r);
    api_error(&r, status, msg);
    r.retry_after = retry_after;
    return send_response(conn, &r);
}

/* Takes n more bytes of the body budget; false when it is spent. */
static bool budget_take(http_server *srv, http_conn *hc, size_t n)
{
    size_t cur = atomic_load(&srv->buffered);
    do {
        if (cur + n > srv->max_buffered || cur + n < cur)
            return false;
    } while (!atomic_compare_exchange_weak(&srv->buffered, &cur, cur + n));
    hc->reserved += n;
    return true;
}

/* The checks of the first call, on the header alone. Returns MHD_YES with
 * *answered false to go on reading, or the result of a queued refusal. */
static enum MHD_Result first_call(http_server *srv, struct MHD_Connection *conn, http_conn *hc,
                                  const char *url, const char *method, const char *version,
                                  bool *answered)
{
    http_peer *peer = peer_of(conn);
    peer_request_started(srv, peer);
    *answered = true;
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (te != NULL && cl != NULL)
        return refuse(conn, 400, "both Content-Length and Transfer-Encoding", 0);
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL)
        return refuse(conn, 400, "an HTTP/1.1 request needs a Host header", 0);

    api_match m;
    int matched = api_route_match(method, url, &m);
    hc->stream = matched == 0 && strcmp(method, "GET") == 0 && api_route_is_stream(m.route);
    if (matched == 0 && api_route_takes_body(m.route)) {
        addr_key a;
        char text[INET6_ADDRSTRLEN];
        if (peer) {
            a = peer->addr;
            snprintf(text, sizeof text, "%s", peer->addr_text);
        } else {
            const union MHD_ConnectionInfo *ai =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            addr_of(ai ? ai->client_addr : NULL, &a, text, sizeof text);
        }
        int wait = auth_blocked(srv, &a);
        if (wait > 0)
            return refuse(conn, 429, "too many wrong tokens from this address: try again later", wait);
        api_response r;
        memset(&r, 0, sizeof r);
        if (api_authorize(srv->app, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                                MHD_HTTP_HEADER_AUTHORIZATION),
                          &r) != 0) {
            if (r.status == 401)
                auth_failed(srv, &a, text);
            return send_response(conn, &r);
        }
        if (cl != NULL) {
            uint64_t n;
            if (!api_parse_uint(cl, UINT64_MAX, &n))
                return refuse(conn, 400, "bad Content-Length", 0);
            if (n > (uint64_t)srv->max_body) {
                /* drained unbuffered, then 413: a client that writes its
                 * whole body before reading still gets the answer */
                hc->too_large = true;
                *answered = false;
                return MHD_YES;
            }
            if (!budget_take(srv, hc, (size_t)n))
                return refuse(conn, 503, "too many uploads at once: try again later", RETRY_AFTER_BUSY_S);
            /* the whole body in one allocation: no doubling reallocs that
             * would hold twice the budget for a moment */
            if (n > 0 && (hc->body = malloc((size_t)n + 1)) != NULL)
                hc->cap = (size_t)n + 1;
        }
        hc->buffer = true;
    }
    *answered = false;
    return MHD_YES;
}

/* Fills s->pending with the next thing to send; false when there is nothing. */
static bool sse_fill(sse_stream *s)
{
    alert_engine *ae = s->srv->app->alerts;
    uint64_t seq = 0;
    char *json = ae ? alert_next(ae, s->last_seq, &seq) : NULL;
    jbuf b;
    jbuf_init(&b);
    if (json) {
        jbuf_printf(&b, "id: %llu\nevent: alert\ndata: %s\n\n", (unsigned long long)seq, json);
        free(json);
        s->last_seq = seq;
    } else if (mono_now() >= s->next_keepalive) {
        jbuf_puts(&b, ": keep-alive\n\n");
    } else {
        return false;
    }
    s->next_keepalive = mono_now() + SSE_KEEPALIVE_S;
    free(s->pending);
    s->pending = jbuf_take(&b, &s->pending_len);
    s->pending_off = 0;
    return s->pending != NULL;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    sse_stream *s = cls;
    http_server *srv = s->srv;
    ssize_t n = 0;
    pthread_mutex_lock(&srv->sse_lock);
    if (srv->stopping || s->gone) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (s->pending_off < s->pending_len || sse_fill(s)) {
        size_t left = s->pending_len - s->pending_off;
        n = (ssize_t)(left < max ? left : max);
        memcpy(buf, s->pending + s->pending_off, (size_t)n);
        s->pending_off += (size_t)n;
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&srv->sse_lock);
    return n;
}

static void sse_free(void *cls)
{
    sse_stream *s = cls;
    http_server *srv = s->srv;
    pthread_mutex_lock(&srv->sse_lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->n_streams--;
    pthread_mutex_unlock(&srv->sse_lock);
    free(s->pending);
    free(s);
}

static enum MHD_Result sse_start(http_server *srv, struct MHD_Connection *conn)
{
    api_response r;
    memset(&r, 0, sizeof r);
    if (srv->app->alerts == NULL) {
        api_error(&r, 503, "alerts are not available");
        return send_response(conn, &r);
    }
    sse_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MHD_NO;
    s->srv = srv;
    s->conn = conn;
    s->last_seq = alert_seq(srv->app->alerts);
    const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    uint64_t last_seq;
    if (last && api_parse_uint(last, UINT64_MAX, &last_seq))
        s->last_seq = last_seq;
    http_peer *peer = peer_of(conn);
    const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = fi ? fi->connect_fd : -1;
    if (peer) {
        s->addr = peer->addr;
    } else {
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        addr_of(ai ? ai->client_addr : NULL, &s->addr, NULL, 0);
    }
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "retry: 5000\n: parkpulse alert stream\n\n");
    s->pending = jbuf_take(&b, &s->pending_len);
    s->next_keepalive = mono_now() + SSE_KEEPALIVE_S;

    pthread_mutex_lock(&srv->sse_lock);
    int same = 0;
    for (sse_stream *o = srv->streams; o; o = o->next)
        same += memcmp(&o->addr, &s->addr, sizeof s->addr) == 0;
    if (srv->n_streams >= srv->max_streams || same >= srv->max_streams_per_ip || srv->stopping) {
        bool mine = same >= srv->max_streams_per_ip;
        pthread_mutex_unlock(&srv->sse_lock);
        free(s->pending);
        free(s);
        api_error(&r, 503, mine ? "too many event streams from this address"
                                : "too many event streams");
        r.retry_after = RETRY_AFTER_BUSY_S;
        return send_response(conn, &r);
    }
    s->next = srv->streams;
    if (srv->streams)
        srv->streams->prev = s;
    srv->streams = s;
    srv->n_streams++;
    pthread_mutex_unlock(&srv->sse_lock);

    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (resp == NULL) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    peer_became_stream(srv, peer);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

void http_sse_wake(http_server *srv, bool keepalive_only)
{
    if (srv == NULL)
        return;
    int64_t now = mono_now();
    pthread_mutex_lock(&srv->sse_lock);
    for (sse_stream *s = srv->streams; s; s = s->next) {
        if (s->suspended && (!keepalive_only || now >= s->next_keepalive)) {
            s->suspended = false;
            MHD_resume_connection(s->conn);
        }
    }
    pthread_mutex_unlock(&srv->sse_lock);
}


/* A drawer thread: takes deferred answers until told to stop and the queue
 * is empty. The connection stays suspended until its answer is in hc, so
 * MHD neither calls it back nor frees hc meanwhile; after
 * MHD_resume_connection neither is touched here again. */
static void *drawer(void *arg)
{
    http_server *srv = arg;
    pthread_mutex_lock(&srv->defer_lock);
    for (;;) {
        while (srv->defer_head == NULL && !srv->defer_stop)
            pthread_cond_wait(&srv->defer_cond, &srv->defer_lock);
        http_deferred *d = srv->defer_head;
        if (d == NULL)
            break;
        srv->defer_head = d->next;
        if (srv->defer_head == NULL)
            srv->defer_tail = NULL;
        pthread_mutex_unlock(&srv->defer_lock);
        api_deferred_run(d->work, &d->hc->answer);
        d->hc->finished = true;
        MHD_resume_connection(d->conn);
        free(d);
        pthread_mutex_lock(&srv->defer_lock);
    }
    pthread_mutex_unlock(&srv->defer_lock);
    return NULL;
}

/* Suspends conn and queues its deferred answer for a drawer. false (nothing
 * done) when there is no drawer or the server is stopping. */
static bool defer_answer(http_server *srv, struct MHD_Connection *conn, http_conn *hc,
                         api_deferred *work)
{
    http_deferred *d = calloc(1, sizeof *d);
    if (d == NULL)
        return false;
    *d = (http_deferred){ .work = work, .conn = conn, .hc = hc };
    pthread_mutex_lock(&srv->defer_lock);
    if (srv->defer_stop || srv->n_drawers == 0) {
        pthread_mutex_unlock(&srv->defer_lock);
        free(d);
        return false;
    }
    /* suspended before a drawer can resume it; MHD calls the handler again
     * once it is resumed */
    MHD_suspend_connection(conn);
    if (srv->defer_tail)
        srv->defer_tail->next = d;
    else
        srv->defer_head = d;
    srv->defer_tail = d;
    pthread_cond_signal(&srv->defer_cond);
    pthread_mutex_unlock(&srv->defer_lock);
    return true;
}

/* Stops the drawers once they have run every queued answer (each resumes
 * its connection): MHD must not be stopped with a suspended connection. */
static void drawers_stop(http_server *srv)
{
    pthread_mutex_lock(&srv->defer_lock);
    srv->defer_stop = true;
    pthread_cond_broadcast(&srv->defer_cond);
    pthread_mutex_unlock(&srv->defer_lock);
    for (int i = 0; i < srv->n_drawers; i++)
        pthread_join(srv->drawers[i], NULL);
    srv->n_drawers = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    http_server *srv = cls;
    http_conn *hc = *req_cls;

    if (hc == NULL) { /* first call: headers only; answer on a later call */
        hc = calloc(1, sizeof *hc);
        if (hc == NULL)
            return MHD_NO;
        *req_cls = hc;
        bool answered;
        enum MHD_Result ret = first_call(srv, conn, hc, url, method, version, &answered);
        return answered ? ret : MHD_YES;
    }
    if (hc->finished) { /* resumed: the drawer left the answer */
        hc->finished = false;
        enum MHD_Result ret = send_response(conn, &hc->answer);
        memset(&hc->answer, 0, sizeof hc->answer); /* now MHD's */
        return ret;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!hc->buffer || hc->over_budget)
            return MHD_YES; /* not wanted: read and dropped */
        if (hc->too_large || hc->len + n > (size_t)srv->max_body) {
            hc->too_large = true; /* drain, then answer 413 */
            return MHD_YES;
        }
        if (hc->len + n > hc->reserved && !budget_take(srv, hc, hc->len + n - hc->reserved)) {
            hc->over_budget = true; /* drain, then answer 503 */
            return MHD_YES;
        }
        if (PP_VEC_RESERVE(hc->body, hc->cap, hc->len + n + 1, 8192) != 0) {
            hc->too_large = true;
            return MHD_YES;
        }
        memcpy(hc->body + hc->len, upload_data, n);
        hc->len += n;
        return MHD_YES;
    }

    /* before the daemon is ready api_handle() answers every route with 503 */
    if (hc->stream && !hc->too_large && app_ready(srv->app))
        return sse_start(srv, conn);

    api_response r;
    memset(&r, 0, sizeof r);
    if (hc->too_large) {
        api_error(&r, 413, "request body too large");
    } else if (hc->over_budget) {
        api_error(&r, 503, "too many uploads at once: try again later");
        r.retry_after = RETRY_AFTER_BUSY_S;
    } else {
        api_request req = {
            .method = method,
            .path = url,
            .query = query_lookup,
            .query_ctx = conn,
            .if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_IF_NONE_MATCH),
            .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_AUTHORIZATION),
            .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE),
            .body = hc->body,
            .body_len = hc->len,
            .client = peer_of(conn) ? peer_of(conn)->addr_text : NULL,
            .can_defer = true,
        };
        api_handle(srv->app, &req, &r);
        if (r.deferred != NULL) {
            api_deferred *work = r.deferred;
            r.deferred = NULL;
            if (defer_answer(srv, conn, hc, work))
                return MHD_YES;
            api_deferred_run(work, &r); /* no drawer (stopping): here */
        }
    }
    return send_response(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    http_conn *hc = *req_cls;
    peer_request_done(srv, peer_of(conn));
    if (hc) {
        atomic_fetch_sub(&srv->buffered, hc->reserved);
        free(hc->body);
        api_response_free(&hc->answer); /* closed before it was sent */
        free(hc);
        *req_cls = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn("http", "%s", msg);
}

/* Parses "host:port" or "[v6]:port" into addr. */
static int parse_listen(const char *s, struct sockaddr_storage *addr, socklen_t *alen)
{
    char host[128];
    const char *colon;
    memset(addr, 0, sizeof *addr);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof host)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (strcmp(host, "*") == 0 || host[0] == '\0') {
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
        a4->sin_port = htons((uint16_t)port);
        *alen = sizeof *a4;
    } else if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
                         &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *alen = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *alen = sizeof *a6;
    } else {
        return -1;
    }
    return 0;
}

static void http_free(http_server *srv)
{
    pthread_mutex_destroy(&srv->defer_lock);
    pthread_cond_destroy(&srv->defer_cond);
    pthread_mutex_destroy(&srv->sse_lock);
    pthread_mutex_destroy(&srv->peer_lock);
    pthread_mutex_destroy(&srv->sweep_lock);
    pthread_cond_destroy(&srv->sweep_cond);
    free(srv);
}

http_server *http_start(pp_app *app)
{
    const pp_config *cfg = app->cfg;
    struct sockaddr_storage addr;
    socklen_t alen;
    http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    if (parse_listen(cfg->http_listen, &addr, &alen) != 0) {
        log_err("http", "bad http.listen '%s'", cfg->http_listen);
        free(srv);
        return NULL;
    }
    srv->app = app;
    srv->max_body = cfg->http_max_body;
    srv->max_buffered = (size_t)cfg->http_max_buffered;
    atomic_init(&srv->buffered, 0);
    srv->max_conns = cfg->http_max_connections;
    srv->max_per_ip = cfg->http_max_per_ip;
    srv->headroom = cfg->http_max_connections / 16;
    srv->max_streams = cfg->http_max_streams;
    srv->max_streams_per_ip = cfg->http_max_streams_per_ip;
    srv->header_timeout_ms = cfg->http_header_timeout * 1000;
    srv->request_timeout_ms = cfg->http_timeout * 1000;
    /* the descriptor budget: streams give way when the limit is too low */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)(HTTP_FD_RESERVE + srv->max_conns + srv->max_streams) > rl.rlim_cur) {
        long room = (long)rl.rlim_cur - HTTP_FD_RESERVE - srv->max_conns;
        int was = srv->max_streams;
        srv->max_streams = room < 0 ? 0 : (int)room;
        log_warn("http", "max_streams %d lowered to %d: the descriptor limit is %llu (raise LimitNOFILE)",
                 was, srv->max_streams, (unsigned long long)rl.rlim_cur);
    }
    pthread_mutex_init(&srv->sse_lock, NULL);
    pthread_mutex_init(&srv->defer_lock, NULL);
    pthread_cond_init(&srv->defer_cond, NULL);
    for (int i = 0; i < HTTP_DRAWERS; i++) {
        if (pthread_create(&srv->drawers[i], NULL, drawer, srv) != 0) {
            log_errno("http", "cannot start a graph drawer thread");
            break; /* fewer, or none: answered on the HTTP threads */
        }
        srv->n_drawers++;
    }
    pthread_mutex_init(&srv->peer_lock, NULL);
    pthread_mutex_init(&srv->sweep_lock, NULL);
    pthread_cond_init(&srv->sweep_cond, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, /* first, or MHD warns at start */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        /* max_per_ip and the split between streams and other connections
         * are enforced by on_connection, which can make room */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(srv->max_conns + srv->max_streams),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout,
        /* a request's header and the answer's header must fit; MHD clears
         * the whole pool between two requests of a connection, so a larger
         * one costs every request (64 KiB: 12% of a cached graph's time) */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_END);
    if (srv->mhd == NULL) {
        log_err("http", "cannot listen on %s (in use, or not an address of this machine)",
                cfg->http_listen);
        drawers_stop(srv);
        http_free(srv);
        return NULL;
    }
    if (pthread_create(&srv->sweeper, NULL, sweeper, srv) != 0) {
        log_errno("http", "cannot start the connection sweeper");
        MHD_stop_daemon(srv->mhd);
        drawers_stop(srv);
        http_free(srv);
        return NULL;
    }
    srv->sweeper_started = true;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    log_info("http", "listening on %s (port %d)", cfg->http_listen, srv->port);
    return srv;
}

int http_port(const http_server *s) { return s ? s->port : 0; }

void http_stop(http_server *s)
{
    if (s == NULL)
        return;
    if (s->sweeper_started) {
        pthread_mutex_lock(&s->sweep_lock);
        s->sweep_stop = true;
        pthread_cond_signal(&s->sweep_cond);
        pthread_mutex_unlock(&s->sweep_lock);
        pthread_join(s->sweeper, NULL);
    }
    /* every suspended stream is resumed and told to end: MHD must not be
     * stopped with suspended connections */
    pthread_mutex_lock(&s->sse_lock);
    s->stopping = true;
    pthread_mutex_unlock(&s->sse_lock);
    http_sse_wake(s, false);
    MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
    for (int i = 0; i < 100; i++) {
        pthread_mutex_lock(&s->sse_lock);
        int left = s->n_streams;
        pthread_mutex_unlock(&s->sse_lock);
        if (left == 0)
            break;
        http_sse_wake(s, false);
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    drawers_stop(s); /* graphs being drawn are answered; later ones are drawn by the HTTP threads */
    MHD_stop_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    http_free(s);
}
