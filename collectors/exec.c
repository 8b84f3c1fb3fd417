/*
 * exec.c — the `exec` collector plugin (README, Adding a collector; parkpulsed(8)).
 *
 * Runs a command every `interval` seconds and ingests its standard output as
 * CSV (README, Feeding figures). The command is run directly, without a shell:
 *
 *     fork ──► child: own process group, default signals, stdin /dev/null,
 *              stdout/stderr to pipes, every other descriptor closed, the
 *              configured user, cwd "/", a clean environment ──► execve
 *     parent: poll(stdout, stderr, child exit, shutdown pipe) until the child
 *             exited and both pipes are closed, or the timeout:
 *
 *     exit 0 ─────────────► submit_csv("<name>:run-<n>", stdout)
 *                              OK → "ingested N bytes"; REFUSED → the report
 *                              is logged; ERROR → tried again next interval
 *     exit ≠ 0, signal ───► error logged; next attempt after a back-off
 *     timeout ────────────► SIGTERM to the group, `grace` s, SIGKILL; reaped
 *     stdout > max_output ► killed the same way; reported as a failure
 *     shutdown() ─────────► the group is killed (grace capped at 2 s); run() returns
 *
 * Each line of the command's standard error is logged at WARN as "stderr: …"
 * (control characters shown as '?', long lines cut, at most 200 lines a run).
 * Processes the command leaves behind in its group are killed when it exits.
 * After k failures in a row the next attempt waits interval·2^(k−1) seconds,
 * at most `backoff_max` and never less than `interval`; a success resets it.
 * Runs start every `interval` seconds, counted from the start of a run (a run
 * that takes longer is followed by the next one at once).
 *
 * Options (collector section of parkpulse.conf):
 *     command      absolute path of the program, then its arguments separated
 *                  by spaces; "double quotes" group an argument with spaces
 *                  (\" and \\ inside quotes); required
 *     interval     seconds between runs, 1..31536000 (default 3600)
 *     timeout      seconds a run may take, 1..86400 (default 60)
 *     grace        seconds between SIGTERM and SIGKILL, 0..300 (default 5)
 *     user         run the command as this user (needed when the daemon is
 *                  root: it refuses to run commands as root)
 *     max_output   largest standard output taken, bytes with an optional K, M
 *                  or G suffix, at most 1G (default 32M)
 *     backoff_max  longest wait after failures, seconds (default 8·interval)
 *
 * The environment of the command holds only PATH=/usr/local/bin:/usr/bin:/bin,
 * LANG=C.UTF-8, HOME (the user's home directory, or /) and
 * PARKPULSE_COLLECTOR=<collector name>. Everything the child needs (argv,
 * environment, ids, groups) is prepared before fork(): the daemon is
 * multi-threaded, so the child makes only async-signal-safe calls.
 *
 * This file includes only collector.h, collector_util.h and system headers; it exports only
 * `parkpulse_collector`. Each instance keeps all of its state in its own
 * struct exec, so several instances can run in one process.
 */
#include "collector.h"
#include "collector_util.h"
#include "exec_check.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXEC_DEFAULT_INTERVAL   3600
#define EXEC_MAX_INTERVAL       31536000ULL
#define EXEC_DEFAULT_TIMEOUT    60
#define EXEC_MAX_TIMEOUT        86400ULL
#define EXEC_DEFAULT_GRACE      5
#define EXEC_MAX_GRACE          300ULL
#define EXEC_SHUTDOWN_GRACE_MS  2000
#define EXEC_DEFAULT_MAX_OUTPUT (32ULL * 1024 * 1024)
#define EXEC_LIMIT_MAX_OUTPUT   (1ULL << 30)
#define EXEC_BACKOFF_FACTOR     8
#define EXEC_MAX_BACKOFF        (10ULL * EXEC_MAX_INTERVAL)
#define EXEC_MAX_COMMAND        8192
#define EXEC_ERR_LINE           1024  /* longest stderr line logged */
#define EXEC_ERR_LINES          200   /* stderr lines logged per run */
#define EXEC_REPORT_LINES       20    /* report lines logged per refusal */
#define EXEC_TICK_MS            50    /* exit polling without a pidfd */
#define EXEC_READ_CHUNK         65536
#define EXEC_DRAIN_READS        16    /* chunks read per poll() wake-up */
#define EXEC_PATH_ENV           "PATH=/usr/local/bin:/usr/bin:/bin"
#define EXEC_LANG_ENV           "LANG=C.UTF-8"

