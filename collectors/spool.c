/*
 * spool.c — the `spool` collector plugin (README, Feeding figures and Adding a collector).
 *
 * Watches one directory and ingests every complete CSV file (`*.csv`) or
 * Excel workbook (`*.xlsx`, `*.xls`; the daemon tells them apart by their
 * first bytes) that appears in it. Writers should create `x.csv.tmp` and
 * rename it to `x.csv` when done: the rename is atomic, and `*.tmp`, `*.part`,
 * `*~` and dotfiles are never touched. Any other regular file is a type the
 * spool does not read: it is logged once and moved to failed/ with a report
 * that names the types read. The files found
 * together (by one read of inotify events, or by a rescan) are read in name
 * order and handed to the daemon in batches with host->submit_csv_batch(),
 * which journals a whole batch with one fsync (ABI 2; with an ABI 1 daemon
 * each file goes through host->submit_csv()); then each file moves:
 *
 *     <path>/x.csv  --OK------->  <path>/done/x.csv (+ done/x.csv.warnings, written
 *                                 after the move, when the daemon accepted it with
 *                                 warnings: a year-to-date figure below the month before)
 *                   --REFUSED-->  <path>/failed/x.csv + failed/x.csv.errors
 *                   --ERROR---->  stays where it is; retried at the next rescan
 *
 * Nothing is ever deleted or overwritten: a name that is taken in done/ or
 * failed/ gets the smallest free suffix `.N` (x.csv.1, x.csv.1.errors, …).
 * Where that would pass NAME_MAX (in failed/, counting the `.errors.tmp` of
 * the report) the file is kept as STEM~N.EXT instead: the extension kept, the
 * stem cut short (never inside a UTF-8 character), N the smallest free; the
 * log names both, and a report's first line names the original file.
 * A refused file's report is written before the file moves, so that
 * failed/x.csv never shows without failed/x.csv.errors beside it.
 * Renames use renameat2(RENAME_NOREPLACE), or link+unlink where the file
 * system lacks it, and the directories are fsync'd once per batch, after its
 * files moved. A file moves to done/ only after the daemon answered
 * PP_SUBMIT_OK, that is after its figures were journaled and fsync'd; a crash
 * before the directory fsync can only bring a file back into the spool, and
 * ingesting it again changes nothing.
 *
 * What moves is what was read. A file is opened once and its (st_dev,
 * st_ino) kept with its data; when the daemon has answered, the name is
 * moved only if it still refers to that inode (fstatat just before the
 * rename). A writer may rename another file over the name meanwhile: that
 * file was not read, so it stays in the spool and its name is looked at again
 * at once. Linux has no rename-if-inode, so between that check and the rename
 * another file can still take the name; the rename would then move it. So
 * after the rename the moved file is checked again, and if it is not the one
 * read it goes back into the spool under its name (RENAME_NOREPLACE; STEM~N.EXT
 * if the name was taken again) to be ingested like any new file. Only a
 * crash in that instant leaves it in done/ unread; if it cannot be put back,
 * an error names where it is.
 * (Without RENAME_NOREPLACE the new link is checked instead — a wrong one is
 * removed — and the spool's name is unlinked only if it still refers to the
 * file read; a name replaced between that check and the unlink is lost from
 * the spool, so on such file systems writers must not reuse a name that is
 * waiting in the spool.)
 *
 * Options (collector section of parkpulse.conf):
 *     path      the spool directory, absolute (required; created if only the
 *               last component is missing); done/ and failed/ are created in it
 *     rescan    seconds between full rescans, 1..3600 (default 10)
 *     max_size  largest file taken, in bytes, with an optional K, M or G
 *               suffix (default 32M, at most 1G); larger files go to failed/
 *
 * run() waits on inotify (IN_CLOSE_WRITE, IN_MOVED_TO) and on a self-pipe that
 * shutdown() writes to; the files named by events are ingested at once, and a
 * full rescan runs at start and every `rescan` seconds, in case an event was
 * missed. A rescan leaves alone files modified within the last two seconds:
 * they may still be being written, and their close will be seen by inotify;
 * their names are looked at again when they are two seconds old (poll()
 * wakes for the earliest; at most SPOOL_PENDING_MAX names, the others wait
 * for the next rescan; a name that disappeared is dropped).
 * Symbolic links, non-regular files and files with control characters in
 * their names are left in place and logged once.
 *
 * This file includes only collector.h, collector_util.h and system headers; it exports only
 * `parkpulse_collector`. Each instance keeps all of its state in its own
 * struct spool, so several instances can run in one process.
 */
#include "collector.h"
#include "collector_util.h"
#include "vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_DEFAULT_RESCAN   10
#define SPOOL_MAX_RESCAN       3600
#define SPOOL_DEFAULT_MAX_SIZE (32ULL * 1024 * 1024)
#define SPOOL_LIMIT_MAX_SIZE   (1ULL << 30)
#define SPOOL_SETTLE_NS        (2LL * 1000000000LL)
#define SPOOL_MAX_SUFFIX       99999
#define SPOOL_DIR_MODE         0750
/* A batch: at most this many files and bytes (one larger file goes alone). */
#define SPOOL_BATCH_FILES      256
#define SPOOL_BATCH_BYTES      (64ULL * 1024 * 1024)
#define SPOOL_FILE_MODE        0640
/* Files skipped as modified just now, looked at again when 2 s old: at most
 * this many (the rest wait for the next rescan). */
#define SPOOL_PENDING_MAX      4096
/* Kept after a name in failed/ for the report written beside it. */
#define SPOOL_REPORT_TMP       ".errors.tmp"
/* The longest extension kept when a name is cut short (".csv" in practice). */
#define SPOOL_MAX_EXT          16
#define SPOOL_WATCH_MASK \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR)

/* A growable list of file names (each malloc'd). */
struct namelist {
    char **v;
    size_t n, cap;
};

