/*
 * silence.c — silences (see silence.h).
 *
 * Journal events written here (one line each, in the journal's event record):
 *
 *   silence add {"id":"3","park":"xiangtan-etdz","indicator":"fdi_actual","until":"2024-10-31","reason":"…","by":"wang"}
 *   silence rm 3
 *
 * The JSON of "add" is the silence as the API shows it; it is read back with
 * the small parser below (flat objects of strings and nulls: a POST body of
 * /api/v1/silences has the same shape), so the daemon needs no JSON library.
 */
#include "silence.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "journal.h"
#include "log.h"

struct silence_set {
    pthread_mutex_t lock;
    pp_silence *v;          /* every silence not removed (expired ones too), by id */
    size_t n, cap;
    uint64_t last_id;
};

silence_set *silence_new(void)
{
    silence_set *s = calloc(1, sizeof *s);
    if (s)
        pthread_mutex_init(&s->lock, NULL);
    return s;
}

void silence_free(silence_set *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->v);
    free(s);
}

/* ---- dates -------------------------------------------------------------- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_of(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" → YYYYMMDD, or -1 when it is not a real date. */
static int parse_date(const char *s)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
        sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || y < 1970 || y > 9999 || m < 1 ||
        m > 12 || d < 1)
        return -1;
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int last = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    return d > last ? -1 : y * 10000 + m * 100 + d;
}

static int64_t days_ymd(int ymd) { return days_of(ymd / 10000, ymd / 100 % 100, ymd % 100); }

static int today(int64_t now)
{
    int y, m, d;
    app_local_date(now, &y, &m, &d);
    return y * 10000 + m * 100 + d;
}

/* ---- a flat JSON object of strings ------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex4(const char *p, const char *end, unsigned *v)
{
    if (end - p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    return 0;
}

/* Reads a JSON string at *pp ('"') into out (NUL-terminated, at most cap-1
 * bytes of UTF-8). Returns 0, -1 malformed, -2 too long. */
static int read_string(const char **pp, const char *end, char *out, size_t cap)
{
    const char *p = *pp;
    size_t n = 0;
    bool too_long = false;
    if (p >= end || *p != '"')
        return -1;
    for (p++; p < end && *p != '"'; p++) {
        unsigned char c = (unsigned char)*p;
        char enc[4];
        size_t k = 0;
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            enc[k++] = (char)c;
        } else {
            if (++p >= end)
                return -1;
            unsigned cp;
            switch (*p) {
            case '"': case '\\': case '/': enc[k++] = *p; break;
            case 'b': enc[k++] = '\b'; break;
            case 'f': enc[k++] = '\f'; break;
            case 'n': enc[k++] = '\n'; break;
            case 'r': enc[k++] = '\r'; break;
            case 't': enc[k++] = '\t'; break;
            case 'u':
                if (hex4(p + 1, end, &cp) != 0)
                    return -1;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, end, &lo) != 0 ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return -1;
                }
                if (cp < 0x80) {
                    enc[k++] = (char)cp;
                } else if (cp < 0x800) {
                    enc[k++] = (char)(0xC0 | cp >> 6);
                    enc[k++] = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    enc[k++] = (char)(0xE0 | cp >> 12);
                    enc[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[k++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    enc[k++] = (char)(0xF0 | cp >> 18);
                    enc[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    enc[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[k++] = (char)(0x80 | (cp & 0x3F));
                }
                break;
            default:
                return -1;
            }
        }
        if (n + k >= cap)
            too_long = true;
        else
            memcpy(out + n, enc, k), n += k;
    }
    if (p >= end)
        return -1;
    out[n] = '\0';
    *pp = p + 1;
    return too_long ? -2 : 0;
}

/* Printable UTF-8 (no control characters, no bad sequences). */
static bool text_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2
                          : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xC2))
            return false;
        p++;
        for (int i = 0; i < n; i++, p++)
            if ((*p & 0xC0) != 0x80)
                return false;
    }
    return true;
}

