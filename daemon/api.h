/*
 * api.h — the HTTP routes of README, HTTP API, as plain functions: a request in, a
 * response out, with no libmicrohttpd type in sight (http.c is the only file
 * that knows the library). Each route validates its ids against the
 * configuration before they reach anything else.
 */
#ifndef PP_API_H
#define PP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app.h"

typedef struct api_request {
    const char *method;          /* "GET", "POST", … */
    const char *path;            /* decoded path; an encoded '/', NUL or control byte is 0x01 */
    const char *(*query)(void *ctx, const char *key); /* decoded query value or NULL */
    void *query_ctx;
    const char *if_none_match;   /* header or NULL */
    const char *authorization;   /* header or NULL */
    const char *content_type;    /* header or NULL */
    const char *body;            /* POST body (not NUL-terminated) */
    size_t body_len;
    const char *client;          /* the client's address as text, or NULL (a retraction's source) */
    bool can_defer;              /* the caller can finish resp->deferred on another thread (http.c) */
} api_request;

/* An immutable body shared by the answer cache and the responses being sent
 * (reference-counted; the last api_blob_release frees it). */
typedef struct api_blob api_blob;
const char *api_blob_data(const api_blob *b);
void api_blob_release(void *b);

typedef struct api_response {
    int status;
    const char *content_type;    /* static string */
    char *body;                  /* malloc'd, owned by the response */
    size_t len;                  /* of body, or of shared's data */
    api_blob *shared;            /* instead of body: one reference, owned by the response */
    char etag[48];               /* "" for none; quoted */
    int64_t last_modified;       /* 0 for none */
    const char *allow;           /* for 405 */
    const char *www_authenticate; /* for 401 */
    char disposition[128];       /* Content-Disposition, "" for none */
    int retry_after;             /* Retry-After seconds (429, 503), 0 for none */
    bool has_rrd_pending;        /* X-RRD-Pending: rrd_pending (GET /healthz) */
    size_t rrd_pending;
    struct api_deferred *deferred; /* not NULL: nothing else is set; see api_deferred_run */
} api_response;

/* Work a route left to be finished away from the HTTP thread, when the
 * request allowed it (can_defer): a graph to draw, which waits for its
 * series' RRD write and for a graph worker. api_deferred_run does it (it may
 * block for seconds), fills resp (zeroed first) and frees d; api_response_free
 * frees a deferred answer that is not run. */
typedef struct api_deferred api_deferred;
void api_deferred_run(api_deferred *d, api_response *resp);

/* Fills resp for req. Always sets a status and a body: 503 {"error":"starting"}
 * for every route until app_ready(app) — or, when req->can_defer, may leave
 * the answer to resp->deferred instead (a graph to draw: api_deferred_run). A route runs inside one read view
 * (app.h: cfg_lock, then the db lock), or takes its locks itself (the POST:
 * ingest_lock, then cfg_lock): the caller holds none of them. */
void api_handle(pp_app *app, const api_request *req, api_response *resp);

/* ---- the route table (api.c), callable without a daemon ---- */

typedef struct api_route api_route; /* one entry: method, pattern, handler, cacheable */

#define API_SEG_MAX 3                /* '*' segments in a pattern */
#define API_SEG_LEN (PP_ID_MAX + 16) /* bytes of one, with its NUL */

typedef struct api_match {
    const api_route *route;          /* the route (0 returned), else NULL */
    char seg[API_SEG_MAX][API_SEG_LEN]; /* its '*' segments */
    int n_seg;
    const char *allow;               /* 405: the methods the path takes */
    const char *error;               /* 400: why the path is refused */
} api_match;

/* Matches a decoded path (as api_request.path) and a method against the
 * route table: a pure function of its arguments (no lock, no daemon).
 * Returns 0 (m->route set), 400 (a path no route may see: control bytes, a
 * backslash, dot segments, empty segments; m->error), 404 (no route), or 405
 * (the path's route takes another method, or no route and not a read;
 * m->allow). */
int api_route_match(const char *method, const char *path, api_match *m);

/* GET /api/v1/events: an event stream, served by http.c itself. */
bool api_route_is_stream(const api_route *r);

/* POST /api/v1/observations: a write, whose token http.c checks before it
 * reads the body, and whose body it buffers. */
bool api_route_takes_body(const api_route *r);

void api_response_free(api_response *resp);

/* Drops every cached answer (at exit, so that nothing is left allocated);
 * the cache is answer.c's (answer.h). */
void api_cache_clear(void);

/* Answers a JSON error {"error": msg} with status. */
void api_error(api_response *resp, int status, const char *msg);

/* Checks the Authorization header of a write against http.token_file (under
 * the configuration lock; auth.c, auth.h). Returns 0 when it may write;
 * otherwise fills resp (401 wrong or missing token, 403 writes disabled, 503
 * token file unreadable) and returns a -errno (auth_check's). http.c calls it
 * before reading a body. */
int api_authorize(pp_app *app, const char *authorization, api_response *resp);

/* The one parser of numbers in a query: decimal digits only (no sign, blank,
 * "0x" or empty string), at most max. Returns true and sets *out. */
bool api_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* If-None-Match (RFC 9110 13.1.2; answer.c): true when the header's list of entity
 * tags holds etag under weak comparison (W/ ignored on both sides), or is
 * "*". A malformed list matches nothing. */
bool api_etag_matches(const char *if_none_match, const char *etag);

#endif