/* What the child tells the parent through the report pipe when it fails. */
enum child_stage {
    STAGE_SETPGID = 1, STAGE_FDS, STAGE_SETGROUPS, STAGE_SETGID, STAGE_SETUID, STAGE_CHDIR,
    STAGE_EXEC,
};

struct child_report {
    int stage;
    int err;
};

struct exec {
    const pp_collector_host *host;
    const char *name;          /* host->name */
    char *command;             /* the option as given, for logs */
    char **argv;               /* NULL-terminated; argv[0] is the absolute path */
    char **envp;               /* NULL-terminated clean environment */
    unsigned interval, timeout, grace;   /* seconds */
    unsigned long long backoff_max;      /* seconds */
    size_t max_output;         /* bytes */
    bool switch_user;          /* drop to uid/gid/groups in the child */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int ngroups;
    int devnull;               /* /dev/null for the child's stdin */
    int max_fd;                /* close() bound when close_range() is missing */
    int wake[2];               /* self-pipe: shutdown() writes, run() polls */
    atomic_int stop;
    unsigned long runs;
    unsigned failures;         /* failed runs in a row */
};

/* How one run ended. */
enum outcome { RUN_OK, RUN_FAILED, RUN_STOPPED };

/* Why the parent is killing a run. */
enum kill_reason { KILL_NONE, KILL_TIMEOUT, KILL_OVERFLOW, KILL_SHUTDOWN, KILL_ERROR };

/* One running command. */
struct run {
    pid_t pid;
    int out, err, pidfd;       /* our pipe ends and a pidfd, or -1 */
    bool out_eof, err_eof, exited;
    enum kill_reason killing;
    int64_t deadline;          /* monotonic ms: the timeout, then SIGKILL time */
    char *buf;                 /* standard output */
    size_t len, cap;
    bool overflow;
    char line[EXEC_ERR_LINE + 1];  /* standard error line being assembled */
    size_t line_len;
    bool line_cut;             /* the current line was longer than EXEC_ERR_LINE */
    unsigned err_lines, err_dropped;
    char error[128];           /* for KILL_ERROR */
};

/* ---- small helpers ---------------------------------------------------- */




/* True when the mode bits let uid (with gid and groups) execute the file. */
static bool mode_allows_exec(const struct stat *st, uid_t uid, gid_t gid, const gid_t *groups,
                             int ngroups)
{
    if (st->st_uid == uid)
        return st->st_mode & S_IXUSR;
    bool member = st->st_gid == gid;
    for (int i = 0; i < ngroups && !member; i++)
        member = groups[i] == st->st_gid;
    if (member)
        return st->st_mode & S_IXGRP;
    return st->st_mode & S_IXOTH;
}

/* ---- init --------------------------------------------------------------- */

/* Looks up user; fills uid, gid, home (malloc'd) and the groups. */
static int resolve_user(struct exec *x, const char *user, char **home)
{
    const pp_collector_host *host = x->host;
    struct passwd pw, *res = NULL;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t bufsz = sz > 0 ? (size_t)sz : 16384;
    char *buf = NULL;
    int rc;

    for (;;) {
        char *nb = realloc(buf, bufsz);
        if (!nb) {
            free(buf);
            host->log(host, PP_LOG_ERR, "out of memory");
            return -1;
        }
        buf = nb;
        rc = getpwnam_r(user, &pw, buf, bufsz, &res);
        if (rc != ERANGE || bufsz >= (1U << 20))
            break;
        bufsz *= 2;
    }
    if (rc != 0 || !res) {
        if (rc != 0)
            host_log_errno(host, PP_LOG_ERR, rc, "cannot look up user \"%s\"", user);
        else
            host->log(host, PP_LOG_ERR, "user \"%s\" does not exist", user);
        free(buf);
        return -1;
    }
    x->uid = pw.pw_uid;
    x->gid = pw.pw_gid;
    *home = strdup(pw.pw_dir && pw.pw_dir[0] == '/' ? pw.pw_dir : "/");

    int n = 16;
    for (int tries = 0; tries < 8; tries++) {
        gid_t *g = realloc(x->groups, (size_t)n * sizeof *g);
        if (!g)
            break;
        x->groups = g;
        int want = n;
        if (getgrouplist(user, pw.pw_gid, x->groups, &want) >= 0) {
            x->ngroups = want;
            break;
        }
        n = want > n ? want : n * 2;
    }
    free(buf);
    if (!*home) {
        host->log(host, PP_LOG_ERR, "out of memory");
        return -1;
    }
    if (x->ngroups == 0) {
        host->log(host, PP_LOG_ERR, "cannot read the groups of user \"%s\"", user);
        return -1;
    }
    return 0;
}

