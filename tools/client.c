/*
 * client.c — the shared plumbing of `parkpulse` (see client.h): which
 * configuration and URL to use, the bearer token, one HTTP request with
 * libcurl (timeouts on everything, no redirects, loopback never proxied),
 * errors of the daemon turned into messages and sysexits codes, and the
 * display width of Chinese text for tables.
 *
 * Only this file includes curl.h. Every answer is read into memory with a
 * cap (CL_MAX_ANSWER), so a misbehaving server cannot make the client grow
 * without bound.
 */
#include "client.h"
#include "vec.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#define CL_TOKEN_MAX 4096

void cl_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    if (cmd)
        fprintf(stderr, "parkpulse %s: ", cmd);
    else
        fputs("parkpulse: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cl_ctx_free(cl_ctx *ctx)
{
    conf_free(ctx->cfg);
    ctx->cfg = NULL;
    free(ctx->url);
    ctx->url = NULL;
}

const char *cl_config_file(const cl_ctx *ctx)
{
    if (ctx->config_opt)
        return ctx->config_opt;
    const char *env = getenv("PARKPULSE_CONF"); /* e.g. the demo's, printed by make run */
    return env && *env ? env : CL_DEFAULT_CONFIG;
}

int cl_config(cl_ctx *ctx, const char *cmd, const pp_config **cfg)
{
    *cfg = NULL;
    if (ctx->cfg_tried) {
        *cfg = ctx->cfg;
        return ctx->cfg || ctx->cfg_missing ? 0 : EX_CONFIG;
    }
    ctx->cfg_tried = true;
    const char *file = cl_config_file(ctx);
    const char *env = getenv("PARKPULSE_CONF");
    /* only the built-in default may be absent; a file named by -c or
     * PARKPULSE_CONF must be there */
    if (ctx->config_opt == NULL && !(env && *env) && access(file, R_OK) != 0) {
        ctx->cfg_missing = true;
        return 0;
    }
    size_t errlen = 16384;
    char *err = malloc(errlen);
    if (err == NULL) {
        cl_err(cmd, "out of memory");
        return EX_OSERR;
    }
    err[0] = '\0';
    ctx->cfg = conf_load(file, err, errlen);
    if (ctx->cfg == NULL) {
        fflush(stdout);
        fprintf(stderr, "%s", err);
        if (err[0] == '\0' || err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
        cl_err(cmd, "the configuration %s has errors (use --url to reach a daemon without it)",
               file);
        free(err);
        return EX_CONFIG;
    }
    free(err);
    *cfg = ctx->cfg;
    return 0;
}

/* "host:port" or "[v6]:port" from http.listen → a URL on which a client
 * reaches it: a wildcard host means "this machine". */
static char *url_from_listen(const char *listen)
{
    char host[300];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - listen) >= sizeof host)
            return NULL;
        snprintf(host, sizeof host, "%.*s", (int)(close - listen + 1), listen);
        port = close + 2;
        if (strcmp(host, "[::]") == 0 || strcmp(host, "[::0]") == 0)
            strcpy(host, "[::1]");
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL || colon == listen || (size_t)(colon - listen) >= sizeof host)
            return NULL;
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
        port = colon + 1;
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
            strcpy(host, "127.0.0.1");
    }
    if (*port == '\0' || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
        return NULL;
    char *url = NULL;
    if (asprintf(&url, "http://%s:%s", host, port) < 0)
        return NULL;
    return url;
}

int cl_base_url(cl_ctx *ctx, const char *cmd, const char **url)
{
    if (ctx->url == NULL) {
        if (ctx->url_opt) {
            size_t n = strlen(ctx->url_opt);
            while (n > 0 && ctx->url_opt[n - 1] == '/')
                n--;
            if (strncmp(ctx->url_opt, "http://", 7) != 0 && strncmp(ctx->url_opt, "https://", 8) != 0) {
                cl_err(cmd, "--url '%s': expected http://host:port", ctx->url_opt);
                return EX_USAGE;
            }
            ctx->url = strndup(ctx->url_opt, n);
        } else {
            const pp_config *cfg;
            int rc = cl_config(ctx, cmd, &cfg);
            if (rc != 0)
                return rc;
            if (cfg && cfg->http_listen) {
                ctx->url = url_from_listen(cfg->http_listen);
                if (ctx->url == NULL) {
                    cl_err(cmd, "%s: http.listen '%s' is not host:port", cl_config_file(ctx),
                           cfg->http_listen);
                    return EX_CONFIG;
                }
            } else {
                ctx->url = strdup(CL_DEFAULT_URL);
            }
        }
        if (ctx->url == NULL) {
            cl_err(cmd, "out of memory");
            return EX_OSERR;
        }
    }
    *url = ctx->url;
    return 0;
}

