/*
 * api.c — the route table of SPEC §8 and the JSON answers (see api.h).
 *
 * Paths are matched against a fixed table; nothing in a URL is ever mapped
 * onto a file. Ids taken from a path are checked with pp_id_valid() and then
 * looked up in the configuration: an id that is not configured answers 404
 * before it reaches the db, a file path or an rrdtool argument.
 */
#include "api.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "csv.h"
#include "graph.h"
#include "ingest.h"
#include "json.h"
#include "log.h"
#include "pace.h"
#include "pages.h"
#include "report.h"
#include "routes.h"
#include "status.h"
#include "text.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define API_TOKEN_MAX 4096

void api_response_free(api_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    api_blob_release(resp->shared);
    resp->shared = NULL;
}

/* ---- the answer cache ----------------------------------------------------
 *
 * /api/v1/status for 1,000 series is ~470 KB of JSON that takes milliseconds
 * to build and to hash for its ETag, while it changes only when a figure, a
 * target, the configuration or the clock's second does. Answers of the
 * whole-status routes are therefore kept, keyed by the path and by everything
 * they are built from (db generation, configuration generation, the `now`
 * they were evaluated at, to the second), and served by reference: the body
 * goes to libmicrohttpd without a copy and is freed by the last response that
 * holds it. A direct-mapped table: a collision only costs a rebuild. */

struct api_blob {
    _Atomic unsigned refs;
    size_t len;
    char data[];
};

const char *api_blob_data(const api_blob *b) { return b->data; }

void api_blob_release(void *p)
{
    api_blob *b = p;
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

static api_blob *api_blob_ref(api_blob *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

#define API_CACHE_SLOTS 64
#define API_CACHE_PATH_MAX (PP_ID_MAX + 32)
/* Bigger answers (the status of thousands of series: ~470 bytes each) are
 * rebuilt per request rather than held: memory stays bounded at 64 MiB of
 * cache at the very worst, and typically one status and a few parks. */
#define API_CACHE_BODY_MAX (1u << 20)

typedef struct api_cached {
    const pp_app *app;
    char path[API_CACHE_PATH_MAX];
    uint64_t db_gen, cfg_gen;
    int64_t now;
    int64_t last_modified;
    char etag[48];
    api_blob *blob;               /* NULL: empty slot */
} api_cached;

static pthread_mutex_t api_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static api_cached api_cache[API_CACHE_SLOTS];

static api_cached *api_cache_slot(const char *path)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = path; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return &api_cache[h % API_CACHE_SLOTS];
}

/* The key of an answer built now (cfg and db read-locked by the caller). */
static void api_cache_key(const pp_app *app, const char *path, int64_t now, api_cached *k)
{
    memset(k, 0, sizeof *k);
    k->app = app;
    snprintf(k->path, sizeof k->path, "%s", path);
    k->db_gen = db_generation(app->db);
    k->cfg_gen = app->cfg_generation;
    k->now = now;
}

static bool api_cache_same(const api_cached *a, const api_cached *b)
{
    return a->blob != NULL && a->app == b->app && a->db_gen == b->db_gen &&
           a->cfg_gen == b->cfg_gen && a->now == b->now && strcmp(a->path, b->path) == 0;
}

bool api_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Skips the optional white space of RFC 9110 (OWS). */
static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool api_etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL || etag == NULL || etag[0] == '\0')
        return false;
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t elen = strlen(etag);
    const char *p = skip_ows(inm);
    if (*p == '*')
        return *skip_ows(p + 1) == '\0';
    bool match = false;
    for (;;) {
        /* #entity-tag: empty list elements are allowed */
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return match;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false;
        const char *end = p + 1;
        while (*end && *end != '"') {
            unsigned char c = (unsigned char)*end;
            if (c < 0x21 || c == 0x7f) /* etagc: no blanks or controls */
                return false;
            end++;
        }
        if (*end != '"')
            return false;
        end++;
        if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
            match = true;
        p = skip_ows(end);
        if (*p != ',' && *p != '\0')
            return false;
    }
}