/* Reads one numeric option; -1 (logged) when it is malformed. */
static int number_option(struct exec *x, const char *key, unsigned long long min,
                         unsigned long long max, bool suffixes, unsigned long long def,
                         unsigned long long *out)
{
    const char *opt = x->host->option(x->host, key);
    *out = def;
    if (!opt)
        return 0;
    if (parse_number(opt, min, max, suffixes, out) < 0) {
        if (suffixes)
            x->host->log(x->host, PP_LOG_ERR, "%s \"%s\" must be a number of bytes "
                         "(K, M, G suffixes allowed), %llu to 1G", key, opt, min);
        else
            x->host->log(x->host, PP_LOG_ERR, "%s \"%s\" must be a number of seconds, "
                         "%llu to %llu", key, opt, min, max);
        return -1;
    }
    return 0;
}

/* Checks that argv[0] is an absolute path to an executable regular file
 * (exec_check.h, the same check `parkpulse check-config` makes). */
static int check_program(struct exec *x)
{
    const pp_collector_host *host = x->host;
    char why[PATH_MAX + 128];
    struct stat st;

    if (exec_check_program(x->command, x->argv[0], &st, why, sizeof why) < 0) {
        host->log(host, PP_LOG_ERR, "%s", why);
        return -1;
    }
    if (x->switch_user && !mode_allows_exec(&st, x->uid, x->gid, x->groups, x->ngroups))
        host->log(host, PP_LOG_WARN, "command %s may not be executable by uid %u (mode %04o)",
                  x->argv[0], (unsigned)x->uid, (unsigned)(st.st_mode & 07777));
    return 0;
}

static int build_env(struct exec *x, const char *home)
{
    x->envp = calloc(5, sizeof *x->envp);
    if (!x->envp)
        return -1;
    x->envp[0] = strdup(EXEC_PATH_ENV);
    x->envp[1] = strdup(EXEC_LANG_ENV);
    if (!x->envp[0] || !x->envp[1] || asprintf(&x->envp[2], "HOME=%s", home) < 0) {
        x->envp[2] = NULL;
        return -1;
    }
    if (asprintf(&x->envp[3], "PARKPULSE_COLLECTOR=%s", x->name) < 0) {
        x->envp[3] = NULL;
        return -1;
    }
    return 0;
}

static void exec_destroy(void *state)
{
    struct exec *x = state;
    if (!x)
        return;
    close_fd(&x->devnull);
    close_fd(&x->wake[0]);
    close_fd(&x->wake[1]);
    exec_free_vector(x->argv);
    exec_free_vector(x->envp);
    free(x->groups);
    free(x->command);
    free(x);
}

/* Reads `command`: kept as written (for messages) and split into x->argv.
 * -1 (logged) when it is missing, too long or malformed. */
static int command_option(struct exec *x)
{
    const pp_collector_host *host = x->host;
    const char *opt = host->option(host, "command");
    char err[256];

    if (!opt || !*opt) {
        host->log(host, PP_LOG_ERR, "option command (the program to run) is required");
        return -1;
    }
    if (strlen(opt) > EXEC_MAX_COMMAND) {
        host->log(host, PP_LOG_ERR, "command is longer than %d bytes", EXEC_MAX_COMMAND);
        return -1;
    }
    x->command = strdup(opt);
    if (!x->command) {
        host->log(host, PP_LOG_ERR, "out of memory");
        return -1;
    }
    if (exec_split_command(opt, &x->argv, err, sizeof err) < 0) {
        host->log(host, PP_LOG_ERR, "command \"%s\": %s", opt, err);
        return -1;
    }
    return 0;
}

/* Reads interval, timeout, grace, max_output and backoff_max (in that
 * order); -1 (logged) at the first malformed one. */
