/*
 * check_exec.c — Check suite for the `exec` collector plugin (collectors/exec.c).
 *
 * The plugin is loaded the way the daemon loads it: dlopen() of the shared
 * object named by $EXEC_SO (default $BUILD/collectors/exec.so, or
 * build/collectors/exec.so), then dlsym("parkpulse_collector"). The fake host
 * of tests/fake_host.h (shared with check_spool) serves options from a small
 * table, records submit_csv() calls and log lines, and answers submissions by
 * their content: "BAD" (one report line per occurrence) is refused, "RETRY"
 * is a temporary error, anything else is OK.
 *
 * Each test writes small /bin/sh scripts into a fresh mkdtemp() directory
 * (mode 0755, so that `nobody` can run them) and passes them an output
 * directory (mode 0777) as their first argument, where they leave what the
 * test inspects: their pid (= their process group), timestamps, `env`,
 * /proc/self/fd. As root (the usual case here) every instance runs its
 * command as user "nobody", since the plugin refuses to run commands as root.
 * run() runs in a thread; results are polled every 20 ms with a 10 s deadline.
 * The test process is a child subreaper, so the processes a killed command
 * leaves behind come to it and it can check that none of them survived.
 */
#define FAKE_PLUGIN "exec"
#define FAKE_VERBOSE_ENV "EXEC_TEST_VERBOSE"
#define DEADLINE_MS 10000

#include "fake_host.h"
#include "check_main.h"

#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

static size_t ncalls(struct fake *f) { return fake_calls(f, NULL, NULL); }

/* ---- fixture: the plugin, a temporary directory, scripts ------------------ */

static char g_out[PATH_MAX + 8];