/* Answers from the cache (200 or 304); false when the answer is not there. */
static bool api_cache_get(const api_request *req, api_response *resp, const api_cached *key)
{
    if (strlen(req->path) >= API_CACHE_PATH_MAX)
        return false;
    pthread_mutex_lock(&api_cache_lock);
    api_cached *c = api_cache_slot(key->path);
    bool hit = api_cache_same(c, key);
    if (hit) {
        resp->status = 200;
        resp->content_type = JSON_TYPE;
        memcpy(resp->etag, c->etag, sizeof resp->etag);
        resp->last_modified = c->last_modified;
        if (api_etag_matches(req->if_none_match, c->etag)) {
            resp->status = 304;
        } else {
            resp->shared = api_blob_ref(c->blob);
            resp->len = c->blob->len;
        }
    }
    pthread_mutex_unlock(&api_cache_lock);
    return hit;
}

/* Moves a fresh 200 answer's body into the cache and makes resp share it. */
static void api_cache_put(api_response *resp, const api_cached *key)
{
    if (resp->status != 200 || resp->body == NULL || resp->len > API_CACHE_BODY_MAX ||
        strlen(key->path) >= API_CACHE_PATH_MAX - 1)
        return;
    api_blob *b = malloc(sizeof *b + resp->len);
    if (b == NULL)
        return; /* answered uncached */
    atomic_init(&b->refs, 2); /* the cache's and resp's */
    b->len = resp->len;
    memcpy(b->data, resp->body, resp->len);
    free(resp->body);
    resp->body = NULL;
    resp->shared = b;
    pthread_mutex_lock(&api_cache_lock);
    api_cached *c = api_cache_slot(key->path);
    api_blob_release(c->blob);
    *c = *key;
    c->blob = b;
    c->last_modified = resp->last_modified;
    memcpy(c->etag, resp->etag, sizeof c->etag);
    pthread_mutex_unlock(&api_cache_lock);
}

void api_cache_clear(void)
{
    pthread_mutex_lock(&api_cache_lock);
    for (size_t i = 0; i < API_CACHE_SLOTS; i++) {
        api_blob_release(api_cache[i].blob);
        api_cache[i].blob = NULL;
    }
    pthread_mutex_unlock(&api_cache_lock);
}

static void set_body(api_response *resp, int status, const char *type, jbuf *b)
{
    size_t len;
    char *body = jbuf_take(b, &len);
    if (body == NULL) {
        resp->status = 503;
        resp->content_type = JSON_TYPE;
        resp->body = strdup("{\"error\":\"out of memory\"}");
        resp->len = resp->body ? strlen(resp->body) : 0;
        return;
    }
    resp->status = status;
    resp->content_type = type;
    resp->body = body;
    resp->len = len;
}

void api_error(api_response *resp, int status, const char *msg)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{");
    json_key(&b, "error", true);
    json_str(&b, msg);
    jbuf_puts(&b, "}\n");
    free(resp->body);
    resp->body = NULL;
    set_body(resp, status, JSON_TYPE, &b);
}

/* A strong ETag from the body bytes (FNV-1a 64). */
static void set_etag(api_response *resp)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < resp->len; i++) {
        h ^= (unsigned char)resp->body[i];
        h *= 1099511628211ULL;
    }
    snprintf(resp->etag, sizeof resp->etag, "\"%016llx\"", (unsigned long long)h);
}

/* Answers with a JSON body, an ETag and 304 when the client has it already. */
static void reply_json(const api_request *req, api_response *resp, jbuf *b, int64_t last_mod)
{
    jbuf_puts(b, "\n");
    set_body(resp, 200, JSON_TYPE, b);
    if (resp->status != 200)
        return;
    set_etag(resp);
    resp->last_modified = last_mod;
    if (api_etag_matches(req->if_none_match, resp->etag)) {
        free(resp->body);
        resp->body = NULL;
        resp->len = 0;
        resp->status = 304;
    }
}

/* reply_json for a cached route: the 200 answer is cached even when this
 * client gets a 304. */
static void reply_json_cached(const api_request *req, api_response *resp, jbuf *b,
                              int64_t last_mod, const api_cached *key)
{
    api_request plain = *req;
    plain.if_none_match = NULL;
    reply_json(&plain, resp, b, last_mod);
    api_cache_put(resp, key);
    if (resp->status == 200 && api_etag_matches(req->if_none_match, resp->etag)) {
        api_response_free(resp);
        resp->len = 0;
        resp->status = 304;
    }
}

/* Splits path into at most max segments after prefix; returns the count or -1
 * when the path has empty segments, control bytes or more segments. */