static int timing_options(struct exec *x)
{
    unsigned long long v;

    if (number_option(x, "interval", 1, EXEC_MAX_INTERVAL, false, EXEC_DEFAULT_INTERVAL,
                      &v) < 0)
        return -1;
    x->interval = (unsigned)v;
    if (number_option(x, "timeout", 1, EXEC_MAX_TIMEOUT, false, EXEC_DEFAULT_TIMEOUT, &v) < 0)
        return -1;
    x->timeout = (unsigned)v;
    if (number_option(x, "grace", 0, EXEC_MAX_GRACE, false, EXEC_DEFAULT_GRACE, &v) < 0)
        return -1;
    x->grace = (unsigned)v;
    if (number_option(x, "max_output", 1, EXEC_LIMIT_MAX_OUTPUT, true, EXEC_DEFAULT_MAX_OUTPUT,
                      &v) < 0)
        return -1;
    x->max_output = (size_t)v;
    if (number_option(x, "backoff_max", 1, EXEC_MAX_BACKOFF, false,
                      (unsigned long long)x->interval * EXEC_BACKOFF_FACTOR, &v) < 0)
        return -1;
    x->backoff_max = v < x->interval ? x->interval : v;
    return 0;
}

/* Reads `user` and decides whom the command runs as: a root daemon needs an
 * unprivileged user and switches to it; a daemon that is not root runs the
 * command as itself (warned). *home is the user's home directory (malloc'd,
 * the caller's) when the command runs as that user, else NULL. -1 (logged)
 * when the user cannot be used. */
static int user_option(struct exec *x, char **home)
{
    const pp_collector_host *host = x->host;
    const char *user = host->option(host, "user");

    if (user && !*user) {
        host->log(host, PP_LOG_ERR, "user must not be empty");
        return -1;
    }
    if (user) {
        if (resolve_user(x, user, home) < 0)
            return -1;
        if (geteuid() == 0) {
            if (x->uid == 0) {
                host->log(host, PP_LOG_ERR, "refusing to run '%s' as root (user \"%s\" has "
                          "uid 0); set user = \"…\" in collector \"%s\" to an unprivileged "
                          "user", x->command, user, x->name);
                return -1;
            }
            x->switch_user = true;
        } else if (x->uid != geteuid()) {
            host->log(host, PP_LOG_WARN, "the daemon is not root: '%s' runs as uid %u, not as "
                      "user \"%s\"", x->command, (unsigned)geteuid(), user);
            free(*home);
            *home = NULL;
        }
    } else if (geteuid() == 0) {
        host->log(host, PP_LOG_ERR, "refusing to run '%s' as root; set user = \"…\" in "
                  "collector \"%s\"", x->command, x->name);
        return -1;
    }
    return 0;
}

/* Opens what every run uses: /dev/null for the child's stdin and the wake
 * pipe shutdown() writes to; notes the highest descriptor to close. -1
 * (logged) on failure. */
static int open_descriptors(struct exec *x)
{
    const pp_collector_host *host = x->host;

    x->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (x->devnull < 0) {
        host_log_errno(host, PP_LOG_ERR, errno, "cannot open /dev/null");
        return -1;
    }
    long maxfd = sysconf(_SC_OPEN_MAX);
    x->max_fd = maxfd > 0 && maxfd < INT_MAX ? (int)maxfd : 65536;
    if (pipe2(x->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        host_log_errno(host, PP_LOG_ERR, errno, "pipe2");
        return -1;
    }
    return 0;
}

static int exec_init(const pp_collector_host *host, void **state)
{
    struct exec *x = NULL;
    char *home = NULL;

    if (!host || !state || !host->log || !host->option || !host->submit_csv)
        return -1;
    *state = NULL;
    if (host->abi_version != PP_COLLECTOR_ABI_VERSION) {
        host->log(host, PP_LOG_ERR, "exec collector built for ABI %d, daemon has %d",
                  PP_COLLECTOR_ABI_VERSION, host->abi_version);
        return -1;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        host->log(host, PP_LOG_ERR, "out of memory");
        return -1;
    }
    x->host = host;
    x->name = host->name ? host->name : "exec";
    x->devnull = x->wake[0] = x->wake[1] = -1;
    atomic_init(&x->stop, 0);

    if (command_option(x) < 0 || timing_options(x) < 0 || user_option(x, &home) < 0 ||
        check_program(x) < 0)
        goto fail;
    if (build_env(x, home ? home : "/") < 0) {
        host->log(host, PP_LOG_ERR, "out of memory");
        goto fail;
    }
    if (open_descriptors(x) < 0)
        goto fail;
    free(home);
    *state = x;
    return 0;
fail:
    free(home);
    exec_destroy(x);
    return -1;
}

/* ---- the child ---------------------------------------------------------- */

/* Between fork() and execve(): async-signal-safe calls only. */
__attribute__((noreturn))
static void child_fail(int rep, int stage, int err)
{
    struct child_report r = { stage, err };
    ssize_t w;
    do
        w = write(rep, &r, sizeof r);
    while (w < 0 && errno == EINTR);
    _exit(stage == STAGE_EXEC ? 127 : 126);
}

/* Returns fd moved to a number >= 4 (so that dup2 to 0..3 cannot clobber it). */
static int child_high_fd(int fd)
{
    return fd >= 4 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 4);
}