static void setup(void)
{
    fake_plugin_open();
    ck_assert_int_eq(chmod(g_tmp, 0755), 0);
    snprintf(g_out, sizeof g_out, "%s/out", g_tmp);
    ck_assert_int_eq(mkdir(g_out, 0777), 0);
    ck_assert_int_eq(chmod(g_out, 0777), 0);  /* whatever the umask */
    /* Orphans of killed commands come to us, so we can reap and count them. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
}

static void teardown(void) { fake_plugin_close(); }

/*
 * Writes <tmp>/<name> as a /bin/sh script with body and returns the command
 * line that runs it with the output directory as $1 (static buffer).
 */
static const char *script(const char *name, const char *body)
{
    static char cmd[2][PATH_MAX + 64];
    static unsigned next;
    char text[8192];
    int n = snprintf(text, sizeof text, "#!/bin/sh\nOUT=\"$1\"\n%s", body);
    ck_assert(n > 0 && (size_t)n < sizeof text);
    fake_write(tp("%s", name), text, 0755);
    char *c = cmd[next++ % 2];
    snprintf(c, sizeof cmd[0], "%s %s", tp("%s", name), g_out);
    return c;
}

/* Lines of a file (the file written completely: ends with "\n"). */
static size_t count_file_lines(const char *path)
{
    char *s = slurp(path);
    size_t n = 0;
    for (char *p = s; p && *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* A number a script wrote into a file, or -1. */
static long read_number(const char *path)
{
    char *s = slurp(path);
    long v = -1;
    if (s && strchr(s, '\n'))
        v = strtol(s, NULL, 10);
    free(s);
    return v;
}

/* Reaps our zombie adoptees in group pgid (not its leader: the plugin's). */
static void reap_adopted(pid_t pgid)
{
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[64], buf[512];
        pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
        if (pid <= 0 || pid == pgid)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *fp = fopen(path, "re");
        if (!fp)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            ppid == getpid() && state == 'Z')
            (void)waitpid(pid, NULL, WNOHANG);
    }
    closedir(d);
}

/* True when no process (not even a zombie) is left in process group pgid. */
static bool group_gone(pid_t pgid)
{
    reap_adopted(pgid);
    return kill(-pgid, 0) == -1 && errno == ESRCH;
}

/* Commands run as nobody when we are root; as ourselves otherwise. */
static void set_user(struct fake *f)
{
    if (geteuid() == 0)
        fake_set(f, "user", "nobody");
}

/* A collector instance called name that runs command as the test's user. */
static void fake_command(struct fake *f, const char *name, const char *command)
{
    fake_init(f, name);
    fake_set(f, "command", command);
    set_user(f);
}

static uid_t child_uid(void)
{
    if (geteuid() != 0)
        return geteuid();
    struct passwd *pw = getpwnam("nobody");
    ck_assert_ptr_nonnull(pw);
    return pw->pw_uid;
}

/* ---- init: option checking ------------------------------------------------ */

static const struct init_case {
    const char *command;    /* "@ok" = an executable script, "@noexec" = a 0644 file */
    const char *key, *val;  /* one more option, or NULL */
    int want;
    const char *log;        /* expected in a log line when want is -1 */
} init_cases[] = {
    { NULL, NULL, NULL, -1, "command" },
    { "", NULL, NULL, -1, "command" },
    { "   ", NULL, NULL, -1, "empty" },
    { "ok.sh", NULL, NULL, -1, "absolute" },
    { "./ok.sh", NULL, NULL, -1, "absolute" },
    { "bin/sh -c true", NULL, NULL, -1, "absolute" },
    { "/no/such/program", NULL, NULL, -1, "/no/such/program" },
    { "@noexec", NULL, NULL, -1, "not executable" },
    { "/tmp", NULL, NULL, -1, "not a regular file" },
    { "@ok \"unterminated", NULL, NULL, -1, "unterminated" },
    { "@ok", "interval", "0", -1, "interval" },
    { "@ok", "interval", "abc", -1, "interval" },
    { "@ok", "interval", "-1", -1, "interval" },
    { "@ok", "interval", "10s", -1, "interval" },
    { "@ok", "interval", "", -1, "interval" },
    { "@ok", "interval", "31536001", -1, "interval" },
    { "@ok", "interval", "99999999999999999999999", -1, "interval" },
    { "@ok", "timeout", "0", -1, "timeout" },
    { "@ok", "timeout", "86401", -1, "timeout" },
    { "@ok", "timeout", "1.5", -1, "timeout" },
    { "@ok", "grace", "-1", -1, "grace" },
    { "@ok", "grace", "301", -1, "grace" },
    { "@ok", "max_output", "0", -1, "max_output" },
    { "@ok", "max_output", "2G", -1, "max_output" },
    { "@ok", "max_output", "16MB", -1, "max_output" },
    { "@ok", "backoff_max", "0", -1, "backoff_max" },
    { "@ok", "backoff_max", "x", -1, "backoff_max" },
    { "@ok", "user", "no-such-user-pp", -1, "no-such-user-pp" },
    { "@ok", "user", "", -1, "user" },
    { "@ok", NULL, NULL, 0, NULL },
    { "@ok a \"b c\" d", NULL, NULL, 0, NULL },
    { "@ok", "interval", "1", 0, NULL },
    { "@ok", "interval", "31536000", 0, NULL },
    { "@ok", "timeout", "86400", 0, NULL },
    { "@ok", "grace", "0", 0, NULL },
    { "@ok", "max_output", "64k", 0, NULL },
    { "@ok", "max_output", "1G", 0, NULL },
    { "@ok", "backoff_max", "1", 0, NULL },  /* below interval: interval is the floor */
};

START_TEST(test_init_options)
{
    const struct init_case *c = &init_cases[_i];
    struct fake f;
    char cmd[PATH_MAX + 64];

    fake_write(tp("ok.sh"), "#!/bin/sh\nexit 0\n", 0755);
    fake_write(tp("noexec.sh"), "#!/bin/sh\nexit 0\n", 0644);
    fake_init(&f, "t");
    if (c->command) {
        if (strncmp(c->command, "@ok", 3) == 0)
            snprintf(cmd, sizeof cmd, "%s%s", tp("ok.sh"), c->command + 3);
        else if (strcmp(c->command, "@noexec") == 0)
            snprintf(cmd, sizeof cmd, "%s", tp("noexec.sh"));
        else
            snprintf(cmd, sizeof cmd, "%s", c->command);
        fake_set(&f, "command", cmd);
    }
    if (c->key)
        fake_set(&f, c->key, c->val);
    if (!c->key || strcmp(c->key, "user") != 0)
        set_user(&f);

    fake_check_init(&f, _i, c->want, c->log, NULL);
}
END_TEST

/* Not root: nothing to refuse (added only when not root). */
START_TEST(test_not_root_nothing_to_refuse)
{
    struct fake f;
    void *state = NULL;

    fake_write(tp("ok.sh"), "#!/bin/sh\nexit 0\n", 0755);
    fake_init(&f, "bureau");
    fake_set(&f, "command", tp("ok.sh"));
    int rc = g_def->init(&f.host, &state);
    ck_assert_int_eq(rc, 0);
    g_def->destroy(state);
    fake_free(&f);
}
END_TEST

/* Root: the plugin refuses to run a command as root (added only as root;
 * elsewhere reported as a SKIP). */
START_TEST(test_refuses_root)
{
    struct fake f;
    void *state = NULL;
    char want[PATH_MAX + 128];

    ck_assert_int_eq(geteuid(), 0);
    fake_write(tp("ok.sh"), "#!/bin/sh\nexit 0\n", 0755);
    fake_init(&f, "bureau");
    fake_set(&f, "command", tp("ok.sh"));
    int rc = g_def->init(&f.host, &state);
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_null(state);
    snprintf(want, sizeof want,
             "refusing to run '%s' as root; set user = \"…\" in collector \"bureau\"",
             tp("ok.sh"));
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, want), 1);
    fake_free(&f);

    /* a user that is root is no better */
    fake_init(&f, "bureau");
    fake_set(&f, "command", tp("ok.sh"));
    fake_set(&f, "user", "root");
    ck_assert_int_eq(g_def->init(&f.host, &state), -1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "refusing to run"), 1);
    fake_free(&f);
}
END_TEST

