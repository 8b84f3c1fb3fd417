/*
 * api.c — the route table of README, HTTP API, and the JSON answers (see api.h).
 *
 * Paths are matched against a fixed table (api_routes, near the end: method,
 * pattern, handler, cacheable), by api_route_match(), a pure function;
 * nothing in a URL is ever mapped onto a file. Ids taken from a path are
 * checked with pp_id_valid() and then looked up in the configuration: an id
 * that is not configured answers 404 before it reaches the db, a file path or
 * an rrdtool argument. A GET route runs inside one read view (app.h) and
 * writes what status.c and report.c build; this file adds the HTTP answers
 * (bodies, errors). The ETags, the one 304 and the answer cache of the
 * cacheable routes are answer.c's; the token check of the writes is auth.c's.
 */
#include "api.h"

#include <errno.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "answer.h"
#include "csv.h"
#include "graph.h"
#include "ingest.h"
#include "workbook.h"
#include "json.h"
#include "log.h"
#include "pace.h"
#include "pages.h"
#include "report.h"
#include "report_doc.h"
#include "report_xlsx.h"
#include "routes.h"
#include "silence.h"
#include "status.h"
#include "text.h"

#define JSON_TYPE "application/json; charset=utf-8"

/* One request on its way through a route (see the route table below). */
typedef struct api_call {
    pp_app *app;                 /* for the routes that take their own locks */
    const pp_view *view;         /* the read view the route runs in (NULL: OWN_LOCKS) */
    const api_request *req;
    api_response *resp;
    const api_route *route;
    char (*seg)[API_SEG_LEN];    /* the path's '*' segments, in order */
} api_call;

typedef void api_handler(const api_call *c);

static void api_deferred_free(api_deferred *d);

