/*
 * store.c — the RRD files of README, Storage, and the only file that knows librrd.
 *
 * Each series lives in <rrd_dir>/<park>/<indicator>.rrd: step 86400 s, DS
 * `value` and DS `pace` (GAUGE, heartbeat 40 days), one RRA LAST:0.5:1:N with
 * N = 7400 (over 20 years of days), or for a series that spans more days than
 * that, its span rounded up to 7400 + a multiple of 1830 (about 5 years), so
 * that no month of a series ever rolls out of its file; a file too short for
 * the months to be appended is rebuilt longer. A file is created with its
 * "last update" at 00:00 UTC on the 1st of the series' first month, and month
 * M is written with the timestamp of 00:00 UTC on the 1st of month M+1, so
 * every daily row of M holds M's value and no row blends two months. A month without a figure is written as `U`.
 *
 * librrd takes no update in the past, so a write is one of two things:
 *   - append: the file already holds this series' months up to some month k,
 *     agreeing with the series (layout, first month, values), its RRA is long
 *     enough for the series with the new months, and nothing changed at or
 *     before k — months k+1.. go in with one rrd_update_r call;
 *   - rebuild: everything else. The whole series is written into <file>.tmp
 *     (again one rrd_update_r call) and renamed over the file, so a reader
 *     sees the old file or the new one.
 * The first month of an existing file cannot be read back from librrd (the
 * creation time is overwritten by the first update and rrd_first_r() only
 * reports the oldest row of the ring), so the append check fetches the file
 * and compares it with the series instead: every row before the series'
 * first month must be unknown and day 1 of each month up to k must hold the
 * series' value and pace.
 *
 * Nothing here is fsynced: the journal is the truth, and every RRD file is
 * rebuilt from it at a start that follows anything but a clean stop (main.c
 * removes the clean marker durably before the first write, and makes the
 * files durable with syncfs() before it writes the marker again), so a file
 * that a crash leaves behind stale or empty is never trusted. An fsync per
 * file and directory was most of the cost of ingesting a small file.
 *
 * The park directories are created as needed and remembered, so that a write
 * into a known directory makes no mkdir call; a directory removed behind our
 * back is found by the failed write, created again and the write retried.
 *
 * Months are those of pp_period_valid (model.h), from 1980-01: librrd reads
 * negative times wrongly, and `rrdtool fetch` and graphs refuse times before
 * 1980.
 *
 * Several threads write at once (ingest.c's RRD writers), each series' writes
 * serialised by a lock chosen by its path (store_write_lock_of), so that two
 * writes never share its .tmp file. librrd's rrd_create_r2, rrd_update_r,
 * rrd_info_r and rrd_fetch_r are reentrant on separate files and keep their
 * error per thread; only rrd_graph_v, which is not, holds a static mutex.
 * Every librrd call goes through one wrapper that
 * clears librrd's error before the call and logs it, with the file, after,
 * together with the system's reason: librrd often has none ("", or "Cannot
 * create temporary file") and leaves errno at ENOENT after cleaning up, so a
 * failed rrd_create tries to allocate as many bytes next to the file itself
 * to find the reason (ENOSPC, EFBIG, EDQUOT, ENOTDIR...).
 *
 * A write that fails after its series was found valid marks the series dirty
 * (a set of (rrd_dir, park, indicator) under its own mutex) until a write of
 * it succeeds: ingest.c writes dirty series again, and main.c writes the
 * clean-stop marker only while none is dirty, so that a start after a failed
 * write rebuilds the files from the journal.
 * store_graph (the last section) renders a series' graph for the HTTP
 * endpoint through the same mutex.
 */
#include "store.h"

#include "hash.h"
#include "log.h"
#include "pngout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <rrd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define STORE_STEP 86400L          /* one row per UTC day */
#define STORE_HEARTBEAT 3456000L   /* 40 days: above a month, below two */
#define STORE_ROWS 7400L           /* the shortest RRA: over 20 years of days */
#define STORE_ROWS_STEP 1830L      /* a longer RRA grows by about 5 years at a time */
#define STORE_HEADER_BYTES 4096L   /* above the header of a file with our layout */
#define STORE_UPDATE_MAX 96        /* "<time>:<value>:<pace>" with %.17g values */
#define STORE_NUM_MAX 32           /* one %.17g number or "U" */

/* Serialises rrd_graph_v, which is not reentrant (the other librrd calls
 * used here are, on separate files: their errors are per thread). */
static pthread_mutex_t store_rrd_lock = PTHREAD_MUTEX_INITIALIZER;
/* Whole writes of one series are serialised, so that two writers never share
 * its .tmp file nor interleave an append and a rebuild: by a lock of this
 * array, chosen by a hash of the file's path. Other series are written at the
 * same time. */
#define STORE_WRITE_LOCKS 64
static pthread_mutex_t store_write_lock[STORE_WRITE_LOCKS];
static pthread_once_t store_write_lock_once = PTHREAD_ONCE_INIT;
/* Guards store_dirs (the park directories known to exist). */
static pthread_mutex_t store_dirs_lock = PTHREAD_MUTEX_INITIALIZER;

static void store_write_lock_init(void)
{
    for (size_t i = 0; i < STORE_WRITE_LOCKS; i++)
        pthread_mutex_init(&store_write_lock[i], NULL);
}

/* The write lock of the file at path. */
static pthread_mutex_t *store_write_lock_of(const char *path)
{
    pthread_once(&store_write_lock_once, store_write_lock_init);
    uint64_t h = pp_hash_str(path);
    return &store_write_lock[(h ^ (h >> 32)) % STORE_WRITE_LOCKS];
}

/* ---- the librrd wrapper ------------------------------------------------- */

/* Copies librrd's error (this thread's) and, when librrd
 * gave none, the errno captured right after the failing call (sys_errno). */
