/*
 * check_spool.c — Check suite for the `spool` collector plugin (collectors/spool.c).
 *
 * The plugin is loaded the way the daemon loads it: dlopen() of the shared
 * object named by $SPOOL_SO (default $BUILD/collectors/spool.so, or
 * build/collectors/spool.so), then dlsym("parkpulse_collector"). The fake
 * host of tests/fake_host.h (shared with check_exec) serves options from a small table, records submit_csv() calls and log
 * lines, and answers submissions by their content: "BAD" (one report line per
 * occurrence) is refused, "RETRY" is a temporary error, anything else is OK.
 * By default the host speaks ABI 2 without submit_csv_batch (the plugin then
 * submits file by file); fake_batch() adds a submit_csv_batch that records
 * each batch and answers each input as submit_csv would. For the race tests
 * the host can swap another file in under a name while it is submitted
 * (fake.on_submit), and
 * the binary interposes renameat2()/linkat() (exported, see the Makefile) to
 * swap one in inside the plugin's own move.
 * run() runs in a thread; each test drops files into a fresh mkdtemp()
 * directory and polls for the expected result with a 5 s deadline.
 */
#define FAKE_PLUGIN "spool"
#define FAKE_VERBOSE_ENV "SPOOL_TEST_VERBOSE"
#define DEADLINE_MS 5000

#include "fake_host.h"
#include "check_main.h"
#include "text.h"

/*
 * A writer delivering a second file under a name the plugin is working on:
 * when armed, swap_file() puts the prepared file `src` (outside the spool, on
 * the same file system) in place of the spool's `name`, once — by rename over
 * it (how the safe writers deliver), or by unlink + link (which inotify does
 * not report: only a look scheduled by the plugin finds the file).
 */
enum swap_how { SWAP_RENAME, SWAP_LINK };
struct swap {
    const char *name;
    char src[PATH_MAX], dst[PATH_MAX];
    enum swap_how how;
    atomic_bool done;
};

static void swap_file(struct swap *w, const char *name)
{
    if (!w || strcmp(name, w->name) != 0 || atomic_exchange(&w->done, true))
        return;
    if (w->how == SWAP_RENAME) {
        ck_assert_msg(rename(w->src, w->dst) == 0, "rename %s: %s", w->dst, strerror(errno));
    } else {
        ck_assert_msg(unlink(w->dst) == 0, "unlink %s: %s", w->dst, strerror(errno));
        ck_assert_msg(link(w->src, w->dst) == 0, "link %s: %s", w->dst, strerror(errno));
        ck_assert_int_eq(unlink(w->src), 0);
    }
}

/* An ABI 1 host has no submit_csv_batch: the plugin must not even look. */
static int fake_submit_batch_abi1(const pp_collector_host *host, size_t n,
                                  const pp_collector_input *in, int *results, char **reports)
{
    ck_abort_msg("submit_csv_batch called on an ABI 1 host");
    return PP_SUBMIT_ERROR;
}

/* The host's part of a swap: while the plugin waits for the answer. */
static void swap_on_submit(struct fake *f, const char *source)
{
    swap_file(f->on_submit_arg, source);
}

/* The sizes of the batches so far, e.g. "4 1", into buf. */
static const char *batches(struct fake *f, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nbatches && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", i ? " " : "", f->batch_n[i]);
    pthread_mutex_unlock(&f->mu);
    return buf;
}

/* Number of submit calls for source (all sources when NULL). */
static size_t calls_for(struct fake *f, const char *source) { return fake_calls(f, source, NULL); }

/* Number of submit calls whose data was exactly data. */
static size_t calls_with_data(struct fake *f, const char *data) { return fake_calls(f, NULL, data); }

static void setup(void) { fake_plugin_open(); }

/* A host named name for the spool g_tmp, looked through every rescan seconds. */
static void spool_host(struct fake *f, const char *name, const char *rescan)
{
    fake_init(f, name);
    fake_set(f, "path", g_tmp);
    fake_set(f, "rescan", rescan);
}

/* spool_host, then start(f). */
static void spool_start(struct fake *f, const char *name, const char *rescan)
{
    spool_host(f, name, rescan);
    start(f);
}

static void teardown(void) { fake_plugin_close(); }

static void write_file(const char *path, const char *text) { fake_write(path, text, 0644); }

/* Writes text to the spool's file name and waits until until (a path in the
 * spool, e.g. "done/<name>") is there. */
static void deliver(const char *name, const char *text, const char *until)
{
    write_file(tp("%s", name), text);
    WAIT_FOR(exists(tp("%s", until)), until);
}