/* ---- running ------------------------------------------------------------- */

static const char csv_a[] =
    "park,indicator,period,value,unit,source\n"
    "xiangtan-etdz,fixed_asset_investment,2021-02,41.3,亿元,illustrative\n"
    "xiangtan-etdz,fixed_asset_investment,2021-03,66.8,亿元,illustrative\n";
static const char csv_b[] =
    "园区,指标,年度,目标\r\n"
    "xiangtan-etdz,固定资产投资,2021,300\r\n";

START_TEST(test_output_submitted)
{
    struct fake fa, fb;
    char body[1024];

    /* two instances at once: each its own command, output and run numbers */
    snprintf(body, sizeof body, "echo run >> \"$OUT/a.runs\"\ncat <<'EOF'\n%sEOF\n", csv_a);
    fake_command(&fa, "bureau", script("a.sh", body));
    fake_set(&fa, "interval", "1");
    snprintf(body, sizeof body, "printf '%s'\n", csv_b);
    fake_command(&fb, "targets", script("b.sh", body));
    fake_set(&fb, "interval", "1");
    start(&fa);
    start(&fb);

    WAIT_FOR(ncalls(&fa) >= 2 && ncalls(&fb) >= 2, "two runs of each");
    pthread_mutex_lock(&fa.mu);
    ck_assert_str_eq(fa.calls[0].source, "bureau:run-1");
    ck_assert_str_eq(fa.calls[1].source, "bureau:run-2");
    ck_assert_uint_eq(fa.calls[0].len, strlen(csv_a));
    ck_assert(memcmp(fa.calls[0].data, csv_a, strlen(csv_a)) == 0);
    ck_assert_str_eq(fa.calls[1].data, csv_a);
    pthread_mutex_unlock(&fa.mu);
    pthread_mutex_lock(&fb.mu);
    ck_assert_str_eq(fb.calls[0].source, "targets:run-1");
    ck_assert_str_eq(fb.calls[0].data, csv_b);
    pthread_mutex_unlock(&fb.mu);
    char want[64];
    snprintf(want, sizeof want, "run 1: ingested %zu bytes", strlen(csv_a));
    WAIT_FOR(logs_with(&fa, PP_LOG_INFO, want) == 1, want);
    ck_assert_uint_eq(logs_with(&fa, PP_LOG_ERR, ""), 0);

    /* about one run per interval, not more */
    ck_assert_int_lt(stop(&fa), 1000);
    ck_assert_int_lt(stop(&fb), 1000);
    size_t runs = count_file_lines(tp("out/a.runs"));
    ck_assert_uint_ge(runs, 2);
    ck_assert_uint_le(runs, 4);
    fake_free(&fa);
    fake_free(&fb);
}
END_TEST