/* What silence_parse's steps answer: go on, refused (err says why), or not
 * a JSON object at all. */
enum { BODY_OK = 0, BODY_REFUSED = -1, BODY_MALFORMED = -2 };

/* The members read so far. */
typedef struct silence_fields {
    pp_silence *out;
    char until[16];
    bool have_park, have_until;
} silence_fields;

/* Reads one member at *pp: a key (*kr is read_string's answer: -2 when it
 * is too long for key) and a string or null value (*null). */
static int read_member(const char **pp, const char *end, char *key, size_t keylen, int *kr,
                       char *val, size_t vallen, bool *null, char *err, size_t errlen)
{
    const char *p = *pp;

    *kr = read_string(&p, end, key, keylen);
    if (*kr == -1)
        return BODY_MALFORMED;
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        return BODY_MALFORMED;
    p = skip_ws(p + 1, end);
    *null = false;
    if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
        *null = true;
        val[0] = '\0';
        p += 4;
    } else {
        int vr = read_string(&p, end, val, vallen);
        if (vr == -1)
            return BODY_MALFORMED;
        if (vr == -2 || !text_ok(val)) {
            snprintf(err, errlen, "“%s”过长或含控制字符 (%s: too long or not printable text)",
                     *kr == 0 ? key : "?", *kr == 0 ? key : "?");
            return BODY_REFUSED;
        }
    }
    *pp = p;
    return BODY_OK;
}

/* Takes the value of one known member into f; other keys are ignored, as
 * unknown members of a JSON object are. */
static int take_member(silence_fields *f, const char *key, const char *val, bool null,
                       char *err, size_t errlen)
{
    pp_silence *out = f->out;

    if (strcmp(key, "park") == 0 && !null) {
        f->have_park = snprintf(out->park, sizeof out->park, "%s", val) < (int)sizeof out->park;
        if (!f->have_park || !pp_id_valid(out->park)) {
            snprintf(err, errlen, "园区编号无效 (park: not a park id)");
            return BODY_REFUSED;
        }
    } else if (strcmp(key, "indicator") == 0) {
        if (!null && val[0] &&
            (snprintf(out->indicator, sizeof out->indicator, "%s", val) >=
                 (int)sizeof out->indicator || !pp_id_valid(out->indicator))) {
            snprintf(err, errlen, "指标编号无效 (indicator: not an indicator id)");
            return BODY_REFUSED;
        }
    } else if (strcmp(key, "until") == 0 && !null) {
        f->have_until = snprintf(f->until, sizeof f->until, "%s", val) < (int)sizeof f->until;
    } else if (strcmp(key, "reason") == 0 && !null) {
        if (strlen(val) > SILENCE_REASON_MAX) {
            snprintf(err, errlen, "原因过长 (reason: longer than %d bytes)", SILENCE_REASON_MAX);
            return BODY_REFUSED;
        }
        memcpy(out->reason, val, strlen(val) + 1); /* fits: checked above */
    } else if (strcmp(key, "by") == 0 && !null) {
        if (strlen(val) > SILENCE_BY_MAX) {
            snprintf(err, errlen, "“by”过长 (by: longer than %d bytes)", SILENCE_BY_MAX);
            return BODY_REFUSED;
        }
        memcpy(out->by, val, strlen(val) + 1); /* fits: checked above */
    } else if (strcmp(key, "id") == 0 && !null) {
        char *e;
        errno = 0;
        unsigned long long id = strtoull(val, &e, 10);
        if (errno || *e || e == val || val[0] == '-')
            return BODY_MALFORMED;
        out->id = id;
    }
    return BODY_OK;
}

/* Reads the members of a non-empty object, *pp just after the '{', up to
 * and past its '}'. */
