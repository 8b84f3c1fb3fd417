/*
 * fake_host.h — the fake collector host of the collector suites (check_exec,
 * check_spool): it loads a plugin the way the daemon does (dlopen() of
 * $<NAME>_SO, default $BUILD/collectors/<name>.so, then
 * dlsym("parkpulse_collector")), serves options from a small table, records
 * submit_csv() calls and log lines, and answers a submission by its content:
 * "BAD" (one report line per occurrence) is refused, "RETRY" is a temporary
 * error (unless retry_ok is set), anything else is OK. run() runs in a thread
 * (start/stop; the instance is kept in the fake host). A suite defines
 * FAKE_PLUGIN ("exec"), FAKE_VERBOSE_ENV (the variable that echoes the
 * plugin's log lines) and DEADLINE_MS before it includes this file; it may set fake.on_submit to act while the plugin waits
 * for an answer, and fake_batch() gives the host submit_csv_batch (ABI 2).
 */
#ifndef PP_TEST_FAKE_HOST_H
#define PP_TEST_FAKE_HOST_H

#include "collector.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tmpdir.h"

#define FAKE_MAX_OPTS 12
#define FAKE_MAX_CALLS 1024
#define FAKE_MAX_BATCHES 64
#define FAKE_MAX_LOGS 2048

struct call {
    char *source;
    char *data;
    size_t len;
    int rc;
};

/* An instance of the plugin running in a thread (start/stop). */
struct runner {
    pthread_t thread;
    void *state;
    int rc;
    atomic_bool finished;
};

struct fake {
    pp_collector_host host;     /* first: the plugin sees &fake->host */
    const char *opt_key[FAKE_MAX_OPTS];
    char *opt_val[FAKE_MAX_OPTS];
    size_t nopts;
    pthread_mutex_t mu;
    struct call calls[FAKE_MAX_CALLS];
    size_t ncalls;
    char *logs[FAKE_MAX_LOGS];
    int log_level[FAKE_MAX_LOGS];
    size_t nlogs;
    atomic_bool retry_ok;       /* when set, "RETRY" inputs are accepted */
    size_t batch_n[FAKE_MAX_BATCHES]; /* sizes of the submit_csv_batch calls */
    size_t nbatches;
    /* called first by each submission, while the plugin waits for the answer */
    void (*on_submit)(struct fake *f, const char *source);
    void *on_submit_arg;
    struct runner run;          /* the instance start() runs for this host */
};

static const char *fake_option(const pp_collector_host *host, const char *key)
{
    const struct fake *f = (const struct fake *)host;
    for (size_t i = 0; i < f->nopts; i++)
        if (strcmp(f->opt_key[i], key) == 0)
            return f->opt_val[i];
    return NULL;
}

static int fake_submit(const pp_collector_host *host, const char *source, const char *data,
                       size_t len, char **report)
{
    struct fake *f = (struct fake *)host;
    int rc = PP_SUBMIT_OK, bad = 0;
    char *text = NULL;

    if (f->on_submit)
        f->on_submit(f, source);
    for (const char *p = data; (p = memmem(p, len - (size_t)(p - data), "BAD", 3)); p += 3)
        bad++;
    if (bad > 0) {
        size_t cap = (size_t)bad * (strlen(source) + 32) + 1, used = 0;
        text = malloc(cap);
        ck_assert_ptr_nonnull(text);
        for (int i = 0; i < bad; i++)
            used += (size_t)snprintf(text + used, cap - used, "%s:%d: bad row\n", source, i + 2);
        rc = PP_SUBMIT_REFUSED;
    } else if (memmem(data, len, "RETRY", 5) && !atomic_load(&f->retry_ok)) {
        text = strdup("disk full\n");
        ck_assert_ptr_nonnull(text);
        rc = PP_SUBMIT_ERROR;
    }
    if (report)
        *report = text;
    else
        free(text);

    pthread_mutex_lock(&f->mu);
    ck_assert_uint_lt(f->ncalls, FAKE_MAX_CALLS);
    struct call *c = &f->calls[f->ncalls];
    c->source = strdup(source);
    c->data = strndup(data, len);
    c->len = len;
    c->rc = rc;
    ck_assert(c->source && c->data);
    f->ncalls++;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ABI 2: each input answered by fake_submit; the batch's size recorded. */
static int fake_submit_batch(const pp_collector_host *host, size_t n, const pp_collector_input *in,
                             int *results, char **reports)
{
    struct fake *f = (struct fake *)host;
    int worst = PP_SUBMIT_OK;
    ck_assert_uint_gt(n, 0);
    pthread_mutex_lock(&f->mu);
    ck_assert_uint_lt(f->nbatches, FAKE_MAX_BATCHES);
    f->batch_n[f->nbatches++] = n;
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < n; i++) {
        results[i] = fake_submit(host, in[i].source, in[i].data, in[i].len,
                                 reports ? &reports[i] : NULL);
        if (results[i] == PP_SUBMIT_ERROR || (results[i] == PP_SUBMIT_REFUSED && worst == 0))
            worst = results[i];
    }
    return worst;
}