int cl_read_token(cl_ctx *ctx, const char *cmd, char *tok, size_t toklen)
{
    const char *file = ctx->token_opt;
    if (file == NULL) {
        const pp_config *cfg;
        int rc = cl_config(ctx, cmd, &cfg);
        if (rc != 0)
            return rc;
        if (cfg == NULL) {
            cl_err(cmd, "no token: give --token-file FILE (no configuration at %s)",
                   cl_config_file(ctx));
            return EX_CONFIG;
        }
        file = cfg->http_token_file;
        if (file == NULL || *file == '\0') {
            cl_err(cmd, "no token: %s sets no http.token_file, so the daemon refuses writes",
                   cl_config_file(ctx));
            return EX_CONFIG;
        }
    }
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        cl_err(cmd, "cannot read the token file %s: %s", file, strerror(e));
        return e == EACCES || e == EPERM ? EX_NOPERM : EX_NOINPUT;
    }
    ssize_t n;
    do
        n = read(fd, tok, toklen - 1);
    while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) {
        cl_err(cmd, "cannot read the token file %s: %s", file, strerror(e));
        return EX_IOERR;
    }
    tok[n] = '\0';
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
                     tok[n - 1] == '\t'))
        tok[--n] = '\0';
    if (n == 0 || (size_t)n >= toklen - 1) {
        cl_err(cmd, "the token file %s is %s", file, n == 0 ? "empty" : "too long");
        return EX_DATAERR;
    }
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tok[i];
        if (c <= 0x20 || c >= 0x7f) { /* would break (or inject into) the header */
            cl_err(cmd, "the token file %s holds a space or control character", file);
            return EX_DATAERR;
        }
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------ */

typedef struct sink {
    char *buf;
    size_t len, cap;
    bool too_big;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n + 1 > (size_t)CL_MAX_ANSWER) {
        s->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (PP_VEC_RESERVE(s->buf, s->cap, s->len + n + 1, 16384) != 0)
        return 0;
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* no_proxy from the environment plus loopback: the daemon on this machine
 * is never reached through a proxy. */
static char *no_proxy_list(void)
{
    const char *env = getenv("no_proxy");
    if (env == NULL || *env == '\0')
        env = getenv("NO_PROXY");
    char *out = NULL;
    if (asprintf(&out, "%s%slocalhost,127.0.0.1,::1", env && *env ? env : "",
                 env && *env ? "," : "") < 0)
        return NULL;
    return out;
}

static int curl_ready(const char *cmd)
{
    static bool done;
    if (done)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cl_err(cmd, "cannot initialise libcurl");
        return EX_SOFTWARE;
    }
    atexit(curl_global_cleanup);
    done = true;
    return 0;
}

/* One request of cl_http under way: what it made, freed by request_free. */
typedef struct request {
    CURL *h;
    struct curl_slist *headers;
    char *full, *noproxy, *auth, *ctype; /* the URL, no_proxy, two headers */
    char errbuf[CURL_ERROR_SIZE];
    sink s; /* the answer's body */
} request;

/* The request's headers: the bearer token and the content type when given,
 * and no 100-continue round trip. Returns 0, or -1 out of memory. */
static int request_headers(request *rq, const char *token, const char *content_type)
{
    if (token) {
        if (asprintf(&rq->auth, "Authorization: Bearer %s", token) < 0) {
            rq->auth = NULL;
            return -1;
        }
        rq->headers = curl_slist_append(rq->headers, rq->auth);
    }
    if (content_type) {
        if (asprintf(&rq->ctype, "Content-Type: %s", content_type) < 0) {
            rq->ctype = NULL;
            return -1;
        }
        rq->headers = curl_slist_append(rq->headers, rq->ctype);
    }
    rq->headers = curl_slist_append(rq->headers, "Expect:"); /* no 100-continue round trip */
    return rq->headers == NULL ? -1 : 0;
}

