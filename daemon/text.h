/*
 * text.h — small UTF-8 helpers for reading text that comes from outside:
 * strict UTF-8 validation, GB18030 → UTF-8 conversion (glibc iconv), the
 * NFKC-style folding of full-width ASCII-range characters that Chinese
 * spreadsheets produce (U+FF01..U+FF5E → ASCII, U+3000 → space), trimming
 * and truncation at a character boundary. No global state; thread-safe.
 */
#ifndef PP_TEXT_H
#define PP_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* true when the len bytes at s are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). On false, *bad_off (if not NULL) is the
 * offset of the first byte of the offending sequence. NUL bytes are valid. */
bool text_utf8_valid(const char *s, size_t len, size_t *bad_off);

/* Converts len bytes of GB18030 to UTF-8. On success returns 0 and sets *out
 * to a malloc'd NUL-terminated string (the caller frees it) of *outlen bytes.
 * Returns -EILSEQ or -EINVAL when the input is not GB18030, -ENOMEM, or
 * another negative errno when iconv is unavailable; *out is then NULL. */
/* Converts len bytes from encoding `from` to `to` with iconv (e.g. "GB18030",
 * "UTF-8"); same results and ownership as text_gb18030_to_utf8. */
int text_convert(const char *to, const char *from, const char *in, size_t len, char **out,
                 size_t *outlen);

int text_gb18030_to_utf8(const char *in, size_t len, char **out, size_t *outlen);

/* Folds in place U+FF01..U+FF5E to U+0021..U+007E and U+3000 to a space.
 * The string only shrinks. Returns the new length. */
size_t text_fold_ascii(char *s);

/* Removes, in place, leading and trailing ASCII white space, U+3000 and
 * U+00A0. Returns s. */
char *text_trim(char *s);

/* Removes, in place, every ASCII white space, U+3000 and U+00A0 (also
 * inside: "合  计" becomes "合计"). Returns s. */
char *text_squeeze(char *s);

/* Decodes the UTF-8 string s into at most max code points at out (a byte
 * that does not start a valid sequence counts as one code point of its own
 * value). Returns how many there are in all (more than max when cut). */
size_t text_code_points(const char *s, uint32_t *out, size_t max);

/* Copies src into dst (dstsize bytes, dstsize > 0), truncated so that it
 * never ends inside a UTF-8 sequence; always NUL-terminates. dst may be src
 * (truncation in place). Returns the number of bytes copied (not counting the
 * NUL). */
size_t text_copy_utf8(char *dst, size_t dstsize, const char *src);

#endif
