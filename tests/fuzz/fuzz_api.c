/*
 * fuzz_api.c — libFuzzer harness for the HTTP routes (daemon/api.c): the
 * path checks, the route table, the id look-ups and the query parameters
 * (period, from/to, width/height, since, format, encoding), through
 * api_handle() as http.c calls it, without libmicrohttpd and without a socket.
 *
 * The application is built once: the configuration of fuzz.h (the parks of
 * tests/fixtures/parks.conf, config/indicators.conf, dashboards/ of the
 * tree), a journal and RRD files in a temporary directory, the figures and
 * targets of tests/fixtures ingested, the alert engine evaluated, the clock
 * fixed at 2025-01-15 (after every fixture month). No token file, so a POST is refused before it reaches
 * ingest (the fuzzer never writes); no graph workers, so a graph request stops
 * before librrd.
 *
 * Input: "METHOD\nTARGET\nIF-NONE-MATCH\nAUTHORIZATION\nBODY", each part
 * optional; an input without a newline is a GET of TARGET. TARGET is
 * "path?query" with query "k=v&k=v" given as http.c hands them over (already
 * decoded: bytes are taken as they are; a NUL in the path becomes 0x01, as an
 * encoded NUL does).
 *
 * Invariants checked, beyond "no crash, no leak, no undefined behaviour":
 *   - the status is one of 200 304 400 403 404 405; every answer but 304 has a
 *     content type and a body; 405 says what is allowed;
 *   - a path with a control byte, a backslash, "//", "/./", "/../" or a final
 *     "/.." is refused with 400, and a method other than GET/HEAD (or POST on
 *     /api/v1/observations) with 400 or 405;
 *   - JSON answers parse with jansson; every text answer is valid UTF-8
 *     (GB18030 CSV reports: converted back to UTF-8 first);
 *   - a 200 on /api/v1/parks/<id>, /api/v1/series/<p>/<i>, /park/<id> names
 *     configured ids;
 *   - the same request answered twice (the second time possibly from the
 *     answer cache) gives the same status and bytes, and with If-None-Match
 *     set to the ETag of a JSON answer, a 304 or the same answer again.
 */
#include "fuzz.h"

#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "alert.h"
#include "api.h"
#include "app.h"
#include "db.h"
#include "ingest.h"
#include "json_check.h"
#include "log.h"
#include "journal.h"
#include "text.h"

static pp_app app;

static void ingest_fixture(const char *root, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", root, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            buf = realloc(buf, cap);
            if (buf == NULL)
                abort();
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    ingest_result res;
    memset(&res, 0, sizeof res);
    ingest_status st = ingest_csv(&app, name, buf, len, &res);
    if (st != INGEST_OK) {
        fprintf(stderr, "fuzz: %s not ingested:\n%s\n", name, res.report ? res.report : "");
        exit(1);
    }
    free(res.report);
    free(buf);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char rootbuf[PATH_MAX], dir[PATH_MAX + 32];
    log_set_level(LOG_LVL_WARN); /* the fixtures' ingest is not news */
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    memset(&app, 0, sizeof app);
    if (app_locks_init(&app) != 0)
        abort();
    app.cfg = fuzz_config(NULL);
    struct tm tm = {.tm_year = 2025 - 1900, .tm_mon = 0, .tm_mday = 15, .tm_hour = 12}; /* after every fixture month */
    app.fixed_now = (int64_t)mktime(&tm);
    app.started_at = app.fixed_now;
    snprintf(dir, sizeof dir, "%s/journal", fuzz_dir);
    if (journal_open(dir, &app.journal) != 0) {
        fprintf(stderr, "fuzz: cannot open the journal in %s\n", dir);
        exit(1);
    }
    snprintf(app.rrd_dir, sizeof app.rrd_dir, "%.4000s/rrd", fuzz_dir);
    if (mkdir(app.rrd_dir, 0755) != 0) {
        perror(app.rrd_dir);
        exit(1);
    }
    app.db = db_new();
    app.alerts = alert_new(&app);
    if (app.db == NULL || app.alerts == NULL)
        abort();
    const char *root = fuzz_root(rootbuf, sizeof rootbuf);
    ingest_fixture(root, "targets-2021.csv");
    ingest_fixture(root, "xiangtan-etdz-2021.csv");
    ingest_fixture(root, "wide-2024.csv");
    ingest_evaluate_all(&app); /* as main.c does at start */
    atomic_store(&app.ready, true); /* as main.c does once started: no 503 "starting" */
    return 0;
}