static int split_path(const char *path, const char *prefix, char seg[][PP_ID_MAX + 16], int max)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return -1;
    const char *p = path + pl;
    int n = 0;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || n >= max || len >= PP_ID_MAX + 16)
            return -1;
        memcpy(seg[n], p, len);
        seg[n][len] = '\0';
        n++;
        p += len;
        if (*p == '/')
            p++;
        if (slash && *p == '\0')
            return -1; /* trailing slash */
    }
    return n;
}

/* Looks up a configured park; answers 400/404 itself when it is not one. */
static const pp_park *want_park(const pp_app *app, const char *id, api_response *resp)
{
    if (!pp_id_valid(id)) {
        api_error(resp, 400, "invalid park id");
        return NULL;
    }
    const pp_park *p = pp_catalog_park(&app->cfg->catalog, id);
    if (p == NULL || strcmp(p->id, id) != 0) {
        api_error(resp, 404, "unknown park");
        return NULL;
    }
    return p;
}

static const pp_indicator *want_indicator(const pp_app *app, const char *id, api_response *resp)
{
    if (!pp_id_valid(id)) {
        api_error(resp, 400, "invalid indicator id");
        return NULL;
    }
    const pp_indicator *i = pp_catalog_indicator(&app->cfg->catalog, id);
    if (i == NULL || strcmp(i->id, id) != 0) {
        api_error(resp, 404, "unknown indicator");
        return NULL;
    }
    return i;
}

/* Parses an optional period query parameter; -1 when absent; answers 400 on a bad one. */
static bool query_period(const api_request *req, const char *key, int *period,
                         api_response *resp)
{
    const char *v = req->query ? req->query(req->query_ctx, key) : NULL;
    *period = -1;
    if (v == NULL || *v == '\0')
        return true;
    char why[160];
    if (strlen(v) > 64 || csv_parse_period(v, period, why, sizeof why) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "bad %s: expected YYYY-MM", key);
        api_error(resp, 400, msg);
        return false;
    }
    return true;
}

static int64_t newest_update(const pp_app *app)
{
    int64_t t = 0;
    for (size_t i = 0; i < db_series_count(app->db); i++) {
        const db_series *s = db_series_at(app->db, i);
        if (s->updated_at > t)
            t = s->updated_at;
    }
    return t;
}