/* Writes a file whose mtime is an hour old: it arrived while the daemon was down. */
static void write_old_file(const char *path, const char *text)
{
    struct timespec ts[2];
    write_file(path, text);
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 3600;
    ts[1] = ts[0];
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void assert_content(const char *path, const char *want)
{
    char *got = slurp(path);
    ck_assert_msg(got != NULL, "%s missing", path);
    ck_assert_str_eq(got, want);
    free(got);
}

/* Log lines are written after the file is moved: wait for exactly one. */
#define WAIT_LOG(f, level, text)                                                 \
    do {                                                                         \
        WAIT_FOR(logs_with((f), (level), (text)) >= 1, text);                    \
        ck_assert_uint_eq(logs_with((f), (level), (text)), 1);                   \
    } while (0)

/* ---- init: option checking ------------------------------------------------ */

/* What a successful init() makes: done/ and failed/ in the spool. */
static void assert_spool_dirs(void) { ck_assert(exists(tp("done")) && exists(tp("failed"))); }

static const struct init_case {
    const char *path;       /* "@" = the temp dir, NULL = unset */
    const char *rescan;
    const char *max_size;
    int want;
    const char *log;        /* expected in a log line when want is -1 */
} init_cases[] = {
    { NULL, NULL, NULL, -1, "path" },
    { "", NULL, NULL, -1, "path" },
    { "spool", NULL, NULL, -1, "absolute" },
    { "./spool", NULL, NULL, -1, "absolute" },
    { "@", "0", NULL, -1, "rescan" },
    { "@", "3601", NULL, -1, "rescan" },
    { "@", "abc", NULL, -1, "rescan" },
    { "@", "10s", NULL, -1, "rescan" },
    { "@", "-1", NULL, -1, "rescan" },
    { "@", " 5", NULL, -1, "rescan" },
    { "@", "", NULL, -1, "rescan" },
    { "@", "99999999999999999999999", NULL, -1, "rescan" },
    { "@", NULL, "0", -1, "max_size" },
    { "@", NULL, "-1", -1, "max_size" },
    { "@", NULL, "12.5", -1, "max_size" },
    { "@", NULL, "2G", -1, "max_size" },
    { "@", NULL, "1T", -1, "max_size" },
    { "@", NULL, "16MB", -1, "max_size" },
    { "@", NULL, "99999999999999999999", -1, "max_size" },
    { "@", NULL, "17179869184G", -1, "max_size" },
    { "@", NULL, NULL, 0, NULL },
    { "@", "1", "1", 0, NULL },
    { "@", "3600", "1G", 0, NULL },
    { "@", "10", "64k", 0, NULL },
};

START_TEST(test_init_options)
{
    const struct init_case *c = &init_cases[_i];
    struct fake f;
    fake_init(&f, "t");
    if (c->path)
        fake_set(&f, "path", strcmp(c->path, "@") == 0 ? g_tmp : c->path);
    if (c->rescan)
        fake_set(&f, "rescan", c->rescan);
    if (c->max_size)
        fake_set(&f, "max_size", c->max_size);

    fake_check_init(&f, _i, c->want, c->log, assert_spool_dirs);
}
END_TEST

START_TEST(test_init_directories)
{
    struct fake f;
    void *state = NULL;
    struct stat st;

    /* missing, but its parent exists: created, with done/ and failed/ */
    fake_init(&f, "t");
    fake_set(&f, "path", tp("new"));
    ck_assert_int_eq(g_def->init(&f.host, &state), 0);
    ck_assert_int_eq(stat(tp("new/done"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(stat(tp("new/failed"), &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_uint_eq(logs_with(&f, PP_LOG_INFO, "created spool directory"), 1);
    g_def->destroy(state);
    fake_free(&f);

    /* parent missing too: refused, naming the path */
    state = NULL;
    fake_init(&f, "t");
    fake_set(&f, "path", tp("no/such/dir"));
    ck_assert_int_eq(g_def->init(&f.host, &state), -1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, tp("no/such/dir")), 1);
    ck_assert(!exists(tp("no")));
    fake_free(&f);

    /* a regular file is not a directory */
    write_file(tp("plain"), "x");
    fake_init(&f, "t");
    fake_set(&f, "path", tp("plain"));
    ck_assert_int_eq(g_def->init(&f.host, &state), -1);
    ck_assert_uint_ge(logs_with(&f, PP_LOG_ERR, "plain"), 1);
    fake_free(&f);

    /* done as a symlink is refused */
    ck_assert_int_eq(mkdir(tp("s"), 0750), 0);
    ck_assert_int_eq(mkdir(tp("elsewhere"), 0750), 0);
    ck_assert_int_eq(symlink(tp("elsewhere"), tp("s/done")), 0);
    fake_init(&f, "t");
    fake_set(&f, "path", tp("s"));
    ck_assert_int_eq(g_def->init(&f.host, &state), -1);
    ck_assert_uint_ge(logs_with(&f, PP_LOG_ERR, "done"), 1);
    fake_free(&f);
}
END_TEST

/* A log line about a failed call ends with the errno text (host_log_errno
 * and format_errno of collector_util.h: log.h's convention in a plugin). */
START_TEST(test_errno_text_in_log)
{
    struct fake f;
    void *state = NULL;
    char want[PATH_MAX + 128];
    write_file(tp("plain"), "x");
    fake_init(&f, "t");
    fake_set(&f, "path", tp("plain"));
    ck_assert_int_eq(g_def->init(&f.host, &state), -1);
    snprintf(want, sizeof want, "cannot open spool directory %s: Not a directory", tp("plain"));
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, want), 1);
    fake_free(&f);
}
END_TEST

/* ---- ingesting ------------------------------------------------------------ */

START_TEST(test_ingest_flow)
{
    struct fake f;
    spool_host(&f, "spool1", "1");
    ck_assert_int_eq(mkdir(tp("done"), 0750), 0);

    /* arrived while the daemon was down; taken in name order */
    write_old_file(tp("c.csv"), "park,indicator,period,value\nc,x,2024-01,3\n");
    write_old_file(tp("a.csv"), "park,indicator,period,value\na,x,2024-01,1\n");
    write_old_file(tp("b.csv"), "park,indicator,period,value\nb,x,2024-01,2\n");
    /* never taken */
    write_old_file(tp(".hidden.csv"), "hidden\n");
    write_old_file(tp("notes.txt"), "notes\n");
    write_old_file(tp("half.csv.tmp"), "half\n");
    ck_assert_int_eq(symlink(tp("a.csv"), tp("link.csv")), 0);
    ck_assert_int_eq(mkdir(tp("dir.csv"), 0750), 0);

    start(&f);
    WAIT_FOR(exists(tp("done/c.csv")), "done/c.csv");
    pthread_mutex_lock(&f.mu);
    ck_assert_uint_eq(f.ncalls, 3);
    ck_assert_str_eq(f.calls[0].source, "a.csv");
    ck_assert_str_eq(f.calls[1].source, "b.csv");
    ck_assert_str_eq(f.calls[2].source, "c.csv");
    ck_assert_str_eq(f.calls[0].data, "park,indicator,period,value\na,x,2024-01,1\n");
    pthread_mutex_unlock(&f.mu);
    assert_content(tp("done/a.csv"), "park,indicator,period,value\na,x,2024-01,1\n");
    ck_assert(!exists(tp("a.csv")));
    WAIT_LOG(&f, PP_LOG_INFO, "ingested a.csv (ok)");

    /* written in place (IN_CLOSE_WRITE), upper-case suffix too */
    write_file(tp("good.csv"), "good 1\n");
    write_file(tp("UPPER.CSV"), "upper\n");
    WAIT_FOR(exists(tp("done/good.csv")) && exists(tp("done/UPPER.CSV")), "good and UPPER");
    assert_content(tp("done/good.csv"), "good 1\n");

    /* the same name again: never overwritten */
    deliver("good.csv", "good 2\n", "done/good.csv.1");
    deliver("good.csv", "good 3\n", "done/good.csv.2");
    assert_content(tp("done/good.csv"), "good 1\n");
    assert_content(tp("done/good.csv.1"), "good 2\n");
    assert_content(tp("done/good.csv.2"), "good 3\n");
    WAIT_LOG(&f, PP_LOG_INFO, "kept as done/good.csv.2");

    /* refused: into failed/ beside its report */
    deliver("bad.csv", "header\nBAD row\n", "failed/bad.csv.errors");
    assert_content(tp("failed/bad.csv"), "header\nBAD row\n");
    assert_content(tp("failed/bad.csv.errors"), "bad.csv:2: bad row\n");
    ck_assert(!exists(tp("bad.csv")));
    ck_assert(!exists(tp("failed/bad.csv.errors.tmp")));
    WAIT_LOG(&f, PP_LOG_WARN, "refused bad.csv: 1 bad row, see failed/bad.csv.errors");
    deliver("bad.csv", "header\nBAD\nBAD\n", "failed/bad.csv.1.errors");
    assert_content(tp("failed/bad.csv.1"), "header\nBAD\nBAD\n");
    assert_content(tp("failed/bad.csv.1.errors"), "bad.csv:2: bad row\nbad.csv:3: bad row\n");
    assert_content(tp("failed/bad.csv.errors"), "bad.csv:2: bad row\n");
    WAIT_LOG(&f, PP_LOG_WARN, "refused bad.csv: 2 bad rows, see failed/bad.csv.1.errors");

    /* x.csv.tmp is left alone, through a rescan, until renamed */
    write_file(tp("x.csv.tmp"), "x data\n");
    sleep_ms(1300);
    ck_assert(exists(tp("x.csv.tmp")));
    ck_assert_uint_eq(calls_for(&f, "x.csv.tmp"), 0);
    ck_assert_int_eq(rename(tp("x.csv.tmp"), tp("x.csv")), 0);
    WAIT_FOR(exists(tp("done/x.csv")), "done/x.csv");
    assert_content(tp("done/x.csv"), "x data\n");

    /* the files that are never taken are still there, untouched, logged once;
     * notes.txt, a type the spool does not read, is in failed/ (issue 15) */
    WAIT_FOR(exists(tp("failed/notes.txt.errors")), "failed/notes.txt.errors");
    ck_assert(exists(tp(".hidden.csv")) && !exists(tp("notes.txt")));
    ck_assert(exists(tp("half.csv.tmp")) && exists(tp("link.csv")) && exists(tp("dir.csv")));
    ck_assert_uint_eq(calls_for(&f, ".hidden.csv") + calls_for(&f, "notes.txt") +
                      calls_for(&f, "half.csv.tmp") + calls_for(&f, "link.csv") +
                      calls_for(&f, "dir.csv"), 0);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "link.csv alone: a symbolic link"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "dir.csv alone: not a regular file"), 1);
    ck_assert_uint_ge(logs_with(&f, PP_LOG_DEBUG, "link.csv alone"), 1); /* rescans */
    ck_assert_uint_eq(logs_with(&f, -1, "hidden"), 0);

    ck_assert_int_lt(stop(&f), 1000);
    fake_free(&f);
}
END_TEST

/*
 * Issue 15: `*.xlsx` and `*.xls` are read like `*.csv` (the daemon tells the
 * formats apart); any other regular file is logged once and moved to failed/
 * with a report naming the types read, never left silently; `*.tmp`, `*.part`,
 * `*~` and dotfiles are left alone.
 */
START_TEST(test_file_types)
{
    struct fake f;
    spool_host(&f, "t", "1");
    write_old_file(tp("book.xlsx"), "PK\x03\x04 a workbook\n");
    write_old_file(tp("OLD.XLS"), "an old workbook\n");
    write_old_file(tp("figures.ods"), "not read\n");
    write_old_file(tp("readme"), "no extension\n");
    write_old_file(tp("download.xlsx.part"), "partial\n");
    write_old_file(tp("edit.csv~"), "backup\n");
    write_old_file(tp(".lock.xlsx"), "hidden\n");
    start(&f);
    WAIT_FOR(exists(tp("done/book.xlsx")) && exists(tp("done/OLD.XLS")), "done/ workbooks");
    WAIT_FOR(exists(tp("failed/figures.ods.errors")) && exists(tp("failed/readme.errors")),
             "failed/ reports");
    ck_assert_uint_eq(calls_for(&f, "book.xlsx"), 1);
    ck_assert_uint_eq(calls_for(&f, "OLD.XLS"), 1);
    ck_assert_uint_eq(calls_for(&f, "figures.ods") + calls_for(&f, "readme"), 0);
    assert_content(tp("failed/figures.ods"), "not read\n");
    char *rep = slurp(tp("failed/figures.ods.errors"));
    ck_assert_ptr_nonnull(rep);
    ck_assert_msg(strstr(rep, "figures.ods: 不支持的文件类型") == rep, "report: %s", rep);
    ck_assert_ptr_nonnull(strstr(rep, "*.csv, *.xlsx and *.xls"));
    free(rep);
    /* a second rescan: nothing logged again */
    sleep_ms(1300);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "refused figures.ods"), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "refused readme"), 1);
    /* left alone */
    ck_assert(exists(tp("download.xlsx.part")) && exists(tp("edit.csv~")) &&
              exists(tp(".lock.xlsx")));
    ck_assert_uint_eq(logs_with(&f, -1, "download.xlsx.part") + logs_with(&f, -1, "edit.csv~") +
                      logs_with(&f, -1, ".lock.xlsx"), 0);
    /* done/ and failed/ themselves are never mentioned */
    ck_assert_uint_eq(logs_with(&f, -1, "done alone") + logs_with(&f, -1, "failed alone"), 0);
    /* a new file of another type, named by inotify, is refused too */
    deliver("photo.jpg", "jpeg\n", "failed/photo.jpg.errors");
    stop_free(&f);
}
END_TEST

