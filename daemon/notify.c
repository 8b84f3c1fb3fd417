/*
 * notify.c — sd_notify's datagram protocol, spoken directly (see notify.h).
 *
 * systemd documents the protocol as stable: one AF_UNIX SOCK_DGRAM datagram
 * per notification, its text "KEY=VALUE" lines, sent to the socket named by
 * $NOTIFY_SOCKET — a file-system path starting with '/', or an abstract
 * socket written as '@name' (the '@' stands for the leading NUL byte). A new
 * socket is made for each message: notifications are rare (start, reload,
 * stop, a watchdog ping every few seconds), and no state is shared between
 * threads. The socket is not unset from the environment, so the exec
 * collector must keep it out of a child's clean environment itself.
 */
#include "notify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* Parses s as a decimal unsigned integer, digits only; returns 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0')
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Fills addr from the value of NOTIFY_SOCKET; returns its length or -EINVAL. */
static int notify_address(const char *name, struct sockaddr_un *addr, socklen_t *len)
{
    size_t n = strlen(name);
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (n < 2 || (name[0] != '/' && name[0] != '@'))
        return -EINVAL;
    if (n > sizeof addr->sun_path - (name[0] == '/' ? 1 : 0))
        return -ENAMETOOLONG;
    memcpy(addr->sun_path, name, n);
    if (name[0] == '@') {
        addr->sun_path[0] = '\0'; /* abstract: the length counts, no terminator */
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int notify_send(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    socklen_t addr_len = 0;
    int fd = -1, rc;

    if (name == NULL || *name == '\0')
        return 0;
    if (state == NULL || *state == '\0')
        return -EINVAL;
    rc = notify_address(name, &addr, &addr_len);
    if (rc < 0) {
        log_err_rc("notify", rc, "NOTIFY_SOCKET '%s' is not a usable socket address", name);
        return rc;
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        log_errno("notify", "socket");
        goto out;
    }
    size_t len = strlen(state);
    ssize_t sent;
    do
        sent = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&addr, addr_len);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        rc = -errno;
        log_errno("notify", "cannot send '%s' to %s", state, name);
        goto out;
    }
    if ((size_t)sent != len) {
        rc = -EMSGSIZE;
        log_err("notify", "short send of '%s' to %s", state, name);
        goto out;
    }
    rc = 1;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

uint64_t notify_watchdog_usec(void)
{
    const char *pid_s = getenv("WATCHDOG_PID");
    uint64_t usec = 0, pid = 0;

    if (pid_s != NULL) {
        if (parse_u64(pid_s, &pid) != 0 || pid != (uint64_t)getpid())
            return 0; /* meant for another process (e.g. our parent) */
    }
    if (parse_u64(getenv("WATCHDOG_USEC"), &usec) != 0)
        return 0;
    return usec;
}