static int fake_submit_obs(const pp_collector_host *host, const char *source,
                           const pp_collector_obs *obs, size_t n, char **report)
{
    ck_abort_msg(FAKE_PLUGIN " must not call submit_obs");
    return PP_SUBMIT_ERROR;
}

__attribute__((format(printf, 3, 4)))
static void fake_log(const pp_collector_host *host, int level, const char *fmt, ...)
{
    struct fake *f = (struct fake *)host;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (getenv(FAKE_VERBOSE_ENV))
        fprintf(stderr, "[%d] %s: %s\n", level, host->name, line);
    pthread_mutex_lock(&f->mu);
    if (f->nlogs < FAKE_MAX_LOGS) {
        f->log_level[f->nlogs] = level;
        f->logs[f->nlogs++] = strdup(line);
    }
    pthread_mutex_unlock(&f->mu);
}

static void fake_init(struct fake *f, const char *name)
{
    memset(f, 0, sizeof *f);
    f->host.abi_version = PP_COLLECTOR_ABI_VERSION;
    f->host.name = name;
    f->host.option = fake_option;
    f->host.submit_csv = fake_submit;
    f->host.submit_obs = fake_submit_obs;
    f->host.log = fake_log;
    pthread_mutex_init(&f->mu, NULL);
    atomic_init(&f->retry_ok, false);
}

/* Gives the host submit_csv_batch (ABI 2). */
static inline void fake_batch(struct fake *f) { f->host.submit_csv_batch = fake_submit_batch; }

/* Sets option key (a string that outlives f) to a copy of val. */
static void fake_set(struct fake *f, const char *key, const char *val)
{
    ck_assert_uint_lt(f->nopts, FAKE_MAX_OPTS);
    f->opt_key[f->nopts] = key;
    f->opt_val[f->nopts] = strdup(val);
    ck_assert_ptr_nonnull(f->opt_val[f->nopts]);
    f->nopts++;
}

static void fake_free(struct fake *f)
{
    for (size_t i = 0; i < f->nopts; i++)
        free(f->opt_val[i]);
    for (size_t i = 0; i < f->ncalls; i++) {
        free(f->calls[i].source);
        free(f->calls[i].data);
    }
    for (size_t i = 0; i < f->nlogs; i++)
        free(f->logs[i]);
    pthread_mutex_destroy(&f->mu);
}

/* Number of submit calls from source with exactly data (NULL: any). */
static size_t fake_calls(struct fake *f, const char *source, const char *data)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->ncalls; i++)
        n += (!source || strcmp(f->calls[i].source, source) == 0) &&
             (!data || strcmp(f->calls[i].data, data) == 0);
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Number of log lines containing text at level (any level when level < 0). */
static size_t logs_with(struct fake *f, int level, const char *text)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nlogs; i++)
        n += strstr(f->logs[i], text) && (level < 0 || f->log_level[i] == level);
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- the plugin and a temporary directory ---- */

static void *g_dl;
static const pp_collector_def *g_def;
static char g_tmp[PATH_MAX];

