/*
 * graph.c — rendering graphs for the HTTP endpoint in worker processes, and
 * caching the images (README, HTTP API).
 *
 * Why processes: librrd 1.7.2's rrd_graph_v is not thread-safe (Pango's
 * shared font cache races and corrupts the heap when two threads render). A
 * global mutex makes it safe but holds every render to one core (≈60 PNG/s);
 * worker processes use every core. So:
 *
 *   - graph_pool_start forks the workers while the daemon still has a single
 *     thread, so plain fork() without exec is safe. Each worker is joined to
 *     the daemon by a SOCK_STREAM socketpair; it closes every other inherited
 *     descriptor (the state-directory lock, the journal), asks for SIGTERM
 *     when the daemon dies (PR_SET_PDEATHSIG), ignores SIGINT and SIGHUP (the
 *     daemon's to handle: ^C in a terminal reaches the whole process group),
 *     keeps freed memory in its heap (mallopt: a render's image surface of
 *     a few MB is not mmap'd and faulted in again each time), writes a small
 *     series under $TMPDIR, opens it and removes it again, unblocks the
 *     signals the daemon blocked (only now, so that no SIGTERM leaves the
 *     series behind), renders one throwaway graph of it (graph_warm_*:
 *     librrd's first render in a process loads the fonts and costs about
 *     twice a later one; logged "graph worker N warmed up in … ms"), and
 *     loops: read one request, render it with store_graph, answer, until
 *     the socket reaches EOF.
 *   - The protocol, one exchange at a time per worker:
 *         daemon -> worker  graph_wire_req  { magic, size, graph_request }
 *         worker -> daemon  graph_wire_rep  { status (0 or -errno), length }
 *                           followed by length image bytes (<= GRAPH_REPLY_MAX)
 *     Both sides check every size; the worker re-checks the request.
 *   - graph_render takes a free worker from a free list (mutex + condvar),
 *     talks to it without the lock held, and gives it back. Each exchange
 *     has a deadline (GRAPH_TIMEOUT_MS); a worker that misses it is killed.
 *   - A dead worker cannot be replaced: forking from a threaded daemon is
 *     not safe. It is reaped and marked dead. Found dead while idle (EOF
 *     before the request is written), it is skipped and the request goes to
 *     another worker; dead on a request (EOF instead of an answer), that
 *     request fails with -EIO and is not retried, so that a request that
 *     crashes librrd cannot take every worker down. When no worker is left,
 *     graph_render renders in-process, serialised by the store module's
 *     librrd mutex (slow but correct), and says so once in the log.
 *     librrd also leaks a few hundred bytes per rrd_graph_v call (legend
 *     keys of its info list; measured under ASan), which stays inside the
 *     workers.
 *
 * The cache maps a whole request (series, format, size, months, the series'
 * generation, every text) to its image, in a hash table with an LRU list,
 * bounded in bytes. A new generation of a series drops the older ones. ETags:
 * librrd's PNG bytes are the same for the same input, so a PNG's ETag is a
 * hash of its bytes; SVG output differs per render (a surface id), so an
 * SVG's ETag is a weak one, hashed from the request.
 */
#include "graph.h"

#include "hash.h"
#include "log.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define GRAPH_WORKERS_MAX 64
#define GRAPH_TIMEOUT_MS 20000        /* one render, including the wait for a reply */
#define GRAPH_WIRE_MAGIC 0x50504752u  /* "PPGR" */
#define GRAPH_BUCKETS 512             /* cache hash buckets (a power of two) */

typedef struct graph_wire_req {
    uint32_t magic;
    uint32_t size;                    /* sizeof(graph_request) */
    graph_request req;
} graph_wire_req;

typedef struct graph_wire_rep {
    int32_t status;                   /* 0 or a negative errno */
    uint32_t len;                     /* image bytes that follow */
} graph_wire_rep;