START_TEST(test_arguments)
{
    struct fake f;
    char cmd[PATH_MAX + 128];

    /* prints each argument after $1 on its own line, between brackets */
    const char *base =
        script("args.sh", "shift\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n");
    snprintf(cmd, sizeof cmd, "%s  plain \"with space\"  \"\" \"q\\\"uo\\\\te\" a\"b c\"d",
             base);
    fake_command(&f, "t", cmd);
    start(&f);
    WAIT_FOR(ncalls(&f) == 1, "the run");
    pthread_mutex_lock(&f.mu);
    ck_assert_str_eq(f.calls[0].data, "[plain]\n[with space]\n[]\n[q\"uo\\te]\n[ab cd]\n");
    pthread_mutex_unlock(&f.mu);
    stop_free(&f);
}
END_TEST

START_TEST(test_stderr_logged)
{
    struct fake f;
    fake_command(&f, "t", script("err.sh",
        "echo 'warning: 2 parks missing' >&2\n"
        "printf 'second line\\r\\n' >&2\n"
        "printf 'bell\\007 and esc\\033[31m\\n' >&2\n"
        "head -c 3000 /dev/zero | tr '\\0' x >&2; echo >&2\n"
        "echo 'park,indicator,period,value'\n"
        "printf 'no newline at the end' >&2\n"));
    start(&f);
    WAIT_FOR(ncalls(&f) == 1, "the run");
    WAIT_FOR(logs_with(&f, -1, "ingested") == 1, "ingested");
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: warning: 2 parks missing"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: second line"), 1);
    ck_assert_uint_eq(logs_with(&f, -1, "second line\r"), 0);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: bell? and esc?[31m"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: no newline at the end"), 1);
    /* a long line is cut, not split into many */
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: xxxxxxxxxx"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "[…]"), 1);
    pthread_mutex_lock(&f.mu);
    for (size_t i = 0; i < f.nlogs; i++)
        ck_assert_uint_lt(strlen(f.logs[i]), 1100);
    ck_assert_str_eq(f.calls[0].data, "park,indicator,period,value\n");
    pthread_mutex_unlock(&f.mu);
    stop_free(&f);
}
END_TEST

START_TEST(test_stderr_flood)
{
    struct fake f;
    fake_command(&f, "t", script("flood.sh", "seq 1 1000 >&2\n"));
    start(&f);
    WAIT_FOR(logs_with(&f, -1, "no output") == 1, "the run");
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: "), 201);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "stderr: … 800 more lines not logged"), 1);
    ck_assert_uint_eq(ncalls(&f), 0);
    stop_free(&f);
}
END_TEST

/* Reads the timestamps (seconds, one a line) a script appended to path. */
static size_t read_times(const char *path, double *t, size_t max)
{
    char *s = slurp(path);
    size_t n = 0;
    for (char *p = s; p && *p && n < max;) {
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        t[n++] = strtod(p, NULL);
        p = nl + 1;
    }
    free(s);
    return n;
}

START_TEST(test_failure_backoff)
{
    struct fake f;
    double t[8];

    /* fails with status 3 until the test creates $OUT/ok; interval 1, back-off ≤ 2 */
    fake_command(&f, "t", script("fail.sh",
        "[ -e \"$OUT/ok\" ] && ok=1\n"  /* before the timestamp the test waits for */
        "date +%s.%N >> \"$OUT/times\"\n"
        "if [ \"$ok\" ]; then echo 'park,indicator,period,value'; exit 0; fi\n"
        "echo 'cannot reach the bureau' >&2\n"
        "exit 3\n"));
    fake_set(&f, "interval", "1");
    fake_set(&f, "backoff_max", "2");
    start(&f);

    WAIT_FOR(count_file_lines(tp("out/times")) >= 3, "three attempts");
    fake_write(tp("out/ok"), "", 0644);
    WAIT_FOR(count_file_lines(tp("out/times")) >= 5, "five attempts");
    ck_assert_int_lt(stop(&f), 1000);

    size_t n = read_times(tp("out/times"), t, 8);
    ck_assert_uint_ge(n, 5);
    double g1 = t[1] - t[0], g2 = t[2] - t[1], g3 = t[3] - t[2], g4 = t[4] - t[3];
    /* 1, 2, 2 (capped), then success at attempt 4 resets: 1 */
    ck_assert_msg(g1 > 0.8 && g1 < 1.7, "gap 1 = %.2f", g1);
    ck_assert_msg(g2 > g1 * 1.5, "gap 2 = %.2f, gap 1 = %.2f", g2, g1);
    ck_assert_msg(g3 > 1.8 && g3 < 2.9, "gap 3 = %.2f (back-off_max 2)", g3);
    ck_assert_msg(g4 > 0.8 && g4 < 1.7, "gap 4 = %.2f (reset by a success)", g4);

    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "run 1: exited with status 3; next attempt "
                                "in 1 s"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "run 2: exited with status 3; next attempt "
                                "in 2 s"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "run 3: exited with status 3; next attempt "
                                "in 2 s"), 1);
    ck_assert_uint_ge(logs_with(&f, PP_LOG_WARN, "stderr: cannot reach the bureau"), 3);
    ck_assert_uint_ge(ncalls(&f), 1);
    pthread_mutex_lock(&f.mu);
    ck_assert_str_eq(f.calls[0].source, "t:run-4");
    pthread_mutex_unlock(&f.mu);
    fake_free(&f);
}
END_TEST