/* ---- the request ---------------------------------------------------------- */

#define MAX_ARGS 16

typedef struct {
    char *key[MAX_ARGS], *value[MAX_ARGS];
    int n;
} query_args;

static const char *query_lookup(void *ctx, const char *key)
{
    query_args *q = ctx;
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->key[i], key) == 0)
            return q->value[i];
    return NULL;
}

static void parse_query(char *s, query_args *q)
{
    q->n = 0;
    while (s != NULL && *s != '\0' && q->n < MAX_ARGS) {
        char *amp = strchr(s, '&');
        if (amp)
            *amp++ = '\0';
        char *eq = strchr(s, '=');
        if (eq)
            *eq++ = '\0';
        q->key[q->n] = s;
        q->value[q->n] = eq ? eq : s + strlen(s);
        q->n++;
        s = amp;
    }
}

/* Splits data at the first newline: a NUL-terminated copy of the part before
 * it in *part (NULs kept as they are), the rest returned. */
static const uint8_t *take_line(const uint8_t *data, size_t *size, char **part, size_t *plen)
{
    const uint8_t *nl = memchr(data, '\n', *size);
    size_t n = nl ? (size_t)(nl - data) : *size;
    *part = fuzz_strndup(data, n);
    *plen = n;
    *size -= nl ? n + 1 : n;
    return nl ? nl + 1 : data + n;
}

/* ---- the invariants -------------------------------------------------------- */

static const char *body_of(const api_response *r)
{
    return r->shared ? api_blob_data(r->shared) : r->body;
}

static bool configured_park(const char *id)
{
    const pp_park *p = pp_catalog_park(&app.cfg->catalog, id);
    return p != NULL && strcmp(p->id, id) == 0;
}

static bool configured_indicator(const char *id)
{
    const pp_indicator *i = pp_catalog_indicator(&app.cfg->catalog, id);
    return i != NULL && strcmp(i->id, id) == 0;
}

/* The first segment after prefix, into seg (empty when it does not fit). */
static void segment(const char *path, const char *prefix, int which, char *seg, size_t len)
{
    const char *p = path + strlen(prefix);
    for (int i = 0; i < which && p; i++) {
        p = strchr(p, '/');
        if (p)
            p++;
    }
    seg[0] = '\0';
    if (p == NULL)
        return;
    size_t n = strcspn(p, "/");
    if (n < len)
        memcpy(seg, p, n), seg[n] = '\0';
}

static bool bad_path(const char *path)
{
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\')
            return true;
    size_t n = strlen(path);
    return path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../") ||
           (n >= 3 && strcmp(path + n - 3, "/..") == 0);
}

static void check_response(const api_request *req, const api_response *r)
{
    int st = r->status;
    const char *path = req->path;
    FUZZ_ASSERT(st == 200 || st == 304 || st == 400 || st == 403 || st == 404 || st == 405,
                "status %d for %s %s", st, req->method, path);
    if (bad_path(path))
        FUZZ_ASSERT(st == 400, "bad path answered %d", st);
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (!get && !(strcmp(req->method, "POST") == 0 && strcmp(path, "/api/v1/observations") == 0))
        FUZZ_ASSERT(st == 400 || st == 405, "%s answered %d", req->method, st);
    if (st == 405)
        FUZZ_ASSERT(r->allow != NULL, "405 without Allow");
    if (st == 304) {
        /* a 304 needs an entity tag of the answer in If-None-Match, or "*"
         * (any current representation) */
        FUZZ_ASSERT(req->if_none_match != NULL && r->etag[0] != '\0' &&
                        (strstr(req->if_none_match, r->etag + (r->etag[0] == 'W' ? 2 : 0)) ||
                         strchr(req->if_none_match, '*')),
                    "304 without a matching If-None-Match");
        return;
    }
    const char *body = body_of(r);
    FUZZ_ASSERT(r->content_type != NULL && body != NULL && r->len > 0,
                "status %d without a body or type", st);
    FUZZ_ASSERT(memchr(r->etag, '\0', sizeof r->etag) != NULL, "etag not terminated");
    const char *ct = r->content_type;
    if (strncmp(ct, "application/json", 16) == 0) {
        char why[256];
        FUZZ_ASSERT(fuzz_json_valid(body, r->len, why, sizeof why),
                    "%s: JSON does not parse: %s\n%.*s", path, why,
                    (int)(r->len < 2000 ? r->len : 2000), body);
    } else if (strstr(ct, "charset=gb18030")) {
        char *u;
        size_t ulen;
        FUZZ_ASSERT(text_gb18030_to_utf8(body, r->len, &u, &ulen) == 0, "GB18030 body");
        FUZZ_ASSERT(fuzz_utf8(u, ulen, NULL), "GB18030 body not UTF-8 after conversion");
        free(u);
    } else if (strncmp(ct, "text/", 5) == 0 || strstr(ct, "charset=utf-8")) {
        FUZZ_ASSERT(fuzz_utf8(body, r->len, NULL), "%s: %s body not UTF-8", path, ct);
    }
    if (st == 200) {
        char a[PP_ID_MAX * 4], b[PP_ID_MAX * 4];
        if (strncmp(path, "/api/v1/parks/", 14) == 0 || strncmp(path, "/park/", 6) == 0) {
            segment(path, path[1] == 'a' ? "/api/v1/parks/" : "/park/", 0, a, sizeof a);
            FUZZ_ASSERT(configured_park(a), "200 for park '%s'", a);
        } else if (strncmp(path, "/api/v1/series/", 15) == 0) {
            segment(path, "/api/v1/series/", 0, a, sizeof a);
            segment(path, "/api/v1/series/", 1, b, sizeof b);
            FUZZ_ASSERT(configured_park(a) && configured_indicator(b), "200 for series '%s/%s'",
                        a, b);
        } else if (strncmp(path, "/indicator/", 11) == 0) {
            segment(path, "/indicator/", 0, a, sizeof a);
            FUZZ_ASSERT(configured_indicator(a), "200 for indicator '%s'", a);
        }
    }
}

