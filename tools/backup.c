/*
 * backup.c — `parkpulse backup DIR` (README, "Backup and restore"): a
 * consistent copy of the journal, also while parkpulsed runs and takes
 * figures, with the alert id file and the configuration.
 *
 * The journal (state_dir/journal/journal.log, format at the top of
 * daemon/journal.c) only grows, by whole batches of checksummed lines, each
 * fsync'd before it is acknowledged; a failed batch is cut off again. So the
 * first N intact records of the file never change once the daemon counted
 * them. The backup takes N first, copies the file, and cuts the copy just
 * after its N-th intact record (journal_prefix()): a batch boundary, holding
 * exactly what was acknowledged when the backup began — not a half-written
 * batch that was not (yet) acknowledged, nor one that a full disk made fail.
 *   - parkpulsed runs (it holds the journal's flock): N is its count,
 *     parkpulse_journal_records of GET /metrics (the daemon of --url, else
 *     of the configuration's http.listen);
 *   - it does not: the journal is locked (flock, shared) during the copy, so
 *     that no daemon starts meanwhile, and N is every intact record.
 * alert-ids.log is copied after that, cut after its last complete line: it
 * then knows every alert the copied journal holds (an id in it that the
 * journal lacks is only never published again, which is what it is for).
 *
 * Written into DIR/parkpulse-backup-<UTC time>/ (built as
 * .parkpulse-backup-<time>.part and renamed when complete and fsync'd):
 *
 *   journal.log  alert-ids.log  config/<the configuration>  config/<*.conf beside it>
 *   SHA256SUMS   sha256sum(1) of each, for `sha256sum -c SHA256SUMS`
 *   MANIFEST     "# key  value" lines (created, source, records), then one
 *                line per file: sha256, size in bytes, name
 *
 * The token (http.token_file) and the bus's CURVE secret key are not copied:
 * they are secrets, and a backup is kept in more places and by more people
 * than /etc/parkpulse; a new token is one `parkpulse token --create` away.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "journal.h"

#define BK_MAX_FILES 64 /* files in one backup (journal, ids, configuration) */

static const char backup_help[] =
    "usage: parkpulse backup DIR\n"
    "Copies the journal (state_dir/journal/journal.log), the alert id file\n"
    "beside it and the configuration (the file and the *.conf files of its\n"
    "directory; not the token) into DIR/parkpulse-backup-<UTC time>/, with a\n"
    "MANIFEST (sha256, size, name) and SHA256SUMS (for sha256sum -c). While\n"
    "parkpulsed runs, the journal copy holds exactly the records it had\n"
    "acknowledged when the backup began (its /metrics count; --url names the\n"
    "daemon); else the journal is locked during the copy. Prints the directory.\n"
    "Restore: stop the service, put journal.log and alert-ids.log back into\n"
    "state_dir/journal/, start it (README, \"Backup and restore\").\n"
    "  -h, --help   this text\n";

typedef struct bk_file {
    char name[PATH_MAX]; /* relative to the backup directory */
} bk_file;

typedef struct bk {
    char part[PATH_MAX]; /* the directory being filled */
    bk_file files[BK_MAX_FILES];
    size_t n;
    bool has_config_dir;
} bk;

/* Copies the rest of src (from its current offset) into the new file dst
 * (mode 0640). Returns 0 or -errno; the message is printed. */
static int copy_fd(int src, const char *src_name, const char *dst)
{
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (out < 0) {
        int rc = -errno;
        cl_err("backup", "cannot create %s: %s", dst, strerror(errno));
        return rc;
    }
    char buf[1 << 16];
    int rc = 0;
    for (;;) {
        ssize_t r = read(src, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            cl_err("backup", "cannot read %s: %s", src_name, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                cl_err("backup", "cannot write %s: %s", dst, strerror(errno));
                goto out;
            }
            off += w;
        }
    }
out:
    if (close(out) != 0 && rc == 0) {
        rc = -errno;
        cl_err("backup", "cannot write %s: %s", dst, strerror(errno));
    }
    return rc;
}