START_TEST(test_retry_on_error)
{
    struct fake f;
    spool_start(&f, "t", "1");

    write_file(tp("retry.csv"), "RETRY me\n");
    WAIT_FOR(calls_for(&f, "retry.csv") >= 1, "the first attempt");
    ck_assert(exists(tp("retry.csv")));
    WAIT_FOR(calls_for(&f, "retry.csv") >= 2, "the retry at the next rescan");
    ck_assert(exists(tp("retry.csv")));
    ck_assert(!exists(tp("done/retry.csv")) && !exists(tp("failed/retry.csv")));
    WAIT_LOG(&f, PP_LOG_WARN, "could not ingest retry.csv now: disk full");

    /* no spinning: about one attempt per rescan (1 s) */
    size_t before = calls_for(&f, "retry.csv");
    sleep_ms(1500);
    ck_assert_uint_le(calls_for(&f, "retry.csv") - before, 2);

    /* once the daemon can store it, the next rescan takes it */
    atomic_store(&f.retry_ok, true);
    WAIT_FOR(exists(tp("done/retry.csv")), "done/retry.csv");
    ck_assert(!exists(tp("retry.csv")));
    WAIT_LOG(&f, PP_LOG_INFO, "ingested retry.csv (ok)");

    stop_free(&f);
}
END_TEST

