/*
 * check_notify.c — Check suite for daemon/notify.c (sd_notify without
 * libsystemd, parkpulsed(8)): messages reach a datagram socket bound at a path in
 * a temporary directory and at an abstract address, exactly as sent; an
 * unset NOTIFY_SOCKET does nothing; malformed addresses and a socket nobody
 * listens on are errors; WATCHDOG_USEC/WATCHDOG_PID are read strictly.
 * No network: AF_UNIX only, and the temporary directory is removed.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "tmpdir.h"
#include "check_main.h"

static const char *const states[] = {
    "READY=1",
    "RELOADING=1",
    "STOPPING=1",
    "WATCHDOG=1",
    "STATUS=已就绪 3 parks\nREADY=1",
};

/* A bound datagram socket with a receive timeout, so a lost message fails
 * the test instead of hanging it. */
static int bind_dgram(const struct sockaddr_un *addr, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (const struct sockaddr *)addr, len), 0);
    struct timeval tv = { 2, 0 };
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    return fd;
}

static void expect_message(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_uint_eq((size_t)n, strlen(want));
    ck_assert_str_eq(buf, want);
}

START_TEST(test_unset_is_noop)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(notify_send("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    ck_assert_int_eq(notify_send("READY=1"), 0);
}
END_TEST

START_TEST(test_path_socket)
{
    char dir[256], path[300];
    tmpdir_make(dir, sizeof dir, "pp-notify");
    snprintf(path, sizeof path, "%s/notify", dir);

    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    ck_assert_uint_lt(strlen(path), sizeof addr.sun_path);
    strcpy(addr.sun_path, path);
    int fd = bind_dgram(&addr, sizeof addr);

    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(notify_send(states[_i]), 1);
    expect_message(fd, states[_i]);

    close(fd);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_abstract_socket)
{
    char name[64];
    snprintf(name, sizeof name, "@pp-notify-test-%ld-%d", (long)getpid(), _i);

    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    memcpy(addr.sun_path, name, n);
    addr.sun_path[0] = '\0';
    int fd = bind_dgram(&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));

    setenv("NOTIFY_SOCKET", name, 1);
    ck_assert_int_eq(notify_send(states[_i]), 1);
    expect_message(fd, states[_i]);
    close(fd);
}
END_TEST

START_TEST(test_bad_addresses)
{
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';

    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    ck_assert_int_eq(notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", "@", 1);
    ck_assert_int_eq(notify_send("READY=1"), -EINVAL);
    setenv("NOTIFY_SOCKET", longpath, 1);
    ck_assert_int_eq(notify_send("READY=1"), -ENAMETOOLONG);
    /* a path where nobody listens */
    setenv("NOTIFY_SOCKET", "/nonexistent-pp-dir/notify", 1);
    ck_assert_int_lt(notify_send("READY=1"), 0);
    /* an empty message is refused before anything is sent */
    ck_assert_int_eq(notify_send(""), -EINVAL);
}
END_TEST

typedef struct wd_case {
    const char *usec, *pid; /* NULL: unset; pid "self": getpid() */
    uint64_t want;
} wd_case;

static const wd_case wd_cases[] = {
    { NULL, NULL, 0 },
    { "30000000", NULL, 30000000 },
    { "30000000", "self", 30000000 },
    { "30000000", "1", 0 },          /* meant for another process */
    { "30000000", "x", 0 },
    { "0", NULL, 0 },
    { "", NULL, 0 },
    { "12x", NULL, 0 },
    { "-5", NULL, 0 },
    { " 5", NULL, 0 },
    { "99999999999999999999999", NULL, 0 }, /* overflows 64 bits */
    { "18446744073709551615", NULL, UINT64_MAX },
};

START_TEST(test_watchdog)
{
    const wd_case *c = &wd_cases[_i];
    char self[32];
    snprintf(self, sizeof self, "%ld", (long)getpid());
    if (c->usec)
        setenv("WATCHDOG_USEC", c->usec, 1);
    else
        unsetenv("WATCHDOG_USEC");
    if (c->pid)
        setenv("WATCHDOG_PID", strcmp(c->pid, "self") == 0 ? self : c->pid, 1);
    else
        unsetenv("WATCHDOG_PID");
    ck_assert_msg(notify_watchdog_usec() == c->want, "case %d: usec=%s pid=%s", _i,
                  c->usec ? c->usec : "(unset)", c->pid ? c->pid : "(unset)");
}
END_TEST

static Suite *notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = check_tcase(s, "core", NULL, NULL, 0);
    int n_states = (int)(sizeof states / sizeof states[0]);
    tcase_add_test(tc, test_unset_is_noop);
    tcase_add_loop_test(tc, test_path_socket, 0, n_states);
    tcase_add_loop_test(tc, test_abstract_socket, 0, n_states);
    tcase_add_test(tc, test_bad_addresses);
    tcase_add_loop_test(tc, test_watchdog, 0, (int)(sizeof wd_cases / sizeof wd_cases[0]));
    return s;
}

CHECK_MAIN(notify_suite)