/* Truncates path to len bytes and fsyncs it. */
static int cut_and_sync(const char *path, off_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || (len >= 0 && ftruncate(fd, len) != 0) || fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        cl_err("backup", "cannot cut or fsync %s: %s", path, strerror(-rc));
    return rc;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 || fsync(fd) != 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        cl_err("backup", "cannot fsync the directory %s: %s", dir, strerror(-rc));
    return rc;
}

static int bk_path(const bk *b, const char *name, char *out)
{
    if (snprintf(out, PATH_MAX, "%s/%s", b->part, name) >= PATH_MAX) {
        cl_err("backup", "%s/%s: name too long", b->part, name);
        return -ENAMETOOLONG;
    }
    return 0;
}

static int bk_add(bk *b, const char *name)
{
    if (b->n == BK_MAX_FILES || strlen(name) >= sizeof b->files[0].name) {
        cl_err("backup", "too many files (%d at most)", BK_MAX_FILES);
        return -E2BIG;
    }
    strcpy(b->files[b->n++].name, name);
    return 0;
}

/* Removes what was written of an unfinished backup. */
static void bk_discard(bk *b)
{
    char p[PATH_MAX];
    static const char *const extra[] = { "SHA256SUMS", "MANIFEST", "journal.log",
                                         "alert-ids.log" };
    for (size_t i = 0; i < b->n; i++)
        if (bk_path(b, b->files[i].name, p) == 0)
            unlink(p);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (bk_path(b, extra[i], p) == 0)
            unlink(p);
    if (b->has_config_dir && bk_path(b, "config", p) == 0)
        rmdir(p);
    rmdir(b->part);
}

/* parkpulse_journal_records of the daemon's /metrics into *n. */
static int daemon_journal_count(cl_ctx *ctx, uint64_t *n)
{
    cl_answer ans = { 0 };
    int rc = cl_http(ctx, "backup", "GET", "/metrics", NULL, NULL, 0, NULL, &ans);
    if (rc != 0) {
        cl_err("backup", "parkpulsed holds the journal (it runs) but its /metrics cannot be "
                         "read: give its --url");
        return rc;
    }
    if (ans.status != 200) {
        rc = cl_http_failure("backup", "GET /metrics", &ans);
        cl_answer_free(&ans);
        return rc;
    }
    static const char key[] = "\nparkpulse_journal_records ";
    const char *p = strstr(ans.body, key);
    char *end = NULL;
    rc = EX_PROTOCOL;
    if (p) {
        errno = 0;
        unsigned long long v = strtoull(p + strlen(key), &end, 10);
        if (errno == 0 && end != p + strlen(key) && (*end == '\n' || *end == '\0')) {
            *n = v;
            rc = 0;
        }
    }
    if (rc != 0)
        cl_err("backup", "the daemon's /metrics has no parkpulse_journal_records line");
    cl_answer_free(&ans);
    return rc;
}

/* Copies the journal (cut after want intact records) into the backup. */
static int copy_journal(bk *b, int jfd, const char *jpath, uint64_t want, bool running,
                        uint64_t *records)
{
    char dst[PATH_MAX];
    int rc;
    if ((rc = bk_path(b, "journal.log", dst)) != 0 || (rc = copy_fd(jfd, jpath, dst)) != 0)
        return EX_IOERR;
    off_t end;
    uint64_t count;
    if ((rc = journal_prefix(dst, want, &end, &count)) != 0) {
        cl_err("backup", "%s cannot be read as a journal: %s", jpath, strerror(-rc));
        return rc == -EINVAL ? EX_DATAERR : EX_IOERR;
    }
    if (running && count < want) {
        cl_err("backup", "%s holds %" PRIu64 " intact record(s), the daemon counts %" PRIu64
                         ": is --url the daemon of this configuration?", jpath, count, want);
        return EX_DATAERR;
    }
    if (cut_and_sync(dst, end) != 0 || bk_add(b, "journal.log") != 0)
        return EX_IOERR;
    *records = count;
    return 0;
}

