/*
 * check_graph.c — Check suite for daemon/graph.c and store_graph (README, HTTP API
 * graphs).
 *
 * Every test writes one series (2021-02..2021-08, value and pace) with
 * store_write into its own mkdtemp() directory and renders it, in-process
 * (a pool of 0 workers) and through worker processes. The tests check the
 * image formats and sizes (the PNG IHDR), determinism, that Chinese text
 * renders as distinct glyphs (the SVG carries one <symbol> per glyph: tofu
 * boxes would all be the same one), text escaping, concurrent renders from
 * 8 threads, a killed worker, the cache and its ETags, refused requests and
 * a missing file; that pngout.c's PNG holds the same pixels as cairo's own
 * writer, that the last year's line follows graph_request.last_year, and
 * that each worker warms itself up at start (leaving no file behind).
 */
#include "graph.h"
#include "pngout.h"
#include "store.h"
#include "tmpdir.h"
#include "capture.h"
#include "check_main.h"

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* librrd and the font stack below it keep caches and leak a few bytes per
 * rrd_graph_v call; the in-process renders here would report them. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0"; /* whole stacks through librrd, for the suppressions */
}

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:librrd.so\nleak:libfontconfig.so\nleak:libpango\nleak:libglib\n"
           "leak:libcairo\nleak:libgobject\nleak:libharfbuzz\nleak:libfreetype\n";
}

static char test_dir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------ */

static void write_series(const char *park, const char *ind)
{
    static const double value[] = { 10, 25, 41, 60, 75, 98, 120 };
    static const double pace[] = { 18, 36, 54, 72, 90, 108, 126 };
    store_series s = {
        .park = park,
        .indicator = ind,
        .first_period = pp_period_make(2021, 2),
        .n = 7,
        .value = value,
        .pace = pace,
        .changed_from = pp_period_make(2021, 2),
    };
    ck_assert_int_eq(store_write(test_dir, &s), 0);
}

static void setup(void)
{
    tmpdir_make(test_dir, sizeof test_dir, "check_graph");
    write_series("xiangtan", "fai");
}

static void teardown(void) { tmpdir_remove(test_dir); }