void api_response_free(api_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    api_blob_release(resp->shared);
    resp->shared = NULL;
    api_deferred_free(resp->deferred);
    resp->deferred = NULL;
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

/* Answers with a JSON body, an ETag and 304 when the client has it already. */
static void reply_json(const api_request *req, api_response *resp, jbuf *b, int64_t last_mod)
{
    jbuf_puts(b, "\n");
    set_body(resp, 200, JSON_TYPE, b);
    if (resp->status != 200)
        return;
    answer_set_etag(resp);
    resp->last_modified = last_mod;
    answer_not_modified(req, resp);
}

/* true when id, taken from a path, is the id the catalogue found (found_id,
 * NULL when none); else answers 400 (not an id) or 404 (not a configured
 * <what>) itself. */
static bool id_known(const char *id, const char *found_id, const char *what, api_response *resp)
{
    char msg[64];
    if (!pp_id_valid(id)) {
        snprintf(msg, sizeof msg, "invalid %s id", what);
        api_error(resp, 400, msg);
        return false;
    }
    if (found_id == NULL || strcmp(found_id, id) != 0) {
        snprintf(msg, sizeof msg, "unknown %s", what);
        api_error(resp, 404, msg);
        return false;
    }
    return true;
}

/* Looks up a configured park; answers 400/404 itself when it is not one. */
static const pp_park *want_park(const pp_view *v, const char *id, api_response *resp)
{
    const pp_park *p = pp_id_valid(id) ? pp_catalog_park(&v->cfg->catalog, id) : NULL;
    return id_known(id, p ? p->id : NULL, "park", resp) ? p : NULL;
}

static const pp_indicator *want_indicator(const pp_view *v, const char *id, api_response *resp)
{
    const pp_indicator *i = pp_id_valid(id) ? pp_catalog_indicator(&v->cfg->catalog, id) : NULL;
    return id_known(id, i ? i->id : NULL, "indicator", resp) ? i : NULL;
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

static int64_t newest_update(const pp_view *v)
{
    int64_t t = 0;
    for (size_t i = 0; i < db_series_count(v->db); i++) {
        const db_series *s = db_series_at(v->db, i);
        if (s->updated_at > t)
            t = s->updated_at;
    }
    return t;
}

/* GET /api/v1/status (cacheable) */
static void route_status(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    char buf[40];
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{");
    json_key(&b, "generated_at", true);
    json_str(&b, app_format_time(v->now, buf, sizeof buf));
    /* the latest month that is due: the overview's period (not the latest figure seen) */
    int due = status_due_period(v);
    json_key(&b, "due_period", false);
    if (due >= 0)
        json_str(&b, pp_period_format(due, buf, sizeof buf));
    else
        json_null(&b);
    json_key(&b, "parks", false);
    jbuf_puts(&b, "[");
    for (size_t i = 0; i < v->cfg->catalog.n_parks; i++) {
        if (i)
            jbuf_puts(&b, ",");
        status_park_json(&b, v, &v->cfg->catalog.parks[i]);
    }
    jbuf_puts(&b, "]}");
    reply_json(req, resp, &b, newest_update(v));
}

/* GET /api/v1/parks/<park> (cacheable) */
static void route_park(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    const pp_park *park = want_park(v, c->seg[0], resp);
    if (park == NULL)
        return;
    jbuf b;
    jbuf_init(&b);
    status_park_json(&b, v, park);
    reply_json(req, resp, &b, newest_update(v));
}

/* GET /api/v1/series/<park>/<indicator>?from=&to= */
static void route_series(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    const pp_park *park = want_park(v, c->seg[0], resp);
    const pp_indicator *ind = park ? want_indicator(v, c->seg[1], resp) : NULL;
    int from, to;
    if (ind == NULL)
        return;
    if (!query_period(req, "from", &from, resp) || !query_period(req, "to", &to, resp))
        return;
    if (from >= 0 && to >= 0 && from > to) {
        api_error(resp, 400, "from is after to");
        return;
    }
    jbuf b;
    jbuf_init(&b);
    int64_t updated = status_points_json(&b, v, park, ind, from, to);
    reply_json(req, resp, &b, updated);
}

/* true when a Content-Type names an Excel workbook (.xlsx or .xls). */
static bool workbook_type(const char *ct)
{
    static const char *const types[] = {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel",
    };
    if (ct == NULL)
        return false;
    size_t n = strcspn(ct, "; \t");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (n == strlen(types[i]) && strncasecmp(ct, types[i], n) == 0)
            return true;
    return false;
}


/* The lines of a report as a JSON array of strings ([] for NULL). */
static void json_lines(jbuf *b, const char *text)
{
    jbuf_puts(b, "[");
    const char *p = text ? text : "";
    bool first = true;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        if (!first)
            jbuf_puts(b, ",");
        first = false;
        json_str(b, line);
        p += n + (nl ? 1 : 0);
    }
    jbuf_puts(b, "]");
}

/* POST /api/v1/observations. Called with no lock held: ingest_csv() takes
 * ingest_lock, then cfg_lock (the lock order of app.h). */
static void route_post_observations(const api_call *c)
{
    pp_app *app = c->app;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    if (api_authorize(app, req->authorization, resp) != 0)
        return;
    /* The body is read by its first bytes whatever its type (a workbook sent
     * as text/csv is still a workbook); a body declared a workbook that is
     * not one is refused with that reason rather than read as CSV. */
    if (workbook_type(req->content_type) &&
        workbook_format(req->body, req->body_len) == WB_NONE) {
        api_error(resp, 400, "请求声明为 Excel 工作簿，但内容不是 .xlsx（zip）或 .xls（OLE2）文件"
                  "（the body is declared an Excel workbook by its Content-Type but is neither "
                  "an .xlsx (zip) nor an .xls (OLE2) file）");
        return;
    }
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
        json_key(&b, "warnings", false);
        json_lines(&b, res.warnings);
        jbuf_puts(&b, "}\n");
        set_body(resp, 202, JSON_TYPE, &b);
    } else {
        json_key(&b, "error", true);
        json_str(&b, st == INGEST_REFUSED ? "bad rows: nothing was accepted" : "could not store");
        json_key(&b, "errors", false);
        json_lines(&b, res.report);
        jbuf_puts(&b, "}\n");
        set_body(resp, st == INGEST_REFUSED ? 400 : 503, JSON_TYPE, &b);
    }
    free(res.report);
    free(res.warnings);
}

/* DELETE /api/v1/observations/<park>/<indicator>/<YYYY-MM>?reason= — a
 * retraction (README). Called with no lock held: the ids are checked under a
 * read view, which is ended before ingest_retract() takes ingest_lock. */
static void route_retract(const api_call *c)
{
    pp_app *app = c->app;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    if (api_authorize(app, req->authorization, resp) != 0)
        return;
    char park[PP_ID_MAX + 1], ind[PP_ID_MAX + 1], why[160];
    int period;
    pp_view v;
    view_begin(app, &v);
    const pp_park *pk = want_park(&v, c->seg[0], resp);
    const pp_indicator *pi = pk ? want_indicator(&v, c->seg[1], resp) : NULL;
    if (pi) {
        snprintf(park, sizeof park, "%s", pk->id);
        snprintf(ind, sizeof ind, "%s", pi->id);
    }
    view_end(&v);
    if (pi == NULL)
        return;
    if (csv_parse_period(c->seg[2], &period, why, sizeof why) != 0) {
        api_error(resp, 400, "bad period: expected YYYY-MM");
        return;
    }
    const char *reason = req->query ? req->query(req->query_ctx, "reason") : NULL;
    if (reason == NULL || *reason == '\0') {
        api_error(resp, 400, "撤回需要说明原因 / a retraction needs ?reason=");
        return;
    }
    char source[PP_SOURCE_MAX + 1];
    snprintf(source, sizeof source, "http %s", req->client ? req->client : "?");
    ingest_result res;
    ingest_status st = ingest_retract(app, park, ind, period, source, reason, &res);
    if (st == INGEST_REFUSED) {
        api_error(resp, 404, "该期没有数据可撤回 / no figure for that period");
    } else if (st != INGEST_OK) {
        api_error(resp, 503, "could not store the retraction");
    } else {
        free(res.warnings);
        res.warnings = NULL;
        jbuf b;
        jbuf_init(&b);
        char pbuf[16];
        view_begin(app, &v);
        const db_series *s = db_series_get(v.db, park, ind);
        size_t n = db_series_vintages(s, period, NULL, 0);
        db_vintage w;
        jbuf_puts(&b, "{");
        json_key(&b, "park", true);
        json_str(&b, park);
        json_key(&b, "indicator", false);
        json_str(&b, ind);
        json_key(&b, "period", false);
        json_str(&b, pp_period_format(period, pbuf, sizeof pbuf));
        json_key(&b, "retraction", false);
        if (n > 0 && db_series_vintage(s, period, n - 1, &w))
            report_vintage_json(&b, &w);
        else
            json_null(&b);
        view_end(&v);
        jbuf_puts(&b, "}\n");
        set_body(resp, 200, JSON_TYPE, &b);
    }
    free(res.report);
    free(res.warnings);
}

/* GET /api/v1/alerts?since= */
static void route_alerts(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    const char *since = req->query ? req->query(req->query_ctx, "since") : NULL;
    jbuf b;
    jbuf_init(&b);
    if (v->alerts == NULL) {
        api_error(resp, 503, "alerts are not available");
        return;
    }
    if (since) {
        uint64_t n;
        if (!api_parse_uint(since, UINT64_MAX, &n)) {
            api_error(resp, 400, "bad since: expected a sequence number");
            return;
        }
        alert_since_json(v->alerts, n, &b);
    } else {
        alert_active_json(v->alerts, &b);
    }
    reply_json(req, resp, &b, 0);
}

/* The peer group of ?group= (NULL: all); false when resp was answered (400, 404). */
static bool want_group(const pp_view *v, const api_request *req, const conf_group **g,
                       api_response *resp)
{
    const char *id = req->query ? req->query(req->query_ctx, "group") : NULL;
    *g = NULL;
    if (id == NULL || *id == '\0' || strcmp(id, "all") == 0)
        return true;
    if (!pp_id_valid(id)) {
        api_error(resp, 400, "invalid group id");
        return false;
    }
    if ((*g = conf_group_find(v->cfg, id)) == NULL) {
        api_error(resp, 404, "unknown group");
        return false;
    }
    return true;
}

/* GET /api/v1/ranking/<indicator>?period=&group=&by= */
static void route_ranking(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    const pp_indicator *ind = want_indicator(v, c->seg[0], resp);
    if (ind == NULL)
        return;
    int period;
    const conf_group *g;
    report_by by;
    if (!query_period(req, "period", &period, resp) || !want_group(v, req, &g, resp))
        return;
    if (report_by_parse(req->query ? req->query(req->query_ctx, "by") : NULL, &by) != 0) {
        api_error(resp, 400, "bad by: gap, value, yoy or completion");
        return;
    }
    if (period < 0)
        period = report_latest_period(v, ind);
    jbuf b;
    jbuf_init(&b);
    report_ranking_json(v, ind, period, g, by, &b);
    reply_json(req, resp, &b, newest_update(v));
}

/* GET /api/v1/history/<park>/<indicator>/<YYYY-MM> */
static void route_history(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    const pp_park *park = want_park(v, c->seg[0], resp);
    const pp_indicator *ind = park ? want_indicator(v, c->seg[1], resp) : NULL;
    if (ind == NULL)
        return;
    int period;
    char why[160];
    if (csv_parse_period(c->seg[2], &period, why, sizeof why) != 0) {
        api_error(resp, 400, "bad period: expected YYYY-MM");
        return;
    }
    jbuf b;
    jbuf_init(&b);
    report_history_json(v, park, ind, period, &b);
    reply_json(req, resp, &b, 0);
}

/* The 通报 workbook of period (report_xlsx.c), built in the state directory. */
static void reply_xlsx(const pp_view *v, int period, api_response *resp)
{
    report_doc d;
    char *data;
    size_t len;
    if (report_doc_build(v, period, &d) != 0) {
        api_error(resp, 503, "out of memory");
        return;
    }
    int rc = report_xlsx(&d, v->cfg->state_dir, &data, &len);
    report_doc_free(&d);
    if (rc != 0) {
        api_error(resp, 503, "the workbook could not be written (see the log)");
        return;
    }
    resp->status = 200;
    resp->content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    resp->body = data;
    resp->len = len;
    snprintf(resp->disposition, sizeof resp->disposition,
             "attachment; filename=\"parkpulse-report-%04d-%02d.xlsx\"", pp_period_year(period),
             pp_period_month(period));
}

/* GET /api/v1/report?period=&format=csv|json|xlsx&encoding=utf-8|gb18030&bom=0|1&layout=wide */
static void route_report(const api_call *c)
{
    const pp_view *v = c->view;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    const char *fmt = req->query ? req->query(req->query_ctx, "format") : NULL;
    const char *enc = req->query ? req->query(req->query_ctx, "encoding") : NULL;
    const char *layout = req->query ? req->query(req->query_ctx, "layout") : NULL;
    const char *bom = req->query ? req->query(req->query_ctx, "bom") : NULL;
    int period;
    if (!query_period(req, "period", &period, resp))
        return;
    if (fmt == NULL || *fmt == '\0')
        fmt = "csv";
    if (strcmp(fmt, "csv") != 0 && strcmp(fmt, "json") != 0 && strcmp(fmt, "xlsx") != 0) {
        api_error(resp, 400, "bad format: csv, json or xlsx");
        return;
    }
    if (bom && *bom && strcmp(bom, "0") != 0 && strcmp(bom, "1") != 0) {
        api_error(resp, 400, "bad bom: 0 or 1");
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
        period = report_latest_period(v, NULL);
        if (period < 0) {
            api_error(resp, 404, "no figures yet: give period=YYYY-MM");
            return;
        }
    }
    jbuf b;
    jbuf_init(&b);
    if (strcmp(fmt, "json") == 0) {
        report_table_json(v, period, &b);
        reply_json(req, resp, &b, newest_update(v));
        return;
    }
    if (strcmp(fmt, "xlsx") == 0) {
        reply_xlsx(v, period, resp);
        return;
    }
    /* UTF-8 with a byte order mark, so that Excel and LibreOffice's default
     * import take it for UTF-8 (bom=0 drops it; GB18030 has none) */
    if (!gb && !(bom && strcmp(bom, "0") == 0))
        jbuf_puts(&b, "\xEF\xBB\xBF");
    if (layout != NULL && strcmp(layout, "wide") == 0)
        report_table_csv_wide(v, period, &b);
    else
        report_table_csv(v, period, &b);
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
    answer_set_etag(resp);
    answer_not_modified(req, resp);
}

/* GET /metrics */
static void route_metrics(const api_call *c)
{
    jbuf b;
    jbuf_init(&b);
    report_metrics(c->view, c->app, &b);
    set_body(c->resp, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

/* Serves a page, an asset or a dashboard definition read by pages.c. */
static void reply_file(const api_request *req, api_response *resp, int rc, pages_file *f)
{
    if (rc == -ENOENT || rc == -EINVAL) { /* pages.h */
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
    answer_set_etag(resp);
    answer_not_modified(req, resp);
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

/* The graph request of GET /graph/<park>/<indicator>.png|.svg, assembled
 * under the read view v; false when resp was answered (400, 404). */
static bool graph_assemble(const pp_view *v, const api_request *req, api_response *resp,
                           const char *park_id, const char *file, graph_request *out,
                           int64_t *updated)
{
    char ind_id[PP_ID_MAX + 16];
    graph_request g;
    graph_request_init(&g);
    *updated = 0;
    size_t fl = strlen(file);
    if (fl > 4 && strcmp(file + fl - 4, ".png") == 0) {
        g.format = GRAPH_PNG;
    } else if (fl > 4 && strcmp(file + fl - 4, ".svg") == 0) {
        g.format = GRAPH_SVG;
    } else {
        api_error(resp, 404, "not found: graphs are <indicator>.png or .svg");
        return false;
    }
    snprintf(ind_id, sizeof ind_id, "%.*s", (int)(fl - 4), file);
    const pp_park *park = want_park(v, park_id, resp);
    const pp_indicator *ind = park ? want_indicator(v, ind_id, resp) : NULL;
    if (ind == NULL)
        return false;
    int from, to;
    if (!query_period(req, "from", &from, resp) || !query_period(req, "to", &to, resp) ||
        !query_int(req, "width", GRAPH_WIDTH_MIN, GRAPH_WIDTH_MAX, &g.width, resp) ||
        !query_int(req, "height", GRAPH_HEIGHT_MIN, GRAPH_HEIGHT_MAX, &g.height, resp))
        return false;
    if (from >= 0 && to >= 0 && from > to) {
        api_error(resp, 400, "from is after to");
        return false;
    }
    snprintf(g.park, sizeof g.park, "%s", park->id);
    snprintf(g.indicator, sizeof g.indicator, "%s", ind->id);
    snprintf(g.title, sizeof g.title, "%s · %s (%s)", park->name, ind->label, ind->unit);
    snprintf(g.unit, sizeof g.unit, "%s", ind->unit);
    snprintf(g.value_label, sizeof g.value_label, "%s", ind->label);
    snprintf(g.pace_label, sizeof g.pace_label, "%s",
             ind->kind == PP_KIND_RATE || ind->kind == PP_KIND_RANK ? "目标" : "序时进度");

    const db_series *s = db_series_get(v->db, park->id, ind->id);
    *updated = s ? s->updated_at : 0;
    if (db_series_last(s) < 0) {
        api_error(resp, 404, "no figures for this series");
        return false;
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
    if (lp >= g.from) {
        snprintf(g.latest, sizeof g.latest, "%.15g", lv.value); /* as published: 192.2 */
        if (lv.has_yoy)
            snprintf(g.yoy, sizeof g.yoy, "%.15g", lv.yoy);
    }
    /* 去年同期 (drawn for a year or less) only when last year's months hold a figure */
    g.last_year = 0;
    for (int p = g.from - 12; g.to - g.from < 12 && p <= g.to - 12 && !g.last_year; p++)
        g.last_year = pp_period_valid(p) && db_series_latest(s, p, &lv);
    double target;
    if (db_target(v->db, park->id, ind->id, pp_period_year(g.to), &target))
        snprintf(g.target, sizeof g.target, "%.15g", target);
    g.target_line = ind->kind == PP_KIND_CUMULATIVE;
    series_status st;
    if (status_eval(v, park, ind, s, -1, &st) && st.pace.has_gap) {
        /* "2024-08 低于序时进度(66.7%)2.6个百分点": the words of the 通报 message */
        char pbuf[16], words[sizeof g.comment - sizeof pbuf];
        pace_gap_words(ind, st.value, st.target, &st.pace, words, sizeof words);
        snprintf(g.comment, sizeof g.comment, "%s %s", pp_period_format(st.period, pbuf, sizeof pbuf),
                 words);
    }
    *out = g;
    return true;
}

/* How long a graph waits for its series' queued RRD write; past it, the
 * image is drawn from the file as it is and not cached. */
#define GRAPH_RRD_WAIT_MS 2000

/* The answer cache's key of a graph: its path and the query parameters that
 * shape the image (api.c graph_assemble reads no other), each as sent,
 * length-prefixed ("-" when absent) so that no two requests share a key.
 * false when it is too long to keep. */
static bool graph_answer_key(const pp_view *v, const api_request *req, answer_key *k)
{
    static const char *const params[] = { "from", "to", "width", "height" };
    char key[ANSWER_PATH_MAX];
    size_t at = strlen(req->path);
    if (at + 1 >= sizeof key)
        goto too_long;
    memcpy(key, req->path, at);
    key[at++] = '?';
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        const char *val = req->query ? req->query(req->query_ctx, params[i]) : NULL;
        char len[24] = "-";
        size_t vl = 0, ll = 1;
        if (val != NULL) {
            vl = strlen(val);
            int n = snprintf(len, sizeof len, "%zu:", vl);
            ll = n > 0 ? (size_t)n : 0;
        }
        if (at + ll + vl + 1 >= sizeof key)
            goto too_long;
        memcpy(key + at, len, ll);
        memcpy(key + at + ll, val ? val : "", vl);
        at += ll + vl;
        key[at++] = ';';
    }
    key[at] = '\0';
    answer_key_of(v, key, k);
    return true;
too_long:
    memset(k, 0, sizeof *k); /* copied along, never used */
    return false;
}

/* A graph assembled, to be drawn (graph_draw), on the HTTP thread or later
 * on another (api_deferred_run). */
struct api_deferred {
    pp_app *app;
    graph_request g;
    answer_key key;
    bool keyed;
    int64_t updated;
    char *if_none_match;         /* a copy, or NULL */
};

static void api_deferred_free(api_deferred *d)
{
    if (d == NULL)
        return;
    free(d->if_none_match);
    free(d);
}

/* Draws an assembled graph into resp: waits for its series' RRD write, then
 * takes the image from graph.c's cache or a worker; keeps the answer in the
 * answer cache; 304 when if_none_match holds its ETag. May block for
 * seconds: holds no lock of the view. */
static void graph_draw(pp_app *app, const graph_request *g, const answer_key *key, bool keyed,
                       int64_t updated, const char *if_none_match, api_response *resp)
{
    /* the RRD file follows the acknowledgement (ingest.h): an image cached
     * under this version of the series must be drawn from its figures */
    bool settled = ingest_rrd_wait_series(app, g->park, g->indicator, GRAPH_RRD_WAIT_MS);
    graph_image img;
    int rc = graph_get(app->graphs, settled ? app->graph_cache : NULL, g, &img);
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
    resp->status = 200;
    resp->content_type = graph_content_type(g->format);
    resp->body = (char *)img.data;
    resp->len = img.len;
    img.data = NULL;
    graph_image_free(&img);
    if (keyed && settled)
        answer_cache_put(resp, key); /* a 200 is kept even when this client gets a 304 */
    api_request inm = { .if_none_match = if_none_match };
    answer_not_modified(&inm, resp);
}

void api_deferred_run(api_deferred *d, api_response *resp)
{
    memset(resp, 0, sizeof *resp);
    graph_draw(d->app, &d->g, &d->key, d->keyed, d->updated, d->if_none_match, resp);
    api_deferred_free(d);
}

/* GET /graph/<park>/<indicator>.png|.svg: answered from the answer cache when
 * nothing it is drawn from changed (answer.h: the db's generation covers the
 * series' figures and targets, the configuration its names, `now` the pace);
 * else the request is assembled under a read view of its own and drawn
 * outside it (by a worker process, or from the image cache of graph.c, keyed
 * by the series' version: a figure of another series costs an assembly, not
 * a render), so that no lock is held while a graph is drawn. The drawing is
 * left to the caller (resp->deferred) when it can run it on another thread:
 * an HTTP thread that waited for a render could not serve its other
 * connections meanwhile. */
static void route_graph(const api_call *c)
{
    pp_app *app = c->app;
    const api_request *req = c->req;
    api_response *resp = c->resp;
    pp_view view;
    graph_request g;
    int64_t updated;
    answer_key key;
    view_begin(app, &view);
    bool keyed = graph_answer_key(&view, req, &key);
    if (keyed && answer_cache_get(req, resp, &key)) {
        view_end(&view);
        return;
    }
    bool ok = graph_assemble(&view, req, resp, c->seg[0], c->seg[1], &g, &updated);
    view_end(&view);
    if (!ok)
        return;
    if (graph_request_check(&g) != 0) {
        api_error(resp, 400, "bad graph request (from/to out of range?)");
        return;
    }
    if (req->can_defer) {
        api_deferred *d = calloc(1, sizeof *d);
        if (d != NULL && (req->if_none_match == NULL ||
                          (d->if_none_match = strdup(req->if_none_match)) != NULL)) {
            *d = (api_deferred){ .app = app, .g = g, .key = key, .keyed = keyed,
                                 .updated = updated, .if_none_match = d->if_none_match };
            resp->deferred = d;
            return;
        }
        free(d); /* out of memory: drawn here */
    }
    graph_draw(app, &g, &key, keyed, updated, req->if_none_match, resp);
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

/* ---- pages, assets and dashboards (pages.c reads them) ---- */

/* GET / and /index.html */
static void route_index(const api_call *c)
{
    pages_file f;
    reply_file(c->req, c->resp, pages_read_page(c->view->cfg->dashboard_dir, "index.html", &f), &f);
}

/* GET /park/<park> */
static void route_park_page(const api_call *c)
{
    pages_file f;
    if (want_park(c->view, c->seg[0], c->resp))
        reply_file(c->req, c->resp, pages_read_page(c->view->cfg->dashboard_dir, "park.html", &f), &f);
    else
        reply_page_404(c->resp, c->view->cfg->dashboard_dir);
}

/* GET /indicator/<indicator> */
static void route_indicator_page(const api_call *c)
{
    pages_file f;
    if (want_indicator(c->view, c->seg[0], c->resp))
        reply_file(c->req, c->resp, pages_read_page(c->view->cfg->dashboard_dir, "indicator.html", &f),
                   &f);
    else
        reply_page_404(c->resp, c->view->cfg->dashboard_dir);
}

/* GET /report/<YYYY-MM>: the 通报 as a printable page (report_doc.c), built
 * into the template dashboards/report.html */
static void route_report_page(const api_call *c)
{
    const char *dir = c->view->cfg->dashboard_dir;
    int period;
    if (pp_period_parse_canonical(c->seg[0], &period) != 0 || !pp_period_valid(period)) {
        reply_page_404(c->resp, dir);
        return;
    }
    pages_file f;
    int rc = pages_read_page(dir, "report.html", &f);
    if (rc != 0) {
        reply_file(c->req, c->resp, rc, &f);
        return;
    }
    report_doc d;
    if (report_doc_build(c->view, period, &d) != 0) {
        free(f.data);
        api_error(c->resp, 503, "out of memory");
        return;
    }
    jbuf b;
    jbuf_init(&b);
    report_doc_html(&d, f.data, &b);
    report_doc_free(&d);
    free(f.data);
    if (b.failed) {
        jbuf_free(&b);
        api_error(c->resp, 503, "the page could not be built");
        return;
    }
    set_body(c->resp, 200, "text/html; charset=utf-8", &b);
    answer_set_etag(c->resp);
    answer_not_modified(c->req, c->resp);
}

/* GET /dashboard/<name>: the page, when the dashboard <name> exists */
static void route_dashboard_page(const api_call *c)
{
    const char *dir = c->view->cfg->dashboard_dir;
    pages_file f;
    int rc = pages_read_dashboard(dir, c->seg[0], &f);
    if (rc == 0) {
        free(f.data);
        rc = pages_read_page(dir, "dashboard.html", &f);
    }
    reply_file(c->req, c->resp, rc, &f);
}

/* GET /assets/<name> */
static void route_asset(const api_call *c)
{
    pages_file f;
    reply_file(c->req, c->resp, pages_read_asset(c->view->cfg->dashboard_dir, c->seg[0], &f), &f);
}

/* GET /api/v1/dashboards */
static void route_dashboards(const api_call *c)
{
    const api_request *req = c->req;
    api_response *resp = c->resp;
    size_t len;
    char *body = pages_list_dashboards(c->view->cfg->dashboard_dir, &len);
    if (body == NULL) {
        api_error(resp, 503, "out of memory");
        return;
    }
    resp->status = 200;
    resp->content_type = JSON_TYPE;
    resp->body = body;
    resp->len = len;
    answer_set_etag(resp);
    answer_not_modified(req, resp);
}

/* GET /api/v1/dashboards/<name> */
static void route_dashboard(const api_call *c)
{
    pages_file f;
    reply_file(c->req, c->resp, pages_read_dashboard(c->view->cfg->dashboard_dir, c->seg[0], &f), &f);
}

/* GET, POST /api/v1/silences and DELETE /api/v1/silences/<id>: silence.c,
 * which takes its locks itself and checks the token for writes */
static void route_silences(const api_call *c)
{
    silence_route(c->app, c->req, c->resp);
}

/* GET /api/v1: the route index (routes.c) */
static void route_api_index(const api_call *c)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, routes_index_json());
    set_body(c->resp, 200, JSON_TYPE, &b);
}

/* GET /healthz: only reached once the daemon is ready (api_handle). Its
 * X-RRD-Pending header says how many series wait for their RRD write
 * (ingest.h): cheaper to poll than /metrics; the body stays "ok". */
static void route_healthz(const api_call *c)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "ok\n");
    set_body(c->resp, 200, "text/plain; charset=utf-8", &b);
    c->resp->has_rrd_pending = true;
    c->resp->rrd_pending = ingest_rrd_pending(c->app);
}

/* ---- the route table ----------------------------------------------------
 *
 * Every URL the daemon answers, matched segment by segment: a literal
 * segment, or '*' for exactly one segment (an id, a file name, a period),
 * checked by the handler. "GET" routes answer HEAD too. A route runs inside
 * one read view (app.h) unless it takes its locks itself (OWN_LOCKS: the
 * POST, which goes through ingest; the graphs, rendered outside the view;
 * /healthz, which needs nothing). A cacheable route's 200 answers are kept in
 * the answer cache (answer.c). A route without a handler is an event stream,
 * served by http.c (GET /api/v1/events: SSE needs the connection itself). */

enum { IN_VIEW = 0, OWN_LOCKS = 1 };

struct api_route {
    const char *method;
    const char *pattern;
    api_handler *handler;
    bool cacheable;
    int locks;                /* IN_VIEW or OWN_LOCKS */
    bool body;                /* a write: authorized before its body is read (http.c), then buffered */
};

static const api_route api_routes[] = {
    { "GET",  "/",                                 route_index,           false, IN_VIEW,   false },
    { "GET",  "/index.html",                       route_index,           false, IN_VIEW,   false },
    { "GET",  "/park/*",                           route_park_page,       false, IN_VIEW,   false },
    { "GET",  "/indicator/*",                      route_indicator_page,  false, IN_VIEW,   false },
    { "GET",  "/dashboard/*",                      route_dashboard_page,  false, IN_VIEW,   false },
    { "GET",  "/report/*",                         route_report_page,     false, IN_VIEW,   false },
    { "GET",  "/assets/*",                         route_asset,           false, IN_VIEW,   false },
    { "GET",  "/graph/*/*",                        route_graph,           false, OWN_LOCKS, false },
    { "GET",  "/healthz",                          route_healthz,         false, OWN_LOCKS, false },
    { "GET",  "/api/v1",                           route_api_index,       false, OWN_LOCKS, false },
    { "GET",  "/metrics",                          route_metrics,         false, IN_VIEW,   false },
    { "GET",  "/api/v1/dashboards",                route_dashboards,      false, IN_VIEW,   false },
    { "GET",  "/api/v1/dashboards/*",              route_dashboard,       false, IN_VIEW,   false },
    { "GET",  "/api/v1/status",                    route_status,          true,  IN_VIEW,   false },
    { "GET",  "/api/v1/parks/*",                   route_park,            true,  IN_VIEW,   false },
    { "GET",  "/api/v1/series/*/*",                route_series,          false, IN_VIEW,   false },
    { "GET",  "/api/v1/ranking/*",                 route_ranking,         false, IN_VIEW,   false },
    { "GET",  "/api/v1/history/*/*/*",             route_history,         false, IN_VIEW,   false },
    { "GET",  "/api/v1/report",                    route_report,          false, IN_VIEW,   false },
    { "GET",  "/api/v1/alerts",                    route_alerts,          false, IN_VIEW,   false },
    { "GET",  "/api/v1/events",                    NULL,                  false, OWN_LOCKS, false },
    { "POST", "/api/v1/observations",              route_post_observations, false, OWN_LOCKS, true },
    { "GET",  "/api/v1/silences",                  route_silences,        false, OWN_LOCKS, false },
    { "POST", "/api/v1/silences",                  route_silences,        false, OWN_LOCKS, true },
    { "DELETE", "/api/v1/silences/*",              route_silences,        false, OWN_LOCKS, false },
    { "DELETE", "/api/v1/observations/*/*/*",      route_retract,         false, OWN_LOCKS, true },
};

bool api_route_is_stream(const api_route *r) { return r != NULL && r->handler == NULL; }

bool api_route_takes_body(const api_route *r) { return r != NULL && r->body; }

/* true when path's segments fit pattern's; the '*' segments go to m. */
static bool pattern_matches(const char *pattern, const char *path, api_match *m)
{
    const char *p = pattern, *q = path;
    m->n_seg = 0;
    for (;;) {
        /* both at a '/', or both at their end */
        if (*p != *q)
            return false;
        if (*p == '\0')
            return true;
        p++;
        q++;
        const char *pe = strchr(p, '/'), *qe = strchr(q, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ql = qe ? (size_t)(qe - q) : strlen(q);
        if (pl == 1 && *p == '*') {
            if (ql == 0 || ql >= API_SEG_LEN || m->n_seg >= API_SEG_MAX)
                return false;
            memcpy(m->seg[m->n_seg], q, ql);
            m->seg[m->n_seg][ql] = '\0';
            m->n_seg++;
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return false;
        }
        p += pl;
        q += ql;
    }
}

static bool method_is(const char *method, const char *route_method)
{
    if (strcmp(route_method, "GET") == 0)
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    return strcmp(method, route_method) == 0;
}

int api_route_match(const char *method, const char *path, api_match *m)
{
    memset(m, 0, sizeof *m);
    for (const char *p = path; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '\\') {
            m->error = "bad characters in path";
            return 400;
        }
    }
    size_t len = strlen(path);
    if (path[0] != '/' || strstr(path, "/../") || strstr(path, "/./") || strstr(path, "//") ||
        (len >= 3 && strcmp(path + len - 3, "/..") == 0)) {
        m->error = "bad path";
        return 400;
    }
    const api_route *other = NULL;
    for (size_t i = 0; i < sizeof api_routes / sizeof api_routes[0]; i++) {
        const api_route *r = &api_routes[i];
        if (!pattern_matches(r->pattern, path, m))
            continue;
        if (method_is(method, r->method)) {
            m->route = r;
            return 0;
        }
        other = r;
    }
    m->n_seg = 0;
    if (other != NULL) {
        m->allow = strcmp(other->method, "GET") == 0 ? "GET, HEAD" : other->method;
        return 405;
    }
    if (!method_is(method, "GET")) { /* whatever the path: only reads are left */
        m->allow = "GET, HEAD";
        return 405;
    }
    return 404;
}

/* Runs a cacheable route: from the answer cache, or built and kept there (a
 * 200 is kept even when this client gets a 304). */
static void run_cached(const api_call *c)
{
    answer_key key;
    answer_key_of(c->view, c->req->path, &key);
    if (answer_cache_get(c->req, c->resp, &key))
        return;
    api_request plain = *c->req;
    plain.if_none_match = NULL;
    api_call pc = *c;
    pc.req = &plain;
    c->route->handler(&pc);
    answer_cache_put(c->resp, &key);
    answer_not_modified(c->req, c->resp);
}

void api_handle(pp_app *app, const api_request *req, api_response *resp)
{
    api_match m;
    memset(resp, 0, sizeof *resp);
    int rc = api_route_match(req->method, req->path, &m);
    if (rc == 400) {
        api_error(resp, 400, m.error);
        return;
    }
    /* Until the journal is replayed, the statuses evaluated and the collectors
     * watch, nothing is served: /healthz and every other route say so. */
    if (!app_ready(app)) {
        api_error(resp, 503, "starting");
        return;
    }
    if (rc == 405) {
        resp->allow = m.allow;
        api_error(resp, 405, "method not allowed");
        return;
    }
    if (rc != 0 || m.route->handler == NULL) {
        /* no route; or HEAD of the event stream, which http.c serves to GET */
        api_error(resp, 404, "not found");
        return;
    }
    api_call c = { .app = app, .req = req, .resp = resp, .route = m.route, .seg = m.seg };
    if (m.route->locks == OWN_LOCKS) {
        m.route->handler(&c);
        return;
    }
    pp_view v;
    view_begin(app, &v);
    c.view = &v;
    if (m.route->cacheable)
        run_cached(&c);
    else
        m.route->handler(&c);
    view_end(&v);
}