START_TEST(test_name_collisions)
{
    struct fake f;
    fake_init(&f, "t");
    fake_set(&f, "path", g_tmp);
    ck_assert_int_eq(mkdir(tp("done"), 0750), 0);
    ck_assert_int_eq(mkdir(tp("failed"), 0750), 0);
    write_file(tp("done/dup.csv"), "older\n");
    /* an operator moved failed/bad.csv back for another try; the report stayed */
    write_file(tp("failed/bad.csv.errors"), "old report\n");
    write_file(tp("failed/bad.csv.1"), "older failure\n");
    start(&f);

    write_file(tp("dup.csv"), "newer\n");
    deliver("bad.csv", "BAD\n", "done/dup.csv.1");
    WAIT_FOR(exists(tp("failed/bad.csv.2.errors")), "failed/bad.csv.2.errors");
    assert_content(tp("done/dup.csv"), "older\n");
    assert_content(tp("done/dup.csv.1"), "newer\n");
    ck_assert(!exists(tp("failed/bad.csv")));
    assert_content(tp("failed/bad.csv.errors"), "old report\n");
    assert_content(tp("failed/bad.csv.1"), "older failure\n");
    assert_content(tp("failed/bad.csv.2"), "BAD\n");
    assert_content(tp("failed/bad.csv.2.errors"), "bad.csv:2: bad row\n");

    stop_free(&f);
}
END_TEST