static void store_rrd_error(char *buf, size_t len, int sys_errno)
{
    const char *e = rrd_get_error();
    if (e != NULL && e[0] != '\0')
        snprintf(buf, len, "%s", e);
    else if (sys_errno != 0)
        snprintf(buf, len, "librrd gave no reason (%s)", strerror(sys_errno));
    else
        snprintf(buf, len, "librrd gave no reason");
}

/* Why a file of `bytes` cannot be written at path: creates path.probe next to
 * it, allocates the bytes and removes it again. Returns the errno, or 0 when
 * that works. For failures that librrd does not explain. */
static int store_probe_errno(const char *path, long bytes)
{
    char probe[PATH_MAX];
    int n = snprintf(probe, sizeof probe, "%s.probe", path);
    if (n < 0 || (size_t)n >= sizeof probe)
        return ENAMETOOLONG;
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    int e = posix_fallocate(fd, 0, (off_t)bytes);
    close(fd);
    if (unlink(probe) != 0)
        log_warn_errno("store", "unlink %s", probe);
    return e == EINVAL || e == EOPNOTSUPP ? 0 : e; /* no fallocate there: no reason found */
}

static int store_rrd_create(const char *path, time_t start, long rows)
{
    char rra[64];
    snprintf(rra, sizeof rra, "RRA:LAST:0.5:1:%ld", rows);
    const char *defs[] = {
        "DS:value:GAUGE:3456000:U:U",
        "DS:pace:GAUGE:3456000:U:U",
        rra,
    };
    char err[512];

    rrd_clear_error();
    errno = 0;
    int rc = rrd_create_r2(path, (unsigned long)STORE_STEP, start, 1, NULL, NULL,
                           (int)(sizeof defs / sizeof defs[0]), defs);
    int sys_errno = errno;
    if (rc != 0)
        store_rrd_error(err, sizeof err, 0);
    rrd_clear_error();
    if (rc != 0) {
        /* librrd's errno is what its clean-up left (ENOENT): ask the system */
        int why = store_probe_errno(path, STORE_HEADER_BYTES + rows * 2 * (long)sizeof(double));
        if (why == 0 && strcmp(err, "librrd gave no reason") == 0)
            why = sys_errno;
        if (why != 0)
            log_err("store", "%s: rrd_create: %s (%s)", path, err, strerror(why));
        else
            log_err("store", "%s: rrd_create: %s", path, err);
        return -1;
    }
    return 0;
}

static int store_rrd_update(const char *path, int argc, const char **argv)
{
    char err[512];

    rrd_clear_error();
    errno = 0;
    int rc = rrd_update_r(path, NULL, argc, argv);
    int sys_errno = errno;
    if (rc != 0)
        store_rrd_error(err, sizeof err, sys_errno);
    rrd_clear_error();
    if (rc != 0) {
        log_err("store", "%s: rrd_update: %s", path, err);
        return -1;
    }
    return 0;
}

/* Returns librrd's info list (free with rrd_info_free) or NULL, logged. */
static rrd_info_t *store_rrd_info(const char *path)
{
    char err[512];

    rrd_clear_error();
    errno = 0;
    rrd_info_t *info = rrd_info_r(path);
    int sys_errno = errno;
    if (info == NULL)
        store_rrd_error(err, sizeof err, sys_errno);
    rrd_clear_error();
    if (info == NULL)
        log_err("store", "%s: rrd_info: %s", path, err);
    return info;
}

static void store_rrd_info_free(rrd_info_t *info)
{
    if (info == NULL)
        return;
    rrd_info_free(info);
}

/* The rows of the LAST RRA in (*start, *end]; on success *data holds
 * (*end - *start) / *step rows of *ds_cnt values (free with free()) and the
 * DS names have been checked to be value, pace. Returns 0 or -1, logged. */
static int store_rrd_fetch(const char *path, time_t *start, time_t *end, unsigned long *step,
                           unsigned long *ds_cnt, rrd_value_t **data)
{
    char err[512];
    char **names = NULL;
    rrd_value_t *rows = NULL;
    int bad_names = 0;

    rrd_clear_error();
    errno = 0;
    int rc = rrd_fetch_r(path, "LAST", start, end, step, ds_cnt, &names, &rows);
    int sys_errno = errno;
    if (rc != 0)
        store_rrd_error(err, sizeof err, sys_errno);
    rrd_clear_error();
    if (rc == 0) {
        bad_names = *ds_cnt != 2 || strcmp(names[0], "value") != 0 ||
                    strcmp(names[1], "pace") != 0;
        for (unsigned long i = 0; i < *ds_cnt; i++)
            rrd_freemem(names[i]);
        rrd_freemem(names);
    }
    if (rc != 0) {
        log_err("store", "%s: rrd_fetch: %s", path, err);
        return -1;
    }
    if (bad_names) {
        log_info("store", "%s: data sources are not value, pace", path);
        rrd_freemem(rows);
        return -1;
    }
    *data = rows;
    return 0;
}

/* ---- months and paths --------------------------------------------------- */

/* Days from 1970-01-01 to the 1st of `period` in the proleptic Gregorian
 * calendar (H. Hinnant's days_from_civil): what timegm computes, without its
 * cost in the loop over every month of a series. */