static void route_status(pp_app *app, const api_request *req, api_response *resp)
{
    int64_t now = app_now(app);
    api_cached key;
    api_cache_key(app, req->path, now, &key);
    if (api_cache_get(req, resp, &key))
        return;
    char buf[40];
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{");
    json_key(&b, "generated_at", true);
    json_str(&b, app_format_time(now, buf, sizeof buf));
    json_key(&b, "parks", false);
    jbuf_puts(&b, "[");
    for (size_t i = 0; i < app->cfg->catalog.n_parks; i++) {
        if (i)
            jbuf_puts(&b, ",");
        status_park_json(&b, app, &app->cfg->catalog.parks[i], now);
    }
    jbuf_puts(&b, "]}");
    reply_json_cached(req, resp, &b, newest_update(app), &key);
}

static void route_park(pp_app *app, const api_request *req, api_response *resp, const char *id)
{
    const pp_park *park = want_park(app, id, resp);
    if (park == NULL)
        return;
    int64_t now = app_now(app);
    api_cached key;
    api_cache_key(app, req->path, now, &key);
    if (api_cache_get(req, resp, &key))
        return;
    jbuf b;
    jbuf_init(&b);
    status_park_json(&b, app, park, now);
    reply_json_cached(req, resp, &b, newest_update(app), &key);
}

static void route_series(pp_app *app, const api_request *req, api_response *resp,
                         const char *park_id, const char *ind_id)
{
    const pp_park *park = want_park(app, park_id, resp);
    if (park == NULL)
        return;
    const pp_indicator *ind = want_indicator(app, ind_id, resp);
    if (ind == NULL)
        return;
    int from, to;
    if (!query_period(req, "from", &from, resp) || !query_period(req, "to", &to, resp))
        return;
    if (from >= 0 && to >= 0 && from > to) {
        api_error(resp, 400, "from is after to");
        return;
    }
    const db_series *s = db_series_get(app->db, park->id, ind->id);
    char buf[16];
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{");
    json_key(&b, "park", true);
    json_str(&b, park->id);
    json_key(&b, "indicator", false);
    json_str(&b, ind->id);
    json_key(&b, "label", false);
    json_str(&b, ind->label);
    json_key(&b, "unit", false);
    json_str(&b, ind->unit);
    json_key(&b, "points", false);
    jbuf_puts(&b, "[");
    bool first = true;
    db_vintage v;
    for (int per = db_series_next(s, -1, &v); per >= 0; per = db_series_next(s, per, &v)) {
        if ((from >= 0 && per < from) || (to >= 0 && per > to))
            continue;
        if (!first)
            jbuf_puts(&b, ",");
        first = false;
        double target;
        bool has_t = db_target(app->db, park->id, ind->id, pp_period_year(per), &target);
        jbuf_puts(&b, "{");
        json_key(&b, "period", true);
        json_str(&b, pp_period_format(per, buf, sizeof buf));
        json_key(&b, "value", false);
        json_num(&b, v.value);
        json_key(&b, "pace", false);
        if (has_t)
            json_num(&b, pace_expected(ind, per, target));
        else
            json_null(&b);
        json_key(&b, "target", false); /* that year's target, for the pages' charts */
        if (has_t)
            json_num(&b, target);
        else
            json_null(&b);
        json_key(&b, "yoy", false);
        if (v.has_yoy)
            json_num(&b, v.yoy);
        else
            json_null(&b);
        jbuf_puts(&b, "}");
    }
    jbuf_puts(&b, "]}");
    reply_json(req, resp, &b, s ? s->updated_at : 0);
}

/* Reads the token file; returns 1 and fills tok, 0 when there is no token file, -1 on error. */
static int read_token(const char *file, char *tok, size_t len)
{
    if (file == NULL || *file == '\0')
        return 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    ssize_t n = read(fd, tok, len - 1);
    close(fd);
    if (n <= 0)
        return -1;
    tok[n] = '\0';
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = '\0';
    return n > 0 ? 1 : -1;
}

/* Constant-time comparison of the presented token with the configured one. */
static bool token_matches(const char *want, const char *got)
{
    size_t lw = strlen(want), lg = strlen(got);
    unsigned char diff = (unsigned char)(lw != lg);
    for (size_t i = 0; i < lw; i++)
        diff |= (unsigned char)(want[i] ^ (i < lg ? got[i] : 0));
    return diff == 0;
}

/* api_authorize with the configuration read-locked by the caller. */
static int authorize(pp_app *app, const char *auth, api_response *resp)
{
    char tok[API_TOKEN_MAX];
    int tr = read_token(app->cfg->http_token_file, tok, sizeof tok);
    int rc = -1;
    if (tr == 0) {
        api_error(resp, 403, "writes are disabled: no http.token_file");
    } else if (tr < 0) {
        api_error(resp, 503, "token file unreadable");
    } else if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 || !token_matches(tok, auth + 7)) {
        resp->www_authenticate = "Bearer realm=\"parkpulse\"";
        api_error(resp, 401, "missing or wrong bearer token");
    } else {
        rc = 0;
    }
    explicit_bzero(tok, sizeof tok);
    return rc;
}

int api_authorize(pp_app *app, const char *authorization, api_response *resp)
{
    pthread_rwlock_rdlock(&app->cfg_lock);
    int rc = authorize(app, authorization, resp);
    pthread_rwlock_unlock(&app->cfg_lock);
    return rc;
}

/* Called with no lock held: ingest_csv() takes ingest_lock, then cfg_lock
 * (the lock order of app.h). */
static void route_post_observations(pp_app *app, const api_request *req, api_response *resp)
{
    if (api_authorize(app, req->authorization, resp) != 0)
        return;
    ingest_result res;
    ingest_status st = ingest_csv(app, "http", req->body ? req->body : "", req->body_len, &res);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{");
    if (st == INGEST_OK) {
        json_key(&b, "accepted", true);
        json_int(&b, (int64_t)res.n_obs);
        json_key(&b, "unchanged", false);
        json_int(&b, (int64_t)res.n_unchanged);
        json_key(&b, "targets", false);
        json_int(&b, (int64_t)res.n_targets);
        jbuf_puts(&b, "}\n");
        set_body(resp, 202, JSON_TYPE, &b);
    } else {
        json_key(&b, "error", true);
        json_str(&b, st == INGEST_REFUSED ? "bad rows: nothing was accepted" : "could not store");
        json_key(&b, "errors", false);
        jbuf_puts(&b, "[");
        const char *p = res.report ? res.report : "";
        bool first = true;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
            if (!first)
                jbuf_puts(&b, ",");
            first = false;
            json_str(&b, line);
            p += n + (nl ? 1 : 0);
        }
        jbuf_puts(&b, "]}\n");
        set_body(resp, st == INGEST_REFUSED ? 400 : 503, JSON_TYPE, &b);
    }
    free(res.report);
}

static void route_alerts(pp_app *app, const api_request *req, api_response *resp)
{
    const char *since = req->query ? req->query(req->query_ctx, "since") : NULL;
    jbuf b;
    jbuf_init(&b);
    if (app->alerts == NULL) {
        api_error(resp, 503, "alerts are not available");
        return;
    }
    if (since) {
        uint64_t n;
        if (!api_parse_uint(since, UINT64_MAX, &n)) {
            api_error(resp, 400, "bad since: expected a sequence number");
            return;
        }
        alert_since_json(app->alerts, n, &b);
    } else {
        alert_active_json(app->alerts, &b);
    }
    reply_json(req, resp, &b, 0);
}

static void route_ranking(pp_app *app, const api_request *req, api_response *resp, const char *id)
{
    const pp_indicator *ind = want_indicator(app, id, resp);
    if (ind == NULL)
        return;
    int period;
    if (!query_period(req, "period", &period, resp))
        return;
    if (period < 0)
        period = report_latest_period(app, ind);
    jbuf b;
    jbuf_init(&b);
    report_ranking_json(app, ind, period, app_now(app), &b);
    reply_json(req, resp, &b, newest_update(app));
}

static void route_history(pp_app *app, const api_request *req, api_response *resp,
                          char seg[][PP_ID_MAX + 16])
{
    const pp_park *park = want_park(app, seg[0], resp);
    const pp_indicator *ind = park ? want_indicator(app, seg[1], resp) : NULL;
    if (ind == NULL)
        return;
    int period;
    char why[160];
    if (csv_parse_period(seg[2], &period, why, sizeof why) != 0) {
        api_error(resp, 400, "bad period: expected YYYY-MM");
        return;
    }
    jbuf b;
    jbuf_init(&b);
    report_history_json(app, park, ind, period, &b);
    reply_json(req, resp, &b, 0);
}

static void route_report(pp_app *app, const api_request *req, api_response *resp)
{
    const char *fmt = req->query ? req->query(req->query_ctx, "format") : NULL;
    const char *enc = req->query ? req->query(req->query_ctx, "encoding") : NULL;
    const char *layout = req->query ? req->query(req->query_ctx, "layout") : NULL;
    int period;
    if (!query_period(req, "period", &period, resp))
        return;
    if (fmt == NULL || *fmt == '\0')
        fmt = "csv";
    if (strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0) {
        api_error(resp, 400, "bad format: csv or json");
        return;
    }
    bool gb = false;
    if (enc && *enc) {
        if (strcasecmp(enc, "gb18030") == 0 || strcasecmp(enc, "gbk") == 0)
            gb = true;
        else if (strcasecmp(enc, "utf-8") != 0 && strcasecmp(enc, "utf8") != 0) {
            api_error(resp, 400, "bad encoding: utf-8 or gb18030");
            return;
        }
    }
    if (period < 0) {
        for (size_t i = 0; i < app->cfg->catalog.n_indicators; i++) {
            int p = report_latest_period(app, &app->cfg->catalog.indicators[i]);
            if (p > period)
                period = p;
        }
        if (period < 0) {
            api_error(resp, 404, "no figures yet: give period=YYYY-MM");
            return;
        }
    }
    jbuf b;
    jbuf_init(&b);
    if (strcmp(fmt, "json") == 0) {
        report_table_json(app, period, app_now(app), &b);
        reply_json(req, resp, &b, newest_update(app));
        return;
    }
    if (layout != NULL && strcmp(layout, "wide") == 0)
        report_table_csv_wide(app, period, app_now(app), &b);
    else
        report_table_csv(app, period, app_now(app), &b);
    size_t len;
    char *csv = jbuf_take(&b, &len);
    if (csv == NULL) {
        api_error(resp, 503, "out of memory");
        return;
    }
    if (gb) {
        char *conv;
        size_t clen;
        if (text_convert("GB18030", "UTF-8", csv, len, &conv, &clen) != 0) {
            free(csv);
            api_error(resp, 503, "cannot convert to GB18030");
            return;
        }
        free(csv);
        csv = conv;
        len = clen;
    }
    resp->status = 200;
    resp->content_type = gb ? "text/csv; charset=gb18030" : "text/csv; charset=utf-8";
    resp->body = csv;
    resp->len = len;
    snprintf(resp->disposition, sizeof resp->disposition,
             "attachment; filename=\"parkpulse-report-%04d-%02d.csv\"", pp_period_year(period),
             pp_period_month(period));
    set_etag(resp);
}

static void route_metrics(pp_app *app, api_response *resp)
{
    jbuf b;
    jbuf_init(&b);
    report_metrics(app, app_now(app), &b);
    set_body(resp, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

/* Serves a page, an asset or a dashboard definition read by pages.c. */
static void reply_file(const api_request *req, api_response *resp, int rc, pages_file *f)
{
    if (rc == -1 || rc == -3) {
        api_error(resp, 404, "not found");
        return;
    }
    if (rc != 0) {
        api_error(resp, 503, "cannot read the file");
        return;
    }
    resp->status = 200;
    resp->content_type = f->content_type;
    resp->body = f->data;
    resp->len = f->len;
    resp->last_modified = f->mtime;
    set_etag(resp);
    if (api_etag_matches(req->if_none_match, resp->etag)) {
        free(resp->body);
        resp->body = NULL;
        resp->len = 0;
        resp->status = 304;
    }
}

/* Parses an optional bounded integer query parameter. */
static bool query_int(const api_request *req, const char *key, int lo, int hi, int *v,
                      api_response *resp)
{
    const char *s = req->query ? req->query(req->query_ctx, key) : NULL;
    if (s == NULL || *s == '\0')
        return true;
    uint64_t n;
    if (!api_parse_uint(s, (uint64_t)hi, &n) || n < (uint64_t)lo) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad %s: expected %d..%d", key, lo, hi);
        api_error(resp, 400, msg);
        return false;
    }
    *v = (int)n;
    return true;
}

/* GET /graph/<park>/<indicator>.png|.svg: the request is assembled under the
 * db lock, rendered outside it (by a worker process, or from the cache). */
static void route_graph(pp_app *app, const api_request *req, api_response *resp, const char *park_id,
                        const char *file)
{
    char ind_id[PP_ID_MAX + 16];
    graph_request g;
    graph_request_init(&g);
    size_t fl = strlen(file);
    if (fl > 4 && strcmp(file + fl - 4, ".png") == 0) {
        g.format = GRAPH_PNG;
    } else if (fl > 4 && strcmp(file + fl - 4, ".svg") == 0) {
        g.format = GRAPH_SVG;
    } else {
        api_error(resp, 404, "not found: graphs are <indicator>.png or .svg");
        return;
    }
    snprintf(ind_id, sizeof ind_id, "%.*s", (int)(fl - 4), file);
    const pp_park *park = want_park(app, park_id, resp);
    const pp_indicator *ind = park ? want_indicator(app, ind_id, resp) : NULL;
    if (ind == NULL)
        return;
    int from, to;
    if (!query_period(req, "from", &from, resp) || !query_period(req, "to", &to, resp) ||
        !query_int(req, "width", GRAPH_WIDTH_MIN, GRAPH_WIDTH_MAX, &g.width, resp) ||
        !query_int(req, "height", GRAPH_HEIGHT_MIN, GRAPH_HEIGHT_MAX, &g.height, resp))
        return;
    if (from >= 0 && to >= 0 && from > to) {
        api_error(resp, 400, "from is after to");
        return;
    }
    snprintf(g.park, sizeof g.park, "%s", park->id);
    snprintf(g.indicator, sizeof g.indicator, "%s", ind->id);
    snprintf(g.title, sizeof g.title, "%s · %s (%s)", park->name, ind->label, ind->unit);
    snprintf(g.unit, sizeof g.unit, "%s", ind->unit);
    snprintf(g.value_label, sizeof g.value_label, "%s", ind->label);
    snprintf(g.pace_label, sizeof g.pace_label, "%s",
             ind->kind == PP_KIND_RATE || ind->kind == PP_KIND_RANK ? "目标" : "序时进度");

    db_rdlock(app->db);
    const db_series *s = db_series_get(app->db, park->id, ind->id);
    int64_t updated = s ? s->updated_at : 0;
    if (db_series_last(s) < 0) {
        db_unlock(app->db);
        api_error(resp, 404, "no figures for this series");
        return;
    }
    g.generation = s->version;
    int last = db_series_last(s);
    /* by default the calendar year of the latest figure, whole (last year dashed) */
    g.to = to >= 0 ? to : pp_period_make(pp_period_year(last), 12);
    g.from = from >= 0 ? from : pp_period_make(pp_period_year(g.to), 1);
    if (g.from > g.to)
        g.from = g.to;
    db_vintage lv;
    int lp = last <= g.to ? last : g.to;
    while (lp >= g.from && !db_series_latest(s, lp, &lv))
        lp--;
    if (lp >= g.from)
        snprintf(g.latest, sizeof g.latest, "%.15g", lv.value); /* as published: 192.2 */
    double target;
    if (db_target(app->db, park->id, ind->id, pp_period_year(g.to), &target))
        snprintf(g.target, sizeof g.target, "%.15g", target);
    g.target_line = ind->kind == PP_KIND_CUMULATIVE;
    series_status st;
    if (status_eval(app, park, ind, s, -1, app_now(app), &st) && st.pace.has_gap) {
        double gap = st.pace.gap;
        const char *what = ind->kind == PP_KIND_RANK ? "目标" : st.pace.has_pace ? "序时进度" : "目标";
        const char *unit = ind->kind == PP_KIND_RANK ? "位" : "个百分点";
        snprintf(g.comment, sizeof g.comment, "%s %s %s %.2f %s", pp_period_format(st.period, ind_id, sizeof ind_id),
                 gap < 0 ? "低于" : "高于", what, gap < 0 ? -gap : gap, unit);
    }
    db_unlock(app->db);

    if (graph_request_check(&g) != 0) {
        api_error(resp, 400, "bad graph request (from/to out of range?)");
        return;
    }
    graph_image img;
    int rc = graph_get(app->graphs, app->graph_cache, &g, &img);
    if (rc == -EINVAL) {
        api_error(resp, 400, "bad graph request");
        return;
    }
    if (rc == -ENOENT) {
        api_error(resp, 404, "no RRD file for this series");
        return;
    }
    if (rc != 0) {
        api_error(resp, 500, "the graph could not be rendered");
        return;
    }
    snprintf(resp->etag, sizeof resp->etag, "%s", img.etag);
    resp->last_modified = updated;
    if (api_etag_matches(req->if_none_match, img.etag)) {
        graph_image_free(&img);
        resp->status = 304;
        return;
    }
    resp->status = 200;
    resp->content_type = graph_content_type(g.format);
    resp->body = (char *)img.data;
    resp->len = img.len;
    img.data = NULL;
    graph_image_free(&img);
}

/* A page route for an unknown park or indicator: the HTML 404 page instead
 * of the JSON error want_park/want_indicator left in resp (kept if the page
 * cannot be read). JSON stays JSON under /api/. */
static void reply_page_404(api_response *resp, const char *dir)
{
    pages_file f;
    if (pages_read_page(dir, "404.html", &f) != 0)
        return;
    free(resp->body);
    resp->status = 404;
    resp->content_type = f.content_type;
    resp->body = f.data;
    resp->len = f.len;
}

/* Routes that need neither the db nor the alerts: pages and assets. Returns
 * true when it answered. */
static bool route_static(pp_app *app, const api_request *req, api_response *resp)
{
    char seg[4][PP_ID_MAX + 16];
    const char *dir = app->cfg->dashboard_dir;
    const char *path = req->path;
    pages_file f;
    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        reply_file(req, resp, pages_read_page(dir, "index.html", &f), &f);
    } else if (split_path(path, "/park/", seg, 1) == 1) {
        if (want_park(app, seg[0], resp))
            reply_file(req, resp, pages_read_page(dir, "park.html", &f), &f);
        else if (resp->status == 404)
            reply_page_404(resp, dir);
    } else if (split_path(path, "/indicator/", seg, 1) == 1) {
        if (want_indicator(app, seg[0], resp))
            reply_file(req, resp, pages_read_page(dir, "indicator.html", &f), &f);
        else if (resp->status == 404)
            reply_page_404(resp, dir);
    } else if (split_path(path, "/dashboard/", seg, 1) == 1) {
        int rc = pages_read_dashboard(dir, seg[0], &f);
        if (rc == 0) {
            free(f.data);
            rc = pages_read_page(dir, "dashboard.html", &f);
        }
        reply_file(req, resp, rc, &f);
    } else if (split_path(path, "/assets/", seg, 1) == 1) {
        reply_file(req, resp, pages_read_asset(dir, seg[0], &f), &f);
    } else if (strcmp(path, "/api/v1/dashboards") == 0) {
        size_t len;
        char *body = pages_list_dashboards(dir, &len);
        if (body == NULL) {
            api_error(resp, 503, "out of memory");
        } else {
            resp->status = 200;
            resp->content_type = JSON_TYPE;
            resp->body = body;
            resp->len = len;
            set_etag(resp);
        }
    } else if (split_path(path, "/api/v1/dashboards/", seg, 1) == 1) {
        reply_file(req, resp, pages_read_dashboard(dir, seg[0], &f), &f);
    } else if (split_path(path, "/graph/", seg, 2) == 2) {
        route_graph(app, req, resp, seg[0], seg[1]);
    } else {
        return false;
    }
    return true;
}

void api_handle(pp_app *app, const api_request *req, api_response *resp)
{
    char seg[4][PP_ID_MAX + 16];
    memset(resp, 0, sizeof *resp);
    const char *path = req->path;

    for (const char *p = path; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '\\') {
            api_error(resp, 400, "bad characters in path");
            return;
        }
    }
    if (path[0] != '/' || strstr(path, "/../") || strstr(path, "/./") || strstr(path, "//") ||
        (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0)) {
        api_error(resp, 400, "bad path");
        return;
    }
    /* Until the journal is replayed, the statuses evaluated and the collectors
     * watch, nothing is served: /healthz and every other route say so. */
    if (!app_ready(app)) {
        api_error(resp, 503, "starting");
        return;
    }
    bool is_get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool is_post = strcmp(req->method, "POST") == 0;

    if (strcmp(path, "/api/v1/observations") == 0) {
        if (!is_post) {
            resp->allow = "POST";
            api_error(resp, 405, "method not allowed");
            return;
        }
        route_post_observations(app, req, resp); /* takes its locks itself */
        return;
    }
    if (!is_get) {
        resp->allow = "GET, HEAD";
        api_error(resp, 405, "method not allowed");
        return;
    }
    if (strcmp(path, "/api/v1") == 0) { /* the route index (routes.c) */
        jbuf b;
        jbuf_init(&b);
        jbuf_puts(&b, routes_index_json());
        set_body(resp, 200, JSON_TYPE, &b);
        return;
    }
    if (strcmp(path, "/healthz") == 0) { /* ready: see above */
        jbuf b;
        jbuf_init(&b);
        jbuf_puts(&b, "ok\n");
        set_body(resp, 200, "text/plain; charset=utf-8", &b);
        return;
    }

    pthread_rwlock_rdlock(&app->cfg_lock);
    if (route_static(app, req, resp)) {
        pthread_rwlock_unlock(&app->cfg_lock);
        return;
    }
    db_rdlock(app->db);
    int n;
    if (strcmp(path, "/api/v1/status") == 0)
        route_status(app, req, resp);
    else if (strcmp(path, "/api/v1/alerts") == 0)
        route_alerts(app, req, resp);
    else if ((n = split_path(path, "/api/v1/parks/", seg, 1)) == 1)
        route_park(app, req, resp, seg[0]);
    else if ((n = split_path(path, "/api/v1/series/", seg, 2)) == 2)
        route_series(app, req, resp, seg[0], seg[1]);
    else if ((n = split_path(path, "/api/v1/ranking/", seg, 1)) == 1)
        route_ranking(app, req, resp, seg[0]);
    else if ((n = split_path(path, "/api/v1/history/", seg, 3)) == 3)
        route_history(app, req, resp, seg);
    else if (strcmp(path, "/api/v1/report") == 0)
        route_report(app, req, resp);
    else if (strcmp(path, "/metrics") == 0)
        route_metrics(app, resp);
    else
        api_error(resp, 404, "not found");
    db_unlock(app->db);
    pthread_rwlock_unlock(&app->cfg_lock);
}