/* Sets libcurl's options for method with body (body_len bytes, or NULL).
 * Returns false when libcurl refused one. */
static bool request_options(request *rq, const char *method, const char *body, size_t body_len)
{
    CURL *h = rq->h;
    rq->errbuf[0] = '\0';
    bool ok = curl_easy_setopt(h, CURLOPT_URL, rq->full) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CL_CONNECT_TIMEOUT) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_TIMEOUT, CL_TOTAL_TIMEOUT) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_NOPROXY, rq->noproxy) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_USERAGENT, "parkpulse/" PARKPULSE_VERSION) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_HTTPHEADER, rq->headers) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rq->errbuf) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_WRITEDATA, &rq->s) == CURLE_OK &&
              curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CL_MAX_ANSWER) == CURLE_OK;
    if (ok && body) {
        ok = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len) == CURLE_OK &&
             curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) == CURLE_OK;
    }
    if (ok && strcmp(method, body ? "POST" : "GET") != 0)
        ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    return ok;
}

/* Says why the request (method, to the daemon at base) failed with cc.
 * Returns the exit status: EX_UNAVAILABLE, or EX_PROTOCOL for an answer
 * too large, EX_OSERR out of memory. */
static int request_failure(request *rq, CURLcode cc, const char *cmd, const char *base,
                           const char *method)
{
    const char *why = rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_CONNECT: {
        long os_errno = 0;
        if (curl_easy_getinfo(rq->h, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
            (os_errno == ECONNREFUSED || os_errno == 0))
            cl_err(cmd, "parkpulsed is not running at %s: connection refused", base);
        else
            cl_err(cmd, "cannot reach parkpulsed at %s: %s", base, why);
        break;
    }
    case CURLE_OPERATION_TIMEDOUT:
        cl_err(cmd, "parkpulsed at %s did not answer in time: %s", base, why);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        cl_err(cmd, "cannot resolve the host of %s: %s", base, why);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (rq->s.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            cl_err(cmd, "%s %s: the answer is larger than %ld bytes", method, rq->full,
                   CL_MAX_ANSWER);
            return EX_PROTOCOL;
        }
        cl_err(cmd, "out of memory reading the answer");
        return EX_OSERR;
    default:
        cl_err(cmd, "%s %s: %s", method, rq->full, why);
        break;
    }
    return EX_UNAVAILABLE;
}

/* Moves the answer of the request into ans: status, content type, body.
 * Returns 0, or the exit status (EX_SOFTWARE, EX_OSERR). */
static int take_answer(request *rq, const char *cmd, cl_answer *ans)
{
    char *ct = NULL;
    if (curl_easy_getinfo(rq->h, CURLINFO_RESPONSE_CODE, &ans->status) != CURLE_OK ||
        curl_easy_getinfo(rq->h, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK) {
        cl_err(cmd, "libcurl gave no response code");
        return EX_SOFTWARE;
    }
    if (ct)
        snprintf(ans->content_type, sizeof ans->content_type, "%s", ct);
    if (rq->s.buf == NULL && (rq->s.buf = strdup("")) == NULL)
        return EX_OSERR;
    ans->body = rq->s.buf;
    ans->len = rq->s.len;
    rq->s.buf = NULL;
    return 0;
}

static void request_free(request *rq)
{
    free(rq->s.buf);
    curl_slist_free_all(rq->headers);
    if (rq->h)
        curl_easy_cleanup(rq->h);
    free(rq->full);
    free(rq->noproxy);
    if (rq->auth) {
        explicit_bzero(rq->auth, strlen(rq->auth));
        free(rq->auth);
    }
    free(rq->ctype);
}

int cl_http(cl_ctx *ctx, const char *cmd, const char *method, const char *path,
            const char *content_type, const char *body, size_t body_len, const char *token,
            cl_answer *ans)
{
    request rq = { 0 };
    const char *base;
    int rc = curl_ready(cmd);

    memset(ans, 0, sizeof *ans);
    if (rc != 0)
        return rc;
    if ((rc = cl_base_url(ctx, cmd, &base)) != 0)
        return rc;
    rc = EX_OSERR;
    if (asprintf(&rq.full, "%s%s", base, path) < 0) {
        rq.full = NULL;
        goto out;
    }
    if ((rq.noproxy = no_proxy_list()) == NULL || (rq.h = curl_easy_init()) == NULL ||
        request_headers(&rq, token, content_type) != 0)
        goto out;
    if (!request_options(&rq, method, body, body_len)) {
        cl_err(cmd, "libcurl refused an option");
        rc = EX_SOFTWARE;
        goto out;
    }
    CURLcode cc = curl_easy_perform(rq.h);
    rc = cc != CURLE_OK ? request_failure(&rq, cc, cmd, base, method) : take_answer(&rq, cmd, ans);
out:
    if (rc == EX_OSERR)
        cl_err(cmd, "out of memory");
    request_free(&rq);
    return rc;
}

void cl_answer_free(cl_answer *ans)
{
    free(ans->body);
    ans->body = NULL;
    ans->len = 0;
}

json_t *cl_json(const char *cmd, const cl_answer *ans)
{
    json_error_t jerr;
    json_t *j = json_loadb(ans->body ? ans->body : "", ans->len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL)
        cl_err(cmd, "the daemon's answer is not JSON (line %d: %s)", jerr.line, jerr.text);
    return j;
}

/* Prints s on stderr with control characters (but newlines) replaced. */
static void put_clean(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7f ? '?' : c, stderr);
    }
}