static void request(graph_request *r, graph_format f, int width, int height)
{
    graph_request_init(r);
    snprintf(r->park, sizeof r->park, "xiangtan");
    snprintf(r->indicator, sizeof r->indicator, "fai");
    r->format = f;
    r->width = width;
    r->height = height;
    r->from = pp_period_make(2021, 1);
    r->to = pp_period_make(2021, 8);
    r->generation = 1;
    snprintf(r->title, sizeof r->title, "湘潭经开区 · 固定资产投资 (亿元)");
    snprintf(r->unit, sizeof r->unit, "亿元");
    snprintf(r->value_label, sizeof r->value_label, "固定资产投资");
    snprintf(r->pace_label, sizeof r->pace_label, "序时进度");
    snprintf(r->comment, sizeof r->comment, "低于序时进度 2.60 个百分点");
    snprintf(r->target, sizeof r->target, "300"); /* the series has a target: pace is drawn */
    snprintf(r->latest, sizeof r->latest, "192.2");
    r->target_line = 1;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks a PNG's signature and IHDR; returns its width and height. */
static void png_size(const unsigned char *img, size_t len, uint32_t *w, uint32_t *h)
{
    ck_assert_uint_gt(len, 24);
    ck_assert_mem_eq(img, "\x89PNG\r\n\x1a\n", 8);
    ck_assert_mem_eq(img + 12, "IHDR", 4);
    *w = be32(img + 16);
    *h = be32(img + 20);
}

/* Occurrences of needle in the image bytes. */
static size_t count_in(const unsigned char *img, size_t len, const char *needle)
{
    size_t n = 0, k = strlen(needle);
    for (size_t i = 0; i + k <= len; i++)
        if (memcmp(img + i, needle, k) == 0)
            n++;
    return n;
}

/* A PNG decoded (8-bit RGB or RGBA, not interlaced; every chunk's CRC
 * checked, every filter type undone) into *rgb: w * h * 3 bytes, malloc'd.
 * The alpha of RGBA must be 255 everywhere. */
static void png_decode(const unsigned char *img, size_t len, uint32_t *w, uint32_t *h,
                       unsigned char **rgb)
{
    png_size(img, len, w, h);
    unsigned char *z = malloc(len);
    size_t zlen = 0, at = 8;
    int bpp = 0;
    bool end = false;
    ck_assert_ptr_nonnull(z);
    while (!end) {
        ck_assert_uint_le(at + 12, len);
        uint32_t n = be32(img + at);
        ck_assert_uint_le(at + 12 + n, len);
        ck_assert_uint_eq(crc32(0, img + at + 4, n + 4), be32(img + at + 8 + n));
        if (memcmp(img + at + 4, "IHDR", 4) == 0) {
            ck_assert_uint_eq(img[at + 16], 8);              /* bit depth */
            ck_assert(img[at + 17] == 2 || img[at + 17] == 6); /* RGB or RGBA */
            ck_assert_uint_eq(img[at + 20], 0);              /* not interlaced */
            bpp = img[at + 17] == 2 ? 3 : 4;
        } else if (memcmp(img + at + 4, "IDAT", 4) == 0) {
            memcpy(z + zlen, img + at + 8, n);
            zlen += n;
        }
        end = memcmp(img + at + 4, "IEND", 4) == 0;
        at += 12 + n;
    }
    ck_assert_uint_eq(at, len);
    ck_assert_int_gt(bpp, 0);
    size_t row = (size_t)*w * (size_t)bpp + 1;
    uLongf raw_len = (uLongf)(row * *h + 1);
    unsigned char *raw = malloc(raw_len);
    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(uncompress(raw, &raw_len, z, zlen), Z_OK);
    ck_assert_uint_eq(raw_len, row * *h);
    free(z);
    for (uint32_t y = 0; y < *h; y++) { /* undo the filters in place */
        unsigned char *r = raw + y * row + 1, *up = y > 0 ? r - row : NULL;
        unsigned f = r[-1];
        ck_assert_uint_le(f, 4);
        for (size_t x = 0; x < row - 1; x++) {
            int a = x >= (size_t)bpp ? r[x - bpp] : 0, b = up ? up[x] : 0;
            int c = up && x >= (size_t)bpp ? up[x - bpp] : 0;
            int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
            int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2
                       : pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            r[x] = (unsigned char)(r[x] + pred);
        }
    }
    *rgb = malloc((size_t)*w * *h * 3);
    ck_assert_ptr_nonnull(*rgb);
    for (uint32_t y = 0; y < *h; y++)
        for (uint32_t x = 0; x < *w; x++) {
            const unsigned char *px = raw + y * row + 1 + (size_t)x * bpp;
            memcpy(*rgb + ((size_t)y * *w + x) * 3, px, 3);
            if (bpp == 4)
                ck_assert_uint_eq(px[3], 255);
        }
    free(raw);
}

static const int pool_sizes[] = { 0, 2 }; /* in-process, and worker processes */

static graph_pool *start_pool(int i)
{
    graph_pool *p = graph_pool_start(test_dir, pool_sizes[i]);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void assert_same_image(const unsigned char *a, size_t la, const unsigned char *b, size_t lb)
{
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(a, b, la);
}

/* start_pool(i) with a cache of bytes in *c. */
static graph_pool *start_cached_pool(int i, size_t bytes, graph_cache **c)
{
    *c = graph_cache_new(bytes);
    ck_assert_ptr_nonnull(*c);
    return start_pool(i);
}

static void stop_cached_pool(graph_pool *p, graph_cache *c)
{
    graph_cache_free(c);
    graph_pool_stop(p);
}

/* Renders the test series as a PNG of width x height (the plot area) and
 * gives the image's size. */
static void png_render_size(graph_pool *p, int width, int height, uint32_t *w, uint32_t *h)
{
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;
    request(&r, GRAPH_PNG, width, height);
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    png_size(img, len, w, h);
    free(img);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_png_size)
{
    graph_pool *p = start_pool(_i);
    uint32_t w800, h800, w400, h400;

    png_render_size(p, 800, 300, &w800, &h800);
    ck_assert_uint_gt(w800, 800); /* -w is the plot area: axes and margins come on top */
    ck_assert_uint_gt(h800, 300);

    png_render_size(p, 400, 300, &w400, &h400);
    ck_assert_uint_eq(w800 - w400, 400);
    ck_assert_uint_eq(h400, h800);

    png_render_size(p, 400, 150, &w400, &h400);
    ck_assert_uint_eq(h800 - h400, 150);
    graph_pool_stop(p);
}
END_TEST

START_TEST(test_svg)
{
    graph_pool *p = start_pool(_i);
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;

    request(&r, GRAPH_SVG, 800, 300);
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    ck_assert_uint_gt(len, 100);
    ck_assert_mem_eq(img, "<?xml", 5);
    ck_assert_uint_ge(count_in(img, len, "<svg"), 1);
    ck_assert_uint_ge(count_in(img, len, "</svg>"), 1);
    free(img);
    ck_assert_str_eq(graph_content_type(GRAPH_SVG), "image/svg+xml");
    ck_assert_str_eq(graph_content_type(GRAPH_PNG), "image/png");
    graph_pool_stop(p);
}
END_TEST

/* cairo's SVG holds each distinct glyph once, as a <symbol>. Against a title
 * of one character five times, five distinct Chinese characters add four
 * glyphs when the font has them; boxes (.notdef) would add none. */
START_TEST(test_chinese_glyphs)
{
    static const struct {
        const char *title;
        size_t more;
    } cases[] = {
        { "湘潭经开区", 4 },
        { "湘潭经开区湘潭", 4 },
        { "湘", 0 },
        { "经开区", 2 },
    };
    graph_pool *p = start_pool(_i);
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;

    request(&r, GRAPH_SVG, 600, 200);
    snprintf(r.title, sizeof r.title, "湘湘湘湘湘");
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    size_t base = count_in(img, len, "<symbol");
    free(img);
    ck_assert_uint_gt(base, 10);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(r.title, sizeof r.title, "%s", cases[i].title);
        ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
        size_t n = count_in(img, len, "<symbol");
        free(img);
        ck_assert_msg(n == base + cases[i].more, "title %s: %zu glyphs, want %zu",
                      cases[i].title, n, base + cases[i].more);
    }
    graph_pool_stop(p);
}
END_TEST

START_TEST(test_png_deterministic)
{
    graph_pool *p = start_pool(_i);
    /* both pools before any rendering: fork only while single-threaded */
    graph_pool *q = graph_pool_start(test_dir, pool_sizes[1 - _i]);
    graph_request r;
    unsigned char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;

    request(&r, GRAPH_PNG, 500, 200);
    ck_assert_int_eq(graph_render(p, &r, &a, &la), 0);
    ck_assert_int_eq(graph_render(p, &r, &b, &lb), 0);
    assert_same_image(a, la, b, lb);
    free(b);
    /* in-process and in a worker alike */
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(graph_render(q, &r, &b, &lb), 0);
    assert_same_image(a, la, b, lb);
    free(a);
    free(b);
    graph_pool_stop(q);
    graph_pool_stop(p);
}
END_TEST

/* Text that means something to rrdtool's argument syntax, or is not text at
 * all, in every field that reaches it: each renders, and changes the image
 * (it was not dropped). */
START_TEST(test_escaping)
{
    static const char *texts[] = {
        "a:b",                     /* the field separator */
        "a\\:b",                   /* an escaped separator, as rrdtool writes it */
        "ends with a backslash \\",
        "\\l",                     /* a justification code */
        "x\\",
        "50% of 100%d %s %n %%",   /* printf in GPRINT */
        "DEF:x=/etc/passwd:value:LAST",
        "tab\there\nnewline\x01\x7f",
        "bad \xff\xfe utf-8 \xe6\xb9",
        "低于序时进度: 2.60 个百分点 \\ 100%",
    };
    graph_pool *p = start_pool(_i);
    graph_request r;
    unsigned char *img = NULL, *plain = NULL;
    size_t len = 0, plain_len = 0;
    uint32_t w, h;

    request(&r, GRAPH_PNG, 400, 150);
    ck_assert_int_eq(graph_render(p, &r, &plain, &plain_len), 0);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int field = 0; field < 5; field++) {
            request(&r, GRAPH_PNG, 400, 150);
            char *dst = field == 0 ? r.title : field == 1 ? r.unit : field == 2 ? r.value_label
                        : field == 3 ? r.pace_label : r.comment;
            snprintf(dst, GRAPH_TEXT_MAX, "%s", texts[i]);
            int rc = graph_render(p, &r, &img, &len);
            ck_assert_msg(rc == 0, "text %zu in field %d: %d", i, field, rc);
            png_size(img, len, &w, &h);
            ck_assert(len != plain_len || memcmp(img, plain, len) != 0);
            free(img);
        }
    }
    free(plain);
    graph_pool_stop(p);
}
END_TEST