static long store_days_to_month(int period)
{
    long y = pp_period_year(period), m = pp_period_month(period);
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;                                  /* [0, 399] */
    long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;        /* [0, 365], from March */
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

long store_month_end(int period) { return store_days_to_month(period + 1) * STORE_STEP; }

/* 00:00 UTC on the first day of `period`. */
static long store_month_start(int period) { return store_month_end(period - 1); }

/* Days from the 1st of the series' first month to the end of its last: the
 * rows its RRA must keep. */
static long store_span_days(const store_series *s)
{
    return (store_month_end(s->first_period + (int)s->n - 1) -
            store_month_start(s->first_period)) / STORE_STEP;
}

/* The RRA length of a new file for a series of `span` days (see the top). */
static long store_rows_for(long span)
{
    if (span <= STORE_ROWS)
        return STORE_ROWS;
    return STORE_ROWS + (span - STORE_ROWS + STORE_ROWS_STEP - 1) / STORE_ROWS_STEP * STORE_ROWS_STEP;
}

int store_path(const char *rrd_dir, const char *park, const char *indicator, char *buf,
               size_t len)
{
    if (rrd_dir == NULL || buf == NULL || len == 0 || !pp_id_valid(park) ||
        !pp_id_valid(indicator))
        return -1;
    int n = snprintf(buf, len, "%s/%s/%s.rrd", rrd_dir, park, indicator);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return 0;
}

/* mkdir -p with mode 0755: the directory itself first, its parents only when
 * they are missing too. Returns 0 or -1, logged. */
static int store_mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof buf) {
        log_err("store", "%s: directory name too long", dir);
        return -1;
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        if (errno != ENOENT) {
            log_errno("store", "mkdir %s", buf);
            return -1;
        }
        for (char *p = buf + 1; ; p++) { /* a parent is missing too: from the top */
            if (*p != '/' && *p != '\0')
                continue;
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                log_errno("store", "mkdir %s", buf);
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_err("store", "%s: not a directory", buf);
        return -1;
    }
    return 0;
}

/*
 * The park directories known to exist, as FNV-1a hashes of their paths in an
 * open-addressing set (0 is a free slot) that doubles when half full, under
 * store_dirs_lock (writes of other series run at the same time). A false hit — two paths, one hash — only skips a
 * mkdir: the write then fails and store_write makes the directory and retries.
 */
static struct {
    uint64_t *slot;
    size_t cap, n;
} store_dirs;

static uint64_t store_dir_hash(const char *dir)
{
    uint64_t h = pp_hash_str(dir);
    return h ? h : 1;
}

/* The slot of h, or the free slot where it would go (cap must be > 0). */
static size_t store_dir_slot(uint64_t h)
{
    size_t i = (size_t)(h ^ (h >> 31)) & (store_dirs.cap - 1);
    while (store_dirs.slot[i] != 0 && store_dirs.slot[i] != h)
        i = (i + 1) & (store_dirs.cap - 1);
    return i;
}

static bool store_dir_known(const char *dir)
{
    pthread_mutex_lock(&store_dirs_lock);
    bool known = store_dirs.cap > 0 && store_dirs.slot[store_dir_slot(store_dir_hash(dir))] != 0;
    pthread_mutex_unlock(&store_dirs_lock);
    return known;
}

/* Remembers dir; out of memory, it is simply not remembered. */
static void store_dir_remember(const char *dir)
{
    pthread_mutex_lock(&store_dirs_lock);
    if (2 * (store_dirs.n + 1) > store_dirs.cap) {
        size_t old_cap = store_dirs.cap, cap = old_cap ? 2 * old_cap : 64;
        uint64_t *old = store_dirs.slot, *slot = calloc(cap, sizeof *slot);
        if (slot == NULL) {
            pthread_mutex_unlock(&store_dirs_lock);
            return;
        }
        store_dirs.slot = slot;
        store_dirs.cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i] != 0)
                store_dirs.slot[store_dir_slot(old[i])] = old[i];
        free(old);
    }
    uint64_t h = store_dir_hash(dir);
    size_t i = store_dir_slot(h);
    if (store_dirs.slot[i] == 0) {
        store_dirs.slot[i] = h;
        store_dirs.n++;
    }
    pthread_mutex_unlock(&store_dirs_lock);
}

/* Forgets every directory (one was removed: any may have been). */
static void store_dirs_forget(void)
{
    pthread_mutex_lock(&store_dirs_lock);
    if (store_dirs.cap > 0)
        memset(store_dirs.slot, 0, store_dirs.cap * sizeof *store_dirs.slot);
    store_dirs.n = 0;
    pthread_mutex_unlock(&store_dirs_lock);
}

/* ---- writing ------------------------------------------------------------ */

static double store_at(const double *a, size_t i) { return a == NULL ? NAN : a[i]; }

/*
 * v as a short decimal "[-]n[.nnn]" when v is exactly the double nearest to
 * n / 10^k for an integer n < 10^15 and k <= 6 — most figures are, having a
 * few decimals. Then strtod reads the text back as v: n and 10^k are exact
 * doubles and their quotient is correctly rounded, as strtod is. Returns the
 * length written into buf (at least 24 bytes), or 0 when v is not one.
 */
static size_t store_short_decimal(double v, char *buf)
{
    static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
    double a = fabs(v);
    if (!(a < 1e15))
        return 0;
    for (int k = 0; k < (int)(sizeof p10 / sizeof p10[0]); k++) {
        double n = nearbyint(a * p10[k]);
        if (n >= 1e15)
            return 0;
        if (n / p10[k] != a)
            continue;
        char digits[24];
        int nd = 0;
        for (unsigned long long u = (unsigned long long)n; u > 0 || nd <= k; u /= 10)
            digits[nd++] = (char)('0' + u % 10);
        size_t len = 0;
        if (signbit(v))
            buf[len++] = '-';
        while (nd > k)
            buf[len++] = digits[--nd];
        if (k > 0) {
            buf[len++] = '.';
            while (nd > 0)
                buf[len++] = digits[--nd];
        }
        buf[len] = '\0';
        return len;
    }
    return 0;
}

/* One number as rrd_update reads it: a short decimal, else the shorter of
 * %.15g and %.17g that reads back as v; U for unknown. librrd parses every
 * character, so the short forms also save it work. */
static void store_format_num(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "U");
        return;
    }
    if (len >= 24 && store_short_decimal(v, buf) > 0)
        return;
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
}

/* Writes months s->first_period+from .. s->first_period+n_all-1 (indexes
 * `from` ..) with one rrd_update_r call. Returns 0 or -1, logged. */