/* The three directories of one spool, opened for *at() calls and fsync(). */
struct spool_dirs {
    int dir, done, failed;
    dev_t dev;
    ino_t ino;
};

/* Which file was read: only that file is moved afterwards. */
struct fileid {
    dev_t dev;
    ino_t ino;
};

/* Names to look at again at a time (mono_ms()), e.g. when 2 s old. */
struct pending {
    char *name;
    int64_t due;
};

/* Files read and waiting to be submitted together. name points into the
 * caller's name list; data is malloc'd. */
struct batch {
    struct {
        const char *name;
        struct fileid id;
        char *data;
        size_t len;
    } f[SPOOL_BATCH_FILES];
    size_t n;
    unsigned long long bytes;
};

struct spool {
    const pp_collector_host *host;
    char *path;
    unsigned rescan;           /* seconds */
    size_t max_size;           /* bytes */
    struct spool_dirs d;
    int ifd;                   /* inotify instance */
    int wd;                    /* watch on d.dir, or -1 when lost */
    int wake[2];               /* self-pipe: shutdown() writes, run() polls */
    atomic_int stop;
    bool gone_logged;          /* "directory is gone" was logged */
    struct namelist noted;     /* files whose problem was already logged */
    struct namelist *scan_noted; /* during a full scan: problems seen in it */
    bool moved_done, moved_failed; /* files moved since the directories were fsync'd */
    struct pending *pend;      /* names to look at again, unsorted */
    size_t npend, pend_cap;
    bool pend_full_logged;     /* "too many files to look at again" was logged */
};

/* ---- small helpers ---------------------------------------------------- */

static void nl_free(struct namelist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int nl_add(struct namelist *l, const char *name)
{
    if (PP_VEC_RESERVE(l->v, l->cap, l->n + 1, 16) != 0)
        return -ENOMEM;
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    l->v[l->n++] = copy;
    return 0;
}

static bool nl_has(const struct namelist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return true;
    return false;
}

static void nl_del(struct namelist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], name) == 0) {
            free(l->v[i]);
            l->v[i] = l->v[--l->n];
            return;
        }
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the list and drops duplicates. */
static void nl_sort_unique(struct namelist *l)
{
    if (l->n < 2)
        return;
    qsort(l->v, l->n, sizeof *l->v, cmp_names);
    size_t out = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->v[i], l->v[out - 1]) == 0)
            free(l->v[i]);
        else
            l->v[out++] = l->v[i];
    }
    l->n = out;
}

/* ---- names to look at again ------------------------------------------- */

/*
 * Asks for another look at name at `due` (mono_ms()); a name already waiting
 * keeps the earlier time. The list is bounded: past SPOOL_PENDING_MAX names
 * the file waits for the next full rescan (logged once).
 */
static void pending_add(struct spool *s, const char *name, int64_t due)
{
    for (size_t i = 0; i < s->npend; i++) {
        if (strcmp(s->pend[i].name, name) == 0) {
            if (due < s->pend[i].due)
                s->pend[i].due = due;
            return;
        }
    }
    if (s->npend >= SPOOL_PENDING_MAX) {
        if (!s->pend_full_logged)
            s->host->log(s->host, PP_LOG_INFO, "more than %d files of %s to look at again; "
                         "the others wait for the next rescan", SPOOL_PENDING_MAX, s->path);
        s->pend_full_logged = true;
        return;
    }
    if (PP_VEC_RESERVE(s->pend, s->pend_cap, s->npend + 1, 16) != 0)
        return; /* the next rescan finds it */
    char *copy = strdup(name);
    if (!copy)
        return; /* the next rescan finds it */
    s->pend[s->npend++] = (struct pending){ copy, due };
}

/* The earliest time a name waits for, or INT64_MAX. */
static int64_t pending_next(const struct spool *s)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < s->npend; i++)
        if (s->pend[i].due < t)
            t = s->pend[i].due;
    return t;
}

/* Moves the names due by now from the pending list into out. */
static void pending_take_due(struct spool *s, int64_t now, struct namelist *out)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->npend; i++) {
        if (s->pend[i].due <= now && nl_add(out, s->pend[i].name) == 0)
            free(s->pend[i].name);
        else
            s->pend[keep++] = s->pend[i];
    }
    s->npend = keep;
    if (keep < SPOOL_PENDING_MAX)
        s->pend_full_logged = false;
}

static void pending_free(struct spool *s)
{
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].name);
    free(s->pend);
    s->pend = NULL;
    s->npend = s->pend_cap = 0;
}

static void dirs_close(struct spool_dirs *d)
{
    close_fd(&d->dir);
    close_fd(&d->done);
    close_fd(&d->failed);
}