int cl_http_failure(const char *cmd, const char *what, const cl_answer *ans)
{
    json_t *j = NULL;
    const char *msg = NULL;
    if (strncmp(ans->content_type, "application/json", 16) == 0)
        j = json_loadb(ans->body ? ans->body : "", ans->len, 0, NULL);
    if (j && json_is_object(j))
        msg = json_string_value(json_object_get(j, "error"));
    fflush(stdout);
    fprintf(stderr, "parkpulse %s: %s: HTTP %ld", cmd, what, ans->status);
    if (msg) {
        fputs(": ", stderr);
        put_clean(msg);
    }
    fputc('\n', stderr);
    json_t *errors = j ? json_object_get(j, "errors") : NULL;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        const char *line = json_string_value(e);
        if (line) {
            put_clean(line);
            fputc('\n', stderr);
        }
    }
    json_decref(j);
    switch (ans->status) {
    case 400:
    case 404:
    case 413:
    case 422:
        return EX_DATAERR;
    case 401:
    case 403:
        return EX_NOPERM;
    case 503:
        return EX_TEMPFAIL;
    default:
        return ans->status >= 500 && ans->status < 600 ? EX_UNAVAILABLE : EX_PROTOCOL;
    }
}

/* ---- display width ---------------------------------------------------- */

/* East Asian Wide and Fullwidth blocks, for locales where wcwidth() cannot tell. */
static bool wide_fallback(uint32_t cp)
{
    return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
           (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
           (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
           (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
           (cp >= 0x20000 && cp <= 0x3FFFD);
}

/* Decodes one UTF-8 sequence at s; returns its length (0 at the end) and
 * sets *cp, or returns 1 with *cp = UINT32_MAX for a byte that is not UTF-8. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || (n == 3 && s[0] > 0xEF)) {
        *cp = UINT32_MAX;
        return 1;
    }
    uint32_t v = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = UINT32_MAX;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = UINT32_MAX;
        return 1;
    }
    *cp = v;
    return n;
}

static size_t cp_width(uint32_t cp)
{
    if (cp == UINT32_MAX)
        return 1;
    if (cp < 0x20 || cp == 0x7F)
        return 1; /* shown as '?' */
    if (cp < 0x7F)
        return 1;
    int w = wcwidth((wchar_t)cp);
    if (w >= 0)
        return (size_t)w;
    return wide_fallback(cp) ? 2 : 1;
}

size_t cl_display_width(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0, n;
    uint32_t cp;
    while ((n = utf8_next(p, &cp)) > 0) {
        w += cp_width(cp);
        p += n;
    }
    return w;
}

void cl_put_padded(FILE *f, const char *s, size_t width, bool right)
{
    size_t w = cl_display_width(s);
    size_t pad = w < width ? width - w : 0;
    if (right)
        for (size_t i = 0; i < pad; i++)
            fputc(' ', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc(*p < 0x20 || *p == 0x7F ? '?' : *p, f);
    if (!right)
        for (size_t i = 0; i < pad; i++)
            fputc(' ', f);
}