static int read_members(const char **pp, const char *end, silence_fields *f, char *err,
                        size_t errlen)
{
    char key[32], val[SILENCE_REASON_MAX * 2 + 1];
    const char *p = *pp;

    for (;;) {
        int kr, rc;
        bool null;
        rc = read_member(&p, end, key, sizeof key, &kr, val, sizeof val, &null, err, errlen);
        if (rc == BODY_OK && kr == 0) /* a key too long is none we know */
            rc = take_member(f, key, val, null, err, errlen);
        if (rc != BODY_OK)
            return rc;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            *pp = p + 1;
            return BODY_OK;
        }
        return BODY_MALFORMED;
    }
}

/* The answer to a body that is not a JSON object of strings: -1. */
static int body_malformed(char *err, size_t errlen)
{
    snprintf(err, errlen, "请求体应为 JSON 对象 (the body is not a JSON object of strings)");
    return -1;
}

int silence_parse(const char *body, size_t len, pp_silence *out, char *err, size_t errlen)
{
    const char *p = body, *end = body + len;
    silence_fields f = { .out = out };
    int rc;

    memset(out, 0, sizeof *out);
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return body_malformed(err, errlen);
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        p++;
    else if ((rc = read_members(&p, end, &f, err, errlen)) != BODY_OK)
        return rc == BODY_REFUSED ? -1 : body_malformed(err, errlen);
    if (skip_ws(p, end) != end)
        return body_malformed(err, errlen);
    if (!f.have_park) {
        snprintf(err, errlen, "缺少园区 (park is missing)");
        return -1;
    }
    if (!f.have_until || (out->until = parse_date(f.until)) < 0) {
        snprintf(err, errlen, "截止日期应为 YYYY-MM-DD (until: expected a date YYYY-MM-DD)");
        return -1;
    }
    return 0;
}

/* ---- the set ------------------------------------------------------------- */

void silence_json(const pp_silence *sil, jbuf *b)
{
    char id[24], until[16];
    snprintf(id, sizeof id, "%llu", (unsigned long long)sil->id);
    snprintf(until, sizeof until, "%04d-%02d-%02d", sil->until / 10000, sil->until / 100 % 100,
             sil->until % 100);
    jbuf_puts(b, "{");
    json_key(b, "id", true);
    json_str(b, id);
    json_key(b, "park", false);
    json_str(b, sil->park);
    json_key(b, "indicator", false);
    json_str(b, sil->indicator[0] ? sil->indicator : NULL);
    json_key(b, "until", false);
    json_str(b, until);
    json_key(b, "reason", false);
    json_str(b, sil->reason);
    json_key(b, "by", false);
    json_str(b, sil->by);
    jbuf_puts(b, "}");
}

/* Under s->lock. */
static int put(silence_set *s, const pp_silence *sil)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        pp_silence *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *sil;
    if (sil->id > s->last_id)
        s->last_id = sil->id;
    return 0;
}

/* Under s->lock: index of id, or -1. */
static long find(const silence_set *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].id == id)
            return (long)i;
    return -1;
}

