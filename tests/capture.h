/*
 * capture.h — what the code under test logs, captured: stderr (where the
 * foreground log writes) is sent to a temporary file between capture_begin()
 * and capture_end(), which hands its text back. Header only.
 */
#ifndef PP_TEST_CAPTURE_H
#define PP_TEST_CAPTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct stderr_capture {
    char path[64];
    int fd, saved;
} stderr_capture;

/* From now on stderr goes to a temporary file. */
static inline void capture_begin(stderr_capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/pp-capture.XXXXXX");
    c->fd = mkstemp(c->path);
    ck_assert_int_ge(c->fd, 0);
    fflush(stderr);
    c->saved = dup(2);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_ge(dup2(c->fd, 2), 0);
}

/* stderr back; what was written meanwhile into out (len bytes, NUL-terminated). */
static inline void capture_end(stderr_capture *c, char *out, size_t len)
{
    fflush(stderr);
    ck_assert_int_ge(dup2(c->saved, 2), 0);
    close(c->saved);
    ssize_t n = pread(c->fd, out, len - 1, 0);
    ck_assert_int_ge(n, 0);
    out[n] = '\0';
    close(c->fd);
    unlink(c->path);
}

#endif