START_TEST(test_killed_by_signal)
{
    struct fake f;
    fake_command(&f, "t", script("sig.sh", "echo 'park,indicator,period,value'\nkill -9 $$\n"));
    start(&f);
    WAIT_FOR(logs_with(&f, PP_LOG_ERR, "run 1: killed by signal 9") == 1, "the signal");
    ck_assert_uint_eq(ncalls(&f), 0);  /* partial output of a failed run is not taken */
    stop_free(&f);
}
END_TEST

START_TEST(test_cannot_exec)
{
    struct fake f;
    fake_write(tp("badinterp.sh"), "#!/no/such/interpreter\n", 0755);
    fake_command(&f, "t", tp("badinterp.sh"));
    start(&f);
    WAIT_FOR(logs_with(&f, PP_LOG_ERR, "execve: No such file or directory") == 1, "the error");
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "run 1: cannot start"), 1);
    ck_assert_uint_eq(ncalls(&f), 0);
    stop_free(&f);
}
END_TEST

START_TEST(test_timeout)
{
    struct fake fs, fg;

    /* a plain program that hangs: SIGTERM ends it */
    fake_command(&fs, "sleeper", "/bin/sleep 1000");
    fake_set(&fs, "interval", "1");
    fake_set(&fs, "timeout", "1");
    fake_set(&fs, "grace", "1");

    /* a script that ignores SIGTERM, with children holding its pipes: SIGKILL */
    fake_command(&fg, "group", script("hang.sh",
        "trap '' TERM\n"
        "echo $$ > \"$OUT/pid.tmp\"; mv \"$OUT/pid.tmp\" \"$OUT/pid\"\n"
        "echo \"$$\" >> \"$OUT/runs\"\n"
        "echo 'park,indicator,period,value'\n"
        "sleep 1000 &\n"
        "sleep 1000 &\n"
        "wait\n"));
    fake_set(&fg, "interval", "1");
    fake_set(&fg, "timeout", "1");
    fake_set(&fg, "grace", "1");

    /* ignores SIGTERM and floods its standard error: still killed in time */
    struct fake fn;
    fake_command(&fn, "noisy", script("noisy.sh", "trap '' TERM\nexec yes noise >&2\n"));
    fake_set(&fn, "timeout", "1");
    fake_set(&fn, "grace", "1");

    int64_t t0 = now_ms();
    start(&fs);
    start(&fg);
    start(&fn);
    WAIT_FOR(read_number(tp("out/pid")) > 0, "the script's pid");
    pid_t pgid = (pid_t)read_number(tp("out/pid"));
    ck_assert_int_eq(getpgid(pgid), pgid);  /* its own process group */
    ck_assert_int_ne(getpgid(pgid), getpgid(0));

    WAIT_FOR(logs_with(&fg, PP_LOG_ERR, "run 1: timed out after 1s; killed") == 1,
             "the timeout of the script");
    int64_t took = now_ms() - t0;
    ck_assert_msg(took >= 1900, "killed after %lld ms: TERM was ignored, grace is 1 s",
                  (long long)took);
    WAIT_FOR(group_gone(pgid), "the whole group to be gone");
    ck_assert_uint_eq(ncalls(&fg), 0);

    WAIT_FOR(logs_with(&fs, PP_LOG_ERR, "run 1: timed out after 1s; killed") == 1,
             "the timeout of sleep");

    WAIT_FOR(logs_with(&fn, PP_LOG_ERR, "run 1: timed out after 1s; killed") == 1,
             "the timeout of the noisy command");
    ck_assert_uint_eq(logs_with(&fn, PP_LOG_WARN, "stderr: noise"), 200);
    ck_assert_uint_eq(logs_with(&fn, PP_LOG_WARN, "more lines not logged"), 1);
    ck_assert_int_lt(stop(&fn), 1000);
    fake_free(&fn);

    /* and both keep running: the next runs come */
    WAIT_FOR(count_file_lines(tp("out/runs")) >= 2, "the next run of the script");
    WAIT_FOR(logs_with(&fs, PP_LOG_ERR, "run 2: timed out") == 1, "the next run of sleep");
    ck_assert_int_lt(stop(&fs), 3000);
    ck_assert_int_lt(stop(&fg), 3000);

    /* nothing of either is left */
    char *runs = slurp(tp("out/runs"));
    ck_assert_ptr_nonnull(runs);
    for (char *p = runs; *p;) {
        pid_t pg = (pid_t)strtol(p, &p, 10);
        while (*p == '\n')
            p++;
        WAIT_FOR(group_gone(pg), "every run's group to be gone");
    }
    free(runs);
    fake_free(&fs);
    fake_free(&fg);
}
END_TEST

