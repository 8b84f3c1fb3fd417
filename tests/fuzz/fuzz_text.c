/*
 * fuzz_text.c — libFuzzer harness for the encodings (daemon/text.c): UTF-8
 * validation, GB18030 → UTF-8 through iconv, full-width folding, trimming
 * and truncation at a character boundary. Any bytes in.
 *
 * Invariants checked, beyond "no crash, no leak, no undefined behaviour":
 *   - text_utf8_valid agrees with an independent validator (fuzz.h, RFC 3629
 *     table), including the offset of the first bad sequence;
 *   - text_gb18030_to_utf8 gives NUL-terminated valid UTF-8 of the stated
 *     length, or an error with *out NULL; converted back to GB18030 it gives
 *     the input's bytes again;
 *   - text_fold_ascii on valid UTF-8 gives valid UTF-8, never longer, with no
 *     U+FF01..U+FF5E or U+3000 left, the same as folding code point by code
 *     point, and folding twice changes nothing;
 *   - text_trim leaves a substring of its input with no blank (ASCII white
 *     space, U+3000, U+00A0) at either end;
 *   - text_copy_utf8 copies the longest prefix that fits and does not end
 *     inside a character, for every destination size.
 */
#include "fuzz.h"

#include <errno.h>

#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static void fuzz_valid(const uint8_t *data, size_t size)
{
    size_t off_text = (size_t)-1, off_ref = (size_t)-1;
    bool v_text = text_utf8_valid((const char *)data, size, &off_text);
    bool v_ref = fuzz_utf8(data, size, &off_ref);
    FUZZ_ASSERT(v_text == v_ref, "text_utf8_valid says %d, RFC 3629 says %d", v_text, v_ref);
    FUZZ_ASSERT(v_text || off_text == off_ref, "bad offset %zu, RFC 3629 says %zu", off_text,
                off_ref);
    FUZZ_ASSERT(text_utf8_valid((const char *)data, size, NULL) == v_text, "bad_off NULL");
}

static void fuzz_gb18030(const uint8_t *data, size_t size)
{
    char *out = (char *)1;
    size_t outlen = 12345;
    int rc = text_gb18030_to_utf8((const char *)data, size, &out, &outlen);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -EILSEQ || rc == -EINVAL, "rc %d", rc);
        FUZZ_ASSERT(out == NULL && outlen == 0, "output left on error");
        return;
    }
    FUZZ_ASSERT(out != NULL && out[outlen] == '\0', "not terminated");
    FUZZ_ASSERT(fuzz_utf8(out, outlen, NULL), "GB18030 gave invalid UTF-8");
    FUZZ_ASSERT(size == 0 || outlen > 0, "%zu bytes gave nothing", size);
    char *back;
    size_t backlen;
    rc = text_convert("GB18030", "UTF-8", out, outlen, &back, &backlen);
    FUZZ_ASSERT(rc == 0, "UTF-8 from GB18030 not convertible back: %d", rc);
    FUZZ_ASSERT(backlen == size && memcmp(back, data, size) == 0,
                "GB18030 round trip changed the bytes (%zu → %zu)", size, backlen);
    free(back);
    free(out);
}

/* Decodes one code point of valid UTF-8 at s; returns its length. */
static size_t decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80)
        return *cp = s[0], 1;
    if (s[0] < 0xE0)
        return *cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F), 2;
    if (s[0] < 0xF0)
        return *cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F), 3;
    *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
          (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

static void fuzz_fold(const char *s, size_t len)
{
    char *a = strdup(s);
    FUZZ_ASSERT(a != NULL, "strdup");
    size_t n = text_fold_ascii(a);
    FUZZ_ASSERT(n == strlen(a) && n <= len, "length %zu of %zu", n, len);
    if (fuzz_utf8(s, len, NULL)) {
        FUZZ_ASSERT(fuzz_utf8(a, n, NULL), "folding broke UTF-8");
        /* the reference: code point by code point */
        char *want = malloc(len + 1);
        FUZZ_ASSERT(want != NULL, "malloc");
        size_t w = 0;
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            size_t k = decode((const unsigned char *)s + i, &cp);
            if (cp >= 0xFF01 && cp <= 0xFF5E)
                want[w++] = (char)(cp - 0xFEE0);
            else if (cp == 0x3000)
                want[w++] = ' ';
            else
                memcpy(want + w, s + i, k), w += k;
            i += k;
        }
        want[w] = '\0';
        FUZZ_ASSERT(w == n && memcmp(a, want, n) == 0, "fold differs from the reference");
        free(want);
        char *b = strdup(a);
        FUZZ_ASSERT(b != NULL && text_fold_ascii(b) == n && strcmp(a, b) == 0,
                    "folding twice changed the text");
        free(b);
    }
    free(a);
}