int silence_replay_event(silence_set *s, const char *payload)
{
    if (s == NULL || strncmp(payload, "silence ", 8) != 0)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&s->lock);
    if (strncmp(payload, "silence add ", 12) == 0) {
        pp_silence sil;
        char err[256] = "no id, or an id seen before";
        if (silence_parse(payload + 12, strlen(payload + 12), &sil, err, sizeof err) == 0 &&
            sil.id > 0 && find(s, sil.id) < 0)
            rc = put(s, &sil);
        else
            log_warn("silence", "journal: a silence event is not valid: skipped (%s)", err);
    } else if (strncmp(payload, "silence rm ", 11) == 0) {
        char *e;
        unsigned long long id = strtoull(payload + 11, &e, 10);
        long i = *e == '\0' ? find(s, id) : -1;
        if (i >= 0) {
            s->v[i] = s->v[--s->n];
            rc = 0;
        }
        if (id > s->last_id)
            s->last_id = id; /* an id is never handed out again */
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int silence_add(pp_app *app, silence_set *s, pp_silence *sil, char *err, size_t errlen)
{
    int64_t now = app_now(app);
    int t = today(now);
    if (sil->until < t) {
        snprintf(err, errlen, "截止日期已过 (until: the date is past)");
        return -EINVAL;
    }
    if (days_ymd(sil->until) - days_ymd(t) > SILENCE_MAX_DAYS) {
        snprintf(err, errlen, "静默最长 %d 天 (until: at most %d days ahead)", SILENCE_MAX_DAYS,
                 SILENCE_MAX_DAYS);
        return -EINVAL;
    }
    if (sil->reason[0] == '\0') {
        snprintf(err, errlen, "请写明原因 (reason is missing)");
        return -EINVAL;
    }
    if (sil->by[0] == '\0')
        snprintf(sil->by, sizeof sil->by, "api");
    pthread_mutex_lock(&app->ingest_lock);
    pthread_rwlock_rdlock(&app->cfg_lock);
    const pp_park *park = pp_catalog_park(&app->cfg->catalog, sil->park);
    const pp_indicator *ind =
        sil->indicator[0] ? pp_catalog_indicator(&app->cfg->catalog, sil->indicator) : NULL;
    bool known = park && strcmp(park->id, sil->park) == 0 &&
                 (!sil->indicator[0] || (ind && strcmp(ind->id, sil->indicator) == 0));
    pthread_rwlock_unlock(&app->cfg_lock);
    if (!known) {
        pthread_mutex_unlock(&app->ingest_lock);
        snprintf(err, errlen, park ? "未知指标 (unknown indicator)" : "未知园区 (unknown park)");
        return -ENOENT;
    }
    pthread_mutex_lock(&s->lock);
    sil->id = s->last_id + 1;
    pthread_mutex_unlock(&s->lock);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "silence add ");
    silence_json(sil, &b);
    int rc = b.failed ? -ENOMEM : 0;
    if (rc == 0) {
        const char *ev = b.data;
        rc = journal_append_events(app->journal, &ev, 1);
    }
    jbuf_free(&b);
    if (rc == 0) {
        pthread_mutex_lock(&s->lock);
        rc = put(s, sil);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&app->ingest_lock);
    if (rc != 0) {
        snprintf(err, errlen, "无法保存 (could not store: %s)", strerror(-rc));
        log_err_rc("silence", rc, "cannot journal a silence of %s", sil->park);
        return rc;
    }
    log_info("silence", "#%llu %s%s%s until %d by %s: %s", (unsigned long long)sil->id, sil->park,
             sil->indicator[0] ? "/" : "", sil->indicator, sil->until, sil->by, sil->reason);
    return 0;
}

int silence_remove(pp_app *app, silence_set *s, uint64_t id, pp_silence *out)
{
    int64_t now = app_now(app);
    int t = today(now);
    pthread_mutex_lock(&app->ingest_lock);
    pthread_mutex_lock(&s->lock);
    long i = find(s, id);
    bool active = i >= 0 && s->v[i].until >= t;
    if (active && out)
        *out = s->v[i];
    pthread_mutex_unlock(&s->lock);
    int rc = -ENOENT;
    if (active) {
        char ev[64];
        snprintf(ev, sizeof ev, "silence rm %llu", (unsigned long long)id);
        const char *p = ev;
        rc = journal_append_events(app->journal, &p, 1);
        if (rc == 0) {
            pthread_mutex_lock(&s->lock);
            i = find(s, id);
            if (i >= 0)
                s->v[i] = s->v[--s->n];
            pthread_mutex_unlock(&s->lock);
            log_info("silence", "#%llu removed", (unsigned long long)id);
        } else {
            log_err_rc("silence", rc, "cannot journal the removal of silence #%llu",
                       (unsigned long long)id);
        }
    }
    pthread_mutex_unlock(&app->ingest_lock);
    return rc;
}