static bool same_answer(const api_response *a, const api_response *b)
{
    if (a->status != b->status || a->len != b->len || strcmp(a->etag, b->etag) != 0)
        return false;
    const char *x = body_of(a), *y = body_of(b);
    if (a->len == 0)
        return true;
    return x != NULL && y != NULL && memcmp(x, y, a->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *method, *target, *inm = NULL, *auth = NULL;
    size_t mlen, tlen, ilen, alen;
    const uint8_t *rest = data;
    size_t left = size;
    if (memchr(data, '\n', size) == NULL) {
        method = strdup("GET");
        target = fuzz_strndup(data, size);
        tlen = size;
        left = 0;
    } else {
        rest = take_line(rest, &left, &method, &mlen);
        rest = take_line(rest, &left, &target, &tlen);
        if (left > 0)
            rest = take_line(rest, &left, &inm, &ilen);
        if (left > 0)
            rest = take_line(rest, &left, &auth, &alen);
    }
    /* the path: up to '?', a NUL in it as http.c's unescape leaves an encoded one */
    char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    for (size_t i = 0; i < plen; i++)
        if (target[i] == '\0')
            target[i] = '\x01';
    if (q)
        *q++ = '\0';
    if (target[0] == '\0') { /* libmicrohttpd never hands over an empty URL */
        free(target);
        target = strdup("/");
        q = NULL;
    }
    query_args args;
    parse_query(q, &args);
    api_request req = {
        .method = method,
        .path = target,
        .query = query_lookup,
        .query_ctx = &args,
        .if_none_match = inm && inm[0] ? inm : NULL,
        .authorization = auth && auth[0] ? auth : NULL,
        .body = (const char *)rest,
        .body_len = left,
    };
    api_response r1, r2;
    api_handle(&app, &req, &r1);
    check_response(&req, &r1);
    api_handle(&app, &req, &r2);
    check_response(&req, &r2);
    /* /metrics carries the process's own figures (memory, descriptors, CPU),
     * which move between two calls */
    bool live = strncmp(target, "/metrics", 8) == 0;
    FUZZ_ASSERT(live || same_answer(&r1, &r2), "the same request answered %d then %d",
                r1.status, r2.status);
    api_response_free(&r2);
    if (r1.status == 200 && r1.etag[0] != '\0' &&
        strncmp(r1.content_type, "application/json", 16) == 0) {
        api_request cond = req;
        cond.if_none_match = r1.etag;
        api_handle(&app, &cond, &r2);
        check_response(&cond, &r2);
        FUZZ_ASSERT(r2.status == 304 || same_answer(&r1, &r2),
                    "If-None-Match %s answered %d", r1.etag, r2.status);
        api_response_free(&r2);
    }
    api_response_free(&r1);
    free(method);
    free(target);
    free(inm);
    free(auth);
    return 0;
}
