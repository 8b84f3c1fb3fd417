/*
 * http.h — the HTTP endpoint of README, HTTP API, the only module that includes
 * microhttpd.h. It owns the libmicrohttpd daemon (a bounded thread pool,
 * connection limits total and per client, header and idle timeouts, body
 * caps, a token check before any body, throttling of wrong tokens) and hands
 * each complete request to api_handle(). See http.c's top comment.
 */
#ifndef PP_HTTP_H
#define PP_HTTP_H

#include <stdbool.h>

#include "app.h"

typedef struct http_server http_server;

/* Descriptors kept for the rest of the daemon (journal, spool, RRD files,
 * graph workers, collectors, log) beyond HTTP's max_connections +
 * max_streams; the bus's connection limit is lowered to leave them free. */
#define HTTP_FD_RESERVE 128

/* Binds cfg's http.listen and starts serving. Until app->ready is set every
 * request is answered 503 "starting" (api_handle), so it may start before
 * the journal is replayed; only app->cfg must be loaded. Returns NULL (logged)
 * on failure. */
http_server *http_start(pp_app *app);

/* The bound port (useful with port 0). */
int http_port(const http_server *s);

/* Resumes the Server-Sent Events streams: all of them (an alert was raised),
 * or only those whose keep-alive is due. Thread-safe. */
void http_sse_wake(http_server *s, bool keepalive_only);

void http_stop(http_server *s);

#endif
