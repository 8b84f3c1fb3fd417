/*
 * text.c — UTF-8 validation, GB18030 conversion, full-width folding, trimming
 * and boundary-safe truncation (see text.h). Used by the CSV reader; pure
 * apart from glibc's iconv.
 */
#include "text.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool text_utf8_valid(const char *s, size_t len, size_t *bad_off)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (len - i <= n)
            goto bad;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += n + 1;
    }
    return true;
bad:
    if (bad_off)
        *bad_off = i;
    return false;
}

int text_convert(const char *to, const char *from, const char *in, size_t len, char **out,
                 size_t *outlen)
{
    iconv_t cd = (iconv_t)-1;
    char *buf = NULL;
    size_t cap, used = 0;
    int rc;

    *out = NULL;
    *outlen = 0;
    cd = iconv_open(to, from);
    if (cd == (iconv_t)-1) {
        rc = errno ? -errno : -EINVAL;
        goto fail;
    }
    /* GB18030 needs at most 4 bytes per character, as does UTF-8; a 2-byte
     * GB character becomes 3 UTF-8 bytes. Grow on E2BIG anyway. */
    if (len > (SIZE_MAX - 16) / 2) {
        rc = -ENOMEM;
        goto fail;
    }
    cap = len * 3 / 2 + 16;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    char *inp = (char *)in;
    size_t inleft = len;
    while (inleft > 0) {
        char *outp = buf + used;
        size_t outleft = cap - used - 1; /* room for the NUL */
        size_t r = iconv(cd, &inp, &inleft, &outp, &outleft);
        used = (size_t)(outp - buf);
        if (r != (size_t)-1)
            break;
        if (errno != E2BIG) {
            rc = errno == EINVAL ? -EINVAL : -EILSEQ;
            goto fail;
        }
        if (cap > SIZE_MAX / 2) {
            rc = -ENOMEM;
            goto fail;
        }
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        buf = nb;
        cap *= 2;
    }
    buf[used] = '\0';
    iconv_close(cd);
    *out = buf;
    *outlen = used;
    return 0;
fail:
    free(buf);
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    return rc;
}

size_t text_fold_ascii(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;

    while (*r) {
        if (r[0] == 0xEF && (r[1] == 0xBC || r[1] == 0xBD) && r[2] >= 0x80 && r[2] <= 0xBF) {
            uint32_t cp = 0xF000u | ((uint32_t)(r[1] & 0x3F) << 6) | (r[2] & 0x3F);
            if (cp >= 0xFF01 && cp <= 0xFF5E) {
                *w++ = (unsigned char)(cp - 0xFEE0);
                r += 3;
                continue;
            }
        } else if (r[0] == 0xE3 && r[1] == 0x80 && r[2] == 0x80) {
            *w++ = ' ';
            r += 3;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
    return (size_t)(w - (unsigned char *)s);
}

/* Length of the white space at p (0 if none): ASCII blanks, U+3000, U+00A0. */
static size_t space_len(const unsigned char *p)
{
    if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f')
        return 1;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
        return 3;
    if (p[0] == 0xC2 && p[1] == 0xA0)
        return 2;
    return 0;
}

char *text_trim(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n, len;

    while ((n = space_len(p)) > 0)
        p += n;
    len = strlen((char *)p);
    memmove(s, p, len + 1);
    /* Trailing: scan forward, remembering where the last non-space ended. */
    unsigned char *q = (unsigned char *)s, *end = q;
    while (*q) {
        n = space_len(q);
        if (n > 0) {
            q += n;
        } else {
            q++;
            end = q;
        }
    }
    *end = '\0';
    return s;
}

size_t text_copy_utf8(char *dst, size_t dstsize, const char *src)
{
    size_t n = strlen(src);

    if (n >= dstsize) {
        n = dstsize - 1;
        /* Step back over continuation bytes to the start of the character
         * that would be cut, unless it ends exactly at n. */
        const unsigned char *u = (const unsigned char *)src;
        size_t k = n;
        while (k > 0 && (u[k] & 0xC0) == 0x80)
            k--;
        n = k;
    }
    memmove(dst, src, n);
    dst[n] = '\0';
    return n;
}

int text_gb18030_to_utf8(const char *in, size_t len, char **out, size_t *outlen)
{
    return text_convert("UTF-8", "GB18030", in, len, out, outlen);
}

char *text_squeeze(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = (unsigned char *)s;
    while (*r) {
        size_t n = space_len(r);
        if (n > 0) {
            r += n;
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
    return s;
}

size_t text_code_points(const char *s, uint32_t *out, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        uint32_t cp = *p;
        size_t len = 1;
        if (cp >= 0xC0 && cp < 0xE0 && (p[1] & 0xC0) == 0x80) {
            cp = (cp & 0x1F) << 6 | (p[1] & 0x3F);
            len = 2;
        } else if (cp >= 0xE0 && cp < 0xF0 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
            cp = (cp & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
            len = 3;
        } else if (cp >= 0xF0 && cp < 0xF8 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
                   (p[3] & 0xC0) == 0x80) {
            cp = (cp & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 | (uint32_t)(p[2] & 0x3F) << 6 |
                 (p[3] & 0x3F);
            len = 4;
        }
        if (n < max)
            out[n] = cp;
        n++;
        p += len;
    }
    return n;
}