/* True when every line of text is one of the allowed lines. */
static void assert_env(const char *text, const char *home, const char *name)
{
    char want_home[PATH_MAX + 8], want_name[128];
    snprintf(want_home, sizeof want_home, "HOME=%s", home);
    snprintf(want_name, sizeof want_name, "PARKPULSE_COLLECTOR=%s", name);
    const char *need[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", want_home,
                           want_name };
    bool seen[4] = { false };
    char *copy = strdup(text), *save = NULL;
    ck_assert_ptr_nonnull(copy);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool known = false;
        for (int i = 0; i < 4; i++)
            if (strcmp(line, need[i]) == 0)
                known = seen[i] = true;
        /* what the shell itself adds */
        known = known || strncmp(line, "PWD=", 4) == 0 || strncmp(line, "SHLVL=", 6) == 0 ||
                strncmp(line, "_=", 2) == 0 || strncmp(line, "OLDPWD=", 7) == 0;
        ck_assert_msg(known, "unexpected variable in the environment: %s", line);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_msg(seen[i], "%s missing from the environment", need[i]);
    free(copy);
}

START_TEST(test_child_setup)
{
    struct fake f;

    /* What the daemon's process is like: secrets in the environment, a
     * descriptor without FD_CLOEXEC, blocked and ignored signals. */
    ck_assert_int_eq(setenv("PP_SECRET_TOKEN", "hunter2", 1), 0);
    int leak = open("/dev/null", O_RDONLY);  /* no O_CLOEXEC on purpose */
    ck_assert_int_ge(leak, 0);
    int lp[2];
    ck_assert_int_eq(pipe(lp), 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, &old), 0);  /* run() inherits it */

    fake_command(&f, "bureau", script("setup.sh",
        "env > \"$OUT/env\"\n"
        "ls /proc/self/fd > \"$OUT/fds\"\n"
        "readlink /proc/self/fd/0 > \"$OUT/stdin\"\n"
        "id -u > \"$OUT/uid\"\n"
        "pwd > \"$OUT/cwd\"\n"
        "grep -E '^Sig(Blk|Ign)' /proc/self/status > \"$OUT/signals\"\n"
        "echo $$ > \"$OUT/pid\"\n"
        "ps -o pgid= -p $$ | tr -d ' ' > \"$OUT/pgid\"\n"
        "touch \"$OUT/done\"\n"));
    start(&f);
    ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    WAIT_FOR(logs_with(&f, -1, "no output") == 1, "the run");
    ck_assert(exists(tp("out/done")));
    stop(&f);

    /* a clean environment */
    char *env = slurp(tp("out/env"));
    ck_assert_ptr_nonnull(env);
    const char *home = "/";
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        ck_assert_ptr_nonnull(pw);
        home = pw->pw_dir;
    }
    assert_env(env, home, "bureau");
    ck_assert_ptr_null(strstr(env, "PP_SECRET"));
    free(env);

    /* only 0, 1, 2 and the directory ls opened */
    char *fds = slurp(tp("out/fds"));
    ck_assert_ptr_nonnull(fds);
    ck_assert_str_eq(fds, "0\n1\n2\n3\n");
    free(fds);
    char *in = slurp(tp("out/stdin"));
    ck_assert_ptr_nonnull(in);
    ck_assert_str_eq(in, "/dev/null\n");
    free(in);

    /* the user, "/", default signals, its own group */
    ck_assert_int_eq(read_number(tp("out/uid")), (long)child_uid());
    char *cwd = slurp(tp("out/cwd"));
    ck_assert_ptr_nonnull(cwd);
    ck_assert_str_eq(cwd, "/\n");
    free(cwd);
    char *sig = slurp(tp("out/signals"));
    ck_assert_ptr_nonnull(sig);
    ck_assert_str_eq(sig, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    free(sig);
    ck_assert_int_eq(read_number(tp("out/pgid")), read_number(tp("out/pid")));

    close(leak);
    close(lp[0]);
    close(lp[1]);
    unsetenv("PP_SECRET_TOKEN");
    fake_free(&f);
}
END_TEST