/* The SVG of a text with a backslash shows U+FF3C where the backslash was:
 * the same glyphs as the text written with U+FF3C. */
START_TEST(test_backslash_shown)
{
    graph_pool *p = start_pool(_i);
    graph_request r;
    unsigned char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;

    request(&r, GRAPH_PNG, 400, 150);
    snprintf(r.comment, sizeof r.comment, "a\\b:c");
    ck_assert_int_eq(graph_render(p, &r, &a, &la), 0);
    snprintf(r.comment, sizeof r.comment, "a＼b:c");
    ck_assert_int_eq(graph_render(p, &r, &b, &lb), 0);
    assert_same_image(a, la, b, lb);
    free(a);
    free(b);
    graph_pool_stop(p);
}
END_TEST

typedef struct {
    graph_pool *pool;
    const unsigned char *want;
    size_t want_len;
    int ok;
} client_arg;

static void *client(void *arg)
{
    client_arg *c = arg;
    graph_request r;
    request(&r, GRAPH_PNG, 400, 150);
    for (int i = 0; i < 10; i++) {
        unsigned char *img = NULL;
        size_t len = 0;
        if (graph_render(c->pool, &r, &img, &len) == 0 && len == c->want_len &&
            memcmp(img, c->want, len) == 0)
            c->ok++;
        free(img);
    }
    return NULL;
}