static int store_update_months(const char *path, const store_series *s, size_t from)
{
    size_t count = s->n - from;
    char *text = malloc(count * STORE_UPDATE_MAX);
    const char **argv = malloc(count * sizeof *argv);
    int rc = -1;

    if (text == NULL || argv == NULL) {
        log_err("store", "%s: out of memory for %zu months", path, count);
        goto out;
    }
    if (count > INT_MAX) {
        log_err("store", "%s: too many months (%zu)", path, count);
        goto out;
    }
    for (size_t j = 0; j < count; j++) {
        size_t i = from + j;
        char v[STORE_NUM_MAX], p[STORE_NUM_MAX];
        store_format_num(store_at(s->value, i), v, sizeof v);
        store_format_num(store_at(s->pace, i), p, sizeof p);
        char *line = text + j * STORE_UPDATE_MAX;
        int n = snprintf(line, STORE_UPDATE_MAX, "%ld:", store_month_end(s->first_period + (int)i));
        size_t lv = strlen(v), lp = strlen(p);
        if (n < 0 || (size_t)n + lv + 1 + lp >= STORE_UPDATE_MAX) {
            log_err("store", "%s: update line too long", path);
            goto out;
        }
        memcpy(line + n, v, lv);
        line[n + lv] = ':';
        memcpy(line + n + lv + 1, p, lp + 1);
        argv[j] = line;
    }
    rc = store_rrd_update(path, (int)count, argv);
out:
    free(argv);
    free(text);
    return rc;
}

/* Equal as stored: both unknown, or the same number up to librrd's
 * arithmetic (value * seconds / seconds). */
static int store_same(double stored, double want)
{
    if (!isfinite(want))
        return isnan(stored);
    if (isnan(stored))
        return 0;
    return fabs(stored - want) <= 1e-9 * fmax(fabs(stored), fabs(want));
}

/* Looks up an integer (RD_I_CNT) or string (RD_I_STR) in an info list. */
static const rrd_info_t *store_info_find(const rrd_info_t *info, const char *key)
{
    for (const rrd_info_t *p = info; p != NULL; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    return NULL;
}

static int store_info_cnt(const rrd_info_t *info, const char *key, unsigned long want)
{
    const rrd_info_t *p = store_info_find(info, key);
    return p != NULL && p->type == RD_I_CNT && p->value.u_cnt == want;
}

static int store_info_str(const rrd_info_t *info, const char *key, const char *want)
{
    const rrd_info_t *p = store_info_find(info, key);
    return p != NULL && p->type == RD_I_STR && p->value.u_str != NULL &&
           strcmp(p->value.u_str, want) == 0;
}

/* Reads an existing file's layout, last update and RRA length. Returns 0 and
 * sets *last and *rows when the file has our layout (one LAST RRA of any
 * length); -1 otherwise. */
static int store_check_layout(const char *path, time_t *last, long *rows)
{
    rrd_info_t *info = store_rrd_info(path);
    int ok = 0;

    if (info == NULL)
        return -1;
    const rrd_info_t *lu = store_info_find(info, "last_update");
    const rrd_info_t *rr = store_info_find(info, "rra[0].rows");
    ok = lu != NULL && lu->type == RD_I_CNT && rr != NULL && rr->type == RD_I_CNT &&
         rr->value.u_cnt >= 1 && rr->value.u_cnt <= LONG_MAX &&
         store_info_cnt(info, "step", (unsigned long)STORE_STEP) &&
         store_info_str(info, "ds[value].type", "GAUGE") &&
         store_info_str(info, "ds[pace].type", "GAUGE") &&
         store_info_cnt(info, "ds[value].minimal_heartbeat", (unsigned long)STORE_HEARTBEAT) &&
         store_info_cnt(info, "ds[pace].minimal_heartbeat", (unsigned long)STORE_HEARTBEAT) &&
         store_info_str(info, "rra[0].cf", "LAST") &&
         store_info_cnt(info, "rra[0].pdp_per_row", 1) &&
         store_info_find(info, "rra[1].cf") == NULL;
    if (ok) {
        *last = (time_t)lu->value.u_cnt;
        *rows = (long)rr->value.u_cnt;
    }
    store_rrd_info_free(info);
    if (!ok)
        log_info("store", "%s: layout differs from this version's, rebuilding", path);
    return ok ? 0 : -1;
}

/* Decides whether the series can be appended to the existing file. Returns
 * the index (0 .. s->n) of the first month to write, or -1 to rebuild. */
static long store_append_from(const char *path, const store_series *s)
{
    time_t last;
    time_t start, end;
    unsigned long step = 0, ds_cnt = 0;
    rrd_value_t *rows = NULL;
    long from = -1, n_ring = 0;

    if (store_check_layout(path, &last, &n_ring) != 0)
        return -1;
    if (n_ring < store_span_days(s)) {
        log_info("store", "%s: %ld days do not fit its %ld rows, rebuilding it longer", path,
                 store_span_days(s), n_ring);
        return -1;
    }

    /* The last month written, k: the file's last update is the end of k. */
    struct tm tm;
    if (gmtime_r(&last, &tm) == NULL || tm.tm_mday != 1 || tm.tm_hour != 0 ||
        tm.tm_min != 0 || tm.tm_sec != 0)
        return -1;
    int k = pp_period_make(tm.tm_year + 1900, tm.tm_mon + 1) - 1;
    int first = s->first_period;
    if (store_month_end(k) != (long)last || k < first - 1 || k > first + (int)s->n - 1)
        return -1;
    if (s->changed_from <= k)
        return -1;

    /* The file must hold this series up to k: nothing before its first month,
     * and each month's value and pace on day 1 of the month. */
    start = last - (time_t)n_ring * (time_t)STORE_STEP;
    if (start < 0)
        start = 0; /* librrd rounds negative times the wrong way */
    end = last;
    if (store_rrd_fetch(path, &start, &end, &step, &ds_cnt, &rows) != 0)
        return -1;
    if (step != (unsigned long)STORE_STEP || end <= start) {
        log_info("store", "%s: unexpected fetch step %lu", path, step);
        goto out;
    }
    long n_rows = (long)((end - start) / (time_t)step);
    long first_start = store_month_start(first);
    for (long r = 0; r < n_rows; r++) {
        long row_end = (long)start + (r + 1) * (long)step;
        if (row_end > first_start)
            break;
        if (!isnan(rows[r * 2]) || !isnan(rows[r * 2 + 1])) {
            log_info("store", "%s: holds data before the series' first month", path);
            goto out;
        }
    }
    for (int m = first; m <= k; m++) {
        long row_end = store_month_start(m) + STORE_STEP;
        long r = (row_end - (long)start) / (long)step - 1;
        if (r < 0 || r >= n_rows)
            goto out; /* cannot be: the ring holds the whole series */
        size_t i = (size_t)(m - first);
        if (!store_same(rows[r * 2], store_at(s->value, i)) ||
            !store_same(rows[r * 2 + 1], store_at(s->pace, i))) {
            log_info("store", "%s: differs from the series, rebuilding", path);
            goto out;
        }
    }
    from = (long)(k - first + 1);
out:
    rrd_freemem(rows);
    return from;
}

/* Writes the whole series into <path>.tmp and renames it over <path>. */
static int store_rebuild(const char *path, const store_series *s)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        log_err("store", "%s: path too long", path);
        return -1;
    }
    if (unlink(tmp) != 0 && errno != ENOENT) {
        log_errno("store", "unlink %s", tmp);
        return -1;
    }
    if (store_rrd_create(tmp, (time_t)store_month_start(s->first_period),
                         store_rows_for(store_span_days(s))) != 0)
        goto fail;
    if (store_update_months(tmp, s, 0) != 0)
        goto fail;
    /* no fsync: see the top of this file */
    if (rename(tmp, path) != 0) {
        log_errno("store", "rename %s to %s", tmp, path);
        goto fail;
    }
    return 0;