/* Copies alert-ids.log (when there is one), cut after its last complete line. */
static int copy_alert_ids(bk *b, const char *state_dir)
{
    char src[PATH_MAX], dst[PATH_MAX];
    if (snprintf(src, sizeof src, "%s/journal/alert-ids.log", state_dir) >= (int)sizeof src)
        return EX_USAGE;
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        cl_err("backup", "cannot open %s: %s", src, strerror(errno));
        return errno == EACCES ? EX_NOPERM : EX_IOERR;
    }
    int rc = bk_path(b, "alert-ids.log", dst) == 0 ? copy_fd(fd, src, dst) : -ENAMETOOLONG;
    close(fd);
    if (rc != 0)
        return EX_IOERR;
    /* the end of its last complete line */
    off_t keep = 0;
    fd = open(dst, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        char buf[4096];
        if (fstat(fd, &st) == 0) {
            for (off_t at = st.st_size; at > 0 && keep == 0;) {
                size_t len = at < (off_t)sizeof buf ? (size_t)at : sizeof buf;
                at -= (off_t)len;
                if (pread(fd, buf, len, at) != (ssize_t)len)
                    break;
                for (size_t i = len; i > 0; i--)
                    if (buf[i - 1] == '\n') {
                        keep = at + (off_t)i;
                        break;
                    }
            }
        }
        close(fd);
    }
    if (cut_and_sync(dst, keep) != 0 || bk_add(b, "alert-ids.log") != 0)
        return EX_IOERR;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int copy_one_config(bk *b, const char *src, const char *base)
{
    char name[PATH_MAX], dst[PATH_MAX];
    if (snprintf(name, sizeof name, "config/%s", base) >= (int)sizeof name)
        return EX_USAGE;
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->files[i].name, name) == 0)
            return 0; /* the configuration itself, seen again in its directory */
    int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        cl_err("backup", "cannot open %s: %s", src, strerror(errno));
        return EX_IOERR;
    }
    int rc = bk_path(b, name, dst) == 0 ? copy_fd(fd, src, dst) : -ENAMETOOLONG;
    close(fd);
    if (rc != 0 || cut_and_sync(dst, -1) != 0 || bk_add(b, name) != 0)
        return EX_IOERR;
    return 0;
}

/* The configuration file and the *.conf files of its directory, except the
 * secrets the configuration names. */
static int copy_config(bk *b, const char *conf, const pp_config *cfg)
{
    char dst[PATH_MAX], dir[PATH_MAX];
    if (bk_path(b, "config", dst) != 0)
        return EX_USAGE;
    if (mkdir(dst, 0750) != 0) {
        cl_err("backup", "cannot create %s: %s", dst, strerror(errno));
        return EX_CANTCREAT;
    }
    b->has_config_dir = true;
    const char *slash = strrchr(conf, '/');
    int rc = copy_one_config(b, conf, slash ? slash + 1 : conf);
    if (rc != 0)
        return rc;
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (snprintf(dir, sizeof dir, "%.*s", (int)(slash - conf), conf) >= (int)sizeof dir)
        return EX_USAGE;
    if (dir[0] == '\0')
        snprintf(dir, sizeof dir, "/");
    DIR *d = opendir(dir);
    if (d == NULL) {
        cl_err("backup", "cannot read the directory %s: %s", dir, strerror(errno));
        return EX_IOERR;
    }
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char src[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".conf"))
            continue;
        if (snprintf(src, sizeof src, "%s/%s", dir, e->d_name) >= (int)sizeof src)
            continue;
        if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if ((cfg->http_token_file && strcmp(src, cfg->http_token_file) == 0) ||
            (cfg->bus_curve_secret_key && strcmp(src, cfg->bus_curve_secret_key) == 0))
            continue;
        rc = copy_one_config(b, src, e->d_name);
    }
    closedir(d);
    return rc;
}