/* dlopen()s the plugin FAKE_PLUGIN (see the top) and makes g_tmp. */
static void fake_plugin_open(void)
{
    char env[64], def[PATH_MAX], suite[64];
    snprintf(env, sizeof env, "%s_SO", FAKE_PLUGIN);
    for (char *p = env; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    const char *so = getenv(env);
    if (!so || !*so) {
        const char *build = getenv("BUILD");
        snprintf(def, sizeof def, "%s/collectors/%s.so", build && *build ? build : "build",
                 FAKE_PLUGIN);
        so = def;
    }
    g_dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(g_dl != NULL, "dlopen %s: %s", so, dlerror());
    g_def = dlsym(g_dl, PP_COLLECTOR_SYMBOL);
    ck_assert_msg(g_def != NULL, "dlsym: %s", dlerror());
    ck_assert_int_eq(g_def->abi_version, PP_COLLECTOR_ABI_VERSION);
    ck_assert_str_eq(g_def->name, FAKE_PLUGIN);
    snprintf(suite, sizeof suite, "check_%s", FAKE_PLUGIN);
    tmpdir_make(g_tmp, sizeof g_tmp, suite);
}

static void fake_plugin_close(void)
{
    tmpdir_remove(g_tmp);
    if (g_dl)
        dlclose(g_dl);
}

/* A path under the test directory; rotating buffers so a few can be live. */
__attribute__((format(printf, 1, 2)))
static const char *tp(const char *fmt, ...)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    char rel[PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    int n = snprintf(b, PATH_MAX, "%s/%s", g_tmp, rel);
    ck_assert(n > 0 && n < PATH_MAX);
    return b;
}

/* Writes text to path with mode (whatever the umask). */
static void fake_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(close(fd), 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The whole file as a string (caller frees), or NULL. */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 65536);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Polls cond every 20 ms for up to DEADLINE_MS; fails the test with msg otherwise. */
#define WAIT_FOR(cond, msg)                                                      \
    do {                                                                         \
        int64_t deadline_ = now_ms() + DEADLINE_MS;                              \
        while (!(cond) && now_ms() < deadline_)                                  \
            sleep_ms(20);                                                        \
        ck_assert_msg((cond), "timed out waiting for %s", msg);                  \
    } while (0)

/* The end of an init() case (case i): init() of f (its options set) must
 * return want: 0 means an instance (then ok(), if given, checks what init
 * made, and it is destroyed), else no state and an error log naming log.
 * f is freed. */
static void fake_check_init(struct fake *f, int i, int want, const char *log, void (*ok)(void))
{
    void *state = (void *)f; /* init must set it, also to NULL */
    int rc = g_def->init(&f->host, &state);
    ck_assert_msg(rc == want, "case %d: init returned %d, want %d", i, rc, want);
    if (rc == 0) {
        ck_assert_ptr_nonnull(state);
        if (ok)
            ok();
        g_def->destroy(state);
    } else {
        ck_assert_ptr_null(state);
        ck_assert_msg(logs_with(f, PP_LOG_ERR, log) >= 1, "case %d: no log naming %s", i, log);
    }
    fake_free(f);
}

/* shutdown() (twice: harmless) before run(): run() of f's instance returns at
 * once, within 500 ms; the instance is destroyed. */
static void fake_shutdown_before_run(struct fake *f)
{
    void *state = NULL;
    ck_assert_int_eq(g_def->init(&f->host, &state), 0);
    g_def->shutdown(state);
    g_def->shutdown(state);
    int64_t t0 = now_ms();
    ck_assert_int_eq(g_def->run(state), 0);
    ck_assert_int_lt(now_ms() - t0, 500);
    g_def->destroy(state);
}

/* ---- running an instance in a thread ---- */

static void *run_thread(void *arg)
{
    struct runner *r = arg;
    r->rc = g_def->run(r->state);
    atomic_store(&r->finished, true);
    return NULL;
}

/* An instance of f's plugin, init() with f's options, running in a thread. */
static void start(struct fake *f)
{
    struct runner *r = &f->run;
    memset(r, 0, sizeof *r);
    atomic_init(&r->finished, false);
    ck_assert_int_eq(g_def->init(&f->host, &r->state), 0);
    ck_assert_ptr_nonnull(r->state);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, run_thread, r), 0);
}

/* Shuts f's instance down; returns how long run() took to return, in ms. */
static int64_t stop(struct fake *f)
{
    struct runner *r = &f->run;
    int64_t t0 = now_ms();
    g_def->shutdown(r->state);
    while (!atomic_load(&r->finished) && now_ms() - t0 < DEADLINE_MS)
        sleep_ms(5);
    int64_t took = now_ms() - t0;
    ck_assert_msg(atomic_load(&r->finished), "run() did not return after shutdown()");
    ck_assert_int_eq(pthread_join(r->thread, NULL), 0);
    ck_assert_int_eq(r->rc, 0);
    g_def->destroy(r->state);
    return took;
}

/* stop(f), then fake_free(f): the end of a check of one instance. */
static int64_t stop_free(struct fake *f)
{
    int64_t took = stop(f);
    fake_free(f);
    return took;
}

#endif