fail:
    if (unlink(tmp) != 0 && errno != ENOENT)
        log_errno("store", "unlink %s", tmp);
    return -1;
}

int store_write(const char *rrd_dir, const store_series *s)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int rc = -1;

    if (rrd_dir == NULL || rrd_dir[0] == '\0' || s == NULL) {
        log_err("store", "store_write: no directory or series");
        return -1;
    }
    if (!pp_id_valid(s->park) || !pp_id_valid(s->indicator)) {
        log_err("store", "refusing invalid park or indicator id");
        return -1;
    }
    if (s->n == 0)
        return 0;
    int max = pp_period_make(PP_PERIOD_MAX_YEAR, 12);
    if (!pp_period_valid(s->first_period) || s->n > (size_t)(max - s->first_period) + 1) {
        log_err("store", "%s/%s: months out of range", s->park, s->indicator);
        return -1;
    }
    int n = snprintf(dir, sizeof dir, "%s/%s", rrd_dir, s->park);
    if (n < 0 || (size_t)n >= sizeof dir ||
        store_path(rrd_dir, s->park, s->indicator, path, sizeof path) != 0) {
        log_err("store", "%s/%s: path too long under %s", s->park, s->indicator, rrd_dir);
        return -1;
    }

    pthread_mutex_t *lock = store_write_lock_of(path);
    pthread_mutex_lock(lock);
    struct stat st;
    bool made_dir = false;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            log_warn_errno("store", "stat %s", path);
        /* no file yet: its directory may be missing too */
        if (!store_dir_known(dir)) {
            if (store_mkdirs(dir) != 0)
                goto out;
            store_dir_remember(dir);
            made_dir = true;
        }
    } else if (S_ISREG(st.st_mode)) {
        long from = store_append_from(path, s);
        if (from >= 0 && (size_t)from == s->n) {
            rc = 0; /* the file already holds every month */
            goto out;
        }
        if (from >= 0) {
            if (store_update_months(path, s, (size_t)from) == 0) {
                rc = 0;
                goto out;
            }
            log_warn("store", "%s: append failed, rebuilding", path);
        }
    }
    rc = store_rebuild(path, s);
    if (rc != 0 && !made_dir && stat(dir, &st) != 0 && errno == ENOENT) {
        /* a directory we knew was removed behind our back: make it again */
        log_warn("store", "%s vanished; creating it again", dir);
        store_dirs_forget();
        if (store_mkdirs(dir) == 0) {
            store_dir_remember(dir);
            rc = store_rebuild(path, s);
        }
    }
out:
    pthread_mutex_unlock(lock);
    if (rc == 0)
        store_dirty_clear(rrd_dir, s->park, s->indicator);
    else
        store_dirty_mark(rrd_dir, s->park, s->indicator);
    return rc;
}

/* ---- dirty series ------------------------------------------------------- */

typedef struct store_dirty_entry {
    char *rrd_dir;
    store_key key;
} store_dirty_entry;

/* The dirty series, unordered. `lost` counts marks that could not be kept
 * (out of memory): they keep store_dirty_count above 0 for good, so that the
 * clean-stop marker is never written and the next start rebuilds every file. */
static struct {
    pthread_mutex_t lock;
    store_dirty_entry *v;
    size_t n, cap, lost;
} store_dirty = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool store_dirty_is(const store_dirty_entry *e, const char *rrd_dir, const char *park,
                           const char *indicator)
{
    return strcmp(e->key.park, park) == 0 && strcmp(e->key.indicator, indicator) == 0 &&
           strcmp(e->rrd_dir, rrd_dir) == 0;
}