__attribute__((noreturn))
static void child_exec(const struct exec *x, int in, int out, int err, int rep)
{
    struct sigaction sa;
    sigset_t none;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL);  /* EINVAL for SIGKILL, SIGSTOP, libc's own */
    /* glibc refuses its own real-time signals (32, 33), which an ignoring
     * parent passes on: reset them with the raw system call, which is
     * async-signal-safe like the rest. */
    struct { void *handler; unsigned long flags; void *restorer; unsigned long mask; } ksa;
    memset(&ksa, 0, sizeof ksa); /* SIG_DFL, no flags, empty mask */
    for (int sig = 32; sig < SIGRTMIN; sig++)
        (void)syscall(SYS_rt_sigaction, sig, &ksa, NULL, sizeof ksa.mask);

    if (setpgid(0, 0) < 0)
        child_fail(rep, STAGE_SETPGID, errno);

    rep = child_high_fd(rep);
    if (rep < 0)
        _exit(126);
    in = child_high_fd(in);
    out = child_high_fd(out);
    err = child_high_fd(err);
    if (in < 0 || out < 0 || err < 0)
        child_fail(rep, STAGE_FDS, errno);
    if (dup2(rep, 3) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
        child_fail(rep, STAGE_FDS, errno);
    rep = 3;
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        child_fail(rep, STAGE_FDS, errno);
    if (close_range(4, ~0U, 0) < 0) {
        for (int fd = 4; fd < x->max_fd; fd++)
            (void)close(fd);
    }

    if (x->switch_user) {
        if (setgroups((size_t)x->ngroups, x->groups) < 0)
            child_fail(rep, STAGE_SETGROUPS, errno);
        if (setresgid(x->gid, x->gid, x->gid) < 0)
            child_fail(rep, STAGE_SETGID, errno);
        if (setresuid(x->uid, x->uid, x->uid) < 0)
            child_fail(rep, STAGE_SETUID, errno);
        if (x->uid != 0 && setuid(0) == 0)  /* must be impossible now */
            child_fail(rep, STAGE_SETUID, EPERM);
    }
    if (chdir("/") < 0)
        child_fail(rep, STAGE_CHDIR, errno);

    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    execve(x->argv[0], x->argv, x->envp);
    child_fail(rep, STAGE_EXEC, errno);
}

static const char *stage_name(int stage)
{
    switch (stage) {
    case STAGE_SETPGID: return "setpgid";
    case STAGE_FDS: return "setting up descriptors";
    case STAGE_SETGROUPS: return "setgroups";
    case STAGE_SETGID: return "setgid";
    case STAGE_SETUID: return "setuid";
    case STAGE_CHDIR: return "chdir /";
    case STAGE_EXEC: return "execve";
    default: return "?";
    }
}

/* ---- the parent: starting, watching, killing ---------------------------- */

/*
 * Starts the command. Returns 0 with r->pid, r->out, r->err (and r->pidfd when
 * the kernel has pidfds) set, or -1 with the reason in why.
 */
static int spawn(struct exec *x, struct run *r, char *why, size_t whysz)
{
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
    sigset_t all, old;
    struct child_report cr;
    ssize_t got;
    pid_t pid;

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0 ||
        fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(err[0], F_SETFL, O_NONBLOCK) < 0) {
        format_errno(why, whysz, errno, "cannot create pipes");
        goto fail;
    }
    /* No signal handler may run in the child before it resets them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(x, x->devnull, out[1], err[1], rep[1]);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close_fd(&out[1]);
    close_fd(&err[1]);
    close_fd(&rep[1]);
    if (pid < 0) {
        format_errno(why, whysz, fork_errno, "cannot fork");
        goto fail;
    }
    (void)setpgid(pid, pid);  /* the child did it too; whoever is first wins */

    /* The report pipe closes on a successful execve, or carries why it failed. */
    do
        got = read(rep[0], &cr, sizeof cr);
    while (got < 0 && errno == EINTR);
    close_fd(&rep[0]);
    if (got != 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (got == (ssize_t)sizeof cr)
            format_errno(why, whysz, cr.err, "cannot start '%s': %s", x->command,
                         stage_name(cr.stage));
        else
            snprintf(why, whysz, "cannot start '%s'", x->command);
        goto fail;
    }
    r->pid = pid;
    r->out = out[0];
    r->err = err[0];
