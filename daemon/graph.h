/*
 * graph.h — the graphs of README, HTTP API (GET /graph/<park>/<indicator>.png|.svg):
 * a pool of rendering worker processes and a byte-bounded cache of images.
 *
 * librrd 1.7's rrd_graph_v is not thread-safe, so HTTP threads never call it:
 * graph_render hands the request to one of n worker processes (forked by
 * graph_pool_start before the daemon starts any thread) and waits for the
 * image. graph_get puts a cache in front of it. Both are safe to call from
 * any number of threads at once.
 */
#ifndef PP_GRAPH_H
#define PP_GRAPH_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GRAPH_TEXT_MAX 256            /* bytes of each text field, with its NUL */
#define GRAPH_WIDTH_MIN 100           /* plot area bounds, pixels */
#define GRAPH_WIDTH_MAX 2000
#define GRAPH_HEIGHT_MIN 50
#define GRAPH_HEIGHT_MAX 1000
#define GRAPH_YEAR_MIN PP_PERIOD_MIN_YEAR /* the months a graph may show */
#define GRAPH_YEAR_MAX PP_PERIOD_MAX_YEAR
#define GRAPH_MONTHS_MAX 600          /* longest span, months */
#define GRAPH_REPLY_MAX (8u << 20)    /* largest image accepted from a worker */
#define GRAPH_ETAG_MAX 48             /* an ETag with its quotes and NUL */

typedef enum { GRAPH_PNG = 0, GRAPH_SVG = 1 } graph_format;

/* One graph: which series, its size and months, and the caller's text. The
 * struct has fixed-size fields only (it is what goes to a worker); fill it
 * after graph_request_init, strings NUL-terminated (longer text is refused,
 * so truncate with snprintf). Text is UTF-8; rrdtool's syntax is taken care
 * of by the store module. */
typedef struct graph_request {
    char park[PP_ID_MAX + 1];          /* validated ids */
    char indicator[PP_ID_MAX + 1];
    graph_format format;
    int width, height;                 /* plot area, pixels (rrdtool -w/-h); the image
                                          is larger by the axes, title and legend */
    int from, to;                      /* periods (pp_period_make), from <= to */
    uint64_t generation;               /* the series' version: a new one invalidates
                                          cached images */
    char title[GRAPH_TEXT_MAX];        /* "湘潭经开区 · 固定资产投资 (亿元)" */
    char unit[GRAPH_TEXT_MAX];         /* vertical label and "最新 x <unit>" */
    char value_label[GRAPH_TEXT_MAX];  /* legend of the value line */
    char pace_label[GRAPH_TEXT_MAX];   /* 序时进度 (cumulative, completion), 目标 (rate, rank) */
    char comment[GRAPH_TEXT_MAX];      /* "低于序时进度 2.60 个百分点", or "" */
    char latest[GRAPH_TEXT_MAX];       /* the latest figure as published ("192.2", not
                                          "192.20"), or "": printed after "最新" */
    char yoy[GRAPH_TEXT_MAX];          /* the 同比 % published with it ("12.5"), or "" */
    char target[GRAPH_TEXT_MAX];       /* the year's target as a number ("300"), or "":
                                          no target, so no pace or target line and no
                                          legend for them */
    int target_line;                   /* 1: draw the target as a flat 全年目标 line
                                          (year-to-date indicators) */
    int last_year;                     /* 1 (graph_request_init's default): last year's
                                          same months dashed (去年同期) when the graph spans
                                          a year or less; 0: not drawn (the caller knows
                                          there is no figure for them) */
} graph_request;

/* An image handed to the caller, who owns data (free with graph_image_free). */
typedef struct graph_image {
    unsigned char *data;
    size_t len;
    char etag[GRAPH_ETAG_MAX];         /* quoted, ready for the ETag header: "\"p-…\"" for
                                          PNG (a hash of the bytes, which librrd renders
                                          identically each time), W/"s-…" for SVG (a hash of
                                          the request: SVG bytes differ per render) */
} graph_image;

typedef struct graph_pool graph_pool;
typedef struct graph_cache graph_cache;

/* Zeroes *req and sets PNG, 800 x 300, last_year 1. */
void graph_request_init(graph_request *req);

/* 0 when req is well formed (ids, format, sizes, months, NUL-terminated text);
 * -EINVAL otherwise (an HTTP 400). */
int graph_request_check(const graph_request *req);

/* "image/png" or "image/svg+xml". */
const char *graph_content_type(graph_format format);

/* ---- the worker pool ---------------------------------------------------- */

/* Forks n_workers (0..64) rendering processes for the series under rrd_dir
 * (copied). MUST be called while the process has a single thread (before
 * the HTTP server, collectors or anything else starts one), from the thread
 * that stays alive for the daemon's life (workers get SIGTERM when it ends),
 * after TZ and the signal mask are set. n_workers 0 renders in-process,
 * serialised. Returns the pool (graph_pool_stop frees it) or NULL, logged. */
graph_pool *graph_pool_start(const char *rrd_dir, int n_workers);

/* Closes the workers' sockets, reaps them and frees the pool. No call on the
 * pool may be in progress. NULL is ignored. */
void graph_pool_stop(graph_pool *pool);

/* Renders req. Thread-safe. Returns 0 and sets *img (malloc'd; the caller
 * frees it with free()) and *len; -EINVAL for a bad request (400), -ENOENT
 * when the series has no RRD file (404), -ETIMEDOUT when a worker did not
 * answer in time, -EIO when rendering failed or the worker died on it (500,
 * logged), -ENOMEM. A worker found dead while idle is skipped; when every
 * worker has died the pool renders in-process under the store's librrd
 * mutex (logged once). */
int graph_render(graph_pool *pool, const graph_request *req, unsigned char **img, size_t *len);

/* The pids of the live workers, at most max of them, into pids. Returns how
 * many (for tests and for the daemon's own metrics). */
size_t graph_pool_worker_pids(graph_pool *pool, pid_t *pids, size_t max);

/* ---- the cache ---------------------------------------------------------- */

/* A cache of rendered images keyed by the whole request (ids, format, size,
 * months, generation, text), least recently used first out, holding at most
 * max_bytes of image data. Returns it (graph_cache_free frees it) or NULL. */
graph_cache *graph_cache_new(size_t max_bytes);
void graph_cache_free(graph_cache *cache);

/* Looks req up. Returns 1 and fills *out with a copy (the caller frees it
 * with graph_image_free), 0 on a miss, -ENOMEM. Thread-safe. */
int graph_cache_get(graph_cache *cache, const graph_request *req, graph_image *out);

/* Stores a copy of data for req (dropping older generations of the same
 * series, and the least recently used images beyond the bound) and writes
 * its ETag into etag. Returns 0, or -ENOMEM (nothing stored, etag still
 * set). Images larger than a quarter of the bound are not kept (returns 0). */
int graph_cache_put(graph_cache *cache, const graph_request *req, const unsigned char *data,
                    size_t len, char etag[GRAPH_ETAG_MAX]);

/* Counters since graph_cache_new, for /metrics. Any pointer may be NULL. */
void graph_cache_stats(graph_cache *cache, uint64_t *hits, uint64_t *misses, size_t *bytes,
                       size_t *entries);

/* The cached image for req, or a new rendering that is then cached (cache
 * may be NULL: no caching). Returns 0 and fills *out (the caller frees it
 * with graph_image_free), or graph_render's errors. Thread-safe. */
int graph_get(graph_pool *pool, graph_cache *cache, const graph_request *req, graph_image *out);

/* Frees out->data and clears *out. NULL is ignored. */
void graph_image_free(graph_image *img);

#endif