START_TEST(test_too_large)
{
    struct fake f;
    fake_init(&f, "t");
    fake_set(&f, "path", g_tmp);
    fake_set(&f, "max_size", "10");
    start(&f);

    write_file(tp("big.csv"), "01234567890123456789\n");
    deliver("small.csv", "0123456789", "failed/big.csv.errors");
    WAIT_FOR(exists(tp("done/small.csv")), "done/small.csv");
    assert_content(tp("failed/big.csv"), "01234567890123456789\n");
    char *rep = slurp(tp("failed/big.csv.errors"));
    ck_assert_ptr_nonnull(rep);
    ck_assert_ptr_nonnull(strstr(rep, "big.csv: file is 21 bytes, larger than max_size 10"));
    free(rep);
    ck_assert_uint_eq(calls_for(&f, "big.csv"), 0);
    ck_assert_uint_eq(calls_for(&f, "small.csv"), 1);
    WAIT_LOG(&f, PP_LOG_WARN, "refused big.csv: larger than max_size 10");

    stop_free(&f);
}
END_TEST

START_TEST(test_file_still_open)
{
    struct fake f;
    fake_init(&f, "t");
    fake_set(&f, "path", g_tmp);

    /* a writer is still busy with it when the daemon starts */
    int fd = open(tp("slow.csv"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "head\n", 5), 5);
    start(&f);
    sleep_ms(300);
    ck_assert_uint_eq(calls_for(&f, NULL), 0);
    ck_assert(exists(tp("slow.csv")));

    ck_assert_int_eq(write(fd, "tail\n", 5), 5);
    ck_assert_int_eq(close(fd), 0);
    WAIT_FOR(exists(tp("done/slow.csv")), "done/slow.csv");
    pthread_mutex_lock(&f.mu);
    ck_assert_uint_eq(f.ncalls, 1);
    ck_assert_str_eq(f.calls[0].data, "head\ntail\n");
    pthread_mutex_unlock(&f.mu);

    stop_free(&f);
}
END_TEST

START_TEST(test_shutdown)
{
    struct fake f;
    spool_host(&f, "t", "3600");

    /* idle in poll(): returns promptly */
    start(&f);
    sleep_ms(100);
    ck_assert_int_lt(stop(&f), 500);

    /* shutdown() before run() started: run() returns at once, scanning nothing */
    write_old_file(tp("waiting.csv"), "w\n");
    fake_shutdown_before_run(&f);
    ck_assert_uint_eq(calls_for(&f, NULL), 0);
    ck_assert(exists(tp("waiting.csv")));
    fake_free(&f);
}
END_TEST

START_TEST(test_two_instances)
{
    struct fake f1, f2;
    ck_assert_int_eq(mkdir(tp("one"), 0750), 0);
    ck_assert_int_eq(mkdir(tp("two"), 0750), 0);
    fake_init(&f1, "one");
    fake_set(&f1, "path", tp("one"));
    fake_init(&f2, "two");
    fake_set(&f2, "path", tp("two"));
    start(&f1);
    start(&f2);

    write_file(tp("one/a.csv"), "for one\n");
    write_file(tp("two/a.csv"), "for two\n");
    write_file(tp("two/b.csv"), "BAD\n");
    WAIT_FOR(exists(tp("one/done/a.csv")) && exists(tp("two/done/a.csv")), "both a.csv");
    WAIT_FOR(exists(tp("two/failed/b.csv.errors")), "two/failed/b.csv.errors");
    assert_content(tp("one/done/a.csv"), "for one\n");
    assert_content(tp("two/done/a.csv"), "for two\n");
    ck_assert_uint_eq(calls_for(&f1, NULL), 1);
    ck_assert_uint_eq(calls_for(&f2, NULL), 2);
    ck_assert(!exists(tp("one/failed/b.csv")));

    stop(&f1);
    /* the other one keeps working */
    deliver("two/c.csv", "c\n", "two/done/c.csv");
    stop(&f2);
    fake_free(&f1);
    fake_free(&f2);
}
END_TEST

START_TEST(test_directory_recreated)
{
    struct fake f;
    ck_assert_int_eq(mkdir(tp("sp"), 0750), 0);
    fake_init(&f, "t");
    fake_set(&f, "path", tp("sp"));
    fake_set(&f, "rescan", "1");
    start(&f);

    deliver("sp/one.csv", "1\n", "sp/done/one.csv");

    /* an operator removes the spool and makes it again */
    ck_assert_int_eq(tmpdir_remove(tp("sp")), 0);
    ck_assert_int_eq(mkdir(tp("sp"), 0750), 0);
    write_file(tp("sp/two.csv"), "2\n");
    WAIT_FOR(exists(tp("sp/done/two.csv")), "sp/done/two.csv after a rescan");
    WAIT_LOG(&f, PP_LOG_INFO, "/sp again");

    /* and events work again after that */
    deliver("sp/three.csv", "3\n", "sp/done/three.csv");

    stop_free(&f);
}
END_TEST

/* ---- batches (ABI 2) ----------------------------------------------------- */