typedef struct graph_worker {
    pid_t pid;
    int fd;                           /* -1 once dead */
} graph_worker;

struct graph_pool {
    char rrd_dir[PATH_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    graph_worker workers[GRAPH_WORKERS_MAX];
    int n_workers;
    int free_ring[GRAPH_WORKERS_MAX]; /* idle live workers, oldest idle first, so that
                                         work rotates and a dead worker is found soon */
    int free_head, n_free;
    int n_alive;
    bool warned_local;
};

/* ---- requests ------------------------------------------------------------ */

void graph_request_init(graph_request *req)
{
    memset(req, 0, sizeof *req);
    req->format = GRAPH_PNG;
    req->width = 800;
    req->height = 300;
    req->last_year = 1;
}

static bool graph_text_ok(const char *s) { return memchr(s, '\0', GRAPH_TEXT_MAX) != NULL; }

int graph_request_check(const graph_request *req)
{
    int min = pp_period_make(GRAPH_YEAR_MIN, 1), max = pp_period_make(GRAPH_YEAR_MAX, 12);

    if (req == NULL)
        return -EINVAL;
    if (memchr(req->park, '\0', sizeof req->park) == NULL || !pp_id_valid(req->park) ||
        memchr(req->indicator, '\0', sizeof req->indicator) == NULL ||
        !pp_id_valid(req->indicator))
        return -EINVAL;
    if (req->format != GRAPH_PNG && req->format != GRAPH_SVG)
        return -EINVAL;
    if (req->width < GRAPH_WIDTH_MIN || req->width > GRAPH_WIDTH_MAX ||
        req->height < GRAPH_HEIGHT_MIN || req->height > GRAPH_HEIGHT_MAX)
        return -EINVAL;
    if (req->from < min || req->to > max || req->from > req->to ||
        req->to - req->from >= GRAPH_MONTHS_MAX)
        return -EINVAL;
    if (!graph_text_ok(req->title) || !graph_text_ok(req->unit) ||
        !graph_text_ok(req->value_label) || !graph_text_ok(req->pace_label) ||
        !graph_text_ok(req->comment) || !graph_text_ok(req->latest) || !graph_text_ok(req->yoy) ||
        !graph_text_ok(req->target) || (req->target_line != 0 && req->target_line != 1) ||
        (req->last_year != 0 && req->last_year != 1))
        return -EINVAL;
    return 0;
}

const char *graph_content_type(graph_format format)
{
    return format == GRAPH_SVG ? "image/svg+xml" : "image/png";
}

/* Renders a checked request in this process (store_graph serialises librrd). */
static int graph_render_here(const char *rrd_dir, const graph_request *req, unsigned char **img,
                             size_t *len)
{
    char path[PATH_MAX];

    if (store_path(rrd_dir, req->park, req->indicator, path, sizeof path) != 0) {
        log_err("graph", "%s/%s: path too long under %s", req->park, req->indicator, rrd_dir);
        return -EINVAL;
    }
    store_graph_spec spec = {
        .svg = req->format == GRAPH_SVG,
        .width = req->width,
        .height = req->height,
        .start = store_month_end(req->from - 1), /* 00:00 UTC on the 1st of `from` */
        .end = store_month_end(req->to),         /* 00:00 UTC on the 1st after `to` */
        .title = req->title,
        .unit = req->unit,
        .value_label = req->value_label,
        .pace_label = req->pace_label,
        .comment = req->comment,
        .latest = req->latest,
        .yoy = req->yoy,
        .target = req->target,
        .target_line = req->target_line != 0,
    };
    /* last year's same months, dashed, when the graph spans a year or less
     * and the caller did not say that there is no figure for them */
    if (req->last_year && req->to - req->from < 12 &&
        req->from - 12 >= pp_period_make(GRAPH_YEAR_MIN, 1)) {
        spec.last_start = store_month_end(req->from - 13);
        spec.last_end = store_month_end(req->to - 12);
    }
    int rc = store_graph(path, &spec, img, len);
    if (rc == 0 && *len > GRAPH_REPLY_MAX) {
        log_err("graph", "%s: image of %zu bytes is over the bound", path, *len);
        free(*img);
        *img = NULL;
        *len = 0;
        rc = -EIO;
    }
    return rc;
}

/* ---- socket I/O ---------------------------------------------------------- */

static long graph_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline (ms, CLOCK_MONOTONIC;
 * -1: none). Returns 0, -ETIMEDOUT or -errno. */
static int graph_wait(int fd, short events, long deadline)
{
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            long left = deadline - graph_now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            timeout = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return 0; /* readable, writable, or HUP/ERR: the next call says which */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Writes all of buf. Returns 0, -EPIPE (peer gone), -ETIMEDOUT or -errno. */
static int graph_write_all(int fd, const void *buf, size_t len, long deadline)
{
    const unsigned char *p = buf;
    while (len > 0) {
        int rc = graph_wait(fd, POLLOUT, deadline);
        if (rc != 0)
            return rc;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return errno == ECONNRESET ? -EPIPE : -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads exactly len bytes. Returns 0, -ECONNRESET when EOF comes first
 * (*got says how many bytes came), -ETIMEDOUT or -errno. */
static int graph_read_all(int fd, void *buf, size_t len, long deadline, size_t *got)
{
    unsigned char *p = buf;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        rc = graph_wait(fd, POLLIN, deadline);
        if (rc != 0)
            break;
        ssize_t n = recv(fd, p + done, len - done, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0) {
            rc = -ECONNRESET;
            break;
        }
        done += (size_t)n;
    }
    if (got != NULL)
        *got = done;
    return rc;
}

/* ---- the worker process --------------------------------------------------- */

/* Closes every descriptor but 0, 1, 2 and keep, which becomes 3. */
static int graph_close_others(int keep)
{
    if (keep != 3) {
        if (dup2(keep, 3) < 0)
            return -1;
        close(keep);
    }
    if (close_range(4, ~0u, 0) == 0)
        return 0;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 4; fd < (int)max; fd++)
        close(fd);
    return 0;
}

/* Removes a warm-up directory: every entry of its "warm" directory (the
 * series file, librrd's temporary files), "warm", and itself. Only a
 * directory of ours, not followed through a link. */
static void graph_warm_clean(const char *dir)
{
    struct stat st;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
        close(fd);
        return;
    }
    int wfd = openat(fd, "warm", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *w = wfd >= 0 ? fdopendir(wfd) : NULL;
    if (w != NULL) {
        struct dirent *e;
        while ((e = readdir(w)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(wfd, e->d_name, 0);
        closedir(w);
    } else if (wfd >= 0) {
        close(wfd);
    }
    unlinkat(fd, "warm", AT_REMOVEDIR);
    close(fd);
    rmdir(dir);
}

/* Removes what the warm-ups of workers that no longer exist left under tmp
 * (parkpulse-warm-<pid>-*: a worker killed with SIGKILL while it wrote). */
static void graph_warm_sweep(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        long pid = 0;
        int end = 0;
        char dir[PATH_MAX];
        if (sscanf(e->d_name, "parkpulse-warm-%ld-%n", &pid, &end) != 1 || end == 0 || pid <= 0 ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        int n = snprintf(dir, sizeof dir, "%s/%s", tmp, e->d_name);
        if (n > 0 && (size_t)n < sizeof dir)
            graph_warm_clean(dir);
    }
    closedir(d);
}

/* A worker's first render: one throwaway graph, in Chinese, so that the
 * worker's first real request does not pay for loading the fonts, Pango and
 * cairo (librrd's first rrd_graph_v call in a process costs about twice a
 * later one). graph_warm_prepare writes a small series under a temporary
 * directory ($TMPDIR or /tmp), opens it and removes it again at once (with
 * SIGTERM still blocked, so that nothing is left behind; what a worker
 * killed with SIGKILL meanwhile left, the next one removes); graph_warm_render
 * draws it through /proc/self/fd. Failing is logged, not fatal. Returns the
 * open file, or -1. */
static int graph_warm_prepare(int index)
{
    static const double value[] = { 10, 25, 41, 60 };
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX], path[PATH_MAX];

    tmp = tmp && *tmp ? tmp : "/tmp";
    graph_warm_sweep(tmp);
    int n = snprintf(dir, sizeof dir, "%s/parkpulse-warm-%ld-XXXXXX", tmp, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof dir || mkdtemp(dir) == NULL) {
        log_warn("graph", "graph worker %d: no warm-up (mkdtemp %s: %s)", index, dir,
                 strerror(errno));
        return -1;
    }
    store_series series = {
        .park = "warm",
        .indicator = "up",
        .first_period = pp_period_make(2020, 1),
        .n = 4,
        .value = value,
        .pace = value,
        .changed_from = pp_period_make(2020, 1),
    };
    int fd = -1;
    if (store_write(dir, &series) == 0 && store_path(dir, "warm", "up", path, sizeof path) == 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    graph_warm_clean(dir);
    if (fd < 0)
        log_warn("graph", "graph worker %d: no warm-up (the series under %s)", index, dir);
    return fd;
}

static void graph_warm_render(int index, int fd, long t0)
{
    char path[64];
    unsigned char *img = NULL;
    size_t len = 0;
    store_graph_spec spec = {
        .width = 400,
        .height = 150,
        .start = store_month_end(pp_period_make(2020, 1) - 1),
        .end = store_month_end(pp_period_make(2020, 12)),
        .title = "预热 · 工业总产值 (亿元) 0123456789",
        .unit = "亿元",
        .value_label = "工业总产值",
        .pace_label = "序时进度",
        .comment = "2020-04 低于序时进度(33.3%)2.6个百分点",
        .latest = "60",
        .yoy = "12.5",
        .target = "300",
        .target_line = true,
    };
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = store_graph(path, &spec, &img, &len);
    free(img);
    close(fd);
    if (rc != 0)
        log_warn("graph", "graph worker %d: warm-up render failed (%d)", index, rc);
    else
        log_info("graph", "graph worker %d warmed up in %ld ms", index, graph_now_ms() - t0);
}

static void graph_worker_main(int fd, const char *rrd_dir, pid_t parent, int index)
    __attribute__((noreturn));

static void graph_worker_main(int fd, const char *rrd_dir, pid_t parent, int index)
{
    prctl(PR_SET_NAME, "parkpulse-graph", 0, 0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0 || getppid() != parent)
        _exit(0); /* the daemon is already gone */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    closelog(); /* syslog reconnects on its next line; its socket is closed below */
    if (graph_close_others(fd) != 0)
        _exit(1);
    fd = 3;
    /* A render allocates an image surface of a few MB and frees it; kept in
     * the heap instead of mmap'd and unmapped each time, its pages are not
     * faulted in again (about a tenth of a render's CPU time). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    long t0 = graph_now_ms();
    int warm = graph_warm_prepare(index); /* SIGTERM still blocked: no file left behind */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (warm >= 0)
        graph_warm_render(index, warm, t0);

    for (;;) {
        graph_wire_req w;
        size_t got = 0;
        int rc = graph_read_all(fd, &w, sizeof w, -1, &got);
        if (rc == -ECONNRESET && got == 0)
            _exit(0); /* the daemon closed the pool */
        if (rc != 0 || w.magic != GRAPH_WIRE_MAGIC || w.size != sizeof w.req)
            _exit(1);

        unsigned char *img = NULL;
        size_t len = 0;
        rc = graph_request_check(&w.req);
        if (rc == 0)
            rc = graph_render_here(rrd_dir, &w.req, &img, &len);
        graph_wire_rep rep = { .status = rc, .len = rc == 0 ? (uint32_t)len : 0 };
        if (graph_write_all(fd, &rep, sizeof rep, -1) != 0 ||
            (rep.len > 0 && graph_write_all(fd, img, len, -1) != 0))
            _exit(1);
        free(img);
    }
}

/* ---- the pool ------------------------------------------------------------- */

/* Reaps a worker: SIGKILL first when it is presumed alive (it timed out or
 * broke the protocol, so its pid is still its own); otherwise (it closed its
 * socket) a wait of up to 2 s for it to exit before SIGKILL. A pid that
 * someone else has already reaped (ECHILD) is left alone. */
static void graph_reap(pid_t pid, bool kill_first)
{
    if (kill_first)
        kill(pid, SIGKILL);
    for (int i = 0; i < 400; i++) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return; /* reaped, or not ours to reap any more */
        if (r == 0) {
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

graph_pool *graph_pool_start(const char *rrd_dir, int n_workers)
{
    graph_pool *p = NULL;

    if (rrd_dir == NULL || n_workers < 0 || n_workers > GRAPH_WORKERS_MAX) {
        log_err("graph", "graph pool: bad arguments (%d workers)", n_workers);
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        log_err("graph", "graph pool: out of memory");
        return NULL;
    }
    int n = snprintf(p->rrd_dir, sizeof p->rrd_dir, "%s", rrd_dir);
    if (n < 0 || (size_t)n >= sizeof p->rrd_dir) {
        log_err("graph", "%s: directory name too long", rrd_dir);
        free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    /* A worker starts with SIGINT, SIGHUP and SIGTERM blocked (as the daemon
     * has them already) and unblocks them once it has chosen what to do with
     * them, so that none arrives in between. */
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    pid_t self = getpid();
    for (int i = 0; i < n_workers; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            log_errno("graph", "socketpair");
            goto fail;
        }
        fflush(NULL); /* no buffered output written twice */
        pid_t pid = fork();
        if (pid < 0) {
            log_errno("graph", "fork");
            close(sv[0]);
            close(sv[1]);
            goto fail;
        }
        if (pid == 0) {
            close(sv[0]);
            graph_worker_main(sv[1], p->rrd_dir, self, i);
        }
        close(sv[1]);
        p->workers[i] = (graph_worker){ .pid = pid, .fd = sv[0] };
        p->free_ring[(p->free_head + p->n_free++) % GRAPH_WORKERS_MAX] = i;
        p->n_workers++;
        p->n_alive++;
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (n_workers > 0)
        log_info("graph", "%d graph worker process(es) started", n_workers);
    return p;
fail:
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    graph_pool_stop(p);
    return NULL;
}

void graph_pool_stop(graph_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->n_workers; i++) {
        if (p->workers[i].fd < 0)
            continue;
        close(p->workers[i].fd); /* EOF: the worker exits */
        graph_reap(p->workers[i].pid, false);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

size_t graph_pool_worker_pids(graph_pool *p, pid_t *pids, size_t max)
{
    size_t n = 0;
    if (p == NULL)
        return 0;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->n_workers && n < max; i++)
        if (p->workers[i].fd >= 0)
            pids[n++] = p->workers[i].pid;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Takes an idle live worker, waiting for one. Returns its index, or -1 when
 * every worker is dead. */
static int graph_take(graph_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->n_free == 0 && p->n_alive > 0)
        pthread_cond_wait(&p->cond, &p->lock);
    int i = -1;
    if (p->n_free > 0) {
        i = p->free_ring[p->free_head];
        p->free_head = (p->free_head + 1) % GRAPH_WORKERS_MAX;
        p->n_free--;
    }
    pthread_mutex_unlock(&p->lock);
    return i;
}

static void graph_give(graph_pool *p, int i)
{
    pthread_mutex_lock(&p->lock);
    p->free_ring[(p->free_head + p->n_free++) % GRAPH_WORKERS_MAX] = i;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Buries a taken worker: reaps it, closes its socket, counts it out. */
static void graph_bury(graph_pool *p, int i, bool kill_first, const char *why)
{
    graph_worker *w = &p->workers[i];
    pid_t pid = w->pid;
    graph_reap(pid, kill_first);
    pthread_mutex_lock(&p->lock);
    close(w->fd);
    w->fd = -1;
    int left = --p->n_alive;
    if (left == 0)
        pthread_cond_broadcast(&p->cond); /* waiters go in-process */
    pthread_mutex_unlock(&p->lock);
    log_err("graph", "graph worker %d (pid %ld) %s; %d left", i, (long)pid, why, left);
}

/* True when an idle worker's socket shows EOF or stray bytes (it died, or
 * is broken); *stray tells which. */
static bool graph_idle_broken(int fd, bool *stray)
{
    unsigned char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    *stray = n > 0;
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* One exchange with worker i. Returns 0 or the worker's error; -EAGAIN when
 * the worker was found dead before it took the request (try another). */
static int graph_ask(graph_pool *p, int i, const graph_request *req, unsigned char **img,
                     size_t *len)
{
    int fd = p->workers[i].fd;
    bool stray = false;
    graph_wire_req w;
    graph_wire_rep rep;
    long deadline = graph_now_ms() + GRAPH_TIMEOUT_MS;

    if (graph_idle_broken(fd, &stray)) {
        graph_bury(p, i, stray, stray ? "sent bytes while idle" : "has died while idle");
        return -EAGAIN;
    }
    memset(&w, 0, sizeof w);
    w.magic = GRAPH_WIRE_MAGIC;
    w.size = sizeof w.req;
    w.req = *req;
    int rc = graph_write_all(fd, &w, sizeof w, deadline);
    if (rc == -EPIPE) {
        graph_bury(p, i, false, "has died while idle");
        return -EAGAIN;
    }
    if (rc == 0)
        rc = graph_read_all(fd, &rep, sizeof rep, deadline, NULL);
    if (rc == 0 && (rep.status > 0 || rep.status < -4095 || (rep.status != 0 && rep.len != 0) ||
                    rep.len > GRAPH_REPLY_MAX || (rep.status == 0 && rep.len == 0)))
        rc = -EPROTO;
    if (rc != 0) {
        char why[2 * PP_ID_MAX + 128];
        snprintf(why, sizeof why, "failed on %s/%s: %s", req->park, req->indicator,
                 rc == -ECONNRESET ? "died" : rc == -EPROTO ? "bad answer" : strerror(-rc));
        graph_bury(p, i, rc != -ECONNRESET, why);
        return rc == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
    }
    if (rep.status != 0) {
        graph_give(p, i);
        return rep.status;
    }
    unsigned char *buf = malloc(rep.len);
    if (buf == NULL) {
        graph_bury(p, i, true, "answered while out of memory");
        return -ENOMEM;
    }
    rc = graph_read_all(fd, buf, rep.len, deadline, NULL);
    if (rc != 0) {
        free(buf);
        graph_bury(p, i, rc != -ECONNRESET, "failed while sending an image");
        return rc == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
    }
    graph_give(p, i);
    *img = buf;
    *len = rep.len;
    return 0;
}

int graph_render(graph_pool *p, const graph_request *req, unsigned char **img, size_t *len)
{
    if (p == NULL || img == NULL || len == NULL)
        return -EINVAL;
    *img = NULL;
    *len = 0;
    int rc = graph_request_check(req);
    if (rc != 0)
        return rc;
    for (;;) {
        int i = graph_take(p);
        if (i < 0)
            break;
        rc = graph_ask(p, i, req, img, len);
        if (rc != -EAGAIN)
            return rc;
    }
    if (p->n_workers > 0) {
        pthread_mutex_lock(&p->lock);
        bool warn = !p->warned_local;
        p->warned_local = true;
        pthread_mutex_unlock(&p->lock);
        if (warn)
            log_err("graph", "no graph worker left: rendering in-process, one at a time");
    }
    return graph_render_here(p->rrd_dir, req, img, len);
}

/* ---- the cache ------------------------------------------------------------ */

typedef struct graph_entry {
    graph_request req;
    uint64_t hash;
    unsigned char *data;
    size_t len;
    char etag[GRAPH_ETAG_MAX];
    struct graph_entry *next_in_bucket;
    struct graph_entry *newer, *older;    /* the LRU list */
} graph_entry;

struct graph_cache {
    pthread_mutex_t lock;
    size_t max_bytes, bytes, entries;
    uint64_t hits, misses;
    graph_entry *buckets[GRAPH_BUCKETS];
    graph_entry *newest, *oldest;
};


static uint64_t graph_fnv_str(uint64_t h, const char *s) { return pp_hash_bytes(h, s, strlen(s) + 1); }

static uint64_t graph_fnv_int(uint64_t h, int64_t v) { return pp_hash_bytes(h, &v, sizeof v); }

/* Everything that makes an image (a checked request), in hashing order: one
 * list for the hash and the comparison, so that neither forgets a field.
 * STR(field) names a string, NUM(field) an integer. */
#define GRAPH_REQUEST_FIELDS(STR, NUM)                                            \
    STR(park) STR(indicator) NUM(format) NUM(width) NUM(height) NUM(from) NUM(to) \
    NUM(generation) STR(title) STR(unit) STR(value_label) STR(pace_label)         \
    STR(comment) STR(latest) STR(yoy) STR(target) NUM(target_line) NUM(last_year)

static uint64_t graph_request_hash(const graph_request *r)
{
    uint64_t h = PP_FNV_OFFSET;
#define HASH_STR(field) h = graph_fnv_str(h, r->field);
#define HASH_NUM(field) h = graph_fnv_int(h, (int64_t)r->field);
    GRAPH_REQUEST_FIELDS(HASH_STR, HASH_NUM)
#undef HASH_STR
#undef HASH_NUM
    return h;
}

static bool graph_request_same(const graph_request *a, const graph_request *b)
{
#define SAME_STR(field) &&strcmp(a->field, b->field) == 0
#define SAME_NUM(field) &&a->field == b->field
    return true GRAPH_REQUEST_FIELDS(SAME_STR, SAME_NUM);
#undef SAME_STR
#undef SAME_NUM
}

/* The ETag of an image (see the top of the file). */
static void graph_etag(const graph_request *req, uint64_t req_hash, const unsigned char *data,
                       size_t len, char etag[GRAPH_ETAG_MAX])
{
    if (req->format == GRAPH_PNG)
        snprintf(etag, GRAPH_ETAG_MAX, "\"p-%016llx\"",
                 (unsigned long long)pp_hash_bytes(PP_FNV_OFFSET, data, len));
    else
        snprintf(etag, GRAPH_ETAG_MAX, "W/\"s-%016llx\"", (unsigned long long)req_hash);
}

graph_cache *graph_cache_new(size_t max_bytes)
{
    graph_cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_err("graph", "graph cache: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    return c;
}

/* Unlinks e from its bucket and the LRU list (lock held), and frees it. */
static void graph_entry_drop(graph_cache *c, graph_entry *e)
{
    graph_entry **pp = &c->buckets[e->hash & (GRAPH_BUCKETS - 1)];
    while (*pp != e)
        pp = &(*pp)->next_in_bucket;
    *pp = e->next_in_bucket;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    c->bytes -= e->len;
    c->entries--;
    free(e->data);
    free(e);
}

void graph_cache_free(graph_cache *c)
{
    if (c == NULL)
        return;
    while (c->oldest != NULL)
        graph_entry_drop(c, c->oldest);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Moves e to the newest end of the LRU list (lock held). */
static void graph_entry_touch(graph_cache *c, graph_entry *e)
{
    if (c->newest == e)
        return;
    if (e->newer != NULL)
        e->newer->older = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest != NULL)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

static graph_entry *graph_cache_find(graph_cache *c, const graph_request *req, uint64_t h)
{
    for (graph_entry *e = c->buckets[h & (GRAPH_BUCKETS - 1)]; e != NULL; e = e->next_in_bucket)
        if (e->hash == h && graph_request_same(&e->req, req))
            return e;
    return NULL;
}

int graph_cache_get(graph_cache *c, const graph_request *req, graph_image *out)
{
    uint64_t h = graph_request_hash(req);
    int rc = 0;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->lock);
    graph_entry *e = graph_cache_find(c, req, h);
    if (e == NULL) {
        c->misses++;
        goto out;
    }
    out->data = malloc(e->len);
    if (out->data == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(out->data, e->data, e->len);
    out->len = e->len;
    memcpy(out->etag, e->etag, sizeof out->etag);
    graph_entry_touch(c, e);
    c->hits++;
    rc = 1;
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int graph_cache_put(graph_cache *c, const graph_request *req, const unsigned char *data,
                    size_t len, char etag[GRAPH_ETAG_MAX])
{
    uint64_t h = graph_request_hash(req);
    graph_entry *e = NULL;

    graph_etag(req, h, data, len, etag);
    if (len > c->max_bytes / 4)
        return 0;
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->data = malloc(len > 0 ? len : 1)) == NULL) {
        free(e);
        return -ENOMEM;
    }
    e->req = *req;
    e->hash = h;
    memcpy(e->data, data, len);
    e->len = len;
    memcpy(e->etag, etag, sizeof e->etag);

    pthread_mutex_lock(&c->lock);
    graph_entry *old = graph_cache_find(c, req, h);
    if (old != NULL)
        graph_entry_drop(c, old); /* two threads rendered the same image */
    for (graph_entry *o = c->oldest, *next; o != NULL; o = next) {
        next = o->newer;
        if (o->req.generation < req->generation && strcmp(o->req.park, req->park) == 0 &&
            strcmp(o->req.indicator, req->indicator) == 0)
            graph_entry_drop(c, o);
    }
    while (c->oldest != NULL && c->bytes + len > c->max_bytes)
        graph_entry_drop(c, c->oldest);
    graph_entry **bucket = &c->buckets[h & (GRAPH_BUCKETS - 1)];
    e->next_in_bucket = *bucket;
    *bucket = e;
    e->older = c->newest;
    if (c->newest != NULL)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
    c->bytes += len;
    c->entries++;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void graph_cache_stats(graph_cache *c, uint64_t *hits, uint64_t *misses, size_t *bytes,
                       size_t *entries)
{
    pthread_mutex_lock(&c->lock);
    if (hits != NULL)
        *hits = c->hits;
    if (misses != NULL)
        *misses = c->misses;
    if (bytes != NULL)
        *bytes = c->bytes;
    if (entries != NULL)
        *entries = c->entries;
    pthread_mutex_unlock(&c->lock);
}

int graph_get(graph_pool *pool, graph_cache *cache, const graph_request *req, graph_image *out)
{
    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    int rc = graph_request_check(req);
    if (rc != 0)
        return rc;
    if (cache != NULL) {
        rc = graph_cache_get(cache, req, out);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    rc = graph_render(pool, req, &out->data, &out->len);
    if (rc != 0)
        return rc;
    if (cache != NULL) {
        if (graph_cache_put(cache, req, out->data, out->len, out->etag) != 0)
            log_warn("graph", "%s/%s: image not cached (out of memory)", req->park,
                     req->indicator);
    } else {
        graph_etag(req, graph_request_hash(req), out->data, out->len, out->etag);
    }
    return 0;
}

void graph_image_free(graph_image *img)
{
    if (img == NULL)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}