/* 8 threads x 10 renders at once: in-process (serialised by the store's
 * mutex) and through two workers; every image is the right one. */
START_TEST(test_concurrent)
{
    graph_pool *p = start_pool(_i);
    graph_request r;
    unsigned char *want = NULL;
    size_t want_len = 0;
    pthread_t th[8];
    client_arg args[8];

    request(&r, GRAPH_PNG, 400, 150);
    ck_assert_int_eq(graph_render(p, &r, &want, &want_len), 0);
    for (int i = 0; i < 8; i++) {
        args[i] = (client_arg){ .pool = p, .want = want, .want_len = want_len };
        ck_assert_int_eq(pthread_create(&th[i], NULL, client, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(args[i].ok, 10);
    }
    free(want);
    pid_t pids[4];
    ck_assert_uint_eq(graph_pool_worker_pids(p, pids, 4), (size_t)pool_sizes[_i]);
    graph_pool_stop(p);
}
END_TEST

static void render_ok(graph_pool *p)
{
    uint32_t w, h;
    png_render_size(p, 400, 150, &w, &h);
}

/* Kills a worker and waits until it is dead, leaving it for the pool to reap. */
static void kill_worker(pid_t pid)
{
    siginfo_t info;
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    /* ECHILD: the pool noticed the death first and reaped the worker already */
    int r = waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT);
    ck_assert_msg(r == 0 || errno == ECHILD, "waitid: %s", strerror(errno));
}

/* A worker killed while idle is skipped; when none is left, the pool renders
 * in-process. */
START_TEST(test_worker_killed)
{
    graph_pool *p = graph_pool_start(test_dir, 2);
    pid_t pids[4];

    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(graph_pool_worker_pids(p, pids, 4), 2);
    render_ok(p);
    kill_worker(pids[0]);
    for (int i = 0; i < 5; i++)
        render_ok(p);
    pid_t left[4];
    ck_assert_uint_eq(graph_pool_worker_pids(p, left, 4), 1);
    ck_assert_int_eq(left[0], pids[1]);
    kill_worker(pids[1]);
    for (int i = 0; i < 3; i++)
        render_ok(p);
    ck_assert_uint_eq(graph_pool_worker_pids(p, left, 4), 0);
    /* both were reaped: no zombie left behind */
    ck_assert_int_eq(waitpid(pids[0], NULL, WNOHANG), -1);
    ck_assert_int_eq(waitpid(pids[1], NULL, WNOHANG), -1);
    graph_pool_stop(p);
}
END_TEST

typedef struct {
    graph_pool *pool;
    int rc;
} one_arg;

static void *render_one(void *arg)
{
    one_arg *a = arg;
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;
    request(&r, GRAPH_PNG, 400, 150);
    a->rc = graph_render(a->pool, &r, &img, &len);
    free(img);
    return NULL;
}

/* A worker that dies on a request fails that request (it is not retried:
 * it might be what kills workers), and the next one is served. */
START_TEST(test_worker_dies_on_request)
{
    graph_pool *p = graph_pool_start(test_dir, 1);
    pid_t pid;
    pthread_t th;
    one_arg a = { .rc = 1 };

    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(graph_pool_worker_pids(p, &pid, 1), 1);
    a.pool = p;
    ck_assert_int_eq(kill(pid, SIGSTOP), 0); /* the request waits in its socket */
    ck_assert_int_eq(pthread_create(&th, NULL, render_one, &a), 0);
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    kill_worker(pid);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(a.rc, -EIO);
    ck_assert_uint_eq(graph_pool_worker_pids(p, &pid, 1), 0);
    render_ok(p);
    graph_pool_stop(p);
}
END_TEST

/* Workers leave SIGINT and SIGHUP to the daemon, and exit when the pool is
 * stopped. */
START_TEST(test_worker_signals)
{
    graph_pool *p = graph_pool_start(test_dir, 2);
    pid_t pids[4];

    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(graph_pool_worker_pids(p, pids, 4), 2);
    ck_assert_int_eq(kill(pids[0], SIGINT), 0);
    ck_assert_int_eq(kill(pids[1], SIGHUP), 0);
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    for (int i = 0; i < 4; i++)
        render_ok(p);
    ck_assert_uint_eq(graph_pool_worker_pids(p, pids, 4), 2);
    graph_pool_stop(p);
    ck_assert_int_eq(kill(pids[0], 0), -1); /* gone and reaped */
    ck_assert_int_eq(kill(pids[1], 0), -1);
}
END_TEST

START_TEST(test_cache)
{
    graph_cache *c;
    graph_pool *p = start_cached_pool(_i, 32u << 20, &c);
    graph_request r;
    graph_image a, b;
    uint64_t hits, misses;
    size_t bytes, entries;

    ck_assert_ptr_nonnull(c);
    request(&r, GRAPH_PNG, 400, 150);
    ck_assert_int_eq(graph_get(p, c, &r, &a), 0);
    ck_assert_int_eq(graph_get(p, c, &r, &b), 0);
    graph_cache_stats(c, &hits, &misses, &bytes, &entries);
    ck_assert_uint_eq(hits, 1);
    ck_assert_uint_eq(misses, 1);
    ck_assert_uint_eq(entries, 1);
    ck_assert_uint_eq(bytes, a.len);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert_mem_eq(a.data, b.data, a.len);
    ck_assert_str_eq(a.etag, b.etag);
    ck_assert_int_eq(a.etag[0], '"');
    ck_assert_mem_eq(a.etag, "\"p-", 3);
    graph_image_free(&b);

    /* a new generation misses, renders the same bytes (same data), same
     * PNG ETag, and drops the old generation */
    r.generation = 2;
    ck_assert_int_eq(graph_get(p, c, &r, &b), 0);
    graph_cache_stats(c, &hits, &misses, NULL, &entries);
    ck_assert_uint_eq(misses, 2);
    ck_assert_uint_eq(entries, 1);
    ck_assert_str_eq(a.etag, b.etag);
    graph_image_free(&b);

    /* new data under a new generation: a new image and ETag */
    static const double value[] = { 11 };
    store_series s = { .park = "xiangtan", .indicator = "fai",
                       .first_period = pp_period_make(2021, 2), .n = 1, .value = value,
                       .changed_from = pp_period_make(2021, 2) };
    ck_assert_int_eq(store_write(test_dir, &s), 0);
    ck_assert_int_eq(graph_get(p, c, &r, &b), 0); /* generation 2: still cached */
    ck_assert_str_eq(a.etag, b.etag);
    graph_image_free(&b);
    r.generation = 3;
    ck_assert_int_eq(graph_get(p, c, &r, &b), 0);
    ck_assert_str_ne(a.etag, b.etag);
    graph_image_free(&b);

    /* SVG: a weak ETag from the request, the same on every hit */
    request(&r, GRAPH_SVG, 400, 150);
    ck_assert_int_eq(graph_get(p, c, &r, &b), 0);
    ck_assert_mem_eq(b.etag, "W/\"s-", 5);
    graph_image c2;
    ck_assert_int_eq(graph_get(p, c, &r, &c2), 0);
    ck_assert_str_eq(b.etag, c2.etag);
    ck_assert_mem_eq(b.data, c2.data, b.len);
    graph_image_free(&c2);
    graph_image_free(&b);

    /* no cache: still an ETag */
    request(&r, GRAPH_PNG, 400, 150);
    ck_assert_int_eq(graph_get(p, NULL, &r, &b), 0);
    ck_assert_mem_eq(b.etag, "\"p-", 3);
    graph_image_free(&b);
    graph_image_free(&a);
    graph_image_free(NULL);
    stop_cached_pool(p, c);
}
END_TEST

/* The bound in bytes, least recently used out first. */
START_TEST(test_cache_lru)
{
    graph_cache *c = graph_cache_new(4000);
    graph_request r[6];
    unsigned char data[1000];
    char etag[GRAPH_ETAG_MAX];
    graph_image img;
    size_t bytes, entries;

    ck_assert_ptr_nonnull(c);
    for (int i = 0; i < 6; i++) {
        request(&r[i], GRAPH_PNG, 400, 150);
        r[i].from = pp_period_make(2020, i + 1);
        memset(data, 'a' + i, sizeof data);
        ck_assert_int_eq(graph_cache_put(c, &r[i], data, sizeof data, etag), 0);
        if (i == 3) { /* 0 becomes the most recently used */
            ck_assert_int_eq(graph_cache_get(c, &r[0], &img), 1);
            graph_image_free(&img);
        }
    }
    graph_cache_stats(c, NULL, NULL, &bytes, &entries);
    ck_assert_uint_eq(entries, 4);
    ck_assert_uint_eq(bytes, 4000);
    static const int kept[6] = { 1, 0, 0, 1, 1, 1 };
    for (int i = 0; i < 6; i++) {
        int rc = graph_cache_get(c, &r[i], &img);
        ck_assert_msg(rc == kept[i], "entry %d: %d", i, rc);
        if (rc == 1) {
            ck_assert_uint_eq(img.len, sizeof data);
            ck_assert_int_eq(img.data[0], 'a' + i);
        }
        graph_image_free(&img);
    }
    /* an image over a quarter of the bound is not kept, but gets its ETag */
    unsigned char big[1001] = { 0 };
    etag[0] = '\0';
    ck_assert_int_eq(graph_cache_put(c, &r[1], big, sizeof big, etag), 0);
    ck_assert_mem_eq(etag, "\"p-", 3);
    ck_assert_int_eq(graph_cache_get(c, &r[1], &img), 0);
    /* any text is part of the key */
    graph_request t = r[0];
    snprintf(t.comment, sizeof t.comment, "other");
    ck_assert_int_eq(graph_cache_get(c, &t, &img), 0);
    graph_cache_free(c);
}
END_TEST

START_TEST(test_bad_requests)
{
    graph_cache *c;
    graph_pool *p = start_cached_pool(_i, 1u << 20, &c);
    graph_request r;
    graph_image out;
    unsigned char *img = NULL;
    size_t len = 0;

    for (int k = 0; k < 14; k++) {
        request(&r, GRAPH_PNG, 800, 300);
        switch (k) {
        case 0: r.width = GRAPH_WIDTH_MIN - 1; break;
        case 1: r.width = GRAPH_WIDTH_MAX + 1; break;
        case 2: r.height = GRAPH_HEIGHT_MIN - 1; break;
        case 3: r.height = GRAPH_HEIGHT_MAX + 1; break;
        case 4: r.from = r.to + 1; break;
        case 5: r.from = r.to - GRAPH_MONTHS_MAX; break;
        case 6: r.from = pp_period_make(GRAPH_YEAR_MIN - 1, 12); break;
        case 7: r.to = pp_period_make(GRAPH_YEAR_MAX + 1, 1); break;
        case 8: snprintf(r.park, sizeof r.park, "Xiangtan"); break;
        case 9: snprintf(r.indicator, sizeof r.indicator, "../fai"); break;
        case 10: r.format = (graph_format)7; break;
        case 11: memset(r.title, 'x', sizeof r.title); break;
        case 12: memset(r.comment, 'x', sizeof r.comment); break;
        case 13: memset(r.park, 'a', sizeof r.park); break;
        }
        ck_assert_msg(graph_request_check(&r) == -EINVAL, "case %d", k);
        ck_assert_msg(graph_render(p, &r, &img, &len) == -EINVAL, "case %d", k);
        ck_assert_ptr_null(img);
        ck_assert_msg(graph_get(p, c, &r, &out) == -EINVAL, "case %d", k);
    }
    /* the bounds themselves are fine */
    request(&r, GRAPH_PNG, GRAPH_WIDTH_MIN, GRAPH_HEIGHT_MIN);
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    free(img);
    request(&r, GRAPH_PNG, GRAPH_WIDTH_MAX, GRAPH_HEIGHT_MAX);
    r.to = pp_period_make(2030, 12);
    r.from = r.to - GRAPH_MONTHS_MAX + 1;
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    free(img);
    stop_cached_pool(p, c);
}
END_TEST

START_TEST(test_missing_file)
{
    graph_cache *c;
    graph_pool *p = start_cached_pool(_i, 1u << 20, &c);
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;

    request(&r, GRAPH_PNG, 800, 300);
    snprintf(r.indicator, sizeof r.indicator, "tax");
    ck_assert_int_eq(graph_render(p, &r, &img, &len), -ENOENT);
    snprintf(r.park, sizeof r.park, "nowhere");
    graph_image out;
    ck_assert_int_eq(graph_get(p, c, &r, &out), -ENOENT);
    /* the worker that said so is still there */
    pid_t pids[4];
    ck_assert_uint_eq(graph_pool_worker_pids(p, pids, 4), (size_t)pool_sizes[_i]);
    stop_cached_pool(p, c);
}
END_TEST

/* Issue 17: the pace line and its legend only where a target exists. Without
 * a target the pace label changes nothing (it is not drawn); with one it
 * does. The latest figure is printed as published: "192.2" and "192.20"
 * are different images. */
START_TEST(test_pace_only_with_target)
{
    graph_pool *p = start_pool(0);
    graph_request r;
    unsigned char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;

    request(&r, GRAPH_PNG, 400, 150);
    r.target[0] = '\0';
    ck_assert_int_eq(graph_render(p, &r, &a, &la), 0);
    snprintf(r.pace_label, sizeof r.pace_label, "另一个图例");
    ck_assert_int_eq(graph_render(p, &r, &b, &lb), 0);
    ck_assert_msg(la == lb && memcmp(a, b, la) == 0, "a pace legend was drawn for a series without a target");
    free(a);
    free(b);

    request(&r, GRAPH_PNG, 400, 150);
    ck_assert_int_eq(graph_render(p, &r, &a, &la), 0);
    snprintf(r.pace_label, sizeof r.pace_label, "另一个图例");
    ck_assert_int_eq(graph_render(p, &r, &b, &lb), 0);
    ck_assert_msg(la != lb || memcmp(a, b, la) != 0, "no pace legend for a series with a target");
    free(b);
    snprintf(r.pace_label, sizeof r.pace_label, "序时进度");
    snprintf(r.latest, sizeof r.latest, "192.20");
    ck_assert_int_eq(graph_render(p, &r, &b, &lb), 0);
    ck_assert(la != lb || memcmp(a, b, la) != 0);
    free(a);
    /* the 同比 as published goes beside the latest figure */
    snprintf(r.yoy, sizeof r.yoy, "12.5");
    ck_assert_int_eq(graph_render(p, &r, &a, &la), 0);
    ck_assert_msg(la != lb || memcmp(a, b, la) != 0, "no 同比 beside the latest figure");
    free(a);
    free(b);
    graph_pool_stop(p);
}
END_TEST

/* store_graph directly: arguments it refuses itself. */
START_TEST(test_store_graph_args)
{
    char path[PATH_MAX];
    unsigned char *img = NULL;
    size_t len = 0;
    store_graph_spec g = { .width = 400, .height = 150,
                           .start = store_month_end(pp_period_make(2021, 1)),
                           .end = store_month_end(pp_period_make(2021, 8)) };

    ck_assert_int_eq(store_path(test_dir, "xiangtan", "fai", path, sizeof path), 0);
    ck_assert_int_eq(store_graph(path, &g, &img, &len), 0); /* no text at all */
    free(img);
    ck_assert_int_eq(store_graph("/tmp/a:b.rrd", &g, &img, &len), -EINVAL);
    g.end = g.start;
    ck_assert_int_eq(store_graph(path, &g, &img, &len), -EINVAL);
    g.end = g.start + 86400;
    g.width = 5;
    ck_assert_int_eq(store_graph(path, &g, &img, &len), -EINVAL);
    g.width = 400;
    ck_assert_int_eq(store_graph(NULL, &g, &img, &len), -EINVAL);
    /* not an RRD file */
    char junk[PATH_MAX + 16];
    snprintf(junk, sizeof junk, "%s/junk.rrd", test_dir);
    FILE *f = fopen(junk, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not an rrd\n", f);
    fclose(f);
    ck_assert_int_eq(store_graph(junk, &g, &img, &len), -EIO);
    ck_assert_ptr_null(img);
}
END_TEST

/* pngout.c writes librrd's PNGs in place of cairo's writer: the same pixels
 * (decoded and compared), the same size, in-process and in a worker. */
START_TEST(test_png_same_pixels_as_cairo)
{
    graph_request r;
    unsigned char *ours = NULL, *theirs = NULL, *a = NULL, *b = NULL;
    size_t lo = 0, lt = 0;
    uint32_t wa, ha, wb, hb;

    request(&r, GRAPH_PNG, 600, 200);
    snprintf(r.yoy, sizeof r.yoy, "12.5");
    pngout_enable(_i == 0); /* a worker keeps the setting it was forked with */
    graph_pool *p = start_pool(_i);
    ck_assert_int_eq(graph_render(p, &r, _i == 0 ? &ours : &theirs, _i == 0 ? &lo : &lt), 0);
    graph_pool_stop(p);
    pngout_enable(_i != 0);
    p = start_pool(_i);
    ck_assert_int_eq(graph_render(p, &r, _i == 0 ? &theirs : &ours, _i == 0 ? &lt : &lo), 0);
    graph_pool_stop(p);
    pngout_enable(true);

    ck_assert_msg(lo != lt || memcmp(ours, theirs, lo) != 0, "cairo's writer was not replaced");
    png_decode(ours, lo, &wa, &ha, &a);
    png_decode(theirs, lt, &wb, &hb, &b);
    ck_assert_uint_eq(wa, wb);
    ck_assert_uint_eq(ha, hb);
    ck_assert_uint_eq(ours[25], 2); /* ours: RGB, no alpha */
    ck_assert_msg(memcmp(a, b, (size_t)wa * ha * 3) == 0, "the pixels differ from cairo's PNG");
    free(a);
    free(b);
    free(ours);
    free(theirs);
}
END_TEST

/* Last year's same months (去年同期: a dashed line in #8A96A8, and its key
 * in the legend, of that colour in the SVG) are drawn when the request says
 * so (graph_request_init's default) and the span is a year or less; with
 * last_year 0 neither is, and the request is another one for the cache. */
#define LAST_YEAR_COLOUR "rgb(54.117647%,58.823529%,65.882353%)" /* #8A96A8 */
START_TEST(test_last_year_line)
{
    graph_pool *p = start_pool(_i);
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;

    request(&r, GRAPH_SVG, 600, 200);
    ck_assert_int_eq(r.last_year, 1);
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    ck_assert_uint_ge(count_in(img, len, LAST_YEAR_COLOUR), 1); /* the legend's key */
    free(img);
    r.from = pp_period_make(2022, 1); /* 2021's figures as last year's: the line too */
    r.to = pp_period_make(2022, 8);
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    ck_assert_uint_eq(count_in(img, len, "dasharray:5,3"), 1);
    free(img);
    r.last_year = 0;
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    ck_assert_uint_eq(count_in(img, len, "dasharray:5,3"), 0);
    ck_assert_uint_eq(count_in(img, len, LAST_YEAR_COLOUR), 0);
    free(img);
    request(&r, GRAPH_SVG, 600, 200);
    r.last_year = 0;
    ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
    ck_assert_uint_eq(count_in(img, len, LAST_YEAR_COLOUR), 0);
    ck_assert_uint_ge(count_in(img, len, "dasharray:6,3"), 1); /* the pace line is still there */
    free(img);
    r.last_year = 2;
    ck_assert_int_eq(graph_request_check(&r), -EINVAL);

    graph_cache *c = graph_cache_new(1 << 20);
    graph_image out;
    ck_assert_ptr_nonnull(c);
    r.last_year = 1;
    ck_assert_int_eq(graph_cache_put(c, &r, (const unsigned char *)"x", 1, out.etag), 0);
    r.last_year = 0;
    ck_assert_int_eq(graph_cache_get(c, &r, &out), 0); /* a different request */
    graph_cache_free(c);
    graph_pool_stop(p);
}
END_TEST

/* Each worker renders a throwaway graph once at start, before its first
 * request (logged), of a series it wrote under $TMPDIR and removed again,
 * also when it is sent SIGTERM at once; what a worker killed meanwhile left
 * there is removed by the next. */
START_TEST(test_workers_warmed)
{
    char tmp[PATH_MAX + 8], log[16384];
    stderr_capture cap;
    graph_request r;
    unsigned char *img = NULL;
    size_t len = 0;

    snprintf(tmp, sizeof tmp, "%s/tmp", test_dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    ck_assert_int_eq(setenv("TMPDIR", tmp, 1), 0);
    /* what a worker killed with SIGKILL while it wrote left: swept */
    char stale[PATH_MAX + 64];
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    snprintf(stale, sizeof stale, "%s/parkpulse-warm-%ld-AbC123", tmp, (long)dead);
    ck_assert_int_eq(mkdir(stale, 0700), 0);
    snprintf(stale + strlen(stale), sizeof stale - strlen(stale), "/warm");
    ck_assert_int_eq(mkdir(stale, 0700), 0);
    snprintf(stale + strlen(stale), sizeof stale - strlen(stale), "/up.rrd.tmpXyZ");
    FILE *f = fopen(stale, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    capture_begin(&cap);
    graph_pool *p = graph_pool_start(test_dir, 2);
    ck_assert_ptr_nonnull(p);
    request(&r, GRAPH_PNG, 400, 150);
    for (int i = 0; i < 2; i++) { /* one request each: idle workers take turns */
        ck_assert_int_eq(graph_render(p, &r, &img, &len), 0);
        free(img);
    }
    graph_pool_stop(p);
    capture_end(&cap, log, sizeof log);
    ck_assert_msg(strstr(log, "graph worker 0 warmed up in") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "graph worker 1 warmed up in") != NULL, "log: %s", log);
    /* workers sent SIGTERM at once (the daemon died) leave nothing either */
    for (int round = 0; round < 3; round++) {
        pid_t pids[2];
        p = graph_pool_start(test_dir, 2);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(graph_pool_worker_pids(p, pids, 2), 2);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(kill(pids[i], SIGTERM), 0);
        graph_pool_stop(p);
    }
    unsetenv("TMPDIR");
    ck_assert_int_eq(rmdir(tmp), 0); /* empty: nothing left behind */
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = check_tcase(s, "graph", setup, teardown, 120);
    int n = (int)(sizeof pool_sizes / sizeof pool_sizes[0]);
    tcase_add_loop_test(tc, test_png_size, 0, n);
    tcase_add_loop_test(tc, test_svg, 0, n);
    tcase_add_loop_test(tc, test_chinese_glyphs, 0, n);
    tcase_add_loop_test(tc, test_png_deterministic, 0, n);
    tcase_add_loop_test(tc, test_escaping, 0, n);
    tcase_add_loop_test(tc, test_backslash_shown, 0, n);
    tcase_add_loop_test(tc, test_concurrent, 0, n);
    tcase_add_test(tc, test_worker_killed);
    tcase_add_test(tc, test_worker_dies_on_request);
    tcase_add_test(tc, test_worker_signals);
    tcase_add_loop_test(tc, test_cache, 0, n);
    tcase_add_test(tc, test_cache_lru);
    tcase_add_loop_test(tc, test_bad_requests, 0, n);
    tcase_add_loop_test(tc, test_missing_file, 0, n);
    tcase_add_test(tc, test_store_graph_args);
    tcase_add_test(tc, test_pace_only_with_target);
    tcase_add_loop_test(tc, test_png_same_pixels_as_cairo, 0, n);
    tcase_add_loop_test(tc, test_last_year_line, 0, n);
    tcase_add_test(tc, test_workers_warmed);
    return s;
}

CHECK_MAIN(graph_suite)