void store_dirty_mark(const char *rrd_dir, const char *park, const char *indicator)
{
    if (rrd_dir == NULL || !pp_id_valid(park) || !pp_id_valid(indicator))
        return;
    pthread_mutex_lock(&store_dirty.lock);
    for (size_t i = 0; i < store_dirty.n; i++)
        if (store_dirty_is(&store_dirty.v[i], rrd_dir, park, indicator))
            goto out;
    if (store_dirty.n == store_dirty.cap) {
        size_t cap = store_dirty.cap ? 2 * store_dirty.cap : 16;
        store_dirty_entry *v = realloc(store_dirty.v, cap * sizeof *v);
        if (v == NULL) {
            store_dirty.lost++;
            goto out;
        }
        store_dirty.v = v;
        store_dirty.cap = cap;
    }
    store_dirty_entry *e = &store_dirty.v[store_dirty.n];
    e->rrd_dir = strdup(rrd_dir);
    if (e->rrd_dir == NULL) {
        store_dirty.lost++;
        goto out;
    }
    snprintf(e->key.park, sizeof e->key.park, "%s", park);
    snprintf(e->key.indicator, sizeof e->key.indicator, "%s", indicator);
    store_dirty.n++;
out:
    pthread_mutex_unlock(&store_dirty.lock);
}

void store_dirty_clear(const char *rrd_dir, const char *park, const char *indicator)
{
    if (rrd_dir == NULL || park == NULL || indicator == NULL)
        return;
    pthread_mutex_lock(&store_dirty.lock);
    for (size_t i = 0; i < store_dirty.n; i++) {
        if (store_dirty_is(&store_dirty.v[i], rrd_dir, park, indicator)) {
            free(store_dirty.v[i].rrd_dir);
            store_dirty.v[i] = store_dirty.v[--store_dirty.n];
            break;
        }
    }
    if (store_dirty.n == 0) { /* hand the memory back */
        free(store_dirty.v);
        store_dirty.v = NULL;
        store_dirty.cap = 0;
    }
    pthread_mutex_unlock(&store_dirty.lock);
}

size_t store_dirty_count(const char *rrd_dir)
{
    size_t n = 0;
    pthread_mutex_lock(&store_dirty.lock);
    for (size_t i = 0; i < store_dirty.n; i++)
        if (rrd_dir == NULL || strcmp(store_dirty.v[i].rrd_dir, rrd_dir) == 0)
            n++;
    n += store_dirty.lost;
    pthread_mutex_unlock(&store_dirty.lock);
    return n;
}

size_t store_dirty_list(const char *rrd_dir, store_key *keys, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&store_dirty.lock);
    for (size_t i = 0; i < store_dirty.n && n < max; i++)
        if (rrd_dir == NULL || strcmp(store_dirty.v[i].rrd_dir, rrd_dir) == 0)
            keys[n++] = store_dirty.v[i].key;
    pthread_mutex_unlock(&store_dirty.lock);
    return n;
}

/* ---- graphs ------------------------------------------------------------- */

/*
 * store_graph builds the argument vector of `rrdtool graphv - …` and calls
 * rrd_graph_v, which hands the image back in its info list ("image" blob).
 * Caller text goes through store_graph_text first. What librrd 1.7.2 does
 * with text, measured with `rrdtool graphv`:
 *   - in a graph element (LINE, COMMENT, GPRINT) ':' separates fields and
 *     "\:" is a literal colon — the only escape there is;
 *   - '\' is otherwise kept as it is ("\\" shows two backslashes), a '\'
 *     just before one of our ':' separators would swallow it, and "\x" at
 *     the very end of a legend is a justification code (\l \r \c \j \g \s;
 *     any other letter is an error). There is no way to escape a backslash,
 *     so caller text has each '\' replaced by U+FF3C '＼', which looks alike;
 *   - a GPRINT format is printf's: '%' in caller text becomes "%%";
 *   - options (--title, --vertical-label) take their text as it is.
 * Control characters are dropped and invalid UTF-8 becomes '?', so Pango
 * never sees either.
 */

#define STORE_GRAPH_TEXT_MAX 1024      /* bytes of caller text kept per string */
#define STORE_GRAPH_ARGS_MAX 40

enum { STORE_TEXT_OPTION = 0, STORE_TEXT_ELEMENT = 1, STORE_TEXT_FORMAT = 3 };

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t store_utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0; /* overlong, out of range, surrogate, or a C1 control */
    return n;
}

/* Caller text made safe for one rrdtool argument (see above); `how` is
 * STORE_TEXT_OPTION, _ELEMENT or _FORMAT. Returns a malloc'd string (empty
 * for NULL) or NULL when out of memory. */