START_TEST(test_batch_submission)
{
    struct fake f;
    char buf[256];
    spool_host(&f, "t", "1");
    fake_batch(&f);

    /* found together by the first scan: one batch, in name order */
    write_old_file(tp("a.csv"), "good a\n");
    write_old_file(tp("b.csv"), "header\nBAD row\n");
    write_old_file(tp("c.csv"), "RETRY c\n");
    write_old_file(tp("d.csv"), "good d\n");
    start(&f);
    WAIT_FOR(exists(tp("done/d.csv")), "done/d.csv");
    WAIT_FOR(exists(tp("failed/b.csv.errors")), "failed/b.csv.errors");
    ck_assert_str_eq(batches(&f, buf, sizeof buf), "4");
    pthread_mutex_lock(&f.mu);
    ck_assert_str_eq(f.calls[0].source, "a.csv");
    ck_assert_str_eq(f.calls[1].source, "b.csv");
    ck_assert_str_eq(f.calls[2].source, "c.csv");
    ck_assert_str_eq(f.calls[3].source, "d.csv");
    pthread_mutex_unlock(&f.mu);

    /* each moved by its own answer */
    assert_content(tp("done/a.csv"), "good a\n");
    assert_content(tp("done/d.csv"), "good d\n");
    assert_content(tp("failed/b.csv"), "header\nBAD row\n");
    assert_content(tp("failed/b.csv.errors"), "b.csv:2: bad row\n");
    ck_assert(exists(tp("c.csv")));
    ck_assert(!exists(tp("a.csv")) && !exists(tp("b.csv")) && !exists(tp("d.csv")));
    WAIT_LOG(&f, PP_LOG_INFO, "ingested a.csv (ok)");
    WAIT_LOG(&f, PP_LOG_INFO, "ingested d.csv (ok)");
    WAIT_LOG(&f, PP_LOG_WARN, "refused b.csv: 1 bad row, see failed/b.csv.errors");
    WAIT_LOG(&f, PP_LOG_WARN, "could not ingest c.csv now: disk full");

    /* the kept one is retried at a rescan, alone */
    atomic_store(&f.retry_ok, true);
    WAIT_FOR(exists(tp("done/c.csv")), "done/c.csv");
    ck_assert_uint_eq(calls_for(&f, "a.csv"), 1);
    ck_assert_uint_eq(calls_for(&f, "c.csv"), 2);
    pthread_mutex_lock(&f.mu);
    ck_assert_uint_ge(f.nbatches, 2);
    ck_assert_uint_eq(f.batch_n[f.nbatches - 1], 1);
    pthread_mutex_unlock(&f.mu);

    /* a burst renamed in (as the safe writers do): every file taken, in batches */
    for (int i = 0; i < 40; i++) {
        write_file(tp("burst-%02d.csv.tmp", i), "burst\n");
        ck_assert_int_eq(rename(tp("burst-%02d.csv.tmp", i), tp("burst-%02d.csv", i)), 0);
    }
    WAIT_FOR(calls_for(&f, NULL) == 45 && exists(tp("done/burst-39.csv")), "the burst");
    for (int i = 0; i < 40; i++)
        ck_assert_msg(exists(tp("done/burst-%02d.csv", i)), "burst-%02d.csv not in done/", i);
    ck_assert_uint_eq(calls_for(&f, NULL), 45);

    stop_free(&f);
}
END_TEST

/* A batch holds at most 256 files; the rest go in the next one. */
START_TEST(test_batch_bound)
{
    struct fake f;
    char buf[256];
    spool_host(&f, "t", "3600");
    fake_batch(&f);
    for (int i = 0; i < 300; i++)
        write_old_file(tp("f%03d.csv", i), "x\n");
    start(&f);
    WAIT_FOR(exists(tp("done/f299.csv")), "done/f299.csv");
    ck_assert_str_eq(batches(&f, buf, sizeof buf), "256 44");
    ck_assert_uint_eq(calls_for(&f, NULL), 300);
    pthread_mutex_lock(&f.mu);
    for (size_t i = 0; i < f.ncalls; i++) {
        char want[32];
        snprintf(want, sizeof want, "f%03zu.csv", i);
        ck_assert_str_eq(f.calls[i].source, want);
    }
    pthread_mutex_unlock(&f.mu);
    stop_free(&f);
}
END_TEST

/* With an ABI 1 daemon the plugin submits file by file and never reads the
 * field that ABI 1 lacks. */
START_TEST(test_abi1_host)
{
    struct fake f;
    fake_init(&f, "t");
    f.host.abi_version = 1;
    f.host.submit_csv_batch = fake_submit_batch_abi1;
    fake_set(&f, "path", g_tmp);
    write_old_file(tp("one.csv"), "1\n");
    write_old_file(tp("two.csv"), "BAD\n");
    start(&f);
    WAIT_FOR(exists(tp("done/one.csv")) && exists(tp("failed/two.csv.errors")), "both files");
    ck_assert_uint_eq(calls_for(&f, NULL), 2);
    ck_assert_uint_eq(f.nbatches, 0);
    stop_free(&f);

    /* a host newer than the plugin knows is refused */
    void *state = NULL;
    fake_init(&f, "t");
    f.host.abi_version = PP_COLLECTOR_ABI_VERSION + 1;
    fake_set(&f, "path", g_tmp);
    ck_assert_int_eq(g_def->init(&f.host, &state), -1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "ABI"), 1);
    fake_free(&f);
}
END_TEST

/* ---- races and long names (issue 10) --------------------------------------- */

/*
 * Interposes renameat2() and linkat() (the test binary exports them, see the
 * Makefile): when g_rename_swap is armed, the swap happens inside the
 * plugin's rename (or link) of that name — after any check the plugin made,
 * just before the kernel acts. With g_no_noreplace, renameat2 answers
 * RENAME_NOREPLACE with EINVAL, as file systems without it do.
 */
