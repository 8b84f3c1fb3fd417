/*
 * http.c — libmicrohttpd wrapper (see http.h).
 *
 * Two measured pitfalls of libmicrohttpd 0.9.75 shape the handler (SPEC
 * appendix): the response is queued on the second call of the access
 * handler, never the first (the first makes MHD send Connection: close); and
 * the URL is unescaped by our own callback, which turns an encoded '/', NUL
 * or control byte into 0x01 so that api.c can refuse it instead of seeing a
 * path it never sent.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "api.h"
#include "log.h"

#define SSE_MAX_STREAMS 64   /* concurrent /api/v1/events streams */
#define SSE_KEEPALIVE_S 15   /* a comment line this often keeps proxies and browsers content */

/* One Server-Sent Events stream. While it has nothing to send, its connection
 * is suspended (no thread, no polling); http_sse_wake() resumes it when an
 * alert is raised or its keep-alive is due. */
typedef struct sse_stream {
    struct http_server *srv;
    struct MHD_Connection *conn;
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
    int port;
    pthread_mutex_t sse_lock;
    sse_stream *streams;
    int n_streams;
    bool stopping;
};

/* Per-request state, kept in *req_cls between calls of the access handler. */
typedef struct http_conn {
    char *body;
    size_t len, cap;
    bool too_large;
} http_conn;

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

static void http_date(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
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
    if (srv->stopping) {
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
    if (last && *last && strlen(last) <= 20 && strspn(last, "0123456789") == strlen(last))
        s->last_seq = strtoull(last, NULL, 10);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "retry: 5000\n: parkpulse alert stream\n\n");
    s->pending = jbuf_take(&b, &s->pending_len);
    s->next_keepalive = mono_now() + SSE_KEEPALIVE_S;

    pthread_mutex_lock(&srv->sse_lock);
    if (srv->n_streams >= SSE_MAX_STREAMS || srv->stopping) {
        pthread_mutex_unlock(&srv->sse_lock);
        free(s->pending);
        free(s);
        api_error(&r, 503, "too many event streams");
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
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (hc->too_large || hc->len + n > (size_t)srv->max_body) {
            hc->too_large = true; /* drain, then answer 413 */
            return MHD_YES;
        }
        if (hc->len + n + 1 > hc->cap) {
            size_t cap = hc->cap ? hc->cap : 8192;
            while (cap < hc->len + n + 1)
                cap *= 2;
            char *b = realloc(hc->body, cap);
            if (b == NULL) {
                hc->too_large = true;
                return MHD_YES;
            }
            hc->body = b;
            hc->cap = cap;
        }
        memcpy(hc->body + hc->len, upload_data, n);
        hc->len += n;
        return MHD_YES;
    }

    if (strcmp(url, "/api/v1/events") == 0 && strcmp(method, "GET") == 0 && !hc->too_large)
        return sse_start(srv, conn);

    api_response r;
    memset(&r, 0, sizeof r);
    if (hc->too_large) {
        api_error(&r, 413, "request body too large");
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
            .body = hc->body,
            .body_len = hc->len,
        };
        api_handle(srv->app, &req, &r);
    }
    return send_response(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_conn *hc = *req_cls;
    if (hc) {
        free(hc->body);
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
    pthread_mutex_init(&srv->sse_lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, /* first, or MHD warns at start */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_END);
    if (srv->mhd == NULL) {
        log_err("http", "cannot listen on %s (in use, or not an address of this machine)",
                cfg->http_listen);
        pthread_mutex_destroy(&srv->sse_lock);
        free(srv);
        return NULL;
    }
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
    MHD_stop_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    pthread_mutex_destroy(&s->sse_lock);
    free(s);
}