static bool blank_at(const unsigned char *p, size_t left)
{
    if (left >= 1 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f'))
        return true;
    if (left >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
        return true;
    return left >= 2 && p[0] == 0xC2 && p[1] == 0xA0;
}

/* a blank ending exactly at s + end */
static bool blank_before(const unsigned char *s, size_t end)
{
    if (end >= 1 && strchr(" \t\r\n\v\f", s[end - 1]) != NULL && s[end - 1] != '\0')
        return true;
    if (end >= 3 && s[end - 3] == 0xE3 && s[end - 2] == 0x80 && s[end - 1] == 0x80)
        return true;
    return end >= 2 && s[end - 2] == 0xC2 && s[end - 1] == 0xA0;
}

static void fuzz_trim(const char *s, size_t len)
{
    char *a = strdup(s);
    FUZZ_ASSERT(a != NULL, "strdup");
    FUZZ_ASSERT(text_trim(a) == a, "trim returned another pointer");
    size_t n = strlen(a);
    FUZZ_ASSERT(n <= len && memmem(s, len, a, n) != NULL, "trim is not a substring");
    if (fuzz_utf8(s, len, NULL)) {
        FUZZ_ASSERT(fuzz_utf8(a, n, NULL), "trim broke UTF-8");
        FUZZ_ASSERT(!blank_at((unsigned char *)a, n), "blank left at the start: '%s'", a);
        FUZZ_ASSERT(!blank_before((unsigned char *)a, n), "blank left at the end: '%s'", a);
    }
    free(a);
}

static void fuzz_copy(const char *s, size_t len)
{
    bool utf8 = fuzz_utf8(s, len, NULL);
    char dst[80];
    size_t max = len + 2 < sizeof dst ? len + 2 : sizeof dst;
    for (size_t size = 1; size <= max; size++) {
        memset(dst, 'X', sizeof dst);
        size_t n = text_copy_utf8(dst, size, s);
        FUZZ_ASSERT(n < size && dst[n] == '\0' && memcmp(dst, s, n) == 0,
                    "size %zu: %zu bytes, not a prefix", size, n);
        FUZZ_ASSERT(size == sizeof dst || dst[size] == 'X', "size %zu: wrote past the end", size);
        if (len < size) {
            FUZZ_ASSERT(n == len, "size %zu: %zu of %zu bytes though it fits", size, n, len);
        } else if (utf8) {
            /* cut at a character start, and the next character would not fit */
            FUZZ_ASSERT(((unsigned char)s[n] & 0xC0) != 0x80, "size %zu: cut inside a character",
                        size);
            size_t next = n + 1;
            while (next < len && ((unsigned char)s[next] & 0xC0) == 0x80)
                next++;
            FUZZ_ASSERT(next > size - 1, "size %zu: stopped at %zu, %zu would fit", size, n, next);
            FUZZ_ASSERT(fuzz_utf8(dst, n, NULL), "size %zu: not UTF-8", size);
        }
    }
    /* in place */
    char *a = strdup(s);
    FUZZ_ASSERT(a != NULL, "strdup");
    size_t cut = len / 2 + 1;
    size_t n = text_copy_utf8(a, cut, a);
    FUZZ_ASSERT(n < cut && memcmp(a, s, n) == 0 && a[n] == '\0', "in place");
    free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    fuzz_valid(data, size);
    fuzz_gb18030(data, size);
    char *s = fuzz_strndup(data, size);
    size_t len = strlen(s); /* the string helpers stop at a NUL */
    fuzz_fold(s, len);
    fuzz_trim(s, len);
    fuzz_copy(s, len);
    free(s);
    return 0;
}