static struct swap *g_rename_swap;
static bool g_no_noreplace;
/* While set, renaming a report into place (a name ending in ".errors") fails
 * with ENOSPC, as on a full disk. */
static atomic_bool g_report_enospc;

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags)
{
    static int (*real)(int, const char *, int, const char *, unsigned int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "renameat2");
    size_t nl = strlen(newpath);
    if (atomic_load(&g_report_enospc) && nl > 7 && strcmp(newpath + nl - 7, ".errors") == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (g_no_noreplace && (flags & RENAME_NOREPLACE)) {
        errno = EINVAL;
        return -1;
    }
    if (g_rename_swap)
        swap_file(g_rename_swap, oldpath);
    return real(olddirfd, oldpath, newdirfd, newpath, flags);
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)
{
    static int (*real)(int, const char *, int, const char *, int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "linkat");
    if (g_rename_swap)
        swap_file(g_rename_swap, oldpath);
    return real(olddirfd, oldpath, newdirfd, newpath, flags);
}

/*
 * Issue 10 #1: a second file renamed into the spool under the name of one
 * being ingested must not land in done/ unjournaled; it is ingested itself.
 * 0: renamed over it during submission (ABI 2 batch); 1: unlinked and linked
 * during submission (no inotify event: a look scheduled by the plugin finds
 * it); 2: renamed over it inside the plugin's own rename into done/ (after
 * its check: the file moved is put back); 3: the same on a file system
 * without RENAME_NOREPLACE, inside the plugin's link into done/.
 */
START_TEST(test_replaced_while_ingested)
{
    struct fake f;
    struct swap w;
    memset(&w, 0, sizeof w);
    atomic_init(&w.done, false);
    w.name = "race.csv";
    w.how = _i == 1 ? SWAP_LINK : SWAP_RENAME;
    ck_assert_int_eq(mkdir(tp("outside"), 0750), 0);
    snprintf(w.src, sizeof w.src, "%s", tp("outside/second"));
    snprintf(w.dst, sizeof w.dst, "%s", tp("race.csv"));
    write_old_file(w.src, "second\n");
    write_old_file(tp("race.csv"), "first\n");

    fake_init(&f, "t");
    if (_i == 0)
        fake_batch(&f);
    fake_set(&f, "path", g_tmp);
    fake_set(&f, "rescan", "3600");
    if (_i >= 2)
        g_rename_swap = &w;
    else
        f.on_submit = swap_on_submit, f.on_submit_arg = &w;
    g_no_noreplace = _i == 3;
    start(&f);

    WAIT_FOR(atomic_load(&w.done), "the swap");
    WAIT_FOR(calls_with_data(&f, "second\n") == 1, "the second file to be submitted");
    WAIT_FOR(exists(tp("done/race.csv")) && !exists(tp("race.csv")), "done/race.csv");
    stop(&f);
    g_rename_swap = NULL;
    g_no_noreplace = false;
    if (_i == 2)
        ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, "back in the spool as race.csv"), 1);
    ck_assert_uint_eq(calls_with_data(&f, "first\n"), 1);
    ck_assert_uint_eq(calls_for(&f, "race.csv"), 2);
    /* the first file was replaced by its writer: only the second is kept */
    assert_content(tp("done/race.csv"), "second\n");
    ck_assert(!exists(tp("done/race.csv.1")));
    fake_free(&f);
}
END_TEST

/* prefix, then `times` copies of unit, then suffix, into buf. */
static const char *repeat(char *buf, size_t len, const char *prefix, const char *unit,
                          int times, const char *suffix)
{
    size_t used = (size_t)snprintf(buf, len, "%s", prefix);
    for (int i = 0; i < times; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s", unit);
    snprintf(buf + used, len - used, "%s", suffix);
    ck_assert_uint_lt(strlen(buf), len - 1);
    return buf;
}

/*
 * Issue 10 #2: a 254-byte name already in done/ (name.1 would pass NAME_MAX)
 * moves under a shorter unique name — the stem cut before a whole UTF-8
 * character, the extension kept — and is logged with both names.
 */
START_TEST(test_long_name_done)
{
    struct fake f;
    char name[512], short_name[512], line[1100];
    /* "a" + 83 x 园 (3 bytes each) + ".csv" = 254 bytes */
    repeat(name, sizeof name, "a", "园", 83, ".csv");
    ck_assert_uint_eq(strlen(name), 254);
    /* 255 - strlen("~1.csv") = 249 bytes of stem would cut the 83rd 园: 247 */
    repeat(short_name, sizeof short_name, "a", "园", 82, "~1.csv");
    ck_assert_int_eq(mkdir(tp("done"), 0750), 0);
    write_old_file(tp("done/%s", name), "older\n");
    write_old_file(tp("%s", name), "newer\n");

    spool_start(&f, "t", "1");
    WAIT_FOR(!exists(tp("%s", name)), "the long name to leave the spool");
    snprintf(line, sizeof line, "ingested %s (ok), kept as done/%s", name, short_name);
    WAIT_LOG(&f, PP_LOG_INFO, line);
    sleep_ms(1200); /* a rescan: nothing is taken again */
    stop(&f);

    assert_content(tp("done/%s", short_name), "newer\n");
    assert_content(tp("done/%s", name), "older\n");
    ck_assert(text_utf8_valid(short_name, strlen(short_name), NULL));
    ck_assert_uint_eq(calls_for(&f, name), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_ERR, "cannot move"), 0);
    fake_free(&f);
}
END_TEST

