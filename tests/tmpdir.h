/*
 * tmpdir.h — the temporary directory of a Check test: made with mkdtemp()
 * under $TMPDIR (else /tmp) as <name>.XXXXXX, removed with everything below
 * it. Header only; shared by the suites and by test_app.h.
 */
#ifndef PP_TEST_TMPDIR_H
#define PP_TEST_TMPDIR_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes $TMPDIR/<name>.XXXXXX into dir (len bytes): 0, or -1 (errno). */
static inline int tmpdir_try(char *dir, size_t len, const char *name)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, len, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
    if (n <= 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(dir) ? 0 : -1;
}

/* tmpdir_try in a test; fails the test when it cannot. */
static inline void tmpdir_make(char *dir, size_t len, const char *name)
{
    ck_assert_msg(tmpdir_try(dir, len, name) == 0, "%s: mkdtemp: %s", name, strerror(errno));
}

/* tmpdir_try in an unchecked fixture (outside any test): exits when it cannot. */
static inline void tmpdir_make_or_exit(char *dir, size_t len, const char *name)
{
    if (tmpdir_try(dir, len, name) != 0) {
        fprintf(stderr, "%s: mkdtemp: %s\n", name, strerror(errno));
        exit(1);
    }
}

static inline int tmpdir_rm_entry(const char *path, const struct stat *st, int flag,
                                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (nothing when dir is empty). 0 or -1. */
static inline int tmpdir_remove(const char *dir)
{
    if (dir == NULL || dir[0] == '\0')
        return 0;
    return nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