START_TEST(test_max_output)
{
    struct fake fy, fe;

    /* endless output: killed at max_output */
    fake_command(&fy, "yes", "/usr/bin/yes park,indicator,period,value");
    fake_set(&fy, "max_output", "1000");
    /* exactly max_output bytes: taken */
    fake_command(&fe, "exact", script("ten.sh", "printf '0123456789'\n"));
    fake_set(&fe, "max_output", "10");

    start(&fy);
    start(&fe);
    WAIT_FOR(logs_with(&fy, PP_LOG_ERR, "run 1: output exceeded max_output (1000 bytes); "
                       "killed") == 1, "the overflow");
    ck_assert_uint_eq(ncalls(&fy), 0);
    WAIT_FOR(ncalls(&fe) == 1, "the exact run");
    pthread_mutex_lock(&fe.mu);
    ck_assert_str_eq(fe.calls[0].data, "0123456789");
    pthread_mutex_unlock(&fe.mu);
    ck_assert_uint_eq(logs_with(&fe, PP_LOG_ERR, ""), 0);
    stop(&fy);
    stop(&fe);
    fake_free(&fy);
    fake_free(&fe);
}
END_TEST

START_TEST(test_refused_and_error)
{
    struct fake fr, fe;

    /* 25 bad rows: 20 report lines logged, then a count of the rest */
    fake_command(&fr, "t", script("bad.sh",
        "echo 'park,indicator,period,value'\n"
        "for i in $(seq 1 25); do echo \"BAD,x,2024-01,$i\"; done\n"));
    /* the daemon cannot store it now: tried again at the next interval, no back-off */
    fake_command(&fe, "e", script("retry.sh", "echo 'RETRY'\n"));
    fake_set(&fe, "interval", "1");

    start(&fr);
    start(&fe);
    WAIT_FOR(logs_with(&fr, PP_LOG_WARN, "… and 5 more") == 1, "the report");
    ck_assert_uint_eq(logs_with(&fr, PP_LOG_WARN, "run 1: output of"), 1);
    ck_assert_uint_eq(logs_with(&fr, PP_LOG_WARN, "refused (25 bad rows)"), 1);
    ck_assert_uint_eq(logs_with(&fr, PP_LOG_WARN, "t:run-1:2: bad row"), 1);
    ck_assert_uint_eq(logs_with(&fr, PP_LOG_WARN, "t:run-1:21: bad row"), 1);
    ck_assert_uint_eq(logs_with(&fr, PP_LOG_WARN, "t:run-1:22: bad row"), 0);
    ck_assert_uint_eq(logs_with(&fr, PP_LOG_WARN, ": bad row"), 20);

    int64_t t0 = now_ms();
    WAIT_FOR(ncalls(&fe) >= 4, "four attempts");
    ck_assert_int_lt(now_ms() - t0, 4500);  /* 1 s apart, not 1, 2, 4 */
    ck_assert_uint_ge(logs_with(&fe, PP_LOG_WARN, "could not ingest the output now: disk full"),
                      3);
    ck_assert_uint_eq(logs_with(&fe, PP_LOG_ERR, ""), 0);
    stop(&fr);
    stop(&fe);
    fake_free(&fr);
    fake_free(&fe);
}
END_TEST

