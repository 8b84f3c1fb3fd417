/*
 * preflight.c — the start-up checks of preflight.h.
 *
 * Each check is the one start-up makes, not a second opinion: the plugin is
 * loaded with plugin_open() (plugin.c), an exec command is judged by
 * exec_check_program() (collectors/exec_check.h, what the exec collector runs
 * at init), the state directory by trying what main.c does (create it, then
 * write in it), a port by binding it. Nothing is left behind: a directory the
 * check had to create is removed again, a plugin is unloaded, a socket closed.
 */
#include "preflight.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../collectors/exec_check.h"
#include "plugin.h"

#define PREFLIGHT_MAX 64 /* problems kept */

typedef struct pf_item {
    int line;
    size_t seq;
    char text[PATH_MAX + 512];
} pf_item;

typedef struct pf {
    const pp_config *cfg;
    pf_item item[PREFLIGHT_MAX];
    size_t n;
} pf;

static void problem(pf *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void problem(pf *p, int line, const char *fmt, ...)
{
    if (p->n == PREFLIGHT_MAX)
        return;
    char msg[PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = p->cfg->file ? p->cfg->file : "(configuration)";
    if (line > 0)
        snprintf(p->item[p->n].text, sizeof p->item[p->n].text, "%s:%d: %s\n", file, line, msg);
    else
        snprintf(p->item[p->n].text, sizeof p->item[p->n].text, "%s: %s\n", file, msg);
    p->item[p->n].line = line;
    p->item[p->n].seq = p->n;
    p->n++;
}

/* problem() with ": <strerror(e)>" appended (e: errno). */
static void problem_errno(pf *p, int line, int e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem_errno(pf *p, int line, int e, const char *fmt, ...)
{
    char msg[PATH_MAX + 128], why[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    problem(p, line, "%s: %s", msg, strerror_r(e, why, sizeof why)); /* GNU: a text */
}

/* ---- state_dir --------------------------------------------------------- */

/* The pages are built into parkpulsed; a dashboard_dir written in the file
 * overrides or adds files and must exist (the compiled-in default may not). */
static void check_dashboard_dir(pf *p)
{
    const char *dir = p->cfg->dashboard_dir;
    struct stat st;
    if (!p->cfg->dashboard_dir_set || dir == NULL || dir[0] == '\0')
        return;
    if (stat(dir, &st) != 0)
        problem(p, 0, "dashboard_dir %s: %s; remove the line to serve the pages built into "
                "parkpulsed", dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        problem(p, 0, "dashboard_dir %s: not a directory; remove the line to serve the pages "
                "built into parkpulsed", dir);
}

/* Start-up creates state_dir (and its parents) and then journal/, rrd/ and a
 * lock file in it: the deepest directory that exists must take a new entry. */
static void check_state_dir(pf *p)
{
    const char *dir = p->cfg->state_dir;
    int line = p->cfg->line_state_dir;
    char probe[PATH_MAX];
    struct stat st;

    if (snprintf(probe, sizeof probe, "%s", dir) >= (int)sizeof probe) {
        problem(p, line, "state_dir \"%s\" is too long", dir);
        return;
    }
    /* the deepest existing ancestor (the directory itself when it exists) */
    while (stat(probe, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) {
            problem_errno(p, line, errno, "state_dir \"%s\": %s", dir, probe);
            return;
        }
        char *slash = strrchr(probe, '/');
        if (slash == NULL || slash == probe) {
            snprintf(probe, sizeof probe, "/");
            if (stat(probe, &st) != 0)
                return;
            break;
        }
        *slash = '\0';
    }
    if (!S_ISDIR(st.st_mode)) {
        problem(p, line, "state_dir \"%s\": %s is not a directory", dir, probe);
        return;
    }
    if (access(probe, W_OK | X_OK) != 0) {
        problem_errno(p, line, errno, "state_dir \"%s\": %s is not writable by uid %u "
                      "(start-up creates the journal and the RRD files there)", dir, probe,
                      (unsigned)geteuid());
        return;
    }
    if (strcmp(probe, dir) == 0) {
        /* it exists: its journal/ and rrd/ must be writable too, when present */
        static const char *const subs[] = { "journal", "rrd" };
        for (size_t i = 0; i < 2; i++) {
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
            if (access(sub, F_OK) == 0 && access(sub, W_OK | X_OK) != 0)
                problem_errno(p, line, errno, "state_dir \"%s\": %s is not writable by uid %u",
                              dir, sub, (unsigned)geteuid());
        }
    }
}

/* 1 when a running parkpulsed holds the state directory's lock. */
static int state_dir_held(const char *dir)
{
    char lock[PATH_MAX];
    if (snprintf(lock, sizeof lock, "%s/parkpulsed.lock", dir) >= (int)sizeof lock)
        return 0;
    int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* ---- collectors -------------------------------------------------------- */

static void check_exec(pf *p, const conf_collector *c)
{
    const char *command = conf_collector_option(c, "command");
    char why[PATH_MAX + 256];
    char **argv = NULL;
    struct stat st;

    if (command == NULL) {
        problem(p, c->line, "collector \"%s\": option command (the program to run) is required",
                c->name);
        return;
    }
    if (exec_split_command(command, &argv, why, sizeof why) != 0) {
        problem(p, c->line, "collector \"%s\": command \"%s\": %s", c->name, command, why);
        return;
    }
    if (exec_check_program(command, argv[0], &st, why, sizeof why) != 0)
        problem(p, c->line, "collector \"%s\": %s", c->name, why);
    exec_free_vector(argv);

    if (c->user) {
        struct passwd *pw = getpwnam(c->user);
        if (pw == NULL)
            problem(p, c->line, "collector \"%s\": user \"%s\" does not exist", c->name, c->user);
        else if (geteuid() == 0 && pw->pw_uid == 0)
            problem(p, c->line, "collector \"%s\": refusing to run '%s' as root (user \"%s\" has "
                    "uid 0); set user = \"…\" to an unprivileged user", c->name, command, c->user);
    } else if (geteuid() == 0) {
        problem(p, c->line, "collector \"%s\": refusing to run '%s' as root; set user = \"…\" in "
                "collector \"%s\" (or run parkpulsed as its own user)", c->name, command, c->name);
    }
}

static void check_collectors(pf *p)
{
    for (size_t i = 0; i < p->cfg->n_collectors; i++) {
        const conf_collector *c = &p->cfg->collectors[i];
        void *dl = NULL;
        const struct pp_collector_def *def = NULL;
        char why[PATH_MAX + 256];
        if (plugin_open(p->cfg->plugin_dir, c->plugin, &dl, &def, why, sizeof why) != 0)
            problem(p, c->line, "collector \"%s\": %s", c->name, why);
        else
            dlclose(dl);
        if (strcmp(c->plugin, "exec") == 0)
            check_exec(p, c);
    }
}

/* ---- ports ------------------------------------------------------------- */

/* Binds host:port once (as the daemon will) to learn whether it is free. */
static void check_bind(pf *p, int line, const char *what, const char *value, const char *host,
                       const char *port)
{
    if (strcmp(port, "0") == 0 || strcmp(port, "*") == 0)
        return; /* any free port */
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    if (*host == '\0' || strcmp(host, "*") == 0)
        host = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        problem(p, line, "%s \"%s\": %s", what, value, gai_strerror(rc));
        return;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int e = errno;
            if (e == EADDRINUSE)
                problem(p, line, "%s \"%s\": port %s is already in use (another program, or "
                        "another parkpulsed, listens there)", what, value, port);
            else if (e == EACCES)
                problem(p, line, "%s \"%s\": port %s needs privileges uid %u lacks", what, value,
                        port, (unsigned)geteuid());
            else if (e == EADDRNOTAVAIL)
                problem(p, line, "%s \"%s\": no such address on this machine", what, value);
            close(fd);
            break;
        }
        close(fd);
        break; /* the first address is the one the daemon binds */
    }
    freeaddrinfo(res);
}

/* "host:port", "[v6]:port" or "*:port" into host and port. */
static int split_host_port(const char *s, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        snprintf(host, hl, "%.*s", (int)(end - s - 1), s + 1);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        snprintf(host, hl, "%.*s", (int)(colon - s), s);
    }
    snprintf(port, pl, "%s", colon + 1);
    return 0;
}

static void check_ports(pf *p)
{
    char host[256], port[32];
    const char *listen = p->cfg->http_listen;
    if (listen && split_host_port(listen, host, sizeof host, port, sizeof port) == 0)
        check_bind(p, p->cfg->line_http_listen, "http: listen", listen, host, port);
    const char *pub = p->cfg->bus_publish;
    if (pub && strncmp(pub, "tcp://", 6) == 0 &&
        split_host_port(pub + 6, host, sizeof host, port, sizeof port) == 0)
        check_bind(p, p->cfg->line_bus_publish, "bus: publish", pub, host, port);
}

static int cmp_item(const void *a, const void *b)
{
    const pf_item *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int preflight_check(const pp_config *cfg, char *err, size_t errlen, char *note, size_t notelen)
{
    pf *p = calloc(1, sizeof *p);
    if (note && notelen)
        note[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    if (p == NULL) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory\n", cfg->file ? cfg->file : "?");
        return 1;
    }
    p->cfg = cfg;
    check_state_dir(p);
    check_dashboard_dir(p);
    check_collectors(p);
    if (state_dir_held(cfg->state_dir)) {
        if (note && notelen)
            snprintf(note, notelen, "parkpulsed is running on %s: its ports were not checked",
                     cfg->state_dir);
    } else {
        check_ports(p);
    }
    qsort(p->item, p->n, sizeof p->item[0], cmp_item);
    size_t pos = 0;
    for (size_t i = 0; i < p->n && err && pos + 1 < errlen; i++) {
        int w = snprintf(err + pos, errlen - pos, "%s", p->item[i].text);
        if (w < 0)
            break;
        pos += (size_t)w < errlen - pos ? (size_t)w : errlen - pos - 1;
    }
    int n = (int)p->n;
    free(p);
    return n;
}