bool silence_find(silence_set *s, const char *park, const char *indicator, int64_t now,
                  pp_silence *out)
{
    if (s == NULL)
        return false;
    int t = today(now);
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n && !found; i++) {
        const pp_silence *x = &s->v[i];
        if (x->until >= t && strcmp(x->park, park) == 0 &&
            (!x->indicator[0] || strcmp(x->indicator, indicator) == 0)) {
            found = true;
            if (out)
                *out = *x;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

bool silence_match(silence_set *s, const char *park, const char *indicator, int64_t now)
{
    return silence_find(s, park, indicator, now, NULL);
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const pp_silence *)a)->id, y = ((const pp_silence *)b)->id;
    return x < y ? -1 : x > y;
}

void silence_list_json(silence_set *s, int64_t now, jbuf *b)
{
    int t = today(now);
    pthread_mutex_lock(&s->lock);
    pp_silence *copy = s->n ? malloc(s->n * sizeof *copy) : NULL;
    size_t n = 0;
    for (size_t i = 0; copy && i < s->n; i++)
        if (s->v[i].until >= t)
            copy[n++] = s->v[i];
    pthread_mutex_unlock(&s->lock);
    if (n)
        qsort(copy, n, sizeof *copy, by_id);
    jbuf_puts(b, "{\"silences\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_puts(b, ",");
        silence_json(&copy[i], b);
    }
    jbuf_puts(b, "]}\n");
    free(copy);
}

/* ---- the HTTP routes ------------------------------------------------------ */

static void reply(api_response *resp, int status, jbuf *b)
{
    size_t len;
    char *body = jbuf_take(b, &len);
    if (body == NULL) {
        api_error(resp, 503, "out of memory");
        return;
    }
    resp->status = status;
    resp->content_type = "application/json; charset=utf-8";
    resp->body = body;
    resp->len = len;
}

void silence_route(pp_app *app, const api_request *req, api_response *resp)
{
    const char *path = req->path;
    const char *id_s = strncmp(path, "/api/v1/silences/", 17) == 0 ? path + 17 : NULL;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0, del = strcmp(req->method, "DELETE") == 0;
    jbuf b;
    jbuf_init(&b);
    if (app->silences == NULL) {
        api_error(resp, 503, "silences are not available");
        return;
    }
    if (id_s == NULL && del && req->query)
        id_s = req->query(req->query_ctx, "id");
    if ((id_s && !del) || (!id_s && !get && !post) || (del && !id_s)) {
        if (del) {
            api_error(resp, 400, "DELETE needs /api/v1/silences/<id>");
            return;
        }
        resp->allow = id_s ? "DELETE" : "GET, HEAD, POST";
        api_error(resp, 405, "method not allowed");
        return;
    }
    if (get) {
        silence_list_json(app->silences, app_now(app), &b);
        reply(resp, 200, &b);
        return;
    }
    if (api_authorize(app, req->authorization, resp) != 0)
        return;
    char err[512];
    if (post) {
        pp_silence sil;
        if (silence_parse(req->body ? req->body : "", req->body_len, &sil, err, sizeof err) != 0) {
            api_error(resp, 400, err);
            return;
        }
        int rc = silence_add(app, app->silences, &sil, err, sizeof err);
        if (rc != 0) {
            api_error(resp, rc == -EINVAL ? 400 : rc == -ENOENT ? 404 : 503, err);
            return;
        }
        silence_json(&sil, &b);
        jbuf_puts(&b, "\n");
        reply(resp, 201, &b);
        return;
    }
    uint64_t id;
    pp_silence gone;
    if (!api_parse_uint(id_s, UINT64_MAX, &id)) {
        api_error(resp, 400, "bad id: expected the number of a silence");
        return;
    }
    int rc = silence_remove(app, app->silences, id, &gone);
    if (rc != 0) {
        api_error(resp, rc == -ENOENT ? 404 : 503,
                  rc == -ENOENT ? "no such silence (or it has expired)" : "could not store");
        return;
    }
    silence_json(&gone, &b);
    jbuf_puts(&b, "\n");
    reply(resp, 200, &b);
}