/* SHA256SUMS by sha256sum(1), run in the backup directory. */
static int write_sums(bk *b)
{
    char out[PATH_MAX];
    if (bk_path(b, "SHA256SUMS", out) != 0)
        return EX_USAGE;
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        cl_err("backup", "cannot create %s: %s", out, strerror(errno));
        return EX_CANTCREAT;
    }
    char *argv[BK_MAX_FILES + 3];
    size_t k = 0;
    argv[k++] = "sha256sum";
    argv[k++] = "--";
    for (size_t i = 0; i < b->n; i++)
        argv[k++] = b->files[i].name;
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(fd, STDOUT_FILENO) < 0 || chdir(b->part) != 0)
            _exit(127);
        execvp("sha256sum", argv);
        _exit(127);
    }
    int status = 0;
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    int rc = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EX_OSERR;
    if (rc != 0)
        cl_err("backup", "sha256sum failed (status %d): is coreutils installed?",
               pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (fsync(fd) != 0 && rc == 0)
        rc = EX_IOERR;
    close(fd);
    return rc;
}

/* MANIFEST from SHA256SUMS and the files' sizes. */
static int write_manifest(bk *b, const char *created, const char *state_dir, const char *conf,
                          uint64_t records, bool running)
{
    char sums[PATH_MAX], man[PATH_MAX];
    if (bk_path(b, "SHA256SUMS", sums) != 0 || bk_path(b, "MANIFEST", man) != 0)
        return EX_USAGE;
    FILE *in = fopen(sums, "re");
    int fd = open(man, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (in == NULL || out == NULL) {
        cl_err("backup", "cannot write %s: %s", man, strerror(errno));
        if (in)
            fclose(in);
        if (out)
            fclose(out);
        else if (fd >= 0)
            close(fd);
        return EX_IOERR;
    }
    fprintf(out,
            "# parkpulse backup, parkpulse %s\n"
            "# created  %s\n"
            "# from     %s/journal (configuration %s)\n"
            "# journal  %" PRIu64 " record(s): %s\n"
            "# check    sha256sum -c SHA256SUMS\n"
            "# restore  README, \"Backup and restore\"\n"
            "# sha256 size name\n",
            PARKPULSE_VERSION, created, state_dir, conf, records,
            running ? "those parkpulsed had acknowledged when the backup began"
                    : "all of it (parkpulsed was not running)");
    char line[PATH_MAX + 128];
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, in)) {
        char *sp = strstr(line, "  ");
        line[strcspn(line, "\n")] = '\0';
        char p[PATH_MAX];
        struct stat st;
        if (sp == NULL || bk_path(b, sp + 2, p) != 0 || stat(p, &st) != 0) {
            cl_err("backup", "unexpected line in SHA256SUMS: %s", line);
            rc = EX_SOFTWARE;
            break;
        }
        *sp = '\0';
        fprintf(out, "%s %jd %s\n", line, (intmax_t)st.st_size, sp + 2);
    }
    fclose(in);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0)
        rc = EX_IOERR;
    if (fclose(out) != 0 && rc == 0)
        rc = EX_IOERR;
    if (rc == EX_IOERR)
        cl_err("backup", "cannot write %s: %s", man, strerror(errno));
    return rc;
}

/* Reads the command line: *dir, the one argument. Returns -1 to go on, or
 * the exit status (0 after --help, EX_USAGE). */
static int read_options(int argc, char **argv, const char **dir)
{
    static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(backup_help, stdout);
            return 0;
        }
        fputs(backup_help, stderr);
        return EX_USAGE;
    }
    if (optind != argc - 1) {
        fputs(backup_help, stderr);
        return EX_USAGE;
    }
    *dir = argv[optind];
    return -1;
}

/* Opens the journal of state_dir (its path into jpath, PATH_MAX bytes) into
 * *jfd, and finds how many records to copy: when a daemon runs (it holds
 * the journal's flock: *running), its count into *want; otherwise the
 * journal is locked shared and *want stays. Returns 0, or the exit status
 * after saying why (*jfd then closed). */