#ifdef SYS_pidfd_open
    r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (r->pidfd >= 0)
        (void)fcntl(r->pidfd, F_SETFD, FD_CLOEXEC);
#else
    r->pidfd = -1;
#endif
    return 0;
fail:
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    close_fd(&rep[0]);
    close_fd(&rep[1]);
    return -1;
}

/* Sends SIGTERM to the group; SIGKILL follows after grace_ms. */
static void start_kill(struct run *r, enum kill_reason why, int64_t grace_ms)
{
    if (r->killing != KILL_NONE)
        return;
    r->killing = why;
    if (kill(-r->pid, SIGTERM) < 0)
        (void)kill(r->pid, SIGTERM);  /* cannot happen: the child made the group */
    r->deadline = mono_ms() + grace_ms;
}

/* Notes whether the child exited, leaving it a zombie (its pgid stays reserved). */
static void check_exit(struct run *r)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
        if (si.si_pid == r->pid)
            r->exited = true;
    } else if (errno == ECHILD) {
        r->exited = true;  /* reaped behind our back (SIGCHLD ignored) */
    }
}

/* Replaces control characters so a line cannot forge log lines. */
static void sanitize(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            s[i] = '?';
}

static void flush_err_line(struct exec *x, struct run *r)
{
    size_t len = r->line_len;
    if (len > 0 && r->line[len - 1] == '\r')
        len--;
    if (r->err_lines < EXEC_ERR_LINES) {
        sanitize(r->line, len);
        x->host->log(x->host, PP_LOG_WARN, "stderr: %.*s%s", (int)len, r->line,
                     r->line_cut ? " […]" : "");
        r->err_lines++;
    } else {
        r->err_dropped++;
    }
    r->line_len = 0;
    r->line_cut = false;
}

/* Splits what the command wrote to stderr into logged lines. */
static void take_stderr(struct exec *x, struct run *r, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            flush_err_line(x, r);
        } else if (r->line_len < EXEC_ERR_LINE) {
            r->line[r->line_len++] = p[i];
        } else {
            r->line_cut = true;
        }
    }
}

/*
 * Reads what is available on a pipe, at most EXEC_DRAIN_READS chunks so that
 * a command writing without pause cannot keep us from its deadline; false at
 * EOF or on an error.
 */
static bool drain(struct exec *x, struct run *r, bool is_out)
{
    char chunk[EXEC_READ_CHUNK];
    for (int reads = 0; reads < EXEC_DRAIN_READS; reads++) {
        char *dst = chunk;
        size_t room = sizeof chunk;
        if (is_out && !r->overflow) {
            /* straight into the output buffer, one byte past max_output at most */
            if (r->cap - r->len < EXEC_READ_CHUNK && r->cap < x->max_output + 1) {
                size_t ncap = r->cap ? r->cap * 2 : EXEC_READ_CHUNK;
                if (ncap < r->len + EXEC_READ_CHUNK)
                    ncap = r->len + EXEC_READ_CHUNK;
                if (ncap > x->max_output + 1)
                    ncap = x->max_output + 1;
                char *nb = realloc(r->buf, ncap);
                if (!nb) {
                    snprintf(r->error, sizeof r->error, "out of memory reading the output");
                    r->overflow = true;
                    start_kill(r, KILL_ERROR, (int64_t)x->grace * 1000);
                    continue;
                }
                r->buf = nb;
                r->cap = ncap;
            }
            dst = r->buf + r->len;
            room = r->cap - r->len;
        }
        ssize_t got = read(is_out ? r->out : r->err, dst, room);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true;
            format_errno(r->error, sizeof r->error, errno, "reading the command's %s",
                         is_out ? "output" : "standard error");
            start_kill(r, KILL_ERROR, (int64_t)x->grace * 1000);
            return false;
        }
        if (got == 0)
            return false;
        if (!is_out) {
            take_stderr(x, r, chunk, (size_t)got);
        } else if (!r->overflow) {
            r->len += (size_t)got;
            if (r->len > x->max_output) {
                r->overflow = true;
                start_kill(r, KILL_OVERFLOW, (int64_t)x->grace * 1000);
            }
        }
        /* past max_output the rest is read and dropped, so the child is not stuck */
    }
    return true;
}

/*
 * Waits for the command: until it exited and closed both pipes, or until it
 * was killed (timeout, too much output, shutdown). Then reaps it and closes
 * everything. Returns the wait status, or -1 when it is unknown.
 */
