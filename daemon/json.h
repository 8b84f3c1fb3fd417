/*
 * json.h — a small growable buffer that writes JSON (and other text) for the
 * HTTP answers, the bus and the journal's event payloads. Strings are escaped
 * per RFC 8259; non-finite numbers are written as null.
 */
#ifndef PP_JSON_H
#define PP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jbuf {
    char *data;   /* NUL-terminated; owned by the jbuf */
    size_t len, cap;
    bool failed;  /* an allocation failed: the content is incomplete */
} jbuf;

void jbuf_init(jbuf *b);
void jbuf_free(jbuf *b);
/* Hands the buffer's data to the caller (free() it); the jbuf is reset. */
char *jbuf_take(jbuf *b, size_t *len);

void jbuf_raw(jbuf *b, const char *s, size_t n);
void jbuf_puts(jbuf *b, const char *s);
void jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void json_str(jbuf *b, const char *s);           /* "…" escaped, or null for NULL */
void json_num(jbuf *b, double v);                /* shortest round-trip form, null if not finite */
void json_num_computed(jbuf *b, double v);       /* a computed amount: 15 significant digits */
void json_num2(jbuf *b, double v);               /* rounded to 2 decimals */
void json_int(jbuf *b, int64_t v);
void json_bool(jbuf *b, bool v);
void json_null(jbuf *b);
/* One CSV field (RFC 4180): as is, or quoted with "" doubled when it holds a
 * comma, a quote or a line break. NULL writes nothing (an empty field). */
void csv_put_field(jbuf *b, const char *s);

/* "key": — with a leading comma unless first */
void json_key(jbuf *b, const char *key, bool first);

#endif