/*
 * Issue 10 #8: a refused 250-byte name has no room for NAME.errors.tmp in
 * failed/: it moves there under a shorter unique name, beside its report,
 * which names the original file.
 */
START_TEST(test_long_name_failed)
{
    struct fake f;
    char name[512], short_name[512], report[sizeof name + 32];
    /* 82 x 园 + ".csv" = 250 bytes; 255 - strlen(".errors.tmp") - strlen("~1.csv")
     * = 238 bytes of stem, cut to 237 (79 whole characters) */
    repeat(name, sizeof name, "", "园", 82, ".csv");
    ck_assert_uint_eq(strlen(name), 250);
    repeat(short_name, sizeof short_name, "", "园", 79, "~1.csv");
    write_old_file(tp("%s", name), "header\nBAD row\n");

    spool_start(&f, "t", "1");
    WAIT_FOR(!exists(tp("%s", name)), "the long name to leave the spool");
    WAIT_FOR(exists(tp("failed/%s.errors", short_name)), "its report");
    sleep_ms(1200); /* a rescan: nothing is taken again */
    stop(&f);

    assert_content(tp("failed/%s", short_name), "header\nBAD row\n");
    ck_assert(text_utf8_valid(short_name, strlen(short_name), NULL));
    char *rep = slurp(tp("failed/%s.errors", short_name));
    ck_assert_ptr_nonnull(rep);
    snprintf(report, sizeof report, "%s:2: bad row\n", name);
    ck_assert_msg(strstr(rep, report) != NULL, "report lacks the bad row: %s", rep);
    ck_assert_msg(strncmp(rep, name, strlen(name)) == 0, "report does not start with the "
                  "original name: %s", rep);
    free(rep);
    ck_assert_uint_eq(calls_for(&f, name), 1);
    ck_assert_uint_eq(logs_with(&f, PP_LOG_WARN, short_name), 1);
    fake_free(&f);
}
END_TEST

/*
 * Issue 10 #12: a file a rescan skipped as modified less than 2 s ago is
 * looked at again when it is 2 s old, not at the next rescan (an hour here).
 */
START_TEST(test_recent_file_rechecked)
{
    struct fake f;
    spool_host(&f, "t", "3600");
    write_file(tp("fresh.csv"), "fresh\n"); /* before start: no inotify event */
    start(&f);
    int64_t deadline = now_ms() + 10000;
    while (!exists(tp("done/fresh.csv")) && now_ms() < deadline)
        sleep_ms(50);
    ck_assert_msg(exists(tp("done/fresh.csv")), "fresh.csv still waits for the rescan");
    ck_assert_uint_eq(calls_for(&f, "fresh.csv"), 1);
    stop_free(&f);
}
END_TEST

/*
 * A refused file whose report cannot be written (a full disk) stays in the
 * spool, with no half-written report left behind, and moves to failed/ with
 * its report once space is back: never a file in failed/ without its report.
 */
START_TEST(test_report_on_full_disk)
{
    struct fake f;
    write_old_file(tp("bad.csv"), "header\nBAD row\n");
    atomic_store(&g_report_enospc, true);
    spool_start(&f, "t", "1");
    WAIT_FOR(logs_with(&f, PP_LOG_ERR, "left in the spool") >= 1, "the refusal to be logged");
    ck_assert(exists(tp("bad.csv")));
    ck_assert(!exists(tp("failed/bad.csv")));
    ck_assert(!exists(tp("failed/bad.csv.errors")));
    ck_assert(!exists(tp("failed/bad.csv.errors.tmp")));
    atomic_store(&g_report_enospc, false);
    WAIT_FOR(exists(tp("failed/bad.csv")), "the file to move to failed/ once space is back");
    stop(&f);
    ck_assert(exists(tp("failed/bad.csv.errors")));
    ck_assert(!exists(tp("failed/bad.csv.errors.tmp")));
    ck_assert(!exists(tp("bad.csv")));
    fake_free(&f);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = check_tcase(s, "init", setup, teardown, 0);
    tcase_add_loop_test(tc, test_init_options, 0,
                        (int)(sizeof init_cases / sizeof init_cases[0]));
    tcase_add_test(tc, test_init_directories);
    tcase_add_test(tc, test_errno_text_in_log);

    tc = check_tcase(s, "run", setup, teardown, 30);
    tcase_add_test(tc, test_ingest_flow);
    tcase_add_test(tc, test_retry_on_error);
    tcase_add_test(tc, test_file_types);
    tcase_add_test(tc, test_name_collisions);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_file_still_open);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_two_instances);
    tcase_add_test(tc, test_directory_recreated);
    tcase_add_test(tc, test_batch_submission);
    tcase_add_test(tc, test_batch_bound);
    tcase_add_test(tc, test_abi1_host);
    tcase_add_loop_test(tc, test_replaced_while_ingested, 0, 4);
    tcase_add_test(tc, test_long_name_done);
    tcase_add_test(tc, test_long_name_failed);
    tcase_add_test(tc, test_recent_file_rechecked);
    tcase_add_test(tc, test_report_on_full_disk);
    return s;
}

CHECK_MAIN(spool_suite)