static int watch(struct exec *x, struct run *r)
{
    int64_t grace_ms = (int64_t)x->grace * 1000;
    bool stop_seen = false;

    r->deadline = mono_ms() + (int64_t)x->timeout * 1000;
    for (;;) {
        if (r->exited && r->out_eof && r->err_eof)
            break;
        int64_t now = mono_ms();
        if (atomic_load(&x->stop) && !stop_seen) {
            stop_seen = true;
            int64_t g = grace_ms < EXEC_SHUTDOWN_GRACE_MS ? grace_ms : EXEC_SHUTDOWN_GRACE_MS;
            if (r->killing == KILL_NONE)
                start_kill(r, KILL_SHUTDOWN, g);
            else if (r->deadline > now + g)
                r->deadline = now + g;
        }
        if (now >= r->deadline) {
            if (r->killing != KILL_NONE)
                break;  /* grace is over */
            start_kill(r, KILL_TIMEOUT, grace_ms);
            continue;
        }

        struct pollfd pfd[4];
        int n = 0, iout = -1, ierr = -1, ipid = -1;
        if (!stop_seen) {  /* readable once shutdown() ran; the flag says the rest */
            pfd[n++] = (struct pollfd){ .fd = x->wake[0], .events = POLLIN };
        }
        if (!r->out_eof) {
            iout = n;
            pfd[n++] = (struct pollfd){ .fd = r->out, .events = POLLIN };
        }
        if (!r->err_eof) {
            ierr = n;
            pfd[n++] = (struct pollfd){ .fd = r->err, .events = POLLIN };
        }
        if (!r->exited && r->pidfd >= 0) {
            ipid = n;
            pfd[n++] = (struct pollfd){ .fd = r->pidfd, .events = POLLIN };
        }
        int64_t wait = r->deadline - now;
        if (!r->exited && r->pidfd < 0 && wait > EXEC_TICK_MS)
            wait = EXEC_TICK_MS;
        if (wait > INT_MAX)
            wait = INT_MAX;
        int ready = poll(pfd, (nfds_t)n, (int)wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            format_errno(r->error, sizeof r->error, errno, "poll");
            start_kill(r, KILL_ERROR, 0);
            break;
        }
        if (iout >= 0 && pfd[iout].revents)
            r->out_eof = !drain(x, r, true);
        if (ierr >= 0 && pfd[ierr].revents)
            r->err_eof = !drain(x, r, false);
        if (ipid >= 0 ? pfd[ipid].revents != 0 : !r->exited)
            check_exit(r);
    }

    /* The leader is dead or a zombie holding the group id: no reuse race here. */
    if (kill(-r->pid, SIGKILL) < 0)
        (void)kill(r->pid, SIGKILL);
    int status, rc;
    do
        rc = waitpid(r->pid, &status, 0);
    while (rc < 0 && errno == EINTR);
    if (r->line_len > 0 || r->line_cut)
        flush_err_line(x, r);
    if (r->err_dropped)
        x->host->log(x->host, PP_LOG_WARN, "stderr: … %u more lines not logged",
                     r->err_dropped);
    close_fd(&r->out);
    close_fd(&r->err);
    close_fd(&r->pidfd);
    return rc == r->pid ? status : -1;
}

/* Logs the daemon's report on refused output, one line each, at most 20. */
static void log_report(struct exec *x, const char *report)
{
    size_t total = count_lines(report), shown = 0;
    for (const char *p = report; p && *p && shown < EXEC_REPORT_LINES;) {
        size_t len = strcspn(p, "\n");
        size_t show = len;
        if (show > 0 && p[show - 1] == '\r')
            show--;
        if (show > 0) {
            x->host->log(x->host, PP_LOG_WARN, "%.*s", (int)(show > 4096 ? 4096 : show), p);
            shown++;
        }
        p += len + (p[len] == '\n');
    }
    if (total > shown)
        x->host->log(x->host, PP_LOG_WARN, "… and %zu more", total - shown);
}

