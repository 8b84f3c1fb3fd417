/*
 * test_file.h — a whole file read into memory for a Check test: any file
 * (test_read_file) or one of the shipped fixtures, read from tests/fixtures or
 * $PP_FIXTURE_DIR (test_fixture). Header only; a file that cannot be read
 * fails the test.
 */
#ifndef PP_TEST_FILE_H
#define PP_TEST_FILE_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The content of path, NUL-terminated (caller frees); its length in *len
 * when len is not NULL. */
static inline char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    ck_assert_msg(!ferror(f), "cannot read %s", path);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The shipped fixture name, from $PP_FIXTURE_DIR, else tests/fixtures (run
 * from the project root). */
static inline char *test_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("PP_FIXTURE_DIR");
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "tests/fixtures", name);
    ck_assert(n > 0 && (size_t)n < sizeof path);
    return test_read_file(path, len);
}

#endif