static char *store_graph_text(const char *in, int how)
{
    const unsigned char *s = (const unsigned char *)(in != NULL ? in : "");
    size_t n = strnlen((const char *)s, STORE_GRAPH_TEXT_MAX);
    char *out = malloc(n * 3 + 1); /* worst case: '\' becomes 3 bytes */
    size_t o = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = store_utf8_len(s + i);
        if (k == 0 || i + k > n) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (k > 1) {
            memcpy(out + o, s + i, k);
            o += k;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            out[o++] = ' ';
        } else if (c < 0x20 || c == 0x7f) {
            ; /* other control characters are dropped */
        } else if (c == '\\') {
            memcpy(out + o, "\xef\xbc\xbc", 3);
            o += 3;
        } else if (c == ':' && (how & STORE_TEXT_ELEMENT)) {
            out[o++] = '\\';
            out[o++] = ':';
        } else if (c == '%' && how == STORE_TEXT_FORMAT) {
            out[o++] = '%';
            out[o++] = '%';
        } else {
            out[o++] = (char)c;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

/* The argument vector under construction: every string malloc'd. */
typedef struct store_args {
    char *v[STORE_GRAPH_ARGS_MAX + 1];
    int n;
    int failed;
} store_args;

static void store_arg(store_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void store_arg(store_args *a, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (a->failed)
        return;
    va_start(ap, fmt);
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (rc < 0 || a->n >= STORE_GRAPH_ARGS_MAX) {
        if (rc >= 0)
            free(s);
        a->failed = 1;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void store_args_free(store_args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

/* --x-grid for monthly data: a label ("2021-03", or "2021" over long spans)
 * centred under each labelled month or year, as many as fit the width, and
 * a thin line per month (or quarter) while they are at least 10 pixels wide. Writes ""
 * (rrdtool's own grid) when the span is not whole months. */
static void store_graph_xgrid(long start, long end, int width, char *buf, size_t len)
{
    static const int steps[] = { 1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200 };
    time_t ts = (time_t)start, te = (time_t)end;
    struct tm a, b;

    buf[0] = '\0';
    if (gmtime_r(&ts, &a) == NULL || gmtime_r(&te, &b) == NULL)
        return;
    long months = (long)(b.tm_year - a.tm_year) * 12 + (b.tm_mon - a.tm_mon);
    if (months <= 0)
        return;
    long fit = width / 64 > 1 ? width / 64 : 1;      /* labels that fit side by side */
    int k = steps[sizeof steps / sizeof steps[0] - 1];
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if ((months + steps[i] - 1) / steps[i] <= fit) {
            k = steps[i];
            break;
        }
    }
    const char *minor = (long)width >= 10 * months ? "MONTH:1"
                        : (long)width >= 10 * (months / 3) ? "MONTH:3" : "YEAR:1";
    if (k < 12 && months <= 12 && a.tm_year == b.tm_year - (b.tm_mon == 0 && b.tm_mday == 1))
        snprintf(buf, len, "%s:MONTH:%d:MONTH:%d:%ld:%%-m月", minor, k, k, 30L * 86400); /* one year */
    else if (k < 12)
        snprintf(buf, len, "%s:MONTH:%d:MONTH:%d:%ld:%%Y-%%m", minor, k, k, 30L * 86400);
    else
        snprintf(buf, len, "%s:YEAR:%d:YEAR:%d:%ld:%%Y", k == 12 ? minor : "YEAR:1", k / 12,
                 k / 12, 365L * 86400);
}

/* The caller's strings, each made safe for where it goes (store_graph_text). */
typedef struct store_graph_texts {
    char *title, *unit, *unit_fmt, *vlab, *plab;
    char *comment, *latest, *yoy, *target, *unit_el;
} store_graph_texts;

static void store_graph_texts_free(store_graph_texts *t)
{
    free(t->title);
    free(t->unit);
    free(t->unit_fmt);
    free(t->vlab);
    free(t->plab);
    free(t->comment);
    free(t->latest);
    free(t->yoy);
    free(t->target);
    free(t->unit_el);
}

/* Fills t from spec; a target that is not a finite number becomes "" (no
 * target line at all). Returns 0 or -ENOMEM; t is freed by the caller. */
static int store_graph_texts_make(const store_graph_spec *spec, store_graph_texts *t)
{
    t->title = store_graph_text(spec->title, STORE_TEXT_OPTION);
    t->unit = store_graph_text(spec->unit, STORE_TEXT_OPTION);
    t->unit_fmt = store_graph_text(spec->unit, STORE_TEXT_FORMAT);
    t->vlab = store_graph_text(spec->value_label, STORE_TEXT_ELEMENT);
    t->plab = store_graph_text(spec->pace_label, STORE_TEXT_ELEMENT);
    t->comment = store_graph_text(spec->comment, STORE_TEXT_ELEMENT);
    t->latest = store_graph_text(spec->latest, STORE_TEXT_ELEMENT);
    t->yoy = store_graph_text(spec->yoy, STORE_TEXT_ELEMENT);
    t->target = store_graph_text(spec->target, STORE_TEXT_ELEMENT);
    t->unit_el = store_graph_text(spec->unit, STORE_TEXT_ELEMENT);
    if (t->title == NULL || t->unit == NULL || t->unit_fmt == NULL || t->vlab == NULL ||
        t->plab == NULL || t->comment == NULL || t->latest == NULL || t->yoy == NULL ||
        t->target == NULL || t->unit_el == NULL)
        return -ENOMEM;
    if (t->target[0] != '\0') { /* a number, or no target line at all */
        char *end = NULL;
        double v = strtod(t->target, &end);
        if (end == t->target || *end != '\0' || !isfinite(v))
            t->target[0] = '\0';
    }
    return 0;
}

/* Checks the request and that the file is there: 0, -EINVAL, -ENOENT or
 * -EIO (logged). Sets *out and *len to "no image" once they can be used. */
static int store_graph_check(const char *rrd_file, const store_graph_spec *spec,
                             unsigned char **out, size_t *len)
{
    if (rrd_file == NULL || spec == NULL || out == NULL || len == NULL || rrd_file[0] == '\0' ||
        spec->width < 10 || spec->width > 4000 || spec->height < 10 || spec->height > 4000 ||
        spec->start >= spec->end)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    if (strchr(rrd_file, ':') != NULL) {
        log_err("store", "%s: a ':' in the file name cannot be used in a graph", rrd_file);
        return -EINVAL;
    }
    struct stat st;
    if (stat(rrd_file, &st) != 0) {
        if (errno == ENOENT)
            return -ENOENT;
        log_errno("store", "stat %s", rrd_file);
        return -EIO;
    }
    return 0;
}

/* The options of `rrdtool graphv -`: size, span, labels, fonts, colours. */
static void store_graph_options(store_args *a, const store_graph_spec *spec,
                                const store_graph_texts *t, const char *xgrid)
{
    store_arg(a, "graphv");
    store_arg(a, "-"); /* no file: the image comes back in the info list */
    store_arg(a, "--imgformat=%s", spec->svg ? "SVG" : "PNG");
    store_arg(a, "--width=%d", spec->width);
    store_arg(a, "--height=%d", spec->height);
    store_arg(a, "--start=%ld", spec->start);
    store_arg(a, "--end=%ld", spec->end);
    if (t->title[0] != '\0')
        store_arg(a, "--title=%s", t->title);
    if (t->unit[0] != '\0')
        store_arg(a, "--vertical-label=%s", t->unit);
    store_arg(a, "--font=DEFAULT:9:WenQuanYi Zen Hei");
    store_arg(a, "--font=TITLE:11:WenQuanYi Zen Hei");
    store_arg(a, "--units-exponent=0"); /* 12000 万美元, not 12 k万美元 */
    store_arg(a, "--lower-limit=0");    /* from 0 unless the data goes below */
    if (spec->target_line && t->target[0] != '\0')
        store_arg(a, "--upper-limit=%s", t->target); /* the target line in view (not rigid) */
    store_arg(a, "--color=BACK#FFFFFF");
    store_arg(a, "--color=SHADEA#FFFFFF");
    store_arg(a, "--color=SHADEB#FFFFFF");
    store_arg(a, "--disable-rrdtool-tag"); /* no watermark */
    if (xgrid[0] != '\0')
        store_arg(a, "--x-grid=%s", xgrid);
}

/* The graph elements: the value line, last year's, pace and target, and the
 * legend lines under the graph. */
static void store_graph_elements(store_args *a, const char *rrd_file,
                                 const store_graph_spec *spec, const store_graph_texts *t)
{
    const char *sep = t->unit_el[0] ? " " : "";

    store_arg(a, "DEF:v=%s:value:LAST", rrd_file);
    /* Each month is a flat step (every day of a month holds its figure); a
     * month without a figure is unknown, a gap: no area fill, which would
     * draw gaps as drops to zero. */
    store_arg(a, "LINE3:v#2F6EBA%s%s", t->vlab[0] ? ":" : "", t->vlab);
    if (spec->last_start > 0 && spec->last_end > spec->last_start && spec->start > spec->last_start) {
        store_arg(a, "DEF:l=%s:value:LAST:start=%ld:end=%ld", rrd_file, spec->last_start,
                  spec->last_end);
        store_arg(a, "SHIFT:l:%ld", spec->start - spec->last_start);
        store_arg(a, "LINE1:l#8A96A8:去年同期:dashes=5,3");
    }
    if (t->target[0] != '\0') { /* pace and target only where a target exists */
        store_arg(a, "DEF:p=%s:pace:LAST", rrd_file);
        store_arg(a, "LINE1:p#E8684A:%s:dashes=6,3", t->plab);
        if (spec->target_line)
            store_arg(a, "HRULE:%s#C8A04A:全年目标 %s%s%s:dashes=10,4", t->target, t->target,
                      sep, t->unit_el);
    }
    store_arg(a, "COMMENT:\\l");
    if (t->latest[0] != '\0') {
        if (t->yoy[0] != '\0') /* the growth as the statistics office published it */
            store_arg(a, "COMMENT:最新 %s%s%s，同比 %s%s%%\\l", t->latest, sep, t->unit_el,
                      t->yoy[0] == '-' ? "" : "+", t->yoy);
        else
            store_arg(a, "COMMENT:最新 %s%s%s\\l", t->latest, sep, t->unit_el);
    } else {
        store_arg(a, "VDEF:vlast=v,LAST");
        store_arg(a, "GPRINT:vlast:最新 %%.2lf%s%s\\l", t->unit_fmt[0] ? " " : "", t->unit_fmt);
    }
    if (t->comment[0] != '\0')
        store_arg(a, "COMMENT:%s\\l", t->comment);
}

/* Calls rrd_graph_v with a's arguments under store_rrd_lock and copies the
 * image into a malloc'd *out (the caller's). Returns 0, -EIO or -ENOMEM,
 * logged with rrd_file. */
static int store_graph_render(store_args *a, const char *rrd_file, unsigned char **out, size_t *len)
{
    char err[512];
    int rc = -EIO;

    pngout_arm(); /* librrd's PNGs are written by pngout.c */
    pthread_mutex_lock(&store_rrd_lock);
    rrd_clear_error();
    errno = 0;
    rrd_info_t *info = rrd_graph_v(a->n, a->v);
    int sys_errno = errno;
    const rrd_info_t *img = NULL;
    if (info != NULL)
        img = store_info_find(info, "image");
    if (img == NULL || img->type != RD_I_BLO || img->value.u_blo.ptr == NULL ||
        img->value.u_blo.size == 0) {
        if (info == NULL)
            store_rrd_error(err, sizeof err, sys_errno);
        else
            snprintf(err, sizeof err, "no image in rrd_graph_v's answer");
    } else {
        *out = malloc(img->value.u_blo.size);
        if (*out != NULL) {
            memcpy(*out, img->value.u_blo.ptr, img->value.u_blo.size);
            *len = img->value.u_blo.size;
            rc = 0;
        } else {
            snprintf(err, sizeof err, "out of memory for %lu bytes", img->value.u_blo.size);
            rc = -ENOMEM;
        }
    }
    rrd_info_free(info);
    rrd_clear_error();
    pthread_mutex_unlock(&store_rrd_lock);
    if (rc != 0)
        log_err("store", "%s: rrd_graph: %s", rrd_file, err);
    return rc;
}

int store_graph(const char *rrd_file, const store_graph_spec *spec, unsigned char **out,
                size_t *len)
{
    store_args a = { .n = 0 };
    store_graph_texts t = { 0 };
    char xgrid[128];
    int rc = store_graph_check(rrd_file, spec, out, len);

    if (rc != 0)
        return rc;
    rc = store_graph_texts_make(spec, &t);
    if (rc != 0)
        goto out;
    store_graph_xgrid(spec->start, spec->end, spec->width, xgrid, sizeof xgrid);
    store_graph_options(&a, spec, &t, xgrid);
    store_graph_elements(&a, rrd_file, spec, &t);
    if (a.failed) {
        log_err("store", "%s: cannot build the graph arguments", rrd_file);
        rc = -ENOMEM;
        goto out;
    }
    rc = store_graph_render(&a, rrd_file, out, len);
out:
    store_args_free(&a);
    store_graph_texts_free(&t);
    return rc;
}