/* Hands the output of a successful run to the daemon. */
static void submit(struct exec *x, unsigned long run, const char *data, size_t len)
{
    char source[256], *report = NULL;
    snprintf(source, sizeof source, "%s:run-%lu", x->name, run);
    int rc = x->host->submit_csv(x->host, source, data, len, &report);
    if (rc == PP_SUBMIT_OK) {
        x->host->log(x->host, PP_LOG_INFO, "run %lu: ingested %zu bytes", run, len);
    } else if (rc == PP_SUBMIT_REFUSED) {
        size_t n = count_lines(report);
        x->host->log(x->host, PP_LOG_WARN, "run %lu: output of '%s' refused (%zu bad row%s); "
                     "nothing of it was taken", run, x->command, n, n == 1 ? "" : "s");
        log_report(x, report);
    } else {
        const char *r = report ? report : "";
        int rlen = (int)strcspn(r, "\n");
        x->host->log(x->host, PP_LOG_WARN, "run %lu: could not ingest the output now%s%.*s; "
                     "running again in %u s", run, rlen ? ": " : "", rlen, r, x->interval);
    }
    free(report);
}

/* Runs the command once; on RUN_FAILED the reason is in why. */
static enum outcome run_once(struct exec *x, unsigned long run, char *why, size_t whysz)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.out = r.err = r.pidfd = -1;

    if (spawn(x, &r, why, whysz) < 0)
        return RUN_FAILED;
    x->host->log(x->host, PP_LOG_DEBUG, "run %lu: started '%s' (pid %ld)", run, x->command,
                 (long)r.pid);
    int status = watch(x, &r);
    enum outcome res = RUN_FAILED;

    switch (r.killing) {
    case KILL_SHUTDOWN:
        x->host->log(x->host, PP_LOG_INFO, "run %lu: stopping; killed '%s'", run, x->command);
        res = RUN_STOPPED;
        break;
    case KILL_TIMEOUT:
        snprintf(why, whysz, "timed out after %us; killed", x->timeout);
        break;
    case KILL_OVERFLOW:
        snprintf(why, whysz, "output exceeded max_output (%zu bytes); killed", x->max_output);
        break;
    case KILL_ERROR:
        snprintf(why, whysz, "%s; killed", r.error);
        break;
    case KILL_NONE:
        if (status == -1) {
            snprintf(why, whysz, "exit status unknown (was it reaped elsewhere?)");
        } else if (WIFSIGNALED(status)) {
            snprintf(why, whysz, "killed by signal %d", WTERMSIG(status));
        } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
            snprintf(why, whysz, "exited with status %d", WEXITSTATUS(status));
        } else if (r.len == 0) {
            x->host->log(x->host, PP_LOG_INFO, "run %lu: no output; nothing to ingest", run);
            res = RUN_OK;
        } else {
            submit(x, run, r.buf, r.len);
            res = RUN_OK;
        }
        break;
    }
    free(r.buf);
    return res;
}

/* Waits until `when` (monotonic ms); false when shutdown() asked to stop. */
static bool sleep_until(struct exec *x, int64_t when)
{
    while (!atomic_load(&x->stop)) {
        int64_t wait = when - mono_ms();
        if (wait <= 0)
            return true;
        struct pollfd pfd = { .fd = x->wake[0], .events = POLLIN };
        int n = poll(&pfd, 1, wait > 3600000 ? 3600000 : (int)wait);
        if (n < 0 && errno != EINTR) {
            host_log_errno(x->host, PP_LOG_ERR, errno, "poll");
            return false;
        }
        if (n > 0)
            return false;
    }
    return false;
}

/* Seconds to wait after `failures` failed runs in a row. */
static unsigned long long backoff(const struct exec *x, unsigned failures)
{
    unsigned long long d = x->interval;
    for (unsigned i = 1; i < failures && d < x->backoff_max; i++)
        d *= 2;
    if (d > x->backoff_max)
        d = x->backoff_max;
    return d < x->interval ? x->interval : d;
}

static int exec_run(void *state)
{
    struct exec *x = state;
    char why[512];

    x->host->log(x->host, PP_LOG_INFO, "running '%s' every %u s (timeout %u s)", x->command,
                 x->interval, x->timeout);
    while (!atomic_load(&x->stop)) {
        int64_t start = mono_ms();
        unsigned long run = ++x->runs;
        unsigned long long delay = x->interval;
        why[0] = 0;
        enum outcome res = run_once(x, run, why, sizeof why);
        if (res == RUN_STOPPED)
            break;
        if (res == RUN_FAILED) {
            x->failures++;
            delay = backoff(x, x->failures);
            x->host->log(x->host, PP_LOG_ERR, "run %lu: %s; next attempt in %llu s", run, why,
                         delay);
        } else {
            x->failures = 0;
        }
        if (!sleep_until(x, start + (int64_t)delay * 1000))
            break;
    }
    return 0;
}

PP_COLLECTOR_EXPORT(exec);
