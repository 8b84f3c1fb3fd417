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

#include "api.h"
#include "log.h"

struct http_server {
    struct MHD_Daemon *mhd;
    pp_app *app;
    long max_body;
    int port;
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
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->len, r->body ? r->body : (char *)"", r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        api_response_free(r);
        return MHD_NO;
    }
    r->body = NULL; /* now owned by MHD */
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
    if (r->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_UNESCAPE_CALLBACK, http_unescape, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_END);
    if (srv->mhd == NULL) {
        log_err("http", "cannot listen on %s (in use, or not an address of this machine)",
                cfg->http_listen);
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
    MHD_stop_daemon(s->mhd);
    free(s);
}