static int open_journal(cl_ctx *ctx, const char *state_dir, char *jpath, int *jfd,
                        bool *running, uint64_t *want)
{
    if (snprintf(jpath, PATH_MAX, "%s/journal/journal.log", state_dir) >= PATH_MAX) {
        cl_err("backup", "%s: name too long", state_dir);
        return EX_CONFIG;
    }
    *jfd = open(jpath, O_RDONLY | O_CLOEXEC);
    if (*jfd < 0) {
        int e = errno;
        cl_err("backup", "cannot open %s: %s%s", jpath, strerror(e),
               e == EACCES ? " (run it as root or as the daemon's user)" : "");
        return e == EACCES ? EX_NOPERM : EX_NOINPUT;
    }
    /* a running daemon holds an exclusive flock on the journal */
    if (flock(*jfd, LOCK_SH | LOCK_NB) != 0) {
        int rc = EX_IOERR;
        if (errno != EWOULDBLOCK) {
            cl_err("backup", "cannot lock %s: %s", jpath, strerror(errno));
        } else {
            *running = true;
            rc = daemon_journal_count(ctx, want);
        }
        if (rc != 0) {
            close(*jfd);
            *jfd = -1;
            return rc;
        }
    }
    return 0;
}

/* Names the backup of stamp in dir (b->part, and final: PATH_MAX bytes) and
 * creates dir when needed and the part directory. Returns 0, or the exit
 * status after saying why. */
static int make_part_dir(bk *b, const char *dir, const char *stamp, char *final)
{
    if (snprintf(b->part, sizeof b->part, "%s/.parkpulse-backup-%s.part", dir, stamp) >=
            (int)sizeof b->part ||
        snprintf(final, PATH_MAX, "%s/parkpulse-backup-%s", dir, stamp) >= PATH_MAX) {
        cl_err("backup", "%s: name too long", dir);
        return EX_USAGE;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        cl_err("backup", "cannot create %s: %s", dir, strerror(errno));
        return EX_CANTCREAT;
    }
    if (access(final, F_OK) == 0 || mkdir(b->part, 0750) != 0) {
        cl_err("backup", "cannot create %s: %s", access(final, F_OK) == 0 ? final : b->part,
               access(final, F_OK) == 0 ? strerror(EEXIST) : strerror(errno));
        return EX_CANTCREAT;
    }
    return 0;
}

int cl_cmd_backup(cl_ctx *ctx, int argc, char **argv)
{
    const char *dir;
    int rc = read_options(argc, argv, &dir);
    if (rc >= 0)
        return rc;
    const pp_config *cfg;
    if ((rc = cl_config(ctx, "backup", &cfg)) != 0)
        return rc;
    if (cfg == NULL) {
        cl_err("backup", "cannot read %s: give the configuration with --config",
               cl_config_file(ctx));
        return EX_CONFIG;
    }
    char jpath[PATH_MAX];
    int jfd = -1;
    bool running = false;
    uint64_t want = UINT64_MAX, records = 0;
    if ((rc = open_journal(ctx, cfg->state_dir, jpath, &jfd, &running, &want)) != 0)
        return rc;

    char created[32], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);

    bk *b = calloc(1, sizeof *b);
    char final[PATH_MAX];
    if (b == NULL) {
        close(jfd);
        cl_err("backup", "out of memory");
        return EX_OSERR;
    }
    if ((rc = make_part_dir(b, dir, stamp, final)) != 0)
        goto out_nodir;
    if ((rc = copy_journal(b, jfd, jpath, want, running, &records)) != 0 ||
        (rc = copy_alert_ids(b, cfg->state_dir)) != 0 ||
        (rc = copy_config(b, cl_config_file(ctx), cfg)) != 0 || (rc = write_sums(b)) != 0 ||
        (rc = write_manifest(b, created, cfg->state_dir, cl_config_file(ctx), records, running)) != 0)
        goto out;
    char cdir[PATH_MAX];
    if (bk_path(b, "config", cdir) != 0 || sync_dir(cdir) != 0 || sync_dir(b->part) != 0) {
        rc = EX_IOERR;
        goto out;
    }
    if (rename(b->part, final) != 0) {
        cl_err("backup", "cannot rename %s to %s: %s", b->part, final, strerror(errno));
        rc = EX_IOERR;
        goto out;
    }
    if (sync_dir(dir) != 0) {
        rc = EX_IOERR;
        goto out_nodir;
    }
    printf("%s\n", final);
    rc = fflush(stdout) == 0 ? 0 : EX_IOERR;
    goto out_nodir;
out:
    bk_discard(b);
out_nodir:
    close(jfd); /* and with it the lock */
    free(b);
    return rc;
}
