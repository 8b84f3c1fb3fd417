/*
 * json.c — a growable text buffer with JSON writers (see json.h). An
 * allocation failure sets b->failed and turns every later write into a no-op,
 * so callers check once at the end instead of after each call.
 */
#include "json.h"
#include "vec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(jbuf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void jbuf_free(jbuf *b)
{
    free(b->data);
    jbuf_init(b);
}

char *jbuf_take(jbuf *b, size_t *len)
{
    char *d = b->data;
    if (len)
        *len = b->len;
    if (d == NULL && !b->failed)
        d = calloc(1, 1);
    if (b->failed) {
        free(d);
        d = NULL;
    }
    jbuf_init(b);
    return d;
}

static bool jbuf_reserve(jbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - 1 - b->len || PP_VEC_RESERVE(b->data, b->cap, b->len + extra + 1, 256) != 0) {
        b->failed = true;
        return false;
    }
    return true;
}

void jbuf_raw(jbuf *b, const char *s, size_t n)
{
    if (!jbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void jbuf_puts(jbuf *b, const char *s) { jbuf_raw(b, s, strlen(s)); }

void jbuf_printf(jbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        jbuf_raw(b, small, (size_t)n);
        return;
    }
    if (!jbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void json_str(jbuf *b, const char *s)
{
    if (s == NULL) {
        json_null(b);
        return;
    }
    jbuf_raw(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        const char *esc = NULL;
        char ubuf[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                esc = ubuf;
            }
        }
        if (esc) {
            jbuf_raw(b, run, (size_t)(p - run));
            jbuf_puts(b, esc);
            run = p + 1;
        }
    }
    jbuf_puts(b, run);
    jbuf_raw(b, "\"", 1);
}

void json_num(jbuf *b, double v)
{
    if (!isfinite(v)) {
        json_null(b);
        return;
    }
    char buf[40];
    /* the shortest of %.15g .. %.17g that reads back exactly */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    jbuf_puts(b, buf);
}

void json_num_computed(jbuf *b, double v)
{
    if (!isfinite(v)) {
        json_null(b);
        return;
    }
    /* 15 significant digits: every digit a person typed survives, the last
     * bits of a subtraction or division (26.950000000000003) do not */
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strcmp(buf, "-0") == 0)
        strcpy(buf, "0");
    jbuf_puts(b, buf);
}

void json_num2(jbuf *b, double v)
{
    if (!isfinite(v)) {
        json_null(b);
        return;
    }
    double r = round(v * 100.0) / 100.0;
    if (r == 0)
        r = 0; /* no "-0" */
    char buf[40];
    snprintf(buf, sizeof buf, "%.2f", r);
    /* trim trailing zeros: 66.70 -> 66.7, 320.00 -> 320 */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    jbuf_puts(b, buf);
}

void json_int(jbuf *b, int64_t v) { jbuf_printf(b, "%lld", (long long)v); }
void json_bool(jbuf *b, bool v) { jbuf_puts(b, v ? "true" : "false"); }
void json_null(jbuf *b) { jbuf_puts(b, "null"); }

void json_key(jbuf *b, const char *key, bool first)
{
    if (!first)
        jbuf_raw(b, ",", 1);
    json_str(b, key);
    jbuf_raw(b, ":", 1);
}

void csv_put_field(jbuf *b, const char *s)
{
    if (s == NULL)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        jbuf_puts(b, s);
        return;
    }
    jbuf_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            jbuf_puts(b, "\"");
        jbuf_raw(b, p, 1);
    }
    jbuf_puts(b, "\"");
}