START_TEST(test_shutdown)
{
    struct fake f;

    /* during a long run of a command that ignores SIGTERM: grace 5 is capped at 2 */
    fake_command(&f, "t", script("long.sh",
        "trap '' TERM\n"
        "echo $$ > \"$OUT/pid.tmp\"; mv \"$OUT/pid.tmp\" \"$OUT/pid\"\n"
        "sleep 1000 &\n"
        "sleep 1000\n"));
    fake_set(&f, "timeout", "600");
    fake_set(&f, "grace", "5");
    start(&f);
    WAIT_FOR(read_number(tp("out/pid")) > 0, "the script's pid");
    pid_t pgid = (pid_t)read_number(tp("out/pid"));
    sleep_ms(100);
    int64_t took = stop(&f);
    ck_assert_msg(took < 3000, "shutdown took %lld ms", (long long)took);
    ck_assert_msg(took >= 1500, "shutdown took %lld ms: TERM is ignored, so KILL after 2 s",
                  (long long)took);
    ck_assert_int_eq(kill(pgid, 0), -1);  /* the command itself is reaped already */
    ck_assert_int_eq(errno, ESRCH);
    WAIT_FOR(group_gone(pgid), "the whole group to be gone");
    ck_assert_uint_eq(ncalls(&f), 0);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_INFO, "run 1: stopping; killed"), 1);
    fake_free(&f);

    /* between runs: the interval sleep returns at once */
    fake_command(&f, "t", script("quick.sh", "echo 'park,indicator,period,value'\n"));
    fake_set(&f, "interval", "3600");
    start(&f);
    WAIT_FOR(ncalls(&f) == 1, "the first run");
    sleep_ms(50);
    ck_assert_int_lt(stop(&f), 500);
    fake_free(&f);

    /* shutdown() before run(): nothing is started */
    fake_command(&f, "t", script("never.sh", "touch \"$OUT/ran\"\n"));
    fake_shutdown_before_run(&f);
    ck_assert(!exists(tp("out/ran")));
    fake_free(&f);
}
END_TEST

START_TEST(test_empty_output)
{
    struct fake f;
    fake_command(&f, "t", "/bin/true");
    start(&f);
    WAIT_FOR(logs_with(&f, PP_LOG_INFO, "run 1: no output; nothing to ingest") == 1, "the run");
    ck_assert_uint_eq(ncalls(&f), 0);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, ""), 0);
    stop_free(&f);
}
END_TEST

START_TEST(test_leftovers_killed)
{
    struct fake f;

    /* exits at once, leaving a background process that holds no pipe */
    fake_command(&f, "t", script("bg.sh",
        "sleep 1000 </dev/null >/dev/null 2>&1 &\n"
        "echo $! > \"$OUT/bg\"\n"
        "echo $$ > \"$OUT/pid\"\n"
        "echo 'park,indicator,period,value'\n"));
    start(&f);
    WAIT_FOR(ncalls(&f) == 1, "the run");
    pid_t pgid = (pid_t)read_number(tp("out/pid"));
    ck_assert_int_gt(pgid, 0);
    ck_assert_int_gt(read_number(tp("out/bg")), 0);
    WAIT_FOR(group_gone(pgid), "the background process to be killed");
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, ""), 0);
    stop_free(&f);
}
END_TEST

static Suite *exec_suite(void)
{
    Suite *s = suite_create("exec");
    TCase *tc = check_tcase(s, "init", setup, teardown, 0);
    tcase_add_loop_test(tc, test_init_options, 0,
                        (int)(sizeof init_cases / sizeof init_cases[0]));
    if (geteuid() == 0) {
        tcase_add_test(tc, test_refuses_root);
    } else {
        tcase_add_test(tc, test_not_root_nothing_to_refuse);
        check_skip("exec", "test_refuses_root", "needs root (the plugin's refusal to run commands "
                   "as root); run the suite as root to check it");
    }

    tc = check_tcase(s, "run", setup, teardown, 30);
    tcase_add_test(tc, test_output_submitted);
    tcase_add_test(tc, test_arguments);
    tcase_add_test(tc, test_stderr_logged);
    tcase_add_test(tc, test_stderr_flood);
    tcase_add_test(tc, test_failure_backoff);
    tcase_add_test(tc, test_killed_by_signal);
    tcase_add_test(tc, test_cannot_exec);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_child_setup);
    tcase_add_test(tc, test_max_output);
    tcase_add_test(tc, test_refused_and_error);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_empty_output);
    tcase_add_test(tc, test_leftovers_killed);
    return s;
}

CHECK_MAIN(exec_suite)