static bool ends_with(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

/* True when the spool reads name: *.csv, *.xlsx, *.xls (any case), not a dotfile. */
static bool is_read_type(const char *name)
{
    return name[0] != '.' &&
           (ends_with(name, ".csv") || ends_with(name, ".xlsx") || ends_with(name, ".xls"));
}

/* True when name is looked at: anything but a dotfile, *.tmp, *.part and *~
 * (files being written). A regular file of a type the spool does not read
 * goes to failed/ with a report that names the types read (take_file). */
static bool is_candidate(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && name[0] != '.' && name[n - 1] != '~' && !ends_with(name, ".tmp") &&
           !ends_with(name, ".part");
}

#define SPOOL_TYPES_REPORT \
    "%s: 不支持的文件类型，未读取：spool 只读取 .csv、.xlsx 和 .xls 文件" \
    "（a file type the spool does not read: it reads *.csv, *.xlsx and *.xls; " \
    "dotfiles, *.tmp, *.part and *~ are left alone）\n"

static bool has_control_chars(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/*
 * Logs a problem with one spool file, once: a problem that persists (a
 * symlink, a retry) is logged at `level` the first time and at DEBUG after.
 * During a full scan the names are collected anew, so a file that left and
 * came back is logged again.
 */
static void note_line(struct spool *s, int level, const char *name, const char *line)
{
    bool fresh = !nl_has(&s->noted, name);
    if (s->scan_noted)
        (void)nl_add(s->scan_noted, name);
    else if (fresh)
        (void)nl_add(&s->noted, name);
    s->host->log(s->host, fresh ? level : PP_LOG_DEBUG, "%s", line);
}

static void note(struct spool *s, int level, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void note(struct spool *s, int level, const char *name, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    note_line(s, level, name, line);
}

/* note() with ": <text of e>" appended (e: errno, or -errno). */
static void note_errno(struct spool *s, int level, const char *name, int e, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void note_errno(struct spool *s, int level, const char *name, int e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vformat_errno(line, sizeof line, e, fmt, ap);
    va_end(ap);
    note_line(s, level, name, line);
}

/* ---- directories -------------------------------------------------------- */

/* Opens (creating if missing) a subdirectory of the spool. */
static int open_subdir(int dir, const char *path, const char *sub, dev_t dev, char *err,
                       size_t errsz)
{
    if (mkdirat(dir, sub, SPOOL_DIR_MODE) < 0 && errno != EEXIST) {
        format_errno(err, errsz, errno, "cannot create %s/%s", path, sub);
        return -1;
    }
    int fd = openat(dir, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        format_errno(err, errsz, errno,
                     "cannot open %s/%s (it must be a directory, not a symlink)", path, sub);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_dev != dev) {
        snprintf(err, errsz, "%s/%s must be on the same file system as %s", path, sub, path);
        close(fd);
        return -1;
    }
    if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
        format_errno(err, errsz, errno, "%s/%s is not writable", path, sub);
        close(fd);
        return -1;
    }
    return fd;
}

/* Opens the spool directory and its done/ and failed/; on failure fills err. */
static int dirs_open(const char *path, struct spool_dirs *d, char *err, size_t errsz)
{
    struct stat st;
    d->dir = d->done = d->failed = -1;
    d->dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dir < 0) {
        format_errno(err, errsz, errno, "cannot open spool directory %s", path);
        goto fail;
    }
    if (fstat(d->dir, &st) < 0) {
        format_errno(err, errsz, errno, "cannot stat %s", path);
        goto fail;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    if (faccessat(d->dir, ".", W_OK | X_OK, AT_EACCESS) < 0) {
        format_errno(err, errsz, errno, "spool directory %s is not writable", path);
        goto fail;
    }
    d->done = open_subdir(d->dir, path, "done", d->dev, err, errsz);
    if (d->done < 0)
        goto fail;
    d->failed = open_subdir(d->dir, path, "failed", d->dev, err, errsz);
    if (d->failed < 0)
        goto fail;
    return 0;
fail:
    dirs_close(d);
    return -1;
}

/* Creates the spool directory when it is missing but its parent exists. */
static int ensure_spool_dir(struct spool *s)
{
    struct stat st;
    if (stat(s->path, &st) == 0)
        return 0;
    if (errno != ENOENT) {
        host_log_errno(s->host, PP_LOG_ERR, errno, "cannot stat spool directory %s", s->path);
        return -1;
    }
    if (mkdir(s->path, SPOOL_DIR_MODE) < 0) {
        if (errno == ENOENT)
            s->host->log(s->host, PP_LOG_ERR,
                         "spool directory %s does not exist, nor does its parent directory",
                         s->path);
        else
            host_log_errno(s->host, PP_LOG_ERR, errno, "cannot create spool directory %s",
                           s->path);
        return -1;
    }
    s->host->log(s->host, PP_LOG_INFO, "created spool directory %s", s->path);
    return 0;
}

/*
 * At rescan time: when the watch was lost or `path` now names another
 * directory (removed and recreated, or moved away), open it anew.
 */
static void check_dirs(struct spool *s)
{
    struct stat st;
    if (stat(s->path, &st) == 0 && st.st_dev == s->d.dev && st.st_ino == s->d.ino &&
        s->wd >= 0)
        return;

    char err[PATH_MAX + 256];
    struct spool_dirs nd;
    if (dirs_open(s->path, &nd, err, sizeof err) < 0) {
        if (!s->gone_logged)
            s->host->log(s->host, PP_LOG_ERR, "%s; waiting for it to come back", err);
        s->gone_logged = true;
        return;
    }
    int wd = inotify_add_watch(s->ifd, s->path, SPOOL_WATCH_MASK);
    if (wd < 0) {
        if (!s->gone_logged)
            host_log_errno(s->host, PP_LOG_ERR, errno, "cannot watch %s (rescanning only)",
                           s->path);
        s->gone_logged = true;
    }
    if (s->wd >= 0 && s->wd != wd)
        inotify_rm_watch(s->ifd, s->wd);
    s->wd = wd;
    dirs_close(&s->d);
    s->d = nd;
    if (wd >= 0) {
        s->gone_logged = false;
        s->host->log(s->host, PP_LOG_INFO, "watching %s again", s->path);
    }
}

/* ---- moving files ------------------------------------------------------- */

/* Renames without ever replacing the target: 0, -EEXIST, or another -errno. */
static int move_noreplace(int fromdir, const char *from, int todir, const char *to)
{
    if (renameat2(fromdir, from, todir, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
    /* File system without RENAME_NOREPLACE: link fails if the target exists. */
    if (linkat(fromdir, from, todir, to, 0) < 0)
        return -errno;
    if (unlinkat(fromdir, from, 0) < 0)
        return -errno;
    return 0;
}

/*
 * The n-th name tried for a file called `name` in done/, failed/ or (put
 * back) the spool, written to out: n = 0 is the name itself; then name.N —
 * or, with ext_last, or when name.N and `reserve` more bytes would pass
 * NAME_MAX, STEM~N.EXT: the name's extension kept, its stem cut short enough,
 * never inside a UTF-8 sequence. Returns 0, or -ENAMETOOLONG when this n has
 * no name that fits (n = 0 with a long name: the caller tries n = 1).
 * Returns in *shortened whether the stem was cut.
 */
static int pick_name(const char *name, unsigned n, size_t reserve, bool ext_last,
                     char out[NAME_MAX + 1], bool *shortened)
{
    size_t len = strlen(name), room = NAME_MAX - reserve;
    char num[16];
    *shortened = false;
    if (n == 0) {
        if (len > room)
            return -ENAMETOOLONG;
        memcpy(out, name, len + 1);
        return 0;
    }
    size_t nlen = (size_t)snprintf(num, sizeof num, "%u", n);
    if (!ext_last && len + 1 + nlen <= room) {
        snprintf(out, NAME_MAX + 1, "%s.%s", name, num);
        return 0;
    }
    const char *dot = strrchr(name, '.');
    size_t ext = dot && dot != name && strlen(dot) <= SPOOL_MAX_EXT ? strlen(dot) : 0;
    size_t stem = len - ext, fixed = 1 + nlen + ext; /* "~N" and the extension */
    if (fixed >= room)
        return -ENAMETOOLONG;
    size_t keep = stem;
    if (keep > room - fixed) {
        keep = room - fixed;
        while (keep > 0 && ((unsigned char)name[keep] & 0xc0) == 0x80)
            keep--; /* name[keep] continues a UTF-8 character: cut before it */
        *shortened = true;
    }
    snprintf(out, NAME_MAX + 1, "%.*s~%s%s", (int)keep, name, num, name + stem);
    return 0;
}

/* 0 when dir/name is the file id; -ESTALE when it is another file; -errno
 * (-ENOENT: gone) when it cannot be looked at. */
static int same_file(int dir, const char *name, const struct fileid *id)
{
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    return st.st_dev == id->dev && st.st_ino == id->ino ? 0 : -ESTALE;
}

/*
 * Another file was renamed over ours between the check and the rename, and
 * the rename took it out of the spool instead of ours: put it back under
 * name, or under the first free STEM~N.EXT (still a .csv), for the next look.
 */
static void put_back(struct spool *s, int todir, const char *sub, const char *to,
                     const char *name)
{
    char back[NAME_MAX + 1];
    bool cut;
    int rc = -EEXIST;
    for (unsigned n = 0; n <= SPOOL_MAX_SUFFIX && rc == -EEXIST; n++)
        if (pick_name(name, n, 0, true, back, &cut) == 0)
            rc = move_noreplace(todir, to, s->d.dir, back);
    if (rc < 0) {
        host_log_errno(s->host, PP_LOG_ERR, rc, "another file was renamed over %s while it "
                       "was being moved and landed in %s/%s/%s, NOT ingested; cannot put it "
                       "back into the spool (move it back by hand)", name, s->path, sub, to);
        return;
    }
    s->moved_done = s->moved_failed = true; /* fsync both and the spool */
    pending_add(s, back, mono_ms());
    s->host->log(s->host, PP_LOG_WARN, "another file was renamed over %s while it was being "
                 "moved; it is back in the spool as %s and will be ingested", name, back);
}

/*
 * Moves the file `id`, called `from` in the spool, to todir/to without ever
 * replacing a file, and only that file: 0; -EEXIST when `to` is taken;
 * -ENOENT when `from` is gone; -ESTALE when `from` is another file now (left
 * in the spool, or put back there); or another -errno. See the top comment
 * for the window between the check and the rename.
 */
static int move_checked(struct spool *s, const char *from, const struct fileid *id, int todir,
                        const char *sub, const char *to)
{
    int rc = same_file(s->d.dir, from, id);
    if (rc < 0)
        return rc;
    if (renameat2(s->d.dir, from, todir, to, RENAME_NOREPLACE) == 0) {
        if (same_file(todir, to, id) == 0)
            return 0;
        put_back(s, todir, sub, to, from);
        return -ESTALE;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
    /* File system without RENAME_NOREPLACE: link fails if the target exists. */
    if (linkat(s->d.dir, from, todir, to, 0) < 0)
        return -errno;
    if (same_file(todir, to, id) < 0) {
        unlinkat(todir, to, 0); /* linked another file: it is still in the spool */
        return -ESTALE;
    }
    if (same_file(s->d.dir, from, id) == 0 && unlinkat(s->d.dir, from, 0) < 0) {
        rc = -errno;
        unlinkat(todir, to, 0);
        return rc;
    }
    return 0;
}

static bool exists_at(int dir, const char *name)
{
    struct stat st;
    return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes failed/<chosen>.errors via a .tmp file, fsync and rename; when the
 * file's name had to be cut short (`name` differs), a first line names it.
 * Returns 0, -EEXIST (quietly) when the name is taken, or another -errno,
 * logged. */
static int write_errors(struct spool *s, const char *name, const char *chosen, const char *text)
{
    char tmp[NAME_MAX + 16], final[NAME_MAX + 16];
    int fd = -1, rc;
    snprintf(tmp, sizeof tmp, "%s.errors.tmp", chosen);
    snprintf(final, sizeof final, "%s.errors", chosen);

    fd = openat(s->d.failed, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                SPOOL_FILE_MODE);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (strcmp(name, chosen) != 0 && strncmp(name, chosen, strlen(name)) != 0) {
        char head[2 * NAME_MAX + 128];
        snprintf(head, sizeof head, "%s: 文件名过长，存为 failed/%s（name too long, kept as "
                 "failed/%s）\n", name, chosen, chosen);
        rc = write_all(fd, head, strlen(head));
        if (rc < 0)
            goto fail;
    }
    size_t len = strlen(text);
    rc = write_all(fd, text, len);
    if (rc == 0 && len > 0 && text[len - 1] != '\n')
        rc = write_all(fd, "\n", 1);
    if (rc < 0)
        goto fail;
    if (fsync(fd) < 0) {
        rc = -errno;
        goto fail;
    }
    rc = close(fd);
    fd = -1;
    if (rc < 0) {
        rc = -errno;
        goto fail;
    }
    rc = move_noreplace(s->d.failed, tmp, s->d.failed, final);
    if (rc == -EEXIST) {
        unlinkat(s->d.failed, tmp, 0);
        return rc; /* the caller tries the next name */
    }
    if (rc < 0)
        goto fail;
    return 0;
fail:
    close_fd(&fd);
    unlinkat(s->d.failed, tmp, 0); /* no half-written report left behind */
    host_log_errno(s->host, PP_LOG_ERR, rc, "cannot write %s/failed/%s", s->path, final);
    return rc;
}

/*
 * Moves the file id, called name in the spool, into todir (done/ or failed/,
 * `sub` for messages) under the first free name of pick_name(): name, name.N,
 * or a shorter STEM~N.EXT when name.N would be too long. With a report
 * (failed/ only), <chosen>.errors must be free too and is written first, so
 * that whoever sees the file in failed/ finds its report beside it; a report
 * that cannot be written (a full disk) keeps the file where it is, to be
 * refused again, with its report, at a later pass. The name used is written
 * to chosen, and whether it was cut short to *shortened. Returns 0,
 * write_errors()' or move_checked()'s -errno.
 */
static int move_unique(struct spool *s, const char *name, const struct fileid *id, int todir,
                       const char *sub, const char *report, char chosen[NAME_MAX + 1],
                       bool *shortened)
{
    char errname[NAME_MAX + 16];
    size_t reserve = report ? strlen(SPOOL_REPORT_TMP) : 0;
    int rc = same_file(s->d.dir, name, id);
    if (rc < 0)
        return rc; /* before writing a report for a file that is not there */
    for (unsigned n = 0; n <= SPOOL_MAX_SUFFIX; n++) {
        if (pick_name(name, n, reserve, false, chosen, shortened) < 0)
            continue;
        if (report) {
            snprintf(errname, sizeof errname, "%s.errors", chosen);
            if (exists_at(todir, errname) || exists_at(todir, chosen))
                continue;
            rc = write_errors(s, name, chosen, report);
            if (rc == -EEXIST)
                continue; /* taken meanwhile */
            if (rc < 0)
                return rc; /* never a file in failed/ without its report */
        }
        rc = move_checked(s, name, id, todir, sub, chosen);
        if (rc < 0 && report)
            unlinkat(todir, errname, 0); /* no report without its file */
        if (rc != -EEXIST)
            return rc;
    }
    return -EEXIST;
}

/* Makes the moves since the last call durable: once per batch, not per file. */
static void sync_dirs(struct spool *s)
{
    if (!s->moved_done && !s->moved_failed)
        return;
    if ((s->moved_done && fsync(s->d.done) < 0) || (s->moved_failed && fsync(s->d.failed) < 0) ||
        fsync(s->d.dir) < 0)
        host_log_errno(s->host, PP_LOG_ERR, errno, "cannot fsync %s", s->path);
    s->moved_done = s->moved_failed = false;
}

/*
 * The file read was replaced (another file renamed over its name) or removed
 * while the daemon read it: whatever has its name now was not read, so it is
 * not moved; it is looked at again at once.
 */
static void not_moved(struct spool *s, const char *name, int rc, const char *what)
{
    if (rc == -ESTALE) {
        pending_add(s, name, mono_ms());
        s->host->log(s->host, PP_LOG_INFO, "%s; %s was replaced meanwhile: the new file is "
                     "left in the spool for the next look", what, name);
    } else {
        s->host->log(s->host, PP_LOG_INFO, "%s; %s was removed from the spool meanwhile",
                     what, name);
    }
}

/* Writes done/<chosen>.warnings (the daemon's warnings about figures it
 * accepted) via a .tmp file, fsync and rename; a failure is logged, the file
 * stays accepted. */
static void write_warnings(struct spool *s, const char *chosen, const char *text)
{
    char tmp[NAME_MAX + 24], final[NAME_MAX + 24];
    snprintf(tmp, sizeof tmp, "%s.warnings.tmp", chosen);
    snprintf(final, sizeof final, "%s.warnings", chosen);
    int fd = openat(s->d.done, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                    SPOOL_FILE_MODE);
    int rc = fd < 0 ? -errno : write_all(fd, text, strlen(text));
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(s->d.done, tmp, s->d.done, final) < 0)
        rc = -errno;
    if (rc < 0) {
        unlinkat(s->d.done, tmp, 0);
        host_log_errno(s->host, PP_LOG_ERR, rc, "cannot write %s/done/%s", s->path, final);
        return;
    }
    s->host->log(s->host, PP_LOG_WARN, "accepted %s with warnings, see done/%s", chosen, final);
}

/* After PP_SUBMIT_OK: into done/, with done/<name>.warnings beside it when the
 * daemon had warnings about figures it accepted. */
static void finish_ok(struct spool *s, const char *name, const struct fileid *id,
                      const char *warnings)
{
    char chosen[NAME_MAX + 1], what[NAME_MAX + 32];
    bool cut;
    int rc = move_unique(s, name, id, s->d.done, "done", NULL, chosen, &cut);
    if (rc == -ESTALE || rc == -ENOENT) {
        snprintf(what, sizeof what, "ingested %s (ok)", name);
        not_moved(s, name, rc, what);
        return;
    }
    if (rc < 0) {
        host_log_errno(s->host, PP_LOG_ERR, rc,
                       "ingested %s but cannot move it to done/ (it will be ingested "
                       "again at the next rescan)", name);
        return;
    }
    s->moved_done = true;
    nl_del(&s->noted, name);
    if (warnings && *warnings)
        write_warnings(s, chosen, warnings);
    if (strcmp(chosen, name) == 0)
        s->host->log(s->host, PP_LOG_INFO, "ingested %s (ok)", name);
    else
        s->host->log(s->host, PP_LOG_INFO, "ingested %s (ok), kept as done/%s%s", name, chosen,
                     cut ? " (the name is too long for a numbered copy)" : "");
}

/* After a refusal (by the daemon or for size): into failed/ with a report. */
static void finish_refused(struct spool *s, const char *name, const struct fileid *id,
                           const char *report, const char *why)
{
    char chosen[NAME_MAX + 1], what[NAME_MAX + 160];
    bool cut;
    int rc = move_unique(s, name, id, s->d.failed, "failed", report, chosen, &cut);
    if (rc == -ESTALE || rc == -ENOENT) {
        snprintf(what, sizeof what, "refused %s: %s", name, why);
        not_moved(s, name, rc, what);
        return;
    }
    if (rc < 0) {
        note_errno(s, PP_LOG_ERR, name, rc, "refused %s (%s) but cannot move it to failed/ "
                   "with its report (left in the spool, refused again at the next rescan)",
                   name, why);
        return;
    }
    s->moved_failed = true;
    nl_del(&s->noted, name);
    s->host->log(s->host, PP_LOG_WARN, "refused %s: %s, see failed/%s.errors%s", name, why,
                 chosen, cut ? " (the name is too long to keep)" : "");
}

/* ---- ingesting files ---------------------------------------------------- */

/* Reads fd to the end; -EFBIG when it holds more than max bytes. */
static int read_all(int fd, size_t hint, size_t max, char **out, size_t *outlen)
{
    size_t cap = (hint < max ? hint : max) + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap > max) {
                free(buf);
                return -EFBIG;
            }
            size_t ncap = cap > max / 2 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int rc = -errno;
            free(buf);
            return rc;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > max) {
        free(buf);
        return -EFBIG;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static void refuse_too_big(struct spool *s, const char *name, const struct fileid *id,
                           unsigned long long size)
{
    char report[NAME_MAX + 128], why[128];
    if (size)
        snprintf(report, sizeof report, "%s: file is %llu bytes, larger than max_size %zu\n",
                 name, size, s->max_size);
    else
        snprintf(report, sizeof report, "%s: file is larger than max_size %zu\n", name,
                 s->max_size);
    snprintf(why, sizeof why, "larger than max_size %zu", s->max_size);
    finish_refused(s, name, id, report, why);
}

/* When the file was modified within the settle time (it may be open): how
 * many ms until it is settled; else 0. */
static int64_t recently_modified(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t d = ((int64_t)now.tv_sec - st->st_mtim.tv_sec) * 1000000000LL +
                (now.tv_nsec - st->st_mtim.tv_nsec);
    if (d >= SPOOL_SETTLE_NS || d <= -SPOOL_SETTLE_NS)
        return 0;
    return (SPOOL_SETTLE_NS - d) / 1000000 + 1;
}

/* Moves a file by the daemon's answer rc, with its report (or leaves it in
 * the spool for the next rescan on PP_SUBMIT_ERROR). */
static void finish(struct spool *s, const char *name, const struct fileid *id, int rc,
                   const char *report)
{
    if (rc == PP_SUBMIT_OK) {
        finish_ok(s, name, id, report);
    } else if (rc == PP_SUBMIT_REFUSED) {
        size_t n = count_lines(report);
        char why[64];
        if (n)
            snprintf(why, sizeof why, "%zu bad row%s", n, n == 1 ? "" : "s");
        else
            snprintf(why, sizeof why, "refused by the daemon");
        if (!report || !*report) {
            char fallback[NAME_MAX + 64];
            snprintf(fallback, sizeof fallback, "%s: refused (no details given)\n", name);
            finish_refused(s, name, id, fallback, why);
        } else {
            finish_refused(s, name, id, report, why);
        }
    } else {
        const char *r = report ? report : "";
        int rlen = (int)strcspn(r, "\n");
        note(s, PP_LOG_WARN, name, "could not ingest %s now%s%.*s; will retry at the next "
             "rescan", name, rlen ? ": " : "", rlen, r);
    }
}

/*
 * Hands the files of the batch to the daemon — all at once when the host has
 * submit_csv_batch (ABI 2), else one by one — moves each by its answer, and
 * fsyncs the directories once. After shutdown() the files not yet handed over
 * stay in the spool for the next start.
 */
static void batch_flush(struct spool *s, struct batch *b)
{
    int rc[SPOOL_BATCH_FILES];
    char *report[SPOOL_BATCH_FILES] = { NULL };
    size_t n = atomic_load(&s->stop) ? 0 : b->n;

    if (n > 0 && s->host->abi_version >= 2 && s->host->submit_csv_batch) {
        pp_collector_input in[SPOOL_BATCH_FILES];
        for (size_t i = 0; i < n; i++) {
            in[i] = (pp_collector_input){ b->f[i].name, b->f[i].data, b->f[i].len };
            rc[i] = PP_SUBMIT_ERROR; /* kept for a retry unless answered */
        }
        s->host->submit_csv_batch(s->host, n, in, rc, report);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (atomic_load(&s->stop)) {
                n = i;
                break;
            }
            rc[i] = s->host->submit_csv(s->host, b->f[i].name, b->f[i].data, b->f[i].len,
                                        &report[i]);
        }
    }
    for (size_t i = 0; i < b->n; i++) {
        free(b->f[i].data);
        b->f[i].data = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        finish(s, b->f[i].name, &b->f[i].id, rc[i], report[i]);
        free(report[i]);
    }
    b->n = 0;
    b->bytes = 0;
    sync_dirs(s);
}

/*
 * Reads one candidate file of the spool into the batch (handing the batch
 * over first when it is full). from_scan: found by a rescan rather than named
 * by an inotify event, so recently modified files are left for later.
 */
static void take_file(struct spool *s, struct batch *b, const char *name, bool from_scan)
{
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    int fd = -1;

    if (has_control_chars(name)) {
        char safe[NAME_MAX + 1];
        size_t i;
        for (i = 0; name[i] && i < NAME_MAX; i++)
            safe[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
        safe[i] = 0;
        note(s, PP_LOG_WARN, name, "leaving \"%s\" alone: control characters in its name",
             safe);
        return;
    }
    if (fstatat(s->d.dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            note_errno(s, PP_LOG_ERR, name, errno, "cannot stat %s", name);
        return;
    }
    if (!is_read_type(name) && !S_ISREG(st.st_mode))
        return; /* done/, failed/ and whatever else is not a file of ours */
    if (S_ISLNK(st.st_mode)) {
        note(s, PP_LOG_WARN, name, "leaving %s alone: a symbolic link (only regular files "
             "are ingested)", name);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        note(s, PP_LOG_WARN, name, "leaving %s alone: not a regular file", name);
        return;
    }
    int64_t settle_ms = from_scan ? recently_modified(&st) : 0;
    if (settle_ms > 0) {
        if (s->scan_noted && nl_has(&s->noted, name))
            (void)nl_add(s->scan_noted, name);  /* still pending: keep it noted */
        pending_add(s, name, mono_ms() + settle_ms);
        s->host->log(s->host, PP_LOG_DEBUG, "%s was modified just now; waiting for it to "
                     "be closed", name);
        return;
    }
    if (!is_read_type(name)) {
        char report[NAME_MAX + 512];
        const struct fileid oid = { st.st_dev, st.st_ino };
        snprintf(report, sizeof report, SPOOL_TYPES_REPORT, name);
        finish_refused(s, name, &oid, report, "a file type the spool does not read (it reads "
                       "*.csv, *.xlsx, *.xls)");
        return;
    }

    fd = openat(s->d.dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            note(s, PP_LOG_WARN, name, "leaving %s alone: a symbolic link", name);
        else if (errno != ENOENT)
            note_errno(s, PP_LOG_ERR, name, errno, "cannot open %s", name);
        return;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        note(s, PP_LOG_WARN, name, "leaving %s alone: not a regular file", name);
        goto out;
    }
    const struct fileid id = { st.st_dev, st.st_ino }; /* what is read is what moves */
    if ((unsigned long long)st.st_size > s->max_size) {
        close_fd(&fd);
        refuse_too_big(s, name, &id, (unsigned long long)st.st_size);
        goto out;
    }
    if (b->n == SPOOL_BATCH_FILES ||
        (b->n > 0 && b->bytes + (unsigned long long)st.st_size > SPOOL_BATCH_BYTES))
        batch_flush(s, b);
    int rc = read_all(fd, (size_t)st.st_size, s->max_size, &data, &len);
    close_fd(&fd);
    if (rc == -EFBIG) {
        refuse_too_big(s, name, &id, 0);
        goto out;
    }
    if (rc < 0) {
        note_errno(s, PP_LOG_ERR, name, rc, "cannot read %s (will retry at the next rescan)",
                   name);
        goto out;
    }
    b->f[b->n].name = name;
    b->f[b->n].id = id;
    b->f[b->n].data = data;
    b->f[b->n++].len = len;
    b->bytes += len;
    data = NULL;
out:
    close_fd(&fd);
    free(data);
}

/* Ingests the named candidates (sorted), batch by batch, until shutdown(). */
static void take_files(struct spool *s, const struct namelist *names, bool from_scan)
{
    struct batch *b = calloc(1, sizeof *b);
    if (!b) {
        s->host->log(s->host, PP_LOG_ERR, "out of memory for a batch of %s", s->path);
        return;
    }
    for (size_t i = 0; i < names->n && !atomic_load(&s->stop); i++)
        take_file(s, b, names->v[i], from_scan);
    batch_flush(s, b);
    free(b);
}

/* Ingests every candidate of the spool directory, in name order. */
static void scan_all(struct spool *s)
{
    struct namelist names = {0}, seen = {0};
    int fd = openat(s->d.dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        host_log_errno(s->host, PP_LOG_ERR, errno, "cannot read %s", s->path);
        close_fd(&fd);
        return;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (!de) {
            if (errno)
                host_log_errno(s->host, PP_LOG_ERR, errno, "cannot read %s", s->path);
            break;
        }
        if (is_candidate(de->d_name) && nl_add(&names, de->d_name) < 0) {
            s->host->log(s->host, PP_LOG_ERR, "out of memory while scanning %s", s->path);
            break;
        }
    }
    closedir(dir);
    nl_sort_unique(&names);

    s->scan_noted = &seen;
    take_files(s, &names, true);
    s->scan_noted = NULL;
    /* Problems not seen again are forgotten: they are logged anew if they return. */
    nl_free(&s->noted);
    s->noted = seen;
    nl_free(&names);
}

/* Reads the pending inotify events and ingests the files they name. */
static void handle_events(struct spool *s)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct namelist names = {0};
    bool rescan = false;

    for (;;) {
        ssize_t r = read(s->ifd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                host_log_errno(s->host, PP_LOG_ERR, errno, "inotify read");
            break;
        }
        if (r == 0)
            break;
        for (char *p = buf; p < buf + r;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                rescan = true;
                continue;
            }
            if (ev->wd != s->wd || s->wd < 0)
                continue;
            if (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF))
                s->host->log(s->host, PP_LOG_WARN, "spool directory %s was %s", s->path,
                             ev->mask & IN_MOVE_SELF ? "moved away" : "removed");
            if (ev->mask & IN_IGNORED) {
                s->wd = -1;  /* check_dirs() reopens it at the next rescan */
                continue;
            }
            if ((ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) && ev->len > 0 &&
                is_candidate(ev->name) && nl_add(&names, ev->name) < 0)
                rescan = true;
        }
    }
    if (rescan) {
        scan_all(s);
    } else {
        nl_sort_unique(&names);
        take_files(s, &names, false);
    }
    nl_free(&names);
}

/* Looks again at the names due by now: files that were too recent for a
 * rescan, and names whose file was replaced while being ingested. */
static void take_pending(struct spool *s)
{
    struct namelist names = {0};
    pending_take_due(s, mono_ms(), &names);
    nl_sort_unique(&names);
    take_files(s, &names, true);
    nl_free(&names);
}

/* ---- the plugin entry points ------------------------------------------- */

static void spool_destroy(void *state)
{
    struct spool *s = state;
    if (!s)
        return;
    dirs_close(&s->d);
    close_fd(&s->ifd);
    close_fd(&s->wake[0]);
    close_fd(&s->wake[1]);
    nl_free(&s->noted);
    pending_free(s);
    free(s->path);
    free(s);
}

static int spool_init(const pp_collector_host *host, void **state)
{
    struct spool *s = NULL;
    unsigned long long v;
    const char *opt;
    char err[PATH_MAX + 256];

    if (!host || !state || !host->log || !host->option || !host->submit_csv)
        return -1;
    *state = NULL;
    /* ABI 1 lacks only submit_csv_batch, which batch_flush() does without. */
    if (host->abi_version < 1 || host->abi_version > PP_COLLECTOR_ABI_VERSION) {
        host->log(host, PP_LOG_ERR, "spool collector built for ABI 1 to %d, daemon has %d",
                  PP_COLLECTOR_ABI_VERSION, host->abi_version);
        return -1;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        host->log(host, PP_LOG_ERR, "out of memory");
        return -1;
    }
    s->host = host;
    s->d.dir = s->d.done = s->d.failed = -1;
    s->ifd = s->wd = -1;
    s->wake[0] = s->wake[1] = -1;
    atomic_init(&s->stop, 0);

    opt = host->option(host, "path");
    if (!opt || !*opt) {
        host->log(host, PP_LOG_ERR, "option path (the spool directory) is required");
        goto fail;
    }
    if (opt[0] != '/') {
        host->log(host, PP_LOG_ERR, "path \"%s\" must be an absolute path", opt);
        goto fail;
    }
    if (strlen(opt) >= PATH_MAX - 32) {
        host->log(host, PP_LOG_ERR, "path is too long");
        goto fail;
    }
    s->path = strdup(opt);
    if (!s->path) {
        host->log(host, PP_LOG_ERR, "out of memory");
        goto fail;
    }

    s->rescan = SPOOL_DEFAULT_RESCAN;
    opt = host->option(host, "rescan");
    if (opt) {
        if (parse_number(opt, 1, SPOOL_MAX_RESCAN, false, &v) < 0) {
            host->log(host, PP_LOG_ERR, "rescan \"%s\" must be a number of seconds, "
                      "1 to %d", opt, SPOOL_MAX_RESCAN);
            goto fail;
        }
        s->rescan = (unsigned)v;
    }
    s->max_size = SPOOL_DEFAULT_MAX_SIZE;
    opt = host->option(host, "max_size");
    if (opt) {
        if (parse_number(opt, 1, SPOOL_LIMIT_MAX_SIZE, true, &v) < 0) {
            host->log(host, PP_LOG_ERR, "max_size \"%s\" must be a number of bytes "
                      "(K, M, G suffixes allowed), 1 to 1G", opt);
            goto fail;
        }
        s->max_size = (size_t)v;
    }

    if (ensure_spool_dir(s) < 0)
        goto fail;
    if (dirs_open(s->path, &s->d, err, sizeof err) < 0) {
        host->log(host, PP_LOG_ERR, "%s", err);
        goto fail;
    }
    s->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->ifd < 0) {
        host_log_errno(host, PP_LOG_ERR, errno, "inotify_init1");
        goto fail;
    }
    s->wd = inotify_add_watch(s->ifd, s->path, SPOOL_WATCH_MASK);
    if (s->wd < 0) {
        host_log_errno(host, PP_LOG_ERR, errno, "cannot watch %s", s->path);
        goto fail;
    }
    if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        host_log_errno(host, PP_LOG_ERR, errno, "pipe2");
        goto fail;
    }
    *state = s;
    return 0;
fail:
    spool_destroy(s);
    return -1;
}

static int spool_run(void *state)
{
    struct spool *s = state;
    int64_t next;

    s->host->log(s->host, PP_LOG_INFO, "watching %s (rescan every %u s)", s->path, s->rescan);
    if (!atomic_load(&s->stop))
        scan_all(s);
    next = mono_ms() + (int64_t)s->rescan * 1000;

    while (!atomic_load(&s->stop)) {
        int64_t due = pending_next(s);
        int64_t wait = (due < next ? due : next) - mono_ms();
        struct pollfd pfd[2] = {
            { .fd = s->wake[0], .events = POLLIN },
            { .fd = s->ifd, .events = POLLIN },
        };
        int n = poll(pfd, 2, wait > 0 ? (int)wait : 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            host_log_errno(s->host, PP_LOG_ERR, errno, "poll");
            return -1;
        }
        if (pfd[0].revents)
            break;
        if (pfd[1].revents & POLLIN)
            handle_events(s);
        if (mono_ms() >= next && !atomic_load(&s->stop)) {
            check_dirs(s);
            scan_all(s);
            next = mono_ms() + (int64_t)s->rescan * 1000;
        }
        if (pending_next(s) <= mono_ms() && !atomic_load(&s->stop))
            take_pending(s);
    }
    return 0;
}

PP_COLLECTOR_EXPORT(spool);
